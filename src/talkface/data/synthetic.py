"""The embedded default dataset: synthetic talking heads, generated offline and deterministically from a seed.

Each identity is a parametric 2D face (face_render.py) with its own espeak-ng voice (speech.py). A clip is a few
GRID sentences with silences and pauses; the mouth follows visemes from espeak-ng's phoneme timings, the head drifts
slowly and the eyes blink. Per clip in `out_dir`:

    <clip_id>.mp4          25 fps H.264 yuv420p + AAC mono
    <clip_id>.json         sidecar (docs/architecture.md): boxes, 68 landmarks, mouth_open, phonemes per frame
    <clip_id>.silent.npz   the same frames with closed lips, uint8 [T, H, W, 3] under the key "frames"
    index.csv              clip_id,video,speaker,split,sidecar (split empty)

    df = generate(Path("data/raw"), SyntheticConfig(), workers=2)

Every random draw comes from numpy generators seeded with (seed, purpose, identity, clip), so the output does not
depend on `workers` or on the order clips are made; the same seed gives byte-identical sidecars, npz files and mp4s.
"""

from __future__ import annotations

import dataclasses
import io
import json
import multiprocessing
import os
import zipfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from ..media.encode import write_video
from . import face_render as fr
from .speech import Voice, compose_clip, speaker_voices

INDEX_COLUMNS = ["clip_id", "video", "speaker", "split", "sidecar"]
SILENT_KEY = "frames"

# purposes mixed into the seed so that streams never collide
_VOICES, _IDENTITY, _CLIP = 1, 2, 3


@dataclasses.dataclass
class SyntheticConfig:
    """params.yaml section of the synthetic source (what changes the generated data)."""

    seed: int = 0
    identities: int = 10
    clips_per_identity: int = 6
    seconds_per_clip: float = 4.0
    frame_size: int = 160  # square frames, pixels (even: H.264 yuv420p)
    fps: int = 25
    sample_rate: int = 16000
    crf: int = 18  # H.264 quality of the mp4
    # speech
    speech_rate_min: int = 140  # words per minute, per speaker
    speech_rate_max: int = 200
    pitch_min: int = 30  # espeak-ng base pitch 0..100, per speaker
    pitch_max: int = 70
    lead_silence_min: float = 0.2  # seconds of silence before the first word
    lead_silence_max: float = 0.6
    trail_silence: float = 0.2  # at least this much silence at the end
    pause_prob: float = 0.3  # chance that a sentence is split by a pause
    pause_min: float = 0.15  # seconds, between phrases and sentences
    pause_max: float = 0.5
    noise_level: float = 0.002  # std of the background noise added to the track (full scale 1)
    audio_peak: float = 0.7  # peak amplitude of the speech
    # face motion
    coarticulation_sigma: float = 1.0  # Gaussian smoothing of the viseme curves, in frames
    anticipation_frames: int = 1  # frames of silence next to speech in which the mouth may already move
    viseme_lead: float = 0.03  # seconds the mouth runs ahead of the phoneme onsets (centres mouth-vs-energy at lag 0)
    head_translate: float = 0.04  # amplitude of head translation, fraction of the frame size
    head_rotate_deg: float = 4.0  # amplitude of in-plane head rotation
    head_scale: float = 0.04  # relative amplitude of head scale changes
    blink_rate_hz: float = 0.3


@dataclasses.dataclass
class Clip:
    clip_id: str
    speaker: str
    frames: np.ndarray  # uint8 [T, H, W, 3]
    silent: np.ndarray  # uint8 [T, H, W, 3], closed lips
    audio: np.ndarray  # float32 [T * sample_rate / fps]
    sidecar: dict


def speaker_id(identity: int) -> str:
    return f"s{identity + 1:02d}"


def clip_id(identity: int, clip: int) -> str:
    return f"{speaker_id(identity)}_c{clip + 1:03d}"


def _check(cfg: SyntheticConfig) -> None:
    if cfg.identities < 1 or cfg.clips_per_identity < 1:
        raise ValueError("synthetic: identities and clips_per_identity must be >= 1")
    if cfg.frame_size < 32 or cfg.frame_size % 2:
        raise ValueError(f"synthetic: frame_size must be even and >= 32, got {cfg.frame_size}")
    if cfg.fps < 1 or cfg.sample_rate % cfg.fps:
        raise ValueError(f"synthetic: sample_rate {cfg.sample_rate} must be a multiple of fps {cfg.fps}")
    if cfg.seconds_per_clip * cfg.fps < 5:
        raise ValueError(f"synthetic: seconds_per_clip {cfg.seconds_per_clip} gives fewer than 5 frames")


def identity_voice(cfg: SyntheticConfig, identity: int) -> Voice:
    voices = speaker_voices(cfg.identities, np.random.default_rng([cfg.seed, _VOICES]),
                            (cfg.speech_rate_min, cfg.speech_rate_max), (cfg.pitch_min, cfg.pitch_max))
    return voices[identity]


def identity_face(cfg: SyntheticConfig, identity: int) -> fr.Identity:
    return fr.random_identity(np.random.default_rng([cfg.seed, _IDENTITY, identity]))


