"""SSIM / PSNR against scikit-image, IFC and LMD against hand-computed answers."""

import math

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from talkface.metrics.image import frames_to_batch, mean_finite, psnr, ssim
from talkface.metrics.landmarks import lmd
from talkface.metrics.temporal import ifc


def _pair(seed=0, shape=(2, 3, 24, 31)):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g)
    y = (x + 0.1 * torch.randn(shape, generator=g)).clamp(0, 1)
    return x, y


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_ssim_psnr_match_scikit_image(scale):
    x, y = _pair()
    x, y = x * scale, y * scale
    ours_ssim, ours_psnr = ssim(x, y, data_range=scale), psnr(x, y, data_range=scale)
    for i in range(x.shape[0]):
        xi, yi = x[i].permute(1, 2, 0).double().numpy(), y[i].permute(1, 2, 0).double().numpy()
        ref = structural_similarity(xi, yi, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                    channel_axis=-1, data_range=scale)
        assert abs(float(ours_ssim[i]) - ref) < 1e-4
        assert abs(float(ours_psnr[i]) - peak_signal_noise_ratio(xi, yi, data_range=scale)) < 1e-4


def test_ssim_float32_matches_float64():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(4, 3, 40, 33, generator=g), torch.rand(4, 3, 40, 33, generator=g)
    y = 0.6 * x + 0.4 * y
    s64, s32 = ssim(x, y), ssim(x, y, dtype=torch.float32)
    assert s64.dtype == torch.float64 and s32.dtype == torch.float32
    assert torch.allclose(s64, s32.double(), atol=1e-5)


def test_identical_and_shifted_images():
    x, _ = _pair(1, (1, 3, 32, 32))
    assert float(ssim(x, x)) == pytest.approx(1.0, abs=1e-9)
    assert math.isinf(float(psnr(x, x))) and float(psnr(x, x)) > 0
    assert float(psnr(x, x, max_db=100.0)) == 100.0
    shifted = torch.roll(x, 1, dims=3)
    s, p = float(ssim(x, shifted)), float(psnr(x, shifted))
    assert -1.0 < s < 1.0 - 1e-3 and 0.0 < p < 100.0
    assert mean_finite(torch.tensor([math.inf, 10.0, 20.0])) == 15.0


def test_bad_shapes_are_errors():
    with pytest.raises(ValueError, match="differ in shape"):
        ssim(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_frames_to_batch():
    frames = np.full((2, 4, 5, 3), 255, np.uint8)
    b = frames_to_batch(frames)
    assert b.shape == (2, 3, 4, 5) and float(b.max()) == 1.0


def test_ifc_known_answers():
    g = torch.Generator().manual_seed(0)
    gt = torch.rand(6, 3, 8, 8, generator=g)
    assert ifc(gt, gt) == 0.0
    assert ifc(gt + 0.2, gt) == pytest.approx(0.0, abs=1e-6)  # a constant offset has the same motion
    gen = gt.clone()
    gen[2] += 0.1  # frame 2 brighter: transitions 1->2 (+0.1) and 2->3 (-0.1) differ, the other 3 do not
    assert ifc(gen, gt, "rms") == pytest.approx(2 * 0.1 / 5)
    assert ifc(gen, gt, "mean_abs") == pytest.approx(2 * 0.1 / 5)
    assert ifc(gen, gt, "l2") == pytest.approx(2 * 0.1 * math.sqrt(3 * 64) / 5)
    shifted = torch.roll(gt, 1, dims=3)
    assert 0.0 < ifc(shifted, gt) < 1.0
    with pytest.raises(ValueError, match="T>=2"):
        ifc(gt[:1], gt[:1])


def test_lmd_known_answers():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 96, (4, 68, 2)).astype(np.float32)
    assert lmd(gt, gt, 96) == 0.0
    gen = gt.copy()
    gen[:, 48:68] += np.array([3.0, 4.0], np.float32)  # every mouth point 5 px away
    gen[:, :48] += 50.0                                # other landmarks do not count
    assert lmd(gen, gt, 96) == pytest.approx(5.0)
    assert lmd(gen, gt, source_size=96, eval_size=48) == pytest.approx(2.5)
    gen[1] = np.nan                                    # a frame without detection is skipped
    assert lmd(gen, gt, 96) == pytest.approx(5.0)
    one_px = gt.copy()
    one_px[:, 48:68, 0] += 1.0
    assert lmd(one_px, gt, 96) == pytest.approx(1.0)
    assert math.isnan(lmd(np.full_like(gt, np.nan), gt, 96))
