"""Does a dub of a real person follow the new speech? Dub clip X with clip Y's audio and measure, with dlib landmarks on
the full output frames:

- sync: Pearson r per pair of the dubbed mouth opening (inner-lip gap / inter-ocular distance, metrics/mouth.py) with
  Y's own mouth opening (the ground truth of that audio), beside r with X's original mouth (lip leaking) and r of X's
  and Y's mouths (what two unrelated clips share: the chance level);
- closed lips in silence: mean dubbed opening on the frames the dubber marks silent, beside the speech frames;
- sharpness: variance of the Laplacian of the mouth region (landmarks 48-67, box grown by half) in the dubbed frame
  over the same region of the original frame (median over frames).

    PYTHONPATH=src python benchmarks/dub_quality.py                              # shipped model, GRID test + real samples
    PYTHONPATH=src python benchmarks/dub_quality.py --checkpoint models/generator.pt --pairs 6 --adapt 300

GRID pairs use sentences of the GRID experiment's test split (not trained on); real pairs put one real sample's
speech on another's video; unseen pairs do the same among the four people that experiments/grid_real holds out
(test split), so that they are unseen faces for both shipped-model candidates. `--cross N` adds two diagnostic sets
that tell a voice the model never heard from a face it never saw: "grid_face" puts an unseen person's speech on a GRID
s1 test video, "grid_voice" puts a GRID s1 test sentence (its own video is the truth) on an unseen person's video.
`--everyone N` dubs each of the first N real-sample videos (sorted by name) with the speech of the clip 7 places on
(cyclically, so each clip's speech is used about once; the next one on when that is the same person): with a GRID-only model every one of them is a face and a voice it never met (the widest, least noisy test
of a model trained on s1 alone; a model trained with experiments/grid_real has seen seven of these people). Means
carry their standard error over pairs. Prints a table and writes --out (JSON).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from talkface.cli import default_checkpoint  # noqa: E402
from talkface.dub import DubConfig, Dubber  # noqa: E402
from talkface.dubbing.silence import silent_frames  # noqa: E402
from talkface.faces.detect import DetectorConfig, make_detector  # noqa: E402
from talkface.media.decode import read_audio, read_frames  # noqa: E402
from talkface.metrics.mouth import mouth_opening, opening_correlation  # noqa: E402

SHARED = ROOT.parent / "shared"
REAL_PAIRS = [  # (video, audio): other people's speech on each face
    ("vrt_face_2.mp4", "styletalk_Obama_clip1.mp4"), ("styletalk_Obama_clip2.mp4", "hdtf_WDA_KatieHill_000.mp4"),
    ("hdtf_WDA_AlexandriaOcasioCortez_000.mp4", "styletalk_feifeili_clip1.mp4"),
    ("styletalk_feifeili_clip3.mp4", "styletalk_reagan_clip1.mp4"), ("styletalk_andrew_clip_1.mp4",
                                                                    "styletalk_KristiNoem.mp4"),
]

UNSEEN_PAIRS = [  # the people experiments/grid_real holds out of training: andrew, reagan, aoc, vrt_face_2
    ("vrt_face_2.mp4", "styletalk_reagan_clip1.mp4"),
    ("hdtf_WDA_AlexandriaOcasioCortez_000.mp4", "styletalk_andrew_clip_2.mp4"),
    ("styletalk_andrew_clip_1.mp4", "hdtf_WDA_AlexandriaOcasioCortez_000.mp4"),
    ("styletalk_reagan_clip1.mp4", "vrt_face_2.mp4"),
    ("vrt_face_3.mp4", "styletalk_andrew_clip_1.mp4"),
]


def landmarks_of(frames: np.ndarray, detector) -> np.ndarray:
    """[T,68,2] full-frame dlib landmarks (NaN where no face)."""
    out = np.full((len(frames), 68, 2), np.nan, np.float32)
    for i, det in enumerate(detector.detect(frames, start=0)):
        if det is not None and det.landmarks is not None:
            out[i] = det.landmarks
    return out


def mouth_boxes(lms: np.ndarray, grow: float = 0.5) -> np.ndarray:
    """[T,4] int boxes of landmarks 48-67 grown by `grow` of their size (NaN rows -> -1)."""
    m = lms[:, 48:68]
    lo, hi = np.nanmin(m, axis=1), np.nanmax(m, axis=1)
    size = hi - lo
    box = np.concatenate([lo - grow * size / 2, hi + grow * size / 2], axis=1)
    return np.where(np.isfinite(box), box, -1).astype(int)


def laplacian_var(img: np.ndarray) -> float:
    gray = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def sharpness_ratio(dubbed: np.ndarray, original: np.ndarray, boxes: np.ndarray) -> float:
    r = []
    for d, o, (x0, y0, x1, y1) in zip(dubbed, original, boxes):
        if x0 < 0 or x1 - x0 < 8 or y1 - y0 < 8:
            continue
        x0, y0 = max(0, x0), max(0, y0)
        vo = laplacian_var(o[y0:y1, x0:x1])
        if vo > 1e-6:
            r.append(laplacian_var(d[y0:y1, x0:x1]) / vo)
    return float(np.median(r)) if r else float("nan")


def timeline(frames: np.ndarray, n: int) -> np.ndarray:
    """The dubber's `loop` timeline: frame j is frames[j mod len]."""
    return frames[np.arange(n) % len(frames)]


