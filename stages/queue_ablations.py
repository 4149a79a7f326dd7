"""Queue the ablation presets of docs/ablations.md as DVC experiments, then (optionally) run them all.

    python stages/queue_ablations.py                  # queue every available preset (prints each command)
    python stages/queue_ablations.py --only A,E,G     # a subset
    python stages/queue_ablations.py --avhubert /path/to/base_vox_433h.pt   # also the three AV-HuBERT presets
    python stages/queue_ablations.py --run --jobs 1   # queue, then `dvc exp run --run-all`
    python stages/queue_ablations.py --export         # metrics/experiments.json (`dvc exp show --json`): the report's
                                                      # ablation table; then `dvc repro report`
    dvc exp show --only-changed                       # the table
    python stages/queue_ablations.py --paper all --lrs2 /data/LRS2 --dry-run   # the papers' setup (PAPER_SETUP)

Each preset is a set of `-S` overrides of params.yaml keys, applied on top of the workspace's params.yaml; unchanged
stages (data, experts, G_S) are reused from the run cache, so only train_generator and what follows rerun.
Not a DVC stage: a helper script (stages/ holds it next to the stages it drives).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

# P1 setups (papers/000_*, 001_*; METHOD.md §6) and P2's sync-loss variants (papers/002_* Table 4).
# Values not listed keep params.yaml's defaults: H's model and losses, but with the sync term weighted 0 [ours]
# (measured on GRID: at this CPU scale it degrades the image without raising sync; docs/ablations.md). Every P1 setup
# with a sync loss therefore sets P1's weight 2 itself.
P1_SYNC = {"generator.loss.sync": "2.0"}
P1_BASE = {"generator.use_silent_reference": "false", "generator.loss.triplet": "0"}
PRESETS: dict[str, dict[str, str]] = {
    # A: base model (no G_S), plain Wav2Lip sync loss, audio encoder trained with the generator
    "A": {**P1_BASE, "generator.audio_encoder": "joint", "generator.expert": "syncnet",
          "generator.loss.sync_kind": "plain", **P1_SYNC},
    # B: A with the frozen pretrained AVSyncNet audio encoder
    "B": {**P1_BASE, "generator.audio_encoder": "avsyncnet", "generator.expert": "syncnet",
          "generator.loss.sync_kind": "plain", **P1_SYNC},
    # D: base + silent-lip generator + frozen pretrained SyncNet audio encoder, plain sync loss
    "D": {"generator.use_silent_reference": "true", "generator.loss.triplet": "0",
          "generator.audio_encoder": "syncnet", "generator.expert": "syncnet", "generator.loss.sync_kind": "plain", **P1_SYNC},
    # E: D with the stabilized sync loss L_ss instead of the plain one
    "E": {"generator.use_silent_reference": "true", "generator.loss.triplet": "0",
          "generator.audio_encoder": "syncnet", "generator.expert": "syncnet", "generator.loss.sync_kind": "stabilized", **P1_SYNC},
    # F [ours]: E with AVSyncNet as audio encoder and as the expert of L_ss
    "F": {"generator.use_silent_reference": "true", "generator.loss.triplet": "0",
          "generator.audio_encoder": "avsyncnet", "generator.expert": "avsyncnet",
          "generator.loss.sync_kind": "stabilized", **P1_SYNC},
    # G: E + adaptive triplet loss (SyncNet-based)
    "G": {"generator.use_silent_reference": "true", "generator.loss.triplet": "0.5",
          "generator.audio_encoder": "syncnet", "generator.expert": "syncnet", "generator.loss.sync_kind": "stabilized", **P1_SYNC},
    # H: P1's proposed full model (P1 supp. App. B); its composition, G + AVSyncNet as audio encoder and L_ss expert,
    # is our reading [ours] = params.yaml's default with L_ss at P1's weight 2
    "H": {"generator.use_silent_reference": "true", "generator.loss.triplet": "0.5",
          "generator.audio_encoder": "avsyncnet", "generator.expert": "avsyncnet",
          "generator.loss.sync_kind": "stabilized", **P1_SYNC},
    # H without any sync loss: the reference point of "sync is better with a sync loss"
    "nosync": {"generator.loss.sync_kind": "none"},
    # H trained on raw identity references: the "without G_S" side of the lip-leak comparison
    "nosilent": {"generator.use_silent_reference": "false"},
    # P2: L = L_GAN + 10 L_pixel + 1 L_per + 0.5 L_sync, no G_S, no triplet; the sync term varies
    "p2_syncnet": {**P1_BASE, "generator.audio_encoder": "syncnet", "generator.expert": "syncnet",
                   "generator.loss.sync_kind": "plain", "generator.loss.sync": "0.5"},
    "p2_unsupervised": {**P1_BASE, "generator.audio_encoder": "syncnet", "generator.expert": "syncnet",
                        "generator.loss.sync_kind": "avhubert_unsupervised", "generator.loss.sync": "0.5"},
    "p2_visual": {**P1_BASE, "generator.audio_encoder": "syncnet", "generator.expert": "syncnet",
                  "generator.loss.sync_kind": "avhubert_visual", "generator.loss.sync": "0.5"},
    "p2_multimodal": {**P1_BASE, "generator.audio_encoder": "syncnet", "generator.expert": "syncnet",
                      "generator.loss.sync_kind": "avhubert_multimodal", "generator.loss.sync": "0.5"},
}
# The papers' setup, one switch per trained model (`--paper syncnet,avsyncnet,silent,generator` or `all`). Values the
# papers or Wav2Lip's code give are tagged; what neither gives (batch, iterations, schedules, discriminator width) is
# ours, chosen after Wav2Lip's code (docs/ablations.md, "The papers' setup"). No CPU-only delays: the GAN and sync
# terms run from step 0.
PAPER_SETUP: dict[str, dict[str, str]] = {
    "syncnet": {
        "syncnet.model.width": "32",          # Wav2Lip's SyncNet_color (16.4M parameters) [Wav2Lip code]
        "syncnet.lr": "1.0e-4",               # [Wav2Lip code, hparams.syncnet_lr]
        "syncnet.loop.batch_size": "64",      # [Wav2Lip code, hparams.syncnet_batch_size]
        "syncnet.loop.lr_schedule": "constant",  # [Wav2Lip code: no scheduler]
        "syncnet.loop.steps": "100000",       # [ours] Wav2Lip trains until the val BCE is ~0.25
        "syncnet.loop.eval_every": "2000", "syncnet.loop.checkpoint_every": "2000",  # [ours]
    },
    "avsyncnet": {
        "avsyncnet.preset": "paper",          # ResNet-50 on 112x224 lower faces + ResNetSE34 with SAP [P1 supp. A.2]
        "avsyncnet.lr": "1.0e-4",             # "similar strategy as in SyncNet" [P1 supp. A.3] = Wav2Lip's 1e-4
        "avsyncnet.loop.batch_size": "64",    # [ours, Wav2Lip's expert batch]
        "avsyncnet.loop.lr_schedule": "constant",  # [ours, as Wav2Lip]
        "avsyncnet.loop.steps": "100000",     # [ours]
        "avsyncnet.loop.eval_every": "2000", "avsyncnet.loop.checkpoint_every": "2000",  # [ours]
    },
    "silent": {
        "silent.model.width": "16", "silent.model.max_width": "512",  # [ours] G_L's architecture [notes], Wav2Lip size
        "silent.model.compose": "false", "silent.model.upsample": "transposed",  # the papers' generator [P2 §3.3]
        "silent.model.reference_blend": "false",  # the papers' output head (RGB only)
        "silent.loop.batch_size": "16",       # [ours, Wav2Lip's generator batch]
        "silent.lr": "1.0e-4",                # [ours, P2 §3.6's generator lr]
        "silent.gan_start_step": "0",         # no CPU-only delay
        "silent.loss.perceptual_form": "p2", "silent.loss.perceptual_fallback": "none",  # VGG-19 as P2 Eq. 2
        "silent.disc.width": "32", "silent.disc.max_width": "512",  # [ours]
        "silent.loop.steps": "100000",        # [ours]
        "silent.loop.eval_every": "2000", "silent.loop.checkpoint_every": "2000",  # [ours]
    },
    "generator": {
        "generator.model.width": "16", "generator.model.max_width": "512",  # [ours] about Wav2Lip's 36M
        "generator.model.compose": "false", "generator.model.upsample": "transposed",  # the papers' [P2 §3.3]
        "generator.model.reference_blend": "false",  # the papers' output head (RGB only)
        "generator.loop.batch_size": "16",    # [ours, Wav2Lip's batch_size]
        "generator.loop.lr_schedule": "constant",  # [ours, as Wav2Lip]
        "generator.lr": "1.0e-4",             # [P2 §3.6]
        "generator.disc_lr": "1.0e-4",        # [Wav2Lip code]
        "generator.gan_start_step": "0", "generator.sync_start_step": "0",  # no CPU-only delays
        "generator.disc.width": "32", "generator.disc.max_width": "512",  # [ours]
        "generator.loss.pixel": "10.0", "generator.loss.perceptual": "1.0", "generator.loss.gan": "1.0",  # [P2 §3.6]
        "generator.loss.sync": "2.0", "generator.loss.triplet": "0.5",  # P1's weights [METHOD.md notes]
        "generator.loss.perceptual_form": "p2", "generator.loss.perceptual_fallback": "none",  # P2 Eq. 2, VGG-19
        "generator.avhubert_context": "-1",   # the whole clip [P2 §3.5] (used by the AV-HuBERT sync losses)
        "generator.loop.steps": "200000",     # [ours]
        "generator.loop.eval_every": "2000", "generator.loop.checkpoint_every": "2000",  # [ours]
    },
}
PAPER_DATA = {"fetch.source": "lrs2", "crop.detector": "fan"}  # LRS2, FAN crops at 96x96 [P2 §3.6]


def queue_command(name: str, overrides: dict[str, str]) -> list[str]:
    """`dvc exp run --queue -n NAME -S key=value ...`."""
    cmd = ["dvc", "exp", "run", "--queue", "-n", name]
    for key, value in overrides.items():
        cmd += ["-S", f"{key}={value}"]
    return cmd


def paper_command(models: list[str], lrs2_root: str | None) -> list[str]:
    """`dvc exp run --queue -n paper-...` with the paper switches of `models` (and LRS2 + FAN when a root is given)."""
    unknown = sorted(set(models) - set(PAPER_SETUP))
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown} for --paper; known: {sorted(PAPER_SETUP)} or all")
    overrides: dict[str, str] = {}
    for m in models:
        overrides.update(PAPER_SETUP[m])
    if lrs2_root:
        overrides.update(PAPER_DATA, **{"fetch.lrs2.root": lrs2_root})
    return queue_command("paper-" + "-".join(models), overrides)


NOT_AVAILABLE = {"C": "Wav2Vec2 audio encoder: not available here (no Wav2Vec2 weights offline, no encoder implemented)"}
AVHUBERT_PRESETS = {name for name, p in PRESETS.items() if p.get("generator.loss.sync_kind", "").startswith("avhubert")}


def commands(names: list[str], avhubert: str | None) -> tuple[list[list[str]], list[str]]:
    """The `dvc exp run --queue` command of each preset, and the lines saying which presets were skipped and why."""
    out, skipped = [], []
    for name in names:
        if name in NOT_AVAILABLE:
            skipped.append(f"{name}: {NOT_AVAILABLE[name]}")
            continue
        if name not in PRESETS:
            raise SystemExit(f"unknown preset '{name}'; known: {sorted(PRESETS) + sorted(NOT_AVAILABLE)}")
        overrides = dict(PRESETS[name])
        if name in AVHUBERT_PRESETS:
            if not avhubert:
                skipped.append(f"{name}: not available: no AV-HuBERT checkpoint (pass --avhubert PATH)")
                continue
            overrides["generator.avhubert_path"] = avhubert
        out.append(queue_command(f"ablation-{name}", overrides))
    return out, skipped


EXPERIMENTS_JSON = "metrics/experiments.json"  # report.experiments_json of the default pipeline


def export(path: str = EXPERIMENTS_JSON, run=subprocess.run, revs: list[str] | None = None) -> int:
    """Write `dvc exp show --json` (every experiment with its params and metrics) to `path`, the file the report's
    ablation table reads; returns the number of experiments. `revs`: the baseline commits whose experiments to show
    (`--rev`; default HEAD's), for experiments run before a docs-only commit. Not inside `dvc repro` (the repository
    lock is held)."""
    import json
    from pathlib import Path

    cmd = ["dvc", "exp", "show", "--json", *[a for r in (revs or []) for a in ("--rev", r)]]
    out = run(cmd, check=True, capture_output=True, text=True).stdout
    data = json.loads(out)  # fails loudly on anything but JSON
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=1) + "\n")
    return sum(len(e.get("experiments") or []) for e in data) if isinstance(data, list) else 0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default="", help="comma-separated preset names (default: all)")
    ap.add_argument("--avhubert", default="", help="AV-HuBERT checkpoint for the p2_* AV-HuBERT presets")
    ap.add_argument("--run", action="store_true", help="run the queue afterwards (dvc exp run --run-all)")
    ap.add_argument("--jobs", type=int, default=1, help="parallel queue workers for --run")
    ap.add_argument("--dry-run", action="store_true", help="print the commands only")
    ap.add_argument("--paper", default="", help="queue the papers' setup instead: syncnet,avsyncnet,silent,generator "
                                                "or all (PAPER_SETUP), on the workspace's data unless --lrs2 is given")
    ap.add_argument("--lrs2", default="", help="with --paper: train on this LRS2 root with FAN crops")
    ap.add_argument("--export", action="store_true",
                    help=f"only write {EXPERIMENTS_JSON} from `dvc exp show --json` (the report's ablation table)")
    ap.add_argument("--rev", action="append", default=[],
                    help="with --export: experiments of this baseline commit (repeatable; default HEAD)")
    args = ap.parse_args(argv)
    if args.export:
        n = export(revs=args.rev)
        print(f"[ablations] {EXPERIMENTS_JSON}: {n} experiment(s); `dvc repro report` puts them in the report")
        return
    if args.paper:
        models = list(PAPER_SETUP) if args.paper == "all" else [m.strip() for m in args.paper.split(",") if m.strip()]
        cmds, skipped = [paper_command(models, args.lrs2 or None)], []
    else:
        names = [n.strip() for n in args.only.split(",") if n.strip()] or list(PRESETS) + list(NOT_AVAILABLE)
        cmds, skipped = commands(names, args.avhubert or None)
    for line in skipped:
        print(f"[ablations] skipped {line}")
    if args.run:
        cmds.append(["dvc", "exp", "run", "--run-all", "--jobs", str(args.jobs)])
    for cmd in cmds:
        print("$ " + shlex.join(cmd))
        if not args.dry_run:
            subprocess.run(cmd, check=True)
    if not args.dry_run:
        print("[ablations] results: dvc exp show --only-changed")


if __name__ == "__main__":
    main(sys.argv[1:])
