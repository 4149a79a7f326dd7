"""What a generator and a sync expert consume, built one way for training, evaluation and dubbing.

The window dataset (data/windows.py), the evaluate stage and the dubber call these functions; tests/test_model_inputs.py
checks that the three give identical tensors for the same clip and frame. Shapes: k frames per window, S the face
side, M = `mel_steps` (16), B = `n_mels` (80).

- pose input: the k target frames with the lower half zeroed (`pose_input`);
- identity reference: k frames of the same clip that do not overlap the target window (`non_overlapping_starts`),
  drawn per training item (`training_reference`) or from (seed, clip id, window start) in evaluation
  (`evaluation_reference`); dubbing has no ground truth to leak and takes the first window with a face of each
  segment of `dub.reference_every` frames (`reference_segment`). With G_S the reference is G_S(pose input of the
  reference, reference, silent mel) (`silent_reference_inputs`), the closed-lip version (P1);
- mel windows (METHOD.md §1): the window aligned with frames f..f+k-1 starts at mel frame int(mel_fps * f / fps) and
  holds `mel_steps` frames; frame j's own window (the generator's "indiv_mels") is the aligned window of frame
  j - k//2. One edge rule: a window that would start before the audio or end after it is moved inside it (clamped).
  The training dataset draws only windows that need no clamping, so the rule acts at clip ends in evaluation and
  dubbing only;
- silent mel: the mel of digital silence under the configured mel parameters (`silent_mel`), the G_S input.

`WindowConfig` holds the window shape (params `windows`); `fps` and `mel_fps` are passed down by the stages from the
one place they are defined (the clip store's rate and the mel parameters), so every path uses the same numbers.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any

import numpy as np
import torch

from .config import section
from .data.mel import MelConfig, mel_start, melspectrogram
from .data.mel_store import mel_params
from .models.layers import MEL_BANDS, MEL_STEPS
from .pipeline_params import fps


@dataclasses.dataclass
class WindowConfig:
    k: int = 5                   # frames per window (P1/P2: 5)
    mel_steps: int = 16          # mel frames per audio window (16 = 0.2 s)
    fps: float = 25.0            # video frames per second (passed down: the clip store's rate)
    mel_fps: float = 80.0        # mel frames per second (passed down: mels.mel sample_rate / hop_length)
    length: int = 1_000_000      # virtual dataset length (items are drawn from (seed, index))


def window_params(params: dict[str, Any]) -> WindowConfig:
    """The pipeline's windows: `windows` at the clip store's fps (`media.fps`) and the mel rate of `mels.mel`."""
    return section(params, "windows", WindowConfig,
                   passed={"fps": fps(params), "mel_fps": mel_params(params).frames_per_second})


def contract_params(params: dict[str, Any]) -> dict[str, Any]:
    """The `passed` values of a config with `window` and `mel` fields (evaluate, dub, the generators)."""
    return {"window": dataclasses.asdict(window_params(params)), "mel": dataclasses.asdict(mel_params(params))}


def check_window(window: WindowConfig, mel: MelConfig | None = None) -> None:
    """The window shape must be the one the audio encoders are built for, and mel_fps the mel parameters' rate."""
    if window.mel_steps != MEL_STEPS:
        raise ValueError(f"windows.mel_steps is {window.mel_steps}, but the audio encoders take {MEL_STEPS} mel steps")
    if mel is not None and mel.n_mels != MEL_BANDS:
        raise ValueError(f"mels.mel.n_mels is {mel.n_mels}, but the audio encoders take {MEL_BANDS} bands")
    if mel is not None and window.mel_fps != mel.frames_per_second:
        raise ValueError(f"window mel_fps {window.mel_fps} differs from the mel parameters' rate "
                         f"{mel.frames_per_second} (sample_rate / hop_length)")


