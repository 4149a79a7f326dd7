"""dvc.yaml says what each stage depends on, in every pipeline (dvc.yaml, experiments/*/dvc.yaml):

- code: every project module the stage's script imports (derived from the source, imports inside functions included,
  with the package __init__ files Python runs on the way), and nothing else, so editing any of them re-runs the
  stage and editing another module does not;
- params: the keys the stage reads. Its settings build from params.yaml cut down to the declared keys, and deleting
  any declared key fails the stage's settings with one error naming that key (so editing an undeclared key cannot
  change the stage, and a declared key is really read).
"""

from __future__ import annotations

import copy
import importlib
import sys
from pathlib import Path

import pytest
import yaml

from import_graph import stage_code

from talkface.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PIPELINES = {"root": (ROOT / "dvc.yaml", ROOT / "params.yaml", ""),
             "grid": (ROOT / "experiments/grid/dvc.yaml", ROOT / "experiments/grid/params.yaml", "../../"),
             "grid_real": (ROOT / "experiments/grid_real/dvc.yaml", ROOT / "experiments/grid_real/params.yaml",
                           "../../")}


def _stages(pipeline: str) -> dict:
    return yaml.safe_load(PIPELINES[pipeline][0].read_text())["stages"]


def _script(stage: dict, prefix: str) -> tuple[Path, list[str]]:
    """The stage script (repository-relative) and its arguments, from `cmd: python <script> [args]`."""
    python, script, *args = stage["cmd"].split()
    assert python == "python" and script.startswith(prefix + "stages/"), stage["cmd"]
    return Path(script[len(prefix):]), args


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_code_deps_are_the_imported_modules(pipeline):
    _, _, prefix = PIPELINES[pipeline]
    for name, stage in _stages(pipeline).items():
        script, _ = _script(stage, prefix)
        code = sorted(d[len(prefix):] for d in stage["deps"]
                      if d[len(prefix):].startswith(("src/", "stages/")) and d.startswith(prefix))
        want = stage_code(ROOT / script, ROOT)
        missing, extra = sorted(set(want) - set(code)), sorted(set(code) - set(want))
        assert not missing and not extra, (
            f"{pipeline} {name}: deps missing {missing}, not imported {extra} "
            f"(`python tests/import_graph.py {script}` lists them)")


# params whose value is a mapping of data (file stem -> speaker), not of settings: one value, whatever its entries
MAP_VALUES = {"fetch.folder.speakers", "fetch.folder.splits"}


def _leaves(tree, prefix: str = ""):
    """Dotted keys of the leaves of a params subtree (a list, an empty mapping or a MAP_VALUES entry is a leaf)."""
    if isinstance(tree, dict) and tree and prefix not in MAP_VALUES:
        for k, v in tree.items():
            yield from _leaves(v, f"{prefix}.{k}" if prefix else k)
    else:
        yield prefix


def _get(tree: dict, dotted: str):
    for k in dotted.split("."):
        tree = tree[k]
    return tree


def _only(params: dict, keys: list[str]) -> dict:
    """params.yaml cut down to the given dotted keys (and what lies below them)."""
    out: dict = {}
    for dotted in keys:
        *parents, leaf = dotted.split(".")
        src, dst = params, out
        for k in parents:
            src = src[k]
            dst = dst.setdefault(k, {})
        dst[leaf] = copy.deepcopy(src[leaf])
    return out


def _delete(params: dict, dotted: str) -> dict:
    out = copy.deepcopy(params)
    *parents, leaf = dotted.split(".")
    node = out
    for k in parents:
        node = node[k]
    del node[leaf]
    return out


def _settings(script: Path, args: list[str]):
    """The stage's `configs(params[, name])`: what it reads of params.yaml."""
    sys.path.insert(0, str(ROOT / "stages"))
    try:
        module = importlib.import_module(script.stem)
    finally:
        sys.path.remove(str(ROOT / "stages"))
    return lambda params: module.configs(params, *args)


@pytest.mark.parametrize("pipeline", sorted(PIPELINES))
def test_params_are_the_keys_each_stage_reads(pipeline):
    dvc_file, params_file, prefix = PIPELINES[pipeline]
    params = yaml.safe_load(params_file.read_text())
    for name, stage in _stages(pipeline).items():
        script, args = _script(stage, prefix)
        settings = _settings(script, args)
        declared = list(stage.get("params", []))
        assert declared, f"{pipeline} {name}: no params declared"
        for dotted in declared:
            _get(params, dotted)  # declared keys exist
        only = _only(params, declared)
        settings(only)  # reads nothing outside the declared keys
        for key in (leaf for dotted in declared for leaf in _leaves(_get(params, dotted), dotted)):
            with pytest.raises(ConfigError, match=rf"'{key}'"):
                settings(_delete(only, key))
