"""Training of the generators G_S (silent lips) and G_L (lip sync): the task (P1 and P2 losses, validation).

    cfg = section(params, "generator", GeneratorTrainConfig, passed={...})   # stages/train_generator.py
    task = build_task(cfg, train_set, clips_dir)                            # loads the frozen helpers the config names
    Loop(cfg.loop, checkpoint_dir).fit(task, train_set, val_set)            # train/generator_stage.py does it all

One task, `GeneratorTask`, trains both (METHOD.md §4-5). A step:
0. [ours, `appearance` and `mel_warp`, off by default] one random colour change / mirror per window, alike for all its
   images, and one random formant shift (vocal tract length perturbation) per window, alike for all its mels;
1. identity reference: the window's `identity` frames, or, with `use_silent_reference`, those frames rewritten by a
   frozen trained G_S fed the silent mel (model_inputs.close_lips), so their lips are closed (P1);
2. generated = G(pose, reference, indiv_mels), every input as talkface.model_inputs builds it;
3. generator loss = sum of weight x term over pixel (L1), perceptual (VGG-19; off with a recorded reason when the
   weights are not in the torch cache), GAN (non-saturating), sync (none | plain | stabilized through a frozen expert
   | the three AV-HuBERT variants of P2, train/avhubert_sync.py) and adaptive triplet (P1);
4. discriminator step on real frames vs detached generated frames (two optimizers, `loop.backward_step`).
G_S is the same task with no sync and no triplet term (params section `silent`); `silent_target` > 0 adds an
[ours, synthetic only] L1 term pulling G_S(identity, silent audio) toward the closed-lip ground truth silent.npy.
The analyses after training (silent check, lip leak, sample grid) are analysis/generator_checks.py.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from ..analysis.leaking import MouthOpeningConfig, mouth_opening
from ..augment import AppearanceConfig, MelWarpConfig, random_appearance, random_mel_warp
from ..data.mel import MelConfig
from ..data.windows import WindowDataset
from ..losses import (LossConfig, PerceptualLoss, StructuralLoss, adaptive_triplet_loss, gan_discriminator_loss, gan_generator_loss,
                      mouth_weights, pixel_distance, pixel_loss, plain_sync_loss, stabilized_sync_loss, weighted_total)
from ..metrics.image import mean_finite, psnr, ssim
from ..model_inputs import WindowConfig, close_lips, silent_mel, silent_reference_inputs
from ..models.discriminator import Discriminator, DiscriminatorConfig
from ..models.expert import SyncExpert
from ..models.expert_io import load_expert
from ..models.generator import Generator, GeneratorConfig
from ..models.generator_io import expert_audio_spec, joint_audio_spec, load_generator
from ..models.layers import AudioEncoder
from ..weights import WeightsNotAvailable
from .avhubert_sync import AVHUBERT_KINDS, AVHubertSync, ClipContext
from .loop import Loop, LoopConfig, Task

EXPERT_KINDS = {"plain", "stabilized"}


@dataclass
class GeneratorTrainConfig:
    """params.yaml sections `silent` (G_S) and `generator` (G_L), without their `analysis` subsection (read by the
    analysis stage); `window`, `mel` and `model.face_size` are passed down by the stage (defined once elsewhere)."""

    loop: LoopConfig = field(default_factory=LoopConfig)
    model: GeneratorConfig = field(default_factory=GeneratorConfig)
    disc: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    mel: MelConfig = field(default_factory=MelConfig)  # the silent mel of G_S comes from these mel parameters
    mouth: MouthOpeningConfig = field(default_factory=MouthOpeningConfig)  # mouth box of the val_mouth_open metrics
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
    speaker_power: float = 1.0  # [ours] training draws speaker s with p ~ (its windows)^power: 1 = every window alike
    appearance: AppearanceConfig = field(default_factory=AppearanceConfig)  # [ours] colour/mirror draws per window
    mel_warp: MelWarpConfig = field(default_factory=MelWarpConfig)  # [ours] voice (formant) perturbation of the mels

    def __post_init__(self) -> None:
        if self.speaker_power < 0:
            raise ValueError(f"speaker_power must be >= 0, got {self.speaker_power}")
        if self.audio_encoder not in ("syncnet", "avsyncnet", "joint"):
            raise ValueError(f"audio_encoder must be syncnet, avsyncnet or joint, got '{self.audio_encoder}'")
        if self.expert not in ("syncnet", "avsyncnet"):
            raise ValueError(f"expert must be syncnet or avsyncnet, got '{self.expert}'")
        if len(self.betas) != 2:
            raise ValueError(f"betas must be two numbers, got {self.betas}")
        if self.model.k != self.window.k:
            raise ValueError(f"model.k={self.model.k} but the windows give k={self.window.k} frames")

    def expert_path(self, name: str) -> str:
        return self.syncnet_path if name == "syncnet" else self.avsyncnet_path


# ------------------------------------------------------------------------------------------------ small helpers
def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def file_digest(path: str | Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------------------ the task
class GeneratorTask(Task):
    """G (and D) training; see the module docstring. Frozen helpers are not in `models` (not checkpointed)."""

    def __init__(self, cfg: GeneratorTrainConfig, audio_encoder: nn.Module, audio_spec: dict[str, Any],
                 expert: SyncExpert | None = None, silent: Generator | None = None,
                 perceptual: PerceptualLoss | None = None, avhubert: AVHubertSync | None = None,
                 notes: dict[str, str] | None = None, file_digests: dict[str, str] | None = None,
                 freeze_audio: bool | None = None):
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
        if freeze_audio is None:  # an expert's encoder stays frozen; a joint one (setup A) trains with G
            freeze_audio = audio_spec["source"] != "joint"
        gen = Generator(cfg.model, audio_encoder, freeze_audio=freeze_audio)
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
        self.silent_mel = torch.from_numpy(silent_mel(cfg.mel, cfg.window.mel_steps))  # [1,80,16], G_S's audio
        self._device: torch.device | None = None
        if lc.triplet > 0 and lc.triplet_distance == "perceptual" and perceptual is None:
            self.notes.setdefault("triplet_distance", "pixel (perceptual distance not available: no VGG-19 weights)")

    @property
    def generator(self) -> Generator:
        return _unwrap(self.models["gen"])

    def fingerprint(self) -> dict[str, Any]:
        d = dataclasses.asdict(self.cfg)
        # not result-changing: the loop's own part is fingerprinted by the loop, the mouth box only measures (unless the
        # mouth-weighted L1 uses it); the mel parameters act through the mel files (the dataset's fingerprint) and the
        # silent mel derived from them
        for key in ("loop", "mel") + (("mouth",) if self.cfg.loss.pixel_mouth_weight == 0 else ()):
            d.pop(key)
        if self.cfg.mel_warp.prob <= 0:  # off: checkpoints made before the key existed still resume
            d.pop("mel_warp")
        return {"cfg": d, "files": self.file_digests, "perceptual": self.perceptual is not None}

    def _place(self, device: torch.device) -> None:
        if self._device == device:
            return
        for helper in (self.expert, self.silent, self.perceptual, self.avhubert.model if self.avhubert else None):
            if helper is not None:
                helper.to(device)
        self.silent_mel = self.silent_mel.to(device)
        self._device = device

    # ----- pieces shared by training, evaluation and the analyses
    def reference(self, identity: torch.Tensor, use_silent: bool | None = None) -> torch.Tensor:
        """The identity reference the generator sees: raw, or G_S(identity, silent audio) when configured."""
        use_silent = self.cfg.use_silent_reference if use_silent is None else use_silent
        if not use_silent:
            return identity
        if self.silent is None:
            raise ValueError("no G_S loaded")
        with torch.no_grad():
            return close_lips(self.silent, identity, self.silent_mel)

    def recolour(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The training batch with `appearance` drawn per window, alike for every image of it (target, pose input,
        identity reference and, when present, its closed-lip ground truth); the same batch when that is off."""
        names = [n for n in ("frames", "pose", "identity", "identity_silent") if n in batch]
        images = random_appearance([batch[n] for n in names], self.cfg.appearance)
        return {**batch, **dict(zip(names, images))}

    def revoice(self, batch: dict[str, Any]) -> dict[str, Any]:
        """The training batch with `mel_warp` drawn per window, alike for its per-frame mels and its sync window
        (one voice per window); the same batch when that is off. G_S's silent mel is not warped."""
        names = [n for n in ("indiv_mels", "mel") if n in batch]
        mels = random_mel_warp([batch[n] for n in names], self.cfg.mel_warp, self.cfg.mel)
        return {**batch, **dict(zip(names, mels))}

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

    def _pixel_weights(self, gt: torch.Tensor) -> torch.Tensor | None:
        if self.cfg.loss.pixel_mouth_weight == 0:
            return None
        m = self.cfg.mouth
        return mouth_weights(gt.shape[-1], (m.top, m.bottom, m.left, m.right),
                             self.cfg.loss.pixel_mouth_weight).to(gt.device)

    def gan_active(self, loop: Loop) -> bool:
        return self.cfg.loss.gan > 0 and loop.step >= self.cfg.gan_start_step

    def sync_active(self, loop: Loop) -> bool:
        return self.cfg.loss.sync > 0 and self.cfg.loss.sync_kind != "none" and loop.step >= self.cfg.sync_start_step

    def loss_terms(self, out: torch.Tensor, batch: dict[str, Any], ref: torch.Tensor, loop: Loop) -> dict[str, torch.Tensor]:
        """Unweighted generator loss terms with a nonzero weight (float32 scalars)."""
        lc, gt, terms = self.cfg.loss, batch["frames"], {}
        if lc.pixel > 0:
            terms["pixel"] = pixel_loss(out, gt, self._pixel_weights(gt))
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
        batch = self.revoice(self.recolour(batch))
        ref = self.reference(batch["identity"])
        pose, mels = batch["pose"], batch["indiv_mels"]
        b = pose.shape[0]
        closed_target = cfg.silent_target > 0 and "identity_silent" in batch
        if closed_target:  # one forward for both inputs (a DDP module is called once per step)
            s_pose, s_ref, s_mels = silent_reference_inputs(batch["identity"], self.silent_mel)
            pose = torch.cat([pose, s_pose])
            ref = torch.cat([ref, s_ref])
            mels = torch.cat([mels, s_mels])
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


# ------------------------------------------------------------------------------------------------ building from files
def build_task(cfg: GeneratorTrainConfig, train_set: WindowDataset | None = None, clips_dir: str | Path | None = None,
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

        if train_set is None or clips_dir is None:
            raise ValueError("the AV-HuBERT sync loss needs the training window dataset and its clips_dir (for its "
                             "clip context)")
        digests["avhubert"] = file_digest(cfg.avhubert_path)
        context = ClipContext(clips_dir, train_set.clip_ids, cfg.window.k, cfg.avhubert_context,
                              max_frames=cfg.avhubert_max_frames)
        avhubert = AVHubertSync(load_avhubert_checkpoint(cfg.avhubert_path), context, lc.sync_kind, lc.sync_clamp_min)
    return GeneratorTask(cfg, audio_encoder, audio_spec, expert, silent, perceptual, avhubert, notes, digests)
