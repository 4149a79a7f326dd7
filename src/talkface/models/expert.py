"""The sync-expert interface shared by SyncNet and AVSyncNet (the registry and checkpoint files: expert_io.py).

An expert maps a mel window and k face frames to two 512-d embeddings that are non-negative (final ReLU) and
L2-normalised, so their cosine similarity lies in [0, 1] and can be read as a probability of being in sync (BCE).

    expert.embed_audio(mel)      # [B,1,80,16] -> [B,D]
    expert.embed_video(frames)   # [B,k,3,S,S] full faces in [0,1] -> [B,D]; lower half taken and resized here
    expert.similarity(a, v)      # [B,D], [B,D] -> [B] cosine in [0,1]
    expert(mel, frames)          # -> [B] cosine
    expert.audio_encoder         # nn.Module [B,1,80,16] -> [B,D,1,1] (a generator may reuse it, frozen)

`expert.checkpoint()` is the dict `expert_io.load_expert` reads back. This module imports no model: syncnet.py and
avsyncnet.py subclass `SyncExpert` from here, and expert_io.py imports both.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .layers import MEL_BANDS, MEL_STEPS


def check_mel(mel: torch.Tensor, what: str = "mel") -> None:
    if mel.dim() != 4 or tuple(mel.shape[1:]) != (1, MEL_BANDS, MEL_STEPS):
        raise ValueError(f"{what}: expected [B,1,{MEL_BANDS},{MEL_STEPS}], got {list(mel.shape)}")


def check_frames(frames: torch.Tensor, k: int | None = None, what: str = "frames") -> None:
    if frames.dim() != 5 or frames.shape[2] != 3 or frames.shape[3] != frames.shape[4]:
        raise ValueError(f"{what}: expected [B,k,3,S,S], got {list(frames.shape)}")
    if k is not None and frames.shape[1] != k:
        raise ValueError(f"{what}: expected k={k} frames, got {frames.shape[1]}")


def lower_half_stack(frames: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """[B,k,3,S,S] full faces -> [B,3k,H,W]: lower halves resized to (H,W), frames stacked on channels.

    Channel order is frame-major (f0 RGB, f1 RGB, ...), as Wav2Lip concatenates its window.
    """
    b, k, c, s, _ = frames.shape
    lower = frames[:, :, :, s // 2 :, :].reshape(b * k, c, s - s // 2, s)
    if tuple(lower.shape[-2:]) != tuple(size_hw):
        lower = F.interpolate(lower, size=tuple(size_hw), mode="bilinear", align_corners=False)
    return lower.reshape(b, k * c, *size_hw)


class SyncExpert(nn.Module):
    """Base class: subclasses set `audio_encoder`, `face_encoder`, `k` and `face_input_hw` (lower-half H, W)."""

    arch: str = ""
    audio_encoder: nn.Module
    face_encoder: nn.Module
    k: int
    face_input_hw: tuple[int, int]

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """[B,1,80,16] -> [B,D] non-negative, unit norm."""
        check_mel(mel)
        return F.normalize(self.audio_encoder(mel).flatten(1), dim=1)

    def embed_video(self, frames: torch.Tensor) -> torch.Tensor:
        """[B,k,3,S,S] full faces in [0,1] -> [B,D] non-negative, unit norm."""
        check_frames(frames, self.k)
        x = lower_half_stack(frames, self.face_input_hw)
        return F.normalize(self.face_encoder(x).flatten(1), dim=1)

    @staticmethod
    def similarity(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Cosine of two batches of embeddings, [B,D] x [B,D] -> [B]; clamped to [0,1] against rounding."""
        return F.cosine_similarity(a, v, dim=1, eps=1e-8).clamp(0.0, 1.0)

    def forward(self, mel: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.similarity(self.embed_audio(mel), self.embed_video(frames))

    def freeze(self) -> "SyncExpert":
        """No gradients into the expert's weights and eval mode (BatchNorm statistics stay fixed)."""
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def checkpoint(self) -> dict[str, Any]:
        """The dict `load_expert` reads back: {"arch", "config", "state_dict"}."""
        return {"arch": self.arch, "config": dataclasses.asdict(self.cfg), "state_dict": self.state_dict()}
