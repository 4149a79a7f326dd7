"""Mouth opening from 68 landmarks, and how well a generated mouth follows the real one [ours].

    opening = mouth_opening(landmarks)          # [T,68,2] -> [T]: inner-lip gap / inter-ocular distance
    r = opening_correlation(opening_gen, opening_gt)   # Pearson r over the frames of one clip

The inner-lip gap is the mean distance of the three facing inner-lip pairs of the iBUG 68-point layout (61-67, 62-66,
63-65); dividing by the distance between the eye centres (mean of 36-41 and of 42-47) makes it independent of the crop
size and of how far the face is from the camera. On real faces the landmarks come from dlib or FAN (faces.crop_landmarks)
on the generated and on the ground-truth crops alike. The correlation of the generated frames' opening with the ground
truth's is the frame-level sync that LMD (an average distance) does not show: a still mouth scores ~0 however close
its landmarks are.
"""

from __future__ import annotations

import numpy as np

INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))
LEFT_EYE, RIGHT_EYE = slice(36, 42), slice(42, 48)


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """[T,68,2] landmarks -> [T] inner-lip gap / inter-ocular distance (NaN where a frame has no landmarks)."""
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (68, 2):
        raise ValueError(f"expected landmarks [T,68,2], got {lm.shape}")
    gap = np.mean([np.linalg.norm(lm[:, a] - lm[:, b], axis=-1) for a, b in INNER_LIP_PAIRS], axis=0)
    iod = np.linalg.norm(lm[:, LEFT_EYE].mean(axis=1) - lm[:, RIGHT_EYE].mean(axis=1), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(iod > 0, gap / iod, np.nan)


def opening_correlation(a: np.ndarray, b: np.ndarray, min_frames: int = 5) -> float:
    """Pearson correlation of two per-frame openings [T] over the frames where both are finite; NaN when fewer than
    `min_frames` frames remain or either is constant there (a mouth that never moves has no correlation)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"openings differ in length: {a.shape} vs {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < min_frames:
        return float("nan")
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 1e-12 else float("nan")
