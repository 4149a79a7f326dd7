"""Decode video to constant-rate RGB frames and audio to mono float PCM, through ffmpeg-python.

Video is resampled to the output rate by construction, not by ffmpeg's `fps` filter (whose rounding changed between
ffmpeg versions): ffmpeg passes every decoded frame through unchanged (`-fps_mode passthrough`) with its presentation
timestamp (the `showinfo` filter, exact integer pts and time base), and output frame j is the source frame shown at
time j / fps: the last one with pts <= j / fps (the first one before it starts). The clip ends at the last frame's pts
plus the median frame interval, and holds the ticks whose middle lies before that end (round(duration * fps) of
them), so a 3.0 s clip gives 75 frames at 25 fps from a 25, 29.97, 30, 60 fps or variable frame-rate source, on every
ffmpeg. Frames are streamed in chunks, so a long video never has to fit in memory:

    for chunk in iter_frames("talk.mp4", fps=25, chunk_frames=64):   # uint8 [n<=64, H, W, 3] RGB
        ...
"""

from __future__ import annotations

import re
import subprocess
import threading
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import ffmpeg
import numpy as np

from .ffmpeg_bin import ffmpeg_exe, ffmpeg_version
from .probe import NO_AUDIO, NO_VIDEO, UNREADABLE, ZERO_LENGTH, MediaError, MediaInfo, probe


def _input(path: str | Path, start: float | None, duration: float | None, threads: int = 0):
    """ffmpeg input node of `path`, optionally only the span [start, start + duration) seconds; `threads` > 0 caps
    the decoder's threads (each frame thread holds its own frames: a 4K decoder takes 470 MB with ffmpeg's choice,
    300 MB with one)."""
    kwargs = {"threads": threads} if threads > 0 else {}
    if start:
        kwargs["ss"] = start
    if duration is not None:
        kwargs["t"] = duration
    return ffmpeg.input(str(path), **kwargs)


_TIME_BASE = re.compile(r"config in time_base:\s*(\d+)/(\d+)")
_FRAME = re.compile(r"\bn:\s*(\d+)\s+pts:\s*(-?\d+|NOPTS)")


