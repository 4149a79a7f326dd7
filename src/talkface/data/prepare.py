"""The crop stage: raw videos (data/raw/index.csv) -> face-crop clips (data/clips/) + manifest + splits.

Per clip (`process_clip`):
  probe -> 16 kHz mono audio -> decode at 25 fps in chunks, detecting faces chunk by chunk -> checks (length, faces)
  -> track boxes (fill gaps, pad, smooth, square) -> crop to crop.size -> landmarks in crop pixels
  -> closed-lip frames cropped with the same boxes (synthetic) -> audio cut/padded to T * 640 samples -> atomic write.

A bad clip never stops the stage: it gets a manifest row `status=rejected` with the reason. Parallel workers
(`crop.workers` processes). Resumable: a journal (`data/clips/.journal.jsonl`) records each finished clip with a
fingerprint of the settings that shape it; a rerun skips every clip whose outputs are complete and whose fingerprint
matches, so an interrupted stage continues where it stopped.

    manifest = prepare("data/raw", "data/clips", "data/splits", CropConfig(detector="haar"), source="folder")
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..faces.crop import crop_frames
from ..faces.detect import (DETECTORS, DetectorConfig, FaceDetectorUnavailable, check_dlib_available,
                            check_fan_available, make_detector, resolve_detector)
from ..faces.track import landmarks_to_crop, track_boxes
from ..media.decode import iter_frames, read_audio
from ..media.probe import NO_AUDIO, NO_VIDEO, NOT_FOUND, TRUNCATED, UNREADABLE, ZERO_LENGTH, MediaError, probe
from .grid import frame_labels, read_align
from .splits import official_split, speaker_disjoint_split, write_splits
from .store import Clip, clean_temporaries, is_complete, read_index, read_meta, resolve, write_clip, write_manifest

JOURNAL = ".journal.jsonl"

# reasons a clip is rejected besides the media ones in media.probe
TOO_SHORT = "too short"
NO_FACE = "no face"
NO_SIDECAR = "no annotations sidecar"
BAD_SILENT = "silent frames mismatch"


@dataclasses.dataclass
class CropConfig:
    detector: str = "fan"  # auto | fan | dlib | haar | annotations (synthetic sidecars)
    size: int = 96  # crop side, pixels (P1/P2: 96)
    pads: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.1, 0.0, 0.0])  # top, bottom, left, right
    smooth_window: int = 5  # frames in the moving window over boxes (Wav2Lip: 5); 1 = off
    smooth_method: str = "mean"  # mean | median
    max_gap: int = 5  # missed detections up to this many frames are interpolated
    fps: int = 25
    sample_rate: int = 16000
    min_frames: int = 25  # shorter clips are rejected
    max_missing_ratio: float = 0.2  # clips with no face in more than this share of frames are rejected
    min_decoded_ratio: float = 0.5  # fewer decoded frames than this share of duration*fps: truncated file
    workers: int = 1
    chunk_frames: int = 64  # frames decoded and detected at a time
    cache_mb: int = 1024  # full frames kept between detection and cropping; longer clips are decoded twice
    split_fractions: list[float] = dataclasses.field(default_factory=lambda: [0.8, 0.1, 0.1])  # train, val, test
    seed: int = 0  # of the speaker-disjoint split
    detect: DetectorConfig = dataclasses.field(default_factory=DetectorConfig)


class ClipRejected(Exception):
    """A clip that fails a check; the message is the manifest reason."""


def fingerprint(cfg: CropConfig, video: Path | None) -> str:
    """Hash of everything that shapes a clip's outputs (not workers, chunking, splits) and of the input file."""
    d = dataclasses.asdict(cfg)
    for k in ("workers", "chunk_frames", "cache_mb", "split_fractions", "seed"):
        d.pop(k)
    if video is not None and video.is_file():
        st = video.stat()
        d["_input"] = [str(video), st.st_size, int(st.st_mtime)]
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------------------ one clip

_DETECTOR_CACHE: dict = {}


def _detector(cfg: CropConfig, sidecar: Path | None):
    if cfg.detector == "annotations":
        if sidecar is None or not sidecar.is_file() or sidecar.suffix != ".json":
            raise ClipRejected(NO_SIDECAR)
        return make_detector("annotations", cfg.detect, sidecar=sidecar)
    key = (cfg.detector, repr(cfg.detect))
    if key not in _DETECTOR_CACHE:  # built once per process
        _DETECTOR_CACHE[key] = make_detector(cfg.detector, cfg.detect)
    return _DETECTOR_CACHE[key]


