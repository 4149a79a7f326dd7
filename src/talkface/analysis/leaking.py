"""Lip leaking and the silent-lip check: how much of the identity reference's mouth shows up in the output.

Mouth opening, two measures (both [N] per frame):
- `mouth_opening` (image-based, works on any frame, used for generated frames): the luminance contrast of a fixed
  mouth box of the face crop, std / mean of the luminance inside it (coefficient of variation, so skin tone and
  exposure cancel). An open mouth adds a dark cavity and bright teeth to the lips and skin; closed lips give a
  low-contrast box. The box is in crop-relative coordinates (crops are face-aligned by the crop stage: the mouth sits
  in the lower middle). On the synthetic data this tracks the landmark measure with a per-clip Pearson r of 0.85 on
  average (0.46..0.97; a dark-pixel-area measure scored 0.51). Caveat: blur also lowers contrast, so a blurry output
  reads as "more closed"; compare outputs of one generator with each other (leak correlation), not across models.
- `landmark_opening` (ground truth only, when landmarks exist): inner-lip gap / mouth width, iBUG 68 points
  mean(|61-67|, |62-66|, |63-65|) / |48-54|. Generated frames have no landmarks, so this only validates the image
  measure on real frames (`measure_agreement`).

Lip leaking [ours; P1 describes the effect, not a number]: the identity reference comes from another part of the
clip, so a generator that follows the audio gives outputs whose mouth opening does not depend on the reference's.
`lip_leak` reports the Pearson correlation between the reference's and the output's mouth opening over many windows
(1 = the output copies the reference's mouth, ~0 = no leak), and the partial correlation given the ground-truth
opening (which removes what the audio legitimately explains).

Silent check (G_S): fed silent audio, G_S should close the lips of its input: `silent_check` compares the mouth
opening of G_S's output with its input's and, on synthetic data, with the closed-lip ground truth (silent.npy).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch

LUMA = (0.299, 0.587, 0.114)
INNER_LIP_PAIRS = ((61, 67), (62, 66), (63, 65))


@dataclasses.dataclass
class MouthOpeningConfig:
    """Mouth box of a face crop, as fractions of the side (the image measure looks only inside it)."""

    top: float = 0.6
    bottom: float = 0.92
    left: float = 0.3
    right: float = 0.7


def mouth_box(frames: torch.Tensor, cfg: MouthOpeningConfig) -> torch.Tensor:
    """[...,3,H,W] -> [...,3,h,w] the mouth box."""
    h, w = frames.shape[-2:]
    t, b = int(round(cfg.top * h)), int(round(cfg.bottom * h))
    left, r = int(round(cfg.left * w)), int(round(cfg.right * w))
    if not (0 <= t < b <= h and 0 <= left < r <= w):
        raise ValueError(f"mouth box {cfg} is empty or outside a {h}x{w} frame")
    return frames[..., t:b, left:r]


def mouth_opening(frames: torch.Tensor, cfg: MouthOpeningConfig = MouthOpeningConfig()) -> torch.Tensor:
    """Image-based mouth opening (luminance contrast of the mouth box): frames [N,3,H,W] (or [B,k,3,H,W]) in [0,1]
    -> [N] (or [B,k]), >= 0."""
    if frames.dim() < 4 or frames.shape[-3] != 3:
        raise ValueError(f"mouth_opening: expected [...,3,H,W] frames, got {list(frames.shape)}")
    box = mouth_box(frames.float(), cfg)
    weights = torch.tensor(LUMA, dtype=box.dtype, device=box.device).view(3, 1, 1)
    luma = (box * weights).sum(dim=-3).flatten(-2)                       # [...,h*w]
    return luma.std(dim=-1, unbiased=False) / luma.mean(dim=-1).clamp(min=1e-3)


def landmark_opening(landmarks: np.ndarray | torch.Tensor) -> np.ndarray:
    """Inner-lip gap over mouth width from iBUG 68 landmarks [...,68,2] -> [...]; NaN where landmarks are NaN."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape[-2:] != (68, 2):
        raise ValueError(f"landmark_opening: expected [...,68,2], got {lm.shape}")
    gap = np.mean([np.linalg.norm(lm[..., a, :] - lm[..., b, :], axis=-1) for a, b in INNER_LIP_PAIRS], axis=0)
    width = np.linalg.norm(lm[..., 48, :] - lm[..., 54, :], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return gap / width


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two 1-d samples; NaN when either is constant or fewer than 3 finite pairs."""
    x, y = np.asarray(x, np.float64).ravel(), np.asarray(y, np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"pearson: samples differ in length: {x.shape} vs {y.shape}")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        return math.nan
    x, y = x - x.mean(), y - y.mean()
    denom = math.sqrt(float((x * x).sum() * (y * y).sum()))
    return float((x * y).sum() / denom) if denom > 0 else math.nan


def partial_correlation(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> float:
    """Correlation of x and y with the linear effect of z removed from both."""
    rxy, rxz, ryz = pearson(x, y), pearson(x, z), pearson(y, z)
    denom = math.sqrt(max(0.0, (1 - rxz**2) * (1 - ryz**2)))
    return (rxy - rxz * ryz) / denom if denom > 0 else math.nan


def lip_leak(reference_open: np.ndarray, output_open: np.ndarray, gt_open: np.ndarray | None = None) -> dict:
    """Lip-leak figures from per-window mouth openings (one value per window or per frame, same layout).

    Returns {"leak_corr": corr(reference, output), "leak_partial": corr(reference, output | GT) (when gt given),
    "n": sample count}.
    """
    out = {"leak_corr": pearson(reference_open, output_open), "n": int(np.asarray(reference_open).size)}
    if gt_open is not None:
        out["leak_partial"] = partial_correlation(reference_open, output_open, gt_open)
        out["gt_ref_corr"] = pearson(reference_open, gt_open)  # should be ~0: reference and target are disjoint
    return out


def silent_check(inputs_open: np.ndarray, outputs_open: np.ndarray, silent_gt_open: np.ndarray | None = None) -> dict:
    """G_S on silent audio: mean mouth opening of its inputs and outputs and the share of frames it closed more.

    `silent_gt_open`: the closed-lip ground truth's opening (synthetic data), for reference.
    """
    i, o = np.asarray(inputs_open, np.float64).ravel(), np.asarray(outputs_open, np.float64).ravel()
    out = {"input_opening": float(i.mean()), "output_opening": float(o.mean()),
           "share_closed_more": float((o < i).mean()), "output_smaller": bool(o.mean() < i.mean())}
    if silent_gt_open is not None:
        out["silent_gt_opening"] = float(np.asarray(silent_gt_open, np.float64).mean())
    return out


def measure_agreement(frames: torch.Tensor, landmarks: torch.Tensor,
                      cfg: MouthOpeningConfig = MouthOpeningConfig()) -> float:
    """Pearson correlation of the image measure and the landmark measure on real frames [N,3,H,W], [N,68,2]
    (how well the image measure tracks the mouth; NaN without landmarks)."""
    img = mouth_opening(frames, cfg).cpu().numpy()
    lmk = landmark_opening(landmarks.cpu().numpy() if torch.is_tensor(landmarks) else landmarks)
    return pearson(img, lmk)
