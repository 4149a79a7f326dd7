"""Geometric transforms of face windows: horizontal shift, shear, rotation (P1 Fig. B / Fig. 6), and the random
training augmentation of the sync experts built from them.

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

import torch
import torch.nn.functional as F

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


__all__ = ["AugmentConfig", "PADDINGS", "TRANSFORMS", "random_augment", "rotate", "rotation_matrix", "shear",
           "shear_matrix", "shift", "shift_matrix", "warp"]
