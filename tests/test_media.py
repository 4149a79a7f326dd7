"""Probe and decode through the ffmpeg binary, on tiny videos made here with ffmpeg's test sources."""

from __future__ import annotations

import importlib
import subprocess
from pathlib import Path

import numpy as np
import pytest

from talkface.media.decode import iter_frames, read_audio, read_frames
from talkface.media.ffmpeg_bin import ffmpeg_exe
from talkface.media.probe import (NO_AUDIO, NO_VIDEO, NOT_FOUND, UNREADABLE, ZERO_LENGTH, MediaError,
                                  parse_ffmpeg_info, probe)


# the package re-exports the function `probe`, which hides the submodule attribute of the same name
probe_mod = importlib.import_module("talkface.media.probe")


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", *args], check=True)


def make_video(path: Path, seconds=2.0, fps=30, size="128x96", audio=True, src="testsrc", freq=440, rate=44100,
               channels=2) -> Path:
    sep = "=" if src == "testsrc" else ":"  # testsrc takes options; color=c=red adds more with ':'
    args = ["-f", "lavfi", "-i", f"{src}{sep}size={size}:rate={fps}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency={freq}:sample_rate={rate}"]
    args += ["-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac", "-ac", str(channels)]
    ffmpeg(*args, str(path))
    return path


@pytest.fixture(params=["ffprobe", "ffmpeg-stderr"])
def probe_backend(request, monkeypatch):
    """Run probe tests through ffmpeg's stderr always, and through ffprobe too when one is on PATH."""
    if request.param == "ffmpeg-stderr":
        monkeypatch.setattr(probe_mod, "ffprobe_exe", lambda: None)
    elif probe_mod.ffprobe_exe() is None:
        pytest.skip("no ffprobe on PATH")
    return request.param


def test_probe_30fps_video(tmp_path, probe_backend):
    v = make_video(tmp_path / "a.mp4", seconds=2.0, fps=30)
    info = probe(v)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (128, 96)
    assert info.fps == pytest.approx(30.0)
    assert info.duration == pytest.approx(2.0, abs=0.1)
    assert info.sample_rate == 44100 and info.channels == 2
    assert info.video_codec == "h264" and info.audio_codec == "aac"


def test_decode_resamples_30_to_25fps_in_chunks(tmp_path):
    v = make_video(tmp_path / "a.mp4", seconds=2.0, fps=30)
    chunks = list(iter_frames(v, fps=25, chunk_frames=16))
    assert [len(c) for c in chunks] == [16, 16, 16, 2]  # 2 s at 25 fps = 50 frames
    assert all(c.dtype == np.uint8 and c.shape[1:] == (96, 128, 3) for c in chunks)
    frames = np.concatenate(chunks)
    assert np.abs(frames[1:].astype(int) - frames[:-1]).mean() > 0  # testsrc moves: real, distinct frames
    span = read_frames(v, fps=25, start=1.0, duration=0.4)
    assert len(span) == 10


def test_decode_is_rgb(tmp_path):
    v = make_video(tmp_path / "red.mp4", seconds=0.4, fps=25, src="color=c=red", audio=False)
    frames = read_frames(v)
    assert frames.shape == (10, 96, 128, 3)
    mean = frames.reshape(-1, 3).mean(0)
    assert mean[0] > 230 and mean[1] < 25 and mean[2] < 25


def test_audio_16k_mono_float(tmp_path):
    v = make_video(tmp_path / "a.mp4", seconds=2.0, freq=440)
    audio = read_audio(v, sample_rate=16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 32000) < 1100  # AAC adds up to ~1024 samples of priming/padding
    spec = np.abs(np.fft.rfft(audio[2000:18000]))
    assert np.fft.rfftfreq(16000, 1 / 16000)[spec.argmax()] == pytest.approx(440, abs=2)
    assert 0.05 < np.abs(audio).max() <= 1.0


def test_media_errors(tmp_path, probe_backend):
    good = make_video(tmp_path / "good.mp4", seconds=1.0)
    text = tmp_path / "text.mp4"
    text.write_text("this is not a video\n" * 20)
    truncated = tmp_path / "trunc.mp4"  # moov atom at the end: cutting the file loses it
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    for path, reason in [(text, UNREADABLE), (truncated, UNREADABLE), (empty, ZERO_LENGTH),
                         (tmp_path / "nope.mp4", NOT_FOUND)]:
        with pytest.raises(MediaError) as exc:
            probe(path)
        assert exc.value.reason == reason, path

    silent_video = make_video(tmp_path / "noaudio.mp4", seconds=0.5, audio=False)
    assert not probe(silent_video).has_audio
    with pytest.raises(MediaError) as exc:
        read_audio(silent_video)
    assert exc.value.reason == NO_AUDIO

    wav = tmp_path / "a.wav"
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000", "-t", "0.5", str(wav))
    with pytest.raises(MediaError) as exc:
        list(iter_frames(wav))
    assert exc.value.reason == NO_VIDEO
    assert len(read_audio(wav)) == 8000


FFMPEG_TEXT = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'phone.mov':
  Duration: 01:02:03.50, start: 0.000000, bitrate: 864 kb/s
  Stream #0:0[0x1](und): Video: hevc (Main) (hvc1 / 0x31637668), yuv420p(tv, bt709), 1920x1080, 628 kb/s, 29.97 fps, 29.97 tbr, 600 tbn (default)
    Metadata:
      handler_name    : Core Media Video
    Side data:
      displaymatrix: rotation of -90.00 degrees
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, 5.1, fltp, 231 kb/s (default)
  Stream #0:2: Video: mjpeg (Baseline), yuvj420p(pc), 320x240, 90k tbr, 90k tbn (attached pic)
At least one output file must be specified
"""


def test_parse_ffmpeg_stderr():
    info = parse_ffmpeg_info(FFMPEG_TEXT, "phone.mov")
    assert info.duration == pytest.approx(3723.5)
    assert (info.width, info.height) == (1080, 1920)  # rotated by the display matrix
    assert info.fps == pytest.approx(29.97) and info.video_codec == "hevc"
    assert info.has_audio and info.sample_rate == 48000 and info.channels == 6
    with pytest.raises(MediaError):
        parse_ffmpeg_info("x.mp4: Invalid data found when processing input\n", "x.mp4")
