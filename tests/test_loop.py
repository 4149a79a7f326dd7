"""The shared training loop: deterministic batches, exact resume, fingerprint guard, 2-process DDP on CPU (gloo)."""

import os
import socket
import subprocess
import sys

import torch
from torch import nn
from torch.utils.data import Dataset

from talkface.train.loop import Loop, LoopConfig, StepBatchSampler, Task


class _Points(Dataset):
    """Item i is drawn from (seed, i): a noisy linear regression sample."""

    def __len__(self):
        return 10**6

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(1000 + i)
        x = torch.randn(4, generator=g)
        return {"x": x, "y": x.sum(0, keepdim=True) + 0.1 * torch.randn(1, generator=g)}


class _Regression(Task):
    def __init__(self, lr=0.05):
        torch.manual_seed(0)
        net = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 1))
        self.models = {"net": net}
        self.optimizers = {"net": torch.optim.Adam(net.parameters(), lr=lr)}
        self.lr = lr

    def train_step(self, batch, loop):
        loss = nn.functional.mse_loss(self.models["net"](batch["x"]), batch["y"])
        loop.backward_step(loss, "net")
        return {"loss": loss.item()}

    def evaluate(self, batches, loop):
        losses = [nn.functional.mse_loss(self.models["net"](b["x"]), b["y"]).item() for b in batches]
        return {"val_loss": sum(losses) / len(losses)}

    def fingerprint(self):
        return {"lr": self.lr}


def _cfg(**kw):
    base = dict(steps=30, batch_size=8, eval_every=10, eval_batches=2, log_every=5, checkpoint_every=7, device="cpu")
    base.update(kw)
    return LoopConfig(**base)


def test_batches_of_a_step_are_fixed():
    s = StepBatchSampler(3, 5, batch_size=4, rank=1, world=2)
    assert list(s) == [[28, 29, 30, 31], [36, 37, 38, 39]]


def test_training_reduces_loss(tmp_path):
    task, loop = _Regression(), Loop(_cfg(steps=60), tmp_path, progress=False)
    before = loop.evaluate(task, _Points())["val_loss"]
    history = loop.fit(task, _Points(), _Points())
    assert history[-1]["val_loss"] < 0.2 * before
    assert history[-1]["step"] == 60 and history[-1]["train_samples_per_s"] > 0


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    full = _Regression()
    Loop(_cfg(), tmp_path / "a", progress=False).fit(full, _Points(), _Points())

    part = _Regression()
    loop = Loop(_cfg(), tmp_path / "b", progress=False)
    loop.fit(part, _Points(), _Points(), stop_after=13)  # "interrupted" after step 13 (checkpoint saved at 13)
    assert loop.step == 13
    resumed = _Regression()
    loop2 = Loop(_cfg(), tmp_path / "b", progress=False)
    loop2.fit(resumed, _Points(), _Points())
    assert loop2.step == 30
    for a, b in zip(full.models["net"].state_dict().values(), resumed.models["net"].state_dict().values()):
        assert torch.equal(a, b)


def test_checkpoint_of_other_settings_is_not_resumed(tmp_path):
    Loop(_cfg(steps=10), tmp_path, progress=False).fit(_Regression(lr=0.05), _Points())
    loop = Loop(_cfg(steps=10), tmp_path, progress=False)
    loop.fit(_Regression(lr=0.01), _Points(), stop_after=3)
    assert loop.step == 3  # started from 0, not from the lr=0.05 checkpoint at step 10


_DDP_SCRIPT = r"""
import os, sys, torch
sys.path.insert(0, os.environ["TESTS_DIR"])
from test_loop import _Regression, _Points, _cfg
from talkface.train.loop import Loop
task = _Regression()
loop = Loop(_cfg(steps=6, checkpoint_every=100), os.environ["CKPT"], progress=False)
loop.fit(task, _Points())
w = torch.cat([p.detach().flatten() for p in task.models["net"].parameters()])
torch.save(w, os.path.join(os.environ["CKPT"], f"w{loop.rank}.pt"))
torch.distributed.destroy_process_group()
"""


def test_ddp_two_processes_on_cpu(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "ddp.py"
    script.write_text(_DDP_SCRIPT)
    env = {**os.environ, "TESTS_DIR": os.path.dirname(__file__), "CKPT": str(tmp_path), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(port), str(script)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    w0, w1 = torch.load(tmp_path / "w0.pt"), torch.load(tmp_path / "w1.pt")
    assert torch.allclose(w0, w1)  # DDP keeps the replicas identical
    assert (tmp_path / "last.pt").exists()


def test_cosine_schedule_values_and_resume(tmp_path):
    cfg = _cfg(steps=10, lr_schedule="cosine", lr_final_ratio=0.1)
    assert cfg.lr_factor(0) == 1.0 and abs(cfg.lr_factor(10) - 0.1) < 1e-12 and abs(cfg.lr_factor(5) - 0.55) < 1e-12
    full, part = _Regression(), _Regression()
    Loop(cfg, tmp_path / "a", progress=False).fit(full, _Points())
    Loop(cfg, tmp_path / "b", progress=False).fit(part, _Points(), stop_after=4)
    resumed = _Regression()
    Loop(cfg, tmp_path / "b", progress=False).fit(resumed, _Points())
    assert resumed.optimizers["net"].param_groups[0]["lr"] == full.optimizers["net"].param_groups[0]["lr"]
    for a, b in zip(full.models["net"].parameters(), resumed.models["net"].parameters()):
        assert torch.equal(a, b)
