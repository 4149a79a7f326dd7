"""SSIM and PSNR for batches of images (P1 appendix D, eqs. C-E), in torch.

SSIM follows Wang et al. 2004 as scikit-image computes it with `gaussian_weights=True, sigma=1.5,
use_sample_covariance=False`: an 11x11 Gaussian window (sigma 1.5, truncated at 3.5 sigma), K1 = 0.01, K2 = 0.03,
C_i = (K_i * data_range)^2, the SSIM map averaged over the pixels whose window lies inside the image, and over
channels. Computed in float64, so it agrees with scikit-image to ~1e-7.

PSNR = 10 log10(data_range^2 / MSE), MSE over all pixels and channels of one image. P1 writes max(I')^2 in the
numerator; like every public implementation we use the data range (1 for images in [0, 1]). Identical images give
MSE 0 and PSNR +inf; pass `max_db` to cap it (the evaluate stage records the cap it used).
"""

from __future__ import annotations

import math

import torch


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.shape != y.shape:
        raise ValueError(f"image batches differ in shape: {list(x.shape)} vs {list(y.shape)}")
    if x.dim() != 4:
        raise ValueError(f"expected images [B,C,H,W], got {list(x.shape)}")


def gaussian_kernel1d(sigma: float = 1.5, truncate: float = 3.5, dtype=torch.float64) -> torch.Tensor:
    """Normalised 1-d Gaussian of radius int(truncate * sigma + 0.5) (11 taps for sigma 1.5), as scipy.ndimage."""
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=dtype)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def valid_filter_matrix(taps: torch.Tensor, n: int) -> torch.Tensor:
    """[n - len(taps) + 1, n] banded matrix M with (M @ x)[i] = sum_j taps[j] x[i + j]: a 'valid' 1-d correlation."""
    win = taps.numel()
    m = torch.zeros(n - win + 1, n, dtype=taps.dtype, device=taps.device)
    for i in range(n - win + 1):
        m[i, i:i + win] = taps
    return m


def ssim(
    x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Mean SSIM per image. x, y: [B,C,H,W] on the same scale -> [B] in `dtype` (float64 for the metric; the loss
    uses float32, within 1e-5 of it).

    The window is only evaluated where it lies fully inside the image (scikit-image crops the same border after
    filtering), so H and W must be at least the window size (11).
    """
    _check_pair(x, y)
    g = gaussian_kernel1d(sigma, dtype=dtype).to(x.device)
    win = g.numel()
    b, c, h, w = x.shape
    if h < win or w < win:
        raise ValueError(f"SSIM needs images of at least {win}x{win}, got {h}x{w}")
    x = x.to(dtype).reshape(b * c, h, w)
    y = y.to(dtype).reshape(b * c, h, w)

    rows, cols = valid_filter_matrix(g, h), valid_filter_matrix(g, w)

    def blur(img: torch.Tensor) -> torch.Tensor:  # separable 'valid' Gaussian filter as two matrix products
        return rows @ img @ cols.T  # (5-9x faster than conv2d with a one-channel kernel on a CPU)

    stacked = blur(torch.cat([x, y, x * x, y * y, x * y], dim=0))
    ux, uy, uxx, uyy, uxy = stacked.chunk(5, dim=0)
    vx, vy, vxy = uxx - ux * ux, uyy - uy * uy, uxy - ux * uy
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return s.reshape(b, c, -1).mean(dim=(1, 2))


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, max_db: float | None = None) -> torch.Tensor:
    """PSNR per image in dB. x, y: [B,C,H,W] -> [B] float64; +inf for identical images unless `max_db` caps it."""
    _check_pair(x, y)
    mse = (x.to(torch.float64) - y.to(torch.float64)).pow(2).flatten(1).mean(dim=1)
    out = 10.0 * torch.log10(data_range**2 / mse)  # mse 0 -> +inf
    if max_db is not None:
        out = out.clamp(max=max_db)
    return out


def frames_to_batch(frames) -> torch.Tensor:
    """uint8 or float frames [T,H,W,3] (numpy or torch) -> float [T,3,H,W] in [0, 1]."""
    t = torch.as_tensor(frames)
    if t.dim() != 4 or t.shape[-1] not in (1, 3):
        raise ValueError(f"expected frames [T,H,W,C], got {list(t.shape)}")
    t = t.permute(0, 3, 1, 2)
    return t.float() / 255.0 if t.dtype == torch.uint8 else t.float()


def mean_finite(values: torch.Tensor) -> float:
    """Mean over the finite entries (PSNR of identical frames is +inf); nan when none is finite."""
    v = values[torch.isfinite(values)]
    return float(v.mean()) if v.numel() else math.nan
