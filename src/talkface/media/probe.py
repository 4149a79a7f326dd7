"""What is inside a media file: duration, frame rate, size, audio — with ffprobe when present, else `ffmpeg -i`.

imageio-ffmpeg ships an ffmpeg binary but no ffprobe, so the fallback parses the stream summary that `ffmpeg -i <file>`
prints on stderr (the same text on every ffmpeg since 2.x):

    Duration: 00:00:06.13, start: 0.000000, bitrate: 864 kb/s
    Stream #0:0[0x1](und): Video: h264 (...), yuv420p(progressive), 700x700, 628 kb/s, 22.13 fps, 30 tbr, ...
    Stream #0:1[0x2](und): Audio: aac (LC) (...), 44100 Hz, stereo, fltp, 231 kb/s (default)

Every failure is a `MediaError` whose `reason` is one of the short phrases below; the crop stage writes that phrase
into the manifest.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

from .ffmpeg_bin import ffmpeg_exe, ffprobe_exe

# Reasons a media file is refused (the manifest's `reason` column starts with one of these).
UNREADABLE = "unreadable file"
NOT_FOUND = "file not found"
NO_VIDEO = "no video stream"
NO_AUDIO = "no audio stream"
ZERO_LENGTH = "zero length"
TRUNCATED = "truncated file"


class MediaError(RuntimeError):
    """A media file that cannot be used; `reason` is a short fixed phrase, `detail` says more."""

    def __init__(self, reason: str, path: str | Path = "", detail: str = ""):
        self.reason, self.path, self.detail = reason, str(path), detail
        msg = f"{reason}: {path}" if path else reason
        super().__init__(f"{msg} ({detail})" if detail else msg)


@dataclasses.dataclass
class MediaInfo:
    """Summary of a media file. Sizes are as displayed (after the rotation a phone may store in the metadata)."""

    path: str
    duration: float  # seconds; 0.0 when the container does not say
    has_video: bool
    has_audio: bool
    fps: float = 0.0  # average frame rate of the video stream (0 when unknown)
    width: int = 0
    height: int = 0
    video_codec: str = ""
    sample_rate: int = 0  # of the first audio stream
    channels: int = 0
    audio_codec: str = ""


def probe(path: str | Path) -> MediaInfo:
    """Probe `path`. Raises MediaError(UNREADABLE / NOT_FOUND) when ffmpeg cannot open it as media."""
    path = Path(path)
    if not path.is_file():
        raise MediaError(NOT_FOUND, path)
    if path.stat().st_size == 0:
        raise MediaError(ZERO_LENGTH, path, "empty file")
    exe = ffprobe_exe()
    return _probe_ffprobe(path, exe) if exe else _probe_ffmpeg(path)


def _probe_ffprobe(path: Path, exe: str) -> MediaInfo:
    cmd = [exe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", str(path)]
    res = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if res.returncode != 0:
        raise MediaError(UNREADABLE, path, _last_line(res.stderr))
    data = json.loads(res.stdout or "{}")
    info = MediaInfo(str(path), _float(data.get("format", {}).get("duration")), False, False)
    for s in data.get("streams", []):
        if s.get("codec_type") == "video" and not info.has_video and not s.get("disposition", {}).get("attached_pic"):
            info.has_video = True
            info.video_codec = s.get("codec_name", "")
            info.width, info.height = int(s.get("width", 0)), int(s.get("height", 0))
            info.fps = _rate(s.get("avg_frame_rate")) or _rate(s.get("r_frame_rate"))
            rotation = _stream_rotation(s)
            if rotation % 180 == 90:
                info.width, info.height = info.height, info.width
        elif s.get("codec_type") == "audio" and not info.has_audio:
            info.has_audio = True
            info.audio_codec = s.get("codec_name", "")
            info.sample_rate = int(s.get("sample_rate", 0) or 0)
            info.channels = int(s.get("channels", 0) or 0)
    return info


def _stream_rotation(stream: dict) -> int:
    rot = stream.get("tags", {}).get("rotate")
    if rot is None:
        for sd in stream.get("side_data_list", []):
            if "rotation" in sd:
                rot = sd["rotation"]
    return int(round(float(rot))) if rot is not None else 0


_DURATION = re.compile(r"Duration:\s*(\d+):(\d+):(\d+(?:\.\d+)?)")
_STREAM = re.compile(r"^\s*Stream #\d+:\d+.*?:\s*(Video|Audio):\s*(.*)$")
_SIZE = re.compile(r"(?:^|[\s,])(\d{1,5})x(\d{1,5})(?=[\s,\[]|$)")
_FPS = re.compile(r"(\d+(?:\.\d+)?)(k?)\s+fps")
_TBR = re.compile(r"(\d+(?:\.\d+)?)(k?)\s+tbr")
_HZ = re.compile(r"(\d+)\s+Hz")
_ROTATION = re.compile(r"rotation of\s+(-?\d+(?:\.\d+)?)\s+degrees")
_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "4.0": 4, "5.0": 5, "5.1": 6, "6.1": 7, "7.1": 8}


def _probe_ffmpeg(path: Path) -> MediaInfo:
    # `ffmpeg -i file` with no output exits 1 even on success; what matters is whether it printed "Input #0".
    res = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                         errors="replace")
    return parse_ffmpeg_info(res.stderr, path)


def parse_ffmpeg_info(text: str, path: str | Path = "") -> MediaInfo:
    """Parse the stderr of `ffmpeg -i <file>` into a MediaInfo (exposed for tests)."""
    if "Input #0" not in text:
        raise MediaError(UNREADABLE, path, _last_line(text))
    m = _DURATION.search(text)
    duration = int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3]) if m else 0.0
    info = MediaInfo(str(path), duration, False, False)
    lines = text.splitlines()
    for i, line in enumerate(lines):
        s = _STREAM.match(line)
        if not s:
            continue
        kind, desc = s[1], s[2]
        if kind == "Video" and not info.has_video and "attached pic" not in desc:
            info.has_video = True
            info.video_codec = desc.split()[0].rstrip(",")
            sz = _SIZE.search(desc)
            if sz:
                info.width, info.height = int(sz[1]), int(sz[2])
            f = _FPS.search(desc) or _TBR.search(desc)
            if f:
                info.fps = float(f[1]) * (1000 if f[2] else 1)
            # the display matrix of a rotated phone video is printed in the lines under its stream
            for follow in lines[i + 1:]:
                if _STREAM.match(follow) or not follow.startswith("    "):
                    break
                r = _ROTATION.search(follow)
                if r and round(abs(float(r[1]))) % 180 == 90:
                    info.width, info.height = info.height, info.width
                    break
        elif kind == "Audio" and not info.has_audio:
            info.has_audio = True
            info.audio_codec = desc.split()[0].rstrip(",")
            hz = _HZ.search(desc)
            info.sample_rate = int(hz[1]) if hz else 0
            info.channels = _channels(desc)
    return info


def _channels(desc: str) -> int:
    fields = [f.strip() for f in desc.split(",")]
    for f in fields[2:] if len(fields) > 2 else fields:
        name = f.split("(")[0].strip()
        if name in _CHANNELS:
            return _CHANNELS[name]
        m = re.fullmatch(r"(\d+)\s+channels", name)
        if m:
            return int(m[1])
    return 0


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "N/A"):
        return 0.0
    num, _, den = text.partition("/")
    try:
        return float(num) / float(den or 1)
    except (ValueError, ZeroDivisionError):
        return 0.0


def _float(text) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return 0.0


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""