def make_clip(cfg: SyntheticConfig, identity: int, clip: int) -> Clip:
    """Synthesize and render one clip in memory (deterministic from cfg.seed, identity, clip)."""
    _check(cfg)
    rng = np.random.default_rng([cfg.seed, _CLIP, identity, clip])
    n_frames = int(round(cfg.seconds_per_clip * cfg.fps))
    speech = compose_clip(
        rng, identity_voice(cfg, identity), n_frames / cfg.fps, cfg.sample_rate,
        lead_silence=(cfg.lead_silence_min, cfg.lead_silence_max), trail_silence=cfg.trail_silence,
        pause_prob=cfg.pause_prob, pause_seconds=(cfg.pause_min, cfg.pause_max), noise_level=cfg.noise_level,
        peak=cfg.audio_peak)
    tracks = fr.viseme_tracks(speech.phonemes, n_frames, cfg.fps, cfg.coarticulation_sigma,
                              anticipation_frames=cfg.anticipation_frames, lead=cfg.viseme_lead)
    poses = fr.head_motion(rng, n_frames, cfg.fps, cfg.frame_size, cfg.head_translate, cfg.head_rotate_deg,
                           cfg.head_scale)
    blinks = fr.blink_track(rng, n_frames, cfg.fps, cfg.blink_rate_hz)
    ident = identity_face(cfg, identity)
    background = fr.render_background(ident, cfg.frame_size)

    s = cfg.frame_size
    frames = np.empty((n_frames, s, s, 3), np.uint8)
    silent = np.empty_like(frames)
    boxes, landmarks = [], []
    for t in range(n_frames):
        mouth = (float(tracks.open[t]), float(tracks.spread[t]), float(tracks.round[t]))
        frames[t], lm, box = fr.render_frame(ident, background, poses[t], mouth, float(blinks[t]))
        silent[t] = fr.render_frame(ident, background, poses[t], (0.0, 0.0, 0.0), float(blinks[t]))[0]
        boxes.append([round(float(v), 2) for v in box])
        landmarks.append([[round(float(x), 2), round(float(y), 2)] for x, y in lm])

    cid = clip_id(identity, clip)
    sidecar = {
        "clip_id": cid,
        "speaker": speaker_id(identity),
        "fps": cfg.fps,
        "sample_rate": cfg.sample_rate,
        "size": [s, s],
        "text": speech.text,
        "boxes": boxes,
        "landmarks": landmarks,
        "mouth_open": [round(float(v), 4) for v in tracks.open],
        "phonemes": [{"phoneme": p.phoneme, "start": round(p.start, 4), "end": round(p.end, 4)}
                     for p in speech.phonemes],
        "silent": f"{cid}.silent.npz",
    }
    return Clip(cid, speaker_id(identity), frames, silent, speech.audio, sidecar)


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez_compressed, but reproducible (fixed zip timestamps) and atomic."""
    tmp = path.parent / f".{path.name}.{os.getpid()}.partial"
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, arr in arrays.items():
                buf = io.BytesIO()
                np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, buf.getvalue())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_silent(path: str | Path) -> np.ndarray:
    """The closed-lip frames of a <clip_id>.silent.npz: uint8 [T, H, W, 3]."""
    with np.load(path) as z:
        return z[SILENT_KEY]


def _write_text(path: Path, text: str) -> None:
    tmp = path.parent / f".{path.name}.{os.getpid()}.partial"
    tmp.write_text(text)
    os.replace(tmp, path)


def write_clip(out_dir: Path, clip: Clip, cfg: SyntheticConfig) -> dict:
    """Write a clip's mp4, sidecar and silent npz; return its index row."""
    write_video(out_dir / f"{clip.clip_id}.mp4", clip.frames, cfg.fps, clip.audio, cfg.sample_rate, crf=cfg.crf)
    save_npz(out_dir / clip.sidecar["silent"], **{SILENT_KEY: clip.silent})
    _write_text(out_dir / f"{clip.clip_id}.json", json.dumps(clip.sidecar, separators=(",", ":")))
    return {"clip_id": clip.clip_id, "video": f"{clip.clip_id}.mp4", "speaker": clip.speaker, "split": "",
            "sidecar": f"{clip.clip_id}.json"}


def _make_and_write(out_dir: Path, cfg: SyntheticConfig, identity: int, clip: int) -> dict:
    return write_clip(out_dir, make_clip(cfg, identity, clip), cfg)


def generate(out_dir: Path, cfg: SyntheticConfig, workers: int = 1) -> pd.DataFrame:
    """Generate the whole dataset into out_dir; returns the index rows (also written to out_dir/index.csv)."""
    _check(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(i, c) for i in range(cfg.identities) for c in range(cfg.clips_per_identity)]
    rows = []
    with tqdm(total=len(jobs), desc="synthetic clips", unit="clip") as bar:
        if workers <= 1:
            for i, c in jobs:
                rows.append(_make_and_write(out_dir, cfg, i, c))
                bar.update()
        else:
            # spawn, not fork: libespeak-ng keeps global state that must not be shared with a parent's copy
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                futures = [pool.submit(_make_and_write, out_dir, cfg, i, c) for i, c in jobs]
                for fut in as_completed(futures):
                    rows.append(fut.result())
                    bar.update()
    df = pd.DataFrame(sorted(rows, key=lambda r: r["clip_id"]), columns=INDEX_COLUMNS)
    _write_text(out_dir / "index.csv", df.to_csv(index=False))
    return df
