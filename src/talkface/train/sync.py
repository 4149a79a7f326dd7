"""Training of the two lip-sync experts (SyncNet, AVSyncNet) on the shared loop (METHOD.md §2-3, P1 appendix A.3).

Each window of the batch gives one positive and one negative pair that share the video embedding:

    positive: (mel, frames)      the aligned audio window                        label 1
    negative: (neg_mel, frames)  a window of the same clip not overlapping them  label 0

so labels are exactly 50/50 and the (expensive) video tower runs once per window. Loss: BCE on the cosine of the
non-negative unit embeddings (`talkface.losses.expert_bce_loss`). Validation: BCE and sync accuracy, the fraction of
pairs whose decision `cos > threshold` matches the label.

    task = SyncTask(build_expert("syncnet", cfg), lr=1e-4)
    history = Loop(loop_cfg, "models/ckpt/syncnet").fit(task, train_set, val_set)

`train_expert` builds the datasets from the clip store and runs it all (used by stages/train_expert.py).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
from torch import nn

from ..analysis.sync_analysis import SyncAnalysisConfig
from ..data.mel import MelConfig
from ..augment import AugmentConfig, MelWarpConfig, random_augment, random_mel_warp
from ..data.windows import WindowConfig, WindowDataset
from ..losses import expert_bce_loss
from ..models.avsyncnet import AVSyncNetConfig
from ..models.expert_io import build_expert
from ..models.syncnet import SyncNetConfig
from ..models.expert import SyncExpert
from .loop import Loop, LoopConfig, Task

EXPERTS = ("syncnet", "avsyncnet")
ADAM_BETAS = (0.9, 0.999)  # torch.optim.Adam's default, what the experts have always been trained with


# ---------------------------------------------------------------- config (params.yaml sections `syncnet`, `avsyncnet`)
@dataclass
class ExpertTrainConfig:
    """Fields shared by both expert sections."""

    lr: float = 1e-4                     # Adam, Wav2Lip / P1
    betas: list[float] = field(default_factory=lambda: list(ADAM_BETAS))  # Adam betas (torch's default)
    threshold: float = 0.5               # sync decision for the accuracy: cos > threshold means "in sync"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    mel_warp: MelWarpConfig = field(default_factory=MelWarpConfig)  # [ours] voice (formant) perturbation of the mels
    mel: MelConfig = field(default_factory=MelConfig)  # passed down by the stage (mels.mel): the bands mel_warp warps
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(batch_size=64))  # Wav2Lip batch 64
    analysis: SyncAnalysisConfig = field(default_factory=SyncAnalysisConfig)


@dataclass
class SyncNetTrainConfig(ExpertTrainConfig):
    """params.yaml `syncnet`: the Wav2Lip expert; `model` is SyncNetConfig (width 32 = Wav2Lip)."""

    model: SyncNetConfig = field(default_factory=SyncNetConfig)

    def model_config(self) -> SyncNetConfig:
        return self.model


@dataclass
class AVSyncNetTrainConfig(ExpertTrainConfig):
    """params.yaml `avsyncnet`: P1's expert from a preset ("paper" | "small") plus field overrides in `model`."""

    preset: str = "paper"
    model: dict[str, Any] = field(default_factory=dict)  # AVSyncNetConfig fields that replace the preset's

    def model_config(self) -> AVSyncNetConfig:
        try:
            return AVSyncNetConfig.preset(self.preset, **self.model)
        except TypeError as e:  # dataclasses.replace on an unknown field
            known = [f.name for f in dataclasses.fields(AVSyncNetConfig)]
            raise ValueError(f"avsyncnet.model: unknown field in {sorted(self.model)}; known: {known}") from e


CONFIGS: dict[str, type[ExpertTrainConfig]] = {"syncnet": SyncNetTrainConfig, "avsyncnet": AVSyncNetTrainConfig}


# ---------------------------------------------------------------- the task
class PairScorer(nn.Module):
    """Wraps an expert so that one forward (the one DDP sees) scores a window against two audio windows.

    frames [B,k,3,S,S], mel [B,1,80,16], neg_mel [B,1,80,16] -> cos [2B] (positives first), float32.
    """

    def __init__(self, expert: SyncExpert):
        super().__init__()
        self.expert = expert

    def forward(self, frames: torch.Tensor, mel: torch.Tensor, neg_mel: torch.Tensor) -> torch.Tensor:
        v = self.expert.embed_video(frames)
        a = self.expert.embed_audio(torch.cat([mel, neg_mel]))  # one pass: BatchNorm sees both halves
        return self.expert.similarity(a.float(), torch.cat([v, v]).float())


def pair_labels(batch_size: int, device: torch.device | str) -> torch.Tensor:
    """[2B] labels matching PairScorer's output: B ones (aligned), B zeros (non-overlapping)."""
    return torch.cat([torch.ones(batch_size, device=device), torch.zeros(batch_size, device=device)])


