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


GRID_REAL = ROOT / "experiments" / "grid_real"
# grid_real borrows the GRID experiment's experts and G_S instead of training its own
BORROWED = {f"models/{m}.pt": f"../grid/models/{m}.pt" for m in ("syncnet", "avsyncnet", "silent")}


def test_grid_real_pipeline_is_the_grid_pipeline_with_borrowed_experts():
    grid = yaml.safe_load((GRID / "dvc.yaml").read_text())["stages"]
    real = yaml.safe_load((GRID_REAL / "dvc.yaml").read_text())["stages"]
    assert list(real) == [s for s in grid if s in real] and {"train_generator", "evaluate"} <= set(real)
    for name, stage in real.items():
        g = grid[name]
        assert stage["cmd"] == g["cmd"], name
        for field in ("outs", "metrics", "plots", "params"):
            assert stage.get(field, []) == g.get(field, []), (name, field)
        assert stage["deps"] == [BORROWED.get(d, d) for d in g["deps"]], name
    borrowed = {d for s in real.values() for d in s["deps"] if d.startswith("../grid/")}
    grid_outs = {_rebase(o) if isinstance(o, str) else next(iter(o)) for s in grid.values() for o in s.get("outs", [])}
    assert {d[len("../grid/"):] for d in borrowed} <= grid_outs  # what it borrows is made by the GRID pipeline


def test_grid_real_params_hold_out_whole_people():
    main = yaml.safe_load((ROOT / "params.yaml").read_text())
    real = yaml.safe_load((GRID_REAL / "params.yaml").read_text())
    maps = ("fetch.folder.speakers", "fetch.folder.splits")  # data, not settings: their entries differ
    assert {k for k in _keys(real) if not k.startswith(maps)} == {k for k in _keys(main) if not k.startswith(maps)}
    fetch = real["fetch"]
    assert fetch["source"] == "mixed" and fetch["mixed"]["sources"] == ["grid", "folder"]
    assert (GRID_REAL / fetch["folder"]["input"]).resolve() == (ROOT.parent / "shared" / "real-samples").resolve()
    assert (GRID_REAL / fetch["grid"]["root"]).resolve() == (ROOT.parent / "shared" / "grid").resolve()
    # every named person is in exactly one split: the held-out faces are never trained on
    speakers = fetch["folder"]["speakers"]
    test = {s for s, split in fetch["folder"]["splits"].items() if split == "test"}
    assert test and fetch["folder"]["default_split"] == "train"
    assert all(v in test or v not in fetch["folder"]["splits"] for v in speakers.values())
    for key in ("syncnet_path", "avsyncnet_path", "silent_path"):
        assert real["generator"][key] == BORROWED[f"models/{key.split('_')[0]}.pt"]
    assert real["evaluate"]["lse_expert"] == BORROWED["models/syncnet.pt"]
    assert real["generator"]["speaker_power"] < 1.0
