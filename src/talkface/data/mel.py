"""Wav2Lip-compatible mel spectrograms (METHOD.md §1), computed with torchaudio.

16 kHz mono -> pre-emphasis 0.97 -> |STFT| (n_fft 800, hop 200, Hann 800, centred, reflect padding) -> Slaney mel
filterbank (80 bands, 55-7600 Hz, Slaney norm) -> 20*log10(max(1e-5, S)) - ref_level_db -> symmetric normalisation
clip(2*max_abs*((S - min_level_db)/(-min_level_db)) - max_abs, -max_abs, max_abs). Output [T_mel, 80], 80 frames/s.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import torch
import torchaudio


@dataclasses.dataclass(frozen=True)
class MelConfig:
    sample_rate: int = 16000
    n_fft: int = 800
    hop_length: int = 200
    win_length: int = 800
    n_mels: int = 80
    fmin: float = 55.0
    fmax: float = 7600.0
    preemphasis: float = 0.97
    ref_level_db: float = 20.0
    min_level_db: float = -100.0
    max_abs_value: float = 4.0

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length


@functools.lru_cache(maxsize=4)
def _transforms(cfg: MelConfig) -> tuple[torchaudio.transforms.Spectrogram, torch.Tensor]:
    spec = torchaudio.transforms.Spectrogram(
        n_fft=cfg.n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length, power=1.0,
        center=True, pad_mode="reflect", window_fn=torch.hann_window,
    )
    fbank = torchaudio.functional.melscale_fbanks(
        n_freqs=cfg.n_fft // 2 + 1, f_min=cfg.fmin, f_max=cfg.fmax, n_mels=cfg.n_mels,
        sample_rate=cfg.sample_rate, norm="slaney", mel_scale="slaney",
    )  # [n_freqs, n_mels]
    return spec, fbank


def melspectrogram(audio: np.ndarray | torch.Tensor, cfg: MelConfig = MelConfig()) -> np.ndarray:
    """Wav2Lip mel of a mono waveform. audio: [N] float at cfg.sample_rate -> float32 [T_mel, n_mels]."""
    wav = torch.from_numpy(np.array(audio, dtype=np.float32))  # a copy: audio may be a read-only memory map
    if wav.ndim != 1:
        raise ValueError(f"melspectrogram expects mono audio [N], got shape {tuple(wav.shape)}")
    if wav.numel() == 0:
        raise ValueError("melspectrogram: empty audio")
    # Pre-emphasis y[n] = x[n] - a*x[n-1] (scipy lfilter([1, -a], [1], x) with zero initial state).
    emphasised = torch.cat([wav[:1], wav[1:] - cfg.preemphasis * wav[:-1]])
    spec, fbank = _transforms(cfg)
    magnitude = spec(emphasised)                    # [n_freqs, T]
    mel = fbank.T @ magnitude                       # [n_mels, T]
    db = 20.0 * torch.log10(torch.clamp(mel, min=1e-5)) - cfg.ref_level_db
    m = cfg.max_abs_value
    norm = torch.clamp(2 * m * ((db - cfg.min_level_db) / -cfg.min_level_db) - m, -m, m)
    return norm.T.contiguous().numpy().astype(np.float32)


def mel_start(frame: int, fps: float, mel_fps: float) -> int:
    """First mel frame of the window that starts at video frame `frame`: int(mel_fps * frame / fps) (Wav2Lip:
    int(80 * frame / 25)); the rates come from the caller (model_inputs.WindowConfig)."""
    return int(mel_fps * frame / fps)
