"""The generator training stages (train_silent / train_generator); the checks after training are
analysis/generator_stage.py. Every path comes from the caller (the stage script, after dvc.yaml).

    metrics = train_stage("generator", cfg, TrainPaths(clips, mels, splits, ckpt_dir, model, json, csv), run)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from ..data.speaker_balance import SpeakerBalancedWindows
from ..data.store import read_meta
from ..data.windows import WindowDataset, has_silent, split_ids
from ..metrics import write_metrics
from ..models.generator_io import save_generator
from .generator import GeneratorTrainConfig, build_task
from .loop import Loop

STAGES = ("silent", "generator")


@dataclasses.dataclass
class TrainPaths:
    clips_dir: Path
    mels_dir: Path
    splits_dir: Path      # train.txt, val.txt
    checkpoint_dir: Path  # the loop's resumable checkpoint folder
    model: Path           # the exported generator
    metrics_json: Path    # training metrics (final validation, throughput, notes)
    curve_csv: Path       # the loop's history


def train_stage(stage: str, cfg: GeneratorTrainConfig, paths: TrainPaths, run: Any = None) -> dict[str, Any]:
    """Train G_S (stage "silent") or G_L (stage "generator"), export the model, write metrics and the curve.
    Returns the metrics dict ({} on a non-main DDP rank)."""
    import pandas as pd

    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got '{stage}'")
    p = paths
    train_ids, val_ids = split_ids(p.splits_dir, "train"), split_ids(p.splits_dir, "val")
    with_silent = has_silent(p.clips_dir, train_ids + val_ids)
    # two item streams: seed for training, seed + 1 for validation (the analysis stage looks at the latter too)
    if cfg.speaker_power == 1.0:  # every window alike: the plain dataset
        train_set = WindowDataset(p.clips_dir, p.mels_dir, train_ids, cfg.window, seed=cfg.loop.seed,
                                  with_silent=with_silent)
    else:
        speakers = {c: str(read_meta(p.clips_dir, c)["speaker"]) for c in train_ids}
        train_set = SpeakerBalancedWindows(p.clips_dir, p.mels_dir, train_ids, cfg.window, speakers,
                                           cfg.speaker_power, seed=cfg.loop.seed, with_silent=with_silent)
        shares = ", ".join(f"{k} {v:.2f}" for k, v in sorted(train_set.speaker_shares().items(), key=lambda kv: -kv[1]))
        print(f"[train] {stage}: speaker shares of the draws (speaker_power {cfg.speaker_power:g}): {shares}")
    val_set = WindowDataset(p.clips_dir, p.mels_dir, val_ids, cfg.window, seed=cfg.loop.seed + 1,
                            with_silent=with_silent)

    task = build_task(cfg, train_set, p.clips_dir, role=stage)
    loop = Loop(cfg.loop, paths.checkpoint_dir, run)
    history = loop.fit(task, train_set, val_set)
    if not loop.is_main:
        return {}
    save_generator(task.generator.eval(), paths.model, task.audio_spec, use_silent_reference=task.silent is not None)

    metrics: dict[str, Any] = {"steps": loop.step, "train_windows": train_set.n_windows,
                               "val_windows": val_set.n_windows}
    evals = [r for r in history if "val_l1" in r]
    if evals:
        metrics.update({k: v for k, v in evals[-1].items() if k.startswith("val_")})
    speeds = [r["train_samples_per_s"] for r in history if "train_samples_per_s" in r]
    if speeds:
        metrics["train_samples_per_s"] = float(np.median(speeds))
    metrics.update(task.notes)
    metrics["perceptual"] = task.notes.get("perceptual", "on" if cfg.loss.perceptual > 0 else "off (weight 0)")
    metrics = write_metrics(paths.metrics_json, metrics)
    paths.curve_csv.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(history).to_csv(paths.curve_csv, index=False)
    if run is not None:
        run.log_metrics(metrics)
    return metrics
