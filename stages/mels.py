"""DVC stage `mels`: one Wav2Lip-compatible mel spectrogram per kept clip (data/clips -> data/mels)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout's src/ on sys.path)
from talkface.config import load_params, section  # noqa: E402
from talkface.data.mel_store import MelsConfig, write_mels  # noqa: E402
from talkface.pipeline_params import sample_rate  # noqa: E402
from talkface.tracking import stage_run  # noqa: E402


def configs(params: dict) -> MelsConfig:
    """`mels` at the clip store's sample rate (`media.sample_rate`)."""
    return section(params, "mels", MelsConfig, passed={"mel.sample_rate": sample_rate(params)})


def main() -> None:
    cfg = configs(load_params())
    with stage_run("mels", dataclasses.asdict(cfg)) as run:
        summary = write_mels(Path("data/clips"), Path("data/mels"), cfg)
        run.log_metrics(summary)
    print(f"[mels] {summary['clips']} clips, {summary['mel_frames']} mel frames -> data/mels")


if __name__ == "__main__":
    main()
