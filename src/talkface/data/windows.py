"""The window dataset every trainer reads: k-frame face windows with their aligned mel windows.

Clips come from the clip store (`data/clips/<id>/frames.npy`, memory-mapped, never copied) and the mel store
(`data/mels/<id>.npy`). Item `i` is drawn deterministically from `(seed, i)`: a window chosen uniformly among all
valid windows of all clips, so a resumed training run sees the same batches (see talkface.train.loop).

Every input is built by talkface.model_inputs, the one place that says what a generator and a sync expert consume
(pose input, identity reference, aligned and per-frame mel windows; METHOD.md §1). The dataset draws only window
starts whose every mel window lies inside the clip (`_valid_starts`), so training never sees a clamped window.
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

from ..model_inputs import (WindowConfig, check_window, frame_mel_windows, mel_window, needs_clamp, pose_input,
                            to_float, training_reference)

__all__ = ["WindowConfig", "WindowDataset", "read_split"]


class WindowDataset(Dataset):
    """Random k-frame windows over a set of clips. See the module docstring and docs/architecture.md.

    Each item: frames/pose/identity [k,3,S,S] float in [0,1], mel [1,80,16], indiv_mels [k,1,80,16],
    neg_mel [1,80,16], landmarks [k,68,2] (NaN when unknown), clip (int), start (int); with `with_silent`,
    also identity_silent [k,3,S,S]: the closed-lip ground truth of the identity frames (synthetic data only).
    """

    def __init__(self, clips_dir: str | Path, mels_dir: str | Path, clip_ids: list[str], cfg: WindowConfig,
                 seed: int = 0, with_silent: bool = False):
        check_window(cfg)
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
        """Window starts f whose frames and every (aligned and per-frame) mel window lie inside the clip, unclamped."""
        k, half = self.cfg.k, self.cfg.k // 2
        lo = half  # the first frame's centred window starts at f - k//2 >= 0
        hi = n_frames - k
        # Last per-frame window starts at frame f + k - 1 - half; it must end inside the mel.
        while hi >= lo and needs_clamp(hi + k - 1 - half, n_mel, self.cfg):
            hi -= 1
        return lo, hi

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

    def __getitem__(self, index: int) -> dict[str, Any]:
        c, f, rng = self.locate(index)
        clip = self._clip(c)
        k, (lo, hi) = self.cfg.k, self.valid[c]
        g = training_reference(lo, hi, f, k, rng)  # identity reference window
        h = training_reference(lo, hi, f, k, rng)  # sync negative audio window (same rule: apart from the target)
        frames = to_float(np.array(clip["frames"][f : f + k]))
        item = {
            "frames": frames,
            "pose": pose_input(frames),
            "identity": to_float(np.array(clip["frames"][g : g + k])),
            "mel": torch.from_numpy(mel_window(clip["mel"], f, self.cfg)),
            "indiv_mels": torch.from_numpy(frame_mel_windows(clip["mel"], f, self.cfg)),
            "neg_mel": torch.from_numpy(mel_window(clip["mel"], h, self.cfg)),
            "landmarks": torch.from_numpy(np.array(clip["landmarks"][f : f + k], dtype=np.float32)),
            "clip": c,
            "start": f,
        }
        if self.with_silent:
            item["identity_silent"] = to_float(np.array(clip["silent"][g : g + k]))
        return item


def read_split(path: str | Path) -> list[str]:
    """Clip ids of a split list (one per line, blank lines ignored)."""
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]


def split_ids(splits_dir: str | Path, name: str) -> list[str]:
    """The clip ids of split `name` (<splits_dir>/<name>.txt); a missing or empty list is a one-line error."""
    path = Path(splits_dir) / f"{name}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"split list not found: {path} (run the crop stage first)")
    ids = read_split(path)
    if not ids:
        raise ValueError(f"split {path} is empty")
    return ids


def has_silent(clips_dir: str | Path, clip_ids: list[str]) -> bool:
    """Whether every clip has closed-lip ground truth (silent.npy, synthetic data only)."""
    return all((Path(clips_dir) / c / "silent.npy").is_file() for c in clip_ids)
