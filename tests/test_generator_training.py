"""Generator training: task step, loss weighting, frozen helpers, silent audio, DDP, checkpoints, lip leaking, AV-HuBERT."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from talkface.analysis.leaking import landmark_opening, lip_leak, mouth_opening, pearson, silent_check
from talkface.faces.mouth_roi import lip_input, mouth_rois
from talkface.losses import LossConfig, pixel_loss, plain_sync_loss
from talkface.models.discriminator import DiscriminatorConfig
from talkface.models.generator import GeneratorConfig
from talkface.models.syncnet import SyncNet, SyncNetConfig
from talkface.models.avhubert import AVHubert, AVHubertArch
from talkface.models.generator import Generator
from talkface.models.generator_io import (expert_audio_spec, joint_audio_spec, load_generator, save_generator)
from talkface.models.layers import AudioEncoder
from talkface.data.mel import MelConfig
from talkface.model_inputs import pose_input, silent_mel
from talkface.train.avhubert_sync import AVHubertSync, ClipContext, differentiable_lip_rois, roi_matrices
from talkface.train.generator import GeneratorTask, GeneratorTrainConfig, build_task
from talkface.train.loop import Loop, LoopConfig
from talkface.weights import WeightsNotAvailable

S, K = 16, 5


class _Windows(Dataset):
    """Random windows shaped like WindowDataset items (item i drawn from i)."""

    def __len__(self):
        return 10**6

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        frames = torch.rand(K, 3, S, S, generator=g)
        return {"frames": frames, "pose": pose_input(frames), "identity": torch.rand(K, 3, S, S, generator=g),
                "identity_silent": torch.rand(K, 3, S, S, generator=g),
                "mel": torch.rand(1, 80, 16, generator=g) * 8 - 4,
                "indiv_mels": torch.rand(K, 1, 80, 16, generator=g) * 8 - 4, "clip": 0, "start": 2}


def _cfg(**loss):
    return GeneratorTrainConfig(
        loop=LoopConfig(steps=2, batch_size=2, eval_every=2, eval_batches=1, log_every=1, checkpoint_every=100,
                        device="cpu"),
        model=GeneratorConfig(face_size=S, k=K, width=4, max_width=16),
        disc=DiscriminatorConfig(n_layers=4, width=4, max_width=16),
        loss=LossConfig(**loss))


def _expert():
    torch.manual_seed(1)
    return SyncNet(SyncNetConfig(k=K, width=4)).eval()


def _silent_generator(cfg):
    torch.manual_seed(2)
    return Generator(cfg.model, _expert().audio_encoder).eval()


def _task(cfg, silent=None):
    expert = _expert()
    import copy

    return GeneratorTask(cfg, copy.deepcopy(expert.audio_encoder), expert_audio_spec(expert), expert=expert,
                         silent=silent)


def _loop(task, tmp_path):
    """A CPU loop bound to `task`, for calling task.train_step directly."""
    loop = Loop(task.cfg.loop, tmp_path, progress=False)
    loop.task = task
    return loop


def _batch(n=2):
    from torch.utils.data import default_collate

    return default_collate([_Windows()[i] for i in range(n)])


def _flat(module):
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


def test_silence_mel_is_the_floor_everywhere():
    m = silent_mel(MelConfig(), 16)
    assert m.shape == (1, 80, 16) and np.all(m == -4.0)
    assert np.all(silent_mel(MelConfig(max_abs_value=2.0), 16) == -2.0)  # from the configured mel parameters
    task = _task(_cfg(sync_kind="none", perceptual=0.0))
    assert torch.equal(task.silent_mel, torch.full((1, 80, 16), -4.0))


def test_step_trains_generator_but_not_frozen_expert_or_silent_generator(tmp_path):
    cfg = _cfg(sync_kind="stabilized", perceptual=0.0, triplet_distance="pixel")
    cfg.use_silent_reference = True
    silent = _silent_generator(cfg)
    task = _task(cfg, silent)
    loop = Loop(cfg.loop, tmp_path, progress=False)
    gen0, exp0, sil0, d0 = (_flat(task.models["gen"]), _flat(task.expert), _flat(silent), _flat(task.models["disc"]))
    history = loop.fit(task, _Windows(), _Windows())
    assert not torch.equal(gen0, _flat(task.models["gen"]))
    assert not torch.equal(d0, _flat(task.models["disc"]))
    assert torch.equal(exp0, _flat(task.expert)) and torch.equal(sil0, _flat(silent))
    assert not any(p.requires_grad for p in task.expert.parameters())
    assert not any(p.requires_grad for p in silent.parameters())
    assert not any(p.requires_grad for p in task.generator.audio_encoder.parameters())
    row = history[-1]
    for key in ("loss_pixel", "loss_gan", "loss_sync", "loss_triplet", "loss_disc", "val_l1", "val_psnr", "val_ssim",
                "val_sync", "val_psnr_masked", "val_mouth_open"):
        assert key in row and np.isfinite(row[key]), key
    out = task.generator(_batch()["pose"], _batch()["identity"], _batch()["indiv_mels"])
    assert out.shape == (2, K, 3, S, S) and out.min() >= 0 and out.max() <= 1


def test_loss_terms_carry_their_weights(tmp_path):
    cfg = _cfg(gan=0.0, pixel=10.0, perceptual=0.0, sync=0.0, sync_kind="none", triplet=0.0)
    task = _task(cfg)
    loop = _loop(task, tmp_path)
    batch = _batch()
    gen = task.models["gen"].train()
    with torch.no_grad():
        expected = 10.0 * (gen(batch["pose"], batch["identity"], batch["indiv_mels"]) - batch["frames"]).abs().mean()
    logs = task.train_step(batch, loop)
    assert set(logs) == {"loss", "loss_pixel"}
    assert logs["loss"] == pytest.approx(expected.item(), rel=1e-5)

    cfg = _cfg(gan=0.0, pixel=0.0, perceptual=0.0, sync=2.0, sync_kind="plain", triplet=0.0)
    task = _task(cfg)
    loop.task = task
    gen = task.models["gen"].train()
    with torch.no_grad():
        out = gen(batch["pose"], batch["identity"], batch["indiv_mels"])
        expected = 2.0 * plain_sync_loss(task.expert(batch["mel"], out))
    logs = task.train_step(batch, loop)
    assert logs["loss"] == pytest.approx(expected.item(), rel=1e-4)


def test_gan_term_and_discriminator_start_at_gan_start_step(tmp_path):
    cfg = _cfg(pixel=10.0, perceptual=0.0, sync=0.0, sync_kind="none", triplet=0.0)
    cfg.gan_start_step = 1
    task = _task(cfg)
    loop = _loop(task, tmp_path)
    d0 = _flat(task.models["disc"])
    logs = task.train_step(_batch(), loop)  # step 0: pixels only, D untouched
    assert set(logs) == {"loss", "loss_pixel"} and torch.equal(d0, _flat(task.models["disc"]))
    loop.step = 1
    logs = task.train_step(_batch(), loop)
    assert {"loss_gan", "loss_disc"} <= set(logs) and not torch.equal(d0, _flat(task.models["disc"]))


def test_sync_term_starts_at_sync_start_step(tmp_path):
    cfg = _cfg(gan=0.0, pixel=10.0, perceptual=0.0, sync=2.0, sync_kind="plain", triplet=0.0)
    cfg.sync_start_step = 3
    task = _task(cfg)
    loop = _loop(task, tmp_path)
    loop.step = 2
    assert set(task.train_step(_batch(), loop)) == {"loss", "loss_pixel"}
    loop.step = 3
    assert set(task.train_step(_batch(), loop)) == {"loss", "loss_pixel", "loss_sync"}


def test_silent_target_term_uses_silent_audio_and_closed_lips(tmp_path):
    cfg = _cfg(gan=0.0, pixel=0.0, perceptual=0.0, sync=0.0, sync_kind="none", triplet=0.0)
    cfg.silent_target = 3.0
    task = _task(cfg)
    loop = _loop(task, tmp_path)
    batch = _batch()
    gen = task.models["gen"].train()
    b = batch["pose"].shape[0]
    with torch.no_grad():  # one forward over both halves, as the task does (BatchNorm sees the joint batch)
        both = gen(torch.cat([batch["pose"], pose_input(batch["identity"])]),
                   torch.cat([batch["identity"], batch["identity"]]),
                   torch.cat([batch["indiv_mels"], torch.full_like(batch["indiv_mels"], -4.0)]))
        expected = 3.0 * pixel_loss(both[b:], batch["identity_silent"])
    logs = task.train_step(batch, loop)
    assert logs["loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_sync_loss_without_expert_or_avhubert_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = _cfg(sync_kind="avhubert_multimodal", perceptual=0.0)
    cfg.audio_encoder = "joint"
    with pytest.raises(WeightsNotAvailable, match="not available: no AV-HuBERT checkpoint"):
        build_task(cfg)
    cfg = _cfg(sync_kind="plain", perceptual=0.0)
    cfg.audio_encoder = "joint"
    with pytest.raises(FileNotFoundError, match="syncnet expert"):
        build_task(cfg)
    cfg = _cfg(sync_kind="none", perceptual=1.0)  # VGG-19 absent here: the term is off and recorded
    cfg.audio_encoder = "joint"
    task = build_task(cfg)
    if task.perceptual is None:
        assert task.notes["perceptual"].startswith("not available: ")
    assert task.notes["val_sync"].startswith("not available: ")


def test_structural_substitute_stands_in_for_missing_vgg_and_says_so(tmp_path, monkeypatch):
    from talkface.losses import StructuralLoss
    from talkface.models import vgg as vgg_mod

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # an empty cache: VGG-19 is absent for sure
    cfg = _cfg(sync_kind="none", perceptual=1.0, perceptual_fallback="ssim")
    cfg.audio_encoder = "joint"
    task = build_task(cfg)
    assert isinstance(task.perceptual, StructuralLoss)
    assert task.notes["perceptual"].startswith("substitute: 1 - SSIM (VGG-19 not available")
    assert vgg_mod.VGG19_FILENAME in task.notes["perceptual"]


_DDP_SCRIPT = r"""
import os, sys, torch
sys.path.insert(0, os.environ["TESTS_DIR"])
from test_generator_training import _Windows, _cfg, _task
from talkface.train.loop import Loop
cfg = _cfg(sync_kind="stabilized", perceptual=0.0, triplet_distance="pixel")
task = _task(cfg)
loop = Loop(cfg.loop, os.environ["CKPT"], progress=False)
loop.fit(task, _Windows())
w = torch.cat([p.detach().flatten() for p in task.generator.parameters()])
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
    assert out.returncode == 0, out.stderr[-3000:]
    w0, w1 = torch.load(tmp_path / "w0.pt"), torch.load(tmp_path / "w1.pt")
    assert torch.allclose(w0, w1)
    assert (tmp_path / "last.pt").exists()