class _Timestamps:
    """Collects the per-frame pts that ffmpeg's showinfo filter prints on stderr, in a background thread.

    showinfo logs a frame before the encoder writes it to stdout, so a reader that has frame k waits here until its
    pts arrives (or ffmpeg exits)."""

    def __init__(self, stderr):
        self.time_base: Fraction | None = None
        self.pts: list[int | None] = []
        self.other: list[str] = []  # everything else ffmpeg said, for error messages
        self.done = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stderr,), daemon=True)
        self._thread.start()

    def _read(self, stderr) -> None:
        for raw in iter(stderr.readline, b""):
            line = raw.decode(errors="replace")
            with self._cond:
                if "Parsed_showinfo" in line:
                    tb, fr = _TIME_BASE.search(line), _FRAME.search(line)
                    if tb and self.time_base is None:
                        self.time_base = Fraction(int(tb[1]), int(tb[2]))
                    if fr:
                        self.pts.append(None if fr[2] == "NOPTS" else int(fr[2]))
                        self._cond.notify_all()
                elif line.strip():
                    self.other.append(line.strip())
        with self._cond:
            self.done = True
            self._cond.notify_all()

    def time_of(self, k: int) -> Fraction | None:
        """Presentation time in seconds of source frame k (None when ffmpeg gave none)."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.pts) > k or self.done, timeout=60)
            if k >= len(self.pts) or self.pts[k] is None or self.time_base is None:
                return None
            return self.pts[k] * self.time_base

    def join(self) -> None:
        self._thread.join(timeout=5)


class ConstantRate:
    """Source frames with presentation times in, frames on the clock j / fps out (j = 0, 1, ...).

    Output j is the last source frame with time <= j / fps; output frames before the first source frame hold it.
    Frames whose time does not increase are dropped (damaged streams); a frame without a time gets the previous time
    plus the median interval."""

    def __init__(self, fps: float):
        self.fps = Fraction(fps).limit_denominator(1_000_000)
        self.j = 0
        self.current: np.ndarray | None = None
        self.last_time: Fraction | None = None
        self.intervals: list[Fraction] = []

    def _interval(self) -> Fraction:
        if not self.intervals:
            return 1 / self.fps
        return sorted(self.intervals)[len(self.intervals) // 2]

    def push(self, frame: np.ndarray, time: Fraction | None) -> list[np.ndarray]:
        if time is None:
            time = (self.last_time + self._interval()) if self.last_time is not None else Fraction(0)
        if self.last_time is not None:
            if time <= self.last_time:
                return []
            self.intervals.append(time - self.last_time)
        out = []
        hold = self.current if self.current is not None else frame
        while self.j / self.fps < time:
            out.append(hold)
            self.j += 1
        self.current, self.last_time = frame, time
        return out

    def finish(self) -> list[np.ndarray]:
        """The frames from the last source frame to the clip's end (last time + the median interval): the ticks whose
        middle lies before the end."""
        if self.current is None:
            return []
        end = self.last_time + self._interval()
        out = []
        while (self.j + Fraction(1, 2)) / self.fps <= end:  # a tick belongs to the clip when its middle does
            out.append(self.current)
            self.j += 1
        return out


def iter_frames(path: str | Path, fps: float = 25.0, chunk_frames: int = 64, info: MediaInfo | None = None,
                start: float | None = None, duration: float | None = None, size: tuple[int, int] | None = None,
                threads: int = 0, queue: int = 0) -> Iterator[np.ndarray]:
    """Yield uint8 [n, H, W, 3] RGB chunks (n <= chunk_frames) of the video resampled to `fps` (module docstring).

    `start`/`duration` (seconds) decode a span only. `size` (width, height): ffmpeg scales every frame to it (area
    averaging), so a pass that only looks for faces never moves full 4K frames; the frames and their timing are those
    of the full-size decode. `threads` > 0 caps the decoder's threads; `queue` > 0 caps the frames ffmpeg queues for
    its output (`-thread_queue_size`, ffmpeg >= 6): when the reader is slow, ffmpeg otherwise decodes ahead into its queues, 230 MB
    of 4K frames. Raises MediaError when the file has no video stream or ffmpeg
    fails before giving a single frame; a file that breaks midway (truncated) ends the iteration early and the caller
    compares the frame count with `info.duration`.
    """
    info = info or probe(path)
    if not info.has_video:
        raise MediaError(NO_VIDEO, path)
    if info.width <= 0 or info.height <= 0:
        raise MediaError(UNREADABLE, path, "video size unknown")
    video = _input(path, start, duration, threads).video
    if size is not None:
        video = video.filter("scale", int(size[0]), int(size[1]), flags="area")
    # an output's queue size is an option from ffmpeg 6 on (5.1, Debian 12's, refuses it)
    out_kwargs = {"thread_queue_size": queue} if queue > 0 and ffmpeg_version() >= (6, 0) else {}
    stream = (
        video.filter("showinfo")
        .output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="passthrough", **out_kwargs)
        .global_args("-hide_banner", "-loglevel", "info", "-nostdin", "-nostats")
    )
    proc = subprocess.Popen(stream.compile(cmd=ffmpeg_exe()), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stamps = _Timestamps(proc.stderr)  # also keeps stderr drained: a full pipe would block ffmpeg
    width, height = size if size is not None else (info.width, info.height)
    frame_bytes = width * height * 3
    clock = ConstantRate(fps)
    pending: list[np.ndarray] = []
    n_source = n_out = 0
    try:
        while True:
            buf = _read_exact(proc.stdout, frame_bytes)
            if len(buf) < frame_bytes:
                break
            frame = np.frombuffer(buf, np.uint8).reshape(height, width, 3)
            pending += clock.push(frame, stamps.time_of(n_source))
            n_source += 1
            while len(pending) >= chunk_frames:
                n_out += chunk_frames
                yield np.stack(pending[:chunk_frames])
                pending = pending[chunk_frames:]
        pending += clock.finish()
        for i in range(0, len(pending), chunk_frames):
            n_out += len(pending[i: i + chunk_frames])
            yield np.stack(pending[i: i + chunk_frames])
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.wait()
        stamps.join()
    if n_out == 0:
        err = [ln for ln in stamps.other if not ln.startswith(("Input #", "Output #", "Stream", "Duration"))]
        if proc.returncode not in (0, None) and err:
            raise MediaError(UNREADABLE, path, err[-1][:200])
        raise MediaError(ZERO_LENGTH, path, "no frame decoded")


def read_frames(path: str | Path, fps: float = 25.0, info: MediaInfo | None = None, **kwargs) -> np.ndarray:
    """The whole video as uint8 [T, H, W, 3] RGB at `fps` (for short clips; use iter_frames for long ones)."""
    return np.concatenate(list(iter_frames(path, fps=fps, info=info, **kwargs)), axis=0)


def read_audio(path: str | Path, sample_rate: int = 16000, info: MediaInfo | None = None,
               start: float | None = None, duration: float | None = None) -> np.ndarray:
    """The first audio stream as float32 [N] mono in [-1, 1] at `sample_rate` (channels averaged by ffmpeg), at most
    as long as the file (or the span asked for)."""
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
    # Some ffmpeg versions (5.1) keep the AAC encoder's end padding: nothing past the file's duration is sound.
    span = duration if duration is not None else (info.duration - (start or 0.0) if info.duration > 0 else None)
    if span is not None and span > 0:
        audio = audio[: int(round(span * sample_rate))]
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
