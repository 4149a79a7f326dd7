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
- [ours, not the papers'] `upsample: resize` replaces each x2 transposed conv by nearest x2 + 3x3 conv (transposed
  convs with stride 2 leave checkerboard artefacts on short runs); `norm: group` uses GroupNorm instead of BatchNorm
  (batch statistics of B*k = 20 images do not hold); `compose: true` returns the pose input's upper half (the true
  upper face, which the pose input carries) above the mouth, the generated pixels below, blended over a soft seam of
  `seam` x S rows ending at the half line, so the model's capacity goes to the lower face.
- [ours] `reference_blend: true`: the output head gives RGB and a per-pixel alpha, and the generated image is
  alpha x RGB + (1 - alpha) x identity reference. The alpha's bias starts at `blend_bias` (sigmoid(-2) = 0.12), so an
  untrained G returns nearly the reference (with `compose`, the paste floor) and learns where to paint. Inside
  `paint_ellipse` (the mouth, feathered) alpha is forced to 1: the mouth is always generated, never copied from the
  reference (whose lips would leak). Skin, beard and colour come from the reference's own pixels, also on faces the
  model never saw. `blend_mode: residual` paints changes instead of colours: the image is reference + alpha x
  tanh(head), so inside the paint region the mouth is the reference's own lips and skin, changed (opened, closed) by the
  model; a generator trained on one face then does not paint that face's colours onto another (clamped to [0, 1]
  outside training, where an unclamped output keeps the gradient at the bounds).
- [ours] `blend_mode: warp` moves the reference's own pixels before changing them: the head also gives a 2-channel
  flow (at most `flow_max` in grid_sample's [-1, 1] units, box-smoothed over `flow_smooth` pixels so that it bends
  the face rather than scattering it), the reference is resampled along it, and the residual change is added on top:
  image = warp(reference, flow) + alpha x tanh(change). Lips that open move the reference's own lower lip down; the
  change only darkens the gap between them. Untrained (zero flow, zero change) it returns the reference exactly.
The audio encoder is passed in: a sync expert's `audio_encoder` (frozen, P1 setups B/D/E/G) or a fresh trainable
`AudioEncoder` (setup A). Channel widths: `width` at full resolution, doubling per level up to `max_width`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
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
    upsample: str = "transposed"  # decoder x2 upsampling: transposed (the papers') | resize (nearest x2 + 3x3 conv)
    norm: str = "batch"  # batch (the papers') | group (GroupNorm, for small batches)
    compose: bool = False  # output = pose input's upper half + generated lower half over a soft seam [ours]
    seam: float = 0.0625  # blend ramp of the composition, as a share of S, ending at the half line
    reference_blend: bool = False  # output = alpha * generated + (1 - alpha) * identity reference [ours]
    blend_bias: float = -2.0  # initial bias of the alpha logit (sigmoid(-2) = 0.12: starts near the reference)
    # reference_blend: alpha = 1 inside this ellipse (cx, cy, rx, ry, fractions of S; [] = nowhere), feathered over
    # the outer `paint_feather` share of its radius
    paint_ellipse: list[float] = field(default_factory=lambda: [0.5, 0.76, 0.28, 0.2])
    paint_feather: float = 0.3
    blend_mode: str = "replace"  # reference_blend: replace (alpha x RGB) | residual (reference + alpha x change)
    #                              | warp (warped reference + alpha x change)
    flow_max: float = 0.1  # blend_mode warp: largest flow, grid_sample units (2 = the crop side; 0.1 = 5% of S)
    flow_smooth: int = 9  # blend_mode warp: side of the box filter over the flow, pixels (odd; 1 = none)


NORMS = ("batch", "group")
UPSAMPLES = ("transposed", "resize")
BLEND_MODES = ("replace", "residual", "warp")
HEAD_CHANNELS = {"replace": 4, "residual": 4, "warp": 6}  # RGB or change, alpha, (flow x, y)