@pytest.mark.parametrize("joint", [False, True])
def test_generator_checkpoint_round_trip(tmp_path, joint):
    cfg = _cfg()
    expert = _expert()
    if joint:
        gen, spec = Generator(cfg.model, AudioEncoder(4), freeze_audio=False), joint_audio_spec(4)
    else:
        gen, spec = Generator(cfg.model, expert.audio_encoder), expert_audio_spec(expert)
    gen.eval()
    save_generator(gen, tmp_path / "g.pt", spec)
    back = load_generator(tmp_path / "g.pt")
    assert back.audio["source"] == ("joint" if joint else "syncnet")
    assert not any(p.requires_grad for p in back.parameters()) and not back.training
    b = _batch()
    with torch.no_grad():
        assert torch.equal(gen(b["pose"], b["identity"], b["indiv_mels"]),
                           back(b["pose"], b["identity"], b["indiv_mels"]))
    ckpt = torch.load(tmp_path / "g.pt", weights_only=True)
    assert ckpt["arch"] == "generator" and any(k.startswith("audio_encoder.") for k in ckpt["state_dict"])


def test_leak_correlation_on_constructed_data():
    rng = np.random.default_rng(0)
    ref = rng.random(2000)
    assert lip_leak(ref, ref)["leak_corr"] == pytest.approx(1.0)
    assert lip_leak(ref, 2 * ref + 1)["leak_corr"] == pytest.approx(1.0)
    assert abs(lip_leak(ref, rng.random(2000))["leak_corr"]) < 0.08
    gt = rng.random(2000)
    out = lip_leak(ref, gt + 0.01 * rng.random(2000), gt)  # output follows GT only
    assert abs(out["leak_partial"]) < 0.1 and abs(out["gt_ref_corr"]) < 0.08
    assert pearson(np.ones(5), np.arange(5)) != pearson(np.ones(5), np.arange(5))  # constant: NaN


