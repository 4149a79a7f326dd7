"""From per-frame detections to one steady square crop box per frame.

Order (each step a function, all on float arrays [T, 4] of x0, y0, x1, y1 with NaN rows where no face was found):

    boxes = detections_to_arrays(dets)[0]
    boxes = fill_gaps(boxes, max_gap)          # interpolate short misses, hold the nearest box over long ones
    boxes = pad_boxes(boxes, pads)             # Wav2Lip-style margins (top, bottom, left, right), here in box fractions
    boxes = smooth_boxes(boxes, window)        # moving mean/median over time: crops stop jittering
    boxes = square_boxes(boxes, W, H)          # square, shifted (then clipped) to lie inside the frame, integer pixels

`track_boxes` runs the whole chain.
"""

from __future__ import annotations

import numpy as np

from .detect import Detection


def detections_to_arrays(dets: list[Detection | None]) -> tuple[np.ndarray, np.ndarray]:
    """boxes float32 [T, 4] (NaN rows where None), landmarks float32 [T, 68, 2] (NaN where None or box-only)."""
    boxes = np.full((len(dets), 4), np.nan, np.float32)
    lms = np.full((len(dets), 68, 2), np.nan, np.float32)
    for t, d in enumerate(dets):
        if d is None:
            continue
        boxes[t] = d.box
        if d.landmarks is not None:
            lms[t] = d.landmarks
    return boxes, lms


def fill_gaps(boxes: np.ndarray, max_gap: int) -> np.ndarray:
    """Fill NaN rows of [T, 4]: runs of <= max_gap frames between two detections are linearly interpolated; longer runs
    (and runs at the start/end) hold the nearest detected box. All-NaN input is returned unchanged."""
    boxes = np.asarray(boxes, np.float32).copy()
    valid = ~np.isnan(boxes).any(axis=1)
    if valid.all() or not valid.any():
        return boxes
    t = np.arange(len(boxes))
    idx = t[valid]
    nxt = np.searchsorted(idx, t)  # index into idx of the first detection at or after t
    before = idx[np.clip(nxt - 1, 0, len(idx) - 1)]
    after = idx[np.clip(nxt, 0, len(idx) - 1)]
    for i in t[~valid]:
        b, a = before[i], after[i]
        if b < i < a and (a - b - 1) <= max_gap:
            w = (i - b) / (a - b)
            boxes[i] = (1 - w) * boxes[b] + w * boxes[a]
        else:  # hold the nearest detection
            near = b if (b < i and (a < i or i - b <= a - i)) else a
            boxes[i] = boxes[near]
    return boxes


def pad_boxes(boxes: np.ndarray, pads: tuple[float, float, float, float]) -> np.ndarray:
    """Grow each box by (top, bottom, left, right) fractions of its height/width.

    Wav2Lip's `--pads 0 10 0 0` are pixels; fractions keep the margin the same at any resolution
    (10 px on a ~100 px LRS2 face box ≈ 0.1)."""
    top, bottom, left, right = pads
    b = np.asarray(boxes, np.float32).copy()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    b[:, 0] -= left * w
    b[:, 2] += right * w
    b[:, 1] -= top * h
    b[:, 3] += bottom * h
    return b


def smooth_boxes(boxes: np.ndarray, window: int, method: str = "mean") -> np.ndarray:
    """Centred moving mean or median over `window` frames (truncated at the ends), per coordinate.

    window <= 1: no smoothing."""
    b = np.asarray(boxes, np.float32)
    if window <= 1 or len(b) == 0:
        return b.copy()
    if method not in ("mean", "median"):
        raise ValueError(f"smoothing method must be 'mean' or 'median', got {method!r}")
    reduce = np.nanmean if method == "mean" else np.nanmedian
    half_lo, half_hi = (window - 1) // 2, window // 2
    out = np.empty_like(b)
    for t in range(len(b)):
        seg = b[max(0, t - half_lo): t + half_hi + 1]
        out[t] = reduce(seg, axis=0) if not np.isnan(seg).all() else np.nan
    return out


def square_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Square boxes of side max(w, h) around each box centre, moved inside a width x height frame (shrunk only when the
    frame is smaller than the side), rounded to integer pixels. float32 [T, 4]."""
    b = np.asarray(boxes, np.float32)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    side = np.clip(np.round(side), 2, min(width, height))
    x0 = np.clip(np.round(cx - side / 2), 0, width - side)
    y0 = np.clip(np.round(cy - side / 2), 0, height - side)
    return np.stack([x0, y0, x0 + side, y0 + side], axis=1).astype(np.float32)


def track_boxes(dets: list[Detection | None], width: int, height: int, pads=(0.0, 0.1, 0.0, 0.0),
                window: int = 5, method: str = "mean", max_gap: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Detections of one clip -> (crop boxes float32 [T, 4], landmarks float32 [T, 68, 2] full-frame, found bool [T]).

    Raises ValueError when no frame has a face."""
    raw, lms = detections_to_arrays(dets)
    found = ~np.isnan(raw).any(axis=1)
    if not found.any():
        raise ValueError("no face in any frame")
    boxes = fill_gaps(raw, max_gap)
    boxes = smooth_boxes(pad_boxes(boxes, pads), window, method)
    return square_boxes(boxes, width, height), lms, found


def landmarks_to_crop(landmarks: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Full-frame landmarks [T, 68, 2] -> pixel coordinates in the size x size crop of each box [T, 4] (NaN stays NaN).

    Uses the pixel-centre convention of cv2.resize: source x maps to (x - x0 + 0.5) * size / w - 0.5."""
    lms = np.asarray(landmarks, np.float32)
    b = np.asarray(boxes, np.float32)
    origin = b[:, None, :2]
    scale = np.stack([size / (b[:, 2] - b[:, 0]), size / (b[:, 3] - b[:, 1])], axis=1)[:, None, :]
    return ((lms - origin + 0.5) * scale - 0.5).astype(np.float32)
