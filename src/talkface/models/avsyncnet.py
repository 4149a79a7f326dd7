"""AVSyncNet, P1's sync expert (METHOD.md §3, papers/001_* appendix A).

Audio tower: ResNetSE34 (squeeze-excitation basic blocks, layers [3,4,6,3], filters [32,64,128,256]) on the mel window
[B,1,80,16] (80 bands x 16 steps), then self-attentive pooling over time (voxceleb_trainer "V2" style: attention
weights per channel x band, softmax over time). Video tower: ResNet-50 (bottleneck blocks) whose first conv takes the
5 lower halves stacked on channels (15 x 112 x 224; faces are resized up from S). After each tower one extra conv
(1x1 + BN + ReLU) gives the 512-d embedding: non-negative, then L2-normalised, so the cosine lies in [0, 1].

Two presets: "paper" (the values above) and "small" (the dataclass defaults: ~1/4 widths, one block per stage,
56x112 input) so that training fits a short CPU pipeline. [ours] the pooling before the extra conv and the SAP variant.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

import torch
from torch import nn

from .expert import SyncExpert


# ---------------------------------------------------------------- audio: ResNetSE34 + self-attentive pooling
class SqueezeExcite(nn.Module):
    """Channel gating: global average -> bottleneck MLP -> sigmoid weights per channel."""

    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels),
                                nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc(x.mean(dim=(2, 3)))
        return x * w[:, :, None, None]


class SEBasicBlock(nn.Module):
    """Two 3x3 convs (BN, ReLU), squeeze-excitation, identity or 1x1-projected shortcut."""

    def __init__(self, cin: int, cout: int, stride: int, reduction: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.se = SqueezeExcite(cout, reduction)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.se(self.bn2(self.conv2(out)))
        return torch.relu(out + self.shortcut(x))


class SelfAttentivePooling(nn.Module):
    """[B,D,T] frame features -> [B,D]: softmax-over-time weights from a small 1x1-conv MLP, weighted sum."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.attention = nn.Sequential(nn.Conv1d(dim, hidden, 1), nn.ReLU(inplace=True), nn.BatchNorm1d(hidden),
                                       nn.Conv1d(hidden, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = torch.softmax(self.attention(x), dim=2)
        return (x * w).sum(dim=2)


class ResNetSEAudioEncoder(nn.Module):
    """[B,1,80,16] mel -> [B,embed_dim,1,1] non-negative (ResNetSE34 + SAP + extra 1x1 conv)."""

    def __init__(self, layers: list[int], filters: list[int], se_reduction: int, attention_dim: int, embed_dim: int,
                 n_mels: int = 80):
        super().__init__()
        if len(layers) != 4 or len(filters) != 4:
            raise ValueError(f"audio_layers and audio_filters need 4 entries, got {layers}, {filters}")
        self.stem = nn.Sequential(nn.Conv2d(1, filters[0], 3, 1, 1, bias=False), nn.BatchNorm2d(filters[0]),
                                  nn.ReLU(inplace=True))
        blocks, cin = [], filters[0]
        for i, (n, cout) in enumerate(zip(layers, filters)):
            for j in range(n):
                # First block of stages 2-4 halves both mel bands and time steps: 80x16 -> 10x2.
                blocks.append(SEBasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1, se_reduction))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        bands_out = n_mels // 8
        self.pool = SelfAttentivePooling(filters[3] * bands_out, attention_dim)
        self.head = nn.Sequential(nn.Conv2d(filters[3] * bands_out, embed_dim, 1), nn.BatchNorm2d(embed_dim),
                                  nn.ReLU(inplace=True))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(mel))  # [B,C,F',T']
        x = x.reshape(x.shape[0], -1, x.shape[-1])  # channels x bands per time step
        return self.head(self.pool(x)[:, :, None, None])


# ---------------------------------------------------------------- video: ResNet-50 on stacked lower halves
class Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 reduce, 3x3 (stride here), 1x1 expand x4; projected shortcut when shapes change."""

    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int):
        super().__init__()
        cout = planes * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(inplace=True),
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes), nn.ReLU(inplace=True),
            nn.Conv2d(planes, cout, 1, bias=False), nn.BatchNorm2d(cout),
        )
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNetFaceEncoder(nn.Module):
    """[B,3k,H,W] stacked lower halves -> [B,embed_dim,1,1] non-negative (ResNet trunk + pool + extra 1x1 conv)."""

    def __init__(self, in_channels: int, layers: list[int], width: int, embed_dim: int):
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"image_layers needs 4 entries, got {layers}")
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 7, 2, 3, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        blocks, cin = [], width
        for i, n in enumerate(layers):
            planes = width * 2**i
            for j in range(n):
                blocks.append(Bottleneck(cin, planes, 2 if (i > 0 and j == 0) else 1))
                cin = planes * Bottleneck.expansion
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.Conv2d(cin, embed_dim, 1), nn.BatchNorm2d(embed_dim), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.stem(x)).mean(dim=(2, 3), keepdim=True)
        return self.head(x)


# ---------------------------------------------------------------- the expert
@dataclass
class AVSyncNetConfig:
    """AVSyncNet sizes. Defaults = the "small" CPU preset; `AVSyncNetConfig.preset("paper")` = P1's values."""

    k: int = 5  # frames per window
    embed_dim: int = 512
    input_height: int = 56  # lower-half input size; paper 112x224
    input_width: int = 112
    image_layers: list[int] = field(default_factory=lambda: [1, 1, 1, 1])  # paper ResNet-50: [3,4,6,3]
    image_width: int = 16  # stem channels; paper 64 (-> 2048 output channels)
    audio_layers: list[int] = field(default_factory=lambda: [1, 1, 1, 1])  # paper ResNetSE34: [3,4,6,3]
    audio_filters: list[int] = field(default_factory=lambda: [8, 16, 32, 64])  # paper [32,64,128,256]
    audio_se_reduction: int = 8
    audio_attention_dim: int = 32  # SAP hidden size; paper-size model 128

    @classmethod
    def preset(cls, name: str, **overrides) -> "AVSyncNetConfig":
        if name not in AVSYNCNET_PRESETS:
            raise ValueError(f"unknown AVSyncNet preset '{name}'; known: {sorted(AVSYNCNET_PRESETS)}")
        return dataclasses.replace(copy.deepcopy(AVSYNCNET_PRESETS[name]), **overrides)


AVSYNCNET_PRESETS: dict[str, AVSyncNetConfig] = {
    "small": AVSyncNetConfig(),
    "paper": AVSyncNetConfig(input_height=112, input_width=224, image_layers=[3, 4, 6, 3], image_width=64,
                             audio_layers=[3, 4, 6, 3], audio_filters=[32, 64, 128, 256], audio_attention_dim=128),
}


class AVSyncNet(SyncExpert):
    arch = "avsyncnet"

    def __init__(self, cfg: AVSyncNetConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or AVSyncNetConfig()
        self.k = cfg.k
        self.face_input_hw = (cfg.input_height, cfg.input_width)
        self.face_encoder = ResNetFaceEncoder(3 * cfg.k, list(cfg.image_layers), cfg.image_width, cfg.embed_dim)
        self.audio_encoder = ResNetSEAudioEncoder(list(cfg.audio_layers), list(cfg.audio_filters),
                                                  cfg.audio_se_reduction, cfg.audio_attention_dim, cfg.embed_dim)
