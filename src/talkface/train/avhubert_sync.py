"""P2's AV-HuBERT sync loss for generator training (P2 §3.5), one of the sync terms of train/generator.py.

The k generated frames are pasted into the ground-truth clip at their interval: the whole clip (`context` < 0, P2's
"features from the entire video", at most `max_frames` frames around the window, batches padded with a padding mask),
or `context` GT frames on each side; mouth ROIs are cut differentiably (the similarity transform of `faces.mouth_roi`, computed from
the GT landmarks, applied with grid_sample: `differentiable_lip_rois`); AV-HuBERT features of the whole context are
extracted and the k steps of the generated interval are compared: unsupervised = audio-only vs video-only features,
visual = generated vs GT video-only features, multimodal = generated+audio vs GT+audio.

    context = ClipContext(clips_dir, train_set.clip_ids, k, context=-1, max_frames=250)
    sync = AVHubertSync(avhubert_model, context, "avhubert_visual")
    loss = sync(generated [B,k,3,S,S], batch["clip"], batch["start"])
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..faces.mouth_roi import (MOUTH, REFERENCE_STABLE_POINTS_256, STABLE_POINTS, MouthROIConfig,
                               interpolate_landmarks, similarity_transform)
from ..losses import avhubert_sync_loss

AVHUBERT_KINDS = {"avhubert_unsupervised", "avhubert_visual", "avhubert_multimodal"}


def roi_matrices(landmarks: np.ndarray, cfg: MouthROIConfig = MouthROIConfig()) -> np.ndarray:
    """Per frame, the 2x3 affine map from AV-HuBERT ROI pixels (the roi_size centre crop) to crop pixels.

    Same steps as `faces.mouth_roi.mouth_rois` (interpolation, forward smoothing, similarity transform of the stable
    points, mouth-centred crop moved inside the frame), inverted so that the ROI can be sampled with grid_sample.
    landmarks [T,68,2] -> [T,2,3] float32.
    """
    lms = interpolate_landmarks(landmarks)
    n = len(lms)
    margin = max(1, min(n, cfg.window_margin))
    ref = REFERENCE_STABLE_POINTS_256 * (cfg.std_size / 256.0)
    half, inset = cfg.crop_size // 2, (cfg.crop_size - cfg.roi_size) // 2
    out = np.empty((n, 2, 3), np.float32)
    for t in range(n):
        start = min(t, n - margin)
        m = similarity_transform(lms[start:start + margin].mean(axis=0)[list(STABLE_POINTS)], ref)
        centre = (lms[t, MOUTH] @ m[:, :2].T + m[:, 2]).mean(axis=0)
        cx = float(np.clip(np.round(centre[0]), half, cfg.std_size - half))
        cy = float(np.clip(np.round(centre[1]), half, cfg.std_size - half))
        corner = np.array([cx - half + inset, cy - half + inset])
        a_inv = np.linalg.inv(m[:, :2])
        out[t, :, :2] = a_inv
        out[t, :, 2] = a_inv @ (corner - m[:, 2])
    return out


def differentiable_lip_rois(frames: torch.Tensor, mats: torch.Tensor,
                            cfg: MouthROIConfig = MouthROIConfig()) -> torch.Tensor:
    """Differentiable AV-HuBERT lip input: frames [N,3,H,W] in [0,1], mats [N,2,3] (`roi_matrices`)
    -> [N,1,roi,roi] grayscale, normalised (x - mean) / std."""
    n, _, h, w = frames.shape
    r = cfg.roi_size
    ii, jj = torch.meshgrid(torch.arange(r, dtype=frames.dtype, device=frames.device),
                            torch.arange(r, dtype=frames.dtype, device=frames.device), indexing="ij")
    pix = torch.stack([jj, ii, torch.ones_like(ii)], dim=-1).reshape(1, r * r, 3)       # (x, y, 1) per ROI pixel
    src = pix @ mats.to(frames.dtype).transpose(1, 2)                                    # [N,r*r,2] crop pixels
    grid = torch.stack([(2 * src[..., 0] + 1) / w - 1, (2 * src[..., 1] + 1) / h - 1], dim=-1).reshape(n, r, r, 2)
    luma = torch.tensor((0.299, 0.587, 0.114), dtype=frames.dtype, device=frames.device).view(1, 3, 1, 1)
    gray = (frames * luma).sum(dim=1, keepdim=True)
    roi = F.grid_sample(gray, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (roi - cfg.mean) / cfg.std


class ClipContext:
    """Ground-truth context of training windows for AV-HuBERT: frames, ROI maps and audio features of each clip.

    `clip_ids` must be the window dataset's `clip_ids` (a batch's `clip` indexes them).
    """

    def __init__(self, clips_dir: str | Path, clip_ids: list[str], k: int, context: int,
                 roi: MouthROIConfig = MouthROIConfig(), max_frames: int = 250):
        """context >= 0: `context` GT frames on each side of the window (every item the same length); context < 0:
        the whole clip, at most `max_frames` frames around the window (a memory cap), items padded to the batch's
        longest with a padding mask."""
        self.clips_dir, self.clip_ids, self.k, self.roi = Path(clips_dir), list(clip_ids), k, roi
        lengths = [json.loads((self.clips_dir / c / "meta.json").read_text())["n_frames"] for c in self.clip_ids]
        if max_frames < k:
            raise ValueError(f"avhubert_max_frames ({max_frames}) must hold one window of {k} frames")
        self.whole = context < 0
        self.max_frames = max_frames
        self.length = max_frames if self.whole else min(k + 2 * context, min(lengths))  # frames given to AV-HuBERT
        self.context = context
        self._cache: dict[int, dict[str, Any]] = {}

    def _clip(self, c: int) -> dict[str, Any]:
        if c not in self._cache:
            from ..models.avhubert import audio_features

            d = self.clips_dir / self.clip_ids[c]
            frames = np.load(d / "frames.npy", mmap_mode="r")
            landmarks = np.load(d / "landmarks.npy")
            if not np.isfinite(landmarks).all(axis=(1, 2)).any():
                raise ValueError(f"AV-HuBERT sync loss needs landmarks: clip {self.clip_ids[c]} has none")
            audio = np.load(d / "audio.npy")
            self._cache[c] = {"frames": frames, "mats": roi_matrices(landmarks, self.roi),
                              "audio": audio_features(audio, n_frames=len(frames))}
        return self._cache[c]

    def fetch(self, clips: list[int], starts: list[int], device: torch.device) -> dict[str, torch.Tensor]:
        """GT context of each window: frames [B,T,3,S,S], mats [B,T,2,3], audio [B,T,104], offset [B] (long), and
        padding_mask [B,T] (True where an item is padded: whole-clip contexts differ in length)."""
        frames, mats, audio, offsets, lengths = [], [], [], [], []
        for c, f in zip(clips, starts):
            clip = self._clip(int(c))
            n = len(clip["frames"])
            length = min(n, self.length)
            before = (length - self.k) // 2 if self.whole else self.context  # the window in the middle when whole
            s0 = int(min(max(int(f) - before, 0), n - length))
            sl = slice(s0, s0 + length)
            frames.append(torch.from_numpy(np.array(clip["frames"][sl])).permute(0, 3, 1, 2).float() / 255.0)
            mats.append(torch.from_numpy(clip["mats"][sl]))
            audio.append(torch.from_numpy(np.ascontiguousarray(clip["audio"][sl])))
            offsets.append(int(f) - s0)
            lengths.append(length)
        t = max(lengths)

        def pad(x: torch.Tensor) -> torch.Tensor:  # repeat the last frame: valid ROI maps, masked out anyway
            return torch.cat([x, x[-1:].expand(t - len(x), *x.shape[1:])]) if len(x) < t else x

        mask = torch.arange(t)[None] >= torch.tensor(lengths)[:, None]
        return {"frames": torch.stack([pad(x) for x in frames]).to(device),
                "mats": torch.stack([pad(x) for x in mats]).to(device),
                "audio": torch.stack([pad(x) for x in audio]).to(device),
                "offset": torch.tensor(offsets, device=device), "padding_mask": mask.to(device)}


class AVHubertSync:
    """P2's sync loss of one variant (`kind` in AVHUBERT_KINDS) with a frozen AV-HuBERT `model` (`.extract`)."""

    def __init__(self, model: nn.Module, context: ClipContext, kind: str, clamp_min: float = 1e-6):
        if kind not in AVHUBERT_KINDS:
            raise ValueError(f"AV-HuBERT sync kind must be one of {sorted(AVHUBERT_KINDS)}, got '{kind}'")
        self.model, self.context, self.kind, self.clamp_min = model, context, kind, clamp_min
        for p in model.parameters():
            p.requires_grad_(False)
        model.eval()

    def _steps(self, feats: torch.Tensor, offset: torch.Tensor, k: int) -> torch.Tensor:
        """[B,T,D] -> [B,k,D]: the generated interval of each item."""
        idx = offset[:, None] + torch.arange(k, device=feats.device)[None]
        return feats.gather(1, idx[..., None].expand(-1, -1, feats.shape[-1]))

    def __call__(self, generated: torch.Tensor, clips: torch.Tensor, starts: torch.Tensor) -> torch.Tensor:
        b, k = generated.shape[:2]
        ctx = self.context.fetch(clips.tolist(), starts.tolist(), generated.device)
        t = ctx["frames"].shape[1]
        # paste the generated frames into the GT context (differentiable in `generated`)
        pos = torch.arange(t, device=generated.device)[None] - ctx["offset"][:, None]           # [B,T]
        inside = (pos >= 0) & (pos < k)
        gathered = generated.gather(1, pos.clamp(0, k - 1)[..., None, None, None].expand(-1, -1, *generated.shape[2:]))
        video = torch.where(inside[..., None, None, None], gathered, ctx["frames"])
        flat = lambda x: x.reshape(b * t, *x.shape[2:])  # noqa: E731
        r = self.context.roi.roi_size
        rois = differentiable_lip_rois(flat(video), flat(ctx["mats"]), self.context.roi).reshape(b, t, 1, r, r)
        off = ctx["offset"]
        mask = ctx["padding_mask"] if bool(ctx["padding_mask"].any()) else None
        if self.kind == "avhubert_unsupervised":
            with torch.no_grad():
                f_a = self._steps(self.model.extract(None, ctx["audio"], mask), off, k)
            f_v = self._steps(self.model.extract(rois, None, mask), off, k)
            return avhubert_sync_loss(f_a.float(), f_v.float(), self.clamp_min)
        with torch.no_grad():
            gt_rois = differentiable_lip_rois(flat(ctx["frames"]), flat(ctx["mats"]),
                                              self.context.roi).reshape(rois.shape)
        audio = ctx["audio"] if self.kind == "avhubert_multimodal" else None
        with torch.no_grad():
            f_gt = self._steps(self.model.extract(gt_rois, audio, mask), off, k)
        f_gen = self._steps(self.model.extract(rois, audio, mask), off, k)
        return avhubert_sync_loss(f_gt.float(), f_gen.float(), self.clamp_min)
