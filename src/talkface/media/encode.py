"""Write videos (H.264 yuv420p + AAC) and wav files through ffmpeg-python, atomically.

Frames are piped to ffmpeg as raw RGB, so a caller can stream a long video frame by frame (or chunk by chunk)
without holding it in memory:

    write_video("out.mp4", frames, fps=25, audio=wav, sample_rate=16000)        # frames uint8 [T, H, W, 3]
    write_video("out.mp4", (render(t) for t in range(T)), fps=25)   # iterator of [H, W, 3] or [n, H, W, 3]

The file appears under its final name only when ffmpeg succeeded (written to a hidden temporary name in the same
folder, then renamed), so a crash never leaves a partial video behind. Encoding is bit-exact and single-threaded by
default, so the same frames and audio give the same bytes.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
import wave
from pathlib import Path
from typing import Iterable, Iterator

import ffmpeg
import numpy as np

from .ffmpeg_bin import ffmpeg_exe


class EncodeError(RuntimeError):
    pass


def _temp_name(path: Path, suffix: str | None = None) -> Path:
    return path.parent / f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{suffix or path.suffix}"


def _pcm16(audio: np.ndarray) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(f"audio must be mono [N], got shape {audio.shape}")
    if audio.dtype == np.int16:
        return audio
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"audio must be float in [-1, 1] or int16, got {audio.dtype}")
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio contains NaN or inf")
    return np.round(np.clip(audio, -1.0, 1.0) * 32767.0).astype(np.int16)


def _write_wav_raw(path: Path, pcm: np.ndarray, sample_rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(sample_rate))
        w.writeframes(pcm.astype("<i2").tobytes())


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write mono 16-bit PCM wav from float [-1, 1] (clipped) or int16 [N], atomically."""
    path = Path(path)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be > 0, got {sample_rate}")
    pcm = _pcm16(audio)
    tmp = _temp_name(path)
    try:
        _write_wav_raw(tmp, pcm, sample_rate)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _frames_iter(frames: np.ndarray | Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """Yield uint8 [n, H, W, 3] blocks from an array or an iterator of frames / blocks."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(f"frames must be uint8 [T, H, W, 3], got shape {frames.shape}")
        yield frames
        return
    for item in frames:
        item = np.asarray(item)
        yield item[None] if item.ndim == 3 else item


def write_video(path: str | Path, frames: np.ndarray | Iterable[np.ndarray], fps: float,
                audio: np.ndarray | None = None, sample_rate: int = 16000, crf: int = 18, preset: str = "medium",
                threads: int = 1, audio_bitrate: str = "128k") -> Path:
    """Encode RGB frames (uint8 [T, H, W, 3], or an iterator of [H, W, 3] frames or [n, H, W, 3] blocks) to
    H.264 yuv420p at `fps`, muxed with `audio` (float32 [N] mono in [-1, 1] at `sample_rate`) as AAC when given.

    The container follows the file extension (.mp4, .mkv, ...). threads=1 keeps the output byte-reproducible;
    threads=0 lets x264 use every core. Returns `path`. Raises ValueError on bad input and EncodeError when ffmpeg
    fails; in both cases nothing is left at `path` (an existing file there is untouched).
    """
    path = Path(path)
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    blocks = _frames_iter(frames)
    first = next(blocks, None)
    if first is None or len(first) == 0:
        raise ValueError("write_video: no frames")
    if first.dtype != np.uint8 or first.ndim != 4 or first.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 [.., H, W, 3], got {first.dtype} {first.shape}")
    h, w = first.shape[1:3]
    if h % 2 or w % 2:
        raise ValueError(f"write_video: yuv420p needs an even width and height, got {w}x{h}")
    pcm = _pcm16(audio) if audio is not None else None
    if pcm is not None and len(pcm) == 0:
        raise ValueError("write_video: audio is empty")

    tmp = _temp_name(path)
    wav = _temp_name(path, ".wav") if pcm is not None else None
    video_in = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{w}x{h}", framerate=fps)
    streams = [video_in.video]
    out_kwargs = dict(vcodec="libx264", pix_fmt="yuv420p", crf=crf, preset=preset, threads=threads,
                      map_metadata=-1, fflags="+bitexact", **{"flags:v": "+bitexact"})
    if path.suffix.lower() in (".mp4", ".mov", ".m4v"):
        out_kwargs["movflags"] = "+faststart"
    if pcm is not None:
        streams.append(ffmpeg.input(str(wav)).audio)
        out_kwargs.update(acodec="aac", ac=1, ar=sample_rate, **{"b:a": audio_bitrate, "flags:a": "+bitexact"})
    cmd = (ffmpeg.output(*streams, str(tmp), **out_kwargs)
           .global_args("-hide_banner", "-loglevel", "error", "-nostdin").overwrite_output().compile(cmd=ffmpeg_exe()))

    try:
        if wav is not None:
            _write_wav_raw(wav, pcm, sample_rate)
        # stderr to a file, not a pipe: a full pipe would block ffmpeg while we block writing its stdin
        with tempfile.TemporaryFile() as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err)
            try:
                for block in _chain(first, blocks):
                    if block.dtype != np.uint8 or block.shape[1:] != (h, w, 3):
                        raise ValueError(f"all frames must be uint8 [{h}, {w}, 3], got {block.dtype} {block.shape[1:]}")
                    proc.stdin.write(memoryview(np.ascontiguousarray(block)).cast("B"))  # no bytes copy
                proc.stdin.close()
                rc = proc.wait()
            except BrokenPipeError:
                rc = proc.wait()
            except BaseException:
                proc.kill()
                proc.wait()
                raise
            if rc != 0:
                err.seek(0)
                lines = err.read().decode(errors="replace").strip().splitlines()
                raise EncodeError(f"ffmpeg failed writing {path}: {lines[-1] if lines else f'exit code {rc}'}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        if wav is not None:
            wav.unlink(missing_ok=True)
    return path


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest
