"""DVC stage `crop`: data/raw -> 25 fps face crops, 16 kHz audio, landmarks in data/clips + manifest; data/splits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout's src/ on sys.path)
from talkface.config import get, load_params, section  # noqa: E402
from talkface.data.prepare import CropConfig, prepare, summary  # noqa: E402
from talkface.data.store import SourceError  # noqa: E402
from talkface.faces.detect import FaceDetectorUnavailable  # noqa: E402
from talkface.pipeline_params import fps, sample_rate  # noqa: E402
from talkface.tracking import stage_run  # noqa: E402


def configs(params: dict) -> tuple[CropConfig, str]:
    """`crop`, resampling to the clip store's rates (`media`), and the source it crops (`fetch.source`)."""
    cfg = section(params, "crop", CropConfig, passed={"fps": fps(params), "sample_rate": sample_rate(params)})
    return cfg, str(get(params, "fetch.source"))


def main() -> None:
    cfg, source = configs(load_params())
    with stage_run("crop", dataclasses.asdict(cfg)) as run:
        try:
            manifest = prepare(Path("data/raw"), Path("data/clips"), Path("data/splits"), cfg, source=source)
        except (FaceDetectorUnavailable, SourceError) as exc:  # setup problems: one line, exit status 1
            raise SystemExit(f"[crop] error: {exc}") from None
        s = summary(manifest)
        run.log_metrics({k: v for k, v in s.items() if not isinstance(v, dict)})
    print(f"[crop] kept {s['kept']} of {s['clips']} clips ({s['kept_frames']} frames); "
          f"rejected: {s['rejected_by_reason'] or 'none'}")


if __name__ == "__main__":
    main()
