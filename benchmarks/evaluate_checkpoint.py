"""Score any G_L checkpoint on an experiment's test split, or on some of its speakers, without touching DVC's outputs.

    PYTHONPATH=src python benchmarks/evaluate_checkpoint.py --experiment experiments/grid_real \
        --checkpoint experiments/grid/models/generator.pt --exclude-speaker s1 --out /tmp/gridonly_unseen

The evaluate stage's own code and settings (the experiment's params.yaml `evaluate` section, its judges) with another
generator and a subset of the test clips: the GRID-only G_L on the faces experiments/grid_real holds out, beside the
model trained with them. Prints the model / floor / ceiling means and writes the stage's files under --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from talkface.config import load_params, section  # noqa: E402
from talkface.data.store import read_meta  # noqa: E402
from talkface.data.windows import read_split  # noqa: E402
from talkface.evaluate import EvaluateConfig, EvaluateOutputs, evaluate  # noqa: E402
from talkface.model_inputs import contract_params  # noqa: E402

SHOWN = ["SSIM", "PSNR", "SSIM (lower half)", "PSNR (lower half)", "LMD", "MouthCorr", "LSE-C (talkface-syncnet)",
         "LSE-D (talkface-syncnet)"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", type=Path, required=True, help="folder with params.yaml and data/ (e.g. experiments/grid_real)")
    ap.add_argument("--checkpoint", type=Path, required=True, help="G_L to score")
    ap.add_argument("--exclude-speaker", action="append", default=[], help="leave this speaker's test clips out")
    ap.add_argument("--speaker", action="append", default=[], help="only these speakers' test clips")
    ap.add_argument("--out", type=Path, required=True, help="folder for eval.json, eval_per_clip.csv, ...")
    args = ap.parse_args()

    exp = args.experiment.resolve()
    checkpoint, out = args.checkpoint.resolve(), args.out.resolve()
    os.chdir(exp)  # the experiment's paths (data/, ../grid/models/) are relative to it
    cfg = section(load_params(exp / "params.yaml"), "evaluate", EvaluateConfig,
                  passed=contract_params(load_params(exp / "params.yaml")))
    ids = read_split(cfg.split)
    speakers = {c: str(read_meta(cfg.clips_dir, c)["speaker"]) for c in ids}
    keep = [c for c in ids if speakers[c] not in args.exclude_speaker and (not args.speaker or speakers[c] in args.speaker)]
    if not keep:
        raise SystemExit("no test clip left after the speaker filters")
    out.mkdir(parents=True, exist_ok=True)
    (out / "test.txt").write_text("\n".join(keep) + "\n")
    cfg = dataclasses.replace(cfg, generator=str(checkpoint), split=str(out / "test.txt"), write_videos=False)
    outputs = EvaluateOutputs(eval_json=out / "eval.json", per_clip_csv=out / "eval_per_clip.csv",
                              frames_csv=out / "eval_frames.csv", lse_curves_csv=out / "eval_lse_offsets.csv",
                              samples_png=out / "eval_samples.png", videos_dir=out / "videos")
    result = evaluate(cfg, outputs)
    print(f"{checkpoint} on {len(keep)} test clips of {sorted({speakers[c] for c in keep})}:")
    for group in ("model", "floor", "ceiling"):
        row = result[group]
        print(f"  {group:8s} " + "  ".join(f"{k} {row[k]:.3f}" for k in SHOWN if isinstance(row.get(k), float)))
    (out / "command.json").write_text(json.dumps(vars(args), default=str, indent=1) + "\n")


if __name__ == "__main__":
    main()
