"""Which output frames of the new speech are silent (energy-based voice activity): their mouth is closed.

    silent = silent_frames(wav, sample_rate, fps, n_frames, SilenceConfig())   # bool [n_frames]

Frame j covers the samples [j * sr / fps, (j + 1) * sr / fps). Its level is 10 log10(mean square + 1e-10) dBFS. A frame
is silent when its level is below `floor_db` (absolute), or more than `relative_db` below the loudest speech (the
95th percentile of frame levels). Silent runs shorter than `min_frames` are gaps between words and stay speech, so
the mouth does not snap shut for a frame or two. Silent frames get the mel of digital silence, the audio G_S closes
lips with (model_inputs.silent_mel).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass
class SilenceConfig:
    enabled: bool = True
    floor_db: float = -60.0  # dBFS: quieter frames are silent whatever the speech level
    relative_db: float = -18.0  # dB under the 95th-percentile frame level (GRID sil frames: precision 0.95, recall 0.88)
    min_frames: int = 5  # shorter silent runs (pauses between words) stay speech


def frame_levels(wav: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """float64 [n_frames]: level of each output frame's samples in dBFS (frames past the audio's end: -100)."""
    wav = np.asarray(wav, np.float64)
    edges = np.round(np.arange(n_frames + 1) * sample_rate / fps).astype(np.int64)
    sq = np.concatenate([[0.0], np.cumsum(wav * wav)])
    lo, hi = np.minimum(edges[:-1], len(wav)), np.minimum(edges[1:], len(wav))
    energy = (sq[hi] - sq[lo]) / np.maximum(hi - lo, 1)
    return np.where(hi > lo, 10.0 * np.log10(energy + 1e-10), -100.0)


def drop_short_runs(mask: np.ndarray, min_len: int) -> np.ndarray:
    """bool [T]: `mask` without its True runs shorter than `min_len`."""
    out = mask.copy()
    t, n = 0, len(mask)
    while t < n:
        if mask[t]:
            e = t
            while e < n and mask[e]:
                e += 1
            if e - t < min_len:
                out[t:e] = False
            t = e
        else:
            t += 1
    return out


def silent_frames(wav: np.ndarray, sample_rate: int, fps: float, n_frames: int, cfg: SilenceConfig) -> np.ndarray:
    """bool [n_frames]: the frames whose speech is silent (see the module docstring); all False when disabled."""
    if not cfg.enabled or n_frames == 0:
        return np.zeros(n_frames, bool)
    levels = frame_levels(wav, sample_rate, fps, n_frames)
    loud = np.percentile(levels, 95)
    quiet = (levels < cfg.floor_db) | (levels < loud + cfg.relative_db)
    return drop_short_runs(quiet, cfg.min_frames)
