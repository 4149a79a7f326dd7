"""The real-face experiment (experiments/grid) is the default DAG on other data: its dvc.yaml and params.yaml must stay
in step with the repository's, so that a change to one pipeline is not silently missing from the other."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "experiments" / "grid"
# the GRID report has no ablation table (report.experiments_json is empty there)
GRID_ONLY_MISSING = {("report", "metrics/experiments.json")}


def _rebase(entry):
    """A dep/out entry of the GRID dvc.yaml as the root dvc.yaml writes it (code paths are ../../ there)."""
    if isinstance(entry, dict):
        return {_rebase(k): v for k, v in entry.items()}
    return entry[len("../../"):] if entry.startswith("../../") else entry


def _keys(tree, prefix=""):
    if not isinstance(tree, dict):
        return {prefix}
    return set().union(*(_keys(v, f"{prefix}.{k}" if prefix else k) for k, v in tree.items()))


def test_grid_pipeline_has_the_same_stages_deps_and_outs():
    main = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    grid = yaml.safe_load((GRID / "dvc.yaml").read_text())["stages"]
    assert list(grid) == list(main)
    for name, stage in main.items():
        g = grid[name]
        assert g["cmd"] == stage["cmd"].replace("python stages/", "python ../../stages/"), name
        for field in ("outs", "metrics", "plots", "params"):
            assert [_rebase(e) for e in g.get(field, [])] == stage.get(field, []), (name, field)
        want = [d for d in stage["deps"] if (name, d) not in GRID_ONLY_MISSING]
        assert [_rebase(d) for d in g["deps"]] == want, name
        code = [d for d in g["deps"] if d.startswith(("stages/", "src/"))]
        assert not code, f"{name}: code deps must point to the repository root (../../): {code}"


def test_grid_params_have_the_same_keys_and_the_grid_settings():
    main = yaml.safe_load((ROOT / "params.yaml").read_text())
    grid = yaml.safe_load((GRID / "params.yaml").read_text())
    assert _keys(grid) == _keys(main)
    assert grid["fetch"]["source"] == "grid" and grid["crop"]["detector"] == "dlib"
    assert grid["evaluate"]["landmarker"] == "dlib"
    assert (GRID / grid["fetch"]["grid"]["root"]).resolve() == (ROOT.parent / "shared" / "grid").resolve()
