"""Mouth ROIs for AV-HuBERT, following its preparation/align_mouth.py (after Ma et al.'s LRW pipeline).

Per frame t of a clip with 68 iBUG landmarks:
1. landmarks missing in some frames (NaN) are linearly interpolated between detections (held at the ends);
2. the landmarks are smoothed over a forward window of `window_margin` frames (the last full window is reused for
   the final frames, as the reference does at the end of a clip);
3. a similarity transform (rotation, uniform scale, translation; least squares, Umeyama) maps the smoothed stable
   points (nose 33, eye corners 36, 39, 42, 45) onto the reference face in a `std_size` (256) pixel frame, and the
   frame is warped with it (bilinear, black border);
4. a `crop_size` (96) square is cut around the mean of the frame's own (transformed) mouth landmarks 48-67, moved
   inside the warped frame when it would cross the border;
5. grayscale 0.299 R + 0.587 G + 0.114 B.
`lip_input` then makes the model input: /255, centre crop 88x88, (x - 0.421) / 0.165.

Reference face [ours]: the reference implementation loads a mean face file (20words_mean_face.npy) that is not
available here. Only its five stable points enter the transform, so we define those five directly in the 256x256
frame from average adult proportions (outer eye corners 90 px apart on a horizontal line at y = 115, inner corners
30 px apart at y = 117, the base of the nose, landmark 33, centred 48 px below the eye line). With this scale a
mouth is about 50 px wide in the 96 px ROI, as in the LRS3 ROIs AV-HuBERT was trained on. Alignment to a different
template changes only the scale/position of the lips in the ROI by a few pixels.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

STABLE_POINTS = (33, 36, 39, 42, 45)
REFERENCE_STABLE_POINTS_256 = np.array([
    [128.0, 163.0],  # 33 base of the nose
    [83.0, 115.0],   # 36 outer corner of the eye on the image left
    [113.0, 117.0],  # 39 its inner corner
    [143.0, 117.0],  # 42 inner corner of the other eye
    [173.0, 115.0],  # 45 its outer corner
], dtype=np.float64)
MOUTH = slice(48, 68)


@dataclasses.dataclass
class MouthROIConfig:
    std_size: int = 256        # side of the aligned face frame the reference points live in
    crop_size: int = 96        # mouth ROI side, pixels of the aligned frame
    roi_size: int = 88         # centre crop fed to AV-HuBERT
    window_margin: int = 12    # frames of landmark smoothing
    mean: float = 0.421
    std: float = 0.165


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (no reflection) mapping src [N,2] onto dst [N,2], as a 2x3 matrix."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[1, 1] = -1
    rot = u @ e @ vt
    var_s = (s ** 2).sum() / len(src)
    if var_s == 0:
        raise ValueError("similarity_transform: source points coincide")
    scale = np.trace(np.diag(sig) @ e) / var_s
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def interpolate_landmarks(landmarks: np.ndarray) -> np.ndarray:
    """[T,68,2] with NaN frames -> filled by linear interpolation over time (nearest at the ends)."""
    lms = np.asarray(landmarks, np.float64).copy()
    valid = np.isfinite(lms).all(axis=(1, 2))
    if not valid.any():
        raise ValueError("mouth ROI: no frame has landmarks")
    if valid.all():
        return lms
    t, known = np.arange(len(lms)), np.flatnonzero(valid)
    flat = lms.reshape(len(lms), -1)
    for j in range(flat.shape[1]):
        flat[:, j] = np.interp(t, known, flat[known, j])
    return flat.reshape(lms.shape)


def _cut(img: np.ndarray, center: np.ndarray, size: int) -> np.ndarray:
    half = size // 2
    h, w = img.shape[:2]
    cx = float(np.clip(np.round(center[0]), half, w - half))
    cy = float(np.clip(np.round(center[1]), half, h - half))
    return img[int(cy) - half:int(cy) + half, int(cx) - half:int(cx) + half]


def mouth_rois(frames: np.ndarray, landmarks: np.ndarray, cfg: MouthROIConfig = MouthROIConfig()) -> np.ndarray:
    """frames uint8 [T,H,W,3] RGB, landmarks [T,68,2] (pixels of those frames) -> uint8 [T,crop,crop] grayscale."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected RGB frames [T,H,W,3], got {frames.shape}")
    if landmarks.shape != (len(frames), 68, 2):
        raise ValueError(f"expected landmarks [{len(frames)},68,2], got {landmarks.shape}")
    lms = interpolate_landmarks(landmarks)
    n = len(frames)
    margin = max(1, min(n, cfg.window_margin))
    ref = REFERENCE_STABLE_POINTS_256 * (cfg.std_size / 256.0)
    out = np.empty((n, cfg.crop_size, cfg.crop_size), np.uint8)
    for t in range(n):
        start = min(t, n - margin)
        smoothed = lms[start:start + margin].mean(axis=0)
        m = similarity_transform(smoothed[list(STABLE_POINTS)], ref)
        warped = cv2.warpAffine(frames[t], m, (cfg.std_size, cfg.std_size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        mouth = lms[t, MOUTH] @ m[:, :2].T + m[:, 2]
        patch = _cut(warped, mouth.mean(axis=0), cfg.crop_size)
        out[t] = cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2GRAY)
    return out


def lip_input(rois: np.ndarray, cfg: MouthROIConfig = MouthROIConfig()) -> np.ndarray:
    """uint8 [T,crop,crop] -> float32 [T,1,roi,roi]: /255, centre crop, (x - mean) / std (AV-HuBERT's transform)."""
    rois = np.asarray(rois)
    if rois.ndim != 3 or rois.shape[1] < cfg.roi_size or rois.shape[2] < cfg.roi_size:
        raise ValueError(f"expected ROIs [T,H,W] of at least {cfg.roi_size}px, got {rois.shape}")
    top, left = (rois.shape[1] - cfg.roi_size) // 2, (rois.shape[2] - cfg.roi_size) // 2
    x = rois[:, top:top + cfg.roi_size, left:left + cfg.roi_size].astype(np.float32) / 255.0
    return ((x - cfg.mean) / cfg.std)[:, None]