# ---------------------------------------------------------------------------------------------- frames
def to_float(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 [..., S, S, 3] -> float [..., 3, S, S] in [0, 1] (on the input's device)."""
    t = frames if torch.is_tensor(frames) else torch.from_numpy(np.ascontiguousarray(frames))
    return t.movedim(-1, -3).float().div_(255.0)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """float [..., 3, S, S] in [0, 1] -> uint8 [..., S, S, 3] (rounded, as a video stores it), on the CPU."""
    return frames.detach().clamp(0, 1).mul(255).round().to(torch.uint8).movedim(-3, -1).cpu().numpy()


def pose_input(frames: torch.Tensor) -> torch.Tensor:
    """[..., 3, S, S] -> a copy with the lower half (rows S//2..S-1) zeroed: what the generator sees of the target."""
    out = frames.clone()
    out[..., frames.shape[-2] // 2:, :] = 0.0
    return out


# ---------------------------------------------------------------------------------------------- identity reference
def non_overlapping_starts(lo: int, hi: int, start: int, k: int) -> np.ndarray:
    """Window starts in [lo, hi] whose k frames do not overlap [start, start + k), ascending."""
    return np.concatenate([np.arange(lo, max(lo, start - k + 1)), np.arange(min(hi + 1, start + k), hi + 1)])


def training_reference(lo: int, hi: int, start: int, k: int, rng: np.random.Generator) -> int:
    """The identity reference of a training item: a uniform draw among the non-overlapping starts in [lo, hi]."""
    return int(rng.choice(non_overlapping_starts(lo, hi, start, k)))


def evaluation_reference(clip_id: str, start: int, n_frames: int, k: int, seed: int) -> int:
    """The identity reference of an evaluated window: a non-overlapping start in [0, n_frames - k] drawn from
    (seed, clip id, start), so every run and every experiment sees the same references."""
    choices = non_overlapping_starts(0, n_frames - k, start, k)
    if len(choices) == 0:
        raise ValueError(f"clip {clip_id}: {n_frames} frames leave no identity window apart from frame {start}")
    rng = np.random.default_rng([seed, zlib.crc32(clip_id.encode()), start])
    return int(choices[int(rng.integers(len(choices)))])


def reference_segment(start: int, every: int) -> int:
    """Dubbing: the reference segment of the window starting at output frame `start` (one G_S reference each)."""
    return start // every


def silent_reference_inputs(identity: torch.Tensor, silent: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """G_S's inputs that close the lips of identity frames [B,k,3,S,S]: (pose input, identity, silent mels
    [B,k,1,B_mel,M]); `silent` is one window [1,B_mel,M] (`silent_mel`)."""
    b, k = identity.shape[:2]
    mels = silent.to(identity.device, identity.dtype).expand(b, k, *silent.shape)
    return pose_input(identity), identity, mels


def close_lips(g_s: torch.nn.Module, identity: torch.Tensor, silent: torch.Tensor) -> torch.Tensor:
    """G_S(identity) with silent audio: [B,k,3,S,S] -> [B,k,3,S,S] float32, the closed-lip identity reference."""
    return g_s(*silent_reference_inputs(identity, silent)).float()


# ---------------------------------------------------------------------------------------------- mel windows
def mel_window_start(frame: int, n_mel: int, window: WindowConfig) -> int:
    """First mel frame of the window aligned with video frame `frame`, clamped so the window lies in [0, n_mel)."""
    if n_mel < window.mel_steps:
        raise ValueError(f"a mel of {n_mel} frames is shorter than one {window.mel_steps}-step window")
    return min(max(mel_start(frame, window.fps, window.mel_fps), 0), n_mel - window.mel_steps)


def mel_window(mel: np.ndarray, frame: int, window: WindowConfig) -> np.ndarray:
    """[T_mel, B_mel] -> float32 [1, B_mel, M]: the window aligned with frames frame..frame+k-1 (sync experts)."""
    s = mel_window_start(frame, len(mel), window)
    return np.ascontiguousarray(mel[s:s + window.mel_steps].T, dtype=np.float32)[None]


def frame_mel_windows(mel: np.ndarray, start: int, window: WindowConfig) -> np.ndarray:
    """[T_mel, B_mel] -> float32 [k, 1, B_mel, M] for frames start..start+k-1: frame j gets the window of frame
    j - k//2, centred on it (the generator's per-frame audio)."""
    half = window.k // 2
    return np.stack([mel_window(mel, j - half, window) for j in range(start, start + window.k)])


def needs_clamp(frame: int, n_mel: int, window: WindowConfig) -> bool:
    """Whether the window aligned with `frame` would leave the mel (the edge rule would move it)."""
    s = mel_start(frame, window.fps, window.mel_fps)
    return s < 0 or s + window.mel_steps > n_mel


def silent_mel(mel: MelConfig, steps: int) -> np.ndarray:
    """The mel of digital silence, one window float32 [1, n_mels, steps] (every bin at the floor, -4 for Wav2Lip's
    settings), computed with the configured mel parameters."""
    spec = melspectrogram(np.zeros(mel.sample_rate, np.float32), mel)  # one second: more than any window
    if len(spec) < steps:
        raise ValueError(f"one second of audio gives {len(spec)} mel frames, fewer than a {steps}-step window")
    return np.ascontiguousarray(spec[:steps].T)[None]
