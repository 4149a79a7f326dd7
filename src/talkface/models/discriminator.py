"""Visual-quality discriminator (P2 §3.4): 7 strided convs with LeakyReLU and spectral normalisation.

    disc(frames)  # [B,k,3,S,S] in [0,1] -> [B,k] realness logits, one per frame (frames folded into the batch)

Each strided 3x3 conv (padding 1) rounds the size up when halving, so 7 of them bring S <= 128 to 1x1 (96: 48, 24,
12, 6, 3, 2, 1); larger faces are averaged over the remaining map. A spectrally normalised 1x1 conv gives the logit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


@dataclass
class DiscriminatorConfig:
    n_layers: int = 7  # strided conv layers (paper: 7)
    width: int = 32  # channels of the first layer, doubling per layer up to max_width
    max_width: int = 512
    leaky_slope: float = 0.2
    lower_half: bool = False  # judge only the lower half of the face (as Wav2Lip's HQ discriminator) [ours]


class Discriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or DiscriminatorConfig()
        layers, cin = [], 3
        for i in range(cfg.n_layers):
            cout = min(cfg.width * 2**i, cfg.max_width)
            layers += [spectral_norm(nn.Conv2d(cin, cout, 3, 2, 1)), nn.LeakyReLU(cfg.leaky_slope, inplace=True)]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.classifier = spectral_norm(nn.Conv2d(cin, 1, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.dim() != 5 or frames.shape[2] != 3:
            raise ValueError(f"discriminator input: expected [B,k,3,S,S], got {list(frames.shape)}")
        b, k, c, h, w = frames.shape
        x = frames.reshape(b * k, c, h, w)
        if self.cfg.lower_half:
            x = x[:, :, h // 2 :, :]
        x = self.features(x).mean(dim=(2, 3), keepdim=True)
        return self.classifier(x).reshape(b, k)
