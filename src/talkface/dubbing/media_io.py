"""Media plumbing of dubbing: the pairs CSV, background decoding, even frame sides for H.264, muxing the speech."""

from __future__ import annotations

import csv
import queue
import threading
from pathlib import Path
from typing import Iterator

import ffmpeg
import numpy as np

from ..media.ffmpeg_bin import ffmpeg_exe
from ..media.probe import UNREADABLE, MediaError
from . import DubError


def read_pairs(path: str | Path) -> list[dict]:
    """Rows {video, audio, out} of a pairs CSV; relative paths resolved against the CSV's folder."""
    path = Path(path)
    if not path.is_file():
        raise MediaError("file not found", path)
    base = path.parent
    rows = []
    with open(path, newline="") as f:
        for i, rec in enumerate(csv.reader(f)):
            rec = [c.strip() for c in rec]
            if not rec or not any(rec) or rec[0].startswith("#"):
                continue
            if i == 0 and [c.lower() for c in rec[:3]] == ["video", "audio", "out"]:
                continue
            if len(rec) != 3:
                raise DubError(f"{path}:{i + 1}: expected 3 columns video,audio,out, got {len(rec)}")
            rows.append({key: str(p if p.is_absolute() else base / p)
                         for key, p in zip(("video", "audio", "out"), map(Path, rec))})
    if not rows:
        raise DubError(f"{path}: no pairs")
    return rows


def even_sides(block: np.ndarray) -> np.ndarray:
    """H.264 yuv420p needs even sides: repeat the last row / column of odd-sized frames."""
    h, w = block.shape[1:3]
    if h % 2 == 0 and w % 2 == 0:
        return block
    return np.pad(block, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def prefetch(it: Iterator, depth: int = 2) -> Iterator:
    """Run an iterator in a background thread (ffmpeg decodes the next chunk while we generate)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def worker():
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            q.put(end)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            q.put(exc)
        finally:
            close = getattr(it, "close", None)
            if close is not None and stop.is_set():
                close()

    th = threading.Thread(target=worker, daemon=True)
    th.start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while th.is_alive():
            try:
                q.get_nowait()
            except queue.Empty:
                pass
            th.join(timeout=0.05)


def mux(video_only: Path, audio: Path, out: Path, bitrate: str) -> None:
    """Video stream copied, the first audio stream of `audio` encoded as AAC at its own rate and channels, padded
    with silence to the video's end."""
    v = ffmpeg.input(str(video_only)).video
    a = ffmpeg.input(str(audio))["a:0"].filter("apad")
    kwargs = {"vcodec": "copy", "acodec": "aac", "b:a": bitrate, "shortest": None}
    if out.suffix.lower() in (".mp4", ".mov", ".m4v"):
        kwargs["movflags"] = "+faststart"
    cmd = (ffmpeg.output(v, a, str(out), **kwargs)
           .global_args("-hide_banner", "-loglevel", "error", "-nostdin").overwrite_output())
    try:
        cmd.run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
    except ffmpeg.Error as exc:
        err = (exc.stderr or b"").decode(errors="replace").strip().splitlines()
        raise MediaError(UNREADABLE, audio, f"mux failed: {err[-1][:200] if err else 'ffmpeg error'}") from None
