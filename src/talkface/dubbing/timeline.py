"""The output timeline of dubbing: the video once, then looped (`long_audio="loop"`) or its last frame held ("hold")
until the audio's last frame, decoded chunk by chunk in a background thread."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from ..media.decode import iter_frames
from ..media.probe import TRUNCATED, UNREADABLE, MediaError, MediaInfo
from .media_io import prefetch


def output_timeline(video: Path, info: MediaInfo, n_audio: int, stats: dict, fps: float, chunk_frames: int,
                    long_audio: str, min_decoded_ratio: float,
                    threads: int = 0, queue: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (frames uint8 [n, H, W, 3], source frame index int [n]) along the output timeline: the video once, then
    looped or held until the audio's last frame. The index says which frame of the video's first pass each output
    frame is (the face track is that pass's). Sets stats["video_frames"]. `threads`, `queue`: the decoder's threads and
    output queue (media.decode.iter_frames; 0 = ffmpeg's defaults)."""
    n_video, last = 0, None
    for chunk in prefetch(iter_frames(video, fps, chunk_frames, info, threads=threads, queue=queue)):
        if long_audio == "hold":  # before the dub pastes into the decoded frames: "hold" repeats the untouched one
            last = chunk[-1].copy()
        yield chunk, np.arange(n_video, n_video + len(chunk))
        n_video += len(chunk)
    expected = info.duration * fps
    if expected > 0 and n_video < min_decoded_ratio * expected:
        raise MediaError(TRUNCATED, video, f"decoded {n_video} of ~{expected:.0f} frames")
    stats["video_frames"] = n_video
    t = n_video
    while t < n_audio:
        if long_audio == "hold":
            n = min(chunk_frames, n_audio - t)
            yield np.broadcast_to(last, (n, *last.shape)), np.full(n, n_video - 1)
            t += n
            continue
        s = 0
        for chunk in prefetch(iter_frames(video, fps, chunk_frames, info, threads=threads, queue=queue)):
            chunk = chunk[: min(len(chunk), n_video - s, n_audio - t)]
            if len(chunk) == 0:
                break
            yield chunk, np.arange(s, s + len(chunk))
            s += len(chunk)
            t += len(chunk)
        if s == 0:
            raise MediaError(UNREADABLE, video, "second pass decoded no frame")
