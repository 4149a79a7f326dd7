"""The identity reference of each dub segment: the window of the segment whose mouth is the most closed.

    picks = closed_windows(openings, boxes, n_out, every, k, long_audio)   # {segment: source start frame}
    crops = reference_crops(video, info, fps, picks, boxes, k, size, detect_size)  # {segment: uint8 [k, S, S, 3]}

G_L keeps much of its reference: on a face it never saw, an open reference mouth (teeth and all) stays visible in
every dubbed frame, whatever the new speech says. P1 closes the reference's lips with G_S for this reason (lip
leaking); G_S trained on one face does not close other faces' lips, but the video itself has frames with closed
lips. The face pass (dlib or FAN landmarks) gives each frame's mouth opening (inner-lip gap over inter-ocular
distance); each segment of `reference_every` output frames takes the k consecutive source frames with the smallest
mean opening. Measured on the four people held out of experiments/grid_real (docs/dubbing.md). Ours, not the papers'.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..faces.crop import crop_frames
from ..media.decode import iter_frames
from ..media.probe import MediaInfo
from .media_io import prefetch


def source_index(t: np.ndarray, n_source: int, long_audio: str) -> np.ndarray:
    """Source frame (of the face pass's `n_source` frames) shown at output frames `t`: the video once, then looped or
    its last frame held (dubbing.timeline)."""
    t = np.asarray(t)
    if long_audio == "hold":
        return np.minimum(t, n_source - 1)
    return t % n_source


def closed_windows(openings: np.ndarray, boxes: np.ndarray, n_out: int, every: int, k: int,
                   long_audio: str) -> dict[int, int]:
    """{output segment: start s of the source window [s, s + k) with the smallest mean opening among the windows of
    source frames that the segment shows, every frame with a face and an opening}. Segments without such a window are
    left out (the dubber then takes the segment's first window, as without landmarks)."""
    openings = np.asarray(openings, np.float64)
    n_source = len(openings)
    usable = np.isfinite(openings) & np.isfinite(np.asarray(boxes, np.float64)).all(axis=1)
    if n_source < k or not usable.any():
        return {}
    # mean opening of every source window, inf where a frame lacks a face or an opening
    score = np.full(n_source - k + 1, np.inf)
    ok = np.convolve(usable.astype(np.int64), np.ones(k, np.int64), "valid") == k
    sums = np.convolve(np.where(usable, openings, 0.0), np.ones(k), "valid")
    score[ok] = sums[ok] / k
    picks = {}
    for seg in range((n_out + every - 1) // every):
        shown = np.unique(source_index(np.arange(seg * every, min(n_out, (seg + 1) * every)), n_source, long_audio))
        starts = shown[shown <= n_source - k]
        starts = starts[np.isin(starts + k - 1, shown)]  # the whole window lies in what the segment shows
        if len(starts) and np.isfinite(score[starts]).any():
            picks[seg] = int(starts[np.argmin(score[starts])])
    return picks


def reference_crops(video: Path, info: MediaInfo, fps: float, picks: dict, boxes: np.ndarray, k: int,
                    size: int, detect_size: tuple[int, int] | None, threads: int = 0,
                    queue: int = 0) -> dict:
    """{key: uint8 [k, size, size, 3]} for picks {key: source start frame} (a segment, or any other key: the dub
    also crops the windows of dubbing.norm_stats in the same decode): the picked windows cropped with the face track's boxes (full-frame
    pixels), from frames decoded at `detect_size` (the face pass's size; full size when None): a 96-px crop needs no
    4K pixels. Decodes up to the last picked frame only."""
    if not picks:
        return {}
    sx, sy = (detect_size[0] / info.width, detect_size[1] / info.height) if detect_size else (1.0, 1.0)
    scale = np.array([sx, sy, sx, sy], np.float32)
    wanted = {j for s in picks.values() for j in range(s, s + k)}
    last = max(wanted)
    frames: dict[int, np.ndarray] = {}
    t = 0
    it = prefetch(iter_frames(video, fps, 16, info, size=detect_size, threads=threads, queue=queue))
    try:
        for chunk in it:
            for i, frame in enumerate(chunk):
                if t + i in wanted:
                    frames[t + i] = crop_frames(frame[None], boxes[t + i][None] * scale, size)[0]
            t += len(chunk)
            if t > last:
                break
    finally:
        it.close()
    return {seg: np.stack([frames[j] for j in range(s, s + k)]) for seg, s in picks.items()
            if all(j in frames for j in range(s, s + k))}
