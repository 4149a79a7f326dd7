"""Self-contained generator checkpoints (`models/silent.pt`, `models/generator.pt`; docs/architecture.md).

    save_generator(gen, "models/generator.pt", audio_spec, use_silent_reference=True)
    gen = load_generator("models/generator.pt")          # eval mode, every parameter frozen
    uses_silent_reference(gen)                           # True: run it with G_S(identity reference)

File: {"arch": "generator", "config": GeneratorConfig as dict, "audio": audio spec,
"use_silent_reference": bool, "state_dict": ...}. The state
dict holds the generator's audio encoder too, so the file does not need the sync expert it came from. The audio spec
says how to rebuild that encoder's architecture:
- {"source": "syncnet" | "avsyncnet", "expert_arch": ..., "expert_config": {...}}: the expert's audio encoder
  (frozen during training, P1 setups B, D, E, G);
- {"source": "joint", "width": w, "out_dim": 512}: a Wav2Lip-style `AudioEncoder` trained with the generator (setup A).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import build
from .expert import SyncExpert
from .expert_io import build_expert
from .generator import Generator, GeneratorConfig
from .layers import AudioEncoder

ARCH = "generator"
AUDIO_SOURCES = ("syncnet", "avsyncnet", "joint")


def expert_audio_spec(expert: SyncExpert) -> dict[str, Any]:
    """Audio spec of a generator that reuses `expert.audio_encoder`."""
    return {"source": expert.arch, "expert_arch": expert.arch, "expert_config": dataclasses.asdict(expert.cfg)}


def joint_audio_spec(width: int, out_dim: int = 512) -> dict[str, Any]:
    """Audio spec of a generator whose `AudioEncoder(width, out_dim)` is trained with it."""
    return {"source": "joint", "width": int(width), "out_dim": int(out_dim)}


def build_audio_encoder(spec: dict[str, Any]) -> nn.Module:
    """A fresh (randomly initialised) audio encoder of the architecture `spec` describes."""
    source = spec.get("source")
    if source == "joint":
        return AudioEncoder(spec["width"], spec["out_dim"])
    if source in ("syncnet", "avsyncnet"):
        return build_expert(spec["expert_arch"], spec["expert_config"]).audio_encoder
    raise ValueError(f"generator audio source must be one of {AUDIO_SOURCES}, got {source!r}")


def generator_checkpoint(gen: Generator, audio: dict[str, Any], use_silent_reference: bool = False) -> dict[str, Any]:
    if audio.get("source") not in AUDIO_SOURCES:
        raise ValueError(f"generator audio source must be one of {AUDIO_SOURCES}, got {audio.get('source')!r}")
    state = {k: v.detach().cpu() for k, v in gen.state_dict().items()}
    return {"arch": ARCH, "config": dataclasses.asdict(gen.cfg), "audio": audio,
            "use_silent_reference": bool(use_silent_reference), "state_dict": state}


def save_generator(gen: Generator, path: str | Path, audio: dict[str, Any], use_silent_reference: bool = False) -> None:
    """Write a self-contained checkpoint; `use_silent_reference` records that G_L was trained on G_S references,
    so evaluation and dubbing run it the same way."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(generator_checkpoint(gen, audio, use_silent_reference), tmp)
    tmp.replace(path)


def load_generator(path: str | Path, map_location: str | torch.device = "cpu") -> Generator:
    """Rebuild a generator from `save_generator`'s file (strict keys), in eval mode with all parameters frozen."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"generator checkpoint not found: {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get("arch") != ARCH or not {"config", "audio", "state_dict"} <= set(ckpt):
        raise ValueError(f"{path}: not a generator checkpoint (needs arch='generator', config, audio, state_dict)")
    # Checkpoints written before `reference_blend` (or the warp's flow) existed lack those keys: they are plain (not
    # warping) generators.
    config = {"reference_blend": False, "blend_bias": -2.0, "paint_ellipse": [], "paint_feather": 0.3,
              "blend_mode": "replace", "flow_max": 0.1, "flow_smooth": 9, **ckpt["config"]}
    cfg = build(GeneratorConfig, config, f"{path}:config")
    gen = Generator(cfg, build_audio_encoder(ckpt["audio"]), freeze_audio=True)
    gen.load_state_dict(ckpt["state_dict"])
    for p in gen.parameters():
        p.requires_grad_(False)
    gen.audio = dict(ckpt["audio"])
    gen.use_silent_reference = bool(ckpt.get("use_silent_reference", False))
    return gen.eval()


def uses_silent_reference(gen: Generator) -> bool:
    """Whether a loaded G_L was trained with G_S(identity reference) (and must be run so)."""
    return bool(getattr(gen, "use_silent_reference", False))
