"""DVC stages `train_syncnet` / `train_avsyncnet`: `python stages/train_expert.py syncnet|avsyncnet`.

Trains the lip-sync expert on data/splits/train.txt (validation on val.txt), resumable from models/ckpt/<name>/,
exports models/<name>.pt, then runs the P1 stability analyses on the test split and writes
metrics/<name>.json, plots/<name>_train.csv, plots/<name>_gt_cosine.csv, plots/<name>_robustness.csv.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout's src/ on sys.path)
import pandas as pd  # noqa: E402

from talkface.analysis.sync_analysis import analyse_expert  # noqa: E402
from talkface.config import load_params, section  # noqa: E402
from talkface.data.windows import read_split  # noqa: E402
from talkface.models.expert_io import save_expert  # noqa: E402
from talkface.model_inputs import contract_params, window_params  # noqa: E402
from talkface.pipeline_params import k  # noqa: E402
from talkface.tracking import stage_run  # noqa: E402
from talkface.train.sync import (CONFIGS, count_parameters, curve_rows, train_expert, train_summary,  # noqa: E402
                                 window_datasets)


def configs(params: dict, name: str):
    """Section `name`, its model's k passed down from `windows.k` and the mel parameters (`mels.mel`, the bands that
    `mel_warp` warps), and the windows (`pipeline_params`)."""
    return (section(params, name, CONFIGS[name], passed={"model.k": k(params), "mel": contract_params(params)["mel"]}),
            window_params(params))


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in CONFIGS:
        sys.exit(f"usage: python stages/train_expert.py {'|'.join(CONFIGS)}")
    name = argv[1]
    cfg, window = configs(load_params(), name)
    ids = {split: read_split(Path("data/splits") / f"{split}.txt") for split in ("train", "val", "test")}
    if not ids["train"]:
        sys.exit(f"[train_{name}] data/splits/train.txt is empty")
    sets = window_datasets(Path("data/clips"), Path("data/mels"), ids, window, cfg.loop.seed)

    with stage_run(f"train_{name}", {name: dataclasses.asdict(cfg), "windows": dataclasses.asdict(window)}) as run:
        trained = train_expert(name, cfg, sets["train"], sets.get("val"), Path("models/ckpt") / name, run=run)
        save_expert(trained.expert, Path("models") / f"{name}.pt")
        analysis = analyse_expert(trained.expert, sets["train"], sets.get("test"), cfg.analysis, Path("plots"), name)

        metrics = {**train_summary(trained.history), "params": count_parameters(trained.expert),
                   "model": dataclasses.asdict(cfg.model_config()), "table_a": analysis["table_a"]}
        offset = analysis["offset"]
        metrics.update(offset if isinstance(offset, dict) else {"offset_accuracy": offset})
        if "val_loss" not in metrics:
            metrics.update(val_loss="not available: empty val split", val_acc="not available: empty val split")
        Path("metrics").mkdir(exist_ok=True)
        Path("plots").mkdir(exist_ok=True)
        (Path("metrics") / f"{name}.json").write_text(json.dumps(metrics, indent=2) + "\n")
        pd.DataFrame(curve_rows(trained.history), columns=["step", "loss", "val_loss", "val_acc"]).to_csv(
            Path("plots") / f"{name}_train.csv", index=False)

        run.log_metrics({k: v for k, v in metrics.items() if k != "model"})
        for path in (Path("metrics") / f"{name}.json", *sorted(Path("plots").glob(f"{name}_*.csv"))):
            run.log_artifact(path)

    test = analysis["table_a"]["test"]
    test_txt = f"test cos {test['cos_mean']:.3f} loss {test['loss_mean']:.3f}" if isinstance(test, dict) else test
    print(f"[train_{name}] step {metrics['steps']}: val acc {metrics.get('val_acc')}, val loss "
          f"{metrics.get('val_loss')}; {test_txt}; offset accuracy {metrics['offset_accuracy']} -> models/{name}.pt")


if __name__ == "__main__":
    main(sys.argv)
