"""Face boxes for dubbing: whole-clip tracking of the face pass's detections (16 bytes a frame).

    boxes, mask = track_all(raw, width, height, pads, window, method, max_gap)   # raw [T,4], NaN rows = no face
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
