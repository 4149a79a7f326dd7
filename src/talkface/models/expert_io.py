"""Sync experts by name and their checkpoint files.

    expert = build_expert("syncnet", SyncNetConfig(width=8))    # or a dict of fields, or None for the defaults
    save_expert(expert, "models/syncnet.pt")
    expert = load_expert("models/syncnet.pt")                  # eval mode

Checkpoint on disk: {"arch": name, "config": dict, "state_dict": ...}, loaded with torch.load(weights_only=True).
The registry lives here, above the experts it lists (expert.py <- syncnet.py, avsyncnet.py <- this module).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..config import build
from .avsyncnet import AVSyncNet, AVSyncNetConfig
from .expert import SyncExpert
from .syncnet import SyncNet, SyncNetConfig

REGISTRY: dict[str, tuple[type[SyncExpert], type]] = {"syncnet": (SyncNet, SyncNetConfig),
                                                      "avsyncnet": (AVSyncNet, AVSyncNetConfig)}


def build_expert(name: str, cfg: Any = None) -> SyncExpert:
    """A fresh expert by name ("syncnet" | "avsyncnet"); cfg: its config dataclass, a dict of fields (the others keep
    their defaults), or None."""
    if name not in REGISTRY:
        raise ValueError(f"unknown sync expert '{name}'; known: {sorted(REGISTRY)}")
    model_cls, cfg_cls = REGISTRY[name]
    if cfg is None:
        cfg = cfg_cls()
    elif isinstance(cfg, dict):
        cfg = build(cfg_cls, cfg, name, defaults=True)
    elif not isinstance(cfg, cfg_cls):
        raise TypeError(f"{name}: config must be {cfg_cls.__name__} or dict, got {type(cfg).__name__}")
    return model_cls(cfg)


def save_expert(expert: SyncExpert, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch.save(expert.checkpoint(), path)


def load_expert(path: str | Path, map_location: str | torch.device = "cpu") -> SyncExpert:
    """Rebuild an expert from a checkpoint written by `save_expert` (strict keys), in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"sync expert checkpoint not found: {path}")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    missing = {"arch", "config", "state_dict"} - set(ckpt) if isinstance(ckpt, dict) else {"arch", "config", "state_dict"}
    if missing:
        raise ValueError(f"{path}: not a sync expert checkpoint (missing {sorted(missing)})")
    expert = build_expert(ckpt["arch"], ckpt["config"])
    expert.load_state_dict(ckpt["state_dict"])
    return expert.eval()
