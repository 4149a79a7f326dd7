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
