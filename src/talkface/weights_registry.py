"""The pretrained files talkface can use, where to get them, and how to check them (`talkface weights ...`).

    entries = select(["vgg19"])                     # or ["all"]; names or cache filenames
    fetch(entries[0], hub_dir())                    # download (resumable), check, record its checksum
    [check(e, hub_dir()) for e in REGISTRY]         # ok / mismatch / unchecked / missing

Files go where the loaders look: the torch hub checkpoint folder (`talkface.weights.hub_dir()`), under the filenames
the loaders (and face-alignment) expect. A size or SHA-256 not known in advance is recorded at the first download in
`<dir>/talkface-weights.json`, so a later `check` notices a truncated or replaced file.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .download import DownloadError, download, sha256_file

RECORD_FILE = "talkface-weights.json"
AVHUBERT_UNVERIFIED = ("AV-HuBERT path as used by third-party code, not checked against "
                       "https://facebookresearch.github.io/av_hubert")


@dataclass(frozen=True)
class PretrainedFile:
    name: str
    filename: str  # name in the cache folder: what the loader looks for
    url: str
    used_for: str
    size: int | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None  # torch hub convention (`name-<prefix>.ext`), only where the publisher checks it
    checksum_note: str = ""  # where size/sha256 come from when not from the publisher
    url_note: str = ""  # set when the URL itself is unverified


REGISTRY: tuple[PretrainedFile, ...] = (
    PretrainedFile(
        "syncnet_v2", "syncnet_v2.model",
        "http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
        "official LSE-C/LSE-D (evaluate.syncnet_v2, or the hub cache)",
        size=54_573_114, sha256="961e8696f888fce4f3f3a6c3d5b3267cf5b343100b238e79b2659bff2c605442",
        checksum_note="from a mirror's model card, checked at first download"),
    PretrainedFile(
        "sfd_face", "sfd_face.pth",
        "https://www.robots.ox.ac.uk/~vgg/software/lipsync/data/sfd_face.pth",
        "syncnet_python's own S3FD face detector (its LSE scripts; talkface does not load it)"),
    PretrainedFile(
        "s3fd", "s3fd-619a316812.pth",
        "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth",
        "face-alignment's S3FD face detector (crop.detector: fan, dub --detector fan)"),
    PretrainedFile(
        "2dfan4", "2DFAN4-11f355bf06.pth.tar",
        "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar",
        "face-alignment's 2D FAN, 68 landmarks (crop.detector: fan, LMD)"),
    PretrainedFile(
        "fid_inception", "pt_inception-2015-12-05-6726825d.pth",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        "FID InceptionV3 (evaluate.fid_weights, or the hub cache)"),
    PretrainedFile(
        "vgg19", "vgg19-dcbb9e9d.pth",
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        "perceptual loss, torchvision VGG19_Weights.IMAGENET1K_V1 (*.loss.vgg_path, or the hub cache)",
        sha256_prefix="dcbb9e9d"),  # torchvision loads it with check_hash=True
    PretrainedFile(
        "avhubert_base_vox_433h", "base_vox_433h.pt",
        "https://dl.fbaipublicfiles.com/avhubert/model/lrs3_vox/vsr/base_vox_433h.pt",
        "AV-HuBERT BASE, lip-reading fine-tuned (P2): give its path as evaluate.avhubert / generator.avhubert_path",
        url_note=AVHUBERT_UNVERIFIED),
    PretrainedFile(
        "avhubert_large_vox_433h", "large_vox_433h.pt",
        "https://dl.fbaipublicfiles.com/avhubert/model/lrs3_vox/vsr/large_vox_433h.pt",
        "AV-HuBERT LARGE, lip-reading fine-tuned: give its path as evaluate.avhubert / generator.avhubert_path",
        url_note=AVHUBERT_UNVERIFIED),
    PretrainedFile(
        "avhubert_base_vox_iter5", "base_vox_iter5.pt",
        "https://dl.fbaipublicfiles.com/avhubert/model/lrs3_vox/clean-pretrain/base_vox_iter5.pt",
        "AV-HuBERT BASE, pretrained only: give its path as evaluate.avhubert / generator.avhubert_path",
        url_note=AVHUBERT_UNVERIFIED),
    PretrainedFile(
        "avhubert_large_vox_iter5", "large_vox_iter5.pt",
        "https://dl.fbaipublicfiles.com/avhubert/model/lrs3_vox/clean-pretrain/large_vox_iter5.pt",
        "AV-HuBERT LARGE, pretrained only: give its path as evaluate.avhubert / generator.avhubert_path",
        url_note=AVHUBERT_UNVERIFIED),
)


def select(names: list[str]) -> list[PretrainedFile]:
    """Entries by name or cache filename, in the order given; "all" is every entry. ValueError for an unknown one."""
    if "all" in names:
        return list(REGISTRY)
    by_name = {e.name: e for e in REGISTRY} | {e.filename: e for e in REGISTRY}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown weights {', '.join(unknown)}; known: all, {', '.join(e.name for e in REGISTRY)}")
    return list(dict.fromkeys(by_name[n] for n in names))


def read_record(directory: Path) -> dict[str, dict]:
    """{filename: {"url", "size", "sha256", "downloaded"}} from `<directory>/talkface-weights.json` ({} if none)."""
    path = Path(directory) / RECORD_FILE
    if not path.is_file():
        return {}
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is unreadable ({e}); delete it to record the checksums again") from None
    return record if isinstance(record, dict) else {}


def _write_record(directory: Path, record: dict[str, dict]) -> None:
    # temp file + rename: an interrupted write must not lose the checksums of earlier downloads
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=RECORD_FILE, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, directory / RECORD_FILE)


@dataclass(frozen=True)
class Check:
    entry: PretrainedFile
    path: Path
    state: str  # "ok" | "mismatch" | "unchecked" (present, nothing to compare with) | "missing"
    detail: str


def check(entry: PretrainedFile, directory: Path, record: dict[str, dict] | None = None) -> Check:
    """Compare the file in `directory` with the known size/SHA-256, else the ones recorded at its download."""
    path = Path(directory) / entry.filename
    if not path.is_file():
        return Check(entry, path, "missing", "not downloaded")
    recorded = (read_record(directory) if record is None else record).get(entry.filename, {})
    size = entry.size if entry.size is not None else recorded.get("size")
    sha256 = entry.sha256 or recorded.get("sha256")
    source = (entry.checksum_note or "published") if entry.sha256 else \
        f"recorded at download {recorded.get('downloaded', '')}".strip()
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return Check(entry, path, "mismatch", f"{actual_size} bytes, expected {size} ({source})")
    if sha256:
        actual = sha256_file(path)
        if actual != sha256:
            return Check(entry, path, "mismatch", f"SHA-256 {actual}, expected {sha256} ({source})")
        return Check(entry, path, "ok", f"SHA-256 matches ({source})")
    if entry.sha256_prefix:
        actual = sha256_file(path)
        if not actual.startswith(entry.sha256_prefix):
            return Check(entry, path, "mismatch", f"SHA-256 {actual} does not start with {entry.sha256_prefix}")
        return Check(entry, path, "ok", f"SHA-256 starts with {entry.sha256_prefix} (the filename's hash)")
    return Check(entry, path, "unchecked", "present, but no checksum known or recorded (not downloaded by talkface)")


def fetch(entry: PretrainedFile, directory: Path, *, force: bool = False, progress: bool = True,
          timeout: float = 30.0) -> tuple[Path, str]:
    """Make sure `directory` holds a good copy of `entry`: (path, what was done). Raises DownloadError.

    A present file that passes `check` (or has nothing to be checked against) is kept unless `force`; a mismatching
    one is downloaded again.
    """
    directory = Path(directory)
    record = read_record(directory)
    before = check(entry, directory, record)
    if not force and before.state in ("ok", "unchecked"):
        return before.path, f"already present: {before.detail}"
    try:
        path = download(entry.url, before.path, sha256=entry.sha256, size=entry.size, progress=progress,
                        timeout=timeout)
    except DownloadError as e:
        if entry.checksum_note and ("SHA-256" in str(e) or "bytes, expected" in str(e)):
            raise DownloadError(f"{e} (the expected values are {entry.checksum_note})") from None
        raise
    sha256 = sha256_file(path)
    if entry.sha256_prefix and not sha256.startswith(entry.sha256_prefix):
        path.unlink()
        raise DownloadError(f"{entry.url}: SHA-256 {sha256} does not start with {entry.sha256_prefix} "
                            f"(the hash in its filename); deleted {path}")
    record[entry.filename] = {"name": entry.name, "url": entry.url, "size": path.stat().st_size, "sha256": sha256,
                              "downloaded": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    _write_record(directory, record)
    done = "downloaded again (the copy there did not match)" if before.state == "mismatch" else "downloaded"
    return path, f"{done}: {path.stat().st_size} bytes, SHA-256 {sha256}"
