"""Cut face crops out of frames, and paste generated crops back (dubbing) under a feathered mask.

Boxes are integer-valued float [T, 4] (x0, y0, x1, y1) inside the frame, as `track.square_boxes` gives them, so that
crop and paste-back use exactly the same pixels.
"""

from __future__ import annotations

import cv2
import numpy as np


def crop_frames(frames: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """uint8 [n, H, W, 3] frames and [n, 4] boxes -> uint8 [n, size, size, 3] crops.

    INTER_AREA when shrinking (anti-aliased, what a face box of 200+ px to 96 px needs), INTER_LINEAR when enlarging."""
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, (frame, box) in enumerate(zip(frames, boxes)):
        x0, y0, x1, y1 = (int(v) for v in box)
        patch = frame[y0:y1, x0:x1]
        if patch.size == 0:
            raise ValueError(f"empty crop box {box.tolist()} for a frame of {frame.shape[1]}x{frame.shape[0]}")
        interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
        out[i] = cv2.resize(np.ascontiguousarray(patch), (size, size), interpolation=interp)
    return out


def feather_mask(height: int, width: int, feather: float) -> np.ndarray:
    """float32 [height, width] mask: 1 inside, ramping smoothly to 0 at the border over `feather` x min(h, w) pixels.

    feather = 0 gives a hard rectangle of ones."""
    ramp = feather * min(height, width)
    if ramp <= 0:
        return np.ones((height, width), np.float32)
    y = np.minimum(np.arange(height) + 0.5, height - np.arange(height) - 0.5) / ramp
    x = np.minimum(np.arange(width) + 0.5, width - np.arange(width) - 0.5) / ramp
    d = np.clip(np.minimum(y[:, None], x[None, :]), 0.0, 1.0)
    return (d * d * (3 - 2 * d)).astype(np.float32)  # smoothstep: no visible seam where the ramp starts


def paste_back(frame: np.ndarray, crop: np.ndarray, box: np.ndarray, feather: float = 0.1,
               region: str = "full") -> np.ndarray:
    """Blend `crop` (uint8 [S, S, 3]) into a copy of `frame` (uint8 [H, W, 3]) at `box`.

    region="lower" pastes only the lower half of the box (the mouth region a lip-sync generator changes), with the
    feathered edge at the half line too. Returns uint8 [H, W, 3]."""
    x0, y0, x1, y1 = (int(v) for v in box)
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        raise ValueError(f"empty paste box {np.asarray(box).tolist()}")
    patch = cv2.resize(np.ascontiguousarray(crop), (w, h),
                       interpolation=cv2.INTER_LINEAR if w >= crop.shape[1] else cv2.INTER_AREA).astype(np.float32)
    if region == "full":
        mask = feather_mask(h, w, feather)
    elif region == "lower":
        mask = np.zeros((h, w), np.float32)
        top = h // 2
        mask[top:] = feather_mask(h - top, w, feather)
    else:
        raise ValueError(f"paste region must be 'full' or 'lower', got {region!r}")
    out = frame.copy()
    dst = out[y0:y1, x0:x1].astype(np.float32)
    m = mask[..., None]
    out[y0:y1, x0:x1] = np.clip(m * patch + (1 - m) * dst + 0.5, 0, 255).astype(np.uint8)
    return out


def ellipse_mask(height: int, width: int, ellipse: tuple[float, float, float, float], feather: float) -> np.ndarray:
    """float32 [height, width]: 1 inside the ellipse (cx, cy, rx, ry as fractions of width / height), falling to 0 at
    its rim by a smoothstep over the outer `feather` share of the radius. A face crop's lower face is close to an
    ellipse, so the pasted region follows the jaw instead of showing a box edge on the cheeks."""
    cx, cy, rx, ry = ellipse
    if rx <= 0 or ry <= 0 or not 0 < feather <= 1:
        raise ValueError(f"ellipse radii must be > 0 and feather in (0, 1], got {ellipse}, {feather}")
    y = ((np.arange(height, dtype=np.float32) + 0.5) / height - cy) / ry
    x = ((np.arange(width, dtype=np.float32) + 0.5) / width - cx) / rx
    r = np.sqrt(y[:, None] ** 2 + x[None, :] ** 2)  # 1 on the rim
    t = np.clip((1.0 - r) / feather, 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def colour_offset(generated: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float32 [3]: mean of (original - generated) per channel, weighted by 4 m (1 - m), the blend band of `mask`
    (where a colour difference would show as a seam). Crops uint8 [S, S, 3], mask float [S, S]."""
    w = 4.0 * mask * (1.0 - mask)
    total = float(w.sum())
    if total <= 0:
        return np.zeros(3, np.float32)
    diff = original.astype(np.float32) - generated.astype(np.float32)
    return (diff * w[..., None]).reshape(-1, 3).sum(0) / total


def paste_face(out: np.ndarray, crop: np.ndarray, original: np.ndarray, box: np.ndarray,
               ellipse: tuple[float, float, float, float], feather: float, colour_match: bool) -> None:
    """Blend the lower face of a generated crop (uint8 [S, S, 3]) into `out` (uint8 [H, W, 3], in place) at `box`
    under a feathered ellipse; with `colour_match`, the crop is first shifted by its colour offset to the `original`
    crop (the same box of the input frame) in the blend band. Touches only the pixels of the box."""
    x0, y0, x1, y1 = (int(v) for v in box)
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        raise ValueError(f"empty paste box {np.asarray(box).tolist()}")
    patch = crop.astype(np.float32)
    if colour_match:
        patch += colour_offset(crop, original, ellipse_mask(*crop.shape[:2], ellipse, feather))
    patch = cv2.resize(patch, (w, h), interpolation=cv2.INTER_LINEAR if w >= crop.shape[1] else cv2.INTER_AREA)
    m = ellipse_mask(h, w, ellipse, feather)[..., None]
    dst = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(m * patch + (1 - m) * dst + 0.5, 0, 255).astype(np.uint8)