def one_pair(dubber: Dubber, video: Path, audio: Path, seconds: float, work: Path, detector) -> dict:
    fps = dubber.fps
    clip_audio = work / f"{audio.stem}.wav"
    import subprocess

    from talkface.media.ffmpeg_bin import ffmpeg_exe

    run = lambda *a: subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *a], check=True)  # noqa: E731
    run("-i", str(audio), "-t", str(seconds), "-vn", "-ac", "1", "-ar", "16000", str(clip_audio))
    clip_video = work / f"{video.stem}.mp4"  # the first `seconds` of the face video (near-lossless)
    run("-i", str(video), "-t", str(seconds), "-c:v", "libx264", "-crf", "12", "-preset", "veryfast", "-c:a", "aac",
        str(clip_video))
    video = clip_video
    out = work / f"{video.stem}__{audio.stem}.mp4"
    t0 = time.perf_counter()
    res = dubber.dub(video, clip_audio, out)
    seconds_taken = time.perf_counter() - t0
    dubbed = read_frames(out, fps)
    n = len(dubbed)
    orig = timeline(read_frames(video, fps), n)
    truth = read_frames(audio, fps, duration=seconds)[:n]
    m = min(n, len(truth))
    lm_d, lm_o, lm_t = landmarks_of(dubbed, detector), landmarks_of(orig, detector), landmarks_of(truth, detector)
    op_d, op_o, op_t = mouth_opening(lm_d), mouth_opening(lm_o), mouth_opening(lm_t)
    wav = read_audio(clip_audio, 16000)
    quiet = silent_frames(wav, 16000, fps, n, dubber.cfg.silence)
    return {
        "video": video.name, "audio": clip_audio.name, "frames": n, "dub_seconds": round(seconds_taken, 2),
        "adapt_seconds": round(res.adapt_seconds, 2),
        "r_dub_truth": opening_correlation(op_d[:m], op_t[:m]),
        "r_dub_original": opening_correlation(op_d, op_o),
        "r_original_truth": opening_correlation(op_o[:m], op_t[:m]),
        "open_silent": float(np.nanmean(op_d[quiet])) if quiet.any() else float("nan"),
        "open_speech": float(np.nanmean(op_d[~quiet])) if (~quiet).any() else float("nan"),
        "open_truth_speech": float(np.nanmean(op_t[:m][~quiet[:m]])) if (~quiet[:m]).any() else float("nan"),
        "silent_frames": int(quiet.sum()),
        "sharpness_ratio": sharpness_ratio(dubbed, orig, mouth_boxes(lm_o)),
        "face_frames": int(np.isfinite(op_d).sum()),
    }


