"""media/encode.py: write H.264+AAC videos and wavs, read them back with ffmpeg, check counts, sizes, atomicity."""

from __future__ import annotations

import subprocess
import wave

import numpy as np
import pytest

from talkface.media.encode import write_video, write_wav
from talkface.media.ffmpeg_bin import ffmpeg_exe


def _decode_video(path, w, h):
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         check=True, capture_output=True).stdout
    return np.frombuffer(out, np.uint8).reshape(-1, h, w, 3)


def _decode_audio(path, sr):
    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-vn", "-f", "f32le", "-ac", "1", "-ar",
                          str(sr), "-"], check=True, capture_output=True).stdout
    return np.frombuffer(out, np.float32)


def _streams(path):
    info = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    return [line.strip() for line in info.splitlines() if "Stream #" in line]


def _smooth_frames(t, h, w):
    """Moving gradients: easy to compress, so decoded frames must be close to the input."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames = np.stack([np.stack([(xx * 3 + k * 5) % 256, (yy * 4 + k * 3) % 256, np.full_like(xx, 128)], -1)
                       for k in range(t)])
    return frames.astype(np.uint8)


def test_roundtrip_counts_size_duration(tmp_path):
    t, h, w, sr, fps = 30, 48, 64, 16000, 25
    frames = _smooth_frames(t, h, w)
    audio = (0.5 * np.sin(2 * np.pi * 300 * np.arange(t * sr // fps) / sr)).astype(np.float32)
    path = write_video(tmp_path / "a.mp4", frames, fps, audio, sr)
    streams = _streams(path)
    assert any("Video: h264" in s and "yuv420p" in s and f"{w}x{h}" in s and "25 fps" in s for s in streams), streams
    assert any("Audio: aac" in s and "16000 Hz" in s and "mono" in s for s in streams), streams
    back = _decode_video(path, w, h)
    assert back.shape == (t, h, w, 3)
    mse = np.mean((back.astype(np.float64) - frames) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 30  # crf 18 on smooth content
    decoded = _decode_audio(path, sr)
    assert abs(len(decoded) - len(audio)) <= sr // fps  # within one video frame
    # the tone survives AAC: the strongest frequency is still 300 Hz
    seg = decoded[: len(audio)]
    assert abs(np.argmax(np.abs(np.fft.rfft(seg))) * sr / len(seg) - 300) < 5
    assert [p.name for p in tmp_path.iterdir()] == ["a.mp4"]  # no temp file left


def test_iterator_input_is_identical_and_no_audio(tmp_path):
    frames = _smooth_frames(12, 32, 48)
    a = write_video(tmp_path / "a.mp4", frames, 25)
    mixed = [frames[0], frames[1:5], *frames[5:]]  # single frames and a block
    b = write_video(tmp_path / "b.mp4", iter(mixed), 25)
    assert a.read_bytes() == b.read_bytes()  # same frames -> same bytes (bit-exact, single thread)
    assert not any("Audio" in s for s in _streams(a))
    assert _decode_video(a, 48, 32).shape[0] == 12


def test_failure_leaves_nothing(tmp_path):
    target = tmp_path / "x.mp4"
    bad = iter([np.zeros((32, 32, 3), np.uint8)] * 3 + [np.zeros((30, 32, 3), np.uint8)])
    with pytest.raises(ValueError, match="all frames"):
        write_video(target, bad, 25, np.zeros(16000, np.float32), 16000)
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match="even"):
        write_video(target, np.zeros((2, 31, 32, 3), np.uint8), 25)
    with pytest.raises(ValueError, match="no frames"):
        write_video(target, iter([]), 25)
    assert target.read_bytes() == b"old" and len(list(tmp_path.iterdir())) == 1


def test_write_wav(tmp_path):
    audio = np.array([0.0, 0.5, -0.5, 1.5, -2.0], np.float32)
    path = write_wav(tmp_path / "a.wav", audio, 16000)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()) == (1, 2, 16000, 5)
        pcm = np.frombuffer(w.readframes(5), "<i2")
    np.testing.assert_array_equal(pcm, [0, 16384, -16384, 32767, -32767])
    with pytest.raises(ValueError, match="mono"):
        write_wav(tmp_path / "b.wav", np.zeros((2, 3), np.float32), 16000)
