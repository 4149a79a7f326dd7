"""The torchaudio mel agrees with an independent numpy implementation of the Wav2Lip formula (METHOD.md §1)."""

import numpy as np
import pytest

from talkface.data.mel import MelConfig, mel_start, melspectrogram


def _hz_to_mel_slaney(f):
    f = np.asarray(f, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(f >= min_log_hz, min_log_mel + np.log(np.maximum(f, 1e-10) / min_log_hz) / logstep, f / f_sp)


def _mel_to_hz_slaney(m):
    m = np.asarray(m, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(m >= min_log_mel, min_log_hz * np.exp(logstep * (m - min_log_mel)), f_sp * m)


def _reference_mel(x, cfg):
    """Librosa-style (0.7, as Wav2Lip used) computation in plain numpy."""
    x = np.asarray(x, dtype=np.float64)
    y = np.concatenate([x[:1], x[1:] - cfg.preemphasis * x[:-1]])
    pad = cfg.n_fft // 2
    y = np.pad(y, pad, mode="reflect")
    n = np.arange(cfg.win_length)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * n / cfg.win_length)  # periodic Hann
    n_frames = 1 + (len(y) - cfg.n_fft) // cfg.hop_length
    frames = np.stack([y[i * cfg.hop_length : i * cfg.hop_length + cfg.n_fft] * window for i in range(n_frames)])
    mag = np.abs(np.fft.rfft(frames, axis=1))  # [T, n_freqs]
    freqs = np.linspace(0, cfg.sample_rate / 2, cfg.n_fft // 2 + 1)
    mel_pts = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(cfg.fmin), _hz_to_mel_slaney(cfg.fmax), cfg.n_mels + 2))
    fb = np.zeros((cfg.n_mels, len(freqs)))
    for i in range(cfg.n_mels):
        lo, c, hi = mel_pts[i], mel_pts[i + 1], mel_pts[i + 2]
        up = (freqs - lo) / (c - lo)
        down = (hi - freqs) / (hi - c)
        fb[i] = np.maximum(0, np.minimum(up, down)) * 2.0 / (hi - lo)  # Slaney area normalisation
    mel = mag @ fb.T
    db = 20 * np.log10(np.maximum(1e-5, mel)) - cfg.ref_level_db
    m = cfg.max_abs_value
    return np.clip(2 * m * ((db - cfg.min_level_db) / -cfg.min_level_db) - m, -m, m)


def test_mel_matches_numpy_reference():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    x = 0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.standard_normal(t.size)
    cfg = MelConfig()
    ours = melspectrogram(x.astype(np.float32), cfg)
    ref = _reference_mel(x, cfg)
    assert ours.shape == ref.shape == (81, 80)
    assert np.abs(ours - ref).max() < 2e-3


def test_mel_rate_and_silence_floor():
    cfg = MelConfig()
    mel = melspectrogram(np.zeros(32000, dtype=np.float32), cfg)
    assert mel.shape == (161, 80)  # 80 frames per second, centred frames
    assert np.all(mel == -4.0)  # digital silence is the floor value in every bin


def test_mel_window_alignment_formula():
    assert [mel_start(f, 25, 80) for f in (0, 1, 2, 5, 25)] == [0, 3, 6, 16, 80]
    assert [mel_start(f, 30, 100) for f in (0, 1, 3)] == [0, 3, 10]


def test_mel_rejects_stereo():
    with pytest.raises(ValueError, match="mono"):
        melspectrogram(np.zeros((2, 100), dtype=np.float32))
