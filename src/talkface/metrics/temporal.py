"""Inter-frame consistency, IFC (P1 appendix D eq. G).

P1: IFC = sum_{t=2..T} || mu(beta_t) - mu(beta_hat_t) ||_2, mu(beta_t) = beta_t - beta_{t-1}, the change between
consecutive frames in pixel space, beta the ground truth and beta_hat the generated video. The paper fixes neither
the pixel scale nor the normalisation of the norm (its values are ~0.2-0.35), so this project decides [ours]:

    IFC = 1/(T-1) * sum_{t=2..T} RMS(delta_gen_t - delta_gt_t)

with frames in [0, 1] and RMS = ||.||_2 / sqrt(number of values) over pixels and channels: the L2 norm of eq. G made
independent of the crop size, and the sum made independent of the clip length (a mean over transitions). Lower is
better; identical videos give 0. `norm="l2"` gives the raw per-frame L2 norm and `norm="mean_abs"` the mean absolute
value instead, for comparison; the chosen one is recorded with the result. Values are therefore not directly
comparable to P1's table.
"""

from __future__ import annotations

import torch

NORMS = ("rms", "l2", "mean_abs")


def ifc(generated: torch.Tensor, ground_truth: torch.Tensor, norm: str = "rms") -> float:
    """IFC of one video. generated, ground_truth: [T,C,H,W] in [0,1], T >= 2 -> float (lower is better)."""
    if generated.shape != ground_truth.shape:
        raise ValueError(f"videos differ in shape: {list(generated.shape)} vs {list(ground_truth.shape)}")
    if generated.dim() != 4 or generated.shape[0] < 2:
        raise ValueError(f"IFC needs videos [T>=2,C,H,W], got {list(generated.shape)}")
    if norm not in NORMS:
        raise ValueError(f"IFC norm must be one of {NORMS}, got {norm!r}")
    g, r = generated.to(torch.float64), ground_truth.to(torch.float64)
    residual = ((g[1:] - g[:-1]) - (r[1:] - r[:-1])).flatten(1)  # [T-1, C*H*W]
    if norm == "mean_abs":
        per_step = residual.abs().mean(dim=1)
    else:
        per_step = residual.norm(dim=1)
        if norm == "rms":
            per_step = per_step / residual.shape[1] ** 0.5
    return float(per_step.mean())
