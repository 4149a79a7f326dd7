"""The evaluate stage: G_L on the test split, scored with the metrics of P1 appendix D and P2 §4.1.

For every test clip (data/splits/test.txt, frames from data/clips, mels from data/mels):
1. the clip is tiled with k-frame windows (starts 0, k, 2k, ..., the last one moved back to end at T);
2. each window gets the generator inputs of training (docs/architecture.md): pose = the target frames with the lower
   half zeroed; identity reference = k frames of another, non-overlapping part of the same clip, drawn from
   (seed, clip id, window start), so every run and every experiment sees the same references; per-frame mel windows
   centred on their frame (clamped / edge-padded at the clip ends);
3. when the G_L checkpoint says it was trained with silent-lip references, the identity reference first goes through
   G_S with the mel of digital silence (P1: G_L is trained and run with G_S(identity));
4. the generated frames are quantised to uint8 (what a video holds) and written, with the clip's audio, to
   data/eval/videos/<clip>.mp4.

Three groups are scored with the same code on the same clips:
- `model`:   generated frames vs ground truth;
- `ceiling`: ground truth vs itself (SSIM 1, PSNR = the cap, IFC 0, LMD 0, FID ~0, AVSm = AVSv = 1 by construction;
             LSE-C/D and AVSu of the real video are the informative part: how well a real video scores);
- `floor`:   a no-learning baseline. "paste" (default): the upper half of the ground truth with the lower half of the
             identity reference pasted in: right pose and identity, lips from another moment, so any sync score above
             the floor is learned. "masked": the pose input itself (lower half black).

Metrics and where they are averaged (the number of clips each mean covers is recorded):
- SSIM, PSNR (psnr capped at `psnr_max_db` so identical frames give a finite number), IFC, LMD, LSE, AVS: one value
  per clip, overall = mean over clips;
- FID: one value over all frames of the set (real = every ground-truth frame, pytorch-fid protocol); needs the
  InceptionV3 weights;
- LMD: mouth landmarks 48-67 of the generated frames and of the ground truth from the same detector [ours: FAN, or
  dlib's 68-point predictor offline (`landmarker`, faces.crop_landmarks), run on the crops, `lmd_reference: detector`,
  the paper's "extract landmarks from generated and ground truth images"; or the clip store's landmarks as ground
  truth, `lmd_reference: store`], distances measured at `lmd_eval_size` px. dlib's model was trained on real faces:
  on the synthetic cartoons its points are not trusted, so the default pipeline keeps `landmarker: fan`;
- LSE-C/LSE-D: syncnet_v2 (official weights) under the keys "LSE-C"/"LSE-D"; the same algorithm with the project's
  own SyncNet under separate keys "LSE-C (talkface-syncnet)"/"LSE-D (talkface-syncnet)", never mixed. Framing
  (`lse_framing`, metrics/lse_framing.py): "reference" scores syncnet_python's 224-px windows of the full frames:
  each group's crops are pasted back into the clip's source frames (decoded again, hard paste at the clip's boxes,
  the ground truth too), and the windows are cut around the median-filtered clip boxes, which stand in for
  syncnet_python's S3FD track (no S3FD offline); a clip whose source video is missing falls back to "crop" (recorded
  in run.lse_framing_fallbacks). "crop" scores the store's crops as they are (resized to 224 for syncnet_v2). Our
  SyncNet gets `lse_expert_framing`, by default "crop": it was trained on the lower half of these crops, while the
  lower half of a reference window starts 0.2 box sides below the box centre (near the mouth) and is 1.4 boxes wide;
- AVSu/AVSm/AVSv: AV-HuBERT features of mouth ROIs cut with the clip's landmarks (ground truth and generated frames
  alike: the generator keeps the pose of the upper face, which is what the alignment uses).
A metric that cannot be computed is the string "not available: <reason>".
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
import zlib
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch
from tqdm import tqdm

from .data.mel import mel_start
from .data.windows import read_split
from .metrics import NotAvailable
from .metrics.image import frames_to_batch, psnr, ssim
from .metrics.landmarks import lmd
from .metrics.mouth import mouth_opening, opening_correlation
from .metrics.lse_framing import framing_label
from .metrics.temporal import ifc

GROUPS = ("model", "ceiling", "floor")
LSE_OFFICIAL_KEYS = ("LSE-C", "LSE-D")
LSE_EXPERT_KEYS = ("LSE-C (talkface-syncnet)", "LSE-D (talkface-syncnet)")
AVS_KEYS = ("AVSu", "AVSm", "AVSv")
# MouthCorr [ours]: per-clip Pearson r of the mouth opening (inner-lip gap / inter-ocular distance, metrics.mouth) of
# a group's frames with the ground truth's, from the same landmark detector as LMD
PER_CLIP_KEYS = ("SSIM", "PSNR", "IFC", "LMD", "MouthCorr", *LSE_OFFICIAL_KEYS, *LSE_EXPERT_KEYS, *AVS_KEYS)
METRIC_KEYS = ("SSIM", "PSNR", "FID", "IFC", "LMD", "MouthCorr", *LSE_OFFICIAL_KEYS, *LSE_EXPERT_KEYS, *AVS_KEYS)
FLOORS = ("paste", "masked")

# Outputs, relative to the repository root (docs/architecture.md).
EVAL_JSON = Path("metrics/eval.json")
PER_CLIP_CSV = Path("metrics/eval_per_clip.csv")
FRAMES_CSV = Path("plots/eval_frames.csv")
LSE_CURVES_CSV = Path("plots/eval_lse_offsets.csv")
SAMPLES_PNG = Path("plots/eval_samples.png")


@dataclasses.dataclass
class EvaluateConfig:
    seed: int = 0                          # identity-reference draw
    generator: str = "models/generator.pt"  # G_L checkpoint
    silent_generator: str = "models/silent.pt"  # G_S, used when G_L was trained with silent references
    clips_dir: str = "data/clips"
    mels_dir: str = "data/mels"
    split: str = "data/splits/test.txt"
    max_clips: int = 0                     # 0 = every clip of the split
    batch_size: int = 32                   # windows per generator forward
    device: str = "auto"                   # auto | cpu | cuda | cuda:N
    write_videos: bool = True
    videos_dir: str = "data/eval/videos"
    video_crf: int = 18
    floor: str = "paste"                   # paste | masked (see the module docstring)
    psnr_max_db: float = 100.0             # cap for identical frames (the ceiling)
    ifc_norm: str = "rms"                  # rms | l2 | mean_abs (metrics.temporal)
    lmd_reference: str = "detector"        # detector: FAN on GT crops too | store: data/clips/<id>/landmarks.npy
    lmd_eval_size: int = 96                # LMD is reported in pixels of a crop of this side
    landmarker: str = "auto"               # auto (fan when cached, else dlib) | fan | dlib | none: landmarks on crops
    fid_weights: str = ""                  # pt_inception-2015-12-05-6726825d.pth; "" = torch hub cache
    fid_batch_size: int = 50
    syncnet_v2: str = ""                   # official syncnet_v2.model; "" = torch hub cache
    lse_expert: str = "models/syncnet.pt"  # our SyncNet for the labelled LSE variant; "" = skip
    lse_vshift: int = 15
    lse_framing: str = "reference"         # what syncnet_v2 scores: reference | crop (module docstring)
    lse_expert_framing: str = "crop"       # what our SyncNet scores: crop (as trained) | reference
    lse_median_kernel: int = 13            # reference framing: median filter over the box track, frames
    lse_crop_scale: float = 0.4            # reference framing: syncnet_python's crop_scale
    lse_window_size: int = 224             # reference framing: window side, px
    lse_pad_value: int = 110               # reference framing: value outside the frame
    lse_jpeg: bool = True                  # reference framing: JPEG round trip of the full frames first
    lse_jpeg_quality: int = 95             # OpenCV's default
    avhubert: str = ""                     # AV-HuBERT checkpoint (P2: lip-reading fine-tuned); "" = not available
    silent_reference: str = "auto"         # auto: as G_L was trained (its checkpoint) | always | never
    sample_clips: int = 3                  # clips shown in plots/eval_samples.png
    sample_frames: int = 4                 # frames per sample clip


# ---------------------------------------------------------------------------------------------- windows and inputs
def window_starts(n_frames: int, k: int) -> list[int]:
    """Starts of the k-frame windows that tile [0, n_frames): 0, k, 2k, ..., with the last one ending at n_frames."""
    if n_frames < k:
        raise ValueError(f"a clip of {n_frames} frames is shorter than one {k}-frame window")
    starts = list(range(0, n_frames - k + 1, k))
    if starts[-1] + k < n_frames:
        starts.append(n_frames - k)
    return starts


def identity_start(clip_id: str, start: int, n_frames: int, k: int, seed: int) -> int:
    """A window start in [0, n_frames - k] whose window does not overlap [start, start + k), drawn from
    (seed, clip id, start): the same reference in every run."""
    choices = [s for s in range(n_frames - k + 1) if s + k <= start or s >= start + k]
    if not choices:
        raise ValueError(f"clip {clip_id}: {n_frames} frames leave no identity window apart from frame {start}")
    rng = np.random.default_rng([seed, zlib.crc32(clip_id.encode()), start])
    return int(choices[int(rng.integers(len(choices)))])


def mel_window(mel: np.ndarray, frame: int, steps: int = 16) -> np.ndarray:
    """[T_mel,80] -> [1,80,steps], the window for a k-frame window starting at `frame` (negative starts clamp to 0,
    windows past the end repeat the last mel frame)."""
    s = max(0, mel_start(frame))
    w = mel[s:s + steps]
    if len(w) == 0:
        w = mel[-1:]
    if len(w) < steps:
        w = np.concatenate([w, np.repeat(w[-1:], steps - len(w), axis=0)])
    return np.ascontiguousarray(w.T, dtype=np.float32)[None]


def frame_mels(mel: np.ndarray, frames: range, k: int) -> np.ndarray:
    """Per-frame windows centred on each frame (frame j: the window starting at j - k//2) -> [n,1,80,16]."""
    return np.stack([mel_window(mel, j - k // 2) for j in frames])


def to_tensor(frames: np.ndarray) -> torch.Tensor:
    """uint8 [..., S, S, 3] -> float [..., 3, S, S] in [0, 1]."""
    t = torch.from_numpy(np.ascontiguousarray(frames))
    return t.movedim(-1, -3).float().div_(255.0)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """float [..., 3, S, S] in [0, 1] -> uint8 [..., S, S, 3] (rounded, as a video stores it)."""
    return frames.detach().clamp(0, 1).mul(255).round().to(torch.uint8).movedim(-3, -1).cpu().numpy()


def mask_lower_half(frames: np.ndarray) -> np.ndarray:
    out = np.array(frames, copy=True)
    out[:, out.shape[1] // 2:] = 0
    return out


def floor_frames(gt: np.ndarray, identity: np.ndarray, kind: str) -> np.ndarray:
    """The no-learning baseline frames [T,S,S,3] (module docstring)."""
    if kind == "masked":
        return mask_lower_half(gt)
    if kind == "paste":
        out = np.array(gt, copy=True)
        h = out.shape[1] // 2
        out[:, h:] = identity[:, h:]
        return out
    raise ValueError(f"evaluate.floor must be one of {FLOORS}, got {kind!r}")


# ---------------------------------------------------------------------------------------------- generation
@dataclasses.dataclass
class Generators:
    """G_L and, when G_L was trained with silent-lip references, G_S and the silent mel window [1,80,16]."""

    lip: torch.nn.Module
    k: int
    face_size: int
    silent: torch.nn.Module | None = None
    silent_mel: np.ndarray | None = None
    info: dict = dataclasses.field(default_factory=dict)


@torch.no_grad()
def generate_clip(gens: Generators, frames: np.ndarray, mel: np.ndarray, clip_id: str, seed: int,
                  batch_size: int, device: torch.device) -> dict[str, np.ndarray]:
    """Run G_L over one clip. frames uint8 [T,S,S,3], mel [T_mel,80] -> uint8 arrays [T,S,S,3]:
    `generated`, `identity` (the raw identity reference frame used for each frame) and `silent_ref` (its G_S version,
    only when G_S is used)."""
    k, n = gens.k, len(frames)
    if frames.shape[1:] != (gens.face_size, gens.face_size, 3):
        raise ValueError(f"clip {clip_id}: frames {frames.shape[1:]} do not match the generator's "
                         f"{gens.face_size}px faces")
    starts = window_starts(n, k)
    generated = np.empty_like(frames)
    identity = np.empty_like(frames)
    silent_ref = np.empty_like(frames) if gens.silent is not None else None
    for b in range(0, len(starts), batch_size):
        batch = starts[b:b + batch_size]
        refs = [identity_start(clip_id, f, n, k, seed) for f in batch]
        target = np.stack([frames[f:f + k] for f in batch])                 # [B,k,S,S,3]
        ident = np.stack([frames[g:g + k] for g in refs])
        pose = to_tensor(mask_lower_half(target.reshape(-1, *target.shape[2:])).reshape(target.shape)).to(device)
        ident_t = to_tensor(ident).to(device)
        mels = torch.from_numpy(np.stack([frame_mels(mel, range(f, f + k), k) for f in batch])).to(device)
        if gens.silent is not None:
            silent_mels = torch.from_numpy(np.broadcast_to(gens.silent_mel, (len(batch), k, *gens.silent_mel.shape))
                                           .copy()).to(device)
            ident_masked = ident_t.clone()
            ident_masked[..., ident_masked.shape[-2] // 2:, :] = 0
            ident_t = gens.silent(ident_masked, ident_t, silent_mels)
        out = to_uint8(gens.lip(pose, ident_t, mels))                       # [B,k,S,S,3]
        for i, (f, g) in enumerate(zip(batch, refs)):
            generated[f:f + k] = out[i]
            identity[f:f + k] = frames[g:g + k]
            if silent_ref is not None:
                silent_ref[f:f + k] = to_uint8(ident_t[i])
    return {"generated": generated, "identity": identity, "silent_ref": silent_ref}


# ---------------------------------------------------------------------------------------------- scorers
@dataclasses.dataclass
class Scorers:
    """Everything that needs weights; each entry is a ready object or NotAvailable(reason)."""

    fid: Any = NotAvailable("FID not available: not set up")  # images [B,3,H,W] in [0,1] -> features [B,D]
    lse_official: Any = NotAvailable("LSE (syncnet_v2) not available: not set up")
    lse_expert: Any = NotAvailable("LSE (talkface-syncnet) not available: not set up")
    avhubert: Any = NotAvailable("AV-HuBERT not available: not set up")
    # (frames [T,S,S,3], reference landmarks [T,68,2]) -> landmarks [T,68,2] (faces.crop_landmarks)
    landmarker: Callable[[np.ndarray, np.ndarray], np.ndarray] | NotAvailable = NotAvailable(
        "LMD not available: not set up")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def build_scorers(cfg: EvaluateConfig, root: Path, device: torch.device) -> Scorers:
    """Load every scorer whose weights are present; the others become NotAvailable with the reason."""
    from .metrics.lse import LSEScorer
    from .weights import WeightsNotAvailable

    s = Scorers()
    try:
        from .models.inception import load_fid_inception

        s.fid = load_fid_inception(cfg.fid_weights or None, device)
    except WeightsNotAvailable as e:
        s.fid = NotAvailable(str(e))
    try:
        s.lse_official = LSEScorer.from_official(cfg.syncnet_v2 or None, device, vshift=cfg.lse_vshift)
    except WeightsNotAvailable as e:
        s.lse_official = NotAvailable(str(e))
    if not cfg.lse_expert:
        s.lse_expert = NotAvailable("talkface-syncnet not available: evaluate.lse_expert is empty")
    elif not (root / cfg.lse_expert).is_file():
        s.lse_expert = NotAvailable(f"talkface-syncnet not available: no expert checkpoint at {cfg.lse_expert}")
    else:
        from .models import load_expert

        s.lse_expert = LSEScorer.from_expert(load_expert(root / cfg.lse_expert, "cpu"), device, vshift=cfg.lse_vshift)
    from .metrics.avs import load_avhubert

    s.avhubert = load_avhubert(cfg.avhubert or None, device)
    from .faces.crop_landmarks import make_crop_landmarker
    from .faces.detect import FaceDetectorUnavailable

    try:
        s.landmarker = make_crop_landmarker(cfg.landmarker, str(device))
    except FaceDetectorUnavailable as e:
        s.landmarker = NotAvailable(f"LMD not available: no landmark detector for generated frames ({e})")
    return s


# ---------------------------------------------------------------------------------------------- per-clip metrics
def image_metrics(gen: np.ndarray, gt: np.ndarray, psnr_max_db: float, ifc_norm: str,
                  chunk: int = 64) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """SSIM, PSNR (means over frames) and IFC of one clip, plus the per-frame SSIM and PSNR [T]."""
    s, p = [], []
    for i in range(0, len(gen), chunk):
        a, b = frames_to_batch(gen[i:i + chunk]), frames_to_batch(gt[i:i + chunk])
        s.append(ssim(a, b))
        p.append(psnr(a, b, max_db=psnr_max_db))
    s_all, p_all = torch.cat(s).numpy(), torch.cat(p).numpy()
    out = {"SSIM": float(s_all.mean()), "PSNR": float(p_all.mean())}
    out["IFC"] = ifc(frames_to_batch(gen), frames_to_batch(gt), ifc_norm) if len(gen) >= 2 else math.nan
    return out, s_all, p_all


def lse_metrics(scorer, frames: np.ndarray, audio: np.ndarray, keys: tuple[str, str]) -> tuple[dict, list | None]:
    """{LSE-C key: conf, LSE-D key: min_dist} for one clip (or NotAvailable values) and the distance curve."""
    if isinstance(scorer, NotAvailable):
        return {keys[0]: scorer, keys[1]: scorer}, None
    try:
        r = scorer.score(frames, audio)
    except ValueError as e:  # too short for a 5-frame window
        na = NotAvailable(f"{keys[0]} not available: {e}")
        return {keys[0]: na, keys[1]: na}, None
    return {keys[0]: r["conf"], keys[1]: r["min_dist"]}, r["curve"]


LSE_FRAMINGS = ("reference", "crop")


def lse_views(cfg: EvaluateConfig, root: Path, clip, videos: dict[str, np.ndarray],
              scorers: Scorers) -> tuple[dict[str, dict[str, np.ndarray]], str | None]:
    """The frames of each group under each LSE framing, {"crop": videos, "reference": 224-px windows}, and why the
    reference framing fell back to the crops for this clip (None when it did not, or no scorer needs it)."""
    from .metrics.lse_framing import SourceUnavailable, clip_reference_windows

    views = {"crop": videos}
    if not any(framing == "reference" and not isinstance(s, NotAvailable) for s, framing in
               ((scorers.lse_official, cfg.lse_framing), (scorers.lse_expert, cfg.lse_expert_framing))):
        return {**views, "reference": videos}, None  # no scorer will look at it
    try:
        video = clip.meta.get("video")
        if not video:
            raise SourceUnavailable("the clip's meta.json names no source video")
        views["reference"] = clip_reference_windows(
            Path(video) if Path(video).is_absolute() else root / video, float(clip.meta.get("fps", 25)), clip.boxes,
            videos, cfg.lse_median_kernel, cfg.lse_crop_scale, cfg.lse_window_size, cfg.lse_pad_value, cfg.lse_jpeg,
            cfg.lse_jpeg_quality, clip.meta.get("source_size"))
    except SourceUnavailable as e:
        views["reference"] = videos
        return views, str(e)
    return views, None


class ClipAVS:
    """AVSu/AVSm/AVSv of one clip's groups, sharing the passes that do not depend on the group: the ground truth's
    visual and audio-visual features and the audio-only features are computed once per clip (P2 eqs. 4-6)."""

    def __init__(self, model, lips_gt: np.ndarray | None, audio_feats: np.ndarray | None):
        self.model, self.lips_gt = model, lips_gt
        self.na = model if isinstance(model, NotAvailable) else (
            NotAvailable("AVS not available: the clip has no landmarks to cut mouth ROIs") if lips_gt is None else None)
        if self.na is None:
            from .metrics.avs import features

            self.audio_feats = audio_feats
            self.aud = features(model, None, audio_feats)
            self.gt_v = features(model, lips_gt, None)
            self.gt_av = features(model, lips_gt, audio_feats)

    def scores(self, lips: np.ndarray | None) -> dict:
        """lips: the group's ROIs [T,1,88,88], or None for the ground truth itself."""
        if self.na is not None:
            return {k: self.na for k in AVS_KEYS}
        from .metrics.avs import cosine_over_time, features

        gen_v = self.gt_v if lips is None else features(self.model, lips, None)
        gen_av = self.gt_av if lips is None else features(self.model, lips, self.audio_feats)
        return {"AVSu": cosine_over_time(gen_v, self.aud), "AVSm": cosine_over_time(gen_av, self.gt_av),
                "AVSv": cosine_over_time(gen_v, self.gt_v)}


def lip_rois(frames: np.ndarray, landmarks: np.ndarray) -> np.ndarray | None:
    """AV-HuBERT input [T,1,88,88] of a clip, or None when no frame has landmarks."""
    from .faces.mouth_roi import lip_input, mouth_rois

    if not np.isfinite(landmarks).all(axis=(1, 2)).any():
        return None
    return lip_input(mouth_rois(frames, landmarks))


# ---------------------------------------------------------------------------------------------- summaries
def summarize(values: list, what: str) -> float | str:
    """Mean of the numeric per-clip values; "not available: ..." when there is none (the first reason given)."""
    nums = [float(v) for v in values if not isinstance(v, NotAvailable) and v is not None and math.isfinite(v)]
    if nums:
        return float(np.mean(nums))
    reasons = [v.reason for v in values if isinstance(v, NotAvailable)]
    if reasons:
        return reasons[0]
    return f"{what} not available: no clip gave a finite value"


def _cell(v) -> str:
    if isinstance(v, NotAvailable) or v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _as_json_value(v):
    if isinstance(v, NotAvailable):
        return v.reason if "not available" in v.reason else f"not available: {v.reason}"
    if isinstance(v, str):
        return v if "not available" in v else f"not available: {v}"
    return float(v)


def sample_grid(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile equal-size uint8 images [S,S,3]: rows of columns, white gaps -> uint8 [H,W,3]."""
    s = rows[0][0].shape[0]
    n_cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (s + gap) - gap, n_cols * (s + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            out[i * (s + gap):i * (s + gap) + s, j * (s + gap):j * (s + gap) + s] = img
    return out


# ---------------------------------------------------------------------------------------------- the stage
def evaluate(cfg: EvaluateConfig, root: str | Path = ".", gens: Generators | None = None,
             scorers: Scorers | None = None) -> dict:
    """Run the evaluation and write its outputs under `root`. Returns the eval.json content.

    `gens` / `scorers`: pass prepared ones (tests); by default they are loaded from the checkpoints in `cfg`.
    """
    t_start = time.perf_counter()
    root = Path(root)
    if cfg.floor not in FLOORS:
        raise ValueError(f"evaluate.floor must be one of {FLOORS}, got {cfg.floor!r}")
    if cfg.lmd_reference not in ("detector", "store"):
        raise ValueError(f"evaluate.lmd_reference must be 'detector' or 'store', got {cfg.lmd_reference!r}")
    for name in ("lse_framing", "lse_expert_framing"):
        if getattr(cfg, name) not in LSE_FRAMINGS:
            raise ValueError(f"evaluate.{name} must be one of {LSE_FRAMINGS}, got {getattr(cfg, name)!r}")
    device = resolve_device(cfg.device)
    if gens is None:
        gens = load_generators(cfg, root, device)
    if scorers is None:
        scorers = build_scorers(cfg, root, device)

    from .data.store import read_clip
    from .metrics.fid import FeatureStats, fid_from_stats

    clip_ids = read_split(root / cfg.split)
    if cfg.max_clips > 0:
        clip_ids = clip_ids[:cfg.max_clips]
    if not clip_ids:
        raise ValueError(f"no clips in {cfg.split}")
    # Feature statistics per set, sized on the first batch (2048 for the FID Inception).
    fid_stats: dict[str, FeatureStats] | None = None if isinstance(scorers.fid, NotAvailable) else {}
    per_clip: dict[str, list[dict]] = {g: [] for g in GROUPS}
    frame_rows: list[list] = []
    curves: dict[tuple[str, str], list[np.ndarray]] = {}
    samples: list[list[np.ndarray]] = []
    skipped: list[dict] = []
    lse_fallbacks: list[dict] = []
    gen_seconds, gen_frames = 0.0, 0
    videos_dir = root / cfg.videos_dir
    if cfg.write_videos:
        videos_dir.mkdir(parents=True, exist_ok=True)

    for clip_id in tqdm(clip_ids, desc="evaluate", unit="clip"):
        try:
            clip = read_clip(root / cfg.clips_dir, clip_id, mmap=True)
            mel = np.load(root / cfg.mels_dir / f"{clip_id}.npy")
        except FileNotFoundError as e:
            skipped.append({"clip_id": clip_id, "reason": str(e)})
            continue
        gt = np.array(clip.frames)  # into memory: every metric reads it several times
        audio = np.asarray(clip.audio, np.float32)
        if len(gt) < 2 * gens.k:
            skipped.append({"clip_id": clip_id, "reason": f"{len(gt)} frames < 2k = {2 * gens.k} (no separate "
                                                          f"identity reference)"})
            continue
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = generate_clip(gens, gt, mel, clip_id, cfg.seed, cfg.batch_size, device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        gen_seconds += time.perf_counter() - t0
        gen_frames += len(gt)
        videos = {"model": out["generated"], "ceiling": gt, "floor": floor_frames(gt, out["identity"], cfg.floor)}

        if cfg.write_videos:
            from .media.encode import write_video

            write_video(videos_dir / f"{clip_id}.mp4", out["generated"], fps=float(clip.meta.get("fps", 25)),
                        audio=audio, sample_rate=int(clip.meta.get("sample_rate", 16000)), crf=cfg.video_crf)

        # Landmarks: ground truth from the store or from the detector, generated ones from the detector.
        store_lms = np.asarray(clip.landmarks, np.float32)
        lms: dict[str, np.ndarray | NotAvailable] = {}
        if isinstance(scorers.landmarker, NotAvailable):
            gt_lms = store_lms if cfg.lmd_reference == "store" else scorers.landmarker
            lms = {"ceiling": gt_lms, "model": scorers.landmarker, "floor": scorers.landmarker}
        else:
            gt_lms = store_lms if cfg.lmd_reference == "store" else scorers.landmarker(gt, store_lms)
            lms = {"ceiling": gt_lms, "model": scorers.landmarker(videos["model"], store_lms),
                   "floor": scorers.landmarker(videos["floor"], store_lms)}
        size = gt.shape[1]

        lips_gt = audio_feats = None
        if not isinstance(scorers.avhubert, NotAvailable):
            from .models.avhubert import audio_features

            lips_gt = lip_rois(gt, store_lms)
            audio_feats = audio_features(audio, n_frames=len(gt))
        clip_avs = ClipAVS(scorers.avhubert, lips_gt, audio_feats)
        lse_frames, fallback = lse_views(cfg, root, clip, videos, scorers)
        if fallback is not None:
            lse_fallbacks.append({"clip_id": clip_id, "reason": fallback})

        for group, frames in videos.items():
            row: dict[str, Any] = {"clip_id": clip_id, "group": group, "n_frames": len(frames)}
            img, s_frames, p_frames = image_metrics(frames, gt, cfg.psnr_max_db, cfg.ifc_norm)
            row.update(img)
            if group != "ceiling":
                frame_rows.extend([clip_id, group, t, float(s_frames[t]), float(p_frames[t])]
                                  for t in range(len(frames)))
            if isinstance(gt_lms, NotAvailable) or isinstance(lms[group], NotAvailable):
                row["LMD"] = gt_lms if isinstance(gt_lms, NotAvailable) else lms[group]
            else:
                row["LMD"] = lmd(lms[group], gt_lms, size, cfg.lmd_eval_size)
            if isinstance(row["LMD"], NotAvailable):
                row["MouthCorr"] = NotAvailable(row["LMD"].reason.replace("LMD", "MouthCorr", 1))
            else:
                row["MouthCorr"] = opening_correlation(mouth_opening(lms[group]), mouth_opening(gt_lms))
            for scorer, keys, framing in ((scorers.lse_official, LSE_OFFICIAL_KEYS, cfg.lse_framing),
                                          (scorers.lse_expert, LSE_EXPERT_KEYS, cfg.lse_expert_framing)):
                vals, curve = lse_metrics(scorer, lse_frames[framing][group], audio, keys)
                row.update(vals)
                if curve is not None:
                    curves.setdefault((group, keys[0]), []).append(np.asarray(curve))
            if clip_avs.na is not None or group == "ceiling":
                row.update(clip_avs.scores(None))
            else:
                row.update(clip_avs.scores(lip_rois(frames, store_lms)))
            per_clip[group].append(row)

        if fid_stats is not None:
            for group, frames in (("real", gt), ("model", videos["model"]), ("floor", videos["floor"])):
                for i in range(0, len(frames), cfg.fid_batch_size):
                    with torch.no_grad():
                        feats = scorers.fid(frames_to_batch(frames[i:i + cfg.fid_batch_size]).to(device))
                    fid_stats.setdefault(group, FeatureStats(feats.shape[1])).update(feats)

        if len(samples) < cfg.sample_clips * cfg.sample_frames:
            for t in np.linspace(0, len(gt) - 1, cfg.sample_frames).round().astype(int):
                row = [gt[t], out["identity"][t]]
                if out["silent_ref"] is not None:
                    row.append(out["silent_ref"][t])
                row += [out["generated"][t], videos["floor"][t]]
                samples.append(row)

    if not per_clip["model"]:
        raise ValueError(f"no test clip could be evaluated ({len(skipped)} skipped: "
                         f"{skipped[0]['reason'] if skipped else 'empty split'})")

    # Overall numbers per group.
    result: dict[str, Any] = {}
    for group in GROUPS:
        rows = per_clip[group]
        g = {key: _as_json_value(summarize([r[key] for r in rows], key)) for key in PER_CLIP_KEYS}
        if fid_stats is None:
            g["FID"] = _as_json_value(scorers.fid)
        elif group == "ceiling":
            g["FID"] = fid_from_stats(fid_stats["real"], fid_stats["real"])
        else:
            try:
                g["FID"] = fid_from_stats(fid_stats["real"], fid_stats[group])
            except ValueError as e:
                g["FID"] = f"FID not available: {e}"
        result[group] = {key: g[key] for key in METRIC_KEYS}
        result[group]["n_clips"] = len(rows)
    n_frames = sum(r["n_frames"] for r in per_clip["model"])
    total = time.perf_counter() - t_start
    result["run"] = {
        "n_clips": len(per_clip["model"]), "n_frames": n_frames, "skipped": skipped,
        "generate_frames_per_s": gen_frames / gen_seconds if gen_seconds > 0 else None,
        "evaluate_frames_per_s": n_frames / total if total > 0 else None,
        "seconds": total, "device": str(device),
        "floor": cfg.floor, "psnr_max_db": cfg.psnr_max_db, "ifc_norm": cfg.ifc_norm,
        "lmd_reference": cfg.lmd_reference, "lmd_eval_size": cfg.lmd_eval_size,
        "lse_official_scorer": None if isinstance(scorers.lse_official, NotAvailable) else scorers.lse_official.source,
        "lse_expert_scorer": None if isinstance(scorers.lse_expert, NotAvailable) else scorers.lse_expert.source,
        "lse_framing": framing_label(cfg.lse_framing, len(lse_fallbacks), len(per_clip["model"])),
        "lse_expert_framing": framing_label(cfg.lse_expert_framing, len(lse_fallbacks), len(per_clip["model"])),
        "lse_framing_fallbacks": lse_fallbacks,
        "lse_reference_framing": {
            "boxes": "the clip store's crop boxes (crop stage detector + crop.pads, squared, smoothed) in place of "
                     "syncnet_python's S3FD track; crops pasted back at them (hard paste, feather 0)",
            "median_kernel": cfg.lse_median_kernel, "crop_scale": cfg.lse_crop_scale,
            "window_size": cfg.lse_window_size, "pad_value": cfg.lse_pad_value,
            "jpeg_quality": cfg.lse_jpeg_quality if cfg.lse_jpeg else None},
        "generator": gens.info,
        "groups": {
            "model": "G_L output vs ground truth",
            "ceiling": "ground truth vs itself (real-video LSE/AVSu; the others are identities)",
            "floor": ("ground-truth upper half + identity-reference lower half" if cfg.floor == "paste"
                      else "pose input: ground truth with the lower half masked"),
        },
    }
    _write_outputs(root, result, per_clip, frame_rows, curves, samples)
    return result


def _write_outputs(root: Path, result: dict, per_clip: dict, frame_rows: list, curves: dict,
                   samples: list) -> None:
    for rel in (EVAL_JSON, PER_CLIP_CSV, FRAMES_CSV, LSE_CURVES_CSV):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / EVAL_JSON).write_text(json.dumps(result, indent=2, allow_nan=False))
    with open(root / PER_CLIP_CSV, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "group", "n_frames", *PER_CLIP_KEYS])
        for group in GROUPS:
            for r in per_clip[group]:
                w.writerow([r["clip_id"], group, r["n_frames"], *[_cell(r[k]) for k in PER_CLIP_KEYS]])
    with open(root / FRAMES_CSV, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "group", "frame", "ssim", "psnr"])
        w.writerows([c, g, t, f"{s:.6g}", f"{p:.6g}"] for c, g, t, s, p in frame_rows)
    with open(root / LSE_CURVES_CSV, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scorer", "group", "offset", "mean_dist"])
        for (group, key), cs in sorted(curves.items()):
            mean = np.mean(np.stack(cs), axis=0)
            vshift = (len(mean) - 1) // 2
            scorer = "syncnet_v2" if key == LSE_OFFICIAL_KEYS[0] else "talkface-syncnet"
            # curve index j compares video v with audio v + j - vshift; syncnet_python's offset is vshift - j
            w.writerows([scorer, group, vshift - j, f"{d:.6g}"] for j, d in enumerate(mean))
    png = root / SAMPLES_PNG
    if samples:
        cv2.imwrite(str(png), cv2.cvtColor(sample_grid(samples), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    elif png.exists():
        png.unlink()


# ---------------------------------------------------------------------------------------------- checkpoints
def silent_mel_window(steps: int = 16) -> np.ndarray:
    """The mel of digital silence, one window [1,80,steps] (METHOD.md §1: every bin at the floor value)."""
    from .data.mel import melspectrogram

    mel = melspectrogram(np.zeros(16000, np.float32))
    return np.ascontiguousarray(mel[:steps].T)[None]


def load_generators(cfg: EvaluateConfig, root: Path, device: torch.device) -> Generators:
    """G_L from `cfg.generator`, and G_S from `cfg.silent_generator` when G_L was trained with silent-lip references
    (the checkpoint says so; `cfg.silent_reference` can force it on or off)."""
    from .models import generator_io

    if cfg.silent_reference not in ("auto", "always", "never"):
        raise ValueError(f"evaluate.silent_reference must be auto, always or never, got {cfg.silent_reference!r}")
    path = root / cfg.generator
    if not path.is_file():
        raise FileNotFoundError(f"G_L checkpoint not found: {path} (run the train_generator stage first)")
    g_l = generator_io.load_generator(path, map_location=device)
    trained_with_silent = generator_io.uses_silent_reference(g_l)
    use_silent = {"auto": trained_with_silent, "always": True, "never": False}[cfg.silent_reference]
    g_s = None
    if use_silent:
        s_path = root / cfg.silent_generator
        if not s_path.is_file():
            raise FileNotFoundError(f"G_S checkpoint not found: {s_path}, and G_L was trained with silent-lip "
                                    "references (set evaluate.silent_reference: never to run without)")
        g_s = generator_io.load_generator(s_path, map_location=device).to(device).eval()
    info = {"checkpoint": cfg.generator, "trained_with_silent_reference": trained_with_silent,
            "silent_reference_used": use_silent,
            "audio_source": g_l.audio.get("source")}
    return Generators(g_l.to(device).eval(), g_l.cfg.k, g_l.cfg.face_size, g_s,
                      silent_mel_window() if g_s is not None else None, info)