def person_of() -> dict[str, str]:
    """Clip stem -> person, from experiments/grid_real's speaker map (a clip not in it is its own person)."""
    import yaml

    params = yaml.safe_load((ROOT / "experiments" / "grid_real" / "params.yaml").read_text())
    return {str(k): str(v) for k, v in params["fetch"]["folder"]["speakers"].items()}


def everyone_pairs(n: int, stride: int = 7) -> list[tuple[Path, Path]]:
    """Each of the first n real-sample videos with the audio of the clip `stride` places on, cyclically (the next one
    on while that is the same person)."""
    clips = sorted((SHARED / "real-samples").glob("*.mp4"))[:n]
    people = person_of()
    who = [people.get(c.stem, c.stem) for c in clips]
    pairs = []
    for i, video in enumerate(clips):
        for j in range(stride, stride + len(clips) - 1):
            other = (i + j) % len(clips)
            if who[other] != who[i]:
                pairs.append((video, clips[other]))
                break
    return pairs


def grid_pairs(n: int) -> list[tuple[Path, Path]]:
    split = ROOT / "experiments" / "grid" / "data" / "splits" / "test.txt"
    if not split.is_file():
        return []
    ids = [line.strip().split("_", 1)[1] for line in split.read_text().splitlines() if line.strip()]
    videos = [SHARED / "grid" / "s1" / "video" / f"{i}.mp4" for i in ids]
    videos = [v for v in videos if v.is_file()]
    return [(videos[2 * i], videos[2 * i + 1]) for i in range(min(n, len(videos) // 2))]


def summarise(rows: list[dict]) -> dict:
    keys = ["r_dub_truth", "r_dub_original", "r_original_truth", "open_silent", "open_speech", "open_truth_speech",
            "sharpness_ratio", "dub_seconds", "adapt_seconds"]
    out = {k: float(np.nanmean([r[k] for r in rows])) for k in keys} | {"pairs": len(rows)}
    for k in ("r_dub_truth", "r_dub_original", "r_original_truth", "sharpness_ratio"):
        v = np.array([r[k] for r in rows], float)
        v = v[np.isfinite(v)]
        out[f"{k}_sem"] = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=None, help="G_L (default: the shipped real-face model)")
    ap.add_argument("--pairs", type=int, default=6, help="GRID test pairs")
    ap.add_argument("--real", type=int, default=len(REAL_PAIRS), help="real-sample pairs (0 = none)")
    ap.add_argument("--unseen", type=int, default=len(UNSEEN_PAIRS),
                    help="pairs among the people experiments/grid_real holds out (0 = none)")
    ap.add_argument("--cross", type=int, default=0,
                    help="pairs of each diagnostic set: GRID face with an unseen voice, unseen face with a GRID voice")
    ap.add_argument("--everyone", type=int, default=0,
                    help="pairs of the 'everyone' set: each real video with another person's speech (0 = none)")
    ap.add_argument("--seconds", type=float, default=4.0, help="seconds of speech per pair")
    ap.add_argument("--adapt", type=int, default=0, help="per-video adaptation steps (0 = off)")
    ap.add_argument("--adapt-lr", type=float, default=None, help="dub.adapt.lr (default: AdaptConfig's)")
    ap.add_argument("--adapt-trainable", default=None, help="dub.adapt.trainable: all | output")
    ap.add_argument("--no-silence", action="store_true")
    ap.add_argument("--reference", choices=["closed", "first"], default=None,
                    help="dub.reference_pick (default: DubConfig's)")
    ap.add_argument("--anchor", action="store_true", help="dub.anchor.enabled true (one vertical box stretch per video)")
    ap.add_argument("--norm-stats", choices=["on", "off"], default=None,
                    help="dub.norm_stats.enabled (default: DubConfig's): G_L's BatchNorm statistics from the video")
    ap.add_argument("--norm-audio", choices=["on", "off"], default=None,
                    help="dub.norm_stats.audio (default: DubConfig's): the audio encoder's statistics too")
    ap.add_argument("--detail", type=float, default=None, help="dub.paste.detail_tolerance (default: DubConfig's)")
    ap.add_argument("--sharpen", type=float, default=None, help="dub.paste.sharpen (default: DubConfig's)")
    ap.add_argument("--out", type=Path, default=None, help="JSON of every pair and the means")
    args = ap.parse_args()

    cfg = DubConfig(detector="dlib")
    cfg.adapt.steps = args.adapt
    if args.adapt_lr is not None:
        cfg.adapt.lr = args.adapt_lr
    if args.adapt_trainable is not None:
        cfg.adapt.trainable = args.adapt_trainable
    cfg.silence.enabled = not args.no_silence
    cfg.anchor.enabled = args.anchor
    if args.reference is not None:
        cfg.reference_pick = args.reference
    if args.norm_stats is not None:
        cfg.norm_stats.enabled = args.norm_stats == "on"
    if args.norm_audio is not None:
        cfg.norm_stats.audio = args.norm_audio == "on"
    if args.detail is not None:
        cfg.paste.detail_tolerance = args.detail
    if args.sharpen is not None:
        cfg.paste.sharpen = args.sharpen
    ckpt = args.checkpoint or default_checkpoint()
    dubber = Dubber.from_checkpoints(ckpt, cfg=cfg, progress=False)
    detector = make_detector("dlib", DetectorConfig())
    sets = {"grid": grid_pairs(args.pairs),
            "real": [(SHARED / "real-samples" / v, SHARED / "real-samples" / a) for v, a in REAL_PAIRS[: args.real]],
            "unseen": [(SHARED / "real-samples" / v, SHARED / "real-samples" / a)
                       for v, a in UNSEEN_PAIRS[: args.unseen]]}
    if args.cross:
        grid_videos = [v for pair in grid_pairs(args.cross) for v in pair]
        unseen = [SHARED / "real-samples" / v for v, _ in UNSEEN_PAIRS]
        sets["grid_face"] = [(grid_videos[i], unseen[i % len(unseen)]) for i in range(min(args.cross, len(grid_videos)))]
        sets["grid_voice"] = [(unseen[i % len(unseen)], grid_videos[-1 - i])
                              for i in range(min(args.cross, len(grid_videos)))]
    if args.everyone:
        sets["everyone"] = everyone_pairs(args.everyone)
    report = {"checkpoint": str(ckpt), "adapt_steps": args.adapt, "adapt_lr": cfg.adapt.lr,
              "adapt_trainable": cfg.adapt.trainable, "silence": cfg.silence.enabled, "anchor": cfg.anchor.enabled,
              "norm_stats": dataclasses.asdict(cfg.norm_stats), "reference_pick": cfg.reference_pick,
              "detail_tolerance": cfg.paste.detail_tolerance, "sharpen": cfg.paste.sharpen,
              "seconds": args.seconds}
    with tempfile.TemporaryDirectory() as tmp:
        for name, pairs in sets.items():
            rows = []
            for video, audio in pairs:
                if not (video.is_file() and audio.is_file()):
                    continue
                row = one_pair(dubber, video, audio, args.seconds, Path(tmp), detector)
                rows.append(row)
                print(f"[{name}] {row['video']} <- {row['audio']}: r(dub,truth) {row['r_dub_truth']:+.3f} "
                      f"r(dub,orig) {row['r_dub_original']:+.3f} r(orig,truth) {row['r_original_truth']:+.3f} "
                      f"open silent/speech {row['open_silent']:.3f}/{row['open_speech']:.3f} "
                      f"sharpness {row['sharpness_ratio']:.2f}", flush=True)
            if rows:
                report[name] = {"mean": summarise(rows), "pairs": rows}
                mean = report[name]["mean"]
                print(f"[{name}] mean of {len(rows)}: r(dub,truth) {mean['r_dub_truth']:+.3f} "
                      f"+- {mean['r_dub_truth_sem']:.3f}, r(dub,orig) "
                      f"{mean['r_dub_original']:+.3f}, chance r(orig,truth) {mean['r_original_truth']:+.3f}; "
                      f"opening silent {mean['open_silent']:.3f} vs speech {mean['open_speech']:.3f} "
                      f"(truth speech {mean['open_truth_speech']:.3f}); sharpness {mean['sharpness_ratio']:.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
