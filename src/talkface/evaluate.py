"""The evaluate stage: G_L on the test split, scored with the metrics of P1 appendix D and P2 §4.1.

For every test clip (evaluate.split, frames from evaluate.clips_dir, mels from evaluate.mels_dir), three steps, each
in its module of talkface.evaluation:
1. generate (evaluation/generate.py): the clip is tiled with k-frame windows (starts 0, k, 2k, ..., the last one
   moved back to end at T); each window gets the generator inputs of training, built by talkface.model_inputs: the
   pose input (lower half zeroed); the identity reference, k frames of another, non-overlapping part of the same
   clip drawn from (seed, clip id, window start), so every run and every experiment sees the same references;
   per-frame mel windows centred on their frame (clamped at the clip ends). When the G_L checkpoint says it was
   trained with silent-lip references, the identity reference first goes through G_S with the mel of digital
   silence (P1: G_L is trained and run with G_S(identity)). The generated frames are quantised to uint8 (what a
   video holds) and written, with the clip's audio, to <videos_dir>/<clip>.mp4;
2. score (evaluation/score.py): every metric of the clip's groups;
3. write (evaluation/write.py): overall numbers, eval.json, the CSVs and the sample grid.

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

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from .data.mel import MelConfig
from .data.windows import read_split
from .devices import resolve_device
from .evaluation.generate import FLOORS, Generators, floor_frames, generate_clip, load_generators
from .evaluation.score import GROUPS, FidSets, Scorers, ScorerSettings, build_scorers, score_clip
from .evaluation.write import EvaluateOutputs, group_results, write_outputs
from .metrics import NotAvailable
from .metrics.lse_framing import framing_label
from .model_inputs import WindowConfig

LSE_FRAMINGS = ("reference", "crop")

__all__ = ["EvaluateConfig", "EvaluateOutputs", "Generators", "Scorers", "evaluate"]


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
    sample_clips: int = 3                  # clips shown in the sample grid
    sample_frames: int = 4                 # frames per sample clip
    # passed down by the stage (defined once elsewhere): the training windows and mel parameters
    window: WindowConfig = dataclasses.field(default_factory=WindowConfig)
    mel: MelConfig = dataclasses.field(default_factory=MelConfig)

    def scorer_settings(self, root: Path) -> ScorerSettings:
        return ScorerSettings(self.fid_weights, self.syncnet_v2, root / self.lse_expert if self.lse_expert else None,
                              self.lse_vshift, self.avhubert, self.landmarker)


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


def evaluate(cfg: EvaluateConfig, outputs: EvaluateOutputs, root: str | Path = ".", gens: Generators | None = None,
             scorers: Scorers | None = None) -> dict:
    """Run the evaluation and write `outputs` (paths relative to `root`). Returns the eval.json content.

    `gens` / `scorers`: pass prepared ones (tests); by default they are loaded from the checkpoints in `cfg`.
    """
    t_start = time.perf_counter()
    root = Path(root)
    out = dataclasses.replace(outputs, **{f.name: root / getattr(outputs, f.name)
                                          for f in dataclasses.fields(outputs) if getattr(outputs, f.name)})
    if cfg.floor not in FLOORS:
        raise ValueError(f"evaluate.floor must be one of {FLOORS}, got {cfg.floor!r}")
    if cfg.lmd_reference not in ("detector", "store"):
        raise ValueError(f"evaluate.lmd_reference must be 'detector' or 'store', got {cfg.lmd_reference!r}")
    for name in ("lse_framing", "lse_expert_framing"):
        if getattr(cfg, name) not in LSE_FRAMINGS:
            raise ValueError(f"evaluate.{name} must be one of {LSE_FRAMINGS}, got {getattr(cfg, name)!r}")
    device = resolve_device(cfg.device)
    if gens is None:
        gens = load_generators(root / cfg.generator, root / cfg.silent_generator, cfg.silent_reference, device,
                               cfg.window, cfg.mel)
        gens.info["checkpoint"] = cfg.generator
    if scorers is None:
        scorers = build_scorers(cfg.scorer_settings(root), device, cfg.window, cfg.mel)

    from .data.store import read_clip

    clip_ids = read_split(root / cfg.split)
    if cfg.max_clips > 0:
        clip_ids = clip_ids[:cfg.max_clips]
    if not clip_ids:
        raise ValueError(f"no clips in {cfg.split}")
    fid = None if isinstance(scorers.fid, NotAvailable) else FidSets(scorers.fid, cfg.fid_batch_size, device)
    per_clip: dict[str, list[dict]] = {g: [] for g in GROUPS}
    frame_rows: list[list] = []
    curves: dict[tuple[str, str], list[np.ndarray]] = {}
    samples: list[list[np.ndarray]] = []
    skipped: list[dict] = []
    lse_fallbacks: list[dict] = []
    gen_seconds, gen_frames = 0.0, 0
    if cfg.write_videos and out.videos_dir is not None:
        out.videos_dir.mkdir(parents=True, exist_ok=True)

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
        # 1. generate
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        gen = generate_clip(gens, gt, mel, clip_id, cfg.seed, cfg.batch_size, device, cfg.window)
        if device.type == "cuda":
            torch.cuda.synchronize()
        gen_seconds += time.perf_counter() - t0
        gen_frames += len(gt)
        videos = {"model": gen["generated"], "ceiling": gt, "floor": floor_frames(gt, gen["identity"], cfg.floor)}
        if cfg.write_videos and out.videos_dir is not None:
            from .media.encode import write_video

            write_video(out.videos_dir / f"{clip_id}.mp4", gen["generated"], fps=float(clip.meta.get("fps", 25)),
                        audio=audio, sample_rate=int(clip.meta.get("sample_rate", 16000)), crf=cfg.video_crf)
        # 2. score (LSE on the framing each scorer is set to: the crops, or syncnet_python's windows)
        lse_frames, fallback = lse_views(cfg, root, clip, videos, scorers)
        if fallback is not None:
            lse_fallbacks.append({"clip_id": clip_id, "reason": fallback})
        scores = score_clip(scorers, clip_id, videos, audio, np.asarray(clip.landmarks, np.float32),
                            cfg.lmd_reference, cfg.lmd_eval_size, cfg.psnr_max_db, cfg.ifc_norm,
                            {"official": lse_frames[cfg.lse_framing], "expert": lse_frames[cfg.lse_expert_framing]})
        for group in GROUPS:
            per_clip[group].append(scores.rows[group])
        frame_rows.extend(scores.frame_rows)
        for key, curve in scores.curves.items():
            curves.setdefault(key, []).append(curve)
        if fid is not None:
            for name, frames in (("real", gt), ("model", videos["model"]), ("floor", videos["floor"])):
                fid.update(name, frames)
        if len(samples) < cfg.sample_clips * cfg.sample_frames:
            samples.extend(sample_rows(gt, gen, videos["floor"], cfg.sample_frames))

    if not per_clip["model"]:
        raise ValueError(f"no test clip could be evaluated ({len(skipped)} skipped: "
                         f"{skipped[0]['reason'] if skipped else 'empty split'})")
    # 3. write
    result: dict[str, Any] = group_results(per_clip, {g: scorers.fid if fid is None else fid.fid(g) for g in GROUPS})
    result["run"] = run_summary(cfg, per_clip, skipped, gen_frames, gen_seconds, time.perf_counter() - t_start,
                                device, scorers, gens.info, lse_fallbacks)
    write_outputs(out, result, per_clip, frame_rows, curves, samples)
    return result


def run_summary(cfg: EvaluateConfig, per_clip: dict, skipped: list, gen_frames: int, gen_seconds: float,
                total: float, device: torch.device, scorers: Scorers, generator_info: dict,
                lse_fallbacks: list[dict]) -> dict[str, Any]:
    """eval.json's "run": what was evaluated, how fast, with which settings and scorers."""
    n_frames = sum(r["n_frames"] for r in per_clip["model"])
    return {
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
        "generator": generator_info,
        "groups": {
            "model": "G_L output vs ground truth",
            "ceiling": "ground truth vs itself (real-video LSE/AVSu; the others are identities)",
            "floor": ("ground-truth upper half + identity-reference lower half" if cfg.floor == "paste"
                      else "pose input: ground truth with the lower half masked"),
        },
    }


def sample_rows(gt: np.ndarray, gen: dict[str, np.ndarray], floor: np.ndarray, n: int) -> list[list[np.ndarray]]:
    """Rows of the sample grid for n frames spread over a clip: GT | identity ref | silent ref (when G_S is used) |
    generated | floor."""
    rows = []
    for t in np.linspace(0, len(gt) - 1, n).round().astype(int):
        row = [gt[t], gen["identity"][t]]
        if gen["silent_ref"] is not None:
            row.append(gen["silent_ref"][t])
        rows.append(row + [gen["generated"][t], floor[t]])
    return rows
