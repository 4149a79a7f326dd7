"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TALKFACE_TRACKING", "0")  # unit tests do not write to the MLflow store
ROOT = Path(__file__).resolve().parents[1]


def params_with(overrides: dict) -> dict:
    """The repository's params.yaml with `overrides` merged in (nested dicts key by key): stages read every key, so
    a test's params file starts from the complete one."""
    import copy

    import yaml

    def merge(base: dict, new: dict) -> dict:
        for key, value in new.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict) and value:
                merge(base[key], value)
            else:
                base[key] = copy.deepcopy(value)
        return base

    return merge(yaml.safe_load((ROOT / "params.yaml").read_text()), overrides)


def real_samples_dir() -> Path | None:
    """../shared/real-samples when present (it is not part of a user's clone)."""
    path = Path(os.environ.get("TALKFACE_REAL_SAMPLES", ROOT.parent / "shared" / "real-samples"))
    return path if path.is_dir() and any(path.glob("*.mp4")) else None


@pytest.fixture
def real_samples() -> Path:
    path = real_samples_dir()
    if path is None:
        pytest.skip("../shared/real-samples not present")
    return path
