"""SyncNet, the Wav2Lip lip-sync expert (METHOD.md §2).

Video tower: 5 RGB 96x96 faces, lower half only, stacked on channels -> [B,15,48,96]. Audio tower: one mel window
[B,1,80,16]. Both end in Conv+BN+ReLU blocks at 1x1, so the 512-d embeddings are non-negative; they are L2-normalised
and compared by cosine. Layer layout follows Wav2Lip's `SyncNet_color`; `width` scales the inner channels (32 = Wav2Lip).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .expert import SyncExpert
from .layers import AudioEncoder, ConvBlock, conv_stage


class FaceEncoder(nn.Module):
    """Wav2Lip SyncNet face encoder: [B,15,48,96] -> [B,out_dim,1,1], non-negative.

    48x96 -> 48x96 (k7) -> 46x47 (k5, stride 1,2) -> 23x24 -> 12x12 -> 6x6 -> 3x3 -> 1x1 (k3, no pad) -> 1x1 (k1).
    """

    def __init__(self, in_channels: int = 15, width: int = 32, out_dim: int = 512):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            ConvBlock(in_channels, w, 7, 1, 3),
            *conv_stage(w, 2 * w, 5, (1, 2), 1, 2),
            *conv_stage(2 * w, 4 * w, 3, 2, 1, 3),
            *conv_stage(4 * w, 8 * w, 3, 2, 1, 2),
            *conv_stage(8 * w, 16 * w, 3, 2, 1, 2),
            ConvBlock(16 * w, out_dim, 3, 2, 1),
            ConvBlock(out_dim, out_dim, 3, 1, 0),
            ConvBlock(out_dim, out_dim, 1, 1, 0),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@dataclass
class SyncNetConfig:
    """Wav2Lip lip expert. The input size is fixed by the layout (lower half 48x96 of a 96x96 face)."""

    k: int = 5  # frames per window (stacked on channels: 3k)
    width: int = 32  # base channels; 32 is Wav2Lip (32..512), smaller for CPU runs
    embed_dim: int = 512  # embedding size; a generator reusing the audio encoder expects 512


class SyncNet(SyncExpert):
    arch = "syncnet"

    def __init__(self, cfg: SyncNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or SyncNetConfig()
        self.k = cfg.k
        self.face_input_hw = (48, 96)
        self.face_encoder = FaceEncoder(3 * cfg.k, cfg.width, cfg.embed_dim)
        self.audio_encoder = AudioEncoder(cfg.width, cfg.embed_dim)
