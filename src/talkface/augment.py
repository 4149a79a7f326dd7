"""Geometric transforms of face windows: horizontal shift, shear, rotation (P1 Fig. B / Fig. 6), and the random
training augmentation of the sync experts built from them; `random_appearance`, the generators' colour and mirror
augmentation [ours]; `warp_mel` / `random_mel_warp`, vocal tract length perturbation of mel windows [ours].

All transforms take frames `[B,k,3,S,S]` (or `[B,3,S,S]`) in [0,1] and a magnitude per window (a float, or a tensor
`[B]`); the k frames of a window get the same transform, so the motion between frames is untouched. They resample
with `grid_sample` (bilinear, align_corners=False), so an integer shift moves content by exactly that many pixels.

Conventions (image coordinates, y pointing down, origin at the image centre):
- `shift(frames, s)`: content moves right by s pixels (s < 0: left).
- `shear(frames, deg)`: horizontal shear; the pixel row at height y moves right by tan(deg) * y, the centre row stays.
- `rotate(frames, deg)`: content turns counter-clockwise as displayed by deg degrees about the image centre.
Uncovered pixels take `padding` ("zeros", "border" or "reflection", as grid_sample).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F

from .data.mel import MelConfig

PADDINGS = ("zeros", "border", "reflection")


@dataclasses.dataclass
class AugmentConfig:
    """Random geometric augmentation of training windows (one draw per window, shared by its k frames).

    Wav2Lip trains its expert without augmentation and P1 states none, so `prob` defaults to 0 [ours]; turning it on
    makes the robustness analysis (Fig. 6 analogue) measure training rather than architecture.
    """

    prob: float = 0.0            # chance that a window is transformed; 0 = off
    max_shift: float = 4.0       # pixels, drawn uniformly in [-max, max]
    max_shear: float = 5.0       # degrees
    max_rotation: float = 5.0    # degrees
    padding: str = "border"      # fill of uncovered pixels: zeros | border | reflection

    def __post_init__(self) -> None:
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"augment.prob must be in [0, 1], got {self.prob}")
        if min(self.max_shift, self.max_shear, self.max_rotation) < 0:
            raise ValueError("augment magnitudes must be >= 0")
        if self.padding not in PADDINGS:
            raise ValueError(f"augment.padding must be one of {PADDINGS}, got '{self.padding}'")


def _per_window(value: float | torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """A magnitude as float64 [B] on the frames' device."""
    b = frames.shape[0]
    t = torch.as_tensor(value, dtype=torch.float64, device=frames.device)
    if t.dim() == 0:
        t = t.expand(b)
    if t.shape != (b,):
        raise ValueError(f"magnitude: expected a number or a tensor [B={b}], got shape {list(t.shape)}")
    return t


def _check(frames: torch.Tensor) -> None:
    if frames.dim() not in (4, 5) or frames.shape[-3] != 3 or frames.shape[-1] != frames.shape[-2]:
        raise ValueError(f"frames: expected [B,k,3,S,S] or [B,3,S,S], got {list(frames.shape)}")


