"""The report builds from fixture metric/plot files and from nothing; the HTML is self-contained."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from talkface.report import tables
from talkface.report.html import ReportConfig, build_report, write_report
from talkface.report.paper_numbers import REFERENCE_ROWS

ROOT = Path(__file__).resolve().parents[1]

EVAL = {
    "model": {"SSIM": 0.91234, "PSNR": 28.5, "FID": "FID InceptionV3 weights not available: not in cache",
              "IFC": 0.021, "LMD": "LMD not available: no landmark detector for generated frames (FAN weights missing)",
              "LSE-C": "syncnet_v2 weights not available: no path", "LSE-D": "syncnet_v2 weights not available: no path",
              "LSE-C (talkface-syncnet)": 0.31, "LSE-D (talkface-syncnet)": 0.82,
              "AVSu": "AV-HuBERT not available: no AV-HuBERT checkpoint",
              "AVSm": "AV-HuBERT not available: no AV-HuBERT checkpoint",
              "AVSv": "AV-HuBERT not available: no AV-HuBERT checkpoint", "n_clips": 2},
    "ceiling": {"SSIM": 1.0, "PSNR": 100.0, "IFC": 0.0, "LSE-C (talkface-syncnet)": 0.4},
    "floor": {"SSIM": 0.7, "PSNR": 20.0},
    "run": {"n_clips": 2, "n_frames": 40, "device": "cpu", "generate_frames_per_s": 123.4,
            "evaluate_frames_per_s": 10.0, "floor": "paste", "skipped": []},
}

# Trimmed from real `dvc exp show --json` output (DVC 3.x layout).
EXPS = [
    {"rev": "workspace", "name": None, "error": None, "experiments": None,
     "data": {"params": {"params.yaml": {"data": {"train": {"lr": 0.5, "loss": "plain"}}}},
              "metrics": {"metrics/eval.json": {"data": {"model": {"SSIM": 0.5, "FID": "not available: x"}}}}}},
    {"rev": "b71958e50c09506184ab4be1b512cf41da4bdc5d", "name": "master", "error": None,
     "data": {"params": {"params.yaml": {"data": {"train": {"lr": 0.1, "loss": "plain"}}}},
              "metrics": {"metrics/eval.json": {"error": {"type": "FileNotFoundError", "msg": "no eval.json"}}}},
     "experiments": [
         {"name": "e2", "executor": None, "revs": [
             {"rev": "a1412574", "name": "e2", "error": None, "experiments": None,
              "data": {"params": {"params.yaml": {"data": {"train": {"lr": 0.5, "loss": "plain"}}}},
                       "metrics": {"metrics/eval.json": {"data": {"model": {"SSIM": 0.81, "PSNR": 25.0}}}}}}]},
         {"name": "base-exp", "executor": None, "revs": [
             {"rev": "3bd68dfe", "name": "base-exp", "error": None, "experiments": None,
              "data": {"params": {"params.yaml": {"data": {"train": {"lr": 0.1, "loss": "plain"}}}},
                       "metrics": {"metrics/eval.json": {"data": {"model": {"SSIM": 0.72, "PSNR": 22.0}}}}}}]},
     ]},
]


def _png(path: Path, color=(31, 119, 180)):
    img = np.full((40, 60, 3), 255, np.uint8)
    img[10:30, 10:50] = color[::-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


@pytest.fixture
def fixture_root(tmp_path):
    m, p = tmp_path / "metrics", tmp_path / "plots"
    m.mkdir()
    p.mkdir()
    (m / "eval.json").write_text(json.dumps(EVAL))
    pd.DataFrame({"clip_id": ["a", "b", "a"], "group": ["model", "model", "ceiling"], "n_frames": [20, 20, 20],
                  "SSIM": [0.9, 0.92, 1.0], "PSNR": [28.0, 29.0, 100.0]}).to_csv(m / "eval_per_clip.csv", index=False)
    (m / "generator.json").write_text(json.dumps({"final": {"l1": 0.05, "sync": "not available: x"}}))
    (m / "generator_analysis.json").write_text(json.dumps({"leak": {"without_silent": {"leak_corr": 0.4321}}}))
    (m / "experiments.json").write_text(json.dumps(EXPS))
    rng = np.random.default_rng(0)
    for name, mean in (("syncnet", 0.6), ("avsyncnet", 0.8)):
        pd.DataFrame({"sample": range(50), "cosine": np.clip(rng.normal(mean, 0.1, 50), 0, 1)}).to_csv(
            p / f"{name}_gt_cosine.csv", index=False)
        pd.DataFrame([{"transform": t, "magnitude": mag, "loss": 0.3 + mag / 10} for t in ("shift", "rotation")
                      for mag in range(5)]).to_csv(p / f"{name}_robustness.csv", index=False)
    pd.DataFrame({"step": range(0, 100, 10), "loss": np.linspace(1, 0.2, 10), "val_l1": np.linspace(0.3, 0.1, 10)}
                 ).to_csv(p / "generator_train.csv", index=False)
    pd.DataFrame([{"scorer": "talkface-syncnet", "group": g, "offset": o, "mean_dist": 1 + abs(o) / 15 - 0.1 * (g == "model")}
                  for g in ("model", "ceiling") for o in range(-15, 16)]).to_csv(p / "eval_lse_offsets.csv", index=False)
    (p / "silent_train.csv").write_text("")  # an empty file: a missing line, not a crash
    _png(p / "eval_samples.png")
    return tmp_path


def test_report_from_fixtures(fixture_root):
    doc = build_report(ReportConfig(), fixture_root)
    md_path, html_path = write_report(doc, fixture_root / "reports")
    md, page = md_path.read_text(), html_path.read_text()

    # Table 1 layout: this run's rows beside the papers', values rounded, n/a reasons listed once.
    assert "| This run: G_L (model) | 0.912 | 28.50 | n/a |" in md
    assert "P2 \"Ours\" (LRS2) | 0.947 | 31.27 | 4.51 |" in md
    assert "LSE-C (talkface-syncnet) ↑" in md and "0.310" in md
    assert md.count("n/a: AV-HuBERT not available: no AV-HuBERT checkpoint") == 1
    assert "other data/setup" in md
    # Ablation from the dvc JSON: the varying parameter and both experiments, the one without metrics noted.
    assert "| Experiment | train.lr |" in md and "| e2 | 0.5 | 0.810 |" in md and "| base-exp | 0.1 | 0.720 |" in md
    assert "master (no eval.json)" in md
    # Figures: written as PNG and embedded as data URIs; nothing external.
    figs = sorted(p.name for p in (fixture_root / "reports" / "figures").glob("*.png"))
    assert {"sync_gt_cosine.png", "robustness.png", "train_generator.png", "lse_offsets.png",
            "sample_eval_samples.png"} <= set(figs)
    uris = re.findall(r'<img(?: class="pixelated")? alt="[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == len(figs) == page.count("<img")
    assert all(base64.b64decode(u)[:8] == b"\x89PNG\r\n\x1a\n" for u in uris)
    assert "http://" not in page and "https://" not in page and "<script" not in page and "<link" not in page
    assert "(figures/sync_gt_cosine.png)" in md
    # Missing or unreadable inputs are lines, not crashes.
    assert "silent_train.csv" in md and "metrics/syncnet.json is missing" in md.replace(str(fixture_root) + "/", "")
    # The checks after training (analysis stages) are tables of their own.
    assert "| leak.without_silent.leak_corr | 0.4321 |" in md and "silent_analysis.json is missing" in md


def test_report_from_empty_dir(tmp_path):
    doc = build_report(ReportConfig(), tmp_path)
    md_path, html_path = write_report(doc, tmp_path / "reports")
    md = md_path.read_text()
    assert "eval.json is missing" in md and "Missing inputs" in md
    for ref in REFERENCE_ROWS:  # the papers' numbers are shown even without a run
        assert ref["label"].replace("|", "\\|") in md
    assert "<img" not in html_path.read_text()
    assert len(doc.missing) >= 8


def test_experiments_from_dvc_json_and_formatting():
    rows = tables.experiments_from_dvc_json(EXPS)
    assert [r["name"] for r in rows] == ["workspace", "master", "e2", "base-exp"]
    assert rows[2]["params"] == {"train.lr": 0.5, "train.loss": "plain"}
    assert rows[1]["metrics"] is None and rows[1]["error"] == "no eval.json"
    assert tables.varying_params(rows) == ["train.lr"]
    assert tables.experiments_from_dvc_json({"unexpected": 1}) == [] and tables.experiments_from_dvc_json(None) == []
    # a second pipeline's params file with the same keys does not overwrite the root's (it is prefixed)
    two = [{"rev": "x", "name": "two", "data": {"params": {
        "params.yaml": {"data": {"train": {"lr": 0.5}}},
        "experiments/grid/params.yaml": {"data": {"train": {"lr": 0.01}}}}}}]
    assert tables.experiments_from_dvc_json(two)[0]["params"] == {"train.lr": 0.5,
                                                                  "experiments/grid/params.yaml:train.lr": 0.01}
    notes = []
    assert tables.format_value("PSNR", 31.2734) == "31.27"
    assert tables.format_value("FID", "FID not available: x", notes) == "n/a" and notes == ["FID not available: x"]
    assert tables.format_value("SSIM", None) == "—" and tables.format_value("SSIM", float("nan")) == "n/a"


def test_report_renders_in_headless_chromium(fixture_root):
    spec = importlib.util.spec_from_file_location("report_render", ROOT / "benchmarks" / "report_render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    if render.chromium_path() is None:
        pytest.skip("chromium is not installed")
    _, html_path = write_report(build_report(ReportConfig(), fixture_root), fixture_root / "reports")
    result = render.check_render(html_path)
    assert result["data_uri_imgs"] == result["img_tags"] >= 5
    assert result["matplotlib_blue_pixels"] > 50