def test_mouth_opening_measures():
    closed = torch.full((1, 3, 32, 32), 0.6)
    opened = closed.clone()
    opened[:, :, 22:27, 12:20] = 0.05  # a dark cavity inside the mouth box
    opened[:, :, 21, 12:20] = 0.95  # teeth
    assert mouth_opening(closed).item() == pytest.approx(0.0, abs=1e-6)
    assert mouth_opening(opened).item() > 0.3
    assert mouth_opening(torch.stack([closed, opened], 1)[0]).shape == (2,)
    lm = np.zeros((68, 2))
    lm[48], lm[54] = [10, 20], [30, 20]
    for a, b in ((61, 67), (62, 66), (63, 65)):
        lm[a], lm[b] = [20, 18], [20, 23]
    assert landmark_opening(lm) == pytest.approx(5 / 20)
    check = silent_check(np.array([0.3, 0.2]), np.array([0.1, 0.25]), np.array([0.05, 0.05]))
    assert check["output_smaller"] and check["share_closed_more"] == 0.5 and check["silent_gt_opening"] == 0.05


def _face_landmarks(size):
    lm = np.full((68, 2), size * 0.5)
    lm[36], lm[39], lm[42], lm[45] = [0.3, 0.4], [0.42, 0.41], [0.58, 0.41], [0.7, 0.4]
    lm[[36, 39, 42, 45]] *= size
    lm[33] = [0.5 * size, 0.6 * size]
    t = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    lm[48:68] = np.stack([0.5 + 0.15 * np.cos(t), 0.75 + 0.05 * np.sin(t)], 1) * size
    return lm


