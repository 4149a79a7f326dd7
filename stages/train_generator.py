"""DVC stages `train_silent` and `train_generator`: `python stages/train_generator.py silent|generator`.

silent: the silent-lip generator G_S (P1; GAN + pixel + perceptual, no sync loss) -> models/silent.pt.
generator: the talking-face generator G_L (P1/P2 losses, G_S references) -> models/generator.pt.
Each reads its params section (talkface.train.generator.GeneratorTrainConfig) without its `analysis` subsection (the
analysis stage reads that), plus the shared `windows` section, the mel parameters (`mels.mel`) and `crop.size`; writes
models/ckpt/<section>/, metrics/<section>.json and plots/<section>_train.csv.
"""

from __future__ import annotations

import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout's src/ on sys.path)
from talkface.config import as_dict, get, load_params, section  # noqa: E402
from talkface.model_inputs import contract_params  # noqa: E402
from talkface.pipeline_params import k  # noqa: E402
from talkface.tracking import stage_run  # noqa: E402
from talkface.train.generator import GeneratorTrainConfig  # noqa: E402
from talkface.train.generator_stage import STAGES, TrainPaths, train_stage  # noqa: E402


def paths(name: str) -> TrainPaths:
    """The stage's deps and outs in dvc.yaml."""
    return TrainPaths(Path("data/clips"), Path("data/mels"), Path("data/splits"), Path("models/ckpt") / name,
                      Path("models") / f"{name}.pt", Path("metrics") / f"{name}.json",
                      Path("plots") / f"{name}_train.csv")


def configs(params: dict, name: str) -> GeneratorTrainConfig:
    """Section `name` without `analysis`; the windows, the mel parameters, k (`windows.k`) and the face size
    (`crop.size`, what the crops are) are passed down: defined once, shared by every trainer (pipeline_params)."""
    values = {key: v for key, v in get(params, name).items() if key != "analysis"}
    return section({name: values}, name, GeneratorTrainConfig,
                   passed={**contract_params(params), "model.k": k(params), "model.face_size": get(params, "crop.size")})


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in STAGES:
        sys.exit(f"usage: python stages/train_generator.py {'|'.join(STAGES)}")
    name = sys.argv[1]
    cfg = configs(load_params(), name)
    with stage_run(f"train_{name}", as_dict(cfg)) as run:
        metrics = train_stage(name, cfg, paths(name), run)
    if metrics:
        shown = {k: metrics[k] for k in ("val_l1", "val_psnr", "val_ssim", "val_sync") if k in metrics}
        print(f"[train_{name}] {shown} -> models/{name}.pt")


if __name__ == "__main__":
    main()
