"""The generators in dubbing: G_S references and G_L windows, with the inputs of training (talkface.model_inputs).

    lips = LipSync(g_l, g_s, window, mel, device, amp)
    for out, src, box, dubbed in dub_windows(lips, windows, mel, ref_cache, stats, reference_every, ...): ...

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
from .paste import paste_face
from ..model_inputs import (WindowConfig, check_window, frame_mel_windows, pose_input, reference_segment, silent_mel,
                            silent_reference_inputs, to_float, to_uint8)

PASTE_REGIONS = ("ellipse", "lower", "full")


@dataclasses.dataclass
class PasteConfig:
    """How a generated crop goes back into the frame (params `dub.paste`)."""

    region: str = "ellipse"  # ellipse (the lower face under a feathered ellipse) | lower (box's lower half) | full
    feather: float = 0.3  # ellipse: share of the radius that fades out; lower/full: share of the region's side
    ellipse: list[float] = dataclasses.field(default_factory=lambda: [0.5, 0.74, 0.36, 0.26])  # cx, cy, rx, ry (crop)
    colour_match: bool = True  # shift the crop's colours to the frame's in the blend band (ellipse only)
    detail_tolerance: float = 12.0  # restore the frame's fine detail where generated and original agree within this
    #                                 many grey levels at the crop's resolution (dubbing.paste.restore_detail); 0 = off
    sharpen: float = 1.0  # unsharp-mask amount of the upscaled generated face (dubbing.paste.unsharp); 0 = off

    def __post_init__(self) -> None:
        if self.region not in PASTE_REGIONS:
            raise ValueError(f"dub.paste.region must be one of {PASTE_REGIONS}, got {self.region!r}")
        if len(self.ellipse) != 4:
            raise ValueError(f"dub.paste.ellipse must be [cx, cy, rx, ry], got {self.ellipse}")
        if self.sharpen < 0:
            raise ValueError(f"dub.paste.sharpen must be >= 0, got {self.sharpen}")


def paste(out: np.ndarray, generated: np.ndarray, original: np.ndarray, box: np.ndarray, cfg: PasteConfig) -> None:
    """Write generated crop uint8 [S,S,3] into frame `out` (in place) at `box`; `original` is the input's crop there."""
    if cfg.region == "ellipse":
        paste_face(out, generated, original, box, tuple(cfg.ellipse), cfg.feather, cfg.colour_match,
                   cfg.detail_tolerance, cfg.sharpen)
    else:
        x0, y0, x1, y1 = (int(v) for v in box)
        out[y0:y1, x0:x1] = paste_back(out, generated, box, cfg.feather, cfg.region)[y0:y1, x0:x1]


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

    def window_inputs(self, crops: np.ndarray, mel: np.ndarray, starts: list[int],
                      silent: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Pose input [n,k,3,S,S] of crops uint8 [n,k,S,S,3] and per-frame mel windows [n,k,1,80,16] of the windows
        starting at output frames `starts`, on the device. Frames marked in `silent` (bool, per output frame) get
        the silent mel, so their lips close."""
        pose = pose_input(to_float(torch.from_numpy(crops).to(self.device, non_blocking=True)))
        windows = np.stack([frame_mel_windows(mel, s, self.window) for s in starts])
        if silent is not None:
            quiet = np.array([[s + i < len(silent) and silent[s + i] for i in range(self.k)] for s in starts])
            windows[quiet] = self.silent_mel.cpu().numpy()
        return pose, torch.from_numpy(windows).to(self.device)

    def generate(self, pose: torch.Tensor, identity: torch.Tensor, mels: torch.Tensor) -> np.ndarray:
        """G_L -> uint8 [n, k, S, S, 3]."""
        return to_uint8(self._run(self.g_l, pose, identity, mels))


def dub_windows(lips: LipSync, batch: list[DubWindow], mel: np.ndarray, ref_cache: dict, stats: dict,
                reference_every: int, paste_cfg: PasteConfig, silent: np.ndarray | None = None,
                keep_source: bool = True, ref_crops: dict[int, np.ndarray] | None = None) -> Iterator[tuple]:
    """Run G_S (new reference segments) and G_L on a batch of windows; paste. Yields (out [1, H, W, 3], input
    [1, H, W, 3] or None, box [1, 4], dubbed [1]) one frame at a time. The generated mouth is pasted into the decoded
    frame itself (a copy only of read-only frames), and each window lets go of its frames once yielded: at 4K a frame
    is 25 MB, so no window is stacked or copied whole. `keep_source`: also yield the input frame (a copy of the
    dubbed ones, made before pasting); off in `talkface dub`. `silent`: bool per output frame, the frames whose speech
    is silent (closed lips). `ref_crops`: {segment: uint8 [k, S, S, 3]}, the reference window of those segments
    (dubbing.reference); other segments take their first window with a face."""
    todo = [w for w in batch if w.dub[: w.n].any()]
    for w in todo:  # frames without a final box (no face): borrow the nearest box of the window
        have = ~np.isnan(w.boxes).any(axis=1)
        if not have.all():
            idx = np.flatnonzero(have)
            for i in np.flatnonzero(~have):
                w.boxes[i] = w.boxes[idx[np.argmin(np.abs(idx - i))]]
        w.crops = crop_frames(w.frames, w.boxes, lips.size)  # frame by frame: no stacked copy of full frames
    generated = {}
    if todo:
        # one reference window per segment: the picked one, else the segment's first window with a face
        new = {}
        for w in todo:
            seg = reference_segment(w.start, reference_every)
            if seg not in ref_cache and seg not in new:
                new[seg] = ref_crops[seg] if ref_crops and seg in ref_crops else w.crops
        if new:
            refs = lips.reference(np.stack(list(new.values())))
            oldest = min(reference_segment(w.start, reference_every) for w in todo)
            for seg in list(ref_cache):
                if seg < oldest:
                    del ref_cache[seg]  # segments only move forward
            ref_cache.update(zip(new, refs))
            stats["references"] += len(new)
        pose, mels = lips.window_inputs(np.stack([w.crops for w in todo]), mel, [w.start for w in todo], silent)
        identity = torch.stack([ref_cache[reference_segment(w.start, reference_every)] for w in todo])
        generated = dict(zip((id(w) for w in todo), lips.generate(pose, identity, mels)))
    for w in batch:
        g = generated.get(id(w))
        for i in range(w.n):
            frame = w.frames[i]
            src = frame[None] if keep_source else None
            if g is not None and w.dub[i]:
                if keep_source or not frame.flags.writeable:  # a held frame is a read-only view of the last one
                    frame = frame.copy()
                paste(frame, g[i], w.crops[i], w.boxes[i], paste_cfg)
                stats["dubbed"] += 1
            w.frames[i] = None  # the window lets go of each frame once it is out
            yield frame[None], src, w.boxes[i: i + 1].copy(), w.dub[i: i + 1].copy()
        w.frames, w.crops = [], None
