"""The talking-face generator, one architecture for G_S (silent lips) and G_L (lip sync) (METHOD.md §4, P2 §3.1).

    gen(pose, identity, indiv_mels)  # [B,k,3,S,S], [B,k,3,S,S], [B,k,1,80,16] -> [B,k,3,S,S] in [0,1]

Frames are folded into the batch (B*k), as in Wav2Lip. Layout:
- identity encoder and pose encoder: same layout, separate weights. Level 0 keeps S (7x7 conv), every further level
  halves the size (strided 3x3 conv); each strided/first conv is followed by two stride-1 3x3 convs; every conv is
  followed by ReLU then BatchNorm (the paper's order). Halving stops at <= 4 (S=96: 96,48,24,12,6,3; S=64: ...,4), then
  a conv with kernel = that size brings both to 1x1.
- fusion: concat(identity, pose) on channels -> 1x1 conv reducing the depth -> concat with the audio embedding [512,1,1].
- decoder: per level one transposed conv (x2 up, or 1 -> r at the bottom) followed by two stride-1 convs; after each
  level the mirrored features of BOTH encoders are joined (skip="concat", U-Net/Wav2Lip style, or "add", residual).
- output: 3x3 conv block, 1x1 conv to RGB, sigmoid.
The audio encoder is passed in: a sync expert's `audio_encoder` (frozen, P1 setups B/D/E/G) or a fresh trainable
`AudioEncoder` (setup A). Channel widths: `width` at full resolution, doubling per level up to `max_width`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layers import MEL_BANDS, MEL_STEPS


@dataclass
class GeneratorConfig:
    face_size: int = 96  # S; any size that halves down to <= 4 (or an odd size), e.g. 64, 96, 128
    k: int = 5  # frames per window
    width: int = 8  # channels at full resolution (16 ~ Wav2Lip's widths; 8 for CPU runs)
    max_width: int = 256  # channel cap for the deep levels and the bottleneck (Wav2Lip-size: 512)
    audio_dim: int = 512  # channels of the audio embedding [B,audio_dim,1,1]
    skip: str = "concat"  # how encoder features join the decoder: concat | add


def conv_relu_bn(cin: int, cout: int, kernel: int, stride: int = 1, padding: int | None = None) -> nn.Sequential:
    pad = kernel // 2 if padding is None else padding
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, pad), nn.ReLU(inplace=True), nn.BatchNorm2d(cout))


def up_relu_bn(cin: int, cout: int, kernel: int, stride: int, padding: int, output_padding: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding),
                         nn.ReLU(inplace=True), nn.BatchNorm2d(cout))


def level_sizes(face_size: int) -> list[int]:
    """Spatial size of each encoder level: S, S/2, ... while even and > 4."""
    if face_size < 8:
        raise ValueError(f"face_size must be >= 8, got {face_size}")
    sizes = [face_size]
    while sizes[-1] > 4 and sizes[-1] % 2 == 0:
        sizes.append(sizes[-1] // 2)
    return sizes


class FaceEncoder(nn.Module):
    """[N,3,S,S] -> list of per-level features (full size first) and the [N,C,1,1] bottleneck."""

    def __init__(self, sizes: list[int], channels: list[int], bottleneck: int):
        super().__init__()
        levels, cin = [], 3
        for i, cout in enumerate(channels):
            first = conv_relu_bn(cin, cout, 7, 1) if i == 0 else conv_relu_bn(cin, cout, 3, 2, 1)
            levels.append(nn.Sequential(first, conv_relu_bn(cout, cout, 3), conv_relu_bn(cout, cout, 3)))
            cin = cout
        self.levels = nn.ModuleList(levels)
        self.bottleneck = nn.Sequential(conv_relu_bn(cin, bottleneck, sizes[-1], 1, 0),
                                        conv_relu_bn(bottleneck, bottleneck, 1))

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        feats = []
        for level in self.levels:
            x = level(x)
            feats.append(x)
        return feats, self.bottleneck(x)


class Generator(nn.Module):
    def __init__(self, cfg: GeneratorConfig, audio_encoder: nn.Module, freeze_audio: bool = True):
        super().__init__()
        if cfg.skip not in ("concat", "add"):
            raise ValueError(f"generator skip must be 'concat' or 'add', got '{cfg.skip}'")
        self.cfg = cfg
        sizes = level_sizes(cfg.face_size)
        channels = [min(cfg.width * 2**i, cfg.max_width) for i in range(len(sizes))]
        bottleneck = min(cfg.width * 2 ** len(sizes), cfg.max_width)
        self.identity_encoder = FaceEncoder(sizes, channels, bottleneck)
        self.pose_encoder = FaceEncoder(sizes, channels, bottleneck)
        self.reduce = conv_relu_bn(2 * bottleneck, bottleneck, 1)

        self.audio_encoder = audio_encoder
        self.freeze_audio = freeze_audio
        if freeze_audio:
            for p in audio_encoder.parameters():
                p.requires_grad_(False)
            audio_encoder.eval()

        skip_factor = 3 if cfg.skip == "concat" else 1  # decoder output + identity + pose features
        decoder, cin = [], bottleneck + cfg.audio_dim
        for i in reversed(range(len(sizes))):
            cout = channels[i]
            if i == len(sizes) - 1:  # 1x1 -> r x r
                up = up_relu_bn(cin, cout, sizes[-1], 1, 0, 0)
            else:  # x2
                up = up_relu_bn(cin, cout, 3, 2, 1, 1)
            decoder.append(nn.Sequential(up, conv_relu_bn(cout, cout, 3), conv_relu_bn(cout, cout, 3)))
            cin = cout * skip_factor
        self.decoder = nn.ModuleList(decoder)
        self.output = nn.Sequential(conv_relu_bn(cin, channels[0], 3), nn.Conv2d(channels[0], 3, 1), nn.Sigmoid())

    def train(self, mode: bool = True) -> "Generator":
        super().train(mode)
        if self.freeze_audio:  # a frozen expert encoder keeps its BatchNorm statistics
            self.audio_encoder.eval()
        return self

    def encode_audio(self, mels: torch.Tensor) -> torch.Tensor:
        """[N,1,80,16] -> [N,audio_dim,1,1]."""
        if self.freeze_audio:
            with torch.no_grad():
                a = self.audio_encoder(mels)
        else:
            a = self.audio_encoder(mels)
        if tuple(a.shape[1:]) != (self.cfg.audio_dim, 1, 1):
            raise ValueError(f"audio encoder gave {list(a.shape)}, generator expects [N,{self.cfg.audio_dim},1,1]")
        return a

    def forward(self, pose: torch.Tensor, identity: torch.Tensor, indiv_mels: torch.Tensor) -> torch.Tensor:
        s, k = self.cfg.face_size, self.cfg.k
        if pose.dim() != 5 or tuple(pose.shape[1:]) != (k, 3, s, s):
            raise ValueError(f"pose: expected [B,{k},3,{s},{s}], got {list(pose.shape)}")
        if identity.shape != pose.shape:
            raise ValueError(f"identity: expected {list(pose.shape)} like pose, got {list(identity.shape)}")
        b = pose.shape[0]
        if tuple(indiv_mels.shape) != (b, k, 1, MEL_BANDS, MEL_STEPS):
            raise ValueError(f"indiv_mels: expected [{b},{k},1,{MEL_BANDS},{MEL_STEPS}], got {list(indiv_mels.shape)}")

        n = b * k
        id_feats, id_b = self.identity_encoder(identity.reshape(n, 3, s, s))
        pose_feats, pose_b = self.pose_encoder(pose.reshape(n, 3, s, s))
        audio = self.encode_audio(indiv_mels.reshape(n, 1, MEL_BANDS, MEL_STEPS))
        x = torch.cat([self.reduce(torch.cat([id_b, pose_b], dim=1)), audio], dim=1)

        for block, id_f, pose_f in zip(self.decoder, reversed(id_feats), reversed(pose_feats)):
            x = block(x)
            x = torch.cat([x, id_f, pose_f], dim=1) if self.cfg.skip == "concat" else x + id_f + pose_f
        return self.output(x).reshape(b, k, 3, s, s)
