"""Crop-stage benchmark on real faces: frames/s and the share of frames with a face, per detector backend.

    python benchmarks/crop.py [--grid ../shared/grid --samples ../shared/real-samples --clips 60 --workers 2]

Runs `talkface prepare` (fetch + crop, the code of the DVC crop stage) on `--clips` GRID s1 sentences and on every
real sample, with each offline backend (dlib: boxes + 68 landmarks; haar: boxes only), into a temporary folder.
Prints, per dataset and backend: clips kept, frames, wall seconds, frames/s end to end (decode + detect + crop, all
workers together), and the share of frames where the detector found a face and where it gave 68 landmarks.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from talkface.data.prepare import CropConfig, prepare  # noqa: E402
from talkface.data.sources import FetchConfig, fetch  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared"


def run(fetch_cfg: FetchConfig, detector: str, workers: int, out: Path) -> dict:
    fetch(fetch_cfg, out / "raw")
    cfg = CropConfig(detector=detector, workers=workers)
    t0 = time.perf_counter()
    manifest = prepare(out / "raw", out / "clips", out / "splits", cfg, source=fetch_cfg.source, progress=False)
    wall = time.perf_counter() - t0
    kept = manifest[manifest["status"] == "kept"]
    metas = [json.loads((out / "clips" / c / "meta.json").read_text()) for c in kept["clip_id"]]
    frames = sum(m["n_frames"] for m in metas)
    return {"clips": len(manifest), "kept": len(kept), "frames": frames, "wall_s": wall,
            "frames_per_s": frames / wall if wall > 0 else float("nan"),
            "face_share": sum(m["detected_frames"] for m in metas) / max(frames, 1),
            "landmark_share": sum(m.get("landmark_frames", 0) for m in metas) / max(frames, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--grid", type=Path, default=SHARED / "grid")
    ap.add_argument("--samples", type=Path, default=SHARED / "real-samples")
    ap.add_argument("--clips", type=int, default=60, help="GRID sentences (a seeded subset)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--detectors", nargs="+", default=["dlib", "haar"])
    args = ap.parse_args()
    datasets = {}
    if (args.grid / "s1").is_dir():
        f = FetchConfig(source="grid", max_clips=args.clips)
        f.grid.root = str(args.grid)
        datasets[f"GRID s1 ({args.clips} sentences)"] = f
    if args.samples.is_dir():
        f = FetchConfig(source="folder")
        f.folder.input = str(args.samples)
        datasets["real samples"] = f
    if not datasets:
        raise SystemExit(f"no data: neither {args.grid}/s1 nor {args.samples} exists")
    print(f"{'dataset':<28} {'detector':<8} {'kept':>9} {'frames':>7} {'wall s':>7} {'frames/s':>9} "
          f"{'face':>6} {'68 lm':>6}")
    for name, fetch_cfg in datasets.items():
        for detector in args.detectors:
            with tempfile.TemporaryDirectory() as tmp:
                r = run(fetch_cfg, detector, args.workers, Path(tmp))
            print(f"{name:<28} {detector:<8} {r['kept']:>4}/{r['clips']:<4} {r['frames']:>7} {r['wall_s']:>7.1f} "
                  f"{r['frames_per_s']:>9.1f} {r['face_share']:>6.1%} {r['landmark_share']:>6.1%}")


if __name__ == "__main__":
    main()
