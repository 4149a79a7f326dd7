"""Which ffmpeg/ffprobe binaries to run: the system's when on PATH, else the one pip's imageio-ffmpeg ships."""

from __future__ import annotations

import functools
import shutil


class FFmpegNotFound(RuntimeError):
    pass


@functools.lru_cache(maxsize=None)
def ffmpeg_exe() -> str:
    """Path of an ffmpeg binary."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError as exc:  # pragma: no cover - imageio-ffmpeg is a requirement
        raise FFmpegNotFound("ffmpeg not available: no ffmpeg on PATH and imageio-ffmpeg is not installed") from exc
    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=None)
def ffprobe_exe() -> str | None:
    """Path of ffprobe, or None: imageio-ffmpeg ships no ffprobe, so probing must also work through ffmpeg itself."""
    return shutil.which("ffprobe")
