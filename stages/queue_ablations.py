"""Queue the ablation presets of docs/ablations.md as DVC experiments, then (optionally) run them all.

    python stages/queue_ablations.py                  # queue every available preset (prints each command)
    python stages/queue_ablations.py --only A,E,G     # a subset
    python stages/queue_ablations.py --avhubert /path/to/base_vox_433h.pt   # also the three AV-HuBERT presets
    python stages/queue_ablations.py --run --jobs 1   # queue, then `dvc exp run --run-all`
    python stages/queue_ablations.py --export         # metrics/experiments.json (`dvc exp show --json`): the report's
                                                      # ablation table; then `dvc repro report`
    dvc exp show --only-changed                       # the table

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
# Values not listed keep params.yaml's defaults (the full model, H).
P1_BASE = {"generator.use_silent_reference": "false", "generator.loss.triplet": "0"}
PRESETS: dict[str, dict[str, str]] = {
    # A: base model (no G_S), plain Wav2Lip sync loss, audio encoder trained with the generator
    "A": {**P1_BASE, "generator.audio_encoder": "joint", "generator.expert": "syncnet",
          "generator.loss.sync_kind": "plain"},
    # B: A with the frozen pretrained AVSyncNet audio encoder
    "B": {**P1_BASE, "generator.audio_encoder": "avsyncnet", "generator.expert": "syncnet",
          "generator.loss.sync_kind": "plain"},
    # D: base + silent-lip generator + frozen pretrained SyncNet audio encoder, plain sync loss
    "D": {"generator.use_silent_reference": "true", "generator.loss.triplet": "0",
          "generator.audio_encoder": "syncnet", "generator.expert": "syncnet", "generator.loss.sync_kind": "plain"},
    # E: D with the stabilized sync loss L_ss instead of the plain one
    "E": {"generator.use_silent_reference": "true", "generator.loss.triplet": "0",
          "generator.audio_encoder": "syncnet", "generator.expert": "syncnet", "generator.loss.sync_kind": "stabilized"},
    # F [ours]: E with AVSyncNet as audio encoder and as the expert of L_ss
    "F": {"generator.use_silent_reference": "true", "generator.loss.triplet": "0",
          "generator.audio_encoder": "avsyncnet", "generator.expert": "avsyncnet",
          "generator.loss.sync_kind": "stabilized"},
    # G: E + adaptive triplet loss (P1's full model without post-processing, SyncNet-based)
    "G": {"generator.use_silent_reference": "true", "generator.loss.triplet": "0.5",
          "generator.audio_encoder": "syncnet", "generator.expert": "syncnet", "generator.loss.sync_kind": "stabilized"},
    # H [ours]: G + AVSyncNet (audio encoder and expert) = the full model = params.yaml's default
    "H": {"generator.use_silent_reference": "true", "generator.loss.triplet": "0.5",
          "generator.audio_encoder": "avsyncnet", "generator.expert": "avsyncnet",
          "generator.loss.sync_kind": "stabilized"},
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
        cmd = ["dvc", "exp", "run", "--queue", "-n", f"ablation-{name}"]
        for key, value in overrides.items():
            cmd += ["-S", f"{key}={value}"]
        out.append(cmd)
    return out, skipped


EXPERIMENTS_JSON = "metrics/experiments.json"  # report.experiments_json of the default pipeline


def export(path: str = EXPERIMENTS_JSON, run=subprocess.run) -> int:
    """Write `dvc exp show --json` (every experiment with its params and metrics) to `path`, the file the report's
    ablation table reads; returns the number of experiments. Not inside `dvc repro` (the repository lock is held)."""
    import json
    from pathlib import Path

    out = run(["dvc", "exp", "show", "--json"], check=True, capture_output=True, text=True).stdout
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
    ap.add_argument("--export", action="store_true",
                    help=f"only write {EXPERIMENTS_JSON} from `dvc exp show --json` (the report's ablation table)")
    args = ap.parse_args(argv)
    if args.export:
        n = export()
        print(f"[ablations] {EXPERIMENTS_JSON}: {n} experiment(s); `dvc repro report` puts them in the report")
        return
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
