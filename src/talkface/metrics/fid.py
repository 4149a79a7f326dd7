"""Fréchet Inception Distance (P1 appendix D eq. F), pytorch-fid protocol.

Features: pool3 (2048-d) of the FID InceptionV3 (`talkface.models.inception`) over every frame, real and generated.
Statistics: mean and covariance with the unbiased (N - 1) normalisation, as numpy.cov. Distance, in float64:

    FID = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2))

with scipy.linalg.sqrtm; when the product is singular a 1e-6 ridge is added to both covariances and the square root
is retried, and a complex result with a negligible imaginary diagonal is reduced to its real part (pytorch-fid).
P1 prints |mu1 - mu2| without the square; the FID definition (Heusel et al.) squares it, and so do we.

`FeatureStats` accumulates sums in float64 so that any number of frames can stream through without keeping them.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from scipy import linalg
from tqdm import tqdm

from ..models.inception import FIDInceptionV3


class FeatureStats:
    """Running mean and covariance of feature vectors [N, D] (float64 sums)."""

    def __init__(self, dim: int = 2048):
        self.dim = dim
        self.n = 0
        self.total = np.zeros(dim, dtype=np.float64)
        self.outer = np.zeros((dim, dim), dtype=np.float64)

    def update(self, feats) -> None:
        f = np.asarray(feats.detach().cpu() if isinstance(feats, torch.Tensor) else feats, dtype=np.float64)
        if f.ndim != 2 or f.shape[1] != self.dim:
            raise ValueError(f"expected features [N,{self.dim}], got {f.shape}")
        self.n += f.shape[0]
        self.total += f.sum(axis=0)
        self.outer += f.T @ f

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2:
            raise ValueError(f"FID needs at least 2 feature vectors per set, got {self.n}")
        mu = self.total / self.n
        cov = (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)
        return mu, cov


def mean_cov(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean [D] and covariance [D,D] of features [N,D] (numpy.cov, rowvar=False)."""
    f = np.asarray(feats, dtype=np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), float64."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(f"mismatched statistics: {mu1.shape}/{mu2.shape}, {sigma1.shape}/{sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"FID: imaginary component {np.max(np.abs(covmean.imag)):.3g} in sqrtm")
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fid_from_features(real, generated) -> float:
    """FID between two feature sets [N1,D] and [N2,D]."""
    return frechet_distance(*mean_cov(real), *mean_cov(generated))


@torch.no_grad()
def accumulate_features(
    model: FIDInceptionV3,
    batches: Iterable[torch.Tensor],
    stats: FeatureStats | None = None,
    device: str | torch.device = "cpu",
    desc: str | None = None,
) -> FeatureStats:
    """Run batches of RGB images [B,3,H,W] in [0,1] through the FID Inception and add their features to `stats`."""
    stats = stats or FeatureStats(2048)
    for images in tqdm(batches, desc=desc or "FID features", leave=False):
        stats.update(model(images.to(device, torch.float32)))
    return stats


def fid_from_stats(real: FeatureStats, generated: FeatureStats) -> float:
    return frechet_distance(*real.mean_cov(), *generated.mean_cov())
