"""Sync-expert training (SyncTask on the shared loop) and the P1 stability analyses, on tiny clip stores.

Two fixtures:
- `learnable`: the lower half of each frame has a brightness that follows a random per-frame "energy", and the mel
  rows carry the same energy, so aligned and non-aligned pairs differ and a tiny expert learns them in a few dozen steps.
- `indexed`: frame t has pixel value t and mel row m has value m, so alignment can be read back exactly.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from talkface.analysis.sync_analysis import (SyncAnalysisConfig, analyse_expert, gt_cosine_curve, gt_cosines,
                                             lip_sync_loss, offset_accuracy, robustness, table_a_stats)
from talkface.augment import AugmentConfig
from talkface.data.windows import WindowConfig, WindowDataset
from talkface.models.avsyncnet import AVSyncNetConfig
from talkface.models.expert_io import build_expert
from talkface.models.syncnet import SyncNetConfig
from talkface.models.expert import SyncExpert
from talkface.train.loop import Loop, LoopConfig
from talkface.train.sync import (AVSyncNetTrainConfig, PairScorer, SyncTask, curve_rows, pair_labels, train_expert,
                                 train_summary)

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(1)  # tiny models: threads only add contention on a shared 2-core machine


def _write_clip(root, clip_id, frames, mel):
    d = root / "clips" / clip_id
    d.mkdir(parents=True)
    np.save(d / "frames.npy", frames)
    np.save(d / "landmarks.npy", np.full((len(frames), 68, 2), np.nan, dtype=np.float32))
    (d / "meta.json").write_text(json.dumps({"clip_id": clip_id, "n_frames": len(frames), "sample_rate": 16000}))
    (root / "mels").mkdir(exist_ok=True)
    np.save(root / "mels" / f"{clip_id}.npy", mel.astype(np.float32))


def _learnable_clip(root, clip_id, n_frames, rng, size=32):
    energy = rng.uniform(0.0, 1.0, n_frames)
    frames = np.empty((n_frames, size, size, 3), dtype=np.uint8)
    frames[:, : size // 2] = rng.integers(60, 200, 3, dtype=np.uint8)  # upper face: constant per clip
    frames[:, size // 2 :] = (40 + 200 * energy)[:, None, None, None].astype(np.uint8)  # "mouth" follows energy
    n_mel = int(n_frames * 80 / 25) + 16
    frame_of = np.minimum((np.arange(n_mel) * 25 / 80).astype(int), n_frames - 1)
    mel = (8 * energy[frame_of] - 4)[:, None] * np.linspace(0.5, 1.0, 80)[None] + 0.3 * rng.standard_normal((n_mel, 80))
    _write_clip(root, clip_id, frames, mel)


def _indexed_clip(root, clip_id, n_frames, size=16):
    frames = np.broadcast_to(np.arange(n_frames, dtype=np.uint8)[:, None, None, None], (n_frames, size, size, 3))
    n_mel = int(n_frames * 80 / 25) + 1
    _write_clip(root, clip_id, np.ascontiguousarray(frames),
                np.repeat(np.arange(n_mel, dtype=np.float32)[:, None], 80, axis=1))


@pytest.fixture
def learnable(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(4):
        _learnable_clip(tmp_path, f"c{i}", 40, rng)
    train = WindowDataset(tmp_path / "clips", tmp_path / "mels", ["c0", "c1", "c2"], WindowConfig(), seed=0)
    val = WindowDataset(tmp_path / "clips", tmp_path / "mels", ["c3"], WindowConfig(), seed=1)
    return tmp_path, train, val


@pytest.fixture
def indexed(tmp_path):
    _indexed_clip(tmp_path, "a", 60)
    _indexed_clip(tmp_path, "b", 45)
    return WindowDataset(tmp_path / "clips", tmp_path / "mels", ["a", "b"], WindowConfig(), seed=2)


def _tiny_syncnet():
    torch.manual_seed(0)
    return build_expert("syncnet", SyncNetConfig(width=4, embed_dim=32))


def _tiny_avsyncnet_cfg():
    return dict(input_height=16, input_width=32, image_width=8, image_layers=[1, 1, 1, 1], audio_filters=[4, 8, 8, 16],
                audio_layers=[1, 1, 1, 1], embed_dim=64, audio_attention_dim=8)


def _loop_cfg(**kw):
    base = dict(steps=6, batch_size=4, eval_every=3, eval_batches=1, log_every=3, checkpoint_every=2, device="cpu")
    base.update(kw)
    return LoopConfig(**base)


# ---------------------------------------------------------------- pairs and the negative sampler
def test_pair_scorer_shapes_and_labels(learnable):
    _, train, _ = learnable
    batch = {k: torch.stack([train[i][k] for i in range(3)]) for k in ("frames", "mel", "neg_mel")}
    scorer = PairScorer(_tiny_syncnet())
    cos = scorer(batch["frames"], batch["mel"], batch["neg_mel"])
    assert cos.shape == (6,) and cos.dtype == torch.float32
    assert cos.min() >= 0 and cos.max() <= 1
    assert pair_labels(3, "cpu").tolist() == [1, 1, 1, 0, 0, 0]
    expert = scorer.expert.eval()
    scorer.eval()  # the positive half equals the expert's own score of the aligned pair
    assert torch.allclose(scorer(batch["frames"], batch["mel"], batch["neg_mel"])[:3],
                          expert(batch["mel"], batch["frames"]), atol=1e-6)


def test_negatives_never_overlap_the_window(indexed):
    k = indexed.cfg.k
    for i in range(300):
        item = indexed[i]
        f = item["start"]
        assert int(round(item["frames"][0, 0, 0, 0].item() * 255)) == f
        assert int(item["mel"][0, 0, 0]) == int(80 * f / 25)  # positive: the aligned window
        neg_first = int(item["neg_mel"][0, 0, 0])
        neg_frame = [t for t in range(200) if int(80 * t / 25) == neg_first][0]
        assert abs(neg_frame - f) >= k, (f, neg_frame)


# ---------------------------------------------------------------- resume
def test_resume_gives_the_same_run(learnable, tmp_path):
    _, train, val = learnable
    aug = AugmentConfig(prob=0.5, max_shift=2, max_shear=5, max_rotation=5)  # exercises the checkpointed RNG

    def task():
        return SyncTask(_tiny_syncnet(), lr=1e-3, augment=aug)

    whole = task()
    h_whole = Loop(_loop_cfg(), tmp_path / "whole", progress=False).fit(whole, train, val)

    first = task()
    loop = Loop(_loop_cfg(), tmp_path / "cut", progress=False)
    loop.fit(first, train, val, stop_after=3)  # simulated interruption after step 3
    assert loop.step == 3
    second = task()  # a fresh process: new model and optimizer, state from the checkpoint
    loop2 = Loop(_loop_cfg(), tmp_path / "cut", progress=False)
    h_cut = loop2.fit(second, train, val)
    assert loop2.step == 6
    assert [r["step"] for r in h_cut] == [r["step"] for r in h_whole]
    for (name, a), (_, b) in zip(whole.expert.state_dict().items(), second.expert.state_dict().items()):
        assert torch.equal(a, b), name
    assert h_cut[-1]["val_loss"] == pytest.approx(h_whole[-1]["val_loss"], abs=1e-6)


# ---------------------------------------------------------------- learning
def test_task_learns_the_learnable_fixture(learnable, tmp_path):
    _, train, val = learnable
    cfg = AVSyncNetTrainConfig(preset="small", model=_tiny_avsyncnet_cfg(), lr=3e-3,
                               loop=_loop_cfg(steps=40, batch_size=16, eval_every=40, eval_batches=4, log_every=10,
                                              checkpoint_every=1000))
    trained = train_expert("avsyncnet", cfg, train, val, tmp_path / "ckpt", progress=False)
    s = train_summary(trained.history)
    assert s["steps"] == 40 and s["train_samples_per_s"] > 0
    assert s["val_acc"] > 0.7, s
    assert s["val_cos_pos"] > s["val_cos_neg"]
    rows = curve_rows(trained.history)
    assert [r["step"] for r in rows] == [40] and set(rows[0]) == {"step", "loss", "val_loss", "val_acc"}
    # The same windows: the analysis' magnitude-0 loss is the mean GT loss.
    cos = gt_cosines(trained.expert, val, 16, batch_size=8)
    rob = robustness(trained.expert, val, 16, {"shift": [0.0, 4.0]}, batch_size=8)
    assert rob["loss"][0] == pytest.approx(lip_sync_loss(cos).mean(), rel=1e-5)


def test_model_k_must_match_windows(learnable, tmp_path):
    _, train, val = learnable
    cfg = AVSyncNetTrainConfig(preset="small", model={**_tiny_avsyncnet_cfg(), "k": 3}, loop=_loop_cfg())
    with pytest.raises(ValueError, match="k=3"):
        train_expert("avsyncnet", cfg, train, val, tmp_path / "ckpt", progress=False)
    with pytest.raises(ValueError, match="unknown field"):
        AVSyncNetTrainConfig(preset="small", model={"depth": 3}).model_config()


# ---------------------------------------------------------------- analyses
class _Oracle(SyncExpert):
    """Knows the indexed fixture: video and audio embed the frame index they start at (one-hot), optionally shifted."""

    arch = "oracle"

    def __init__(self, video_shift=0, dim=256):
        super().__init__()
        self.k, self.face_input_hw, self.dim, self.video_shift = 5, (8, 16), dim, video_shift
        self.dummy = nn.Parameter(torch.zeros(1))  # gives the analyses a device

    def embed_video(self, frames):
        t = (frames[:, 0, 0, frames.shape[-1] // 2, frames.shape[-1] // 2] * 255).round().long() + self.video_shift
        return nn.functional.one_hot(t, self.dim).float()

    def embed_audio(self, mel):
        frame = torch.ceil(mel[:, 0, 0, 0] * 25 / 80).long()  # inverse of int(80 f / 25)
        return nn.functional.one_hot(frame, self.dim).float()


def test_offset_accuracy_known_answers(indexed):
    right = offset_accuracy(_Oracle(), indexed, n=40, max_offset=15, batch_size=16)
    assert right == {"offset_accuracy": 1.0, "offset_mean_abs_error": 0.0, "windows": 40, "max_offset": 15}
    late = offset_accuracy(_Oracle(video_shift=2), indexed, n=40, max_offset=15, batch_size=16)
    assert late["offset_accuracy"] == 0.0 and late["offset_mean_abs_error"] == 2.0
    with pytest.raises(ValueError, match="long enough"):
        offset_accuracy(_Oracle(), indexed, n=4, max_offset=40)


def test_table_a_and_curve_columns():
    cos = np.array([1.0, np.exp(-1.0)])
    s = table_a_stats(cos)
    assert s["loss_mean"] == pytest.approx(0.5) and s["loss_std"] == pytest.approx(0.5)
    assert s["cos_mean"] == pytest.approx((1 + np.exp(-1)) / 2) and s["windows"] == 2
    df = gt_cosine_curve(cos)
    assert list(df.columns) == ["sample", "cosine"] and df["sample"].tolist() == [0, 1]


def test_analyse_expert_outputs(indexed, tmp_path):
    cfg = SyncAnalysisConfig(stats_windows=12, curve_windows=10, robustness_windows=8, shift_pixels=[0.0, 2.0],
                             shear_degrees=[0.0, 10.0], rotation_degrees=[0.0, 10.0, 20.0], offset_windows=8,
                             batch_size=8)
    out = analyse_expert(_Oracle(), indexed, indexed, cfg, tmp_path / "plots", "oracle")
    assert out["table_a"]["train"]["cos_mean"] == 1.0 and out["table_a"]["test"]["loss_mean"] == pytest.approx(0, abs=1e-9)
    assert out["offset"]["offset_accuracy"] == 1.0
    curve = (tmp_path / "plots" / "oracle_gt_cosine.csv").read_text().splitlines()
    assert curve[0] == "sample,cosine" and len(curve) == 11
    rob = (tmp_path / "plots" / "oracle_robustness.csv").read_text().splitlines()
    assert rob[0] == "transform,magnitude,loss" and len(rob) == 1 + 7
    assert rob[1].startswith("shift,0.0,")
    without_test = analyse_expert(_Oracle(), indexed, None, cfg)
    assert without_test["table_a"]["test"].startswith("not available")


def test_transforms_change_a_real_expert_score(learnable):
    _, _, val = learnable
    rob = robustness(_tiny_syncnet().eval(), val, 8, {"shift": [0.0, 8.0], "rotation": [0.0, 30.0]}, batch_size=8)
    assert list(rob.columns) == ["transform", "magnitude", "loss"] and len(rob) == 4
    assert rob["loss"][0] == rob["loss"][2]  # magnitude 0 is the same for every transform
    assert rob["loss"][1] != rob["loss"][0] and np.isfinite(rob["loss"]).all()


# ---------------------------------------------------------------- the stage script end to end
def _stage_module(monkeypatch):
    import importlib.util

    monkeypatch.syspath_prepend(str(ROOT / "stages"))  # for its `import _bootstrap`
    spec = importlib.util.spec_from_file_location("train_expert_stage", ROOT / "stages" / "train_expert.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_stage_script_writes_its_outputs(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    for i in range(4):
        _learnable_clip(tmp_path / "data", f"c{i}", 50, rng)
    (tmp_path / "data" / "splits").mkdir()
    for split, ids in {"train": "c0\nc1\n", "val": "c2\n", "test": "c3\n"}.items():
        (tmp_path / "data" / "splits" / f"{split}.txt").write_text(ids)
    import yaml

    loop = dict(steps=2, batch_size=4, eval_every=2, eval_batches=1, log_every=1, checkpoint_every=1, device="cpu")
    analysis = dict(stats_windows=4, curve_windows=4, robustness_windows=4, shift_pixels=[0.0, 4.0],
                    shear_degrees=[0.0], rotation_degrees=[10.0], offset_windows=4, max_offset=5, batch_size=4)
    from conftest import params_with

    params = params_with({"avsyncnet": {"preset": "small", "model": _tiny_avsyncnet_cfg(), "lr": 1e-3,
                                        "loop": loop, "analysis": analysis}})
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TALKFACE_TRACKING", "0")
    stage = _stage_module(monkeypatch)
    stage.main(["train_expert.py", "avsyncnet"])

    metrics = json.loads((tmp_path / "metrics" / "avsyncnet.json").read_text())
    for key in ("val_loss", "val_acc", "table_a", "offset_accuracy", "train_samples_per_s", "params", "steps"):
        assert key in metrics, key
    assert metrics["steps"] == 2 and 0 <= metrics["offset_accuracy"] <= 1
    assert set(metrics["table_a"]) == {"train", "test"}
    train_csv = (tmp_path / "plots" / "avsyncnet_train.csv").read_text().splitlines()
    assert train_csv[0] == "step,loss,val_loss,val_acc" and train_csv[1].startswith("2,")
    assert (tmp_path / "plots" / "avsyncnet_robustness.csv").read_text().startswith("transform,magnitude,loss")
    assert (tmp_path / "models" / "ckpt" / "avsyncnet" / "last.pt").is_file()
    from talkface.models.expert_io import load_expert

    assert load_expert(tmp_path / "models" / "avsyncnet.pt").cfg.input_height == 16
    stage.main(["train_expert.py", "avsyncnet"])  # a finished run resumes at its last step and trains no further
    assert json.loads((tmp_path / "metrics" / "avsyncnet.json").read_text())["steps"] == 2
    with pytest.raises(SystemExit, match="usage"):
        stage.main(["train_expert.py", "wav2lip"])


def test_avsyncnet_preset_builds():
    assert AVSyncNetTrainConfig(preset="small").model_config() == AVSyncNetConfig.preset("small")
