"""The values params.yaml defines once, read for the stages that use them (each stage passes them down into its
own config with `config.section(..., passed=...)`, so no section repeats them). The readers of the composed sections
sit next to their dataclasses: `data.mel_store.mel_params` (mels.mel at media.sample_rate) and
`model_inputs.window_params` / `contract_params` (windows at media.fps and the mel rate).

- `media.fps`, `media.sample_rate`: the clip store's video and audio rates. The synthetic source renders at them, the
  crop stage resamples to them, the mel spectrograms are computed at that sample rate, and the windows of every
  trainer, of evaluation and of dubbing count frames at that fps;
- `mels.mel`: the mel parameters; their rate (sample_rate / hop_length) is the windows' `mel_fps`;
- `windows.k`: the frames of a window, every model's k;
- `crop.size`: the face side, the generators' face_size.
"""

from __future__ import annotations

from typing import Any

from .config import ConfigError, get


def fps(params: dict[str, Any]) -> int:
    """Video frames per second of the clip store (`media.fps`; Wav2Lip/P1/P2: 25)."""
    return _int(params, "media.fps")


def sample_rate(params: dict[str, Any]) -> int:
    """Audio samples per second of the clip store and the mels (`media.sample_rate`)."""
    return _int(params, "media.sample_rate")


def k(params: dict[str, Any]) -> int:
    """The frames of a window (`windows.k`)."""
    return _int(params, "windows.k")


def _int(params: dict[str, Any], key: str) -> int:
    value = get(params, key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{key}: expected int, got {value!r}")
    return value
