"""Mouth landmark distance, LMD (P1 appendix D; Chen et al. 2019).

LMD = mean over frames and over the 20 mouth landmarks (48-67 of the 68-point iBUG layout) of the Euclidean distance
between the landmark detected on the generated frame and on the ground-truth frame. Landmarks come from the same
detector for both (face-alignment FAN in the papers). Distances are measured at a stated image size [ours]: the
landmarks are given in pixels of `source_size`-pixel square crops and rescaled to `eval_size` pixels before the
distance, so numbers at different crop sizes can be compared (the evaluate stage records `eval_size`).
Frames where either set has a missing (NaN) landmark are skipped; a video with no usable frame gives NaN.
"""

from __future__ import annotations

import numpy as np

MOUTH = slice(48, 68)


def lmd(
    generated: np.ndarray, ground_truth: np.ndarray, source_size: float, eval_size: float | None = None
) -> float:
    """LMD of one video. generated, ground_truth: [T,68,2] pixel coordinates in `source_size` crops -> float."""
    g, r = np.asarray(generated, np.float64), np.asarray(ground_truth, np.float64)
    if g.shape != r.shape or g.ndim != 3 or g.shape[1:] != (68, 2):
        raise ValueError(f"expected two landmark arrays [T,68,2] of equal shape, got {g.shape} and {r.shape}")
    scale = 1.0 if eval_size is None else float(eval_size) / float(source_size)
    dist = np.linalg.norm(g[:, MOUTH] - r[:, MOUTH], axis=-1) * scale  # [T, 20]
    usable = np.isfinite(dist).all(axis=1)
    return float(dist[usable].mean()) if usable.any() else float("nan")
