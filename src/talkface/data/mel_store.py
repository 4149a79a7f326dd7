"""The mel store: data/mels/<clip_id>.npy for every kept clip of the clip store."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..config import section
from ..pipeline_params import sample_rate
from .mel import MelConfig, melspectrogram


@dataclasses.dataclass
class MelsConfig:
    """params.yaml `mels`; `mel.sample_rate` is passed down from `media.sample_rate`."""

    mel: MelConfig = dataclasses.field(default_factory=MelConfig)


def mel_params(params: dict) -> MelConfig:
    """The mel parameters of the pipeline: `mels.mel` at the clip store's sample rate."""
    return section(params, "mels", MelsConfig, passed={"mel.sample_rate": sample_rate(params)}).mel


def kept_clips(clips_dir: Path) -> list[str]:
    """Ids of the clips the crop stage kept (those with a complete meta.json)."""
    return sorted(p.parent.name for p in clips_dir.glob("*/meta.json"))


def write_mels(clips_dir: Path, out_dir: Path, cfg: MelsConfig) -> dict[str, float]:
    """Compute the mel of every kept clip's 16 kHz audio; returns a summary for logging."""
    out_dir.mkdir(parents=True, exist_ok=True)
    clip_ids = kept_clips(clips_dir)
    if not clip_ids:
        raise SystemExit(f"mels: no kept clips in {clips_dir} (did the crop stage reject everything? "
                         f"see {clips_dir / 'manifest.csv'})")
    total = 0
    for clip_id in tqdm(clip_ids, desc="mels", unit="clip", mininterval=1.0):
        meta = json.loads((clips_dir / clip_id / "meta.json").read_text())
        if int(meta.get("sample_rate", cfg.mel.sample_rate)) != cfg.mel.sample_rate:
            raise SystemExit(f"mels: clip {clip_id} audio is {meta['sample_rate']} Hz, "
                             f"mels.mel.sample_rate is {cfg.mel.sample_rate}")
        audio = np.load(clips_dir / clip_id / "audio.npy", mmap_mode="r")
        mel = melspectrogram(np.asarray(audio), cfg.mel)
        tmp = out_dir / f".{clip_id}.tmp.npy"
        np.save(tmp, mel)
        os.replace(tmp, out_dir / f"{clip_id}.npy")
        total += mel.shape[0]
    return {"clips": len(clip_ids), "mel_frames": total}
