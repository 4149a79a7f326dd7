"""Face boxes for dubbing: whole-clip tracking and its online (streaming) equivalent.

    boxes, mask = track_all(raw, width, height, pads, window, method, max_gap)   # raw [T,4], NaN rows = no face
    tracker = StreamTracker(width, height, pads, window, method, max_gap)       # push raw boxes, pop final ones
"""

from __future__ import annotations

import numpy as np

from ..faces.track import fill_gaps, pad_boxes, smooth_boxes, square_boxes


def gap_mask(raw: np.ndarray, max_gap: int) -> np.ndarray:
    """bool [T]: frames with a detection, or inside a run of <= max_gap missed frames between two detections (the
    frames `faces.track.fill_gaps` interpolates). Everything else (long gaps, runs before the first / after the last
    detection) is not dubbed."""
    valid = ~np.isnan(raw).any(axis=1)
    out = valid.copy()
    idx = np.flatnonzero(valid)
    for b, a in zip(idx[:-1], idx[1:]):
        if 1 < a - b <= max_gap + 1:
            out[b + 1: a] = True
    return out


def track_all(raw: np.ndarray, width: int, height: int, pads, window: int, method: str,
              max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole-clip tracking: raw boxes float [T, 4] (NaN rows = no face) -> (square boxes [T, 4], dub mask [T]).
    The same chain as `faces.track.track_boxes`; rows stay NaN when the clip has no face at all."""
    raw = np.asarray(raw, np.float32)
    mask = gap_mask(raw, max_gap)
    if not mask.any():
        return np.full_like(raw, np.nan), mask
    boxes = smooth_boxes(pad_boxes(fill_gaps(raw, max_gap), tuple(pads)), window, method)
    return square_boxes(boxes, width, height), mask


class StreamTracker:
    """Online `track_all`: push raw boxes as frames are detected, pop final boxes with a fixed lag.

    Frame t's box depends on the filled boxes within window//2 of it, and a filled box on the detections up to
    max(max_gap, window//2) frames further, so it is final once `lag` later frames are known. Each pop runs the
    whole-clip chain on a slice with `margin` frames of context on both sides; the result equals `track_all` on the
    complete clip (tests/test_dub.py checks this on random miss patterns)."""

    def __init__(self, width: int, height: int, pads, window: int, method: str, max_gap: int):
        self.args = (width, height, tuple(pads), window, method, max_gap)
        half = window // 2
        self.lag = half + max(max_gap, half) + 1
        self.margin = 2 * (max_gap + window) + 2
        self.raw = np.empty((256, 4), np.float32)
        self.n = 0  # frames pushed
        self.done = 0  # frames popped

    def push(self, raw: np.ndarray) -> None:
        raw = np.asarray(raw, np.float32).reshape(-1, 4)
        while self.n + len(raw) > len(self.raw):
            self.raw = np.concatenate([self.raw, np.empty_like(self.raw)])
        self.raw[self.n: self.n + len(raw)] = raw
        self.n += len(raw)

    def pop(self, final: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Boxes [m, 4] and dub mask [m] of the next m frames that are final (all remaining when `final`)."""
        end = self.n if final else max(self.done, self.n - self.lag)
        if end <= self.done:
            return np.empty((0, 4), np.float32), np.zeros(0, bool)
        lo = max(0, self.done - self.margin)
        hi = min(self.n, end + self.margin)
        boxes, mask = track_all(self.raw[lo:hi], *self.args)
        out = boxes[self.done - lo: end - lo], mask[self.done - lo: end - lo]
        self.done = end
        return out
