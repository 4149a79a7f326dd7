"""Putting a generated face crop back into a full frame so that it does not show: a feathered ellipse over mouth and
chin, colours matched to the frame in the blend band, and the frame's own fine detail restored where the generated
face agrees with it (dubbing only; the training crops and the evaluation's reference framing use faces.crop).

    paste_face(frame, generated_crop, original_crop, box, ellipse, feather, colour_match, detail_tolerance, sharpen)
"""

from __future__ import annotations

import cv2
import numpy as np

from ..models.generator import ellipse_mask  # the one ellipse formula (also the generator's paint region)

__all__ = ["colour_offset", "ellipse_mask", "paste_face", "restore_detail", "unsharp"]


def colour_offset(generated: np.ndarray, original: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """float32 [3]: mean of (original - generated) per channel, weighted by 4 m (1 - m), the blend band of `mask`
    (where a colour difference would show as a seam). Crops uint8 [S, S, 3], mask float [S, S]."""
    w = 4.0 * mask * (1.0 - mask)
    total = float(w.sum())
    if total <= 0:
        return np.zeros(3, np.float32)
    diff = original.astype(np.float32) - generated.astype(np.float32)
    return (diff * w[..., None]).reshape(-1, 3).sum(0) / total


def upscale_sigma(scale: float) -> float:
    """Gaussian sigma at the scale of a crop upscaled `scale` times (its finest band): the blur of restore_detail and
    unsharp, and with it how far a blur reaches."""
    return max(0.5, 0.5 * scale)


def restore_detail(patch: np.ndarray, dst: np.ndarray, scale: float, tolerance: float) -> np.ndarray:
    """float32 [h, w, 3]: the upscaled generated `patch` plus the high frequencies of the frame's own pixels `dst`
    (what a 96-px crop cannot carry: skin texture, stubble, lip detail), weighted per pixel by how well the two agree
    at the crop's resolution: 1 where their low-pass images match, falling linearly to 0 at a mean absolute
    difference of `tolerance` grey levels. Where the generated mouth differs from the original (the new speech), the
    generated pixels stay as they are, so no ghost of the old mouth shows. `scale`: box side / crop side."""
    sigma = upscale_sigma(scale)
    low_dst = cv2.GaussianBlur(dst, (0, 0), sigma)
    diff = cv2.GaussianBlur(patch, (0, 0), sigma)
    diff -= low_dst  # in place from here on: at 4K each of these is a 27 MB float image
    np.abs(diff, out=diff)
    agree = diff.mean(-1, keepdims=True)
    del diff
    agree *= -1.0 / tolerance
    agree += 1.0
    np.clip(agree, 0.0, 1.0, out=agree)
    np.subtract(dst, low_dst, out=low_dst)  # the frame's high frequencies
    low_dst *= agree
    return patch + low_dst


def unsharp(patch: np.ndarray, scale: float, amount: float) -> np.ndarray:
    """float32 [h, w, 3]: unsharp mask of an upscaled crop, patch + amount x (patch - blur(patch)), with the blur at the
    upscaling's own scale (sigma = scale / 2). A 96-px crop upscaled `scale` times has lost its finest band; this
    boosts the band just under it, so lips and teeth edges are as crisp as the frame around them. It adds no detail
    that the crop does not have."""
    if amount <= 0:
        return patch
    low = cv2.GaussianBlur(patch, (0, 0), upscale_sigma(scale))
    return patch + amount * (patch - low)


def paste_face(out: np.ndarray, crop: np.ndarray, original: np.ndarray, box: np.ndarray,
               ellipse: tuple[float, float, float, float], feather: float, colour_match: bool,
               detail_tolerance: float = 0.0, sharpen: float = 0.0) -> None:
    """Blend the lower face of a generated crop (uint8 [S, S, 3]) into `out` (uint8 [H, W, 3], in place) at `box`
    under a feathered ellipse; with `colour_match`, the crop is first shifted by its colour offset to the `original`
    crop (the same box of the input frame) in the blend band; `detail_tolerance` > 0 restores the frame's own fine
    detail where the generated face agrees with it (`restore_detail`); `sharpen` > 0 applies `unsharp` to the upscaled
    generated face first. Touches only the pixels of the box."""
    x0, y0, x1, y1 = (int(v) for v in box)
    w, h = x1 - x0, y1 - y0
    if w <= 0 or h <= 0:
        raise ValueError(f"empty paste box {np.asarray(box).tolist()}")
    patch = crop.astype(np.float32)
    if colour_match:
        patch += colour_offset(crop, original, ellipse_mask(*crop.shape[:2], ellipse, feather))
    patch = cv2.resize(patch, (w, h), interpolation=cv2.INTER_LINEAR if w >= crop.shape[1] else cv2.INTER_AREA)
    m = ellipse_mask(h, w, ellipse, feather)
    # Work on the ellipse's bounding rows and columns only (plus the blurs' reach): outside it the mask is 0, and a
    # 1500-px box of a 4K face would otherwise need ~8 float copies of 27 MB for pixels that do not change.
    scale = w / crop.shape[1]
    reach = int(np.ceil(3 * upscale_sigma(scale))) + 1
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if len(rows) == 0:
        return
    r0, r1 = max(0, rows[0] - reach), min(h, rows[-1] + 1 + reach)
    c0, c1 = max(0, cols[0] - reach), min(w, cols[-1] + 1 + reach)
    patch, m = patch[r0:r1, c0:c1], m[r0:r1, c0:c1, None]
    region = out[y0 + r0: y0 + r1, x0 + c0: x0 + c1]
    dst = region.astype(np.float32)
    patch = unsharp(patch, scale, sharpen)
    if detail_tolerance > 0:
        patch = restore_detail(patch, dst, scale, detail_tolerance)
    patch -= dst  # blend in place: dst + m (patch - dst)
    patch *= m
    patch += dst + 0.5
    region[...] = np.clip(patch, 0, 255).astype(np.uint8)
