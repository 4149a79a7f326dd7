"""DVC stage `train_silent`: train the silent-lip generator G_S (P1), export models/silent.pt.

Reads the params section `silent` (talkface.train.generator.GeneratorTrainConfig); writes models/ckpt/silent/,
models/silent.pt, metrics/silent.json, plots/silent_train.csv and plots/samples/silent.png.
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
    cfg = section(params, "silent", GeneratorTrainConfig)
    cfg = dataclasses.replace(cfg, window=section(params, "windows", WindowConfig),
                              model=dataclasses.replace(cfg.model, face_size=int(params["crop"]["size"])))
    with stage_run("train_silent", as_dict(cfg)) as run:
        metrics = run_stage("silent", cfg, run)
    if metrics:
        shown = {k: metrics[k] for k in ("val_l1", "val_psnr", "val_ssim", "val_sync") if k in metrics}
        print(f"[train_silent] {shown} -> models/silent.pt")


if __name__ == "__main__":
    main()
