"""The before / after frame grids of docs/dubbing.md: dub a video with other speech and tile some frames.

    PYTHONPATH=src python benchmarks/before_after.py ../shared/real-samples/vrt_face_2.mp4 \
        ../shared/real-samples/vrt_audio_1.wav docs/images/dub_before_after.png
    PYTHONPATH=src python benchmarks/before_after.py ../shared/grid/s1/video/bgbb3a.mp4 \
        ../shared/grid/s1/video/bgbn9s.mp4 docs/images/dub_grid_s1.png --crop-face

Row 1: the input frames, row 2: the same frames dubbed by `talkface dub`'s defaults (the shipped model unless
--checkpoint). --crop-face shows the face region (1.6 x the dub's first face box) instead of the whole frame.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from talkface.cli import default_checkpoint  # noqa: E402
from talkface.dub import DubConfig, Dubber  # noqa: E402
from talkface.media.decode import read_frames  # noqa: E402
from talkface.media.probe import probe  # noqa: E402


def label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.putText(out, text, (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("audio", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--frames", type=int, nargs="+", default=[0, 16, 32, 49])
    ap.add_argument("--seconds", type=float, default=2.0, help="speech used")
    ap.add_argument("--tile", type=int, default=200, help="side of each tile, px")
    ap.add_argument("--crop-face", action="store_true")
    args = ap.parse_args()

    dubber = Dubber.from_checkpoints(args.checkpoint or default_checkpoint(), cfg=DubConfig(detector="dlib"),
                                     progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        import subprocess

        from talkface.media.ffmpeg_bin import ffmpeg_exe

        speech = Path(tmp) / "speech.wav"
        subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(args.audio), "-t",
                        str(args.seconds), "-vn", "-ac", "1", "-ar", "16000", str(speech)], check=True)
        dubbed_path = Path(tmp) / "dubbed.mp4"
        dubber.dub(args.video, speech, dubbed_path)
        dubbed = read_frames(dubbed_path, dubber.fps)
    original = read_frames(args.video, dubber.fps)[: len(dubbed)]
    boxes = dubber.detect_track(args.video, probe(args.video), len(original))[0] if args.crop_face else None
    rows = []
    for name, frames in (("before", original), ("after", dubbed)):
        tiles = []
        for j in args.frames:
            f = frames[min(j, len(frames) - 1)]
            if boxes is not None:  # the face region of the dub's own track
                x0, y0, x1, y1 = boxes[min(j, len(boxes) - 1)]
                cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2, 0.8 * (x1 - x0)
                ys = slice(max(0, int(cy - half)), int(cy + half))
                xs = slice(max(0, int(cx - half)), int(cx + half))
                f = f[ys, xs]
            tiles.append(cv2.resize(np.ascontiguousarray(f), (args.tile, args.tile), interpolation=cv2.INTER_AREA))
        tiles[0] = label(tiles[0], name)
        rows.append(np.concatenate(tiles, axis=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.concatenate(rows, axis=0), cv2.COLOR_RGB2BGR))
    print(f"{args.out}: frames {args.frames}, {args.video.name} dubbed with {args.audio.name}")


if __name__ == "__main__":
    main()
