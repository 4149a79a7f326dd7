"""Decode video to constant-rate RGB frames and audio to mono float PCM, through ffmpeg-python.

Video is resampled with ffmpeg's `fps` filter (drops/duplicates frames on the output clock, so a 30 fps or variable
frame-rate input of duration d gives about d*25 frames at 25 fps) and streamed in chunks, so a long video never has to
fit in memory:

    for chunk in iter_frames("talk.mp4", fps=25, chunk_frames=64):   # uint8 [n<=64, H, W, 3] RGB
        ...
"""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Iterator

import ffmpeg
import numpy as np

from .ffmpeg_bin import ffmpeg_exe
from .probe import NO_AUDIO, NO_VIDEO, UNREADABLE, ZERO_LENGTH, MediaError, MediaInfo, probe


def _input(path: str | Path, start: float | None, duration: float | None):
    """ffmpeg input node of `path`, optionally only the span [start, start + duration) seconds."""
    kwargs = {}
    if start:
        kwargs["ss"] = start
    if duration is not None:
        kwargs["t"] = duration
    return ffmpeg.input(str(path), **kwargs)


def iter_frames(path: str | Path, fps: float = 25.0, chunk_frames: int = 64, info: MediaInfo | None = None,
                start: float | None = None, duration: float | None = None) -> Iterator[np.ndarray]:
    """Yield uint8 [n, H, W, 3] RGB chunks (n <= chunk_frames) of the video resampled to `fps`.

    `start`/`duration` (seconds) decode a span only. Raises MediaError when the file has no video stream or ffmpeg
    fails before giving a single frame; a file that breaks midway (truncated) ends the iteration early and the caller
    compares the frame count with `info.duration`.
    """
    info = info or probe(path)
    if not info.has_video:
        raise MediaError(NO_VIDEO, path)
    if info.width <= 0 or info.height <= 0:
        raise MediaError(UNREADABLE, path, "video size unknown")
    stream = (
        _input(path, start, duration)
        .video.filter("fps", fps=fps)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24")
        .global_args("-hide_banner", "-loglevel", "error", "-nostdin")
    )
    proc = subprocess.Popen(stream.compile(cmd=ffmpeg_exe()), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    # drain stderr in the background: a full stderr pipe would block ffmpeg and with it our read of stdout
    err_chunks: list[bytes] = []
    drain = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)
    drain.start()
    frame_bytes = info.width * info.height * 3
    n_frames = 0
    try:
        while True:
            buf = _read_exact(proc.stdout, frame_bytes * chunk_frames)
            n = len(buf) // frame_bytes
            if n:
                n_frames += n
                yield np.frombuffer(buf[: n * frame_bytes], np.uint8).reshape(n, info.height, info.width, 3)
            if len(buf) < frame_bytes * chunk_frames:
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.wait()
        drain.join(timeout=5)
    if n_frames == 0:
        err = b"".join(err_chunks).decode(errors="replace").strip().splitlines()
        if proc.returncode not in (0, None) and err:
            raise MediaError(UNREADABLE, path, err[-1][:200])
        raise MediaError(ZERO_LENGTH, path, "no frame decoded")


def read_frames(path: str | Path, fps: float = 25.0, info: MediaInfo | None = None, **kwargs) -> np.ndarray:
    """The whole video as uint8 [T, H, W, 3] RGB at `fps` (for short clips; use iter_frames for long ones)."""
    return np.concatenate(list(iter_frames(path, fps=fps, info=info, **kwargs)), axis=0)


def read_audio(path: str | Path, sample_rate: int = 16000, info: MediaInfo | None = None,
               start: float | None = None, duration: float | None = None) -> np.ndarray:
    """The first audio stream as float32 [N] mono in [-1, 1] at `sample_rate` (channels averaged by ffmpeg)."""
    info = info or probe(path)
    if not info.has_audio:
        raise MediaError(NO_AUDIO, path)
    stream = (
        _input(path, start, duration)
        .audio.output("pipe:", format="f32le", acodec="pcm_f32le", ac=1, ar=sample_rate)
        .global_args("-hide_banner", "-loglevel", "error", "-nostdin")
    )
    try:
        out, _ = stream.run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as exc:
        err = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        raise MediaError(UNREADABLE, path, err[-1][:200] if err else "ffmpeg failed on audio") from None
    audio = np.frombuffer(out, np.float32).copy()
    if audio.size == 0:
        raise MediaError(ZERO_LENGTH, path, "no audio sample decoded")
    return audio


def _read_exact(f, n: int) -> bytes:
    """Read n bytes from a pipe (a pipe read may return fewer); fewer only at end of stream."""
    parts, got = [], 0
    while got < n:
        b = f.read(n - got)
        if not b:
            break
        parts.append(b)
        got += len(b)
    return b"".join(parts)
