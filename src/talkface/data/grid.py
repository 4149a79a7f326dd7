"""The GRID audio-visual corpus (Cooke, Barker, Cunningham, Shao, JASA 2006; CC BY 4.0) as a fetch source.

    index = index_grid(GridSourceConfig(root="../shared/grid", speakers=["s1"]))   # index.csv rows
    words = read_align("s1/align/bbaf2n.align")          # [Word("sil", 0.0, 0.69), Word("bin", 0.69, 0.9), ...]
    labels = frame_labels(words, n_frames=75, fps=25)     # ["sil", "sil", ..., "bin", ...] one per video frame

Layouts read (both per speaker `<spk>`):
- `<root>/<spk>/video/<id>.mp4|.mpg` + `<root>/<spk>/align/<id>.align`   (../shared/grid)
- `<root>/<spk>/<id>.mpg` + `<root>/<spk>/align/<id>.align`               (the official archives, as `download_grid`
                                                                           unpacks them)
`.align` lines are `start end word` in 1/25000 s (1000 units per 25 fps video frame); every sentence starts and ends
with `sil`. The alignment file is the clip's sidecar: the crop stage turns it into per-frame labels in the clip store.
"""

from __future__ import annotations

import dataclasses
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from .store import INDEX_COLUMNS, SourceError

ALIGN_UNITS_PER_SECOND = 25000
SILENCE = "sil"
SPLITS = ("train", "val", "test")
VIDEO_SUFFIXES = (".mp4", ".mpg", ".mpeg")
# speaker 21's video was never published (the corpus's own note)
SPEAKERS_WITH_VIDEO = tuple(f"s{n}" for n in range(1, 35) if n != 21)


@dataclasses.dataclass
class GridSourceConfig:
    root: str = ""  # holds <speaker>/video/<id>.mp4 (or <speaker>/<id>.mpg) and <speaker>/align/<id>.align
    speakers: list[str] = dataclasses.field(default_factory=lambda: ["s1"])
    split: str = "sentence"  # sentence: each speaker's sentences are split | speaker: speaker-disjoint (crop stage)
    split_fractions: list[float] = dataclasses.field(default_factory=lambda: [0.8, 0.1, 0.1])  # train, val, test
    seed: int = 0  # of the sentence split
    download: bool = False  # fetch speakers missing under root from url_base
    url_base: str = "https://spandh.dcs.shef.ac.uk/gridcorpus"


@dataclasses.dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds
    end: float


