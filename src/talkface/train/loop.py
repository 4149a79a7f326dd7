"""The one training loop of talkface: device, AMP, DDP, checkpoint/resume, progress, MLflow.

A *task* owns the models, the optimizers and the maths of one step; the loop owns everything else::

    class MyTask(Task):
        def __init__(self, ...):
            self.models = {"net": net}                     # everything saved in the checkpoint
            self.optimizers = {"net": torch.optim.Adam(net.parameters(), lr)}

        def train_step(self, batch, loop):                 # batch is already on loop.device
            with loop.autocast():
                loss = ...
            loop.backward_step(loss, "net")                # zero_grad, (scaled) backward, step
            return {"loss": loss.item()}

        def evaluate(self, batches, loop):                 # called under torch.no_grad(), models in eval mode
            return {"val_loss": ...}

    history = Loop(cfg, ckpt_dir, run).fit(task, train_set, val_set)

Determinism and resume: the datasets are map-style with a virtual length, and item `i` is drawn from `(seed, i)`.
The batch of step `s` on rank `r` is items `[(s*W + r)*B, (s*W + r + 1)*B)`, so a run resumed from the checkpoint of
step `s` sees exactly the batches an uninterrupted run sees. The checkpoint holds models, optimizers, grad scalers,
the torch RNG state and the metric history. It is reused only when the fingerprint matches: the task's
result-changing params (not the step count) and the training data (`train_set.fingerprint()` when the dataset has
one). So `dvc exp run -S lr=...` or new data never resumes a different run, while raising `steps` continues it.

Under `torchrun` (WORLD_SIZE > 1) the loop joins the process group (NCCL on CUDA, gloo on CPU) and wraps every
trainable model of the task in DistributedDataParallel; only rank 0 writes checkpoints and logs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from ..devices import resolve_device

CHECKPOINT = "last.pt"


@dataclasses.dataclass
class LoopConfig:
    """Loop parameters shared by every trainer (each trainer's params section has a `loop:` block)."""

    steps: int = 1000
    batch_size: int = 16
    eval_every: int = 200          # steps between validations (and at the end)
    eval_batches: int = 8          # validation batches per evaluation (fixed items, same every time)
    log_every: int = 20
    checkpoint_every: int = 100
    num_workers: int = 0
    seed: int = 0
    device: str = "auto"           # auto | cpu | cuda | cuda:N
    amp: bool = True               # autocast on CUDA (bf16 where supported, else fp16 + grad scaling)
    grad_clip: float = 0.0         # max grad norm, 0 = off
    lr_schedule: str = "constant"  # constant | cosine (decays every optimizer's lr to lr_final_ratio * lr at `steps`)
    lr_final_ratio: float = 0.05

    def __post_init__(self) -> None:
        if self.lr_schedule not in ("constant", "cosine"):
            raise ValueError(f"lr_schedule must be constant or cosine, got {self.lr_schedule!r}")

    def lr_factor(self, step: int) -> float:
        """Multiplier of the initial learning rate at `step` (a pure function of the step: resume-safe)."""
        if self.lr_schedule == "constant":
            return 1.0
        progress = min(1.0, step / max(1, self.steps))
        return self.lr_final_ratio + (1 - self.lr_final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class Task:
    """Base class of a trainable task (see the module docstring)."""

    models: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def train_step(self, batch: dict[str, Any], loop: "Loop") -> dict[str, float]:
        raise NotImplementedError

    def evaluate(self, batches: Iterable[dict[str, Any]], loop: "Loop") -> dict[str, float]:
        raise NotImplementedError

    def fingerprint(self) -> dict[str, Any]:
        """Result-changing settings; a checkpoint with another fingerprint is not resumed."""
        return {}


class StepBatchSampler(Sampler[list[int]]):
    """Index batches of steps [start, stop) for one rank; see the module docstring."""

    def __init__(self, start: int, stop: int, batch_size: int, rank: int = 0, world: int = 1):
        self.start, self.stop, self.batch_size, self.rank, self.world = start, stop, batch_size, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for step in range(self.start, self.stop):
            first = (step * self.world + self.rank) * self.batch_size
            yield list(range(first, first + self.batch_size))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


class Loop:
    def __init__(self, cfg: LoopConfig, checkpoint_dir: str | Path, run: Any | None = None, progress: bool = True):
        self.cfg = cfg
        self.checkpoint_dir = Path(checkpoint_dir)
        self.run = run
        self.progress = progress
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = resolve_device(cfg.device)
        if self.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            if self.device.type == "cuda":
                torch.cuda.set_device(self.device)
            torch.distributed.init_process_group(backend=backend)
        self.amp_dtype: torch.dtype | None = None
        if cfg.amp and self.device.type == "cuda":
            self.amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.step = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # ----- used by tasks -------------------------------------------------------------------------------------------

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision on CUDA; a no-op on CPU. Losses should be computed in float32 (`.float()`)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)

    def backward_step(self, loss: torch.Tensor, optimizer: str) -> None:
        """zero_grad, backward (scaled under fp16), optional grad clipping, optimizer step."""
        opt = self.task.optimizers[optimizer]
        opt.zero_grad(set_to_none=True)
        scaler = self.scalers.get(optimizer)
        if scaler is not None:
            scaler.scale(loss).backward()
            if self.cfg.grad_clip > 0:
                scaler.unscale_(opt)
                self._clip(opt)
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            if self.cfg.grad_clip > 0:
                self._clip(opt)
            opt.step()

    def unwrap(self, name: str) -> nn.Module:
        """The task's model `name` without its DDP wrapper."""
        model = self.task.models[name]
        return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model

    # ----- the loop -------------------------------------------------------------------------------------------------

    def fit(self, task: Task, train_set: Dataset, val_set: Dataset | None = None, collate_fn: Any = None,
            stop_after: int | None = None) -> list[dict[str, float]]:
        """Train until cfg.steps (or `stop_after` steps in this call, to simulate an interruption).

        Returns the metric history: one dict per logged/evaluated step, {"step": s, ...}.
        """
        self.task = task
        torch.manual_seed(self.cfg.seed)
        for model in task.models.values():
            model.to(self.device)
        for opt in task.optimizers.values():
            _optimizer_to(opt, self.device)
        if self.amp_dtype == torch.float16:
            self.scalers = {name: torch.amp.GradScaler("cuda") for name in task.optimizers}
        self._data_fingerprint = train_set.fingerprint() if hasattr(train_set, "fingerprint") else None
        history = self._resume(task)
        self._wrap_ddp(task)

        stop = self.cfg.steps if stop_after is None else min(self.cfg.steps, self.step + stop_after)
        sampler = StepBatchSampler(self.step, stop, self.cfg.batch_size, self.rank, self.world)
        loader = DataLoader(train_set, batch_sampler=sampler, num_workers=self.cfg.num_workers,
                            collate_fn=collate_fn, pin_memory=self.device.type == "cuda",
                            generator=_private_generator(self.cfg.seed))
        bar = _progress(self.progress and self.is_main, self.step, self.cfg.steps, type(task).__name__)
        window: list[dict[str, float]] = []
        samples, t0 = 0, time.perf_counter()
        try:
            for batch in loader:
                for model in task.models.values():
                    if any(p.requires_grad for p in model.parameters()):
                        model.train()
                self._set_lr(task)
                logs = task.train_step(to_device(batch, self.device), self)
                self.step += 1
                samples += self.cfg.batch_size * self.world
                window.append(logs)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix({k: f"{v:.3f}" for k, v in list(logs.items())[:3]})
                last = self.step == stop
                if self.step % self.cfg.log_every == 0 or last:
                    elapsed = time.perf_counter() - t0
                    row = {"step": self.step, **_mean(window), "train_samples_per_s": samples / max(elapsed, 1e-9)}
                    window, samples, t0 = [], 0, time.perf_counter()
                    if self.step % self.cfg.eval_every == 0 or self.step == self.cfg.steps:
                        if val_set is not None:
                            row.update(self.evaluate(task, val_set, collate_fn))
                        t0 = time.perf_counter()  # evaluation time is not training throughput
                    history.append(row)
                    if self.run is not None and self.is_main:
                        self.run.log_metrics({k: v for k, v in row.items() if k != "step"}, step=self.step)
                if self.step % self.cfg.checkpoint_every == 0 or last:
                    self._save(task, history)
        except KeyboardInterrupt:
            self._save(task, history)
            raise
        finally:
            if bar is not None:
                bar.close()
        self._unwrap_ddp(task)
        return history

    @torch.no_grad()
    def evaluate(self, task: Task, val_set: Dataset, collate_fn: Any = None) -> dict[str, float]:
        """Run task.evaluate on the first `eval_batches` fixed validation batches."""
        sampler = StepBatchSampler(0, self.cfg.eval_batches, self.cfg.batch_size)
        loader = DataLoader(val_set, batch_sampler=sampler, num_workers=self.cfg.num_workers, collate_fn=collate_fn,
                            generator=_private_generator(self.cfg.seed))
        modes = {name: m.training for name, m in task.models.items()}
        for m in task.models.values():
            m.eval()
        try:
            return task.evaluate((to_device(b, self.device) for b in loader), self)
        finally:
            for name, m in task.models.items():
                m.train(modes[name])

    # ----- checkpoints ----------------------------------------------------------------------------------------------

    def _fingerprint(self, task: Task) -> str:
        keep = {k: v for k, v in dataclasses.asdict(self.cfg).items()
                if k in ("batch_size", "seed", "amp", "grad_clip", "lr_schedule", "lr_final_ratio")}
        if self.cfg.lr_schedule != "constant":
            keep["steps"] = self.cfg.steps  # the schedule depends on the planned length
        blob = json.dumps({"loop": keep, "task": task.fingerprint(), "world": self.world,
                           "data": getattr(self, "_data_fingerprint", None)}, sort_keys=True, default=str)
        return hashlib.sha1(blob.encode()).hexdigest()[:16]

    def _resume(self, task: Task) -> list[dict[str, float]]:
        path = self.checkpoint_dir / CHECKPOINT
        if not path.exists():
            return []
        ckpt = torch.load(path, map_location=self.device, weights_only=True)
        if ckpt.get("fingerprint") != self._fingerprint(task):
            if self.is_main:
                print(f"[train] checkpoint {path} was made with other settings: starting from step 0")
            return []
        for name, model in task.models.items():
            model.load_state_dict(ckpt["models"][name])
        for name, opt in task.optimizers.items():
            opt.load_state_dict(ckpt["optimizers"][name])
        for name, scaler in self.scalers.items():
            if name in ckpt.get("scalers", {}):
                scaler.load_state_dict(ckpt["scalers"][name])
        torch.set_rng_state(ckpt["rng"].cpu())
        self.step = int(ckpt["step"])
        if self.is_main:
            print(f"[train] resumed from {path} at step {self.step}")
        return list(ckpt["history"])

    def _save(self, task: Task, history: list[dict[str, float]]) -> None:
        if not self.is_main:
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        ckpt = {
            "step": self.step,
            "fingerprint": self._fingerprint(task),
            "models": {name: self.unwrap(name).state_dict() for name in task.models},
            "optimizers": {name: opt.state_dict() for name, opt in task.optimizers.items()},
            "scalers": {name: s.state_dict() for name, s in self.scalers.items()},
            "rng": torch.get_rng_state(),
            "history": history,
        }
        tmp = self.checkpoint_dir / (CHECKPOINT + ".tmp")
        torch.save(ckpt, tmp)
        os.replace(tmp, self.checkpoint_dir / CHECKPOINT)

    # ----- helpers --------------------------------------------------------------------------------------------------

    def _wrap_ddp(self, task: Task) -> None:
        if self.world <= 1:
            return
        ids = [self.device.index] if self.device.type == "cuda" else None
        for name, model in task.models.items():
            if any(p.requires_grad for p in model.parameters()):
                task.models[name] = nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def _unwrap_ddp(self, task: Task) -> None:
        for name in list(task.models):
            task.models[name] = self.unwrap(name)

    def _set_lr(self, task: Task) -> None:
        factor = self.cfg.lr_factor(self.step)
        for opt in task.optimizers.values():
            for group in opt.param_groups:
                group.setdefault("initial_lr", group["lr"])
                group["lr"] = group["initial_lr"] * factor

    def _clip(self, opt: torch.optim.Optimizer) -> None:
        params = [p for group in opt.param_groups for p in group["params"] if p.grad is not None]
        torch.nn.utils.clip_grad_norm_(params, self.cfg.grad_clip)


def _private_generator(seed: int) -> torch.Generator:
    # A DataLoader draws its worker base seed from the global RNG unless given its own generator; that draw would
    # make the model's RNG stream (dropout, augmentation) depend on how often loaders were created, breaking resume.
    return torch.Generator().manual_seed(seed)


def _optimizer_to(opt: torch.optim.Optimizer, device: torch.device) -> None:
    for state in opt.state.values():
        for k, v in state.items():
            if isinstance(v, torch.Tensor):
                state[k] = v.to(device)


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = {k for r in rows for k in r}
    out = {}
    for k in sorted(keys):
        vals = [r[k] for r in rows if k in r and not math.isnan(r[k])]
        out[k] = sum(vals) / len(vals) if vals else float("nan")
    return out


def _progress(enabled: bool, initial: int, total: int, desc: str):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True, mininterval=1.0)
