"""The generator analysis stages (analyse_silent / analyse_generator): the checks of a trained generator on the
validation windows of its training (generator_checks.py). Every path comes from the caller (the stage script).

    checks = analysis_stage("generator", cfg, mouth, window, mel, seed, AnalysisPaths(...), run)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from ..data.mel import MelConfig
from ..data.windows import WindowDataset, has_silent, split_ids
from ..metrics import write_metrics
from ..model_inputs import WindowConfig, silent_mel
from ..models.generator_io import load_generator, uses_silent_reference
from .generator_checks import (GeneratorAnalysisConfig, analysis_batches, generator_samples, leak_analysis,
                               silent_analysis)
from .leaking import MouthOpeningConfig

STAGES = ("silent", "generator")


@dataclasses.dataclass
class AnalysisPaths:
    clips_dir: Path
    mels_dir: Path
    splits_dir: Path      # val.txt: the validation split of training
    model: Path           # the generator checked
    silent_model: Path    # G_S (the lip-leak check of G_L also runs G_L on G_S references when present)
    metrics_json: Path    # the checks
    samples_png: Path     # the sample grid


def analysis_stage(stage: str, cfg: GeneratorAnalysisConfig, mouth: MouthOpeningConfig, window: WindowConfig,
                   mel: MelConfig, seed: int, paths: AnalysisPaths, run: Any = None) -> dict[str, Any]:
    """The checks of a trained generator on the validation windows of its training (loop seed `seed`): for G_S the
    silent check, for G_L the lip leak with and without G_S; both a sample grid. Returns the checks dict."""
    import cv2
    import torch

    from ..devices import resolve_device

    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got '{stage}'")
    device = resolve_device(cfg.device)
    ids = split_ids(paths.splits_dir, "val")  # the validation windows of training: item stream loop seed + 1
    val_set = WindowDataset(paths.clips_dir, paths.mels_dir, ids, window, seed=seed + 1,
                            with_silent=has_silent(paths.clips_dir, ids))
    gen = load_generator(paths.model, map_location=device).to(device).eval()
    quiet = torch.from_numpy(silent_mel(mel, window.mel_steps)).to(device)
    landmarker = None
    if cfg.landmarker != "none":
        from ..faces.crop_landmarks import make_crop_landmarker

        landmarker = make_crop_landmarker(cfg.landmarker)
    if stage == "silent":
        checks = {"silent_check": silent_analysis(gen, val_set, cfg, mouth, quiet, device, landmarker)}
        silent, use_silent = gen, False  # the grid's last column: G_S's reconstruction with the real audio
    else:
        silent, reason = None, ""
        if paths.silent_model.is_file():
            silent = load_generator(paths.silent_model, map_location=device).to(device).eval()
        else:
            reason = f"no G_S at {paths.silent_model}"
        checks = {"leak": leak_analysis(gen, silent, val_set, cfg, mouth, quiet, device, reason, landmarker)}
        use_silent = uses_silent_reference(gen)
    batch = next(analysis_batches(val_set, cfg.samples, cfg.samples, device))
    grid = generator_samples(gen, silent, batch, cfg.samples, use_silent, quiet)
    paths.samples_png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(paths.samples_png), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    checks = write_metrics(paths.metrics_json, checks)
    if run is not None:
        run.log_metrics(checks)
        run.log_artifact(paths.samples_png)
    return checks