def read_align(path: str | Path) -> list[Word]:
    """Words of a GRID `.align` file, times in seconds. Raises SourceError on a malformed line."""
    words = []
    for i, line in enumerate(Path(path).read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3:
            raise SourceError(f"grid: {path}:{i}: expected 'start end word', got {line!r}")
        try:
            a, b = int(parts[0]), int(parts[1])
        except ValueError:
            raise SourceError(f"grid: {path}:{i}: times must be integers, got {line!r}") from None
        if b < a:
            raise SourceError(f"grid: {path}:{i}: end {b} before start {a}")
        words.append(Word(parts[2], a / ALIGN_UNITS_PER_SECOND, b / ALIGN_UNITS_PER_SECOND))
    return words


def frame_labels(words: list[Word], n_frames: int, fps: float) -> list[str]:
    """The word spoken at each video frame's centre time ((t + 0.5) / fps); `sil` outside every word."""
    centres = (np.arange(n_frames) + 0.5) / fps
    labels = [SILENCE] * n_frames
    for w in words:
        for t in np.nonzero((centres >= w.start) & (centres < w.end))[0]:
            labels[int(t)] = w.word
    return labels


def _find_video(spk_dir: Path, sentence: str) -> Path | None:
    for folder in (spk_dir / "video", spk_dir):
        for suffix in VIDEO_SUFFIXES:
            p = folder / f"{sentence}{suffix}"
            if p.is_file():
                return p
    return None


def speaker_sentences(root: Path, speaker: str) -> list[tuple[str, Path, Path]]:
    """(sentence id, video, align file) of every sentence of `speaker` that has both under root."""
    spk_dir = root / speaker
    align_dir = spk_dir / "align"
    if not align_dir.is_dir():
        return []
    out = []
    for align in sorted(align_dir.glob("*.align")):
        video = _find_video(spk_dir, align.stem)
        if video is not None:
            out.append((align.stem, video, align))
    return out


def sentence_split(sentences: list[str], fractions: list[float], seed: int) -> dict[str, str]:
    """{sentence: split}: a seeded shuffle cut at the cumulative fractions (each non-empty split gets >= 1)."""
    fr = np.asarray(fractions, np.float64)
    if fr.shape != (3,) or (fr < 0).any() or fr.sum() <= 0:
        raise SourceError(f"grid: split_fractions must be three non-negative numbers, got {fractions}")
    order = [sentences[i] for i in np.random.default_rng(seed).permutation(len(sentences))]
    counts = np.floor(fr / fr.sum() * len(order)).astype(int)
    for k in np.argsort(-fr, kind="stable"):  # hand out the remainder, largest share first
        if counts.sum() >= len(order):
            break
        counts[k] += 1
    for k in range(3):  # a split asked for gets at least one sentence, taken from the largest
        if fr[k] > 0 and counts[k] == 0 and counts.max() > 1:
            counts[int(np.argmax(counts))] -= 1
            counts[k] = 1
    bounds = np.cumsum(counts)
    return {s: SPLITS[int(np.searchsorted(bounds, i, side="right"))] for i, s in enumerate(order)}


def index_grid(cfg: GridSourceConfig) -> pd.DataFrame:
    """Index rows (clip_id `<spk>_<id>`, video, speaker, split, sidecar = the .align file) of the configured speakers."""
    if not cfg.root:
        raise SourceError("grid source: set fetch.grid.root to a GRID folder (holding <speaker>/align/ and videos)")
    if cfg.split not in ("sentence", "speaker"):
        raise SourceError(f"grid source: fetch.grid.split must be 'sentence' or 'speaker', got {cfg.split!r}")
    if not cfg.speakers:
        raise SourceError("grid source: fetch.grid.speakers is empty")
    root = Path(cfg.root).expanduser()
    rows = []
    for spk in cfg.speakers:
        found = speaker_sentences(root, spk)
        if not found and cfg.download:
            download_grid([spk], root, cfg.url_base)
            found = speaker_sentences(root, spk)
        if not found:
            raise SourceError(f"grid source: no sentences of speaker {spk} under {root} (expected {spk}/align/*.align "
                              f"with {spk}/video/<id>.mp4 or {spk}/<id>.mpg; fetch.grid.download: true fetches them "
                              f"from {cfg.url_base})")
        split = sentence_split([s for s, _, _ in found], cfg.split_fractions, cfg.seed) \
            if cfg.split == "sentence" else {}
        for sentence, video, align in found:
            rows.append(dict(clip_id=f"{spk}_{sentence}", video=str(video.resolve()), speaker=spk,
                             split=split.get(sentence, ""), sidecar=str(align.resolve())))
    return pd.DataFrame(rows, columns=INDEX_COLUMNS)


# ------------------------------------------------------------------------------------------------------- download


@dataclasses.dataclass(frozen=True)
class GridArchive:
    speaker: str
    kind: str  # video | align
    url: str
    archive: Path  # where the download lands
    extract_to: Path  # unpacking here gives <root>/<spk>/<id>.mpg or <root>/<spk>/align/<id>.align


def grid_download_plan(speakers: list[str], root: str | Path, url_base: str) -> list[GridArchive]:
    """The official archives of each speaker (video as mpg_vcd zip, alignments as tar) and where they go."""
    root = Path(root)
    plan = []
    for spk in speakers:
        if spk not in SPEAKERS_WITH_VIDEO:
            raise SourceError(f"grid: no such speaker with video: {spk!r} (s1..s34, without s21)")
        base = url_base.rstrip("/")
        plan.append(GridArchive(spk, "video", f"{base}/{spk}/video/{spk}.mpg_vcd.zip",
                                root / ".downloads" / f"{spk}.mpg_vcd.zip", root))
        plan.append(GridArchive(spk, "align", f"{base}/{spk}/align/{spk}.tar",
                                root / ".downloads" / f"{spk}_align.tar", root / spk))
    return plan


def _extract(item: GridArchive) -> None:
    item.extract_to.mkdir(parents=True, exist_ok=True)
    dest = item.extract_to.resolve()
    if item.archive.suffix == ".zip":
        with zipfile.ZipFile(item.archive) as z:
            for name in z.namelist():  # refuse members that would land outside the target folder
                if not (dest / name).resolve().is_relative_to(dest):
                    raise SourceError(f"grid: unsafe path {name!r} in {item.archive}")
            z.extractall(dest)
    else:
        with tarfile.open(item.archive) as t:
            t.extractall(dest, filter="data")


def download_grid(speakers: list[str], root: str | Path, url_base: str, progress: bool = True) -> None:
    """Download (resumably) and unpack the official archives of `speakers` into root. SourceError in one line."""
    from ..download import DownloadError, download

    for item in grid_download_plan(speakers, root, url_base):
        try:
            download(item.url, item.archive, progress=progress)
        except DownloadError as exc:
            raise SourceError(f"grid not available: {exc}") from None
        _extract(item)
    shutil.rmtree(Path(root) / ".downloads", ignore_errors=True)
