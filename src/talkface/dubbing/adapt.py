"""Per-video adaptation: fine-tune G_L on the target video itself before dubbing it (`talkface dub --adapt N`).

    g_l = adapt_generator(g_l, g_s, video, AdaptConfig(steps=300), crop_cfg, window, mel, device)

The video's own frames and audio are a training set for exactly this face: its face crops (the dub's detector, pads
and smoothing; data/prepare.build_clip), its mel, and the windows every trainer reads (data/windows.py, through
talkface.model_inputs). The task is the generators' own (train/generator.GeneratorTask) with the reconstruction terms
only: the mouth-weighted pixel L1 and 1 - SSIM (the labelled stand-in for VGG-19 when its weights are absent). No GAN,
sync or triplet term: no discriminator or sync expert ships with the dubbing model, and a few hundred steps on one
face only need to learn that face's texture. The loop is the one training loop (train/loop.py), with its progress bar.

The adapted weights are cached under `cache_dir` (default ~/.cache/talkface/adapt) by a digest of the video's bytes,
the G_L weights and every setting that changes the result, so a second dub of the same video starts at once.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..analysis.leaking import MouthOpeningConfig
from ..data.mel import MelConfig, melspectrogram
from ..data.prepare import ClipRejected, CropConfig, build_clip
from ..data.store import write_clip
from ..data.windows import WindowDataset
from ..losses import LossConfig, PerceptualLoss, StructuralLoss
from ..model_inputs import WindowConfig
from ..models.generator_io import load_generator, save_generator, uses_silent_reference
from ..train.generator import GeneratorTask, GeneratorTrainConfig, file_digest
from ..train.loop import Loop, LoopConfig
from ..weights import WeightsNotAvailable
from . import DubError


TRAINABLE = ("all", "output")


def trainable_parameters(gen: nn.Module, which: str) -> list[nn.Parameter]:
    """The parameters adaptation updates: all but the frozen audio encoder, or only the last decoder level and the
    output head, which shape texture and colour but not how the mouth follows the audio or the upper face."""
    if which == "all":
        return [p for n, p in gen.named_parameters() if not n.startswith("audio_encoder.")]
    return [*gen.decoder[-1].parameters(), *gen.output.parameters()]


@dataclasses.dataclass
class AdaptConfig:
    """params.yaml `dub.adapt`."""

    steps: int = 0  # 0 = no adaptation; `talkface dub --adapt` alone uses default_steps
    default_steps: int = 300  # what `--adapt` without a number means (a 10 s 720p video: under 3 min on 2 cores)
    batch_size: int = 4
    lr: float = 1.0e-4  # Adam; the trained weights are the starting point, so a small step
    betas: list[float] = dataclasses.field(default_factory=lambda: [0.5, 0.999])
    pixel: float = 10.0
    pixel_mouth_weight: float = 3.0  # extra L1 weight inside mouth_box (losses.mouth_weights)
    perceptual: float = 1.0  # VGG-19 when cached, else 1 - SSIM (labelled)
    mouth_box: list[float] = dataclasses.field(default_factory=lambda: [0.6, 0.92, 0.3, 0.7])  # top, bottom, left, right
    max_missing_ratio: float = 0.5  # more frames without a face than this: the video cannot teach its face
    trainable: str = "all"  # all | output (the last decoder level and the output head: texture and colour only)
    seed: int = 0
    cache_dir: str = ""  # "" = $XDG_CACHE_HOME/talkface/adapt (~/.cache/talkface/adapt)

    def __post_init__(self) -> None:
        if self.steps < 0 or self.default_steps < 1:
            raise ValueError(f"dub.adapt.steps must be >= 0 and default_steps >= 1, got {self.steps}, "
                             f"{self.default_steps}")
        if self.trainable not in TRAINABLE:
            raise ValueError(f"dub.adapt.trainable must be one of {TRAINABLE}, got {self.trainable!r}")
        if len(self.mouth_box) != 4:
            raise ValueError(f"dub.adapt.mouth_box must be [top, bottom, left, right], got {self.mouth_box}")


def cache_root(cfg: AdaptConfig) -> Path:
    if cfg.cache_dir:
        return Path(cfg.cache_dir).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "talkface" / "adapt"


def weights_digest(gen: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in sorted(gen.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def cache_key(video: Path, g_l: nn.Module, cfg: AdaptConfig, crop: CropConfig, window: WindowConfig,
              mel: MelConfig) -> str:
    """Digest of what the adapted weights depend on: the video's bytes, G_L's weights, the settings."""
    settings = {"adapt": {k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("cache_dir", "default_steps")},
                "crop": {k: v for k, v in dataclasses.asdict(crop).items() if k not in ("workers", "chunk_frames",
                                                                                     "cache_mb")},
                "window": dataclasses.asdict(window), "mel": dataclasses.asdict(mel)}
    h = hashlib.sha256()
    for part in (file_digest(video), weights_digest(g_l), json.dumps(settings, sort_keys=True, default=str)):
        h.update(part.encode())
    return h.hexdigest()[:24]


def train_config(g_l: nn.Module, g_s: nn.Module | None, cfg: AdaptConfig, window: WindowConfig, mel: MelConfig,
                 device: str, checkpoint_every: int) -> GeneratorTrainConfig:
    top, bottom, left, right = cfg.mouth_box
    loss = LossConfig(gan=0.0, pixel=cfg.pixel, perceptual=cfg.perceptual, sync=0.0, triplet=0.0, sync_kind="none",
                      pixel_mouth_weight=cfg.pixel_mouth_weight, perceptual_fallback="ssim")
    loop = LoopConfig(steps=cfg.steps, batch_size=cfg.batch_size, eval_every=cfg.steps + 1, log_every=max(1, cfg.steps),
                      checkpoint_every=checkpoint_every, seed=cfg.seed, device=device, lr_schedule="constant")
    return GeneratorTrainConfig(loop=loop, model=g_l.cfg, loss=loss, window=window, mel=mel,
                                mouth=MouthOpeningConfig(top, bottom, left, right), lr=cfg.lr, disc_lr=cfg.lr,
                                betas=list(cfg.betas), audio_encoder="syncnet", expert="syncnet",
                                use_silent_reference=g_s is not None)


def adapt_generator(g_l: nn.Module, g_s: nn.Module | None, video: str | Path, cfg: AdaptConfig, crop: CropConfig,
                    window: WindowConfig, mel: MelConfig, device: torch.device, progress: bool = True,
                    log=print) -> nn.Module:
    """G_L fine-tuned for `cfg.steps` steps on `video` (its faces and its own audio), or the cached result of an
    earlier identical call. Returns a frozen generator in eval mode on `device`."""
    video = Path(video)
    if cfg.steps == 0:
        return g_l
    key = cache_key(video, g_l, cfg, crop, window, mel)
    cached = cache_root(cfg) / f"{key}.pt"
    if cached.is_file():
        log(f"[adapt] {video.name}: cached adaptation {cached}")
        return load_generator(cached, map_location=device).to(device).eval()

    with tempfile.TemporaryDirectory(prefix="talkface-adapt-") as tmp:
        tmp = Path(tmp)
        row = {"clip_id": "target", "speaker": "target", "video": str(video.resolve())}
        try:
            clip = build_clip(row, video.parent, crop, source="dub")
        except (ClipRejected, ValueError) as exc:
            raise DubError(f"cannot adapt to {video.name}: {exc}") from None
        write_clip(tmp / "clips", clip)
        (tmp / "mels").mkdir()
        np.save(tmp / "mels" / "target.npy", melspectrogram(np.asarray(clip.audio), mel))
        try:
            train_set = WindowDataset(tmp / "clips", tmp / "mels", ["target"], window, seed=cfg.seed)
        except ValueError as exc:
            raise DubError(f"cannot adapt to {video.name}: {exc}") from None

        tcfg = train_config(g_l, g_s, cfg, window, mel, str(device), checkpoint_every=cfg.steps)
        notes = {}
        try:
            perceptual = PerceptualLoss.from_config(tcfg.loss) if cfg.perceptual > 0 else None
        except WeightsNotAvailable:
            perceptual = StructuralLoss()
            notes["perceptual"] = "substitute: 1 - SSIM (VGG-19 not available)"
        audio_encoder = copy.deepcopy(g_l.audio_encoder)
        task = GeneratorTask(tcfg, audio_encoder, dict(g_l.audio), silent=copy.deepcopy(g_s) if g_s else None,
                             perceptual=perceptual, notes=notes, freeze_audio=True)
        task.generator.load_state_dict(g_l.state_dict())
        params = trainable_parameters(task.generator, cfg.trainable)
        for p in task.generator.parameters():
            p.requires_grad_(False)
        for p in params:
            p.requires_grad_(True)
        task.optimizers["gen"] = torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas))
        log(f"[adapt] {video.name}: {clip.meta['n_frames']} frames, {cfg.steps} steps "
            f"({notes.get('perceptual', 'VGG-19 perceptual')})")
        Loop(tcfg.loop, tmp / "ckpt", progress=progress).fit(task, train_set)
        gen = task.generator.eval()

    cached.parent.mkdir(parents=True, exist_ok=True)
    save_generator(gen, cached, dict(g_l.audio), uses_silent_reference(g_l))
    log(f"[adapt] cached as {cached}")
    return load_generator(cached, map_location=device).to(device).eval()

