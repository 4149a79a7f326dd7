"""Scoring for the evaluate stage: every metric of one clip's groups (model, ceiling, floor).

- SSIM, PSNR (psnr capped so identical frames give a finite number), IFC: one value per clip; SSIM and PSNR also of
  the lower half alone (rows S/2..S: the mouth and chin, where the floor and the model differ) [ours];
- LMD: mouth landmarks of the generated frames and of the ground truth from the same detector (or the clip store's
  landmarks as ground truth), distances measured at `lmd_eval_size` px;
- LSE-C/LSE-D: syncnet_v2 (official weights) under "LSE-C"/"LSE-D"; the same algorithm with the project's own SyncNet
  under separate keys, never mixed;
- AVSu/AVSm/AVSv: AV-HuBERT features of mouth ROIs cut with the clip's landmarks (talkface.metrics.avs.ClipAVS);
- FID: feature statistics accumulated over all frames of a set (`FidSets`), one value per set at the end.
A metric that cannot be computed is NotAvailable(reason).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..data.mel import MelConfig
from ..metrics import NotAvailable
from ..metrics.image import frames_to_batch, psnr, ssim
from ..metrics.landmarks import lmd
from ..metrics.mouth import mouth_opening, opening_correlation
from ..metrics.temporal import ifc
from ..model_inputs import WindowConfig

GROUPS = ("model", "ceiling", "floor")
LSE_OFFICIAL_KEYS = ("LSE-C", "LSE-D")
LSE_EXPERT_KEYS = ("LSE-C (talkface-syncnet)", "LSE-D (talkface-syncnet)")
AVS_KEYS = ("AVSu", "AVSm", "AVSv")
# MouthCorr [ours]: per-clip Pearson r of the mouth opening (inner-lip gap / inter-ocular distance, metrics.mouth) of
# a group's frames with the ground truth's, from the same landmark detector as LMD
LOWER_HALF_KEYS = ("SSIM (lower half)", "PSNR (lower half)")
PER_CLIP_KEYS = ("SSIM", "PSNR", *LOWER_HALF_KEYS, "IFC", "LMD", "MouthCorr", *LSE_OFFICIAL_KEYS, *LSE_EXPERT_KEYS, *AVS_KEYS)
METRIC_KEYS = ("SSIM", "PSNR", *LOWER_HALF_KEYS, "FID", "IFC", "LMD", "MouthCorr", *LSE_OFFICIAL_KEYS, *LSE_EXPERT_KEYS, *AVS_KEYS)


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


@dataclasses.dataclass
class ScorerSettings:
    """What build_scorers reads (the evaluate params of the weights and the LSE)."""

    fid_weights: str
    syncnet_v2: str
    lse_expert: Path | None          # our SyncNet checkpoint; None = skip
    lse_vshift: int
    avhubert: str
    landmarker: str


def build_scorers(s: ScorerSettings, device: torch.device, window: WindowConfig, mel: MelConfig) -> Scorers:
    """Load every scorer whose weights are present; the others become NotAvailable with the reason."""
    from ..metrics.lse import LSEScorer
    from ..weights import WeightsNotAvailable

    out = Scorers()
    try:
        from ..models.inception import load_fid_inception

        out.fid = load_fid_inception(s.fid_weights or None, device)
    except WeightsNotAvailable as e:
        out.fid = NotAvailable(str(e))
    try:
        out.lse_official = LSEScorer.from_official(s.syncnet_v2 or None, device, vshift=s.lse_vshift)
    except WeightsNotAvailable as e:
        out.lse_official = NotAvailable(str(e))
    if s.lse_expert is None:
        out.lse_expert = NotAvailable("talkface-syncnet not available: evaluate.lse_expert is empty")
    elif not s.lse_expert.is_file():
        out.lse_expert = NotAvailable(f"talkface-syncnet not available: no expert checkpoint at {s.lse_expert}")
    else:
        from ..data.mel import melspectrogram
        from ..models.expert_io import load_expert

        out.lse_expert = LSEScorer.from_expert(load_expert(s.lse_expert, "cpu"), device, vshift=s.lse_vshift,
                                               mel_fn=lambda audio: melspectrogram(audio, mel), window=window)
    from ..metrics.avs import load_avhubert

    out.avhubert = load_avhubert(s.avhubert or None, device)
    from ..faces.crop_landmarks import make_crop_landmarker
    from ..faces.detect import FaceDetectorUnavailable

    try:
        out.landmarker = make_crop_landmarker(s.landmarker, str(device))
    except FaceDetectorUnavailable as e:
        out.landmarker = NotAvailable(f"LMD not available: no landmark detector for generated frames ({e})")
    return out


def image_metrics(gen: np.ndarray, gt: np.ndarray, psnr_max_db: float, ifc_norm: str,
                  chunk: int = 64) -> tuple[dict[str, float], np.ndarray, np.ndarray]:
    """SSIM, PSNR (means over frames), the same of the lower half (rows H//2..H) and IFC of one clip, plus the
    per-frame SSIM and PSNR [T] of the whole face."""
    s, p, s_low, p_low = [], [], [], []
    half = gen.shape[1] // 2
    for i in range(0, len(gen), chunk):
        a, b = frames_to_batch(gen[i:i + chunk]), frames_to_batch(gt[i:i + chunk])
        s.append(ssim(a, b))
        p.append(psnr(a, b, max_db=psnr_max_db))
        s_low.append(ssim(a[..., half:, :], b[..., half:, :]))
        p_low.append(psnr(a[..., half:, :], b[..., half:, :], max_db=psnr_max_db))
    s_all, p_all = torch.cat(s).numpy(), torch.cat(p).numpy()
    out = {"SSIM": float(s_all.mean()), "PSNR": float(p_all.mean()),
           LOWER_HALF_KEYS[0]: float(torch.cat(s_low).mean()), LOWER_HALF_KEYS[1]: float(torch.cat(p_low).mean())}
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


@dataclasses.dataclass
class ClipScores:
    """One clip's results: a row per group (clip_id, group, n_frames, every PER_CLIP_KEYS value), per-frame rows
    (clip_id, group, frame, ssim, psnr) of model and floor, and the LSE distance curve of each (group, scorer)."""

    rows: dict[str, dict[str, Any]]
    frame_rows: list[list]
    curves: dict[tuple[str, str], np.ndarray]


def score_clip(scorers: Scorers, clip_id: str, videos: dict[str, np.ndarray], audio: np.ndarray,
               store_landmarks: np.ndarray, lmd_reference: str, lmd_eval_size: int, psnr_max_db: float,
               ifc_norm: str, lse_frames: dict[str, dict[str, np.ndarray]] | None = None) -> ClipScores:
    """Every per-clip metric of the groups in `videos` ({"model", "ceiling", "floor"}: uint8 [T,S,S,3]; "ceiling" is
    the ground truth) against the ground truth. `lse_frames`: what each LSE scorer sees per group, {"official":
    {group: frames}, "expert": {...}} (the crops or syncnet_python's windows, evaluate.lse_views); default: `videos`."""
    lse_frames = lse_frames or {"official": videos, "expert": videos}
    from ..metrics.avs import ClipAVS, clip_lips

    gt = videos["ceiling"]
    # Landmarks: ground truth from the store or from the detector, the other groups' from the detector.
    if isinstance(scorers.landmarker, NotAvailable):
        gt_lms = store_landmarks if lmd_reference == "store" else scorers.landmarker
        lms = {g: (gt_lms if g == "ceiling" else scorers.landmarker) for g in videos}
    else:
        gt_lms = store_landmarks if lmd_reference == "store" else scorers.landmarker(gt, store_landmarks)
        lms = {g: (gt_lms if g == "ceiling" else scorers.landmarker(v, store_landmarks)) for g, v in videos.items()}

    lips_gt = audio_feats = None
    if not isinstance(scorers.avhubert, NotAvailable):
        from ..models.avhubert import audio_features

        lips_gt = clip_lips(gt, store_landmarks)
        audio_feats = audio_features(audio, n_frames=len(gt))
    avs = ClipAVS(scorers.avhubert, lips_gt, audio_feats)

    out = ClipScores({}, [], {})
    gt_opening = None
    for group, frames in videos.items():
        row: dict[str, Any] = {"clip_id": clip_id, "group": group, "n_frames": len(frames)}
        img, s_frames, p_frames = image_metrics(frames, gt, psnr_max_db, ifc_norm)
        row.update(img)
        if group != "ceiling":
            out.frame_rows.extend([clip_id, group, t, float(s_frames[t]), float(p_frames[t])]
                                  for t in range(len(frames)))
        if isinstance(gt_lms, NotAvailable) or isinstance(lms[group], NotAvailable):
            row["LMD"] = gt_lms if isinstance(gt_lms, NotAvailable) else lms[group]
        else:
            row["LMD"] = lmd(lms[group], gt_lms, gt.shape[1], lmd_eval_size)
        if isinstance(row["LMD"], NotAvailable):
            row["MouthCorr"] = NotAvailable(row["LMD"].reason.replace("LMD", "MouthCorr", 1))
        else:
            gt_opening = gt_opening if gt_opening is not None else mouth_opening(gt_lms)  # once per clip
            row["MouthCorr"] = opening_correlation(mouth_opening(lms[group]), gt_opening)
        for scorer, keys, view in ((scorers.lse_official, LSE_OFFICIAL_KEYS, "official"),
                                   (scorers.lse_expert, LSE_EXPERT_KEYS, "expert")):
            vals, curve = lse_metrics(scorer, lse_frames[view][group], audio, keys)
            row.update(vals)
            if curve is not None:
                out.curves[(group, keys[0])] = np.asarray(curve)
        row.update(avs.scores(None if (avs.na is not None or group == "ceiling") else clip_lips(frames, store_landmarks)))
        out.rows[group] = row
    return out


class FidSets:
    """Inception feature statistics per set ("real" = every ground-truth frame, "model", "floor"), pytorch-fid
    protocol: one FID per set over all its frames."""

    def __init__(self, model, batch_size: int, device: torch.device):
        from ..metrics.fid import FeatureStats

        self.model, self.batch_size, self.device = model, batch_size, device
        self.stats: dict[str, FeatureStats] = {}
        self._make = FeatureStats

    @torch.no_grad()
    def update(self, name: str, frames: np.ndarray) -> None:
        for i in range(0, len(frames), self.batch_size):
            feats = self.model(frames_to_batch(frames[i:i + self.batch_size]).to(self.device))
            self.stats.setdefault(name, self._make(feats.shape[1])).update(feats)  # sized on the first batch

    def fid(self, group: str) -> float | str:
        """FID of a group against the real set ("ceiling": the real set against itself)."""
        from ..metrics.fid import fid_from_stats

        other = "real" if group == "ceiling" else group
        try:
            return fid_from_stats(self.stats["real"], self.stats[other])
        except ValueError as e:
            return f"FID not available: {e}"
