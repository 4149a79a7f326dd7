"""Windows drawn per speaker, so that a few short real identities are not drowned by one long speaker.

    train_set = SpeakerBalancedWindows(clips_dir, mels_dir, ids, window, speakers, power=0.5, seed=0)

A `WindowDataset` draws every valid window with equal probability, so each speaker counts by its footage: next to
GRID s1's 45 minutes, seven people with 2.5 minutes between them are 5 % of the draws. Here speaker s is drawn with
probability proportional to n_s ** power (n_s: its valid windows), then a window uniformly among its own:
power 1 is the plain dataset's distribution, 0 gives every speaker the same share. Item `i` is still a pure function
of (seed, i), so a resumed run sees the same batches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model_inputs import WindowConfig
from .windows import WindowDataset


class SpeakerBalancedWindows(WindowDataset):
    """A WindowDataset whose `locate` draws the speaker first (see the module docstring).

    speakers: {clip_id: speaker} for every clip id passed (data/clips/manifest.csv holds them)."""

    def __init__(self, clips_dir: str | Path, mels_dir: str | Path, clip_ids: list[str], cfg: WindowConfig,
                 speakers: dict[str, str], power: float, seed: int = 0, with_silent: bool = False):
        super().__init__(clips_dir, mels_dir, clip_ids, cfg, seed=seed, with_silent=with_silent)
        if power < 0:
            raise ValueError(f"speaker power must be >= 0, got {power}")
        missing = [c for c in self.clip_ids if c not in speakers]
        if missing:
            raise ValueError(f"no speaker for clips {missing[:5]} (data/clips/manifest.csv)")
        self.power = float(power)
        names = sorted({speakers[c] for c in self.clip_ids})
        self.speaker_names = names
        # per speaker: its clips (dataset indices) and the cumulative count of their valid windows
        self.speaker_clips = [np.array([c for c, cid in enumerate(self.clip_ids) if speakers[cid] == s])
                              for s in names]
        counts = np.array([hi - lo + 1 for lo, hi in self.valid], dtype=np.int64)
        self.speaker_cumulative = [np.cumsum(counts[clips]) for clips in self.speaker_clips]
        windows = np.array([cum[-1] for cum in self.speaker_cumulative], dtype=np.float64)
        weights = windows ** self.power
        self.speaker_probs = weights / weights.sum()

    def fingerprint(self) -> str:
        return f"{super().fingerprint()}-p{self.power:g}"

    def locate(self, index: int) -> tuple[int, int, np.random.Generator]:
        """(clip, start frame, rng) of item `index`: speaker by `speaker_probs`, then a uniform window of its own."""
        rng = np.random.default_rng([self.seed, index])
        s = int(np.searchsorted(np.cumsum(self.speaker_probs), rng.random(), side="right"))
        s = min(s, len(self.speaker_names) - 1)
        cum = self.speaker_cumulative[s]
        w = int(rng.integers(cum[-1]))
        j = int(np.searchsorted(cum, w, side="right"))
        c = int(self.speaker_clips[s][j])
        before = int(cum[j - 1]) if j else 0
        return c, self.valid[c][0] + (w - before), rng

    def speaker_shares(self) -> dict[str, float]:
        """{speaker: probability of a draw}."""
        return {s: float(p) for s, p in zip(self.speaker_names, self.speaker_probs)}