def build_clip(row: dict, raw_dir: Path, cfg: CropConfig, source: str = "") -> Clip:
    """Process one index row into a Clip (in memory). Raises ClipRejected or MediaError with the reason."""
    t0 = time.perf_counter()
    video = resolve(raw_dir, row["video"])
    if video is None:
        raise ClipRejected("no video path in index")
    info = probe(video)
    if not info.has_video:
        raise MediaError(NO_VIDEO, video)
    if not info.has_audio:
        raise MediaError(NO_AUDIO, video)
    sidecar = resolve(raw_dir, row.get("sidecar", ""))
    detector = _detector(cfg, sidecar)
    audio = read_audio(video, cfg.sample_rate, info)

    dets, cache, cached_bytes, T = [], [], 0, 0
    for chunk in iter_frames(video, cfg.fps, cfg.chunk_frames, info):
        dets.extend(detector.detect(chunk, start=T))
        T += len(chunk)
        if cache is not None:
            cached_bytes += chunk.nbytes
            cache = cache + [chunk] if cached_bytes <= cfg.cache_mb * 2**20 else None
    if T < cfg.min_frames:
        raise ClipRejected(f"{TOO_SHORT}: {T} frames < min_frames {cfg.min_frames}")
    expected = info.duration * cfg.fps
    if expected > 0 and T < cfg.min_decoded_ratio * expected:
        raise ClipRejected(f"{TRUNCATED}: decoded {T} of ~{expected:.0f} frames")
    missing = sum(d is None for d in dets) / T
    if missing > cfg.max_missing_ratio:
        raise ClipRejected(f"{NO_FACE} in {missing:.0%} of frames (max {cfg.max_missing_ratio:.0%})")
    boxes, lms_full, found = track_boxes(dets, info.width, info.height, tuple(cfg.pads), cfg.smooth_window,
                                         cfg.smooth_method, cfg.max_gap)

    chunks = cache if cache is not None else iter_frames(video, cfg.fps, cfg.chunk_frames, info)
    crops, t = [], 0
    for chunk in chunks:
        n = min(len(chunk), T - t)
        crops.append(crop_frames(chunk[:n], boxes[t: t + n], cfg.size))
        t += n
        if t >= T:
            break
    if t != T:
        raise MediaError(TRUNCATED, video, f"second decode gave {t} frames, first {T}")
    frames = np.concatenate(crops)

    silent, labels = None, None
    if sidecar is not None and sidecar.suffix == ".align":  # GRID word alignments -> per-frame labels
        labels = frame_labels(read_align(sidecar), T, cfg.fps)
    elif sidecar is not None and sidecar.is_file():
        silent_name = json.loads(sidecar.read_text()).get("silent")
        if silent_name:
            from .synthetic import load_silent

            full = load_silent(sidecar.parent / silent_name)
            if len(full) < T or full.shape[1:3] != (info.height, info.width):
                raise ClipRejected(f"{BAD_SILENT}: {full.shape} vs {T} frames of {info.width}x{info.height}")
            silent = crop_frames(full[:T], boxes, cfg.size)

    per_frame = cfg.sample_rate / cfg.fps
    n_audio = int(round(T * per_frame))
    audio = np.pad(audio[:n_audio], (0, max(0, n_audio - len(audio))))  # one audio frame span per video frame

    meta = {
        "clip_id": row["clip_id"], "speaker": row["speaker"], "fps": cfg.fps, "n_frames": int(T),
        "sample_rate": cfg.sample_rate, "source": source, "detector": cfg.detector, "size": cfg.size,
        "video": str(video), "source_fps": info.fps, "source_size": [info.width, info.height],
        "source_duration": info.duration, "detected_frames": int(found.sum()),
        "has_landmarks": bool(np.isfinite(lms_full).all(axis=(1, 2)).any()),
        "landmark_frames": int(np.isfinite(lms_full).all(axis=(1, 2)).sum()), "has_labels": labels is not None,
        "fingerprint": fingerprint(cfg, video), "seconds": round(time.perf_counter() - t0, 3),
    }
    return Clip(row["clip_id"], frames, audio.astype(np.float32), landmarks_to_crop(lms_full, boxes, cfg.size),
                boxes, meta, silent, labels)


def process_clip(task: tuple) -> dict:
    """Worker entry: (row, raw_dir, clips_dir, cfg, source) -> manifest row (+ fingerprint, seconds, frames)."""
    row, raw_dir, clips_dir, cfg, source = task
    out = dict(clip_id=row["clip_id"], source=source, status="rejected", reason="", n_frames=0,
               speaker=row["speaker"], detector=cfg.detector,
               fingerprint=fingerprint(cfg, resolve(raw_dir, row["video"])))
    t0 = time.perf_counter()
    try:
        clip = build_clip(row, Path(raw_dir), cfg, source)
        write_clip(clips_dir, clip)
        out.update(status="kept", n_frames=len(clip.frames))
    except FaceDetectorUnavailable:
        raise  # a setup problem, not a clip problem: stop the stage
    except ClipRejected as exc:
        out["reason"] = str(exc)
    except MediaError as exc:
        out["reason"] = exc.reason + (f" ({exc.detail})" if exc.detail else "")
    except Exception as exc:  # noqa: BLE001 - one odd clip must not take the stage down; the reason says what
        out["reason"] = f"error: {type(exc).__name__}: {exc}"
    out["reason"] = " ".join(out["reason"].split())[:300]
    out["seconds"] = round(time.perf_counter() - t0, 3)
    return out


def _init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)  # the parallelism is across clips
    torch = sys.modules.get("torch")  # only the fan backend needs torch; do not import it for haar
    if torch is not None:
        torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------------------ the stage