def make_norm(kind: str, channels: int) -> nn.Module:
    """BatchNorm2d, or GroupNorm with groups of (up to) 8 channels, which does not depend on the batch."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(max(1, channels // 8) if channels % 8 == 0 else 1, channels)
    raise ValueError(f"generator norm must be one of {NORMS}, got {kind!r}")


def conv_relu_bn(cin: int, cout: int, kernel: int, stride: int = 1, padding: int | None = None,
                 norm: str = "batch") -> nn.Sequential:
    pad = kernel // 2 if padding is None else padding
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, pad), nn.ReLU(inplace=True), make_norm(norm, cout))


def up_relu_bn(cin: int, cout: int, kernel: int, stride: int, padding: int, output_padding: int,
               norm: str = "batch") -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, kernel, stride, padding, output_padding),
                         nn.ReLU(inplace=True), make_norm(norm, cout))


def resize_up_relu_bn(cin: int, cout: int, norm: str = "batch") -> nn.Sequential:
    """x2 nearest-neighbour upsampling then a 3x3 conv: every output pixel sees the same kernel taps, no checkerboard."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, 1, 1),
                         nn.ReLU(inplace=True), make_norm(norm, cout))


def seam_mask(face_size: int, seam: float) -> torch.Tensor:
    """float32 [S, 1] weight of the generated pixels per row: 0 above the ramp, a smoothstep from 0 to 1 over the
    `seam` x S rows that end at the half line, 1 from the half line down (the pose input is black there)."""
    half = face_size // 2
    ramp = max(1, int(round(seam * face_size)))
    rows = torch.arange(face_size, dtype=torch.float32) + 0.5
    t = ((rows - (half - ramp)) / ramp).clamp(0.0, 1.0)
    return (t * t * (3 - 2 * t)).reshape(face_size, 1)


def ellipse_mask(height: int, width: int, ellipse: tuple[float, float, float, float] | list[float],
                 feather: float) -> np.ndarray:
    """float32 [height, width]: 1 inside the ellipse (cx, cy, rx, ry as fractions of width / height), falling to 0 at
    its rim by a smoothstep over the outer `feather` share of the radius. Used for the generator's paint region and
    for dubbing's paste-back (a face crop's lower face is close to an ellipse, so it follows the jaw)."""
    cx, cy, rx, ry = ellipse
    if rx <= 0 or ry <= 0 or not 0 < feather <= 1:
        raise ValueError(f"ellipse radii must be > 0 and feather in (0, 1], got {list(ellipse)}, {feather}")
    y = ((np.arange(height, dtype=np.float32) + 0.5) / height - cy) / ry
    x = ((np.arange(width, dtype=np.float32) + 0.5) / width - cx) / rx
    r = np.sqrt(y[:, None] ** 2 + x[None, :] ** 2)  # 1 on the rim
    t = np.clip((1.0 - r) / feather, 0.0, 1.0)
    return (t * t * (3 - 2 * t)).astype(np.float32)


