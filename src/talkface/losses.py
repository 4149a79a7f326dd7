"""Loss terms of both papers (METHOD.md §5). Each returns an unweighted scalar; the caller applies LossConfig weights.

- plain_sync_loss:      Wav2Lip lip-sync loss, BCE of cos with target 1 = -log(cos)
- expert_bce_loss:      BCE(cos, label) for training a sync expert (aligned 1, shifted 0)
- stabilized_sync_loss: P1's L_ss from x = sim(generated, A), y = sim(GT, A), d = sim(identity reference, A)
- avhubert_sync_loss:   P2's -log(cos) of AV-HuBERT features over the k generated steps (all three variants)
- adaptive_triplet_loss: max(0, D(G,GT) - D(G,R) + alpha D(GT,R)) [ours: formula not public]
- PerceptualLoss:       VGG-19 feature distance over chosen layers: P2's Eq. 2 form, sum_i c_i ||phi_i(a) - phi_i(b)||_2
                        (`perceptual_form: p2`), or Johnson et al.'s feature loss, squared L2 / (C H W) (`johnson`)
- StructuralLoss:       1 - SSIM [ours], the labelled substitute of the perceptual term when no VGG-19 weights exist
- gan_generator_loss / gan_discriminator_loss: non-saturating BCE-with-logits GAN
- pixel_loss:           L1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .models.vgg import DEFAULT_LAYERS, VGG19Features

PERCEPTUAL_FORMS = ("p2", "johnson")
SYNC_KINDS = ("none", "plain", "stabilized", "avhubert_unsupervised", "avhubert_visual", "avhubert_multimodal")


@dataclass
class LossConfig:
    """Loss weights (P1 defaults: L = L_GAN + 10 L_pixel + 1 L_per + 2 L_ss + 0.5 L_at) and term settings."""

    gan: float = 1.0
    pixel: float = 10.0
    perceptual: float = 1.0
    sync: float = 2.0  # weight of the selected sync term (P2 uses 0.5 with its AV-HuBERT loss)
    triplet: float = 0.5
    pixel_mouth_weight: float = 0.0  # [ours] extra L1 weight inside the mouth box (generator `mouth` section); 0 = plain L1
    sync_kind: str = "stabilized"  # none | plain | stabilized | avhubert_unsupervised | avhubert_visual | avhubert_multimodal
    sync_eps: float = 1e-6  # eps of L_ss (numerator and denominator)
    sync_clamp_min: float = 1e-6  # floor of every log argument: a score of 0 gives a finite loss
    triplet_alpha: float = 0.5  # adaptive margin factor; must be <= 1 so a perfect output scores 0 [ours]
    triplet_distance: str = "perceptual"  # perceptual | pixel
    triplet_region: str = "upper"  # face part compared by the triplet: full | upper | lower (pose leaks show above the mouth)
    perceptual_layers: list[str] = field(default_factory=lambda: list(DEFAULT_LAYERS))
    perceptual_weights: list[float] = field(default_factory=lambda: [1.0] * len(DEFAULT_LAYERS))
    perceptual_form: str = "johnson"  # p2 (Eq. 2: sum_i c_i ||phi_i diff||_2) | johnson (squared L2 / (C H W))
    perceptual_fallback: str = "none"  # without VGG-19 weights: none (term off) | ssim (1 - SSIM, labelled) [ours]
    vgg_path: str = ""  # empty: vgg19-dcbb9e9d.pth from the torch hub cache

    def __post_init__(self) -> None:
        if self.sync_kind not in SYNC_KINDS:
            raise ValueError(f"loss.sync_kind must be one of {SYNC_KINDS}, got '{self.sync_kind}'")
        if self.triplet_distance not in ("perceptual", "pixel"):
            raise ValueError(f"loss.triplet_distance must be perceptual or pixel, got '{self.triplet_distance}'")
        if self.triplet_region not in REGIONS:
            raise ValueError(f"loss.triplet_region must be one of {REGIONS}, got '{self.triplet_region}'")
        if self.perceptual_form not in PERCEPTUAL_FORMS:
            raise ValueError(f"loss.perceptual_form must be one of {PERCEPTUAL_FORMS}, got '{self.perceptual_form}'")
        if self.perceptual_fallback not in ("none", "ssim"):
            raise ValueError(f"loss.perceptual_fallback must be none or ssim, got '{self.perceptual_fallback}'")
        if len(self.perceptual_layers) != len(self.perceptual_weights):
            raise ValueError(f"loss.perceptual_layers ({len(self.perceptual_layers)}) and perceptual_weights "
                             f"({len(self.perceptual_weights)}) differ in length")


def weighted_total(terms: dict[str, torch.Tensor], cfg: LossConfig) -> torch.Tensor:
    """Sum of cfg.<name> * term over the given terms (names: gan, pixel, perceptual, sync, triplet)."""
    unknown = set(terms) - {"gan", "pixel", "perceptual", "sync", "triplet"}
    if unknown:
        raise ValueError(f"unknown loss term(s) {sorted(unknown)}")
    return sum(getattr(cfg, name) * value for name, value in terms.items())


# ---------------------------------------------------------------- sync losses
def plain_sync_loss(cos: torch.Tensor, clamp_min: float = 1e-6) -> torch.Tensor:
    """Wav2Lip lip-sync loss: mean of -log(cos), cos [B] in [0,1] from a (frozen) expert on generated frames."""
    return -torch.log(cos.float().clamp(min=clamp_min)).mean()


def expert_bce_loss(cos: torch.Tensor, label: torch.Tensor, clamp_min: float = 1e-6) -> torch.Tensor:
    """Training loss of a sync expert: BCE(cos, label), label 1 for aligned pairs and 0 for shifted ones.

    Written out (float32, logs floored at clamp_min) because F.binary_cross_entropy refuses to run under CUDA autocast.
    """
    cos, label = cos.float(), label.float()
    return -(label * torch.log(cos.clamp(min=clamp_min)) + (1 - label) * torch.log((1 - cos).clamp(min=clamp_min))).mean()


def stabilized_sync_loss(x: torch.Tensor, y: torch.Tensor, d: torch.Tensor, eps: float = 1e-6,
                         clamp_min: float = 1e-6) -> torch.Tensor:
    """P1's L_ss, mean over the batch. x, y, d: [B] expert similarities of generated / GT / identity ref vs audio.

    L = -log(1 - (|x-y| + eps) / (|x-y| + |y-d| + eps)): zero when the generated score equals the GT score, large when
    it is farther from GT than the reference is. y and d are targets: no gradient flows through them.
    """
    x, y, d = x.float(), y.detach().float(), d.detach().float()
    gap = (x - y).abs()
    ratio = (gap + eps) / (gap + (y - d).abs() + eps)
    return -torch.log((1.0 - ratio).clamp(min=clamp_min)).mean()


def avhubert_sync_loss(f_a: torch.Tensor, f_v: torch.Tensor, clamp_min: float = 1e-6) -> torch.Tensor:
    """P2's sync loss on AV-HuBERT features [B,T,D] of the k generated steps: -log(clamp(cos)), mean over B.

    cos is taken per time step and averaged over T. Used by all variants with different pairs: unsupervised (audio vs
    generated video), visual (generated vs GT video), multimodal (generated+audio vs GT+audio). AV-HuBERT cosines can
    be negative: those are clamped and give no gradient.
    """
    if f_a.shape != f_v.shape or f_a.dim() != 3:
        raise ValueError(f"avhubert_sync_loss: expected two [B,T,D] tensors, got {list(f_a.shape)}, {list(f_v.shape)}")
    cos = F.cosine_similarity(f_a.float(), f_v.float(), dim=-1).mean(dim=1)
    return -torch.log(cos.clamp(min=clamp_min)).mean()


def expert_sync_loss(expert: nn.Module, mel: torch.Tensor, generated: torch.Tensor, kind: str,
                     gt: torch.Tensor | None = None, reference: torch.Tensor | None = None,
                     eps: float = 1e-6, clamp_min: float = 1e-6) -> torch.Tensor:
    """Plain or stabilized sync loss through a frozen sync expert (models/expert.py interface).

    mel [B,1,80,16]; generated, gt, reference [B,k,3,S,S]. Gradient reaches `generated` only.
    """
    audio = expert.embed_audio(mel)
    x = expert.similarity(audio, expert.embed_video(generated))
    if kind == "plain":
        return plain_sync_loss(x, clamp_min)
    if kind == "stabilized":
        if gt is None or reference is None:
            raise ValueError("stabilized sync loss needs gt and reference frames")
        with torch.no_grad():
            y = expert.similarity(audio, expert.embed_video(gt))
            d = expert.similarity(audio, expert.embed_video(reference))
        return stabilized_sync_loss(x, y, d, eps, clamp_min)
    raise ValueError(f"expert_sync_loss: kind must be plain or stabilized, got '{kind}'")


# ---------------------------------------------------------------- reconstruction and perceptual
def pixel_loss(generated: torch.Tensor, gt: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """L1, mean over all elements; with `weights` [H,W] (broadcast over the rest), the weighted mean."""
    diff = (generated - gt).abs()
    if weights is None:
        return diff.mean()
    return (diff * weights).mean() / weights.mean()


def mouth_weights(size: int, box: tuple[float, float, float, float], extra: float) -> torch.Tensor:
    """float32 [size,size] pixel weights: 1 everywhere, 1 + extra inside the mouth box (top, bottom, left, right as
    fractions of the side) [ours]: the mouth is a small share of the face, so the plain L1 barely asks for it."""
    top, bottom, left, right = (int(round(f * size)) for f in box)
    if not (0 <= top < bottom <= size and 0 <= left < right <= size):
        raise ValueError(f"mouth box {box} is empty or outside a {size}x{size} face")
    w = torch.ones(size, size)
    w[top:bottom, left:right] += extra
    return w


REGIONS = ("full", "upper", "lower")


def face_region(frames: torch.Tensor, region: str) -> torch.Tensor:
    """[...,H,W] -> the upper half, lower half or all rows of each face."""
    h = frames.shape[-2]
    if region == "full":
        return frames
    if region == "upper":
        return frames[..., : h // 2, :]
    if region == "lower":
        return frames[..., h // 2 :, :]
    raise ValueError(f"region must be one of {REGIONS}, got '{region}'")


def _per_sample(d: torch.Tensor, batch: int) -> torch.Tensor:
    """[B*k] or [B] -> [B] (mean over the frames of a window)."""
    return d.reshape(batch, -1).mean(dim=1)


def pixel_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample mean absolute difference: [B,...] -> [B]."""
    return (a - b).abs().flatten(1).mean(dim=1)


