"""VGG-19 feature extractor for the perceptual loss (Johnson et al. 2016; P2 Eq. 2).

    vgg = VGG19Features.from_pretrained(path=None)   # torch hub cache (TORCH_HOME respected) or an explicit file
    feats = vgg(images)                               # [N,3,H,W] in [0,1] -> {layer name: [N,C,h,w]}

Layers: the last ReLU of each of the five blocks, relu1_2, relu2_2, relu3_4, relu4_4, relu5_4 (the VGG-19 counterparts
of Johnson et al.'s VGG-16 relu1_2 ... relu4_3). Inputs get ImageNet normalisation. The weights are torchvision's
`vgg19-dcbb9e9d.pth` (VGG19_Weights.IMAGENET1K_V1; key layout `features.N.weight/bias`; the classifier keys are
ignored); `talkface weights download vgg19` puts it in the hub cache. Nothing is downloaded here: a missing or
unreadable file raises `WeightsNotAvailable("vgg19 not available: <reason>")`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..weights import not_available, resolve_weights

VGG19_FILENAME = "vgg19-dcbb9e9d.pth"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's vgg19 `features`: numbers = conv output channels, "M" = 2x2 max pool.
_VGG19_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def _layer_names() -> list[str]:
    """Name of each module of `features` in order: conv{b}_{i}, relu{b}_{i}, pool{b}."""
    names, block, idx = [], 1, 1
    for v in _VGG19_CFG:
        if v == "M":
            names.append(f"pool{block}")
            block, idx = block + 1, 1
        else:
            names += [f"conv{block}_{idx}", f"relu{block}_{idx}"]
            idx += 1
    return names


VGG19_LAYERS = _layer_names()
DEFAULT_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4", "relu5_4")


def _vgg19_features() -> nn.Sequential:
    layers, cin = [], 3
    for v in _VGG19_CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=False)]
            cin = v
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """Frozen VGG-19 trunk up to the deepest requested layer; returns the requested activations by name."""

    def __init__(self, layers: tuple[str, ...] | list[str] = DEFAULT_LAYERS):
        super().__init__()
        unknown = [name for name in layers if name not in VGG19_LAYERS]
        if unknown or not layers:
            raise ValueError(f"unknown VGG-19 layer(s) {unknown or '(none given)'}; known: {VGG19_LAYERS}")
        self.layers = tuple(layers)
        self.features = _vgg19_features()  # full trunk so a torchvision state dict loads strictly
        self._index = {name: VGG19_LAYERS.index(name) for name in self.layers}
        self._last = max(self._index.values())
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        for p in self.parameters():
            p.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "VGG19Features":
        return super().train(False)  # no dropout/BN here, but keep it an inference module

    def load_torchvision_state_dict(self, state_dict: dict[str, torch.Tensor], source: str = "state dict") -> None:
        """Load `features.*` keys of a torchvision vgg19 state dict strictly (classifier keys are ignored)."""
        feats = {k[len("features."):]: v for k, v in state_dict.items() if k.startswith("features.")}
        expected = set(self.features.state_dict())
        if set(feats) != expected:
            missing = sorted(f"features.{k}" for k in expected - set(feats))
            extra = sorted(f"features.{k}" for k in set(feats) - expected)
            raise not_available("vgg19", f"{source} is not a torchvision vgg19 state dict "
                                         f"(missing {missing[:3]}, unexpected {extra[:3]})")
        try:
            self.features.load_state_dict(feats, strict=True)
        except RuntimeError as e:  # shape mismatch
            raise not_available("vgg19", f"{source}: {str(e).splitlines()[0]}") from e

    @classmethod
    def from_pretrained(cls, path: str | Path | None = None,
                        layers: tuple[str, ...] | list[str] = DEFAULT_LAYERS) -> "VGG19Features":
        """Weights from `path`, else `vgg19-dcbb9e9d.pth` in the torch hub cache; WeightsNotAvailable otherwise."""
        file = resolve_weights("vgg19", path, VGG19_FILENAME)
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as e:  # truncated or foreign file
            raise not_available("vgg19", f"cannot read {file}: {type(e).__name__}: {e}") from e
        if not isinstance(state, dict):
            raise not_available("vgg19", f"{file} does not hold a state dict")
        model = cls(layers)
        model.load_torchvision_state_dict(state, str(file))
        return model

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """[N,3,H,W] in [0,1] -> {layer: activation}."""
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"VGG input: expected [N,3,H,W], got {list(images.shape)}")
        x = (images - self.mean) / self.std
        out = {}
        wanted = {i: name for name, i in self._index.items()}
        for i, module in enumerate(self.features):
            x = module(x)
            if i in wanted:
                out[wanted[i]] = x
            if i == self._last:
                break
        return out
