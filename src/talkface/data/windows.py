"""The window dataset every trainer reads: k-frame face windows with their aligned mel windows.

Clips come from the clip store (`data/clips/<id>/frames.npy`, memory-mapped, never copied) and the mel store
(`data/mels/<id>.npy`). Item `i` is drawn deterministically from `(seed, i)`: a window chosen uniformly among all
valid windows of all clips, so a resumed training run sees the same batches (see talkface.train.loop).

Alignment (METHOD.md §1): the k-frame window starting at video frame f has the mel window
`mel[int(80 f / 25) : +16]`. The per-frame windows the generator gets (Wav2Lip's "indiv_mels") are centred on their
frame: frame j gets the 16-step window that starts at frame j - k//2.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from .mel import mel_start


@dataclasses.dataclass
class WindowConfig:
    k: int = 5                   # frames per window (P1/P2: 5)
    mel_steps: int = 16          # mel frames per audio window (16 = 0.2 s)
    fps: float = 25.0
    mel_fps: float = 80.0
    length: int = 1_000_000      # virtual dataset length (items are drawn from (seed, index))


class WindowDataset(Dataset):
    """Random k-frame windows over a set of clips. See the module docstring and docs/architecture.md.

    Each item: frames/pose/identity [k,3,S,S] float in [0,1], mel [1,80,16], indiv_mels [k,1,80,16],
    neg_mel [1,80,16], landmarks [k,68,2] (NaN when unknown), clip (int), start (int); with `with_silent`,
    also identity_silent [k,3,S,S]: the closed-lip ground truth of the identity frames (synthetic data only).
    """

    def __init__(self, clips_dir: str | Path, mels_dir: str | Path, clip_ids: list[str], cfg: WindowConfig,
                 seed: int = 0, with_silent: bool = False):
        self.clips_dir, self.mels_dir = Path(clips_dir), Path(mels_dir)
        self.cfg, self.seed, self.with_silent = cfg, seed, with_silent
        self.clip_ids: list[str] = []
        self.valid: list[tuple[int, int]] = []     # per clip: inclusive range of valid window starts
        for clip_id in clip_ids:
            n_frames = json.loads((self.clips_dir / clip_id / "meta.json").read_text())["n_frames"]
            n_mel = np.load(self.mels_dir / f"{clip_id}.npy", mmap_mode="r").shape[0]
            lo, hi = self._valid_starts(n_frames, n_mel)
            # A clip must offer a second, non-overlapping window (identity reference, sync negative).
            if hi - lo >= cfg.k:
                self.clip_ids.append(clip_id)
                self.valid.append((lo, hi))
        if not self.clip_ids:
            raise ValueError(f"no clip long enough for {cfg.k}-frame windows with a non-overlapping partner "
                             f"among {len(clip_ids)} clip(s) in {self.clips_dir}")
        counts = np.array([hi - lo + 1 for lo, hi in self.valid], dtype=np.int64)
        self.cumulative = np.cumsum(counts)
        self._cache: dict[int, dict[str, np.ndarray]] = {}

    def _valid_starts(self, n_frames: int, n_mel: int) -> tuple[int, int]:
        """Window starts f whose frames and every (aligned and per-frame) mel window lie inside the clip."""
        k, half = self.cfg.k, self.cfg.k // 2
        lo = half  # the first frame's centred window starts at f - k//2 >= 0
        hi = n_frames - k
        # Last per-frame window starts at frame f + k - 1 - half; it must end inside the mel.
        while hi >= lo and self._mel_at(hi + k - 1 - half) + self.cfg.mel_steps > n_mel:
            hi -= 1
        return lo, hi

    def _mel_at(self, frame: int) -> int:
        return mel_start(frame, self.cfg.fps, self.cfg.mel_fps)

    def fingerprint(self) -> str:
        """Digest of the clips this dataset reads (ids, crop metadata, mel files), so that a training checkpoint made
        on other data is never resumed."""
        h = hashlib.sha1(json.dumps([self.seed, dataclasses.asdict(self.cfg)]).encode())
        for clip_id in self.clip_ids:  # mels are small (~1 MB/min): hash their bytes; frames via the crop metadata
            h.update(clip_id.encode())
            h.update((self.clips_dir / clip_id / "meta.json").read_bytes())
            h.update((self.mels_dir / f"{clip_id}.npy").read_bytes())
        return h.hexdigest()[:16]

    @property
    def n_windows(self) -> int:
        return int(self.cumulative[-1])

    def __len__(self) -> int:
        return self.cfg.length

    def _clip(self, c: int) -> dict[str, np.ndarray]:
        # Opened lazily per worker process: memory maps are cheap and not picklable across fork safely.
        if c not in self._cache:
            d = self.clips_dir / self.clip_ids[c]
            entry = {
                "frames": np.load(d / "frames.npy", mmap_mode="r"),
                "landmarks": np.load(d / "landmarks.npy", mmap_mode="r"),
                "mel": np.load(self.mels_dir / f"{self.clip_ids[c]}.npy", mmap_mode="r"),
            }
            if self.with_silent:
                entry["silent"] = np.load(d / "silent.npy", mmap_mode="r")
            self._cache[c] = entry
        return self._cache[c]

    def locate(self, index: int) -> tuple[int, int, np.random.Generator]:
        """(clip, start frame, rng) of item `index`."""
        rng = np.random.default_rng([self.seed, index])
        w = int(rng.integers(self.n_windows))
        c = int(np.searchsorted(self.cumulative, w, side="right"))
        before = int(self.cumulative[c - 1]) if c else 0
        return c, self.valid[c][0] + (w - before), rng

    def _partner(self, c: int, f: int, rng: np.random.Generator) -> int:
        """A start in the clip's valid range whose window does not overlap [f, f+k)."""
        lo, hi = self.valid[c]
        k = self.cfg.k
        choices = np.concatenate([np.arange(lo, max(lo, f - k + 1)), np.arange(min(hi + 1, f + k), hi + 1)])
        return int(rng.choice(choices))

    def _mel_window(self, mel: np.ndarray, frame: int) -> np.ndarray:
        s = self._mel_at(frame)
        return np.ascontiguousarray(mel[s : s + self.cfg.mel_steps].T)[None]  # [1, 80, 16]

    def __getitem__(self, index: int) -> dict[str, Any]:
        c, f, rng = self.locate(index)
        clip = self._clip(c)
        k, half = self.cfg.k, self.cfg.k // 2
        g = self._partner(c, f, rng)             # identity reference window
        h = self._partner(c, f, rng)             # sync negative audio window
        frames = _to_float(clip["frames"][f : f + k])
        pose = frames.clone()
        pose[:, :, pose.shape[2] // 2 :, :] = 0.0
        item = {
            "frames": frames,
            "pose": pose,
            "identity": _to_float(clip["frames"][g : g + k]),
            "mel": torch.from_numpy(self._mel_window(clip["mel"], f)),
            "indiv_mels": torch.from_numpy(
                np.stack([self._mel_window(clip["mel"], j - half) for j in range(f, f + k)])),
            "neg_mel": torch.from_numpy(self._mel_window(clip["mel"], h)),
            "landmarks": torch.from_numpy(np.array(clip["landmarks"][f : f + k], dtype=np.float32)),
            "clip": c,
            "start": f,
        }
        if self.with_silent:
            item["identity_silent"] = _to_float(clip["silent"][g : g + k])
        return item


def _to_float(frames: np.ndarray) -> torch.Tensor:
    """uint8 [k,H,W,3] -> float [k,3,H,W] in [0,1]."""
    return torch.from_numpy(np.array(frames)).permute(0, 3, 1, 2).float().div_(255.0)


def read_split(path: str | Path) -> list[str]:
    """Clip ids of a split list (one per line, blank lines ignored)."""
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
