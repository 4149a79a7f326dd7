"""End to end: `dvc repro` of the whole pipeline on a tiny config, in a copy of the repository.

Checks that every stage runs offline, writes its declared outputs and metrics, records MLflow runs, and that a second
`dvc repro` does nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

# Overrides of params.yaml that make every stage tiny; keys are dotted paths into params.yaml.
TINY = {
    "fetch.synthetic.identities": 4,
    "fetch.synthetic.clips_per_identity": 2,
    "fetch.synthetic.seconds_per_clip": 2.0,
    "fetch.synthetic.frame_size": 96,
    "fetch.workers": 1,
    "crop.size": 48,
    "crop.workers": 1,
    "crop.split_fractions": [0.5, 0.25, 0.25],
    # the delayed GAN and sync terms must run within the 4 tiny steps
    "silent.gan_start_step": 2,
    "generator.gan_start_step": 2,
    "generator.sync_start_step": 2,
}
# Per training stage: a few steps, small batches.
TINY_LOOP = {"steps": 4, "batch_size": 4, "eval_every": 4, "eval_batches": 1, "log_every": 2, "checkpoint_every": 2}


def _set(params: dict, dotted: str, value) -> None:
    node = params
    *parents, leaf = dotted.split(".")
    for key in parents:
        node = node[key]
    if leaf not in node:
        raise KeyError(f"tiny override {dotted}: no such key in params.yaml")
    node[leaf] = value


def tiny_params(params: dict) -> dict:
    for dotted, value in TINY.items():
        _set(params, dotted, value)
    for name, section in params.items():
        if isinstance(section, dict) and isinstance(section.get("loop"), dict):
            for key, value in TINY_LOOP.items():
                _set(params, f"{name}.loop.{key}", value)
    return params


@pytest.mark.slow
def test_dvc_repro_tiny(tmp_path):
    work = tmp_path / "repo"
    work.mkdir()
    for name in ("src", "stages", "dvc.yaml"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, work / name,
                                                            **({"ignore": shutil.ignore_patterns("__pycache__")}
                                                               if src.is_dir() else {}))
    params = tiny_params(yaml.safe_load((ROOT / "params.yaml").read_text()))
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    # the report stage depends on the saved `dvc exp show --json` output; a fresh repo has no experiments
    (work / "metrics").mkdir()
    (work / "metrics" / "experiments.json").write_text("[]\n")
    env = {**os.environ, "TALKFACE_TRACKING": "1", "PYTHONUNBUFFERED": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    dvc = [sys.executable, "-m", "dvc"]

    def run(*args, timeout=900):
        out = subprocess.run([*dvc, *args], cwd=work, env=env, capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"dvc {' '.join(args)} failed:\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
        return out.stdout

    run("init", "--no-scm", "-q")
    run("config", "core.analytics", "false")
    first = run("repro")
    assert "Running stage 'fetch'" in first

    for path in ("data/raw/index.csv", "data/clips/manifest.csv", "data/splits/train.txt"):
        assert (work / path).exists(), path
    for path in sorted((work / "metrics").glob("*.json")):
        json.loads(path.read_text())  # every metrics file is valid JSON
    stages = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        for out in stage.get("outs", []) + stage.get("metrics", []):
            path = next(iter(out)) if isinstance(out, dict) else out
            assert (work / path).exists(), f"stage {name} did not write {path}"

    with sqlite3.connect(work / "mlruns.db") as db:
        run_names = {row[0] for row in db.execute("select name from runs")}
    assert set(stages) <= run_names, f"MLflow runs missing for {set(stages) - run_names}"

    second = run("repro")
    assert "Running stage" not in second
