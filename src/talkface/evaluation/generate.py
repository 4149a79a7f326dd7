"""Generation for the evaluate stage: G_L (and G_S) over a whole clip, with the inputs of training.

A clip is tiled with k-frame windows (starts 0, k, 2k, ..., the last one moved back to end at T). Each window gets
the generator inputs built by talkface.model_inputs, as in training: the pose input, the identity reference
(`evaluation_reference`: drawn from (seed, clip id, window start)), per-frame mel windows (clamped at the clip ends);
when the G_L checkpoint says it was trained with silent-lip references, the reference first goes through G_S with
the configured silent mel (P1).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..data.mel import MelConfig
from ..model_inputs import (WindowConfig, check_window, close_lips, evaluation_reference, frame_mel_windows,
                            pose_input, silent_mel, to_float, to_uint8)

FLOORS = ("paste", "masked")


def window_starts(n_frames: int, k: int) -> list[int]:
    """Starts of the k-frame windows that tile [0, n_frames): 0, k, 2k, ..., with the last one ending at n_frames."""
    if n_frames < k:
        raise ValueError(f"a clip of {n_frames} frames is shorter than one {k}-frame window")
    starts = list(range(0, n_frames - k + 1, k))
    if starts[-1] + k < n_frames:
        starts.append(n_frames - k)
    return starts


def floor_frames(gt: np.ndarray, identity: np.ndarray, kind: str) -> np.ndarray:
    """The no-learning baseline frames uint8 [T,S,S,3]: "paste" = ground-truth upper half + identity-reference lower
    half; "masked" = the pose input itself (lower half black)."""
    if kind == "masked":
        return to_uint8(pose_input(to_float(gt)))
    if kind == "paste":
        out = np.array(gt, copy=True)
        h = out.shape[1] // 2
        out[:, h:] = identity[:, h:]
        return out
    raise ValueError(f"evaluate.floor must be one of {FLOORS}, got {kind!r}")


@dataclasses.dataclass
class Generators:
    """G_L and, when G_L was trained with silent-lip references, G_S and the silent mel window [1,80,16]."""

    lip: torch.nn.Module
    k: int
    face_size: int
    silent: torch.nn.Module | None = None
    silent_mel: np.ndarray | None = None
    info: dict = dataclasses.field(default_factory=dict)


def window_batch(frames: np.ndarray, mel: np.ndarray, starts: list[int], refs: list[int],
                 window: WindowConfig) -> dict[str, torch.Tensor]:
    """Generator inputs of windows of one clip: frames uint8 [T,S,S,3], mel [T_mel,80], window starts and their
    identity-reference starts -> pose, identity [B,k,3,S,S] and indiv_mels [B,k,1,80,16] (CPU tensors)."""
    k = window.k
    target = to_float(np.stack([frames[f:f + k] for f in starts]))
    return {"pose": pose_input(target),
            "identity": to_float(np.stack([frames[g:g + k] for g in refs])),
            "indiv_mels": torch.from_numpy(np.stack([frame_mel_windows(mel, f, window) for f in starts]))}


@torch.no_grad()
def generate_clip(gens: Generators, frames: np.ndarray, mel: np.ndarray, clip_id: str, seed: int,
                  batch_size: int, device: torch.device, window: WindowConfig) -> dict[str, np.ndarray]:
    """Run G_L over one clip. frames uint8 [T,S,S,3], mel [T_mel,80] -> uint8 arrays [T,S,S,3]:
    `generated`, `identity` (the raw identity reference frame used for each frame) and `silent_ref` (its G_S version,
    only when G_S is used)."""
    k, n = gens.k, len(frames)
    if k != window.k:
        raise ValueError(f"the generator takes k={k} frames, windows.k is {window.k}")
    if frames.shape[1:] != (gens.face_size, gens.face_size, 3):
        raise ValueError(f"clip {clip_id}: frames {frames.shape[1:]} do not match the generator's "
                         f"{gens.face_size}px faces")
    starts = window_starts(n, k)
    generated = np.empty_like(frames)
    identity = np.empty_like(frames)
    silent_ref = np.empty_like(frames) if gens.silent is not None else None
    for b in range(0, len(starts), batch_size):
        batch = starts[b:b + batch_size]
        refs = [evaluation_reference(clip_id, f, n, k, seed) for f in batch]
        inputs = {name: t.to(device) for name, t in window_batch(frames, mel, batch, refs, window).items()}
        ident = inputs["identity"]
        if gens.silent is not None:
            ident = close_lips(gens.silent, ident, torch.from_numpy(gens.silent_mel))
        out = to_uint8(gens.lip(inputs["pose"], ident, inputs["indiv_mels"]))      # [B,k,S,S,3]
        for i, (f, g) in enumerate(zip(batch, refs)):
            generated[f:f + k] = out[i]
            identity[f:f + k] = frames[g:g + k]
            if silent_ref is not None:
                silent_ref[f:f + k] = to_uint8(ident[i])
    return {"generated": generated, "identity": identity, "silent_ref": silent_ref}


def load_generators(generator: Path, silent_generator: Path, silent_reference: str, device: torch.device,
                    window: WindowConfig, mel: MelConfig) -> Generators:
    """G_L from `generator`, and G_S from `silent_generator` when G_L was trained with silent-lip references (the
    checkpoint says so; `silent_reference` "always" | "never" forces it on or off, "auto" follows the checkpoint)."""
    from ..models import generator_io

    check_window(window, mel)
    if silent_reference not in ("auto", "always", "never"):
        raise ValueError(f"evaluate.silent_reference must be auto, always or never, got {silent_reference!r}")
    if not generator.is_file():
        raise FileNotFoundError(f"G_L checkpoint not found: {generator} (run the train_generator stage first)")
    g_l = generator_io.load_generator(generator, map_location=device)
    trained_with_silent = generator_io.uses_silent_reference(g_l)
    use_silent = {"auto": trained_with_silent, "always": True, "never": False}[silent_reference]
    g_s = None
    if use_silent:
        if not silent_generator.is_file():
            raise FileNotFoundError(f"G_S checkpoint not found: {silent_generator}, and G_L was trained with "
                                    "silent-lip references (set evaluate.silent_reference: never to run without)")
        g_s = generator_io.load_generator(silent_generator, map_location=device).to(device).eval()
    info = {"checkpoint": str(generator), "trained_with_silent_reference": trained_with_silent,
            "silent_reference_used": use_silent, "audio_source": g_l.audio.get("source")}
    return Generators(g_l.to(device).eval(), g_l.cfg.k, g_l.cfg.face_size, g_s,
                      silent_mel(mel, window.mel_steps) if g_s is not None else None, info)
