"""DVC stages `train_silent` and `train_generator`: `python stages/train_generator.py silent|generator`.

silent: the silent-lip generator G_S (P1; GAN + pixel + perceptual, no sync loss) -> models/silent.pt.
generator: the talking-face generator G_L (P1/P2 losses, G_S references) -> models/generator.pt.
Each reads its params section (talkface.train.generator.GeneratorTrainConfig) plus the shared `windows` section and
`crop.size`; writes models/ckpt/<section>/, metrics/<section>.json, plots/<section>_train.csv and
plots/samples/<section>.png.
"""

from __future__ import annotations

import dataclasses
import sys

import _bootstrap  # noqa: F401  (this checkout's src/ on sys.path)
from talkface.config import as_dict, get, load_params, section  # noqa: E402
from talkface.data.windows import WindowConfig  # noqa: E402
from talkface.tracking import stage_run  # noqa: E402
from talkface.train.generator import GeneratorTrainConfig, run_stage  # noqa: E402

STAGES = ("silent", "generator")


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in STAGES:
        sys.exit(f"usage: python stages/train_generator.py {'|'.join(STAGES)}")
    name = sys.argv[1]
    params = load_params()
    # shared by every trainer: the window shape (`windows`) and the face size (`crop.size`, what the crops are)
    window = dataclasses.asdict(section(params, "windows", WindowConfig))
    cfg = section(params, name, GeneratorTrainConfig, passed={"window": window, "model.face_size": get(params, "crop.size")})
    with stage_run(f"train_{name}", as_dict(cfg)) as run:
        metrics = run_stage(name, cfg, run)
    if metrics:
        shown = {k: metrics[k] for k in ("val_l1", "val_psnr", "val_ssim", "val_sync") if k in metrics}
        print(f"[train_{name}] {shown} -> models/{name}.pt")


if __name__ == "__main__":
    main()
