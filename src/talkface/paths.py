"""Where the repository is, also when DVC runs a queued experiment in a temporary copy of it."""

from __future__ import annotations

import os
from pathlib import Path

_EXP_TMP = os.path.join(".dvc", "tmp", "exps")


def repo_root(start: str | Path | None = None) -> Path:
    """The directory holding dvc.yaml/params.yaml, searching upwards from `start` (default: cwd)."""
    here = Path(start or os.getcwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "params.yaml").exists() or (candidate / ".git").exists():
            return candidate
    return here


def main_repo_root(start: str | Path | None = None) -> Path:
    """The user's repository, not DVC's temporary experiment copy of it.

    `dvc exp run --queue` executes each experiment in `<repo>/.dvc/tmp/exps/<tmp>/`; stores that must be shared
    by all experiments (the MLflow database) belong to the outer repository.
    """
    root = str(repo_root(start))
    marker = os.sep + _EXP_TMP + os.sep
    if marker in root + os.sep:
        return Path(root.split(marker)[0])
    # a second pipeline in a subfolder (experiments/grid) has its own params.yaml; its runs belong to the repository
    for candidate in (Path(root), *Path(root).parents):
        if (candidate / ".git").exists():
            return candidate
    return Path(root)
