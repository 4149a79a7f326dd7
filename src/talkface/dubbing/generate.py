"""The generators in dubbing: G_S references and G_L windows, with the inputs of training (talkface.model_inputs).

    lips = LipSync(g_l, g_s, window, mel, device, amp)
    for out_block, src, boxes, dubbed in dub_windows(lips, windows, mel, ref_cache, stats, reference_every, ...): ...

Windows are k consecutive output frames at global indices start..start+k-1. Each gets the pose input of its crops,
one mel window per frame (model_inputs.frame_mel_windows, clamped to the audio) and the identity reference of its
segment of `reference_every` frames: the segment's first window with a face, through G_S with the silent mel when
G_L was trained so (model_inputs.reference_segment, silent_reference_inputs). Dubbing has no ground truth that the
reference could leak, so it is not kept apart from the target window as in training.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

import numpy as np
import torch

from ..data.mel import MelConfig
from ..faces.crop import crop_frames, paste_back
from ..model_inputs import (WindowConfig, check_window, frame_mel_windows, pose_input, reference_segment, silent_mel,
                            silent_reference_inputs, to_float, to_uint8)


@dataclasses.dataclass
class DubWindow:
    start: int  # global output frame index of its first frame
    frames: list[np.ndarray]  # k full frames (the last window may repeat its last frame)
    boxes: np.ndarray  # [k, 4]
    dub: np.ndarray  # bool [k]
    n: int  # real frames (< k only for the last window)
    crops: np.ndarray | None = None  # uint8 [k, S, S, 3]


class LipSync:
    """G_L (and G_S) on a device, with the model-input contract of training."""

    def __init__(self, g_l: torch.nn.Module, g_s: torch.nn.Module | None, window: WindowConfig, mel: MelConfig,
                 device: torch.device, amp: bool):
        check_window(window, mel)
        if g_l.cfg.k != window.k:
            raise ValueError(f"G_L takes k={g_l.cfg.k} frames, windows.k is {window.k}")
        self.g_l, self.g_s, self.window, self.device = g_l, g_s, window, device
        self.k, self.size = g_l.cfg.k, g_l.cfg.face_size
        self.amp = amp and device.type == "cuda"
        if self.amp:  # channels-last lets cuDNN use its tensor-core NHWC kernels under bf16
            self.g_l = self.g_l.to(memory_format=torch.channels_last)
            if self.g_s is not None:
                self.g_s = self.g_s.to(memory_format=torch.channels_last)
        self.silent_mel = torch.from_numpy(silent_mel(mel, window.mel_steps)).to(device)  # [1, 80, 16]

    def _run(self, gen, pose, identity, mels) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            return gen(pose, identity, mels).float()

    def reference(self, crops: np.ndarray) -> torch.Tensor:
        """G_S on reference windows: uint8 [n, k, S, S, 3] -> float [n, k, 3, S, S] with closed lips (the raw crops
        when the model was trained without G_S)."""
        ref = to_float(torch.from_numpy(crops).to(self.device, non_blocking=True))
        if self.g_s is None:
            return ref
        return self._run(self.g_s, *silent_reference_inputs(ref, self.silent_mel))

    def window_inputs(self, crops: np.ndarray, mel: np.ndarray, starts: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Pose input [n,k,3,S,S] of crops uint8 [n,k,S,S,3] and per-frame mel windows [n,k,1,80,16] of the windows
        starting at output frames `starts`, on the device."""
        pose = pose_input(to_float(torch.from_numpy(crops).to(self.device, non_blocking=True)))
        mels = torch.from_numpy(np.stack([frame_mel_windows(mel, s, self.window) for s in starts])).to(self.device)
        return pose, mels

    def generate(self, pose: torch.Tensor, identity: torch.Tensor, mels: torch.Tensor) -> np.ndarray:
        """G_L -> uint8 [n, k, S, S, 3]."""
        return to_uint8(self._run(self.g_l, pose, identity, mels))


def dub_windows(lips: LipSync, batch: list[DubWindow], mel: np.ndarray, ref_cache: dict, stats: dict,
                reference_every: int, feather: float, paste_region: str) -> Iterator[tuple]:
    """Run G_S (new reference segments) and G_L on a batch of windows; paste. Yields (out frames, input frames,
    boxes, dubbed) one window at a time and lets go of each window's frames once yielded (peak memory)."""
    todo = [w for w in batch if w.dub[: w.n].any()]
    for w in todo:  # frames without a final box (no face): borrow the nearest box of the window
        have = ~np.isnan(w.boxes).any(axis=1)
        if not have.all():
            idx = np.flatnonzero(have)
            for i in np.flatnonzero(~have):
                w.boxes[i] = w.boxes[idx[np.argmin(np.abs(idx - i))]]
        w.crops = crop_frames(np.stack(w.frames), w.boxes, lips.size)
    generated = {}
    if todo:
        # one reference window per segment: the segment's first window with a face
        new = {}
        for w in todo:
            seg = reference_segment(w.start, reference_every)
            if seg not in ref_cache and seg not in new:
                new[seg] = w.crops
        if new:
            refs = lips.reference(np.stack(list(new.values())))
            oldest = min(reference_segment(w.start, reference_every) for w in todo)
            for seg in list(ref_cache):
                if seg < oldest:
                    del ref_cache[seg]  # segments only move forward
            ref_cache.update(zip(new, refs))
            stats["references"] += len(new)
        pose, mels = lips.window_inputs(np.stack([w.crops for w in todo]), mel, [w.start for w in todo])
        identity = torch.stack([ref_cache[reference_segment(w.start, reference_every)] for w in todo])
        generated = dict(zip((id(w) for w in todo), lips.generate(pose, identity, mels)))
    for w in batch:
        src = np.stack(w.frames[: w.n])
        out = src
        g = generated.get(id(w))
        if g is not None:
            out = src.copy()
            for i in np.flatnonzero(w.dub[: w.n]):
                out[i] = paste_back(src[i], g[i], w.boxes[i], feather, paste_region)
            stats["dubbed"] += int(w.dub[: w.n].sum())
        w.frames, w.crops = [], None
        yield out, src, w.boxes[: w.n].copy(), w.dub[: w.n].copy()