class PerceptualLoss(nn.Module):
    """sum_i c_i * d(VGG_i(a), VGG_i(b)) over the chosen VGG-19 layers, d per `form`:
    "p2": ||.||_2 of the whole feature difference of a frame (P2 Eq. 2: not squared, not normalised);
    "johnson": squared L2 / (C H W), the mean squared feature difference (Johnson et al.'s feature loss).

    Accepts [B,k,3,H,W] (frames folded) or [N,3,H,W]. `distance` gives the per-sample value [B] (frames averaged);
    calling the module gives its batch mean.
    """

    def __init__(self, vgg: VGG19Features, layer_weights: list[float] | None = None, form: str = "johnson"):
        super().__init__()
        if form not in PERCEPTUAL_FORMS:
            raise ValueError(f"perceptual form must be one of {PERCEPTUAL_FORMS}, got '{form}'")
        self.form = form
        self.vgg = vgg
        weights = [1.0] * len(vgg.layers) if layer_weights is None else list(layer_weights)
        if len(weights) != len(vgg.layers):
            raise ValueError(f"{len(weights)} perceptual weights for {len(vgg.layers)} VGG layers")
        self.layer_weights = dict(zip(vgg.layers, weights))

    @classmethod
    def from_config(cls, cfg: LossConfig) -> "PerceptualLoss":
        """Loads VGG-19 (raises WeightsNotAvailable when the file is absent)."""
        vgg = VGG19Features.from_pretrained(cfg.vgg_path or None, cfg.perceptual_layers)
        return cls(vgg, cfg.perceptual_weights, cfg.perceptual_form)

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape:
            raise ValueError(f"perceptual distance: shapes differ {list(a.shape)} vs {list(b.shape)}")
        batch = a.shape[0]
        fa = self.vgg(a.reshape(-1, *a.shape[-3:]))
        fb = self.vgg(b.reshape(-1, *b.shape[-3:]))
        if self.form == "p2":
            total = sum(w * (fa[n] - fb[n]).flatten(1).norm(dim=1) for n, w in self.layer_weights.items())
        else:
            total = sum(w * (fa[n] - fb[n]).pow(2).flatten(1).mean(dim=1) for n, w in self.layer_weights.items())
        return _per_sample(total, batch)

    def forward(self, generated: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return self.distance(generated, gt).mean()


class StructuralLoss(nn.Module):
    """1 - SSIM (Gaussian 11x11, sigma 1.5, the metric's own definition) [ours]: what stands in for the perceptual
    term when the VGG-19 weights are absent, so that a run without them still has a structure-aware term. Not the
    papers' loss; runs that use it say so (`perceptual: substitute ...` in their metrics). Same interface as
    PerceptualLoss: `distance` -> [B], the module -> batch mean."""

    def distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        from .metrics.image import ssim

        if a.shape != b.shape:
            raise ValueError(f"structural distance: shapes differ {list(a.shape)} vs {list(b.shape)}")
        batch = a.shape[0]
        value = 1.0 - ssim(a.reshape(-1, *a.shape[-3:]), b.reshape(-1, *b.shape[-3:]), dtype=torch.float32)
        return _per_sample(value.to(a.dtype if a.dtype.is_floating_point else torch.float32), batch)

    def forward(self, generated: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
        return self.distance(generated, gt).mean()


def adaptive_triplet_loss(generated: torch.Tensor, gt: torch.Tensor, reference: torch.Tensor, alpha: float,
                          distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                          region: str = "full") -> torch.Tensor:
    """mean_B max(0, D(G,GT) - D(G,R) + alpha * D(GT,R)) on `region` of each face [ours, METHOD.md §5].

    Pulls the output toward GT and away from the identity reference R; the margin alpha*D(GT,R) adapts to how far GT
    and R already are. A perfect output scores max(0, (alpha-1) D(GT,R)) = 0 for alpha <= 1; copying R scores
    (1+alpha) D(GT,R). `distance(a, b)` -> [B] (pixel_distance or PerceptualLoss.distance).
    """
    g, t, r = (face_region(x, region) for x in (generated, gt, reference))
    with torch.no_grad():
        margin = alpha * distance(t, r)
    return torch.relu(distance(g, t) - distance(g, r) + margin).mean()


# ---------------------------------------------------------------- adversarial
def gan_generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: BCE-with-logits of D(generated) against 'real'."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def gan_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """BCE-with-logits(real -> 1) + BCE-with-logits(fake -> 0); pass fake logits of detached generated frames."""
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))
