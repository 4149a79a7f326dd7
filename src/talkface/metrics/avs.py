"""AVSu, AVSm, AVSv: AV-HuBERT synchronisation metrics (P2 §4.1, eqs. 4-6).

With TE(V, A) the final-layer features [T,D] of the AV-HuBERT transformer encoder (lip-reading fine-tuned
checkpoint in P2) for lip ROIs V and audio A, and 0 a placeholder of zeros for a missing modality:

    AVSu = CS(TE(V_gen, 0), TE(0, A))          generated lips vs. the audio (no ground truth needed)
    AVSm = CS(TE(V_gen, A), TE(V_gt, A))       generated vs. ground-truth audio-visual features
    AVSv = CS(TE(V_gen, 0), TE(V_gt, 0))       generated vs. ground-truth lips, visual only

CS on [T,D] sequences [ours: P2 does not spell it out]: the cosine similarity of the two D-d feature vectors at each
time step, averaged over the T steps of the video. A test set's score is the mean over its videos. Every input is a
whole clip (P2 found whole-video features better aligned than short windows). Higher is better; identical inputs
give 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..faces.mouth_roi import MouthROIConfig, lip_input, mouth_rois
from ..models.avhubert import AVHubert, audio_features, load_avhubert_checkpoint
from ..weights import WeightsNotAvailable
from . import NotAvailable


def load_avhubert(path: str | Path | None, device: str | torch.device = "cpu") -> AVHubert | NotAvailable:
    """The AV-HuBERT model for the metrics, or NotAvailable("AV-HuBERT not available: <reason>")."""
    try:
        return load_avhubert_checkpoint(path, device)
    except WeightsNotAvailable as e:
        return NotAvailable(str(e))


def clip_lips(frames: np.ndarray, landmarks: np.ndarray, cfg: MouthROIConfig = MouthROIConfig()) -> np.ndarray | None:
    """AV-HuBERT lip input of one clip: frames uint8 [T,H,W,3] RGB with landmarks [T,68,2] -> [T,1,88,88], or None
    when no frame has landmarks (nothing to cut a mouth ROI from)."""
    if not np.isfinite(landmarks).all(axis=(1, 2)).any():
        return None
    return lip_input(mouth_rois(frames, landmarks, cfg), cfg)


def clip_inputs(frames: np.ndarray, landmarks: np.ndarray, audio: np.ndarray | None,
                cfg: MouthROIConfig = MouthROIConfig()) -> tuple[np.ndarray | None, np.ndarray | None]:
    """One clip's AV-HuBERT inputs: lips [T,1,88,88] (`clip_lips`); 16 kHz audio [N] (or None) -> [T,104] aligned to
    the T frames."""
    return clip_lips(frames, landmarks, cfg), None if audio is None else audio_features(audio, n_frames=len(frames))


def cosine_over_time(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over t of cos(a_t, b_t); a, b: [T,D] (or [1,T,D])."""
    a, b = a.squeeze(0), b.squeeze(0)
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"expected two feature sequences [T,D] of equal shape, got {list(a.shape)}, {list(b.shape)}")
    return float(F.cosine_similarity(a.double(), b.double(), dim=-1, eps=1e-8).mean())


def _as_batch(x, rank: int, what: str) -> torch.Tensor | None:
    if x is None:
        return None
    t = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x, dtype=torch.float32)
    if t.dim() == rank - 1:
        t = t[None]
    if t.dim() != rank or t.shape[0] != 1:
        raise ValueError(f"{what}: expected one clip, got shape {list(t.shape)}")
    return t


@torch.no_grad()
def features(model: AVHubert, lips=None, audio=None) -> torch.Tensor:
    """TE(V, A) of one clip: lips [T,1,88,88] (`faces.mouth_roi.lip_input`), audio [T,104]
    (`models.avhubert.audio_features`), either may be None -> [T,D]."""
    device = next(model.parameters()).device
    v, a = _as_batch(lips, 5, "lips"), _as_batch(audio, 3, "audio")
    return model.extract(None if v is None else v.to(device), None if a is None else a.to(device))[0].cpu()


class ClipAVS:
    """AVSu/AVSm/AVSv of the videos of one clip against its ground truth, sharing the passes that do not depend on the
    video: the ground truth's visual and audio-visual features and the audio-only features are computed once.

        avs = ClipAVS(model, lips_gt, audio_feats)      # model may be NotAvailable; lips_gt None = no landmarks
        avs.scores(lips)                                # {"AVSu", "AVSm", "AVSv"}; lips None = the ground truth
    """

    KEYS = ("AVSu", "AVSm", "AVSv")

    def __init__(self, model: AVHubert | NotAvailable, lips_gt: np.ndarray | None, audio_feats: np.ndarray | None):
        self.model, self.lips_gt, self.audio_feats = model, lips_gt, audio_feats
        self.na = model if isinstance(model, NotAvailable) else (
            NotAvailable("AVS not available: the clip has no landmarks to cut mouth ROIs") if lips_gt is None else None)
        if self.na is None:
            self.aud = features(model, None, audio_feats)
            self.gt_v = features(model, lips_gt, None)
            self.gt_av = features(model, lips_gt, audio_feats)

    def scores(self, lips: np.ndarray | None) -> dict:
        """lips: a video's ROIs [T,1,88,88], or None for the ground truth itself (AVSm = AVSv = 1)."""
        if self.na is not None:
            return {k: self.na for k in self.KEYS}
        gen_v = self.gt_v if lips is None else features(self.model, lips, None)
        gen_av = self.gt_av if lips is None else features(self.model, lips, self.audio_feats)
        return {"AVSu": cosine_over_time(gen_v, self.aud), "AVSm": cosine_over_time(gen_av, self.gt_av),
                "AVSv": cosine_over_time(gen_v, self.gt_v)}
