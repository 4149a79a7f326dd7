"""Which ffmpeg binary to run: one pinned binary by default, so every machine decodes the same frames.

Default: the ffmpeg that pip's `imageio-ffmpeg` ships (a fixed version, whatever is on PATH). Users who want their
own set `TALKFACE_FFMPEG=/path/to/ffmpeg` (and `TALKFACE_FFPROBE=/path/to/ffprobe` to probe with ffprobe; by default
probing parses `ffmpeg -i`, which imageio-ffmpeg's binary can do). A system ffmpeg on PATH is used only when
imageio-ffmpeg is missing, with a warning: frame counts can then differ between ffmpeg versions.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys

FFMPEG_ENV = "TALKFACE_FFMPEG"
FFPROBE_ENV = "TALKFACE_FFPROBE"


class FFmpegNotFound(RuntimeError):
    pass


@functools.lru_cache(maxsize=None)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary to run (see the module docstring for the order)."""
    override = os.environ.get(FFMPEG_ENV, "").strip()
    if override:
        found = shutil.which(override)
        if not found:
            raise FFmpegNotFound(f"ffmpeg not available: {FFMPEG_ENV}={override!r} is not an executable")
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        found = shutil.which("ffmpeg")
        if not found:
            raise FFmpegNotFound("ffmpeg not available: imageio-ffmpeg is not installed and no ffmpeg is on PATH "
                                 "(pip install imageio-ffmpeg)") from None
        print(f"[talkface] warning: imageio-ffmpeg is missing, using {found}; frame counts may differ between "
              "ffmpeg versions", file=sys.stderr)
        return found


@functools.lru_cache(maxsize=None)
def ffprobe_exe() -> str | None:
    """Path of ffprobe when the user asked for one (TALKFACE_FFPROBE), else None: probe through ffmpeg itself."""
    override = os.environ.get(FFPROBE_ENV, "").strip()
    if not override:
        return None
    found = shutil.which(override)
    if not found:
        raise FFmpegNotFound(f"ffprobe not available: {FFPROBE_ENV}={override!r} is not an executable")
    return found
