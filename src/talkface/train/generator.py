"""Training of the generators G_S (silent lips) and G_L (lip sync): P1 and P2 losses, evaluation, export.

    cfg = section(params, "generator", GeneratorTrainConfig)
    summary = run_stage("generator", cfg, run)        # what stages/train_generator.py (silent and generator) calls

One task, `GeneratorTask`, trains both (METHOD.md §4-5). A step:
1. identity reference: the window's `identity` frames, or, with `use_silent_reference`, those frames rewritten by a
   frozen trained G_S fed the mel of digital silence (-4 everywhere), so their lips are closed (P1);
2. generated = G(pose, reference, indiv_mels);
3. generator loss = sum of weight x term over pixel (L1), perceptual (VGG-19; off with a recorded reason when the
   weights are not in the torch cache), GAN (non-saturating), sync (none | plain | stabilized through a frozen expert
   | the three AV-HuBERT variants of P2) and adaptive triplet (P1);
4. discriminator step on real frames vs detached generated frames (two optimizers, `loop.backward_step`).
G_S is the same task with no sync and no triplet term (params section `silent`); `silent_target` > 0 adds an
[ours, synthetic only] L1 term pulling G_S(identity, silent audio) toward the closed-lip ground truth silent.npy.

AV-HuBERT sync loss (P2 §3.5): the k generated frames are pasted into the ground-truth clip at their interval: the
whole clip by default (`avhubert_context: -1`, P2's "entire video", at most `avhubert_max_frames` frames around the
window, batches padded with a padding mask), or `avhubert_context` GT frames on each side; mouth ROIs are cut differentiably (the similarity transform
of `faces.mouth_roi`, computed from the GT landmarks, applied with grid_sample); AV-HuBERT features of the whole
context are extracted and the k steps of the generated interval are compared: unsupervised = audio-only vs
video-only features, visual = generated vs GT video-only features, multimodal = generated+audio vs GT+audio.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..analysis.leaking import MouthOpeningConfig, lip_leak, mouth_opening, silent_check
from ..data.mel import MelConfig, melspectrogram
from ..data.windows import WindowConfig, WindowDataset, read_split
from ..faces.mouth_roi import (MOUTH, REFERENCE_STABLE_POINTS_256, STABLE_POINTS, MouthROIConfig,
                               interpolate_landmarks, similarity_transform)
from ..losses import (LossConfig, PerceptualLoss, StructuralLoss, adaptive_triplet_loss, avhubert_sync_loss,
                      gan_discriminator_loss, gan_generator_loss, pixel_distance, pixel_loss, plain_sync_loss,
                      stabilized_sync_loss, weighted_total)
from ..metrics.image import mean_finite, psnr, ssim
from ..models.discriminator import Discriminator, DiscriminatorConfig
from ..models.expert import MEL_BANDS, MEL_STEPS, SyncExpert, load_expert
from ..models.generator import Generator, GeneratorConfig
from ..models.generator_io import expert_audio_spec, joint_audio_spec, load_generator, save_generator
from ..models.syncnet import AudioEncoder
from ..weights import WeightsNotAvailable
from .loop import Loop, LoopConfig, Task

AVHUBERT_KINDS = {"avhubert_unsupervised", "avhubert_visual", "avhubert_multimodal"}
EXPERT_KINDS = {"plain", "stabilized"}


@dataclass
class GeneratorTrainConfig:
    """params.yaml sections `silent` (G_S) and `generator` (G_L)."""

    loop: LoopConfig = field(default_factory=LoopConfig)
    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    disc: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    mouth: MouthOpeningConfig = field(default_factory=MouthOpeningConfig)
    lr: float = 1e-4  # Adam, generator (P1/P2)
    disc_lr: float = 1e-4
    gan_start_step: int = 0  # [ours] adversarial term and D updates start here (short CPU runs learn pixels first)
    sync_start_step: int = 0  # [ours] sync term starts here: L_ss gradients swamp an untrained G (Wav2Lip delays too)
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])  # Wav2Lip's Adam betas [ours]
    audio_encoder: str = "syncnet"  # syncnet | avsyncnet: that expert's audio encoder, frozen; joint: trained (setup A)
    joint_audio_width: int = 32  # AudioEncoder width when audio_encoder = joint
    expert: str = "syncnet"  # sync expert of the plain/stabilized loss and of the val sync metric: syncnet | avsyncnet
    syncnet_path: str = "models/syncnet.pt"
    avsyncnet_path: str = "models/avsyncnet.pt"
    use_silent_reference: bool = False  # identity reference through a frozen G_S fed silent audio (P1)
    silent_path: str = "models/silent.pt"
    silent_target: float = 0.0  # [ours] weight of L1(G(identity, silence), silent.npy GT); synthetic data only
    avhubert_path: str = ""  # AV-HuBERT checkpoint for the avhubert_* sync losses (none here: not available)
    avhubert_context: int = -1  # GT frames on each side of the window given to AV-HuBERT; -1 = the whole clip (P2)
    avhubert_max_frames: int = 250  # memory cap of the whole-clip context, frames around the window
    analysis_windows: int = 64  # validation windows of the lip-leak / silent checks
    samples: int = 4  # rows of the sample grid PNG

    def __post_init__(self) -> None:
        if self.audio_encoder not in ("syncnet", "avsyncnet", "joint"):
            raise ValueError(f"audio_encoder must be syncnet, avsyncnet or joint, got '{self.audio_encoder}'")
        if self.expert not in ("syncnet", "avsyncnet"):
            raise ValueError(f"expert must be syncnet or avsyncnet, got '{self.expert}'")
        if len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers, got {self.betas}")

    def expert_path(self, name: str) -> str:
        return self.syncnet_path if name == "syncnet" else self.avsyncnet_path


# ------------------------------------------------------------------------------------------------ small helpers
def silence_mel_value(cfg: MelConfig = MelConfig()) -> float:
    """The mel value of digital silence (all bins equal: the normalisation floor, -4 for Wav2Lip's settings)."""
    mel = melspectrogram(np.zeros(cfg.sample_rate // 5, np.float32), cfg)
    if mel.min() != mel.max():
        raise RuntimeError("the mel of digital silence is not constant")
    return float(mel[0, 0])


SILENCE = silence_mel_value()


def silent_mels(batch: int, k: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """indiv_mels of silent audio: [B,k,1,80,16] filled with the silence value."""
    return torch.full((batch, k, 1, MEL_BANDS, MEL_STEPS), SILENCE, device=device)


def mask_lower_half(frames: torch.Tensor) -> torch.Tensor:
    """[...,3,S,S] -> a copy with the lower half zeroed (the pose input, as the window dataset builds it)."""
    out = frames.clone()
    out[..., frames.shape[-2] // 2:, :] = 0.0
    return out


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def file_digest(path: str | Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ AV-HuBERT sync loss
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


def lip_rois(frames: torch.Tensor, mats: torch.Tensor, cfg: MouthROIConfig = MouthROIConfig()) -> torch.Tensor:
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
        the whole clip (P2 §3.5: "features from the entire video"), at most `max_frames` frames around the window
        (a memory cap), items padded to the batch's longest with a padding mask."""
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
        rois = lip_rois(flat(video), flat(ctx["mats"]), self.context.roi).reshape(b, t, 1, r, r)
        off = ctx["offset"]
        mask = ctx["padding_mask"] if bool(ctx["padding_mask"].any()) else None
        if self.kind == "avhubert_unsupervised":
            with torch.no_grad():
                f_a = self._steps(self.model.extract(None, ctx["audio"], mask), off, k)
            f_v = self._steps(self.model.extract(rois, None, mask), off, k)
            return avhubert_sync_loss(f_a.float(), f_v.float(), self.clamp_min)
        with torch.no_grad():
            gt_rois = lip_rois(flat(ctx["frames"]), flat(ctx["mats"]), self.context.roi).reshape(rois.shape)
        audio = ctx["audio"] if self.kind == "avhubert_multimodal" else None
        with torch.no_grad():
            f_gt = self._steps(self.model.extract(gt_rois, audio, mask), off, k)
        f_gen = self._steps(self.model.extract(rois, audio, mask), off, k)
        return avhubert_sync_loss(f_gt.float(), f_gen.float(), self.clamp_min)


# ------------------------------------------------------------------------------------------------ the task
class GeneratorTask(Task):
    """G (and D) training; see the module docstring. Frozen helpers are not in `models` (not checkpointed)."""

    def __init__(self, cfg: GeneratorTrainConfig, audio_encoder: nn.Module, audio_spec: dict[str, Any],
                 expert: SyncExpert | None = None, silent: Generator | None = None,
                 perceptual: PerceptualLoss | None = None, avhubert: AVHubertSync | None = None,
                 notes: dict[str, str] | None = None, file_digests: dict[str, str] | None = None):
        self.cfg, self.audio_spec = cfg, audio_spec
        self.notes = dict(notes or {})  # "not available: ..." reasons and fallbacks, reported in the metrics
        self.file_digests = dict(file_digests or {})
        lc = cfg.loss
        if lc.sync > 0 and lc.sync_kind in EXPERT_KINDS and expert is None:
            raise ValueError(f"sync loss '{lc.sync_kind}' needs a sync expert")
        if lc.sync > 0 and lc.sync_kind in AVHUBERT_KINDS and avhubert is None:
            raise WeightsNotAvailable(f"sync loss '{lc.sync_kind}' not available: no AV-HuBERT checkpoint")
        if cfg.use_silent_reference and silent is None:
            raise ValueError("use_silent_reference needs a trained G_S")
        torch.manual_seed(cfg.loop.seed)
        gen = Generator(cfg.model, audio_encoder, freeze_audio=audio_spec["source"] != "joint")
        disc = Discriminator(cfg.disc)
        self.models = {"gen": gen, "disc": disc}
        self.optimizers = {
            "gen": torch.optim.Adam([p for p in gen.parameters() if p.requires_grad], lr=cfg.lr, betas=tuple(cfg.betas)),
            "disc": torch.optim.Adam(disc.parameters(), lr=cfg.disc_lr, betas=tuple(cfg.betas)),
        }
        self.expert = expert.freeze() if expert is not None else None
        self.silent = silent
        if silent is not None:
            for p in silent.parameters():
                p.requires_grad_(False)
            silent.eval()
        self.perceptual = perceptual
        self.avhubert = avhubert
        self._device: torch.device | None = None
        if lc.triplet > 0 and lc.triplet_distance == "perceptual" and perceptual is None:
            self.notes.setdefault("triplet_distance", "pixel (perceptual distance not available: no VGG-19 weights)")

    @property
    def generator(self) -> Generator:
        return _unwrap(self.models["gen"])

    def fingerprint(self) -> dict[str, Any]:
        d = dataclasses.asdict(self.cfg)
        for key in ("loop", "mouth", "analysis_windows", "samples"):
            d.pop(key)
        return {"cfg": d, "files": self.file_digests, "perceptual": self.perceptual is not None}

    def _place(self, device: torch.device) -> None:
        if self._device == device:
            return
        for helper in (self.expert, self.silent, self.perceptual, self.avhubert.model if self.avhubert else None):
            if helper is not None:
                helper.to(device)
        self._device = device

    # ----- pieces shared by training, evaluation and the analyses
    def reference(self, identity: torch.Tensor, use_silent: bool | None = None) -> torch.Tensor:
        """The identity reference the generator sees: raw, or G_S(identity, silent audio) when configured."""
        use_silent = self.cfg.use_silent_reference if use_silent is None else use_silent
        if not use_silent:
            return identity
        if self.silent is None:
            raise ValueError("no G_S loaded")
        return close_lips(self.silent, identity)

    def _sync_term(self, out: torch.Tensor, batch: dict[str, Any], ref: torch.Tensor, loop: Loop) -> torch.Tensor:
        lc = self.cfg.loss
        if lc.sync_kind in AVHUBERT_KINDS:
            with loop.autocast():
                return self.avhubert(out, batch["clip"], batch["start"]).float()
        with loop.autocast():
            audio = self.expert.embed_audio(batch["mel"])
            video = self.expert.embed_video(out)
        x = self.expert.similarity(audio.float(), video.float())
        if lc.sync_kind == "plain":
            return plain_sync_loss(x, lc.sync_clamp_min)
        with torch.no_grad(), loop.autocast():
            v_gt, v_ref = self.expert.embed_video(batch["frames"]), self.expert.embed_video(ref)
        y = self.expert.similarity(audio.float(), v_gt.float())
        d = self.expert.similarity(audio.float(), v_ref.float())
        return stabilized_sync_loss(x, y, d, lc.sync_eps, lc.sync_clamp_min)

    def gan_active(self, loop: Loop) -> bool:
        return self.cfg.loss.gan > 0 and loop.step >= self.cfg.gan_start_step

    def sync_active(self, loop: Loop) -> bool:
        return self.cfg.loss.sync > 0 and self.cfg.loss.sync_kind != "none" and loop.step >= self.cfg.sync_start_step

    def loss_terms(self, out: torch.Tensor, batch: dict[str, Any], ref: torch.Tensor, loop: Loop) -> dict[str, torch.Tensor]:
        """Unweighted generator loss terms with a nonzero weight (float32 scalars)."""
        lc, gt, terms = self.cfg.loss, batch["frames"], {}
        if lc.pixel > 0:
            terms["pixel"] = pixel_loss(out, gt)
        if lc.perceptual > 0 and self.perceptual is not None:
            with loop.autocast():
                terms["perceptual"] = self.perceptual(out, gt).float()
        if self.gan_active(loop):
            with loop.autocast():
                fake = self.models["disc"](out)
            terms["gan"] = gan_generator_loss(fake.float())
        if self.sync_active(loop):
            terms["sync"] = self._sync_term(out, batch, ref, loop)
        if lc.triplet > 0:
            distance = self.perceptual.distance if (lc.triplet_distance == "perceptual" and self.perceptual) \
                else pixel_distance
            with loop.autocast():
                terms["triplet"] = adaptive_triplet_loss(out, gt, ref, lc.triplet_alpha, distance,
                                                         lc.triplet_region).float()
        return terms

    def train_step(self, batch: dict[str, Any], loop: Loop) -> dict[str, float]:
        self._place(loop.device)
        cfg, gen = self.cfg, self.models["gen"]
        ref = self.reference(batch["identity"])
        pose, mels = batch["pose"], batch["indiv_mels"]
        b = pose.shape[0]
        closed_target = cfg.silent_target > 0 and "identity_silent" in batch
        if closed_target:  # one forward for both inputs (a DDP module is called once per step)
            identity = batch["identity"]
            pose = torch.cat([pose, mask_lower_half(identity)])
            ref = torch.cat([ref, identity])
            mels = torch.cat([mels, silent_mels(b, mels.shape[1], mels.device)])
        with loop.autocast():
            out = gen(pose, ref, mels).float()
        if closed_target:
            out, closed = out[:b], out[b:]
            ref = ref[:b]
        terms = self.loss_terms(out, batch, ref, loop)
        total = weighted_total(terms, cfg.loss)
        if closed_target:
            terms["silent_target"] = pixel_loss(closed, batch["identity_silent"])
            total = total + cfg.silent_target * terms["silent_target"]
        loop.backward_step(total, "gen")
        logs = {"loss": total.item(), **{f"loss_{k}": v.item() for k, v in terms.items()}}
        if self.gan_active(loop):
            with loop.autocast():
                logits = self.models["disc"](torch.cat([batch["frames"], out.detach()])).float()
            d_loss = gan_discriminator_loss(logits[:b], logits[b:])
            loop.backward_step(d_loss, "disc")
            logs["loss_disc"] = d_loss.item()
        return logs

    def evaluate(self, batches: Iterable[dict[str, Any]], loop: Loop) -> dict[str, float]:
        self._place(loop.device)
        rows: dict[str, list[torch.Tensor]] = {}

        def add(name: str, values: torch.Tensor) -> None:
            rows.setdefault(name, []).append(values.detach().double().flatten().cpu())

        for batch in batches:
            gt = batch["frames"]
            ref = self.reference(batch["identity"])
            with loop.autocast():
                out = self.models["gen"](batch["pose"], ref, batch["indiv_mels"]).float()
            s = gt.shape[-1]
            fold = lambda x: x.reshape(-1, 3, s, s)  # noqa: E731
            add("val_l1", (out - gt).abs().flatten(1).mean(1))
            add("val_psnr", psnr(fold(out), fold(gt)))
            add("val_ssim", ssim(fold(out), fold(gt)))
            add("val_psnr_masked", psnr(fold(batch["pose"]), fold(gt)))  # the masked input: the bar to beat
            add("val_ssim_masked", ssim(fold(batch["pose"]), fold(gt)))
            if self.expert is not None:
                with loop.autocast():
                    a = self.expert.embed_audio(batch["mel"]).float()
                    v_out, v_gt = self.expert.embed_video(out).float(), self.expert.embed_video(gt).float()
                add("val_sync", self.expert.similarity(a, v_out))
                add("val_sync_gt", self.expert.similarity(a, v_gt))
            open_out, open_gt = mouth_opening(out, self.cfg.mouth), mouth_opening(gt, self.cfg.mouth)
            add("val_mouth_open", open_out)
            add("val_mouth_open_gt", open_gt)
            add("val_mouth_open_err", (open_out - open_gt).abs())
        return {k: mean_finite(torch.cat(v)) for k, v in rows.items()}


@torch.no_grad()
def close_lips(silent: nn.Module, identity: torch.Tensor) -> torch.Tensor:
    """G_S(masked identity, identity, silent audio): the identity frames with closed lips. [B,k,3,S,S]."""
    b, k = identity.shape[:2]
    return silent(mask_lower_half(identity), identity, silent_mels(b, k, identity.device)).float()


# ------------------------------------------------------------------------------------------------ building from files
def build_task(cfg: GeneratorTrainConfig, train_set: WindowDataset | None = None, clips_dir: str | Path = "data/clips",
               role: str = "generator") -> GeneratorTask:
    """Load every frozen helper the config names, with the offline policy: optional things are recorded in
    `task.notes` as "not available: <reason>"; a missing thing the config requires raises a one-line error."""
    lc, notes, digests = cfg.loss, {}, {}

    def expert_of(name: str, required_for: str | None) -> SyncExpert | None:
        path = Path(cfg.expert_path(name))
        if not path.is_file():
            if required_for:
                raise FileNotFoundError(f"{required_for} needs the {name} expert: no file at {path} "
                                        f"(run the train_{name} stage first)")
            return None
        digests[name] = file_digest(path)
        return load_expert(path)

    if cfg.audio_encoder == "joint":
        audio_encoder, audio_spec = AudioEncoder(cfg.joint_audio_width, cfg.model.audio_dim), \
            joint_audio_spec(cfg.joint_audio_width, cfg.model.audio_dim)
    else:
        source = expert_of(cfg.audio_encoder, "the generator's audio encoder")
        audio_encoder, audio_spec = copy.deepcopy(source.audio_encoder), expert_audio_spec(source)
    needs_expert = lc.sync > 0 and lc.sync_kind in EXPERT_KINDS
    expert = expert_of(cfg.expert, f"the {lc.sync_kind} sync loss" if needs_expert else None)
    if expert is None:
        notes["val_sync"] = f"not available: no {cfg.expert} expert at {cfg.expert_path(cfg.expert)}"

    silent = None
    if cfg.use_silent_reference:
        if not Path(cfg.silent_path).is_file():
            raise FileNotFoundError(f"use_silent_reference needs G_S: no file at {cfg.silent_path} "
                                    "(run the train_silent stage first)")
        digests["silent"] = file_digest(cfg.silent_path)
        silent = load_generator(cfg.silent_path)

    perceptual = None
    if lc.perceptual > 0 or (lc.triplet > 0 and lc.triplet_distance == "perceptual"):
        try:
            perceptual = PerceptualLoss.from_config(lc)
        except WeightsNotAvailable as e:
            reason = str(e).split("not available: ", 1)[-1]
            if lc.perceptual_fallback == "ssim":
                perceptual = StructuralLoss()
                print(f"[{role}] perceptual loss: 1 - SSIM stands in for VGG-19 ({e})")
                notes["perceptual"] = f"substitute: 1 - SSIM (VGG-19 not available: {reason})"
            else:
                print(f"[{role}] perceptual loss off: {e}")
                notes["perceptual"] = "not available: " + reason

    avhubert = None
    if lc.sync > 0 and lc.sync_kind in AVHUBERT_KINDS:
        if not cfg.avhubert_path:
            raise WeightsNotAvailable(f"sync loss '{lc.sync_kind}' not available: no AV-HuBERT checkpoint "
                                      f"(set {role}.avhubert_path)")
        from ..models.avhubert import load_avhubert_checkpoint

        if train_set is None:
            raise ValueError("the AV-HuBERT sync loss needs the training window dataset (for its clip context)")
        digests["avhubert"] = file_digest(cfg.avhubert_path)
        context = ClipContext(clips_dir, train_set.clip_ids, cfg.window.k, cfg.avhubert_context,
                              max_frames=cfg.avhubert_max_frames)
        avhubert = AVHubertSync(load_avhubert_checkpoint(cfg.avhubert_path), context, lc.sync_kind, lc.sync_clamp_min)
    return GeneratorTask(cfg, audio_encoder, audio_spec, expert, silent, perceptual, avhubert, notes, digests)


# ------------------------------------------------------------------------------------------------ analyses
def _analysis_batches(val_set: WindowDataset, n: int, batch_size: int, device: torch.device):
    from torch.utils.data import default_collate

    for first in range(0, n, batch_size):
        items = [val_set[i] for i in range(first, min(n, first + batch_size))]
        batch = default_collate(items)
        yield {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}


@torch.no_grad()
def silent_analysis(silent: Generator, val_set: WindowDataset, cfg: GeneratorTrainConfig,
                    device: torch.device) -> dict[str, Any]:
    """The G_S check on validation identity references: mouth opening before/after G_S with silent audio, and the
    distance to the closed-lip ground truth (silent.npy) when the data has it."""
    silent.eval()
    opens: dict[str, list[torch.Tensor]] = {"in": [], "out": [], "gt": []}
    l1_out, l1_in, psnr_out, psnr_in = [], [], [], []
    for batch in _analysis_batches(val_set, cfg.analysis_windows, cfg.loop.batch_size, device):
        identity = batch["identity"]
        closed = close_lips(silent, identity)
        opens["in"].append(mouth_opening(identity, cfg.mouth).flatten().cpu())
        opens["out"].append(mouth_opening(closed, cfg.mouth).flatten().cpu())
        if "identity_silent" in batch:
            target = batch["identity_silent"]
            s = target.shape[-1]
            opens["gt"].append(mouth_opening(target, cfg.mouth).flatten().cpu())
            l1_out.append((closed - target).abs().flatten(1).mean(1).cpu())
            l1_in.append((identity - target).abs().flatten(1).mean(1).cpu())
            psnr_out.append(psnr(closed.reshape(-1, 3, s, s), target.reshape(-1, 3, s, s)).cpu())
            psnr_in.append(psnr(identity.reshape(-1, 3, s, s), target.reshape(-1, 3, s, s)).cpu())
    has_gt = bool(opens["gt"])
    out = silent_check(torch.cat(opens["in"]).numpy(), torch.cat(opens["out"]).numpy(),
                       torch.cat(opens["gt"]).numpy() if has_gt else None)
    if has_gt:
        out.update({"l1_to_silent_gt": float(torch.cat(l1_out).mean()),
                    "l1_input_to_silent_gt": float(torch.cat(l1_in).mean()),
                    "psnr_to_silent_gt": mean_finite(torch.cat(psnr_out)),
                    "psnr_input_to_silent_gt": mean_finite(torch.cat(psnr_in))})
    else:
        out["silent_gt"] = "not available: the data has no closed-lip ground truth (silent.npy)"
    out["mouth_measure"] = "luminance contrast of the mouth box (analysis.leaking.mouth_opening)"
    return out


@torch.no_grad()
def leak_analysis(gen: Generator, silent: Generator | None, val_set: WindowDataset, cfg: GeneratorTrainConfig,
                  device: torch.device, silent_reason: str = "") -> dict[str, Any]:
    """Lip leaking of G_L: correlation of the identity reference's and the output's mouth opening, with the raw
    reference and with the G_S-closed reference."""
    gen.eval()
    opens: dict[str, list[torch.Tensor]] = {"ref": [], "gt": [], "raw": [], "silent": []}
    for batch in _analysis_batches(val_set, cfg.analysis_windows, cfg.loop.batch_size, device):
        identity = batch["identity"]
        opens["ref"].append(mouth_opening(identity, cfg.mouth).flatten().cpu())
        opens["gt"].append(mouth_opening(batch["frames"], cfg.mouth).flatten().cpu())
        out = gen(batch["pose"], identity, batch["indiv_mels"])
        opens["raw"].append(mouth_opening(out, cfg.mouth).flatten().cpu())
        if silent is not None:
            out = gen(batch["pose"], close_lips(silent, identity), batch["indiv_mels"])
            opens["silent"].append(mouth_opening(out, cfg.mouth).flatten().cpu())
    ref, gt = torch.cat(opens["ref"]).numpy(), torch.cat(opens["gt"]).numpy()
    result: dict[str, Any] = {"without_silent": lip_leak(ref, torch.cat(opens["raw"]).numpy(), gt)}
    if silent is not None:
        result["with_silent"] = lip_leak(ref, torch.cat(opens["silent"]).numpy(), gt)
    else:
        result["with_silent"] = f"not available: {silent_reason or 'no G_S'}"
    result["mouth_measure"] = "luminance contrast of the mouth box (analysis.leaking.mouth_opening)"
    return result


@torch.no_grad()
def sample_grid(gen: Generator, silent: Generator | None, batch: dict[str, Any], n: int,
                use_silent: bool) -> np.ndarray:
    """uint8 [n*S, 5*S, 3]: per row (middle frame of a window) GT | pose ref | identity ref | silent ref | generated.

    The silent-ref column is G_S(identity, silent audio) when a G_S is given, else mid-grey. For the G_S stage pass
    the model itself as `silent` and use_silent=False: the last column is then its reconstruction with real audio.
    """
    gen.eval()
    b = min(n, batch["frames"].shape[0])
    sub = {k: v[:b] for k, v in batch.items() if torch.is_tensor(v) and v.dim() > 1}
    closed = close_lips(silent, sub["identity"]) if silent is not None else torch.full_like(sub["identity"], 0.5)
    ref = closed if use_silent else sub["identity"]
    out = gen(sub["pose"], ref, sub["indiv_mels"]).float()
    mid = sub["frames"].shape[1] // 2
    cols = [sub["frames"], sub["pose"], sub["identity"], closed, out]
    grid = torch.cat([torch.cat([c[:, mid] for c in cols], dim=-1)[i] for i in range(b)], dim=-2)  # [3, bS, 5S]
    return (grid.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)


# ------------------------------------------------------------------------------------------------ the stage
STAGE_MODELS = {"silent": "models/silent.pt", "generator": "models/generator.pt"}


def _split(root: Path, name: str) -> list[str]:
    path = root / "data" / "splits" / f"{name}.txt"
    if not path.is_file():
        raise FileNotFoundError(f"split list not found: {path} (run the crop stage first)")
    ids = read_split(path)
    if not ids:
        raise ValueError(f"split {path} is empty")
    return ids


def _json_safe(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, float) and not math.isfinite(x):
        return "not available: not finite"
    return x


def run_stage(stage: str, cfg: GeneratorTrainConfig, run: Any = None, root: str | Path = ".") -> dict[str, Any]:
    """Train G_S (stage "silent") or G_L (stage "generator"), export the model, write metrics, curves and samples.

    Writes models/ckpt/<stage>/last.pt, models/<stage>.pt, metrics/<stage>.json, plots/<stage>_train.csv and
    plots/samples/<stage>.png under `root`. Returns the metrics dict.
    """
    import cv2
    import pandas as pd

    if stage not in STAGE_MODELS:
        raise ValueError(f"stage must be one of {sorted(STAGE_MODELS)}, got '{stage}'")
    root = Path(root)
    clips_dir, mels_dir = root / "data" / "clips", root / "data" / "mels"
    train_ids, val_ids = _split(root, "train"), _split(root, "val")
    with_silent = all((clips_dir / c / "silent.npy").is_file() for c in train_ids + val_ids)
    train_set = WindowDataset(clips_dir, mels_dir, train_ids, cfg.window, seed=cfg.loop.seed, with_silent=with_silent)
    val_set = WindowDataset(clips_dir, mels_dir, val_ids, cfg.window, seed=cfg.loop.seed + 1, with_silent=with_silent)

    cwd_paths = dataclasses.replace(cfg, **{k: str(root / getattr(cfg, k)) for k in
                                            ("syncnet_path", "avsyncnet_path", "silent_path") if getattr(cfg, k)})
    task = build_task(cwd_paths, train_set, clips_dir, role=stage)
    loop = Loop(cfg.loop, root / "models" / "ckpt" / stage, run)
    history = loop.fit(task, train_set, val_set)
    if not loop.is_main:
        return {}

    gen = task.generator.eval()
    save_generator(gen, root / STAGE_MODELS[stage], task.audio_spec,
                   use_silent_reference=task.silent is not None)
    device = loop.device
    task._place(device)

    metrics: dict[str, Any] = {"steps": loop.step, "train_windows": train_set.n_windows,
                               "val_windows": val_set.n_windows}
    evals = [r for r in history if "val_l1" in r]
    if evals:
        metrics.update({k: v for k, v in evals[-1].items() if k.startswith("val_")})
    speeds = [r["train_samples_per_s"] for r in history if "train_samples_per_s" in r]
    if speeds:
        metrics["train_samples_per_s"] = float(np.median(speeds))
    metrics.update(task.notes)
    metrics["perceptual"] = task.notes.get("perceptual", "on" if cfg.loss.perceptual > 0 else "off (weight 0)")

    silent_for_grid = None
    if stage == "silent":
        metrics["silent_check"] = silent_analysis(gen, val_set, cfg, device)
        silent_for_grid = gen
    else:
        silent, reason = task.silent, ""
        if silent is None:
            path = Path(cwd_paths.silent_path)
            if path.is_file():
                silent = load_generator(path).to(device)
            else:
                reason = f"no G_S at {path}"
        metrics["leak"] = leak_analysis(gen, silent, val_set, cfg, device, reason)
        silent_for_grid = silent

    batch = next(_analysis_batches(val_set, cfg.samples, cfg.samples, device))
    grid = sample_grid(gen, silent_for_grid, batch, cfg.samples, cfg.use_silent_reference and stage != "silent")
    png = root / "plots" / "samples" / f"{stage}.png"
    png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(png), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])

    (root / "metrics").mkdir(exist_ok=True)
    metrics = _json_safe(metrics)
    (root / "metrics" / f"{stage}.json").write_text(json.dumps(metrics, indent=2) + "\n")
    curve = root / "plots" / f"{stage}_train.csv"
    pd.DataFrame(history).to_csv(curve, index=False)
    if run is not None:
        run.log_metrics(metrics)
        run.log_artifact(png)
    return metrics
