"""DVC stage `train_generator`: train the talking-face generator G_L (P1/P2 losses), export models/generator.pt.

Reads the params section `generator` (talkface.train.generator.GeneratorTrainConfig); writes models/ckpt/generator/,
models/generator.pt, metrics/generator.json, plots/generator_train.csv and plots/samples/generator.png.
"""

from __future__ import annotations

import dataclasses

import _bootstrap  # noqa: F401  (this checkout's src/ on sys.path)
from talkface.config import as_dict, load_params, section  # noqa: E402
from talkface.data.windows import WindowConfig  # noqa: E402
from talkface.tracking import stage_run  # noqa: E402
from talkface.train.generator import GeneratorTrainConfig, run_stage  # noqa: E402


def main() -> None:
    params = load_params()
    # shared by every trainer: the window shape (`windows`) and the face size (`crop.size`, what the crops are)
    cfg = section(params, "generator", GeneratorTrainConfig)
    cfg = dataclasses.replace(cfg, window=section(params, "windows", WindowConfig),
                              model=dataclasses.replace(cfg.model, face_size=int(params["crop"]["size"])))
    with stage_run("train_generator", as_dict(cfg)) as run:
        metrics = run_stage("generator", cfg, run)
    if metrics:
        shown = {k: metrics[k] for k in ("val_l1", "val_psnr", "val_ssim", "val_sync") if k in metrics}
        print(f"[train_generator] {shown} -> models/generator.pt")


if __name__ == "__main__":
    main()