class SyncTask(Task):
    """Trains one sync expert with BCE on cosine; see the module docstring."""

    def __init__(self, expert: SyncExpert, lr: float = 1e-4, augment: AugmentConfig | None = None,
                 threshold: float = 0.5, betas: tuple[float, float] = ADAM_BETAS,
                 mel_warp: MelWarpConfig | None = None, mel: MelConfig | None = None):
        if len(betas) != 2:
            raise ValueError(f"betas must be two numbers, got {betas}")
        self.expert = expert
        self.augment = augment or AugmentConfig()
        self.mel_warp, self.mel = mel_warp or MelWarpConfig(), mel or MelConfig()
        self.lr, self.threshold, self.betas = lr, threshold, tuple(float(b) for b in betas)
        self.models = {"expert": PairScorer(expert)}
        self.optimizers = {"expert": torch.optim.Adam(expert.parameters(), lr=lr, betas=self.betas)}

    def train_step(self, batch: dict[str, Any], loop: Loop) -> dict[str, float]:
        frames = random_augment(batch["frames"], self.augment)
        # one voice per window: the aligned and the negative window get the same warp
        mel, neg_mel = random_mel_warp([batch["mel"], batch["neg_mel"]], self.mel_warp, self.mel)
        with loop.autocast():
            cos = self.models["expert"](frames, mel, neg_mel)
        labels = pair_labels(frames.shape[0], cos.device)
        loss = expert_bce_loss(cos.float(), labels)  # BCE is not autocast-safe: float32
        loop.backward_step(loss, "expert")
        return {"loss": loss.item(), "acc": _accuracy(cos, labels, self.threshold)}

    def evaluate(self, batches: Iterable[dict[str, Any]], loop: Loop) -> dict[str, float]:
        scorer = loop.unwrap("expert")
        cos_all, labels_all = [], []
        for batch in batches:
            with loop.autocast():
                cos = scorer(batch["frames"], batch["mel"], batch["neg_mel"]).float()
            cos_all.append(cos)
            labels_all.append(pair_labels(batch["frames"].shape[0], cos.device))
        if not cos_all:
            raise ValueError("validation produced no batches (loop.eval_batches must be >= 1)")
        cos, labels = torch.cat(cos_all), torch.cat(labels_all)
        pos, neg = cos[labels == 1], cos[labels == 0]
        return {
            "val_loss": expert_bce_loss(cos, labels).item(),
            "val_acc": _accuracy(cos, labels, self.threshold),
            "val_cos_pos": pos.mean().item(),
            "val_cos_neg": neg.mean().item(),
        }

    def fingerprint(self) -> dict[str, Any]:
        out = {"arch": self.expert.arch, "model": dataclasses.asdict(self.expert.cfg), "lr": self.lr,
               "augment": dataclasses.asdict(self.augment)}
        if self.betas != ADAM_BETAS:  # only when changed: checkpoints made before the key existed still resume
            out["betas"] = list(self.betas)
        if self.mel_warp.prob > 0:  # likewise
            out["mel_warp"] = dataclasses.asdict(self.mel_warp)
        return out


def _accuracy(cos: torch.Tensor, labels: torch.Tensor, threshold: float) -> float:
    return ((cos.detach() > threshold).float() == labels).float().mean().item()


# ---------------------------------------------------------------- the whole training of one expert
@dataclass
class TrainedExpert:
    expert: SyncExpert                 # trained, eval mode, on the loop's device
    history: list[dict[str, float]]    # the loop's metric rows
    device: torch.device


def window_datasets(clips_dir: str | Path, mels_dir: str | Path, ids: dict[str, list[str]], window: WindowConfig,
                    seed: int) -> dict[str, WindowDataset]:
    """One WindowDataset per non-empty split; each split has its own item stream (seed + split index)."""
    out = {}
    for i, (split, clip_ids) in enumerate(ids.items()):
        if clip_ids:
            out[split] = WindowDataset(clips_dir, mels_dir, clip_ids, window, seed=seed + i)
    return out


def train_expert(name: str, cfg: ExpertTrainConfig, train_set: WindowDataset, val_set: WindowDataset | None,
                 checkpoint_dir: str | Path, run: Any = None, progress: bool = True,
                 stop_after: int | None = None) -> TrainedExpert:
    """Build expert `name` from cfg (seeded by cfg.loop.seed), train it on the loop (resuming from checkpoint_dir)."""
    if name not in EXPERTS:
        raise ValueError(f"unknown sync expert '{name}'; known: {EXPERTS}")
    model_cfg = cfg.model_config()
    if model_cfg.k != train_set.cfg.k:
        raise ValueError(f"{name}.model.k={model_cfg.k} but the window dataset gives k={train_set.cfg.k} frames")
    torch.manual_seed(cfg.loop.seed)  # same initial weights for the same seed (resume compares fingerprints only)
    expert = build_expert(name, model_cfg)
    task = SyncTask(expert, lr=cfg.lr, augment=cfg.augment, threshold=cfg.threshold, betas=tuple(cfg.betas),
                    mel_warp=cfg.mel_warp, mel=cfg.mel)
    loop = Loop(cfg.loop, checkpoint_dir, run=run, progress=progress)
    history = loop.fit(task, train_set, val_set, stop_after=stop_after)
    return TrainedExpert(expert=expert.eval(), history=history, device=loop.device)


def train_summary(history: list[dict[str, float]]) -> dict[str, float]:
    """Final validation figures and the mean training throughput from the loop history."""
    evals = [r for r in history if "val_loss" in r]
    speeds = [r["train_samples_per_s"] for r in history if "train_samples_per_s" in r]
    out: dict[str, float] = {"steps": int(history[-1]["step"]) if history else 0}
    if evals:
        last = evals[-1]
        out.update({k: last[k] for k in ("val_loss", "val_acc", "val_cos_pos", "val_cos_neg") if k in last})
    if speeds:
        out["train_samples_per_s"] = sum(speeds) / len(speeds)
    return out


def curve_rows(history: list[dict[str, float]]) -> list[dict[str, float]]:
    """Rows (step, loss, val_loss, val_acc) of the evaluated steps, for plots/<name>_train.csv."""
    return [{"step": int(r["step"]), "loss": r.get("loss", float("nan")), "val_loss": r["val_loss"],
             "val_acc": r["val_acc"]} for r in history if "val_loss" in r]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
