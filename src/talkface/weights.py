"""Pretrained-weight lookup shared by every loader in the project (offline policy, docs/architecture.md).

Nothing here downloads: a loader looks for a file (explicit path, else the torch hub cache) and raises
`WeightsNotAvailable("<thing> not available: <reason>")` when it is not there, so that a stage can record the term or
metric as not available with its reason instead of a made-up number.
"""

from __future__ import annotations

from pathlib import Path

import torch


class WeightsNotAvailable(RuntimeError):
    """Pretrained weights are missing or unreadable.

    Raise it with one line, `WeightsNotAvailable("<thing> not available: <reason>")`, or build it with `not_available`.
    """


def not_available(thing: str, reason: str) -> WeightsNotAvailable:
    """The exception with the project's one-line message format."""
    return WeightsNotAvailable(f"{thing} not available: {reason}")


def hub_dir() -> Path:
    """The torch hub checkpoint folder (respects TORCH_HOME / XDG_CACHE_HOME, as torch.hub does)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def hub_checkpoint(filename: str) -> Path | None:
    """Path of `filename` in the torch hub checkpoint cache, or None when it is not there."""
    path = hub_dir() / filename
    return path if path.is_file() else None


def resolve_weights(thing: str, path: str | Path | None, hub_filename: str | None = None) -> Path:
    """The weights file to load: `path` when given (must exist), else `hub_filename` in the hub cache.

    Raises WeightsNotAvailable with the place that was searched.
    """
    if path:
        path = Path(path).expanduser()
        if not path.is_file():
            raise not_available(thing, f"no file at {path}")
        return path
    if hub_filename is None:
        raise not_available(thing, "no path given")
    found = hub_checkpoint(hub_filename)
    if found is None:
        raise not_available(
            thing, f"{hub_filename} is not in the torch hub cache {hub_dir()} (set TORCH_HOME or give a path)"
        )
    return found


def load_state_strict(model: torch.nn.Module, state: dict, thing: str, source: str, layout: str) -> None:
    """Load `state` into `model` with strict key matching, except BatchNorm `num_batches_tracked` counters (official
    files often lack them and they do not affect inference). A mismatch raises WeightsNotAvailable naming a few keys."""
    expected = set(model.state_dict())
    missing = sorted(k for k in expected - set(state) if not k.endswith("num_batches_tracked"))
    unexpected = sorted(set(state) - expected)
    if missing or unexpected:
        raise not_available(thing, f"{source} does not match {layout} (missing {len(missing)}: {missing[:3]}, "
                                   f"unexpected {len(unexpected)}: {unexpected[:3]})")
    try:
        model.load_state_dict(state, strict=False)
    except RuntimeError as e:  # a tensor of the wrong shape
        raise not_available(thing, f"{source}: {e}") from e
