"""AV-HuBERT (Shi et al. 2022) in plain PyTorch: loads the official fairseq checkpoints without fairseq (METHOD.md §8).

    model = load_avhubert_checkpoint("base_vox_433h.pt")     # pretrained or lip-reading fine-tuned, BASE or LARGE
    feats = model.extract(video, audio)                      # [B,T,1,88,88] | None, [B,T,104] | None -> [B,T,D]

Architecture, with the official parameter names (facebookresearch/av_hubert avhubert/hubert.py + resnet.py, fairseq
wav2vec2 TransformerEncoder at the commit av_hubert pins):
- `feature_extractor_video.resnet`: `frontend3D` = Conv3d(1,64,(5,7,7),s(1,2,2),p(2,3,3),no bias) -> BN3d -> PReLU(64)
  -> MaxPool3d((1,3,3),(1,2,2),(0,1,1)); `trunk` = per-frame ResNet-18 (BasicBlock [2,2,2,2], 64/128/256/512, PReLU
  per channel as `relu1`/`relu2`, 1x1 conv + BN downsample) -> global average pool -> 512;
  then `feature_extractor_video.proj` Linear(512, D).
- `feature_extractor_audio.proj`: Linear(104, D) on stacked log filterbanks (see `audio_features`).
- Fusion: concat([audio, video]) (audio first) -> `layer_norm` (2D) -> `post_extract_proj` Linear(2D, D).
  A missing modality is zeros of shape [B,T,D] after its projection (AV-HuBERT's `extract_finetune`).
- `encoder`: x + GELU(pos_conv(x)) with pos_conv = weight-normed (dim 2) Conv1d(D,D,128,pad 64,groups 16) whose last
  output frame is dropped; pre-LN layers (`self_attn_layer_norm` -> MHA `q/k/v/out_proj` -> residual;
  `final_layer_norm` -> `fc1` -> GELU -> `fc2` -> residual); final `encoder.layer_norm` (layer_norm_first=True).
- BASE: 12 layers, D 768, FFN 3072, 12 heads. LARGE: 24 layers, D 1024, FFN 4096, 16 heads.

Checkpoint: a fairseq dict whose state dict is `ckpt["model"]`. Pretrained: the keys above at top level plus the
pretraining heads `mask_emb`, `final_proj.*`, `label_embs_concat` (ignored). Lip-reading fine-tuned (seq2seq): the
same keys under `encoder.w2v_model.` plus `decoder.*` (ignored). Everything else must match exactly: a missing or
unknown key is an error naming a few of them. fairseq pickles its config objects (argparse / omegaconf) next to the
weights; `read_fairseq_checkpoint` reads the file without importing or running any of that code.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import types
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..media.mfcc import int16_scale, logfbank
from ..weights import WeightsNotAvailable, not_available, resolve_weights

FINETUNED_PREFIX = "encoder.w2v_model."
IGNORED_PREFIXES = ("mask_emb", "final_proj.", "label_embs_concat", "target_glu.")  # pretraining heads
IMAGE_MEAN, IMAGE_STD, ROI_SIZE = 0.421, 0.165, 88
AUDIO_STACK, FBANK_DIM = 4, 26


@dataclasses.dataclass(frozen=True)
class AVHubertArch:
    embed_dim: int = 768
    layers: int = 12
    ffn_dim: int = 3072
    heads: int = 12
    audio_feat_dim: int = 104
    conv_pos: int = 128
    conv_pos_groups: int = 16
    resnet_out: int = 512


ARCHS = {
    "base": AVHubertArch(),
    "large": AVHubertArch(embed_dim=1024, layers=24, ffn_dim=4096, heads=16),
}
HEADS_BY_DIM = {a.embed_dim: a.heads for a in ARCHS.values()}  # head count is not visible in the weights


# ---------------------------------------------------------------------------------------------- video frontend
class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu2 = nn.PReLU(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + (x if self.downsample is None else self.downsample(x)))


class ResNetTrunk(nn.Module):
    """ResNet-18 body without the stem: [N,64,H,W] -> [N,512] (global average pool)."""

    def __init__(self):
        super().__init__()
        widths, cin = (64, 128, 256, 512), 64
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w)))
            cin = w

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))


class ResEncoder(nn.Module):
    """Lip ROIs [B,1,T,88,88] -> [B,T,512]."""

    def __init__(self):
        super().__init__()
        self.frontend3D = nn.Sequential(
            nn.Conv3d(1, 64, (5, 7, 7), stride=(1, 2, 2), padding=(2, 3, 3), bias=False),
            nn.BatchNorm3d(64),
            nn.PReLU(64),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        self.trunk = ResNetTrunk()

    def forward(self, x):
        x = self.frontend3D(x)                            # [B,64,T,22,22]
        b, c, t, h, w = x.shape
        x = x.transpose(1, 2).reshape(b * t, c, h, w)     # frames into the batch for the 2-d trunk
        return self.trunk(x).view(b, t, -1)


class SubModel(nn.Module):
    """One modality's extractor: optional ResNet, then a linear projection to D (keys `resnet.*`, `proj.*`)."""

    def __init__(self, input_dim: int, embed_dim: int, resnet: nn.Module | None = None):
        super().__init__()
        self.resnet = resnet
        self.proj = nn.Linear(input_dim, embed_dim)

    def forward(self, x):
        if self.resnet is not None:
            x = self.resnet(x)
        return self.proj(x)