def test_differentiable_lip_roi_matches_mouth_roi():
    size, n = 64, 3
    yy, xx = np.mgrid[:size, :size]
    frames = np.stack([np.stack([(xx * 3 + yy * 2 + 40 * t) % 256, (yy * 4) % 256, (xx * yy) % 256], -1)
                       for t in range(n)]).astype(np.uint8)
    frames = np.ascontiguousarray(frames)
    lms = np.stack([_face_landmarks(size) + t for t in range(n)]).astype(np.float32)
    ref = torch.from_numpy(lip_input(mouth_rois(frames, lms)))
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    ours = differentiable_lip_rois(x, torch.from_numpy(roi_matrices(lms)))
    assert ours.shape == ref.shape == (n, 1, 88, 88)
    assert (ours - ref).abs().mean() < 0.06  # ~2 grey levels: uint8 rounding and interpolation details


def _clip_store(root, n=20, size=S, name="c0"):
    d = root / "clips" / name
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.save(d / "frames.npy", rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8))
    np.save(d / "landmarks.npy", np.repeat(_face_landmarks(size)[None], n, 0).astype(np.float32))
    np.save(d / "audio.npy", (0.1 * rng.standard_normal(n * 640)).astype(np.float32))
    (d / "meta.json").write_text(json.dumps({"clip_id": name, "n_frames": n}))
    return root / "clips"


