"""Dubbing: put new speech on a real video with the trained generators (G_S silent reference, G_L lip sync).

    dubber = Dubber.from_checkpoints("models/generator.pt", cfg=DubConfig(detector="haar"))
    result = dubber.dub("in.mp4", "speech.wav", "out.mp4")      # DubResult: frames, dubbed frames, seconds, ...

Two streaming passes over the video, chunk by chunk, so memory does not grow with its length:

  1. faces: decode at detection size (ffmpeg shrinks 4K frames to `detect_max_side` itself) -> detect -> track the
     whole clip (fill short gaps, pad, smooth, square: 16 bytes a frame);
  2. dub: decode at full size (background thread) -> k-frame windows at global frame indices f = 0, k, 2k, ... ->
     crops, pose (lower half zeroed), one mel window per frame -> G_S(reference) once per reference segment (cached)
     -> G_L in batches of windows -> feathered paste of the lower face into the decoded frame -> H.264 encode
     (streamed) -> mux with the given audio.

Full-resolution pixels are only decoded in pass 2 and only the face box of them is touched; a frame leaves as soon
as its window is pasted (no tracker lag to wait for: the boxes are known), so at 4K the process holds a window and
the decoder's queue, not dozens of 25 MB frames.

Everything is keyed by global frame indices, and batches are formed from windows in order, so the output does not
depend on where chunk borders fall (no seams; tested bit-exact across chunk sizes).

Timeline: the output runs at the windows' `fps` (25, the generators' training rate; any input rate or variable rate is resampled by
the decoder). Output frame j is dubbed with the mel window of audio time j/fps. Audio longer than the video: the video
is looped from its start (`long_audio="loop"`) or its last frame is held (`"hold"`) until the audio ends. Audio
shorter than the video: the rest of the video passes through with its original mouth, under silence. Frames with no
face pass through unchanged. See docs/dubbing.md.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import re
import sys
import time
import uuid
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from .data.mel import MelConfig, melspectrogram
from .data.prepare import CropConfig
from .devices import DeviceUnavailable, resolve_device
from .dubbing import DubError
from .dubbing.adapt import AdaptConfig, adapt_generator
from .dubbing.anchor import AnchorConfig, anchor_boxes, anchor_lines
from .dubbing.generate import DubWindow, LipSync, PasteConfig, dub_windows
from .dubbing.media_io import even_sides, mux, prefetch, read_pairs
from .dubbing.norm_stats import NormStatsConfig, stats_windows, video_norm_stats
from .dubbing.reference import closed_windows, reference_crops
from .dubbing.silence import SilenceConfig, silent_frames
from .dubbing.timeline import output_timeline
from .dubbing.tracking import track_all
from .faces.detect import DetectorConfig, make_detector, resolve_detector
from .faces.track import detections_to_arrays
from .media.decode import iter_frames, read_audio
from .media.encode import write_video
from .media.probe import NO_AUDIO, NO_VIDEO, MediaError, MediaInfo, probe
from .metrics.mouth import mouth_opening
from .model_inputs import WindowConfig, reference_segment

NO_CHECKPOINT = "no generator checkpoint: run `dvc repro` first or pass --checkpoint"
OUTPUT_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv")  # containers that take H.264 + AAC


@dataclasses.dataclass
class DubConfig:
    detector: str = "auto"  # auto (fan when its weights are cached, else dlib, else haar) | fan | dlib | haar
    detect: DetectorConfig = dataclasses.field(default_factory=DetectorConfig)
    pads: list[float] = dataclasses.field(default_factory=lambda: [0.0, 0.1, 0.0, 0.0])  # as crop.pads (training)
    smooth_window: int = 5  # as crop.smooth_window
    smooth_method: str = "mean"
    max_gap: int = 5  # missed detections up to this many frames are interpolated and dubbed; longer gaps pass through
    batch_size: int = 16  # G_L windows (of k frames) per forward pass
    chunk_frames: int = 32  # frames decoded at a time
    reference_every: int = 125  # frames per reference segment: one identity reference window, G_S run once on it
    reference_pick: str = "closed"  # closed: the segment's window with the most closed mouth (landmarks) | first
    long_audio: str = "loop"  # audio longer than the video: loop | hold
    paste: PasteConfig = dataclasses.field(default_factory=PasteConfig)  # feathered ellipse, colour matched
    anchor: AnchorConfig = dataclasses.field(default_factory=AnchorConfig)  # eye and mouth lines where G_L learnt them
    silence: SilenceConfig = dataclasses.field(default_factory=SilenceConfig)  # silent speech -> closed lips
    adapt: AdaptConfig = dataclasses.field(default_factory=AdaptConfig)  # per-video fine-tuning (`--adapt N`)
    norm_stats: NormStatsConfig = dataclasses.field(default_factory=NormStatsConfig)  # G_L's BatchNorm on this video
    detect_max_side: int = 1280  # frames are shrunk to this longer side for face detection (0 = full size)
    max_chunk_mb: int = 32  # cap on the full-resolution frames held at once (decode chunks, G_L batches): 4K memory
    decode_threads: int = 1  # ffmpeg decoder threads (0 = ffmpeg's choice: at 4K 470 MB instead of 310 MB)
    decode_queue: int = 2  # frames ffmpeg queues for us (0 = its default: at 4K 540 MB instead of 370 MB)
    encode_threads: int = 2  # x264 threads (0 = x264's choice, 1.5 x cores)
    large_frame_pixels: int = 2073600  # frames with more pixels than this (1080p) are encoded at large_frame_preset
    large_frame_preset: str = "ultrafast"  # 4K x264: 1.6 GB at `fast`, 0.38 GB here (and 4x faster, files ~1.7x)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # bf16 autocast + channels-last on CUDA (ignored on CPU)
    crf: int = 18  # x264 quality
    preset: str = "fast"  # x264 speed/size trade-off
    audio_bitrate: str = "192k"  # AAC bitrate of the muxed speech
    min_decoded_ratio: float = 0.5  # fewer decoded frames than this share of duration*fps: truncated input
    # passed down (defined once elsewhere): the training windows (their fps is the output rate) and mel parameters
    window: WindowConfig = dataclasses.field(default_factory=WindowConfig)
    mel: MelConfig = dataclasses.field(default_factory=MelConfig)


@dataclasses.dataclass
class DubResult:
    out: str
    frames: int  # output frames
    dubbed: int  # frames whose mouth was regenerated
    video_frames: int  # frames of the input video at `fps` (one pass)
    audio_seconds: float
    seconds: float  # wall time of the whole call
    references: int  # G_S calls (one per reference segment with a face)
    silent_frames: int = 0  # output frames whose speech is silent (closed lips)
    adapt_seconds: float = 0.0  # of `seconds`, spent adapting G_L to this video (0 when cached or off)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# ------------------------------------------------------------------------------------------------ models


def _load_checked(path: Path, device: torch.device) -> torch.nn.Module:
    """A generator checkpoint, or DubError in one line when the file is not one (a pickle carrying code is refused by
    torch.load(weights_only=True); a truncated, foreign or wrong file fails to read or to match)."""
    from .models.generator_io import load_generator

    try:
        with warnings.catch_warnings():  # torch warns about odd pickles before refusing them: the error says it
            warnings.simplefilter("ignore")
            return load_generator(path, map_location=device)
    except pickle.UnpicklingError as exc:
        if "global" not in str(exc).lower():  # torch names the global it refused; otherwise the bytes are no pickle
            raise DubError(f"cannot use checkpoint {path}: not a talkface generator state dict (unreadable "
                           "as a torch state dict)") from None
        raise DubError(f"cannot use checkpoint {path}: refused, it holds pickled objects other than tensors and "
                       "plain data (code could run on loading); a talkface checkpoint is a plain state dict") from None
    except Exception as exc:  # noqa: BLE001 - whatever the file is, the user gets one line, not a traceback
        first = re.sub(r"\x1b\[[0-9;]*m", "", (str(exc).strip().splitlines() or [""])[0])[:160]
        raise DubError(f"cannot use checkpoint {path}: not a talkface generator state dict "
                       f"({type(exc).__name__}{': ' + first if first else ''})") from None


def load_generators(checkpoint: str | Path, silent_checkpoint: str | Path | None,
                    device: torch.device) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """(G_L, G_S or None) in eval mode on `device`.

    G_S is `silent_checkpoint`, else `silent.pt` beside G_L. It is used exactly when the G_L checkpoint says G_L was
    trained with silent-lip references (generator_io.uses_silent_reference), and then required."""
    from .models.generator_io import uses_silent_reference

    path = Path(checkpoint)
    if not path.is_file():
        raise DubError(f"{NO_CHECKPOINT} ({path} not found)")
    g_l = _load_checked(path, device)
    flag = uses_silent_reference(g_l)
    s_path = Path(silent_checkpoint) if silent_checkpoint else path.with_name("silent.pt")
    g_s = None
    if flag:
        if not s_path.is_file():
            raise DubError(f"no silent-lip generator checkpoint (G_S): {s_path} not found; run `dvc repro` first "
                           "or pass --silent-checkpoint")
        g_s = _load_checked(s_path, device).to(device).eval()
        if (g_s.cfg.k, g_s.cfg.face_size) != (g_l.cfg.k, g_l.cfg.face_size):
            raise DubError(f"G_S {s_path} (k={g_s.cfg.k}, size={g_s.cfg.face_size}) does not match G_L {path} "
                           f"(k={g_l.cfg.k}, size={g_l.cfg.face_size})")
    return g_l.to(device).eval(), g_s


# ------------------------------------------------------------------------------------------------ pipeline


class Dubber:
    """Models, face detector and settings loaded once; `dub()` per (video, audio) pair."""

    def __init__(self, g_l: torch.nn.Module, g_s: torch.nn.Module | None, cfg: DubConfig | None = None,
                 device: torch.device | str = "cpu", progress: bool = True):
        self.cfg = cfg or DubConfig()
        if self.cfg.long_audio not in ("loop", "hold"):
            raise DubError(f"long_audio must be 'loop' or 'hold', got {self.cfg.long_audio!r}")
        if self.cfg.reference_pick not in ("closed", "first"):
            raise DubError(f"reference_pick must be 'closed' or 'first', got {self.cfg.reference_pick!r}")
        self.device = torch.device(device)
        try:
            self.lips = LipSync(g_l, g_s, self.cfg.window, self.cfg.mel, self.device, self.cfg.amp)
        except ValueError as e:
            raise DubError(str(e)) from None
        self.k, self.fps = self.lips.k, self.cfg.window.fps
        self.detector = self._make_detector()
        self.progress = progress
        self.adapt_seconds = 0.0
        self.openings = np.empty(0)  # the last face pass's mouth opening per frame (NaN: no landmarks)

    @classmethod
    def from_checkpoints(cls, checkpoint: str | Path, silent_checkpoint=None, cfg: DubConfig | None = None,
                         progress: bool = True) -> "Dubber":
        cfg = cfg or DubConfig()
        try:
            device = resolve_device(cfg.device)
        except DeviceUnavailable as e:
            raise DubError(str(e)) from None
        g_l, g_s = load_generators(checkpoint, silent_checkpoint, device)
        return cls(g_l, g_s, cfg, device, progress)

    def _make_detector(self):
        name = resolve_detector(self.cfg.detector, self.cfg.detect)
        if name not in ("fan", "dlib", "haar"):
            raise DubError(f"dub detector must be auto, fan, dlib or haar, got {name!r}")
        self.detector_name = name
        return make_detector(name, self.cfg.detect)

    # -------------------------------------------------------------------------------------------- streaming

    def memory_plan(self, info: MediaInfo) -> tuple[int, int]:
        """(frames decoded per chunk, G_L windows per batch), capped so that the full-resolution frames held at once
        stay near `max_chunk_mb` whatever the resolution (a 4K frame is 24 MB)."""
        frame_bytes = max(1, info.width * info.height * 3)
        cap = self.cfg.max_chunk_mb * 2**20
        chunk = max(1, min(self.cfg.chunk_frames, cap // frame_bytes))
        batch = max(1, min(self.cfg.batch_size, cap // (self.k * frame_bytes)))
        return int(chunk), int(batch)

    def detect_size(self, info: MediaInfo) -> tuple[int, int] | None:
        """(width, height) the face pass decodes at: the frame shrunk to `detect_max_side` on its longer side (a face
        box needs no 4K pixels); None = full size."""
        side = max(info.width, info.height)
        if self.cfg.detect_max_side <= 0 or side <= self.cfg.detect_max_side:
            return None
        scale = self.cfg.detect_max_side / side
        return max(2, round(info.width * scale)), max(2, round(info.height * scale))

    def track_lag(self) -> int:
        """Frames after frame t whose detections can change t's final box (gap filling and smoothing)."""
        half = self.cfg.smooth_window // 2
        return half + max(self.cfg.max_gap, half) + 1

    def detect_track(self, video: Path, info: MediaInfo, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Pass 1: faces on the first `n_frames` frames (fewer when the video is shorter), decoded at `detect_size`.
        Returns the whole-clip track (faces.track via dubbing.tracking.track_all): square boxes [m, 4] in full-frame
        pixels (NaN rows: no face) and the dub mask [m]."""
        size = self.detect_size(info)
        sx, sy = (info.width / size[0], info.height / size[1]) if size else (1.0, 1.0)
        small = dataclasses.replace(info, width=size[0], height=size[1]) if size else info
        raws, lines, openings, t = [], [], [], 0
        frames_iter = prefetch(iter_frames(video, self.fps, self.memory_plan(small)[0], info, size=size,
                                           threads=self.cfg.decode_threads, queue=self.cfg.decode_queue))
        from tqdm import tqdm

        expected = min(n_frames, max(1, int(round(info.duration * self.fps))))
        bar = tqdm(total=expected, unit="frame", desc=f"faces {video.name}", disable=not self.progress,
                   dynamic_ncols=True)
        try:
            for frames in frames_iter:
                frames = frames[: n_frames - t]
                raw, lms = detections_to_arrays(self.detector.detect(np.ascontiguousarray(frames), start=t))
                raws.append(raw)
                lines.append(anchor_lines(lms))
                openings.append(mouth_opening(lms))
                t += len(frames)
                bar.update(len(frames))
                if t >= n_frames:
                    break
        finally:
            frames_iter.close()  # stops the decoder when the speech ends before the video
            bar.close()
        raw = np.concatenate(raws).reshape(-1, 4) * np.array([sx, sy, sx, sy], np.float32) if raws else \
            np.empty((0, 4), np.float32)
        boxes, mask = track_all(raw, info.width, info.height, self.cfg.pads, self.cfg.smooth_window,
                                self.cfg.smooth_method, self.cfg.max_gap)
        self.openings = np.concatenate(openings) if openings else np.empty(0)
        if raws:  # the generator's training geometry: one vertical stretch for the whole video (dubbing.anchor)
            boxes, _ = anchor_boxes(boxes, np.concatenate(lines) * sy, self.cfg.anchor, info.height)
        return boxes, mask

    def iter_dubbed(self, video: Path, info: MediaInfo, mel: np.ndarray, n_audio: int, stats: dict,
                    lips: LipSync | None = None, silent: np.ndarray | None = None,
                    keep_source: bool = True) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        """Yield (out frames uint8 [n, H, W, 3], input frames [n, H, W, 3] (None without `keep_source`), boxes
        [n, 4], dubbed bool [n]) along the output timeline. `stats` gets video_frames, dubbed, references. `lips`: the
        generators (default: the loaded ones; an adapted G_L for this video otherwise); `silent`: bool per output
        frame, closed lips there."""
        cfg, k = self.cfg, self.k
        lips = lips or self.lips
        boxes, mask = self.detect_track(video, info, n_audio + self.track_lag())
        chunk_frames, batch_windows = self.memory_plan(info)
        picks = {}
        if cfg.reference_pick == "closed":  # the most closed mouth of each segment (dubbing.reference)
            picks = {("ref", seg): s for seg, s in
                     closed_windows(self.openings, boxes, n_audio, cfg.reference_every, k, cfg.long_audio).items()}
        norm_windows = []
        if cfg.norm_stats.enabled:  # windows that re-estimate G_L's normalisation on this video (dubbing.norm_stats)
            faces = np.asarray(mask, bool) & np.isfinite(boxes).all(axis=1)
            norm_windows = stats_windows(n_audio, faces, k, cfg.norm_stats.windows, cfg.long_audio)
            picks.update({("norm", i): s for i, (_, s) in enumerate(norm_windows)})
        crops = reference_crops(video, info, self.fps, picks, boxes, k, lips.size, self.detect_size(info),
                                cfg.decode_threads, cfg.decode_queue)  # one partial decode for both
        ref_crops = {seg: c for (kind, seg), c in crops.items() if kind == "ref"}
        if norm_windows:
            lips = self.renormalised(lips, norm_windows, crops, ref_crops, mel, silent)
        stats.update(dubbed=0, references=0)
        window: DubWindow | None = None
        batch: list[DubWindow] = []
        ref_cache: dict[int, torch.Tensor] = {}

        def flush() -> Iterator[tuple]:
            todo = list(batch)
            batch.clear()
            yield from dub_windows(lips, todo, mel, ref_cache, stats, cfg.reference_every, cfg.paste, silent,
                                   keep_source, ref_crops)

        t = 0  # global index of the next output frame
        for frames, source in output_timeline(video, info, n_audio, stats, self.fps, chunk_frames, cfg.long_audio,
                                              cfg.min_decoded_ratio, cfg.decode_threads, cfg.decode_queue):
            for frame, j in zip(frames, source):
                if window is None:
                    window = DubWindow(t, [], np.full((k, 4), np.nan, np.float32), np.zeros(k, bool), 0)
                i = window.n
                window.frames.append(frame)
                if j < len(boxes):  # frames after the face pass (the speech has ended there) keep their mouth
                    window.boxes[i] = boxes[j]
                    window.dub[i] = bool(mask[j]) and t < n_audio
                window.n += 1
                t += 1
                if window.n == k:
                    batch.append(window)
                    window = None
                    if len(batch) >= batch_windows:
                        yield from flush()
        if window is not None:  # last, short window: repeat its last frame to k, keep only the real ones
            while len(window.frames) < k:
                window.frames.append(window.frames[-1])
                window.boxes[len(window.frames) - 1] = window.boxes[window.n - 1]
            batch.append(window)
            window = None
        if batch:
            yield from flush()

    def renormalised(self, lips: LipSync, windows: list[tuple[int, int]], crops: dict, ref_crops: dict,
                     mel: np.ndarray, silent: np.ndarray | None) -> LipSync:
        """`lips` with a G_L whose BatchNorm statistics come from these (output start, source start) windows of the
        video: crops[("norm", i)], the identity reference of each window's segment (as the dub will take it) and the
        new speech's mel at the output frames (dubbing.norm_stats)."""
        keys = [i for i in range(len(windows)) if ("norm", i) in crops]
        if not keys:
            return lips
        starts = [windows[i][0] for i in keys]
        window_crops = np.stack([crops[("norm", i)] for i in keys])
        pose, mels = lips.window_inputs(window_crops, mel, starts, silent)
        refs = [ref_crops.get(reference_segment(t, self.cfg.reference_every), window_crops[j])
                for j, t in enumerate(starts)]
        identity = lips.reference(np.stack(refs))
        g_l = video_norm_stats(lips.g_l, pose, identity, mels, self.cfg.norm_stats)
        return lips if g_l is lips.g_l else LipSync(g_l, lips.g_s, self.cfg.window, self.cfg.mel, self.device,
                                                   self.cfg.amp)

    def crop_config(self) -> CropConfig:
        """The crop settings of this dubber's face track (per-video adaptation crops the video with them)."""
        w = self.cfg.window
        return CropConfig(detector=self.detector_name, size=self.lips.size, pads=list(self.cfg.pads),
                          smooth_window=self.cfg.smooth_window, smooth_method=self.cfg.smooth_method,
                          max_gap=self.cfg.max_gap, fps=int(w.fps), sample_rate=self.cfg.mel.sample_rate,
                          min_frames=3 * self.k, max_missing_ratio=self.cfg.adapt.max_missing_ratio,
                          min_decoded_ratio=self.cfg.min_decoded_ratio, detect=self.cfg.detect,
                          cache_mb=self.cfg.max_chunk_mb)  # longer videos are decoded twice, not held in memory

    def adapted(self, video: Path) -> LipSync:
        """The generators for `video`: G_L fine-tuned on it (`adapt.steps` > 0; cached per video) or as loaded."""
        self.adapt_seconds = 0.0
        if self.cfg.adapt.steps == 0:
            return self.lips
        t0 = time.perf_counter()
        log = (lambda line: print(line, file=sys.stderr)) if self.progress else (lambda line: None)
        g_l = adapt_generator(self.lips.g_l, self.lips.g_s, video, self.cfg.adapt, self.crop_config(),
                              self.cfg.window, self.cfg.mel, self.device, progress=self.progress, log=log)
        self.adapt_seconds = time.perf_counter() - t0
        return LipSync(g_l, self.lips.g_s, self.cfg.window, self.cfg.mel, self.device, self.cfg.amp)

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
        mel_cfg, steps = self.cfg.mel, self.cfg.window.mel_steps
        wav = read_audio(audio, mel_cfg.sample_rate, ainfo)
        audio_seconds = len(wav) / mel_cfg.sample_rate
        mel = melspectrogram(wav, mel_cfg)
        if len(mel) < steps:  # under one window (0.2 s): pad with the silence floor to one window
            mel = np.concatenate([mel, np.full((steps - len(mel), mel.shape[1]), -mel_cfg.max_abs_value, np.float32)])
        n_audio = int(np.ceil(audio_seconds * self.fps - 1e-6))
        silent = silent_frames(wav, mel_cfg.sample_rate, self.fps, n_audio, self.cfg.silence)
        del wav
        lips = self.adapted(video)
        expected = max(n_audio, int(round(vinfo.duration * self.fps)))
        out.parent.mkdir(parents=True, exist_ok=True)
        stats: dict = {}
        tmp_video = out.parent / f".{out.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.video{out.suffix}"
        tmp_out = out.parent / f".{out.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.partial{out.suffix}"
        from tqdm import tqdm

        bar = tqdm(total=expected, unit="frame", desc=f"dub {video.name}", disable=not self.progress,
                   dynamic_ncols=True)
        counted = {"frames": 0}

        def frames_out() -> Iterator[np.ndarray]:
            for block, _, _, _ in self.iter_dubbed(video, vinfo, mel, n_audio, stats, lips, silent,
                                                   keep_source=False):
                counted["frames"] += len(block)
                bar.update(len(block))
                yield even_sides(block)

        try:
            large = vinfo.width * vinfo.height > self.cfg.large_frame_pixels
            write_video(tmp_video, frames_out(), self.fps, crf=self.cfg.crf,
                        preset=self.cfg.large_frame_preset if large else self.cfg.preset,
                        threads=self.cfg.encode_threads)
            bar.close()
            mux(tmp_video, audio, tmp_out, self.cfg.audio_bitrate)
            os.replace(tmp_out, out)
        finally:
            bar.close()
            tmp_video.unlink(missing_ok=True)
            tmp_out.unlink(missing_ok=True)
        return DubResult(str(out), counted["frames"], stats.get("dubbed", 0), stats.get("video_frames", 0),
                         audio_seconds, time.perf_counter() - t0, stats.get("references", 0), int(silent.sum()),
                         self.adapt_seconds)

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