# ---------------------------------------------------------------------------------------------- transformer
class WeightNormConv1d(nn.Module):
    """Conv1d with weight = g * v / ||v||, the norm taken over all dims but the kernel dim (weight_norm(dim=2))."""

    def __init__(self, channels: int, kernel: int, groups: int):
        super().__init__()
        self.padding, self.groups = kernel // 2, groups
        self.weight_g = nn.Parameter(torch.ones(1, 1, kernel))
        self.weight_v = nn.Parameter(torch.randn(channels, channels // groups, kernel) * 0.02)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x):
        v = self.weight_v
        weight = self.weight_g * v / v.norm(dim=(0, 1), keepdim=True)
        return F.conv1d(x, weight, self.bias, padding=self.padding, groups=self.groups)


class PosConv(nn.Sequential):
    """`pos_conv.0` holds the parameters; the last frame is dropped (even kernel) and GELU applied."""

    def __init__(self, arch: AVHubertArch):
        super().__init__(WeightNormConv1d(arch.embed_dim, arch.conv_pos, arch.conv_pos_groups))
        self.drop_last = arch.conv_pos % 2 == 0

    def forward(self, x):  # [B,T,D] -> [B,T,D]
        y = self[0](x.transpose(1, 2))
        if self.drop_last:
            y = y[:, :, :-1]
        return F.gelu(y).transpose(1, 2)


class SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x, key_padding_mask=None):  # x [B,T,D]; mask [B,T] True = padding
        b, t, d = x.shape
        q, k, v = (p(x).view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))
        mask = None if key_padding_mask is None else ~key_padding_mask[:, None, None, :]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # scale head_dim^-0.5, as fairseq
        return self.out_proj(y.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    """Pre-LN transformer layer (fairseq TransformerSentenceEncoderLayer, layer_norm_first=True)."""

    def __init__(self, arch: AVHubertArch):
        super().__init__()
        self.self_attn = SelfAttention(arch.embed_dim, arch.heads)
        self.self_attn_layer_norm = nn.LayerNorm(arch.embed_dim)
        self.fc1 = nn.Linear(arch.embed_dim, arch.ffn_dim)
        self.fc2 = nn.Linear(arch.ffn_dim, arch.embed_dim)
        self.final_layer_norm = nn.LayerNorm(arch.embed_dim)

    def forward(self, x, key_padding_mask=None):
        x = x + self.self_attn(self.self_attn_layer_norm(x), key_padding_mask)
        return x + self.fc2(F.gelu(self.fc1(self.final_layer_norm(x))))


class TransformerEncoder(nn.Module):
    def __init__(self, arch: AVHubertArch):
        super().__init__()
        self.pos_conv = PosConv(arch)
        self.layers = nn.ModuleList(EncoderLayer(arch) for _ in range(arch.layers))
        self.layer_norm = nn.LayerNorm(arch.embed_dim)

    def forward(self, x, padding_mask=None, output_layer: int | None = None):
        """x [B,T,D] -> [B,T,D]; `output_layer` (1-based) stops early without the final layer norm, as fairseq."""
        if padding_mask is not None:
            x = x.masked_fill(padding_mask[..., None], 0.0)
        x = x + self.pos_conv(x)
        for i, layer in enumerate(self.layers):
            x = layer(x, padding_mask)
            if output_layer is not None and i + 1 == output_layer:
                return x
        return self.layer_norm(x)


# ---------------------------------------------------------------------------------------------- the model
class AVHubert(nn.Module):
    """AV-HuBERT encoder (no pretraining heads, no decoder)."""

    def __init__(self, arch: AVHubertArch = AVHubertArch()):
        super().__init__()
        self.arch = arch
        d = arch.embed_dim
        self.feature_extractor_audio = SubModel(arch.audio_feat_dim, d)
        self.feature_extractor_video = SubModel(arch.resnet_out, d, ResEncoder())
        self.layer_norm = nn.LayerNorm(2 * d)
        self.post_extract_proj = nn.Linear(2 * d, d)
        self.encoder = TransformerEncoder(arch)

    def extract(self, video: torch.Tensor | None, audio: torch.Tensor | None,
                padding_mask: torch.Tensor | None = None, output_layer: int | None = None) -> torch.Tensor:
        """Final-layer features [B,T,D].

        video: [B,T,1,88,88] normalised lip ROIs (`faces.mouth_roi`), or None;
        audio: [B,T,104] stacked, per-frame normalised log filterbanks (`audio_features`), or None.
        """
        if video is None and audio is None:
            raise ValueError("AV-HuBERT needs at least one of video and audio")
        feats_v = feats_a = None
        if video is not None:
            if video.dim() != 5 or video.shape[2] != 1:
                raise ValueError(f"video must be [B,T,1,H,W] lip ROIs, got {list(video.shape)}")
            feats_v = self.feature_extractor_video(video.transpose(1, 2))          # [B,T,D]
        if audio is not None:
            if audio.dim() != 3 or audio.shape[2] != self.arch.audio_feat_dim:
                raise ValueError(f"audio must be [B,T,{self.arch.audio_feat_dim}], got {list(audio.shape)}")
            feats_a = self.feature_extractor_audio(audio)                           # [B,T,D]
        if feats_v is not None and feats_a is not None and feats_v.shape[:2] != feats_a.shape[:2]:
            raise ValueError(f"video and audio differ in length: {feats_v.shape[1]} vs {feats_a.shape[1]} frames")
        feats_a = feats_a if feats_a is not None else torch.zeros_like(feats_v)
        feats_v = feats_v if feats_v is not None else torch.zeros_like(feats_a)
        x = self.post_extract_proj(self.layer_norm(torch.cat([feats_a, feats_v], dim=-1)))
        return self.encoder(x, padding_mask, output_layer)

    forward = extract


# ---------------------------------------------------------------------------------------------- inputs
def audio_features(audio: np.ndarray, n_frames: int | None = None, stack: int = AUDIO_STACK) -> np.ndarray:
    """16 kHz mono float audio in [-1,1] -> float32 [T,104]: AV-HuBERT's audio input at 25 fps.

    logfbank (26 filters, 25 ms / 10 ms, on the 16-bit PCM scale) -> `stack` consecutive frames concatenated
    (zero-padded to a multiple) -> trimmed or zero-padded to `n_frames` video frames -> layer norm per frame.
    """
    fb = logfbank(int16_scale(audio)).astype(np.float32)               # [T100, 26]
    if len(fb) % stack:
        fb = np.concatenate([fb, np.zeros((stack - len(fb) % stack, fb.shape[1]), np.float32)])
    feats = fb.reshape(-1, stack * fb.shape[1])                         # [T25, 104]
    if n_frames is not None:
        if len(feats) < n_frames:
            feats = np.concatenate([feats, np.zeros((n_frames - len(feats), feats.shape[1]), np.float32)])
        feats = feats[:n_frames]
    t = torch.from_numpy(feats)
    return F.layer_norm(t, t.shape[1:]).numpy()


# ---------------------------------------------------------------------------------------------- checkpoints
class _Opaque:
    """Stands in for any object of a fairseq checkpoint that is not a tensor container (configs, task state)."""

    _origin = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj._args, obj._items = args, []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self._state = state

    def append(self, item):
        self._items.append(item)

    def extend(self, items):
        self._items.extend(items)

    def __setitem__(self, key, value):
        self._items.append((key, value))

    def __repr__(self):
        return f"<opaque {self._origin}>"


def _opaque_class(module: str, name: str) -> type:
    return type(name, (_Opaque,), {"_origin": f"{module}.{name}"})


_SAFE_BUILTINS = {"set", "frozenset", "complex", "slice", "bytearray"}


class _InertUnpickler(pickle.Unpickler):
    """Resolves only tensor-rebuilding functions, dtypes and plain containers; any other global becomes an inert
    placeholder class, so no code named by the file is imported or run."""

    def find_class(self, module, name):
        if module == "torch._utils" and name.startswith("_rebuild_"):
            return getattr(torch._utils, name)
        if module == "torch._tensor" and name == "_rebuild_from_type_v2":
            return torch._tensor._rebuild_from_type_v2
        if module == "torch" and (name == "Size" or isinstance(getattr(torch, name, None), torch.dtype)):
            return getattr(torch, name)
        if module == "collections" and name == "OrderedDict":
            import collections
            return collections.OrderedDict
        if module == "builtins" and name in _SAFE_BUILTINS:
            import builtins
            return getattr(builtins, name)
        return _opaque_class(module, name)


_inert_pickle = types.SimpleNamespace(
    Unpickler=_InertUnpickler,
    load=lambda f, **kw: _InertUnpickler(f, **kw).load(),
    __name__="talkface_inert_pickle",
)


def read_fairseq_checkpoint(path: str | Path) -> dict:
    """A fairseq checkpoint as a dict; tensors loaded, config objects replaced by inert placeholders."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass  # the file pickles config classes (argparse / omegaconf): read it with the inert unpickler
    return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_inert_pickle)


def encoder_state(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], bool]:
    """The encoder's tensors from a checkpoint's model state dict, and whether it was fine-tuned."""
    finetuned = any(k.startswith(FINETUNED_PREFIX) for k in state)
    out, unknown = {}, []
    for k, v in state.items():
        if finetuned:
            if k.startswith("decoder."):
                continue
            if not k.startswith(FINETUNED_PREFIX):
                unknown.append(k)
                continue
            k = k[len(FINETUNED_PREFIX):]
        if k.startswith(IGNORED_PREFIXES):
            continue
        out[k] = v
    if unknown:
        raise KeyError(f"AV-HuBERT checkpoint: {len(unknown)} unexpected key(s) outside the encoder: {unknown[:5]}")
    return out, finetuned


def arch_from_state(enc: dict[str, torch.Tensor]) -> AVHubertArch:
    """BASE / LARGE (or another size) from the tensor shapes; the head count follows the official sizes."""
    try:
        d = enc["post_extract_proj.weight"].shape[0]
        ffn = enc["encoder.layers.0.fc1.weight"].shape[0]
        audio_dim = enc["feature_extractor_audio.proj.weight"].shape[1]
        conv_pos = enc["encoder.pos_conv.0.weight_v"].shape[2]
        groups = d // enc["encoder.pos_conv.0.weight_v"].shape[1]
    except KeyError as e:
        raise KeyError(f"AV-HuBERT checkpoint lacks {e.args[0]!r}: not an AV-HuBERT state dict") from None
    if d not in HEADS_BY_DIM:
        raise ValueError(f"AV-HuBERT checkpoint with embed dim {d}: only {sorted(HEADS_BY_DIM)} (BASE, LARGE) known")
    layers = 1 + max(int(k.split(".")[2]) for k in enc if k.startswith("encoder.layers."))
    return AVHubertArch(embed_dim=d, layers=layers, ffn_dim=ffn, heads=HEADS_BY_DIM[d], audio_feat_dim=audio_dim,
                        conv_pos=conv_pos, conv_pos_groups=groups)


def load_encoder_state(model: AVHubert, enc: dict[str, torch.Tensor], assign: bool = False) -> None:
    """Strict load of the encoder tensors, with an error that names the first differing keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in enc]
    unexpected = [k for k in enc if k not in expected]
    wrong = [f"{k} {list(enc[k].shape)} != {list(v.shape)}" for k, v in expected.items()
             if k in enc and tuple(enc[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        raise KeyError(
            f"AV-HuBERT checkpoint does not match the {model.arch.layers}-layer D={model.arch.embed_dim} encoder: "
            f"missing {len(missing)} {missing[:4]}, unexpected {len(unexpected)} {unexpected[:4]}, "
            f"wrong shape {len(wrong)} {wrong[:2]}"
        )
    model.load_state_dict(enc, strict=True, assign=assign)


def avhubert_from_state(state: dict[str, torch.Tensor]) -> tuple[AVHubert, bool]:
    """Build the encoder that `state` (a checkpoint's `model` dict) describes and load it strictly."""
    enc, finetuned = encoder_state(state)
    arch = arch_from_state(enc)
    with torch.device("meta"):  # skip random init: every tensor is replaced by the checkpoint's
        model = AVHubert(arch)
    load_encoder_state(model, {k: v.float() if v.is_floating_point() else v for k, v in enc.items()}, assign=True)
    return model.eval(), finetuned


def load_avhubert_checkpoint(path: str | Path | None, device: str | torch.device = "cpu") -> AVHubert:
    """The AV-HuBERT encoder of an official checkpoint file (eval mode, float32). `finetuned` is set on the model.

    Raises WeightsNotAvailable when there is no file, KeyError when the file is not an AV-HuBERT checkpoint.
    """
    if not path:
        raise not_available("AV-HuBERT", "no AV-HuBERT checkpoint")
    file = resolve_weights("AV-HuBERT", path)
    try:
        ckpt = read_fairseq_checkpoint(file)
    except Exception as e:
        raise not_available("AV-HuBERT", f"cannot read {file}: {e}") from e
    state = ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(state, dict):
        raise WeightsNotAvailable(f"AV-HuBERT not available: {file} has no 'model' state dict")
    model, finetuned = avhubert_from_state(state)
    model.finetuned = finetuned
    return model.to(device)