@pytest.mark.parametrize("kind", ["avhubert_unsupervised", "avhubert_visual", "avhubert_multimodal"])
def test_avhubert_sync_loss_reaches_generated_frames(tmp_path, kind):
    torch.manual_seed(2)  # a random model whose cosines here are positive (negative ones are clamped: no gradient)
    model = AVHubert(AVHubertArch(embed_dim=32, layers=1, ffn_dim=64, heads=2, conv_pos=4, conv_pos_groups=2))
    context = ClipContext(_clip_store(tmp_path), ["c0"], K, context=2)
    assert context.length == K + 4
    sync = AVHubertSync(model, context, kind)
    gen = torch.rand(2, K, 3, S, S, requires_grad=True)
    loss = sync(gen, torch.tensor([0, 0]), torch.tensor([0, 9]))
    assert torch.isfinite(loss) and 0 <= loss.item() < 13.8  # below -log(clamp_min)
    loss.backward()
    assert gen.grad is not None and gen.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in model.parameters())
    if kind != "avhubert_unsupervised":  # GT pasted into GT: features equal, cos 1, loss 0
        gt = torch.from_numpy(np.load(tmp_path / "clips" / "c0" / "frames.npy")[9:9 + K]).permute(0, 3, 1, 2)
        same = sync((gt.float() / 255)[None], torch.tensor([0]), torch.tensor([9]))
        assert same.item() == pytest.approx(0.0, abs=1e-4)


def test_ablation_presets_are_valid_overrides():
    import dataclasses
    import importlib.util
    from pathlib import Path

    import yaml

    from talkface.config import build

    path = Path(__file__).resolve().parents[1] / "stages" / "queue_ablations.py"
    spec = importlib.util.spec_from_file_location("queue_ablations", path)
    qa = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(qa)
    assert {"A", "B", "D", "E", "F", "G", "H", "p2_syncnet", "p2_unsupervised", "p2_visual", "p2_multimodal"} \
        <= set(qa.PRESETS) and "C" in qa.NOT_AVAILABLE
    for name, overrides in qa.PRESETS.items():
        section = dataclasses.asdict(GeneratorTrainConfig())
        for key, value in overrides.items():
            head, *keys = key.split(".")
            assert head == "generator", key
            node = section
            for k in keys[:-1]:
                node = node[k]
            assert keys[-1] in node, f"{name}: {key} is not a params key"
            node[keys[-1]] = yaml.safe_load(value)
        build(GeneratorTrainConfig, section, name)  # types and choices check out
    cmds, skipped = qa.commands(["E", "p2_visual", "C"], avhubert=None)
    assert len(cmds) == 1 and cmds[0][:6] == ["dvc", "exp", "run", "--queue", "-n", "ablation-E"]
    assert any("no AV-HuBERT checkpoint" in s for s in skipped) and any(s.startswith("C:") for s in skipped)
    cmds, _ = qa.commands(["p2_visual"], avhubert="/x.pt")
    assert "generator.avhubert_path=/x.pt" in cmds[0]


