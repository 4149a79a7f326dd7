"""Dubbing: put new speech on a real video with the trained generators (G_S silent reference, G_L lip sync).

    dubber = Dubber.from_checkpoints("models/generator.pt", cfg=DubConfig(detector="haar"))
    result = dubber.dub("in.mp4", "speech.wav", "out.mp4")      # DubResult: frames, dubbed frames, seconds, ...

One streaming pass over the video, chunk by chunk, so memory does not grow with its length:

  decode (25 fps, background thread) -> detect faces -> online box tracking (fill short gaps, pad, smooth, square; a
  frame's box is final once the detections `lag` frames later are known, and equals the whole-clip result)
  -> k-frame windows at global frame indices f = 0, k, 2k, ... -> crops, pose (lower half zeroed), one mel window per
  frame -> G_S(reference) once per reference segment (cached) -> G_L in batches of windows -> feathered paste of the
  lower face into the full-resolution frame -> H.264 encode (streamed) -> mux with the given audio.

Everything is keyed by global frame indices, and batches are formed from windows in order, so the output does not
depend on where chunk borders fall (no seams; tested bit-exact across chunk sizes).

Timeline: the output runs at `fps` (25, the generators' training rate; any input rate or variable rate is resampled by
the decoder). Output frame j is dubbed with the mel window of audio time j/fps. Audio longer than the video: the video
is looped from its start (`long_audio="loop"`) or its last frame is held (`"hold"`) until the audio ends. Audio
shorter than the video: the rest of the video passes through with its original mouth, under silence. Frames with no
face pass through unchanged. See docs/dubbing.md.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import queue
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Iterator

import ffmpeg
import numpy as np
import torch

from .data.mel import MelConfig, mel_start, melspectrogram
from .faces.crop import crop_frames, paste_back
from .faces.detect import DetectorConfig, make_detector, resolve_detector
from .faces.track import fill_gaps, pad_boxes, smooth_boxes, square_boxes
from .media.decode import iter_frames, read_audio
from .media.encode import write_video
from .media.ffmpeg_bin import ffmpeg_exe
from .media.probe import NO_AUDIO, NO_VIDEO, TRUNCATED, UNREADABLE, MediaError, MediaInfo, probe

NO_CHECKPOINT = "no generator checkpoint: run `dvc repro` first or pass --checkpoint"
OUTPUT_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")  # containers that take H.264 + AAC


class DubError(RuntimeError):
    """A dubbing request that cannot be served; the message is one line for the user."""


@dataclasses.dataclass
class DubConfig:
    detector: str = "auto"  # auto (fan when its weights are cached, else dlib, else haar) | fan | dlib | haar
    detect: DetectorConfig = dataclasses.field(default_factory=DetectorConfig)
    pads: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.1, 0.0, 0.0])  # as crop.pads (training)
    smooth_window: int = 5  # as crop.smooth_window
    smooth_method: str = "mean"
    max_gap: int = 5  # missed detections up to this many frames are interpolated and dubbed; longer gaps pass through
    fps: float = 25.0  # output and processing rate (the generators are trained on 25 fps windows)
    batch_size: int = 16  # G_L windows (of k frames) per forward pass
    chunk_frames: int = 32  # frames decoded at a time
    reference_every: int = 125  # frames per reference segment: one identity reference window, G_S run once on it
    long_audio: str = "loop"  # audio longer than the video: loop | hold
    paste_region: str = "lower"  # lower (mouth half, the part G_L rewrites) | full (Wav2Lip's whole box)
    feather: float = 0.15  # feathered mask edge, as a fraction of the pasted region's shorter side
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast + channels-last on CUDA (ignored on CPU)
    crf: int = 18  # x264 quality
    preset: str = "fast"  # x264 speed/size trade-off
    audio_bitrate: str = "192k"  # AAC bitrate of the muxed speech
    min_decoded_ratio: float = 0.5  # fewer decoded frames than this share of duration*fps: truncated input


@dataclasses.dataclass
class DubResult:
    out: str
    frames: int  # output frames
    dubbed: int  # frames whose mouth was regenerated
    video_frames: int  # frames of the input video at `fps` (one pass)
    audio_seconds: float
    seconds: float  # wall time of the whole call
    references: int  # G_S calls (one per reference segment with a face)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# ------------------------------------------------------------------------------------------------ box tracking


def gap_mask(raw: np.ndarray, max_gap: int) -> np.ndarray:
    """bool [T]: frames with a detection, or inside a run of <= max_gap missed frames between two detections (the
    frames `faces.track.fill_gaps` interpolates). Everything else (long gaps, runs before the first / after the last
    detection) is not dubbed."""
    valid = ~np.isnan(raw).any(axis=1)
    out = valid.copy()
    idx = np.flatnonzero(valid)
    for b, a in zip(idx[:-1], idx[1:]):
        if 1 < a - b <= max_gap + 1:
            out[b + 1: a] = True
    return out


def track_all(raw: np.ndarray, width: int, height: int, pads, window: int, method: str,
              max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Whole-clip tracking: raw boxes float [T, 4] (NaN rows = no face) -> (square boxes [T, 4], dub mask [T]).
    The same chain as `faces.track.track_boxes`; rows stay NaN when the clip has no face at all."""
    raw = np.asarray(raw, np.float32)
    mask = gap_mask(raw, max_gap)
    if not mask.any():
        return np.full_like(raw, np.nan), mask
    boxes = smooth_boxes(pad_boxes(fill_gaps(raw, max_gap), tuple(pads)), window, method)
    return square_boxes(boxes, width, height), mask


