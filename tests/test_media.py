"""Probe and decode through the ffmpeg binary, on tiny videos made here with ffmpeg's test sources."""

from __future__ import annotations

import importlib
import os
import shutil
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
    elif shutil.which("ffprobe") is None:
        pytest.skip("no ffprobe on PATH")
    else:  # what TALKFACE_FFPROBE=ffprobe selects
        monkeypatch.setattr(probe_mod, "ffprobe_exe", lambda: shutil.which("ffprobe"))
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


# ------------------------------------------------------------------------------ exact 25 fps, whichever ffmpeg

def test_constant_rate_known_answer_30_to_25():
    from fractions import Fraction

    from talkface.media.decode import ConstantRate

    clock, out = ConstantRate(25), []
    for i in range(90):  # 3.0 s at 30 fps; the frame value is its source index
        out += clock.push(np.array(i), Fraction(i, 30))
    out += clock.finish()
    # output j shows the last source frame at or before j / 25 s: floor(j * 30 / 25)
    assert [int(f) for f in out] == [j * 30 // 25 for j in range(75)]


def test_constant_rate_variable_rate_late_start_and_damaged_times():
    from fractions import Fraction

    from talkface.media.decode import ConstantRate

    clock, out = ConstantRate(25), []
    # first frame at 0.1 s (held before it), a 0.2 s freeze, a repeated time (dropped), a frame without a time
    times = [Fraction(1, 10), Fraction(14, 100), Fraction(34, 100), Fraction(34, 100), None]
    for i, t in enumerate(times):
        out += clock.push(np.array(i), t)
    out += clock.finish()
    # clock 0 .04 .08 | .12 | .16 .20 .24 .28 .32 | .36 .40 .44 .48 .52 | ... source 4 at .34 + median .2 = .54
    # ends at 0.54 + the median interval 0.2 = 0.74 s: clock ticks whose middle (t + 0.02) is inside, 0 .. 0.72
    assert [int(f) for f in out] == [0] * 4 + [1] * 5 + [2] * 5 + [4] * 5


def _system_ffmpeg() -> str | None:
    import imageio_ffmpeg

    found = shutil.which("ffmpeg")
    pinned = imageio_ffmpeg.get_ffmpeg_exe()
    return found if found and os.path.realpath(found) != os.path.realpath(pinned) else None


@pytest.mark.parametrize("rate", ["25", "30000/1001", "30", "60"])
def test_three_seconds_give_75_frames_at_any_source_rate(tmp_path, rate):
    v = tmp_path / "a.mp4"
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size=64x48:rate={rate}", "-f", "lavfi", "-i", "sine=sample_rate=16000",
           "-t", "3.0", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(v))
    # 29.97 fps: 90 frames last 3.003 s, 75.08 ticks of 25 fps: 75 frames (a tick belongs where its middle lies)
    assert len(read_frames(v, fps=25)) == 75


def test_variable_frame_rate_input(tmp_path):
    v = tmp_path / "vfr.mkv"  # 2 s at 10 fps then 1 s at 50 fps, timestamps kept as they are
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=50:duration=3", "-vf",
           "select='lt(t,2)*not(mod(n,5))+gte(t,2)'", "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast",
           "-pix_fmt", "yuv420p", str(v))
    frames = read_frames(v, fps=25)
    assert len(frames) == 75
    # during the 10 fps part every source frame is shown for 2 or 3 output frames (0.1 s = 2.5 clock ticks)
    changes = np.nonzero(np.abs(np.diff(frames[:50].astype(int), axis=0)).sum(axis=(1, 2, 3)))[0]
    assert set(np.diff(changes)) <= {2, 3}


@pytest.mark.skipif(_system_ffmpeg() is None, reason="no second ffmpeg on PATH to compare with")
def test_pinned_and_system_ffmpeg_decode_the_same_frames(tmp_path, monkeypatch):
    from talkface.media import ffmpeg_bin

    v = tmp_path / "b.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=44100",
           "-t", "3.0", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(v))
    pinned, pinned_audio = read_frames(v, fps=25), read_audio(v, 16000)
    monkeypatch.setenv(ffmpeg_bin.FFMPEG_ENV, _system_ffmpeg())
    ffmpeg_bin.ffmpeg_exe.cache_clear()
    try:
        assert ffmpeg_exe() == _system_ffmpeg()
        system, system_audio = read_frames(v, fps=25), read_audio(v, 16000)
    finally:
        monkeypatch.delenv(ffmpeg_bin.FFMPEG_ENV)
        ffmpeg_bin.ffmpeg_exe.cache_clear()
    assert len(pinned) == len(system) == 75
    assert np.abs(pinned.astype(int) - system.astype(int)).mean() < 2.0  # decoders may differ in the last bit
    assert abs(len(pinned_audio) - len(system_audio)) <= 160  # within 10 ms


def test_ffmpeg_override_must_exist(monkeypatch):
    from talkface.media import ffmpeg_bin

    monkeypatch.setenv(ffmpeg_bin.FFMPEG_ENV, "/nonexistent/ffmpeg")
    ffmpeg_bin.ffmpeg_exe.cache_clear()
    try:
        with pytest.raises(ffmpeg_bin.FFmpegNotFound, match="TALKFACE_FFMPEG"):
            ffmpeg_bin.ffmpeg_exe()
    finally:
        monkeypatch.delenv(ffmpeg_bin.FFMPEG_ENV)
        ffmpeg_bin.ffmpeg_exe.cache_clear()


@pytest.mark.parametrize("banner,want", [("ffmpeg version 5.1.9-0+deb12u1 Copyright (c) 2000-2026", (5, 1)),
                                         ("ffmpeg version n9.0.2-17-g2a571b6068-20260930 Copyright", (9, 0)),
                                         ("ffmpeg version N-112233-gdeadbeef Copyright", (0, 0))])
def test_ffmpeg_version_reads_the_banner(tmp_path, banner, want):
    from talkface.media.ffmpeg_bin import ffmpeg_version

    fake = tmp_path / "ffmpeg"
    fake.write_text(f"#!/bin/sh\necho '{banner}'\necho 'built with gcc'\n")
    fake.chmod(0o755)
    assert ffmpeg_version(str(fake)) == want
