"""DVC stage `fetch`: obtain raw videos from the configured source into data/raw (index.csv + files)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout's src/ on sys.path)
from talkface.config import load_params, section  # noqa: E402
from talkface.data.sources import FetchConfig, SourceError, fetch  # noqa: E402
from talkface.pipeline_params import fps, sample_rate  # noqa: E402
from talkface.tracking import stage_run  # noqa: E402


def configs(params: dict) -> FetchConfig:
    """`fetch`; the synthetic source renders at the clip store's rates (`media`)."""
    return section(params, "fetch", FetchConfig,
                   passed={"synthetic.fps": fps(params), "synthetic.sample_rate": sample_rate(params)})


def main() -> None:
    cfg = configs(load_params())
    with stage_run("fetch", dataclasses.asdict(cfg)) as run:
        try:
            index = fetch(cfg, Path("data/raw"))
        except SourceError as exc:  # missing folder/list/tool/network: one line, exit status 1
            raise SystemExit(f"[fetch] error: {exc}") from None
        run.log_metrics({"clips": len(index), "speakers": index["speaker"].nunique()})
    print(f"[fetch] {cfg.source}: {len(index)} clips, {index['speaker'].nunique()} speakers -> data/raw/index.csv")


if __name__ == "__main__":
    main()