def test_paper_setup_switches_are_valid_overrides():
    """Each model's paper switch (stages/queue_ablations.py PAPER_SETUP) names existing params.yaml keys and gives a
    config that its stage builds (the stages' own `configs`, strict keys and the values passed down)."""
    import copy
    import importlib.util
    import sys
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[1]

    def script(name):
        sys.path.insert(0, str(root / "stages"))
        try:
            spec = importlib.util.spec_from_file_location(name, root / "stages" / f"{name}.py")
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
            return mod
        finally:
            sys.path.remove(str(root / "stages"))

    qa, experts, generators = script("queue_ablations"), script("train_expert"), script("train_generator")
    assert set(qa.PAPER_SETUP) == {"syncnet", "avsyncnet", "silent", "generator"}
    params = yaml.safe_load((root / "params.yaml").read_text())
    for model, overrides in qa.PAPER_SETUP.items():
        changed = copy.deepcopy(params)
        for key, value in overrides.items():
            node = changed
            *path, last = key.split(".")
            for k in path:
                node = node[k]
            assert last in node, f"{model}: {key} is not a params.yaml key"
            node[last] = yaml.safe_load(value)
        cfg = experts.configs(changed, model)[0] if model in ("syncnet", "avsyncnet") else \
            generators.configs(changed, model)
        assert cfg.lr == 1e-4  # the papers' (Wav2Lip's) learning rate for every model
    cmd = qa.paper_command(["syncnet", "generator"], "/data/LRS2")
    assert cmd[:6] == ["dvc", "exp", "run", "--queue", "-n", "paper-syncnet-generator"]
    assert "fetch.source=lrs2" in cmd and "generator.sync_start_step=0" in cmd and "crop.detector=fan" in cmd


def test_experiments_file_is_written_from_dvc_exp_show(tmp_path):
    import importlib.util
    import subprocess
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "stages" / "queue_ablations.py"
    spec = importlib.util.spec_from_file_location("queue_ablations", path)
    qa = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(qa)
    shown = [{"rev": "workspace", "experiments": None},
             {"rev": "abc", "experiments": [{"revs": [{"rev": "e1"}]}, {"revs": [{"rev": "e2"}]}]}]
    calls = []

    def fake_run(cmd, **kw):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, json.dumps(shown), "")

    out = tmp_path / "metrics" / "experiments.json"
    assert qa.export(str(out), run=fake_run) == 2
    assert calls == [["dvc", "exp", "show", "--json"]] and json.loads(out.read_text()) == shown
    qa.export(str(out), run=fake_run, revs=["abc", "def"])
    assert calls[-1] == ["dvc", "exp", "show", "--json", "--rev", "abc", "--rev", "def"]


def test_avhubert_whole_clip_context_pads_and_masks(tmp_path):
    """context -1: each item gets its whole clip (up to max_frames, the window in the middle), padded to the batch's
    longest with a padding mask; the generated window sits at its true offset."""
    _clip_store(tmp_path, n=20, name="c0")
    _clip_store(tmp_path, n=12, name="c1")
    context = ClipContext(tmp_path / "clips", ["c0", "c1"], K, context=-1, max_frames=16)
    ctx = context.fetch([0, 1, 0], [0, 5, 14], torch.device("cpu"))
    assert ctx["frames"].shape[:2] == (3, 16) and ctx["audio"].shape[:2] == (3, 16)
    # c0 (20 frames) capped at 16 around the window: window 0 -> frames 0..15, window 14 -> frames 4..19
    # c1 (12 frames): the whole clip, 4 padded steps
    assert ctx["offset"].tolist() == [0, 5, 10]
    assert ctx["padding_mask"].tolist() == [[False] * 16, [False] * 12 + [True] * 4, [False] * 16]
    gt = np.load(tmp_path / "clips" / "c0" / "frames.npy")
    torch.testing.assert_close(ctx["frames"][2, 10], torch.from_numpy(gt[14]).permute(2, 0, 1).float() / 255)
    torch.manual_seed(2)
    model = AVHubert(AVHubertArch(embed_dim=32, layers=1, ffn_dim=64, heads=2, conv_pos=4, conv_pos_groups=2))
    loss = AVHubertSync(model, context, "avhubert_visual")(torch.rand(3, K, 3, S, S), torch.tensor([0, 1, 0]),
                                                            torch.tensor([0, 5, 14]))
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="avhubert_max_frames"):
        ClipContext(tmp_path / "clips", ["c0"], K, context=-1, max_frames=K - 1)