def _read_journal(path: Path) -> dict[str, dict]:
    done: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
                done[rec["clip_id"]] = rec
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut by an interruption
    return done


def prepare(raw_dir: str | Path, clips_dir: str | Path, splits_dir: str | Path, cfg: CropConfig,
            source: str = "", progress: bool = True) -> pd.DataFrame:
    """Run the crop stage. Returns the manifest (also written to clips_dir/manifest.csv); writes the splits."""
    raw_dir, clips_dir = Path(raw_dir), Path(clips_dir)
    if cfg.detector not in (*DETECTORS, "auto"):
        raise ValueError(f"crop.detector must be one of {DETECTORS} or auto, got {cfg.detector!r}")
    cfg = dataclasses.replace(cfg, detector=resolve_detector(cfg.detector, cfg.detect))
    if len(cfg.pads) != 4:
        raise ValueError(f"crop.pads must be [top, bottom, left, right], got {cfg.pads}")
    if cfg.detector == "fan":
        check_fan_available()  # one clear line before any work, instead of one rejection per clip
    elif cfg.detector == "dlib":
        check_dlib_available(cfg.detect.dlib)
    index = read_index(raw_dir / "index.csv")
    clips_dir.mkdir(parents=True, exist_ok=True)
    clean_temporaries(clips_dir)
    journal_path = clips_dir / JOURNAL
    journal = _read_journal(journal_path)

    results: dict[str, dict] = {}
    todo = []
    for row in index.to_dict("records"):
        cid = row["clip_id"]
        fp = fingerprint(cfg, resolve(raw_dir, row["video"]))
        rec = journal.get(cid)
        if rec and rec.get("fingerprint") == fp and rec.get("detector") == cfg.detector and (
                rec["status"] == "rejected" or is_complete(clips_dir, cid)):
            results[cid] = {**rec, "source": source}
        elif is_complete(clips_dir, cid) and read_meta(clips_dir, cid).get("fingerprint") == fp:
            meta = read_meta(clips_dir, cid)  # finished but not journaled (interrupted between the two)
            results[cid] = dict(clip_id=cid, source=source, status="kept", reason="", n_frames=meta["n_frames"],
                                speaker=row["speaker"], detector=cfg.detector, fingerprint=fp)
        else:
            todo.append((row, raw_dir, clips_dir, cfg, source))

    with open(journal_path, "a") as journal_file:
        def record(res: dict) -> None:
            results[res["clip_id"]] = res
            journal_file.write(json.dumps(res) + "\n")
            journal_file.flush()

        bar = tqdm(total=len(todo), desc=f"crop ({cfg.detector})", unit="clip", disable=not progress)
        if cfg.workers <= 1 or len(todo) <= 1:
            for task in todo:
                record(process_clip(task))
                bar.update()
        else:
            # spawn: torch/OpenCV thread pools do not survive fork safely
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(min(cfg.workers, len(todo)), initializer=_init_worker) as pool:
                for res in pool.imap_unordered(process_clip, todo):
                    record(res)
                    bar.update()
        bar.close()

    # drop outputs of clips that are no longer kept or no longer in the index
    kept_ids = {c for c, r in results.items() if r["status"] == "kept"}
    for d in clips_dir.iterdir():
        if d.is_dir() and not d.name.startswith(".") and d.name not in kept_ids:
            shutil.rmtree(d)
    # compact the journal to the current index
    tmp = journal_path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(results[c]) + "\n" for c in sorted(results)))
    os.replace(tmp, journal_path)

    manifest = write_manifest(clips_dir / "manifest.csv", list(results.values()))
    kept = manifest[manifest["status"] == "kept"]
    split_col = index.set_index("clip_id").loc[kept["clip_id"], "split"] if len(kept) else pd.Series(dtype=str)
    if len(kept) and (split_col != "").all():
        splits = official_split(kept["clip_id"].tolist(), split_col.tolist())
    else:
        splits = speaker_disjoint_split(kept["clip_id"].tolist(), kept["speaker"].tolist(),
                                        tuple(cfg.split_fractions), cfg.seed)
    write_splits(splits_dir, splits)
    return manifest


REASONS = (UNREADABLE, NOT_FOUND, NO_VIDEO, NO_AUDIO, ZERO_LENGTH, TRUNCATED, TOO_SHORT, NO_FACE, NO_SIDECAR,
           BAD_SILENT, "error")


def reason_category(reason: str) -> str:
    """The fixed phrase a manifest reason starts with ("no face in 35% of frames" -> "no face")."""
    return next((r for r in REASONS if reason.startswith(r)), "other")


def summary(manifest: pd.DataFrame) -> dict:
    """Counts for logs/metrics: clips, kept, rejected, kept frames, and rejections per reason category."""
    kept = manifest[manifest["status"] == "kept"]
    rejected = manifest[manifest["status"] == "rejected"]
    reasons = rejected["reason"].map(reason_category).value_counts().to_dict()
    return {"clips": int(len(manifest)), "kept": int(len(kept)), "rejected": int(len(rejected)),
            "kept_frames": int(kept["n_frames"].sum()), "rejected_by_reason": reasons}
