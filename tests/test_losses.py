"""Loss terms against hand-computed values on tiny tensors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from talkface.config import ConfigError, section
from talkface.losses import (LossConfig, mouth_weights, PerceptualLoss, adaptive_triplet_loss, avhubert_sync_loss, expert_bce_loss,
                             expert_sync_loss, face_region, gan_discriminator_loss, gan_generator_loss,
                             pixel_distance, pixel_loss, plain_sync_loss, stabilized_sync_loss, weighted_total)
from talkface.models.syncnet import SyncNet, SyncNetConfig
from talkface.models.vgg import VGG19Features

torch.set_num_threads(1)


def test_plain_sync_loss_known_cos():
    # -(ln 0.5 + ln 0.25) / 2 = 1.5 ln 2
    loss = plain_sync_loss(torch.tensor([0.5, 0.25]))
    assert math.isclose(loss.item(), 1.5 * math.log(2), rel_tol=1e-6)
    # equals BCE with target 1
    cos = torch.tensor([0.9, 0.3, 0.6])
    torch.testing.assert_close(plain_sync_loss(cos), F.binary_cross_entropy(cos, torch.ones(3)))
    assert math.isclose(plain_sync_loss(torch.tensor([0.0]), clamp_min=1e-6).item(), -math.log(1e-6), rel_tol=1e-6)


def test_expert_bce_loss_known_value():
    loss = expert_bce_loss(torch.tensor([0.8, 0.3]), torch.tensor([1, 0]))
    assert math.isclose(loss.item(), -(math.log(0.8) + math.log(0.7)) / 2, rel_tol=1e-6)


def test_stabilized_sync_loss_known_values():
    # x=0.5, y=0.7, d=0.2, eps=0: |x-y|=0.2, |y-d|=0.5, ratio=0.2/0.7=2/7, L=-ln(5/7)=ln(1.4)
    x = torch.tensor([0.5], requires_grad=True)
    y, d = torch.tensor([0.7], requires_grad=True), torch.tensor([0.2], requires_grad=True)
    loss = stabilized_sync_loss(x, y, d, eps=0.0)
    assert math.isclose(loss.item(), math.log(1.4), rel_tol=1e-6)
    # L = ln(a+b) - ln b with a=|x-y|, b=|y-d|: dL/dx = -1/(a+b) = -1/0.7 for x < y; y and d get no gradient.
    loss.backward()
    assert math.isclose(x.grad.item(), -1 / 0.7, rel_tol=1e-5)
    assert y.grad is None and d.grad is None

    # eps=0.01: ratio = 0.21 / 0.71, L = -ln(0.5 / 0.71)
    loss = stabilized_sync_loss(torch.tensor([0.5]), torch.tensor([0.7]), torch.tensor([0.2]), eps=0.01)
    assert math.isclose(loss.item(), -math.log(0.5 / 0.71), rel_tol=1e-5)
    # generated score equal to GT score: zero loss (eps=0)
    assert stabilized_sync_loss(torch.tensor([0.6]), torch.tensor([0.6]), torch.tensor([0.1]), eps=0.0).item() == 0.0
    # y == d: the ratio is 1, clamped -> -ln(clamp_min), finite
    loss = stabilized_sync_loss(torch.tensor([0.1]), torch.tensor([0.6]), torch.tensor([0.6]), eps=0.0, clamp_min=1e-4)
    assert math.isclose(loss.item(), -math.log(1e-4), rel_tol=1e-5)
    # batch mean: [ln 1.4, 0]
    loss = stabilized_sync_loss(torch.tensor([0.5, 0.6]), torch.tensor([0.7, 0.6]), torch.tensor([0.2, 0.1]), eps=0.0)
    assert math.isclose(loss.item(), math.log(1.4) / 2, rel_tol=1e-6)


def test_avhubert_sync_loss_known_value():
    f_a = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])  # [B=1, T=2, D=2]
    f_v = torch.tensor([[[3.0, 0.0], [1.0, 1.0]]])  # cos per step: 1, 1/sqrt(2)
    expected = -math.log((1 + 1 / math.sqrt(2)) / 2)
    assert math.isclose(avhubert_sync_loss(f_a, f_v).item(), expected, rel_tol=1e-6)
    opposite = avhubert_sync_loss(f_a, -f_a, clamp_min=1e-3)  # negative cosine -> floor
    assert math.isclose(opposite.item(), -math.log(1e-3), rel_tol=1e-5)
    with pytest.raises(ValueError, match=r"\[B,T,D\]"):
        avhubert_sync_loss(f_a, f_v[:, :1])


def test_expert_sync_loss_through_frozen_expert():
    torch.manual_seed(0)
    expert = SyncNet(SyncNetConfig(width=8)).freeze()
    mel = torch.randn(2, 1, 80, 16)
    generated = torch.rand(2, 5, 3, 96, 96, requires_grad=True)
    gt, ref = torch.rand(2, 5, 3, 96, 96), torch.rand(2, 5, 3, 96, 96)
    plain = expert_sync_loss(expert, mel, generated, "plain")
    with torch.no_grad():
        x, y, d = expert(mel, generated), expert(mel, gt), expert(mel, ref)
    torch.testing.assert_close(plain, -torch.log(x).mean())
    stab = expert_sync_loss(expert, mel, generated, "stabilized", gt=gt, reference=ref, eps=1e-3)
    torch.testing.assert_close(stab, stabilized_sync_loss(x, y, d, eps=1e-3))
    stab.backward()
    assert generated.grad is not None and generated.grad.abs().sum() > 0
    assert all(p.grad is None for p in expert.parameters())
    with pytest.raises(ValueError, match="needs gt and reference"):
        expert_sync_loss(expert, mel, generated, "stabilized")


def test_adaptive_triplet_loss_perfect_and_copy():
    torch.manual_seed(0)
    gt, ref = torch.rand(2, 5, 3, 16, 16), torch.rand(2, 5, 3, 16, 16)
    alpha = 0.5
    d_gt_ref = (gt[..., :8, :] - ref[..., :8, :]).abs().flatten(1).mean(1)  # upper half, per sample
    perfect = adaptive_triplet_loss(gt.clone(), gt, ref, alpha, pixel_distance, region="upper")
    assert perfect.item() == 0.0
    copy = adaptive_triplet_loss(ref.clone(), gt, ref, alpha, pixel_distance, region="upper")
    assert math.isclose(copy.item(), ((1 + alpha) * d_gt_ref).mean().item(), rel_tol=1e-5)
    # halfway (L1 is linear along the segment): D(G,GT) = D(G,R) = D/2 -> alpha * D
    half = adaptive_triplet_loss((gt + ref) / 2, gt, ref, alpha, pixel_distance, region="upper")
    assert math.isclose(half.item(), (alpha * d_gt_ref).mean().item(), rel_tol=1e-5)
    # the lower half is ignored for region="upper"
    changed = gt.clone()
    changed[..., 8:, :] = 0
    assert adaptive_triplet_loss(changed, gt, ref, alpha, pixel_distance, region="upper").item() == 0.0


def test_face_region_rows():
    x = torch.arange(4.0).view(1, 1, 4, 1).expand(1, 1, 4, 2)
    assert face_region(x, "upper")[0, 0, :, 0].tolist() == [0, 1]
    assert face_region(x, "lower")[0, 0, :, 0].tolist() == [2, 3]
    with pytest.raises(ValueError, match="region"):
        face_region(x, "middle")


def test_perceptual_loss_weighted_mse_of_features():
    torch.manual_seed(0)
    vgg = VGG19Features(layers=("relu1_1", "relu2_1"))  # random weights: the formula does not depend on them
    loss_fn = PerceptualLoss(vgg, [2.0, 0.5])
    a, b = torch.rand(2, 3, 3, 16, 16), torch.rand(2, 3, 3, 16, 16)  # [B,k,3,H,W]
    fa, fb = vgg(a.reshape(6, 3, 16, 16)), vgg(b.reshape(6, 3, 16, 16))
    expected = 2.0 * F.mse_loss(fa["relu1_1"], fb["relu1_1"]) + 0.5 * F.mse_loss(fa["relu2_1"], fb["relu2_1"])
    torch.testing.assert_close(loss_fn(a, b), expected)
    # relu1_1 by hand: ImageNet normalisation, first conv, ReLU
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    conv = vgg.features[0]
    x = a.reshape(6, 3, 16, 16)
    torch.testing.assert_close(fa["relu1_1"], F.relu(F.conv2d((x - mean) / std, conv.weight, conv.bias, padding=1)))
    assert loss_fn(a, a).item() == 0.0
    g = a.clone().requires_grad_(True)
    loss_fn(g, b).backward()
    assert g.grad.abs().sum() > 0 and all(p.grad is None for p in vgg.parameters())
    assert loss_fn.distance(a, b).shape == (2,)


def test_perceptual_loss_p2_form_is_the_unsquared_norm_per_frame():
    torch.manual_seed(0)
    vgg = VGG19Features(layers=("relu1_1", "relu2_1"))
    loss_fn = PerceptualLoss(vgg, [2.0, 0.5], form="p2")
    a, b = torch.rand(2, 3, 3, 16, 16), torch.rand(2, 3, 3, 16, 16)
    fa, fb = vgg(a.reshape(6, 3, 16, 16)), vgg(b.reshape(6, 3, 16, 16))
    per_frame = sum(w * torch.linalg.vector_norm((fa[n] - fb[n]).reshape(6, -1), dim=1)
                    for n, w in (("relu1_1", 2.0), ("relu2_1", 0.5)))
    torch.testing.assert_close(loss_fn.distance(a, b), per_frame.reshape(2, 3).mean(dim=1))
    # not squared: doubling the difference doubles the loss (the Johnson form would quadruple it at the first layer)
    assert loss_fn(a, a).item() == 0.0
    with pytest.raises(ValueError, match="perceptual form"):
        PerceptualLoss(vgg, [1.0, 1.0], form="l1")


def test_structural_substitute_is_one_minus_ssim():
    from talkface.losses import StructuralLoss
    from talkface.metrics.image import ssim

    torch.manual_seed(0)
    loss_fn = StructuralLoss()
    a, b = torch.rand(2, 3, 3, 32, 32), torch.rand(2, 3, 3, 32, 32)
    want = (1 - ssim(a.reshape(6, 3, 32, 32), b.reshape(6, 3, 32, 32))).reshape(2, 3).mean(dim=1)
    torch.testing.assert_close(loss_fn.distance(a, b).double(), want, rtol=1e-5, atol=1e-6)
    assert loss_fn(a, a).item() == pytest.approx(0.0, abs=1e-6)
    g = a.clone().requires_grad_(True)
    loss_fn(g, b).backward()
    assert g.grad.abs().sum() > 0


def test_gan_losses_known_values():
    zero = torch.zeros(2, 5)
    assert math.isclose(gan_generator_loss(zero).item(), math.log(2), rel_tol=1e-6)
    assert math.isclose(gan_discriminator_loss(zero, zero).item(), 2 * math.log(2), rel_tol=1e-6)
    # logit 2 for real and -2 for fake: 2 * softplus(-2)
    loss = gan_discriminator_loss(torch.full((1, 5), 2.0), torch.full((1, 5), -2.0))
    assert math.isclose(loss.item(), 2 * math.log1p(math.exp(-2)), rel_tol=1e-6)
    assert math.isclose(gan_generator_loss(torch.full((1, 5), -2.0)).item(), math.log1p(math.exp(2)), rel_tol=1e-6)


def test_pixel_loss_l1():
    assert math.isclose(pixel_loss(torch.tensor([0.0, 1.0, 0.5]), torch.tensor([0.5, 0.5, 0.5])).item(), 1 / 3,
                        rel_tol=1e-6)


def test_mouth_weighted_pixel_loss_known_answer():
    w = mouth_weights(10, (0.6, 0.9, 0.3, 0.7), 3.0)  # rows 6..8, cols 3..6: 12 pixels at weight 4
    assert w.sum().item() == 100 + 12 * 3 and w[7, 4].item() == 4.0 and w[0, 0].item() == 1.0
    gt = torch.zeros(2, 3, 10, 10)
    inside, outside = gt.clone(), gt.clone()
    inside[..., 7, 4] = 1.0   # one pixel wrong inside the box
    outside[..., 0, 0] = 1.0  # one pixel wrong outside it
    assert math.isclose(pixel_loss(inside, gt, w).item(), 4 / 136, rel_tol=1e-6)
    assert math.isclose(pixel_loss(outside, gt, w).item(), 1 / 136, rel_tol=1e-6)
    assert math.isclose(pixel_loss(inside, gt, torch.ones(10, 10)).item(), pixel_loss(inside, gt).item(), rel_tol=1e-6)
    with pytest.raises(ValueError, match="mouth box"):
        mouth_weights(10, (0.9, 0.6, 0.3, 0.7), 1.0)


def test_loss_config_defaults_and_validation():
    cfg = LossConfig()
    assert (cfg.gan, cfg.pixel, cfg.perceptual, cfg.sync, cfg.triplet) == (1.0, 10.0, 1.0, 2.0, 0.5)
    assert cfg.sync_kind == "stabilized"
    cfg = section({"loss": {"sync_kind": "avhubert_unsupervised", "sync": 0.5, "triplet": 0}}, "loss", LossConfig,
                  defaults=True)
    assert cfg.sync_kind == "avhubert_unsupervised" and cfg.sync == 0.5
    with pytest.raises(ValueError, match="sync_kind"):
        LossConfig(sync_kind="contrastive")
    with pytest.raises(ConfigError, match="unknown key"):
        section({"loss": {"sync_weight": 1}}, "loss", LossConfig, defaults=True)
    with pytest.raises(ConfigError, match="missing key 'loss.gan'"):  # what a stage reads is strict
        section({"loss": {"sync_kind": "none"}}, "loss", LossConfig)
    total = weighted_total({"pixel": torch.tensor(0.1), "sync": torch.tensor(0.5), "gan": torch.tensor(0.7)}, LossConfig())
    assert math.isclose(total.item(), 10 * 0.1 + 2 * 0.5 + 0.7, rel_tol=1e-6)
