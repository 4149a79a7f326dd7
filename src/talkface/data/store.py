"""The processed-clip store `data/clips/` (docs/architecture.md, "output of crop").

    data/clips/<clip_id>/frames.npy      uint8   [T, S, S, 3]  RGB face crops
    data/clips/<clip_id>/audio.npy       float32 [N]           16 kHz mono, N = T * 640 here
    data/clips/<clip_id>/landmarks.npy   float32 [T, 68, 2]    crop pixels, NaN where unknown
    data/clips/<clip_id>/boxes.npy       float32 [T, 4]        crop boxes in source-frame pixels
    data/clips/<clip_id>/silent.npy      uint8   [T, S, S, 3]  optional closed-lip frames (synthetic)
    data/clips/<clip_id>/labels.json     {"labels": [T words]} optional per-frame word / "sil" (GRID alignments)
    data/clips/<clip_id>/meta.json       {"clip_id", "speaker", "fps", "n_frames", "sample_rate", "source",
                                          "detector", ...}
    data/clips/manifest.csv              clip_id,source,status,reason,n_frames,speaker,detector

and the raw index `data/raw/index.csv` (clip_id,video,speaker,split,sidecar) that the fetch stage writes.

A clip is written into a hidden temporary folder and renamed into place in one step, so `<clip_id>/` either holds a
complete clip or does not exist: an interrupted crop stage leaves no half-written clip behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

INDEX_COLUMNS = ["clip_id", "video", "speaker", "split", "sidecar"]
MANIFEST_COLUMNS = ["clip_id", "source", "status", "reason", "n_frames", "speaker", "detector"]
CLIP_FILES = ("frames.npy", "audio.npy", "landmarks.npy", "boxes.npy", "meta.json")
TMP_PREFIX = ".tmp-"


class SourceError(RuntimeError):
    """Raw data cannot be fetched or found (missing folder, list, tool or network); the message is one line."""


@dataclasses.dataclass
class Clip:
    clip_id: str
    frames: np.ndarray  # uint8 [T, S, S, 3] (memory-mapped when read with mmap=True)
    audio: np.ndarray  # float32 [N]
    landmarks: np.ndarray  # float32 [T, 68, 2]
    boxes: np.ndarray  # float32 [T, 4]
    meta: dict
    silent: np.ndarray | None = None  # uint8 [T, S, S, 3]
    labels: list[str] | None = None  # [T] word spoken at each frame, "sil" in silence (from alignments)


def is_complete(root: str | Path, clip_id: str) -> bool:
    d = Path(root) / clip_id
    return all((d / f).is_file() for f in CLIP_FILES)


def read_meta(root: str | Path, clip_id: str) -> dict:
    return json.loads((Path(root) / clip_id / "meta.json").read_text())


def write_clip(root: str | Path, clip: Clip) -> Path:
    """Write `clip` to root/<clip_id>/ atomically (replacing an older copy). Returns the folder."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    T = len(clip.frames)
    if clip.landmarks.shape != (T, 68, 2) or clip.boxes.shape != (T, 4):
        raise ValueError(f"{clip.clip_id}: landmarks {clip.landmarks.shape} / boxes {clip.boxes.shape} do not match "
                         f"{T} frames")
    if clip.silent is not None and clip.silent.shape != clip.frames.shape:
        raise ValueError(f"{clip.clip_id}: silent {clip.silent.shape} != frames {clip.frames.shape}")
    if clip.labels is not None and len(clip.labels) != T:
        raise ValueError(f"{clip.clip_id}: {len(clip.labels)} labels for {T} frames")
    tmp = root / f"{TMP_PREFIX}{clip.clip_id}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    np.save(tmp / "frames.npy", np.ascontiguousarray(clip.frames, np.uint8))
    np.save(tmp / "audio.npy", np.ascontiguousarray(clip.audio, np.float32))
    np.save(tmp / "landmarks.npy", np.ascontiguousarray(clip.landmarks, np.float32))
    np.save(tmp / "boxes.npy", np.ascontiguousarray(clip.boxes, np.float32))
    if clip.silent is not None:
        np.save(tmp / "silent.npy", np.ascontiguousarray(clip.silent, np.uint8))
    if clip.labels is not None:
        (tmp / "labels.json").write_text(json.dumps({"labels": list(clip.labels)}))
    (tmp / "meta.json").write_text(json.dumps(clip.meta, indent=1))
    final = root / clip.clip_id
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


def read_clip(root: str | Path, clip_id: str, mmap: bool = True) -> Clip:
    d = Path(root) / clip_id
    if not is_complete(root, clip_id):
        raise FileNotFoundError(f"clip {clip_id} is missing or incomplete in {root}")
    mode = "r" if mmap else None
    silent = np.load(d / "silent.npy", mmap_mode=mode) if (d / "silent.npy").is_file() else None
    labels = json.loads((d / "labels.json").read_text())["labels"] if (d / "labels.json").is_file() else None
    return Clip(clip_id, np.load(d / "frames.npy", mmap_mode=mode), np.load(d / "audio.npy", mmap_mode=mode),
                np.load(d / "landmarks.npy"), np.load(d / "boxes.npy"), read_meta(root, clip_id), silent, labels)


def clean_temporaries(root: str | Path) -> int:
    """Remove half-written clip folders left by an interrupted run. Returns how many."""
    root = Path(root)
    stale = [p for p in root.glob(f"{TMP_PREFIX}*") if p.is_dir()] if root.is_dir() else []
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return len(stale)


def write_manifest(path: str | Path, rows: list[dict] | pd.DataFrame) -> pd.DataFrame:
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    df = df[MANIFEST_COLUMNS].sort_values("clip_id").reset_index(drop=True)
    path = Path(path)
    tmp = path.with_suffix(".csv.tmp")
    df.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return df


def read_manifest(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"clip_id": str, "speaker": str, "reason": str}, keep_default_na=False)


# ------------------------------------------------------------------------------------- data/raw/index.csv (fetch)


def write_index(path: str | Path, df: pd.DataFrame) -> None:
    df[INDEX_COLUMNS].to_csv(path, index=False)


def read_index(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise SourceError(f"no index at {path}: run the fetch stage first")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def resolve(raw_dir: str | Path, p: str) -> Path | None:
    """An index path (relative to raw_dir or absolute) as a Path; None for an empty entry."""
    if not p:
        return None
    path = Path(p)
    return path if path.is_absolute() else Path(raw_dir) / path
