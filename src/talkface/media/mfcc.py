"""MFCC and log mel-filterbank features, compatible with python_speech_features (written here in numpy).

Two reference tools consume these features, so the numbers must follow that library's conventions exactly:
- syncnet_python (LSE-C / LSE-D) feeds `mfcc(int16 audio, 16000)` to the syncnet_v2 audio tower (13 x 100 fps);
- AV-HuBERT computes `logfbank(int16 audio, 16000)` (26 filters, 100 fps) and stacks 4 frames -> 104-d at 25 fps.

Conventions (python_speech_features defaults): pre-emphasis 0.97 on the whole signal; frames of
round_half_up(0.025 * sr) samples every round_half_up(0.010 * sr), rectangular window; the last frame zero-padded, with
numframes = 1 + ceil((N - frame_len) / step) (1 when N <= frame_len); power spectrum |rfft(frame, nfft)|^2 / nfft;
triangular mel filters on FFT bins floor((nfft + 1) * hz / sr) of points evenly spaced in mel (2595 log10(1 + f/700));
zeros replaced by float eps before the log; DCT-II (orthonormal), first `numcep` kept, sinusoidal lifter
1 + (L/2) sin(pi n / L); with append_energy the first coefficient is replaced by the log total frame energy.

The features depend on the waveform's scale (log energy), and both tools read 16-bit PCM: pass `int16_scale(audio)`
when the audio is float in [-1, 1].
"""

from __future__ import annotations

import dataclasses
import decimal
import math

import numpy as np
from scipy.fft import dct

EPS = np.finfo(float).eps


@dataclasses.dataclass(frozen=True)
class SpeechFeatureConfig:
    """python_speech_features defaults (mfcc / logfbank)."""

    sample_rate: int = 16000
    win_length_s: float = 0.025
    win_step_s: float = 0.010
    num_filters: int = 26
    nfft: int = 512
    num_ceps: int = 13
    low_freq: float = 0.0
    high_freq: float | None = None  # None: sample_rate / 2
    preemphasis: float = 0.97
    cep_lifter: int = 22
    append_energy: bool = True


def int16_scale(audio: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] -> float64 on the 16-bit PCM scale that the reference tools read (no rounding)."""
    audio = np.asarray(audio)
    if np.issubdtype(audio.dtype, np.integer):
        return audio.astype(np.float64)
    return np.clip(audio.astype(np.float64) * 32768.0, -32768.0, 32767.0)


def _round_half_up(x: float) -> int:
    return int(decimal.Decimal(x).quantize(decimal.Decimal("1"), rounding=decimal.ROUND_HALF_UP))


def frame_signal(signal: np.ndarray, frame_len: float, frame_step: float) -> np.ndarray:
    """[N] -> [num_frames, frame_len] frames (last one zero-padded), python_speech_features.sigproc.framesig."""
    frame_len, frame_step = _round_half_up(frame_len), _round_half_up(frame_step)
    n = len(signal)
    num_frames = 1 if n <= frame_len else 1 + int(math.ceil((n - frame_len) / frame_step))
    padded = np.concatenate([signal, np.zeros(int((num_frames - 1) * frame_step + frame_len) - n)])
    idx = np.arange(frame_len)[None, :] + frame_step * np.arange(num_frames)[:, None]
    return padded[idx]


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel) / 2595.0) - 1.0)


def mel_filterbank(cfg: SpeechFeatureConfig = SpeechFeatureConfig()) -> np.ndarray:
    """Triangular filters on FFT bins, [num_filters, nfft // 2 + 1]."""
    high = cfg.high_freq or cfg.sample_rate / 2
    if high > cfg.sample_rate / 2:
        raise ValueError(f"high_freq {high} is above the Nyquist frequency {cfg.sample_rate / 2}")
    mels = np.linspace(hz_to_mel(cfg.low_freq), hz_to_mel(high), cfg.num_filters + 2)
    bins = np.floor((cfg.nfft + 1) * mel_to_hz(mels) / cfg.sample_rate)
    fb = np.zeros((cfg.num_filters, cfg.nfft // 2 + 1))
    for j in range(cfg.num_filters):
        lo, mid, hi = bins[j], bins[j + 1], bins[j + 2]
        for i in range(int(lo), int(mid)):
            fb[j, i] = (i - lo) / (mid - lo)
        for i in range(int(mid), int(hi)):
            fb[j, i] = (hi - i) / (hi - mid)
    return fb


def fbank(signal: np.ndarray, cfg: SpeechFeatureConfig = SpeechFeatureConfig()) -> tuple[np.ndarray, np.ndarray]:
    """Mel filterbank energies [T, num_filters] and total frame energies [T] (both with zeros -> eps)."""
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError(f"expected non-empty mono audio [N], got shape {signal.shape}")
    emphasised = np.append(signal[0], signal[1:] - cfg.preemphasis * signal[:-1])
    frames = frame_signal(emphasised, cfg.win_length_s * cfg.sample_rate, cfg.win_step_s * cfg.sample_rate)
    if frames.shape[1] > cfg.nfft:
        raise ValueError(f"frame length {frames.shape[1]} exceeds nfft {cfg.nfft}")
    power = np.abs(np.fft.rfft(frames, cfg.nfft)) ** 2 / cfg.nfft
    energy = power.sum(axis=1)
    energy = np.where(energy == 0, EPS, energy)
    feat = power @ mel_filterbank(cfg).T
    feat = np.where(feat == 0, EPS, feat)
    return feat, energy


def logfbank(signal: np.ndarray, cfg: SpeechFeatureConfig = SpeechFeatureConfig()) -> np.ndarray:
    """Log mel filterbank energies, [T, num_filters] float64 at 1 / win_step_s frames per second."""
    return np.log(fbank(signal, cfg)[0])


def lifter(cepstra: np.ndarray, L: int) -> np.ndarray:
    if L <= 0:
        return cepstra
    n = np.arange(cepstra.shape[1])
    return cepstra * (1 + (L / 2.0) * np.sin(np.pi * n / L))


def mfcc(signal: np.ndarray, cfg: SpeechFeatureConfig = SpeechFeatureConfig()) -> np.ndarray:
    """MFCCs, [T, num_ceps] float64 (python_speech_features.mfcc with the same defaults)."""
    feat, energy = fbank(signal, cfg)
    ceps = dct(np.log(feat), type=2, axis=1, norm="ortho")[:, : cfg.num_ceps]
    ceps = lifter(ceps, cfg.cep_lifter)
    if cfg.append_energy:
        ceps[:, 0] = np.log(energy)
    return ceps
