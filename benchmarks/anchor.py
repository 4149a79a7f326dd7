"""Where the eyes and the mouth lie in a generator's training crops, and how far other faces are from it.

    PYTHONPATH=src python benchmarks/anchor.py                       # GRID s1's store, then the real samples
    PYTHONPATH=src python benchmarks/anchor.py --clips experiments/grid_real/data/clips

Prints the store's (eye_y, mouth_y), the `dub.anchor` values of a model trained there, and for every real sample
the lines inside the rigid face box (dlib, 3 s of each video) with the stretch `dubbing.anchor` would apply.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from talkface.dubbing.anchor import AnchorConfig, anchor_boxes, anchor_lines, training_lines  # noqa: E402
from talkface.dubbing.tracking import track_all  # noqa: E402
from talkface.faces.detect import DetectorConfig, make_detector  # noqa: E402
from talkface.faces.track import detections_to_arrays  # noqa: E402
from talkface.media.decode import read_frames  # noqa: E402
from talkface.media.probe import probe  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=Path, default=ROOT / "experiments" / "grid" / "data" / "clips")
    ap.add_argument("--videos", type=Path, default=ROOT.parent / "shared" / "real-samples")
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    eye, mouth = training_lines(args.clips)
    print(f"{args.clips}: eye line {eye:.3f}, mouth-corner line {mouth:.3f} of the crop side "
          f"(dub.anchor.eye_y / mouth_y)")
    cfg = AnchorConfig(enabled=True, eye_y=eye, mouth_y=mouth)  # the stretch it would apply if switched on
    det = make_detector("dlib", DetectorConfig())
    for video in sorted(args.videos.glob("*.mp4")):
        info = probe(video)
        frames = read_frames(video, 25, duration=args.seconds)
        dets = det.detect(frames, start=0)
        raw, lms = detections_to_arrays(dets)
        lines = anchor_lines(lms)
        boxes, _ = track_all(raw, info.width, info.height, [0.0, 0.1, 0.0, 0.0], 5, "mean", 5)
        ok = np.isfinite(boxes).all(axis=1) & np.isfinite(lines).all(axis=1)
        h = boxes[ok, 3] - boxes[ok, 1]
        e = np.median((lines[ok, 0] - boxes[ok, 1]) / h)
        m = np.median((lines[ok, 1] - boxes[ok, 1]) / h)
        _, stretch = anchor_boxes(boxes, lines, cfg, info.height)
        print(f"  {video.name:42s} eye {e:.3f} mouth {m:.3f} -> box height x {stretch:.3f}")


if __name__ == "__main__":
    main()
