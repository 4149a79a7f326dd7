"""Test-time normalisation statistics: G_L's BatchNorm means and variances re-estimated on the video being dubbed.

    g_l_video = video_norm_stats(g_l, pose, identity, mels, cfg)   # a copy; g_l itself is untouched

A G_L trained on one face (GRID s1) normalises every face with that face's feature statistics. On a face it never saw
the features sit elsewhere, and the decoder's mouth units barely move: an unseen face dubbed with a GRID sentence
follows the sentence's true mouth at r = -0.01 (benchmarks/dub_quality.py --cross). Re-estimating the statistics on
windows of the video itself (AdaBN: Li et al., "Revisiting Batch Normalization For Practical Domain Adaptation",
2016) needs no labels and no gradient, takes a few forward passes, and is ours, not the papers'. Measured in
docs/dubbing.md.

The windows are the dub's own inputs (pose input, identity reference, mel of the new speech), so what is estimated is
the distribution G_L will see. `audio: true` re-estimates the frozen audio encoder's statistics on the new voice too.
"""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import torch
from torch import nn

from .reference import source_index

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@dataclasses.dataclass
class NormStatsConfig:
    enabled: bool = True  # re-estimate G_L's BatchNorm statistics on the video before dubbing it
    windows: int = 32  # windows spread evenly over the dub that estimate them (each k frames)
    batch: int = 2  # windows per forward pass, statistics pooled over passes (a 4K dub: 2.09 GB at 8, 1.95 at 2)
    audio: bool = True  # also the frozen audio encoder's statistics, on the new speech (the new voice)

    def __post_init__(self) -> None:
        if self.windows < 1 or self.batch < 1:
            raise ValueError(f"norm_stats.windows and norm_stats.batch must be >= 1, got {self.windows}, {self.batch}")


def batch_norms(gen: nn.Module, audio: bool) -> list[nn.modules.batchnorm._BatchNorm]:
    """G's BatchNorm layers, the audio encoder's only with `audio`."""
    return [m for name, m in gen.named_modules() if isinstance(m, _BATCH_NORMS)
            and (audio or not (name == "audio_encoder" or name.startswith("audio_encoder.")))]


@torch.no_grad()
def video_norm_stats(gen: nn.Module, pose: torch.Tensor, identity: torch.Tensor, mels: torch.Tensor,
                     cfg: NormStatsConfig) -> nn.Module:
    """A copy of `gen` in eval mode whose BatchNorm running statistics are those of these windows (pose, identity
    [n,k,3,S,S], mels [n,k,1,80,16]), run `cfg.batch` windows per forward pass (a fixed split, so they do not depend on
    how the dub batches its windows; one pass of 32 windows held 0.7 GB). Each layer's mean and variance are pooled
    over the passes (law of total variance: the variance of the whole set, not the mean of small batches' variances,
    which is too small), each pass normalised by its own batch statistics as in training; the weights are the same
    values. Returns `gen` itself when it has no BatchNorm layer to re-estimate (a GroupNorm generator, `audio` off)."""
    if len(pose) == 0 or not batch_norms(gen, cfg.audio):
        return gen
    video = copy.deepcopy(gen).eval()
    norms = batch_norms(video, cfg.audio)
    seen: dict[int, list[tuple[int, torch.Tensor, torch.Tensor]]] = {id(m): [] for m in norms}

    def record(module, inputs):
        x = inputs[0].float()
        dims = [d for d in range(x.dim()) if d != 1]
        seen[id(module)].append((x.numel() // x.shape[1], x.mean(dim=dims), x.var(dim=dims, unbiased=False)))

    hooks = [m.register_forward_pre_hook(record) for m in norms]
    for m in norms:
        m.train()  # each pass normalised by its own batch, as in training
    try:
        for i in range(0, len(pose), cfg.batch):
            video(pose[i: i + cfg.batch], identity[i: i + cfg.batch], mels[i: i + cfg.batch])
    finally:
        for h in hooks:
            h.remove()
    for m in norms:
        counts = torch.tensor([c for c, _, _ in seen[id(m)]], dtype=torch.float64)
        means = torch.stack([mu for _, mu, _ in seen[id(m)]]).double()
        variances = torch.stack([v for _, _, v in seen[id(m)]]).double()
        w = (counts / counts.sum())[:, None]
        mean = (w * means).sum(0)
        var = (w * (variances + (means - mean) ** 2)).sum(0)  # biased variance of the whole set
        total = counts.sum()
        m.running_mean.copy_(mean.to(m.running_mean.dtype))
        m.running_var.copy_((var * total / max(total - 1, 1)).to(m.running_var.dtype))  # unbiased, as BatchNorm keeps
    return video.eval()


def stats_windows(n_out: int, faces: np.ndarray, k: int, count: int, long_audio: str) -> list[tuple[int, int]]:
    """Up to `count` windows (output start t, source start s) spread evenly over the `n_out` output frames, each of
    k consecutive source frames that all have a face (`faces`: bool per frame of the video's first pass). The source
    frames are those the output shows at t (the video once, then looped or held: dubbing.timeline)."""
    n_source = len(faces)
    if n_out < k or n_source < k:
        return []
    ok = np.convolve(np.asarray(faces, np.int64), np.ones(k, np.int64), "valid") == k  # window [s, s + k) all faces
    starts = np.unique(np.linspace(0, n_out - k, min(count, n_out - k + 1)).round().astype(int))
    sources = np.minimum(source_index(starts, n_source, long_audio), n_source - k)
    return [(int(t), int(s)) for t, s in zip(starts, sources) if ok[s]]


__all__ = ["NormStatsConfig", "batch_norms", "stats_windows", "video_norm_stats"]
