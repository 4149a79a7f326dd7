"""MLflow tracking: every stage is one MLflow run, nested under one parent run per DVC experiment.

The store is a sqlite database at an absolute path inside the user's repository (`<repo>/mlruns.db`, artifacts in
`<repo>/mlartifacts/`), resolved from the outer repository even when DVC runs a queued experiment in a temporary copy,
so that every experiment lands in the same store. `TALKFACE_MLFLOW_URI` overrides the store; `TALKFACE_TRACKING=0`
switches tracking off (the stage still runs).

Tags on each run: `talkface.stage`, `talkface.experiment` (DVC_EXP_NAME, or "workspace"), `talkface.git_commit`
(DVC_EXP_BASELINE_REV or HEAD).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
from pathlib import Path
from typing import Any, Iterator

from .paths import main_repo_root, repo_root

# Telemetry off before mlflow is imported anywhere.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

EXPERIMENT = "talkface"


def enabled() -> bool:
    return os.environ.get("TALKFACE_TRACKING", "1") not in ("0", "false", "no")


def tracking_uri(root: Path | None = None) -> str:
    override = os.environ.get("TALKFACE_MLFLOW_URI")
    if override:
        return override
    root = root or main_repo_root()
    return f"sqlite:///{(root / 'mlruns.db').resolve()}"


def artifact_location(root: Path | None = None) -> str:
    root = root or main_repo_root()
    return (root / "mlartifacts").resolve().as_uri()


def experiment_name() -> str:
    return os.environ.get("DVC_EXP_NAME") or "workspace"


def git_commit() -> str:
    rev = os.environ.get("DVC_EXP_BASELINE_REV")
    if rev:
        return rev
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, timeout=10, check=False
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class StageRun:
    """What a stage logs to. A no-op recorder when tracking is off, so stages never branch on it."""

    def __init__(self, mlflow_module: Any | None):
        self._mlflow = mlflow_module

    @property
    def active(self) -> bool:
        return self._mlflow is not None

    def log_params(self, params: dict[str, Any]) -> None:
        if self._mlflow is None:
            return
        flat = {k: str(v)[:500] for k, v in _flatten(params).items()}
        items = list(flat.items())
        for i in range(0, len(items), 90):  # MLflow caps a batch at 100 params
            self._mlflow.log_params(dict(items[i : i + 90]))

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if self._mlflow is None:
            return
        numeric = {_metric_name(k): float(v) for k, v in _flatten(metrics).items() if _is_number(v)}
        if numeric:
            self._mlflow.log_metrics(numeric, step=step)

    def log_artifact(self, path: str | Path) -> None:
        if self._mlflow is None or not Path(path).exists():
            return
        if Path(path).is_dir():
            self._mlflow.log_artifacts(str(path), artifact_path=Path(path).name)
        else:
            self._mlflow.log_artifact(str(path))


@contextlib.contextmanager
def stage_run(stage: str, params: dict[str, Any] | None = None) -> Iterator[StageRun]:
    """Open an MLflow run for `stage` under the experiment's parent run; yields a StageRun."""
    if not enabled():
        yield StageRun(None)
        return
    import mlflow

    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    mlflow.set_tracking_uri(tracking_uri())
    exp = mlflow.get_experiment_by_name(EXPERIMENT)
    exp_id = exp.experiment_id if exp else mlflow.create_experiment(EXPERIMENT, artifact_location=artifact_location())
    name, commit = experiment_name(), git_commit()
    tags = {"talkface.experiment": name, "talkface.git_commit": commit}
    parent_id = _parent_run_id(mlflow, exp_id, name, commit, tags)
    with mlflow.start_run(experiment_id=exp_id, run_name=stage, nested=True, parent_run_id=parent_id,
                          tags={**tags, "talkface.stage": stage}):
        run = StageRun(mlflow)
        if params:
            run.log_params(params)
        yield run


def _parent_run_id(mlflow: Any, exp_id: str, name: str, commit: str, tags: dict[str, str]) -> str:
    """Find or create the one parent run of this experiment (same name and baseline commit)."""
    query = (f"tags.`talkface.experiment` = '{name}' and tags.`talkface.git_commit` = '{commit}' "
             f"and tags.`talkface.parent` = '1'")
    found = mlflow.search_runs(experiment_ids=[exp_id], filter_string=query, max_results=1, output_format="list")
    if found:
        return found[0].info.run_id
    client = mlflow.MlflowClient()
    run = client.create_run(exp_id, run_name=name, tags={**tags, "talkface.parent": "1"})
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _metric_name(name: str) -> str:
    """MLflow accepts alphanumerics and _ - . space : / in metric names; others (e.g. parentheses) become '_'."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", name)


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _is_number(v: Any) -> bool:
    try:
        import math

        return not isinstance(v, bool) and isinstance(float(v), float) and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False