def warp_by_flow(images: torch.Tensor, flow: torch.Tensor, smooth: int) -> torch.Tensor:
    """images [N,3,S,S] resampled at (x, y) + flow: flow [N,2,S,S] in grid_sample units (x then y; [-1, 1] spans the
    image, so a flow of 2/S moves content by one pixel), box-filtered over `smooth` x `smooth` pixels first (border
    pixels average what lies inside the image). Bilinear, border padding, align_corners=False."""
    n, _, h, w = images.shape
    if smooth > 1:
        flow = F.avg_pool2d(flow, smooth, stride=1, padding=smooth // 2, count_include_pad=False)
    ys = (torch.arange(h, dtype=flow.dtype, device=flow.device) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, dtype=flow.dtype, device=flow.device) + 0.5) * (2.0 / w) - 1.0
    base = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # [S,S,2]: (x, y) of every pixel centre
    grid = base.unsqueeze(0) + flow.permute(0, 2, 3, 1)
    return F.grid_sample(images, grid.to(images.dtype), mode="bilinear", padding_mode="border", align_corners=False)


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

    def __init__(self, sizes: list[int], channels: list[int], bottleneck: int, norm: str = "batch"):
        super().__init__()
        levels, cin = [], 3
        for i, cout in enumerate(channels):
            first = conv_relu_bn(cin, cout, 7, 1, norm=norm) if i == 0 else conv_relu_bn(cin, cout, 3, 2, 1, norm=norm)
            levels.append(nn.Sequential(first, conv_relu_bn(cout, cout, 3, norm=norm),
                                        conv_relu_bn(cout, cout, 3, norm=norm)))
            cin = cout
        self.levels = nn.ModuleList(levels)
        self.bottleneck = nn.Sequential(conv_relu_bn(cin, bottleneck, sizes[-1], 1, 0, norm=norm),
                                        conv_relu_bn(bottleneck, bottleneck, 1, norm=norm))

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
        if cfg.upsample not in UPSAMPLES:
            raise ValueError(f"generator upsample must be one of {UPSAMPLES}, got {cfg.upsample!r}")
        self.cfg = cfg
        sizes = level_sizes(cfg.face_size)
        channels = [min(cfg.width * 2**i, cfg.max_width) for i in range(len(sizes))]
        bottleneck = min(cfg.width * 2 ** len(sizes), cfg.max_width)
        norm = cfg.norm
        self.identity_encoder = FaceEncoder(sizes, channels, bottleneck, norm)
        self.pose_encoder = FaceEncoder(sizes, channels, bottleneck, norm)
        self.reduce = conv_relu_bn(2 * bottleneck, bottleneck, 1, norm=norm)

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
            if i == len(sizes) - 1:  # 1x1 -> r x r (one input pixel: no checkerboard to avoid)
                up = up_relu_bn(cin, cout, sizes[-1], 1, 0, 0, norm=norm)
            elif cfg.upsample == "resize":
                up = resize_up_relu_bn(cin, cout, norm=norm)
            else:  # x2
                up = up_relu_bn(cin, cout, 3, 2, 1, 1, norm=norm)
            decoder.append(nn.Sequential(up, conv_relu_bn(cout, cout, 3, norm=norm),
                                         conv_relu_bn(cout, cout, 3, norm=norm)))
            cin = cout * skip_factor
        self.decoder = nn.ModuleList(decoder)
        if cfg.blend_mode not in BLEND_MODES:
            raise ValueError(f"generator blend_mode must be one of {BLEND_MODES}, got {cfg.blend_mode!r}")
        if cfg.blend_mode == "warp" and not cfg.reference_blend:
            raise ValueError("generator blend_mode 'warp' needs reference_blend: true (it warps the reference)")
        if cfg.flow_max <= 0 or cfg.flow_smooth < 1 or cfg.flow_smooth % 2 == 0:
            raise ValueError(f"generator flow_max must be > 0 and flow_smooth odd and >= 1, "
                             f"got {cfg.flow_max}, {cfg.flow_smooth}")
        # RGB (+ alpha with reference_blend, + flow with warp); the sigmoid is applied in forward. Same parameter names
        # either way.
        self.output = nn.Sequential(conv_relu_bn(cin, channels[0], 3, norm=norm),
                                    nn.Conv2d(channels[0], HEAD_CHANNELS[cfg.blend_mode] if cfg.reference_blend else 3, 1))
        if cfg.reference_blend:
            with torch.no_grad():
                self.output[1].bias[3].fill_(cfg.blend_bias)
                if cfg.blend_mode in ("residual", "warp"):  # no change, no flow at the start: G returns the reference
                    for rows in (slice(0, 3), slice(4, None)):
                        self.output[1].weight[rows].zero_()
                        self.output[1].bias[rows].zero_()
        self.register_buffer("seam", seam_mask(cfg.face_size, cfg.seam), persistent=False)
        if cfg.paint_ellipse and len(cfg.paint_ellipse) != 4:
            raise ValueError(f"generator paint_ellipse must be [cx, cy, rx, ry] or [], got {cfg.paint_ellipse}")
        paint = (ellipse_mask(cfg.face_size, cfg.face_size, cfg.paint_ellipse, cfg.paint_feather)
                 if cfg.paint_ellipse else np.zeros((cfg.face_size, cfg.face_size), np.float32))
        self.register_buffer("paint", torch.from_numpy(paint), persistent=False)  # [S, S]

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
        head = self.output(x)
        if self.cfg.reference_blend:  # [N,4,S,S]: RGB (or change) and alpha
            alpha = 1 - (1 - torch.sigmoid(head[:, 3:])) * (1 - self.paint.to(head.dtype))  # 1 in the paint region
            ref = identity.reshape(n, 3, s, s)
            if self.cfg.blend_mode == "warp":
                ref = warp_by_flow(ref, self.cfg.flow_max * torch.tanh(head[:, 4:6]), self.cfg.flow_smooth)
            if self.cfg.blend_mode in ("residual", "warp"):
                out = ref + alpha * torch.tanh(head[:, :3])
                if not self.training:
                    out = out.clamp(0.0, 1.0)
            else:
                out = alpha * torch.sigmoid(head[:, :3]) + (1 - alpha) * ref
            out = out.reshape(b, k, 3, s, s)
        else:
            out = torch.sigmoid(head).reshape(b, k, 3, s, s)
        if self.cfg.compose:
            m = self.seam.to(out.dtype)  # [S, 1]: broadcasts over width
            out = m * out + (1 - m) * pose
        return out