class StreamTracker:
    """Online `track_all`: push raw boxes as frames are detected, pop final boxes with a fixed lag.

    Frame t's box depends on the filled boxes within window//2 of it, and a filled box on the detections up to
    max(max_gap, window//2) frames further, so it is final once `lag` later frames are known. Each pop runs the
    whole-clip chain on a slice with `margin` frames of context on both sides; the result equals `track_all` on the
    complete clip (tests/test_dub.py checks this on random miss patterns)."""

    def __init__(self, width: int, height: int, pads, window: int, method: str, max_gap: int):
        self.args = (width, height, tuple(pads), window, method, max_gap)
        half = window // 2
        self.lag = half + max(max_gap, half) + 1
        self.margin = 2 * (max_gap + window) + 2
        self.raw = np.empty((256, 4), np.float32)
        self.n = 0  # frames pushed
        self.done = 0  # frames popped

    def push(self, raw: np.ndarray) -> None:
        raw = np.asarray(raw, np.float32).reshape(-1, 4)
        while self.n + len(raw) > len(self.raw):
            self.raw = np.concatenate([self.raw, np.empty_like(self.raw)])
        self.raw[self.n: self.n + len(raw)] = raw
        self.n += len(raw)

    def pop(self, final: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Boxes [m, 4] and dub mask [m] of the next m frames that are final (all remaining when `final`)."""
        end = self.n if final else max(self.done, self.n - self.lag)
        if end <= self.done:
            return np.empty((0, 4), np.float32), np.zeros(0, bool)
        lo = max(0, self.done - self.margin)
        hi = min(self.n, end + self.margin)
        boxes, mask = track_all(self.raw[lo:hi], *self.args)
        out = boxes[self.done - lo: end - lo], mask[self.done - lo: end - lo]
        self.done = end
        return out


# ------------------------------------------------------------------------------------------------ models


def default_checkpoint() -> Path:
    from .paths import repo_root

    return repo_root() / "models" / "generator.pt"


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DubError(f"device {name} requested but CUDA is not available")
    return dev


def load_generators(checkpoint: str | Path | None, silent_checkpoint: str | Path | None,
                    device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """(G_L, G_S or None) in eval mode on `device`.

    G_S is `silent_checkpoint`, else `silent.pt` beside G_L. It is used exactly when the G_L checkpoint says G_L was
    trained with silent-lip references (generator_io.uses_silent_reference), and then required."""
    from .models.generator_io import load_generator, uses_silent_reference

    path = Path(checkpoint) if checkpoint else default_checkpoint()
    if not path.is_file():
        raise DubError(NO_CHECKPOINT if checkpoint is None else f"{NO_CHECKPOINT} ({path} not found)")
    g_l = load_generator(path, map_location=device)
    flag = uses_silent_reference(g_l)
    s_path = Path(silent_checkpoint) if silent_checkpoint else path.with_name("silent.pt")
    g_s = None
    if flag:
        if not s_path.is_file():
            raise DubError(f"no silent-lip generator checkpoint (G_S): {s_path} not found; run `dvc repro` first "
                           "or pass --silent-checkpoint")
        g_s = load_generator(s_path, map_location=device).to(device).eval()
        if (g_s.cfg.k, g_s.cfg.face_size) != (g_l.cfg.k, g_l.cfg.face_size):
            raise DubError(f"G_S {s_path} (k={g_s.cfg.k}, size={g_s.cfg.face_size}) does not match G_L {path} "
                           f"(k={g_l.cfg.k}, size={g_l.cfg.face_size})")
    return g_l.to(device).eval(), g_s


# ------------------------------------------------------------------------------------------------ pipeline


@dataclasses.dataclass
class _Window:
    start: int  # global output frame index of its first frame
    frames: list[np.ndarray]  # k full frames (the last window may repeat its last frame)
    boxes: np.ndarray  # [k, 4]
    dub: np.ndarray  # bool [k]
    n: int  # real frames (< k only for the last window)
    crops: np.ndarray | None = None  # uint8 [k, S, S, 3]


class Dubber:
    """Models, face detector and settings loaded once; `dub()` per (video, audio) pair."""

    def __init__(self, g_l: torch.nn.Module, g_s: torch.nn.Module | None, cfg: DubConfig | None = None,
                 device: torch.device | str = "cpu", progress: bool = True, mel: MelConfig | None = None):
        self.cfg = cfg or DubConfig()
        self.mel_cfg = mel or MelConfig()  # the mel parameters the generators were trained with (params `mels.mel`)
        if self.cfg.long_audio not in ("loop", "hold"):
            raise DubError(f"long_audio must be 'loop' or 'hold', got {self.cfg.long_audio!r}")
        self.device = torch.device(device)
        self.g_l, self.g_s = g_l, g_s
        gcfg = g_l.cfg
        self.k, self.size = gcfg.k, gcfg.face_size
        self.amp = self.cfg.amp and self.device.type == "cuda"
        if self.amp:  # channels-last lets cuDNN use its tensor-core NHWC kernels under bf16
            self.g_l = self.g_l.to(memory_format=torch.channels_last)
            if self.g_s is not None:
                self.g_s = self.g_s.to(memory_format=torch.channels_last)
        self.detector = self._make_detector()
        self.progress = progress
        silence = melspectrogram(np.zeros(self.mel_cfg.sample_rate, np.float32), self.mel_cfg)
        self.silent_mel = torch.from_numpy(np.ascontiguousarray(silence[:16].T)).to(self.device)  # [80, 16]

    @classmethod
    def from_checkpoints(cls, checkpoint=None, silent_checkpoint=None, cfg: DubConfig | None = None,
                         progress: bool = True, mel: MelConfig | None = None) -> "Dubber":
        cfg = cfg or DubConfig()
        device = resolve_device(cfg.device)
        g_l, g_s = load_generators(checkpoint, silent_checkpoint, device)
        return cls(g_l, g_s, cfg, device, progress, mel)

    def _make_detector(self):
        name = resolve_detector(self.cfg.detector, self.cfg.detect)
        if name not in ("fan", "dlib", "haar"):
            raise DubError(f"dub detector must be auto, fan, dlib or haar, got {name!r}")
        self.detector_name = name
        return make_detector(name, self.cfg.detect)

    # -------------------------------------------------------------------------------------------- generators

    def _to_tensor(self, crops: np.ndarray) -> torch.Tensor:
        """uint8 [n, k, S, S, 3] -> float [n, k, 3, S, S] in [0, 1] on the device."""
        t = torch.from_numpy(crops).to(self.device, non_blocking=True)
        return t.permute(0, 1, 4, 2, 3).float().div_(255.0)

    def _run(self, gen, pose, identity, mels) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            return gen(pose, identity, mels).float()

    def silent_reference(self, crops: np.ndarray) -> torch.Tensor:
        """G_S on reference windows: uint8 [n, k, S, S, 3] -> float [n, k, 3, S, S] with closed lips (the raw crops
        when the model was trained without G_S)."""
        ref = self._to_tensor(crops)
        if self.g_s is None:
            return ref
        pose = ref.clone()
        pose[..., self.size // 2:, :] = 0.0
        mels = self.silent_mel.expand(ref.shape[0], self.k, 1, *self.silent_mel.shape)
        return self._run(self.g_s, pose, ref, mels)

    def _mel_windows(self, mel: np.ndarray, start: int) -> np.ndarray:
        """[k, 1, 80, 16] for output frames start..start+k-1: frame j gets the window starting at frame j - k//2, as
        in training (data/windows.py), clamped to the audio."""
        last = len(mel) - 16
        out = np.empty((self.k, 1, mel.shape[1], 16), np.float32)
        for i in range(self.k):
            s = min(max(mel_start(start + i - self.k // 2, self.cfg.fps, self.mel_cfg.frames_per_second), 0), last)
            out[i, 0] = mel[s: s + 16].T
        return out

    # -------------------------------------------------------------------------------------------- streaming

    def _source(self, video: Path, info: MediaInfo, n_audio: int, tracker: "StreamTracker",
                stats: dict) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """Yield (frames uint8 [n, H, W, 3], raw boxes [n, 4] or None = detect them) along the output timeline:
        the video once, then looped or held until the audio's last frame. Repeated frames reuse the raw detections
        of the first pass (the tracker keeps them)."""
        cfg = self.cfg
        n_video, last = 0, None
        for chunk in _prefetch(iter_frames(video, cfg.fps, cfg.chunk_frames, info)):
            n_video += len(chunk)
            last = chunk[-1]
            yield chunk, None
        expected = info.duration * cfg.fps
        if expected > 0 and n_video < cfg.min_decoded_ratio * expected:
            raise MediaError(TRUNCATED, video, f"decoded {n_video} of ~{expected:.0f} frames")
        stats["video_frames"] = n_video
        t = n_video
        while t < n_audio:
            if cfg.long_audio == "hold":
                n = min(cfg.chunk_frames, n_audio - t)
                yield np.broadcast_to(last, (n, *last.shape)), np.repeat(tracker.raw[n_video - 1][None], n, 0)
                t += n
                continue
            s = 0
            for chunk in _prefetch(iter_frames(video, cfg.fps, cfg.chunk_frames, info)):
                chunk = chunk[: min(len(chunk), n_video - s, n_audio - t)]
                if len(chunk) == 0:
                    break
                yield chunk, tracker.raw[s: s + len(chunk)].copy()
                s += len(chunk)
                t += len(chunk)
            if s == 0:
                raise MediaError(UNREADABLE, video, "second pass decoded no frame")

    def iter_dubbed(self, video: Path, info: MediaInfo, mel: np.ndarray, n_audio: int,
                    stats: dict) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Yield (out frames uint8 [n, H, W, 3], input frames [n, H, W, 3], boxes [n, 4], dubbed bool [n]) along
        the output timeline. `stats` gets video_frames, dubbed, references."""
        cfg, k = self.cfg, self.k
        tracker = StreamTracker(info.width, info.height, cfg.pads, cfg.smooth_window, cfg.smooth_method, cfg.max_gap)
        stats.update(dubbed=0, references=0)
        detect_until = n_audio + tracker.lag  # frames after that are never dubbed: no need to look for faces
        frames_q: deque[np.ndarray] = deque()  # frames pushed to the tracker, not yet grouped into windows
        window: _Window | None = None
        batch: list[_Window] = []
        t_push = 0  # global index of the next frame pushed
        t_pop = 0  # global index of the next frame popped from the tracker
        ref_cache: dict[int, torch.Tensor] = {}

        def windows_from(boxes, mask) -> Iterator[_Window]:
            nonlocal window, t_pop
            for box, m in zip(boxes, mask):
                frame = frames_q.popleft()
                if window is None:
                    window = _Window(t_pop, [], np.zeros((k, 4), np.float32), np.zeros(k, bool), 0)
                i = window.n
                window.frames.append(frame)
                window.boxes[i] = box
                window.dub[i] = bool(m) and t_pop < n_audio
                window.n += 1
                t_pop += 1
                if window.n == k:
                    yield window
                    window = None

        def flush() -> Iterator[tuple]:
            todo = list(batch)
            batch.clear()
            yield from self._generate(todo, mel, ref_cache, stats)

        for frames, raw in self._source(video, info, n_audio, tracker, stats):
            if raw is None:  # first pass: detect
                n = len(frames)
                if t_push < detect_until:
                    dets = self.detector.detect(np.ascontiguousarray(frames), start=t_push)
                    raw = np.array([d.box if d is not None else [np.nan] * 4 for d in dets], np.float32)
                else:
                    raw = np.full((n, 4), np.nan, np.float32)
            tracker.push(raw)
            frames_q.extend(frames)
            t_push += len(frames)
            for w in windows_from(*tracker.pop()):
                batch.append(w)
                if len(batch) >= cfg.batch_size:
                    yield from flush()
        for w in windows_from(*tracker.pop(final=True)):
            batch.append(w)
        if window is not None:  # last, short window: repeat its last frame to k, keep only the real ones
            while len(window.frames) < k:
                window.frames.append(window.frames[-1])
                window.boxes[len(window.frames) - 1] = window.boxes[window.n - 1]
            batch.append(window)
            window = None
        if batch:
            yield from flush()

    def _generate(self, batch: list[_Window], mel: np.ndarray, ref_cache: dict, stats: dict) -> Iterator[tuple]:
        """Run G_S (new reference segments) and G_L on a batch of windows; paste. Yields the output blocks one
        window at a time and lets go of each window's frames once yielded (peak memory)."""
        k, cfg = self.k, self.cfg
        todo = [w for w in batch if w.dub[: w.n].any()]
        for w in todo:  # frames without a final box (no face): borrow the nearest box of the window
            have = ~np.isnan(w.boxes).any(axis=1)
            if not have.all():
                idx = np.flatnonzero(have)
                for i in np.flatnonzero(~have):
                    w.boxes[i] = w.boxes[idx[np.argmin(np.abs(idx - i))]]
            w.crops = crop_frames(np.stack(w.frames), w.boxes, self.size)
        if todo:
            # one reference window per segment of `reference_every` frames: the segment's first window with a face
            new = {}
            for w in todo:
                seg = w.start // cfg.reference_every
                if seg not in ref_cache and seg not in new:
                    new[seg] = w.crops
            if new:
                refs = self.silent_reference(np.stack(list(new.values())))
                oldest = min(w.start // cfg.reference_every for w in todo)
                for seg in list(ref_cache):
                    if seg < oldest:
                        del ref_cache[seg]  # segments only move forward
                ref_cache.update(zip(new, refs))
                stats["references"] += len(new)
            crops = np.stack([w.crops for w in todo])
            pose = self._to_tensor(crops)
            pose[..., self.size // 2:, :] = 0.0
            identity = torch.stack([ref_cache[w.start // cfg.reference_every] for w in todo])
            mels = torch.from_numpy(np.stack([self._mel_windows(mel, w.start) for w in todo])).to(self.device)
            gen = self._run(self.g_l, pose, identity, mels)
            gen = (gen.clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 1, 3, 4, 2).cpu().numpy()
            generated = dict(zip((id(w) for w in todo), gen))
        else:
            generated = {}
        for w in batch:
            src = np.stack(w.frames[: w.n])
            out = src
            g = generated.get(id(w))
            if g is not None:
                out = src.copy()
                for i in np.flatnonzero(w.dub[: w.n]):
                    out[i] = paste_back(src[i], g[i], w.boxes[i], cfg.feather, cfg.paste_region)
                stats["dubbed"] += int(w.dub[: w.n].sum())
            w.frames, w.crops = [], None
            yield out, src, w.boxes[: w.n].copy(), w.dub[: w.n].copy()

    # -------------------------------------------------------------------------------------------- one pair

    def check_inputs(self, video: str | Path, audio: str | Path, out: str | Path) -> tuple[MediaInfo, MediaInfo]:
        video, audio, out = Path(video), Path(audio), Path(out)
        vinfo = probe(video)
        if not vinfo.has_video:
            raise MediaError(NO_VIDEO, video)
        ainfo = vinfo if audio.resolve() == video.resolve() else probe(audio)
        if not ainfo.has_audio:
            raise MediaError(NO_AUDIO, audio)
        if out.suffix.lower() not in OUTPUT_SUFFIXES:
            raise DubError(f"output must end in one of {', '.join(OUTPUT_SUFFIXES)} (H.264 + AAC), got {out.name}")
        if out.resolve() in (video.resolve(), audio.resolve()):
            raise DubError(f"output {out} would overwrite an input")
        return vinfo, ainfo

    def dub(self, video: str | Path, audio: str | Path, out: str | Path) -> DubResult:
        """Dub `video` with the speech in `audio` (any file ffmpeg reads with an audio stream) into `out`.

        Raises MediaError / DubError with a one-line message; `out` appears only when everything succeeded."""
        t0 = time.perf_counter()
        video, audio, out = Path(video), Path(audio), Path(out)
        vinfo, ainfo = self.check_inputs(video, audio, out)
        wav = read_audio(audio, self.mel_cfg.sample_rate, ainfo)
        audio_seconds = len(wav) / self.mel_cfg.sample_rate
        mel = melspectrogram(wav, self.mel_cfg)
        if len(mel) < 16:  # under 0.2 s: pad with the silence floor to one window
            mel = np.concatenate([mel, np.full((16 - len(mel), mel.shape[1]), -self.mel_cfg.max_abs_value,
                                               np.float32)])
        del wav
        n_audio = int(np.ceil(audio_seconds * self.cfg.fps - 1e-6))
        expected = max(n_audio, int(round(vinfo.duration * self.cfg.fps)))
        out.parent.mkdir(parents=True, exist_ok=True)
        stats: dict = {}
        tmp_video = out.parent / f".{out.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.video{out.suffix}"
        tmp_out = out.parent / f".{out.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{out.suffix}"
        from tqdm import tqdm

        bar = tqdm(total=expected, unit="frame", desc=f"dub {video.name}", disable=not self.progress,
                   dynamic_ncols=True)
        counted = {"frames": 0}

        def frames_out() -> Iterator[np.ndarray]:
            for block, _, _, _ in self.iter_dubbed(video, vinfo, mel, n_audio, stats):
                counted["frames"] += len(block)
                bar.update(len(block))
                yield _even(block)

        try:
            write_video(tmp_video, frames_out(), self.cfg.fps, crf=self.cfg.crf, preset=self.cfg.preset, threads=0)
            bar.close()
            _mux(tmp_video, audio, tmp_out, self.cfg.audio_bitrate)
            os.replace(tmp_out, out)
        finally:
            bar.close()
            tmp_video.unlink(missing_ok=True)
            tmp_out.unlink(missing_ok=True)
        return DubResult(str(out), counted["frames"], stats.get("dubbed", 0), stats.get("video_frames", 0),
                         audio_seconds, time.perf_counter() - t0, stats.get("references", 0))

    def dub_pairs(self, pairs_csv: str | Path, log=print) -> list[tuple[dict, DubResult | Exception]]:
        """Dub every (video, audio, out) row of a CSV (header `video,audio,out` optional; relative paths are relative
        to the CSV's folder). A failing pair is reported and skipped. Returns (row, result or error) per row."""
        rows = read_pairs(pairs_csv)
        done = []
        for row in rows:
            try:
                res = self.dub(row["video"], row["audio"], row["out"])
                log(f"[dub] {row['out']}: {res.frames} frames ({res.dubbed} dubbed) at {res.fps:.1f} frames/s")
                done.append((row, res))
            except (MediaError, DubError, ValueError, RuntimeError) as exc:
                log(f"[dub] {row['video']}: error: {exc}")
                done.append((row, exc))
        return done


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


def _even(block: np.ndarray) -> np.ndarray:
    """H.264 yuv420p needs even sides: repeat the last row / column of odd-sized frames."""
    h, w = block.shape[1:3]
    if h % 2 == 0 and w % 2 == 0:
        return block
    return np.pad(block, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _prefetch(it: Iterator, depth: int = 2) -> Iterator:
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


def _mux(video_only: Path, audio: Path, out: Path, bitrate: str) -> None:
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
