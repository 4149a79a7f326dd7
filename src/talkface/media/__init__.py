"""The ffmpeg boundary: probe, decode (25 fps RGB, 16 kHz mono), encode/mux."""

from .decode import iter_frames, read_audio, read_frames
from .encode import EncodeError, write_video, write_wav
from .ffmpeg_bin import ffmpeg_exe, ffprobe_exe
from .probe import MediaError, MediaInfo, probe

__all__ = ["EncodeError", "MediaError", "MediaInfo", "ffmpeg_exe", "ffprobe_exe", "iter_frames", "probe",
           "read_audio", "read_frames", "write_video", "write_wav"]
