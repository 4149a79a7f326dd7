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


@functools.lru_cache(maxsize=None)
def ffmpeg_version(exe: str | None = None) -> tuple[int, int]:
    """(major, minor) of `exe` (default: ffmpeg_exe()) from its `-version` banner ("ffmpeg version 5.1.9-0+deb12u1",
    "ffmpeg version n9.0.2-17-g..."); (0, 0) when the banner carries no release number (git snapshots), so callers
    fall back to what every version accepts."""
    import re
    import subprocess

    exe = exe or ffmpeg_exe()
    try:
        banner = subprocess.run([exe, "-hide_banner", "-version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return (0, 0)
    m = re.match(r"ffmpeg version n?(\d+)\.(\d+)", banner.strip())
    return (int(m.group(1)), int(m.group(2))) if m else (0, 0)
