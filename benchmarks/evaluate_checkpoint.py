"""Score any G_L checkpoint on an experiment's test split, or on some of its speakers, without touching DVC's outputs.

    PYTHONPATH=src python benchmarks/evaluate_checkpoint.py --experiment experiments/grid_real \
        --checkpoint experiments/grid/models/generator.pt --exclude-speaker s1 --out /tmp/gridonly_unseen

The evaluate stage's own code and settings (the experiment's params.yaml `evaluate` section, its judges) with another
generator and a subset of the test clips: the GRID-only G_L on the faces experiments/grid_real holds out, beside the
model trained with them. `--norm-stats` gives G_L, per clip, the BatchNorm statistics of that clip's own windows
(dubbing/norm_stats.py, as `talkface dub` does per video; with `--norm-audio`, the audio encoder's too): the stage's
figures under the dub's test-time statistics. `--mel-warp A` scales the frequency axis of every clip's mel by A before
G_L hears it (augment.warp_mel; the judges score against the clip's own audio): how much G_L's sync depends on the
one training voice's formant positions. Prints the model / floor / ceiling means and writes the stage's files
under --out.
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
from talkface.dubbing.norm_stats import NormStatsConfig, video_norm_stats  # noqa: E402
from talkface.evaluate import EvaluateConfig, EvaluateOutputs, evaluate  # noqa: E402
from talkface.model_inputs import contract_params  # noqa: E402

def clip_statistics(norm: NormStatsConfig) -> None:
    """Make the evaluate stage's generate_clip re-estimate G_L's statistics on each clip first: `norm.windows`
    windows spread over the clip with the stage's own inputs (pose, identity reference, G_S when used, mel)."""
    import numpy as np
    import torch

    import talkface.evaluate as stage
    from talkface.evaluation.generate import window_batch, window_starts
    from talkface.model_inputs import close_lips, evaluation_reference

    plain = stage.generate_clip

    def generate_clip(gens, frames, mel, clip_id, seed, batch_size, device, window):
        starts = window_starts(len(frames), gens.k)
        picked = [starts[i] for i in np.unique(np.linspace(0, len(starts) - 1, min(norm.windows, len(starts)))
                                               .round().astype(int))]
        refs = [evaluation_reference(clip_id, f, len(frames), gens.k, seed) for f in picked]
        inputs = {name: t.to(device) for name, t in window_batch(frames, mel, picked, refs, window).items()}
        ident = inputs["identity"]
        if gens.silent is not None:
            ident = close_lips(gens.silent, ident, torch.from_numpy(gens.silent_mel))
        lip = video_norm_stats(gens.lip, inputs["pose"], ident, inputs["indiv_mels"], norm)
        return plain(dataclasses.replace(gens, lip=lip), frames, mel, clip_id, seed, batch_size, device, window)

    stage.generate_clip = generate_clip


def warped_audio(alpha: float, mel_cfg) -> None:
    """Make the evaluate stage's generate_clip give G_L the clip's mel with its frequency axis scaled by alpha."""
    import numpy as np
    import torch

    import talkface.evaluate as stage
    from talkface.augment import warp_mel

    plain = stage.generate_clip

    def generate_clip(gens, frames, mel, clip_id, seed, batch_size, device, window):
        bands = torch.from_numpy(np.ascontiguousarray(mel.T))[None]  # [1, n_mels, T]
        warped = warp_mel(bands, alpha, mel_cfg)[0].T.numpy()
        return plain(gens, frames, np.ascontiguousarray(warped), clip_id, seed, batch_size, device, window)

    stage.generate_clip = generate_clip


SHOWN = ["SSIM", "PSNR", "SSIM (lower half)", "PSNR (lower half)", "LMD", "MouthCorr", "LSE-C (talkface-syncnet)",
         "LSE-D (talkface-syncnet)"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", type=Path, required=True, help="folder with params.yaml and data/ (e.g. experiments/grid_real)")
    ap.add_argument("--checkpoint", type=Path, required=True, help="G_L to score")
    ap.add_argument("--exclude-speaker", action="append", default=[], help="leave this speaker's test clips out")
    ap.add_argument("--speaker", action="append", default=[], help="only these speakers' test clips")
    ap.add_argument("--out", type=Path, required=True, help="folder for eval.json, eval_per_clip.csv, ...")
    ap.add_argument("--norm-stats", action="store_true", help="per clip, G_L's BatchNorm statistics from its windows")
    ap.add_argument("--norm-audio", action="store_true", help="with --norm-stats: the audio encoder's statistics too")
    ap.add_argument("--norm-windows", type=int, default=32, help="windows per clip that estimate them")
    ap.add_argument("--mel-warp", type=float, default=1.0, help="scale the mel's frequency axis by this (another voice)")
    ap.add_argument("--max-clips", type=int, default=0, help="at most this many test clips, evenly spread (0 = all)")
    args = ap.parse_args()
    if args.norm_stats:
        clip_statistics(NormStatsConfig(enabled=True, windows=args.norm_windows, audio=args.norm_audio))

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
    if 0 < args.max_clips < len(keep):
        import numpy as np
        keep = [keep[i] for i in np.unique(np.linspace(0, len(keep) - 1, args.max_clips).round().astype(int))]
    if args.mel_warp != 1.0:  # after the norm-stats patch, so the statistics hear the warped voice too
        warped_audio(args.mel_warp, cfg.mel)
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