def warp(frames: torch.Tensor, sampling: torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Resample frames with per-window 3x3 matrices `sampling` [B,3,3] in normalised coordinates ([-1,1], x right,
    y down) that map an OUTPUT position to the INPUT position it reads (the inverse of the content motion)."""
    _check(frames)
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got '{padding}'")
    shape = frames.shape
    b = shape[0]
    k = shape[1] if frames.dim() == 5 else 1
    flat = frames.reshape(b * k, *shape[-3:])
    theta = sampling[:, :2, :].to(flat.dtype).repeat_interleave(k, dim=0)
    grid = F.affine_grid(theta, list(flat.shape), align_corners=False)
    out = F.grid_sample(flat, grid, mode="bilinear", padding_mode=padding, align_corners=False)
    return out.reshape(shape)


def _eye(b: int, device: torch.device) -> torch.Tensor:
    return torch.eye(3, dtype=torch.float64, device=device).repeat(b, 1, 1)


def shift_matrix(pixels: torch.Tensor, size: int) -> torch.Tensor:
    """Sampling matrices [B,3,3] of a horizontal content shift by `pixels` [B] on an S=size image."""
    m = _eye(pixels.shape[0], pixels.device)
    m[:, 0, 2] = -2.0 * pixels / size  # one pixel is 2/S in normalised units
    return m


def shear_matrix(degrees: torch.Tensor) -> torch.Tensor:
    """Sampling matrices [B,3,3] of a horizontal shear (x += tan(deg) * y about the centre row)."""
    m = _eye(degrees.shape[0], degrees.device)
    m[:, 0, 1] = -torch.tan(torch.deg2rad(degrees))
    return m


def rotation_matrix(degrees: torch.Tensor) -> torch.Tensor:
    """Sampling matrices [B,3,3] of a counter-clockwise (as displayed) rotation about the centre."""
    r = torch.deg2rad(degrees)
    c, s = torch.cos(r), torch.sin(r)
    m = _eye(degrees.shape[0], degrees.device)
    # Content motion with y down: x' = c x + s y, y' = -s x + c y; sampling uses its inverse (the transpose).
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def shift(frames: torch.Tensor, pixels: float | torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Move content horizontally by `pixels` (positive: right). [B,k,3,S,S] -> same shape."""
    return warp(frames, shift_matrix(_per_window(pixels, frames), frames.shape[-1]), padding)


def shear(frames: torch.Tensor, degrees: float | torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Horizontal shear by `degrees` about the centre row. [B,k,3,S,S] -> same shape."""
    return warp(frames, shear_matrix(_per_window(degrees, frames)), padding)


def rotate(frames: torch.Tensor, degrees: float | torch.Tensor, padding: str = "zeros") -> torch.Tensor:
    """Rotate content counter-clockwise (as displayed) by `degrees` about the centre. [B,k,3,S,S] -> same shape."""
    return warp(frames, rotation_matrix(_per_window(degrees, frames)), padding)


# Names used by the robustness analysis (P1 Fig. B: horizontal shifting, random shear, rotation) -> (transform, unit).
TRANSFORMS = {"shift": (shift, "pixels"), "shear": (shear, "degrees"), "rotation": (rotate, "degrees")}


def random_augment(frames: torch.Tensor, cfg: AugmentConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """Training augmentation: with probability cfg.prob per window, a random shift, shear and rotation, each uniform
    in [-max, max], composed into one resampling. Draws from `generator` (default: torch's global RNG, which the
    training loop checkpoints, so a resumed run draws the same transforms)."""
    _check(frames)
    if cfg.prob <= 0:
        return frames
    b, dev = frames.shape[0], frames.device

    def uniform(limit: float) -> torch.Tensor:
        u = torch.rand(b, generator=generator, dtype=torch.float64)
        return ((2 * u - 1) * limit).to(dev)

    apply = (torch.rand(b, generator=generator, dtype=torch.float64) < cfg.prob).to(dev)
    px, sh, rot = uniform(cfg.max_shift), uniform(cfg.max_shear), uniform(cfg.max_rotation)
    zero = torch.zeros_like(px)
    px, sh, rot = torch.where(apply, px, zero), torch.where(apply, sh, zero), torch.where(apply, rot, zero)
    # Content: rotate, then shear, then shift. Sampling matrices compose in the opposite order of the motions.
    sampling = rotation_matrix(rot) @ shear_matrix(sh) @ shift_matrix(px, frames.shape[-1])
    return warp(frames, sampling, cfg.padding)


@dataclasses.dataclass
class AppearanceConfig:
    """[ours] Random appearance of a generator's training window: per-channel colour gains, a gamma and a horizontal
    mirror, one draw per window shared by all its images (target, pose input, identity reference), so the task is
    unchanged while the face it is posed on changes. Trained on one speaker (GRID s1), G otherwise learns that face's
    colours and its left-right lip shape and paints them on everyone. Gains and gamma keep black black, so the pose
    input's masked half stays exactly zero."""

    prob: float = 0.0     # chance that a window's colours are changed; 0 = off (and nothing is drawn)
    gain: float = 0.3     # per-channel gain exp(u), u uniform in [-gain, gain]
    gamma: float = 0.3    # x^exp(u), u uniform in [-gamma, gamma]
    flip: float = 0.0     # chance of a horizontal mirror (drawn on its own)

    def __post_init__(self) -> None:
        if not (0.0 <= self.prob <= 1.0 and 0.0 <= self.flip <= 1.0):
            raise ValueError(f"appearance.prob and appearance.flip must be in [0, 1], got {self.prob}, {self.flip}")
        if min(self.gain, self.gamma) < 0:
            raise ValueError(f"appearance.gain and appearance.gamma must be >= 0, got {self.gain}, {self.gamma}")


def random_appearance(images: list[torch.Tensor], cfg: AppearanceConfig,
                      generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """images: tensors [B,k,3,S,S] in [0,1] of the same windows -> the same list with window b's colours changed
    (clamp(x^gamma_b x gain_b,c)) and mirrored alike in every tensor. Off (prob = flip = 0): the inputs, and no draw
    from the RNG (torch's global one by default, which the training loop checkpoints)."""
    if cfg.prob <= 0 and cfg.flip <= 0:
        return images
    b = images[0].shape[0]
    for x in images:
        if x.dim() != 5 or x.shape[0] != b or x.shape[2] != 3:
            raise ValueError(f"random_appearance: expected tensors [B={b},k,3,S,S], got {list(x.shape)}")

    def uniform(limit: float, *shape: int) -> torch.Tensor:
        return (2 * torch.rand(b, *shape, generator=generator) - 1) * limit

    recolour = torch.rand(b, generator=generator) < cfg.prob
    gains = torch.where(recolour[:, None], uniform(cfg.gain, 3).exp(), torch.ones(b, 3))
    gammas = torch.where(recolour, uniform(cfg.gamma).exp(), torch.ones(b))
    mirror = torch.rand(b, generator=generator) < cfg.flip
    out = []
    for x in images:
        dev = x.device
        g = gains.to(dev, x.dtype).reshape(b, 1, 3, 1, 1)
        e = gammas.to(dev, x.dtype).reshape(b, 1, 1, 1, 1)
        y = (x.clamp(0.0, 1.0) ** e * g).clamp(0.0, 1.0)
        y = torch.where(recolour.to(dev).reshape(b, 1, 1, 1, 1), y, x)
        out.append(torch.where(mirror.to(dev).reshape(b, 1, 1, 1, 1), y.flip(-1), y))
    return out


def slaney_hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale (the filterbank of data.mel): linear, 3/200 mel per Hz, below 1 kHz; logarithmic above,
    27 mel per factor 6.4."""
    hz = torch.as_tensor(hz, dtype=torch.float64)
    return torch.where(hz < 1000.0, hz * 3.0 / 200.0, 15.0 + 27.0 * torch.log(hz.clamp(min=1e-9) / 1000.0) / math.log(6.4))


def slaney_mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    mel = torch.as_tensor(mel, dtype=torch.float64)
    return torch.where(mel < 15.0, mel * 200.0 / 3.0, 1000.0 * torch.exp((mel - 15.0) * math.log(6.4) / 27.0))


def mel_band_centres(mel: MelConfig) -> torch.Tensor:
    """float64 [n_mels] mel value of each band's centre: n_mels + 2 points evenly spaced in mel from fmin to fmax,
    band i centred on point i + 1 (torchaudio's melscale_fbanks)."""
    lo, hi = slaney_hz_to_mel(torch.tensor(mel.fmin)), slaney_hz_to_mel(torch.tensor(mel.fmax))
    return lo + (hi - lo) * torch.arange(1, mel.n_mels + 1, dtype=torch.float64) / (mel.n_mels + 1)


@dataclasses.dataclass
class MelWarpConfig:
    """[ours] Vocal tract length perturbation (Jaitly & Hinton 2013) of training mel windows: the spectrum's frequency
    axis scaled by a factor alpha per window (formants at alpha x their frequency), log-uniform in
    [1 / max_factor, max_factor]. Trained on one speaker (GRID s1), the sync expert's audio encoder and G_L
    otherwise learn that voice's formant positions; a woman's or a child's voice puts them 10-20 % higher."""

    prob: float = 0.0         # chance that a window is warped; 0 = off (and nothing is drawn)
    max_factor: float = 1.15  # largest alpha (and 1 / smallest)

    def __post_init__(self) -> None:
        if not 0.0 <= self.prob <= 1.0:
            raise ValueError(f"mel_warp.prob must be in [0, 1], got {self.prob}")
        if self.max_factor < 1.0:
            raise ValueError(f"mel_warp.max_factor must be >= 1, got {self.max_factor}")


def warp_mel(mel: torch.Tensor, alpha: float | torch.Tensor, bands: MelConfig) -> torch.Tensor:
    """mel [B, ..., n_mels, T] (the `bands` of data.mel on dim -2, any values: the normalised log-mel) -> the same shape with window
    b's frequency axis scaled by alpha_b: band i takes the value at frequency centre_i / alpha_b, linearly
    interpolated between the neighbouring bands on the mel axis, held at the first / last band outside them.
    alpha 1 gives the input."""
    n_mels = bands.n_mels
    if mel.shape[-2] != n_mels:
        raise ValueError(f"warp_mel: expected {n_mels} bands on dim -2, got shape {list(mel.shape)}")
    b = mel.shape[0]
    a = torch.as_tensor(alpha, dtype=torch.float64)
    a = a.expand(b) if a.dim() == 0 else a
    if a.shape != (b,) or bool((a <= 0).any()):
        raise ValueError(f"warp_mel: alpha must be > 0, a number or a tensor [B={b}], got {list(a.shape)}")
    centres = mel_band_centres(bands)
    step = centres[1] - centres[0]
    source = slaney_hz_to_mel(slaney_mel_to_hz(centres)[None, :] / a[:, None])     # [B, n_mels] mel values
    pos = ((source - centres[0]) / step).clamp(0, n_mels - 1)                     # fractional band index
    low = pos.floor().long().clamp(max=n_mels - 2)
    frac = (pos - low).to(mel.dtype).to(mel.device)
    low = low.to(mel.device)
    flat = mel.reshape(b, -1, n_mels, mel.shape[-1])                              # [B, M, n_mels, T]
    index = low[:, None, :, None].expand(-1, flat.shape[1], -1, flat.shape[-1])
    f = frac[:, None, :, None]
    out = torch.gather(flat, 2, index) * (1 - f) + torch.gather(flat, 2, index + 1) * f
    return out.reshape(mel.shape)


def random_mel_factors(batch_size: int, cfg: MelWarpConfig, generator: torch.Generator | None = None) -> torch.Tensor:
    """float64 [B] warp factors: log-uniform in [1/max_factor, max_factor] with chance cfg.prob, else 1. Off
    (prob 0): ones, and no draw from the RNG (torch's global one by default, which the training loop checkpoints)."""
    if cfg.prob <= 0:
        return torch.ones(batch_size, dtype=torch.float64)
    u = (2 * torch.rand(batch_size, generator=generator, dtype=torch.float64) - 1) * math.log(cfg.max_factor)
    on = torch.rand(batch_size, generator=generator, dtype=torch.float64) < cfg.prob
    return torch.where(on, u.exp(), torch.ones_like(u))


def random_mel_warp(mels: list[torch.Tensor], cfg: MelWarpConfig, bands: MelConfig,
                    generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """mels: tensors [B, ..., n_mels, T] of the same windows (e.g. the aligned and the negative window, or the
    per-frame windows and the sync window) -> the same list, window b warped by one factor in all of them (one
    voice per window). Off: the inputs."""
    if cfg.prob <= 0:
        return mels
    factors = random_mel_factors(mels[0].shape[0], cfg, generator)
    return [warp_mel(m, factors, bands) for m in mels]


__all__ = ["AppearanceConfig", "AugmentConfig", "MelWarpConfig", "PADDINGS", "TRANSFORMS", "mel_band_centres",
           "random_appearance", "random_augment", "random_mel_factors", "random_mel_warp", "slaney_hz_to_mel",
           "slaney_mel_to_hz", "warp_mel", "rotate", "rotation_matrix", "shear",
           "shear_matrix", "shift", "shift_matrix", "warp"]
