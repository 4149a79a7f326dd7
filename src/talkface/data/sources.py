"""The fetch stage: obtain raw videos from a source and index them in `data/raw/index.csv`.

    index = fetch(cfg, "data/raw")     # DataFrame with columns clip_id, video, speaker, split, sidecar

Sources (`fetch.source`):
- `synthetic`: the offline generator (talkface.data.synthetic), writing mp4 + sidecar JSON + silent frames here.
- `folder`:    any directory of videos (mp4, mov, mkv, avi, mpg, webm; any frame rate or size), referenced in place.
               speaker = the video's parent folder name, or its file stem when the videos lie flat in the folder.
- `lrs2`:      a local LRS2 root (`main/<speaker>/<utt>.mp4`) with the official train/val/test lists, referenced in
               place; `split` comes from the lists.
- `grid`:      a local GRID corpus root (`<root>/<speaker>/video/<id>.mp4|.mpg` + `<root>/<speaker>/align/<id>.align`,
               or the official archives' layout `<root>/<speaker>/<id>.mpg`), referenced in place; the `.align` file is
               the clip's sidecar (per-frame word / `sil` labels in the clip store). Missing speakers can be downloaded
               from the corpus's official URLs (`fetch.grid.download: true`). Split by sentence or by speaker.
- `hdtf`:      the public HDTF lists (`<subset>_video_url.txt`, `<subset>_annotion_time.txt`), downloaded and cut
               with yt-dlp into `data/raw/hdtf/<name>_<i>.mp4`.
- `mixed`:     the rows of every source in `fetch.mixed.sources` (each configured by its own section), in one index:
               GRID s1 plus a folder of other people (experiments/grid_real). Clip ids must not collide.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..media.ffmpeg_bin import ffmpeg_exe
from .grid import GridSourceConfig, index_grid
from .store import INDEX_COLUMNS, SourceError, read_index, resolve, write_index  # noqa: F401 (re-exported)
from .synthetic import SyntheticConfig

VIDEO_EXTENSIONS = ["mp4", "mov", "mkv", "avi", "mpg", "mpeg", "webm"]


@dataclasses.dataclass
class FolderSourceConfig:
    input: str = ""  # directory of videos
    extensions: list[str] = dataclasses.field(default_factory=lambda: list(VIDEO_EXTENSIONS))
    recursive: bool = True
    speakers: dict[str, str] = dataclasses.field(default_factory=dict)  # file stem -> speaker (one person, many files)
    splits: dict[str, str] = dataclasses.field(default_factory=dict)  # speaker -> train | val | test
    default_split: str = ""  # split of speakers not in `splits`; "" = left to the crop stage (speaker-disjoint)


@dataclasses.dataclass
class MixedSourceConfig:
    sources: list[str] = dataclasses.field(default_factory=list)  # e.g. [grid, folder]


@dataclasses.dataclass
class LRS2SourceConfig:
    root: str = ""  # holds main/<speaker>/<utt>.mp4
    lists_dir: str = ""  # holds train.txt, val.txt, test.txt; empty = root
    subset_dir: str = "main"


@dataclasses.dataclass
class HDTFSourceConfig:
    lists_dir: str = ""  # the HDTF repository's HDTF_dataset/ folder
    subsets: list[str] = dataclasses.field(default_factory=lambda: ["RD", "WDA", "WRA"])
    out_subdir: str = "hdtf"  # under data/raw
    format: str = "bestvideo[height<=720][ext=mp4]+bestaudio[ext=m4a]/best[ext=mp4]/best"
    yt_dlp: str = "yt-dlp"  # executable name or path
    network_check_host: str = "www.youtube.com"
    network_timeout: float = 5.0


@dataclasses.dataclass
class FetchConfig:
    source: str = "synthetic"  # synthetic | folder | lrs2 | hdtf
    seed: int = 0  # picks the subset when max_clips > 0
    max_clips: int = 0  # keep at most this many clips (0 = all): quick runs on a big source
    workers: int = 1
    synthetic: SyntheticConfig = dataclasses.field(default_factory=SyntheticConfig)
    folder: FolderSourceConfig = dataclasses.field(default_factory=FolderSourceConfig)
    lrs2: LRS2SourceConfig = dataclasses.field(default_factory=LRS2SourceConfig)
    grid: GridSourceConfig = dataclasses.field(default_factory=GridSourceConfig)
    hdtf: HDTFSourceConfig = dataclasses.field(default_factory=HDTFSourceConfig)
    mixed: MixedSourceConfig = dataclasses.field(default_factory=MixedSourceConfig)


SOURCES = ("synthetic", "folder", "lrs2", "grid", "hdtf", "mixed")


def fetch(cfg: FetchConfig, raw_dir: str | Path) -> pd.DataFrame:
    """Run the configured source into raw_dir and write raw_dir/index.csv. Returns the index."""
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    if cfg.source == "mixed":
        parts = cfg.mixed.sources
        if not parts or "mixed" in parts or any(s not in SOURCES for s in parts):
            raise SourceError(f"mixed source: fetch.mixed.sources must list sources among "
                              f"{SOURCES[:-1]}, got {parts}")
        df = pd.concat([normalise_index(_index(cfg, s, raw_dir), raw_dir) for s in parts], ignore_index=True)
    else:
        df = _index(cfg, cfg.source, raw_dir)
    df = _subset(normalise_index(df, raw_dir), cfg.max_clips, cfg.seed)
    if df.empty:
        raise SourceError(f"source {cfg.source!r} gave no clips")
    write_index(raw_dir / "index.csv", df)
    return df


def _index(cfg: FetchConfig, source: str, raw_dir: Path) -> pd.DataFrame:
    """The index rows of one (non-mixed) source."""
    if source == "synthetic":
        from .synthetic import generate

        return generate(raw_dir, cfg.synthetic, cfg.workers)
    if source == "folder":
        return index_folder(cfg.folder)
    if source == "lrs2":
        return index_lrs2(cfg.lrs2)
    if source == "grid":
        return index_grid(cfg.grid)
    if source == "hdtf":
        return fetch_hdtf(cfg.hdtf, raw_dir)
    raise SourceError(f"unknown fetch source {source!r}; choose one of {SOURCES}")


def normalise_index(df: pd.DataFrame, raw_dir: Path) -> pd.DataFrame:
    """Index columns in order, empty strings for missing values, paths under raw_dir made relative to it."""
    df = df.copy()
    for col in INDEX_COLUMNS:
        if col not in df.columns:
            df[col] = ""
    df = df[INDEX_COLUMNS].fillna("").astype(str)
    raw = raw_dir.resolve()

    def rel(p: str) -> str:
        if not p:
            return p
        path = Path(p)
        path = path if path.is_absolute() else raw / path
        try:
            return str(path.resolve().relative_to(raw))
        except ValueError:
            return str(path.resolve())

    df["video"] = df["video"].map(rel)
    df["sidecar"] = df["sidecar"].map(rel)
    dup = df["clip_id"][df["clip_id"].duplicated()].tolist()
    if dup:
        raise SourceError(f"duplicate clip ids in index: {dup[:5]}")
    return df.sort_values("clip_id").reset_index(drop=True)


def _subset(df: pd.DataFrame, max_clips: int, seed: int) -> pd.DataFrame:
    if max_clips <= 0 or len(df) <= max_clips:
        return df
    keep = np.sort(np.random.default_rng(seed).choice(len(df), max_clips, replace=False))
    return df.iloc[keep].reset_index(drop=True)


def _safe_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "clip"


# --------------------------------------------------------------------------------------------------------- folder


def index_folder(cfg: FolderSourceConfig) -> pd.DataFrame:
    """Index every video under cfg.input. A `<stem>.json` beside a video is taken as its sidecar. Speaker: cfg.speakers
    by file stem, else the parent folder's name (or the stem for videos lying flat in the folder); split: cfg.splits by
    speaker, else cfg.default_split."""
    bad = sorted({*cfg.splits.values(), cfg.default_split} - {"", "train", "val", "test"})
    if bad:
        raise SourceError(f"folder source: splits must be train, val or test, got {bad}")
    if not cfg.input:
        raise SourceError("folder source: set fetch.folder.input to a directory of videos")
    root = Path(cfg.input).expanduser()
    if not root.is_dir():
        raise SourceError(f"folder source: {root} is not a directory")
    exts = {"." + e.lower().lstrip(".") for e in cfg.extensions}
    files = sorted(p for p in (root.rglob("*") if cfg.recursive else root.iterdir())
                   if p.is_file() and p.suffix.lower() in exts and not p.name.startswith("."))
    rows, seen = [], set()
    for p in files:
        rel = p.relative_to(root)
        clip_id = _safe_id("_".join(rel.with_suffix("").parts))
        if clip_id in seen:  # talk.mp4 and talk.mov side by side
            clip_id = _safe_id(f"{clip_id}_{p.suffix.lstrip('.')}")
        seen.add(clip_id)
        speaker = cfg.speakers.get(p.stem, p.parent.name if len(rel.parts) > 1 else p.stem)
        sidecar = p.with_suffix(".json")
        rows.append(dict(clip_id=clip_id, video=str(p.resolve()), speaker=speaker,
                         split=cfg.splits.get(speaker, cfg.default_split),
                         sidecar=str(sidecar.resolve()) if sidecar.is_file() else ""))
    if not rows:
        raise SourceError(f"folder source: no video ({', '.join(sorted(exts))}) under {root}")
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)


# ----------------------------------------------------------------------------------------------------------- lrs2


def read_lrs2_list(path: Path) -> list[str]:
    """`<speaker>/<utt>` entries of an LRS2 list file (the first token of each line; test.txt adds a flag column)."""
    return [ln.split()[0] for ln in path.read_text().splitlines() if ln.strip()]


def index_lrs2(cfg: LRS2SourceConfig) -> pd.DataFrame:
    if not cfg.root:
        raise SourceError("lrs2 source: set fetch.lrs2.root to the LRS2 folder (holding main/)")
    root = Path(cfg.root).expanduser()
    lists = Path(cfg.lists_dir).expanduser() if cfg.lists_dir else root
    video_root = root / cfg.subset_dir
    if not video_root.is_dir():
        raise SourceError(f"lrs2 source: {video_root} is not a directory")
    rows, missing = [], 0
    for split in ("train", "val", "test"):
        lst = lists / f"{split}.txt"
        if not lst.is_file():
            raise SourceError(f"lrs2 source: official list {lst} not found")
        for entry in read_lrs2_list(lst):
            video = video_root / f"{entry}.mp4"
            if not video.is_file():
                missing += 1
                continue
            spk, utt = entry.split("/", 1)
            rows.append(dict(clip_id=_safe_id(f"{spk}_{utt}"), video=str(video.resolve()), speaker=spk,
                             split=split, sidecar=""))
    if missing:
        print(f"[fetch] lrs2: {missing} listed videos not found under {video_root}, skipped", file=sys.stderr)
    if not rows:
        raise SourceError(f"lrs2 source: none of the listed videos exist under {video_root}")
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)


# ----------------------------------------------------------------------------------------------------------- hdtf


@dataclasses.dataclass
class DownloadItem:
    clip_id: str
    url: str
    start: float  # seconds
    end: float
    out: Path
    speaker: str


def _seconds(stamp: str) -> float:
    """'mm:ss', 'hh:mm:ss' or plain seconds -> seconds."""
    total = 0.0
    for part in stamp.strip().split(":"):
        total = total * 60 + float(part)
    return total


def hdtf_plan(lists_dir: str | Path, subsets: list[str], out_dir: str | Path) -> list[DownloadItem]:
    """One DownloadItem per annotated time span: `<name>_<i>` for the i-th span of video <name> (HDTF's naming).

    `<subset>_video_url.txt` lines: `<name> <url>`; `<subset>_annotion_time.txt` lines: `<name>.mp4 mm:ss-mm:ss ...`.
    Videos without a URL are skipped; the speaker is the name without its trailing `_<number>`."""
    lists_dir, out_dir = Path(lists_dir), Path(out_dir)
    items = []
    for subset in subsets:
        url_file, time_file = lists_dir / f"{subset}_video_url.txt", lists_dir / f"{subset}_annotion_time.txt"
        for f in (url_file, time_file):
            if not f.is_file():
                raise SourceError(f"hdtf source: list {f} not found")
        urls = {}
        for ln in url_file.read_text().splitlines():
            parts = ln.split()
            if len(parts) >= 2:
                urls[Path(parts[0]).stem] = parts[1]
        for ln in time_file.read_text().splitlines():
            parts = ln.split()
            if len(parts) < 2:
                continue
            name = Path(parts[0]).stem
            if name not in urls:
                continue
            for i, span in enumerate(parts[1:]):
                a, _, b = span.partition("-")
                start, end = _seconds(a), _seconds(b)
                if end <= start:
                    raise SourceError(f"hdtf source: bad time span {span!r} for {name} in {time_file}")
                clip_id = f"{name}_{i}"
                items.append(DownloadItem(clip_id, urls[name], start, end, out_dir / f"{clip_id}.mp4",
                                          re.sub(r"_\d+$", "", name)))
    return items


def yt_dlp_command(item: DownloadItem, cfg: HDTFSourceConfig) -> list[str]:
    """The yt-dlp call that downloads only [start, end] of the video, re-cut at keyframes, as mp4."""
    return [cfg.yt_dlp, "--quiet", "--no-playlist", "-f", cfg.format,
            "--download-sections", f"*{item.start:g}-{item.end:g}", "--force-keyframes-at-cuts",
            "--merge-output-format", "mp4", "--ffmpeg-location", ffmpeg_exe(),
            "-o", str(item.out), item.url]


def check_hdtf_available(cfg: HDTFSourceConfig) -> None:
    if shutil.which(cfg.yt_dlp) is None and not Path(cfg.yt_dlp).is_file():
        raise SourceError(f"hdtf not available: yt-dlp not found ({cfg.yt_dlp!r}; pip install yt-dlp)")
    try:
        socket.create_connection((cfg.network_check_host, 443), timeout=cfg.network_timeout).close()
    except OSError as exc:
        raise SourceError(f"hdtf not available: no network (cannot reach {cfg.network_check_host}:443: {exc})") \
            from None


def fetch_hdtf(cfg: HDTFSourceConfig, raw_dir: Path) -> pd.DataFrame:
    """Download every planned span (already downloaded ones are kept), index what arrived."""
    if not cfg.lists_dir:
        raise SourceError("hdtf source: set fetch.hdtf.lists_dir to the HDTF repository's HDTF_dataset/ folder")
    out_dir = raw_dir / cfg.out_subdir
    plan = hdtf_plan(cfg.lists_dir, cfg.subsets, out_dir)
    todo = [it for it in plan if not it.out.is_file()]
    if todo:
        check_hdtf_available(cfg)
        out_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for it in tqdm(todo, desc="hdtf download", unit="clip"):
        res = subprocess.run(yt_dlp_command(it, cfg), capture_output=True, text=True, errors="replace")
        if res.returncode != 0 or not it.out.is_file():
            failed.append(f"{it.clip_id}\t{it.url}\t{(res.stderr.strip().splitlines() or [''])[-1]}")
    if failed:
        (raw_dir / "hdtf_failed.txt").write_text("\n".join(failed) + "\n")
        print(f"[fetch] hdtf: {len(failed)} of {len(todo)} downloads failed (see hdtf_failed.txt)", file=sys.stderr)
    rows = [dict(clip_id=it.clip_id, video=str(it.out), speaker=it.speaker, split="", sidecar="")
            for it in plan if it.out.is_file()]
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)
