"""The evaluate stage on a tiny clip store with a tiny random generator: every metric key, ceiling identities,
known-answer LMD, per-clip rows, videos and plots."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from talkface.data.mel import melspectrogram
from pathlib import Path

from talkface.evaluate import EvaluateConfig, EvaluateOutputs, Generators, Scorers, evaluate
from talkface.evaluation.generate import floor_frames, window_starts
from talkface.evaluation.score import GROUPS, LSE_EXPERT_KEYS, METRIC_KEYS
from talkface.metrics import NotAvailable
from talkface.model_inputs import WindowConfig, evaluation_reference, mel_window
from talkface.models.expert_io import build_expert, save_expert
from talkface.models.generator import Generator, GeneratorConfig
from talkface.models.syncnet import SyncNetConfig
from talkface.models.layers import AudioEncoder

S = 32  # face size of the tiny store (the generator halves it down to 4)
OUTPUTS = EvaluateOutputs(eval_json=Path("metrics/eval.json"), per_clip_csv=Path("metrics/eval_per_clip.csv"),
                          frames_csv=Path("plots/eval_frames.csv"), lse_curves_csv=Path("plots/eval_lse_offsets.csv"),
                          samples_png=Path("plots/eval_samples.png"), videos_dir=Path("data/eval/videos"))


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # the CPU is shared; tiny models gain nothing from more threads
    yield
    torch.set_num_threads(n)


def _make_clip(root, clip_id, n_frames, seed):
    """A clip with smooth textured frames, finite landmarks, speech-like noise audio and its mel."""
    rng = np.random.default_rng(seed)
    d = root / "data" / "clips" / clip_id
    d.mkdir(parents=True)
    yy, xx = np.mgrid[0:S, 0:S] / S
    frames = np.stack([
        np.stack([np.sin(6 * xx + 0.3 * t + c) * 0.5 + 0.5 + 0.1 * (yy > 0.5) * np.sin(t) for c in range(3)], -1)
        for t in range(n_frames)])
    frames = (np.clip(frames + rng.normal(0, 0.02, frames.shape), 0, 1) * 255).astype(np.uint8)
    base = np.stack([np.linspace(6, 26, 68), np.concatenate([np.linspace(8, 16, 48), np.linspace(20, 28, 20)])], -1)
    landmarks = (base[None] + rng.normal(0, 0.3, (n_frames, 68, 2))).astype(np.float32)
    audio = (rng.normal(0, 0.1, n_frames * 640) * np.sin(np.arange(n_frames * 640) / 700.0)).astype(np.float32)
    np.save(d / "frames.npy", frames)
    np.save(d / "audio.npy", audio)
    np.save(d / "landmarks.npy", landmarks)
    np.save(d / "boxes.npy", np.zeros((n_frames, 4), np.float32))
    (d / "meta.json").write_text(json.dumps({"clip_id": clip_id, "speaker": "s", "fps": 25, "n_frames": n_frames,
                                             "sample_rate": 16000, "source": "test", "detector": "annotations"}))
    (root / "data" / "mels").mkdir(parents=True, exist_ok=True)
    np.save(root / "data" / "mels" / f"{clip_id}.npy", melspectrogram(audio))


@pytest.fixture
def store(tmp_path):
    torch.manual_seed(0)
    _make_clip(tmp_path, "c1", 23, 1)
    _make_clip(tmp_path, "c2", 17, 2)
    (tmp_path / "data" / "splits").mkdir(parents=True)
    (tmp_path / "data" / "splits" / "test.txt").write_text("c1\nc2\n")
    return tmp_path


def _tiny_generator() -> Generator:
    return Generator(GeneratorConfig(face_size=S, width=4, max_width=16), AudioEncoder(width=4, out_dim=512)).eval()


def _save_checkpoints(root):
    from talkface.models import generator_io

    (root / "models").mkdir(exist_ok=True)
    generator_io.save_generator(_tiny_generator(), root / "models" / "generator.pt",
                                generator_io.joint_audio_spec(4, 512))
    save_expert(build_expert("syncnet", SyncNetConfig(width=4)), root / "models" / "syncnet.pt")


def test_windows_tile_the_clip_and_references_do_not_overlap():
    assert window_starts(12, 5) == [0, 5, 7]
    assert window_starts(10, 5) == [0, 5]
    with pytest.raises(ValueError):
        window_starts(4, 5)
    for f in window_starts(23, 5):
        g = evaluation_reference("c1", f, 23, 5, seed=0)
        assert 0 <= g <= 18 and (g + 5 <= f or g >= f + 5)
        assert g == evaluation_reference("c1", f, 23, 5, seed=0)  # deterministic
    draws = {evaluation_reference("c1", 0, 60, 5, seed=s) for s in range(10)}
    assert len(draws) > 1  # seed-dependent


def test_mel_window_alignment_and_edges():
    mel = np.repeat(np.arange(40, dtype=np.float32)[:, None], 80, axis=1)
    w = WindowConfig()
    assert mel_window(mel, 5, w)[0, 0].tolist() == list(range(16, 32))     # int(80*5/25) = 16
    assert mel_window(mel, -2, w)[0, 0].tolist() == list(range(0, 16))     # clamped at the start
    assert mel_window(mel, 10, w)[0, 0].tolist() == list(range(24, 40))    # clamped at the end: moved inside


def test_floor_frames():
    gt = np.full((3, 8, 8, 3), 10, np.uint8)
    ident = np.full((3, 8, 8, 3), 200, np.uint8)
    paste = floor_frames(gt, ident, "paste")
    assert (paste[:, :4] == 10).all() and (paste[:, 4:] == 200).all()
    masked = floor_frames(gt, ident, "masked")
    assert (masked[:, :4] == 10).all() and (masked[:, 4:] == 0).all()


def test_evaluate_from_checkpoints(store):
    _save_checkpoints(store)
    mode = "auto"  # reads the G_L checkpoint's record of silent-lip training
    cfg = EvaluateConfig(landmarker="none", lmd_reference="store", batch_size=2, sample_clips=1, sample_frames=2,
                         device="cpu", silent_reference=mode)
    result = evaluate(cfg, OUTPUTS, store)
    on_disk = json.loads((store / "metrics" / "eval.json").read_text())
    assert on_disk == json.loads(json.dumps(result))
    for group in GROUPS:
        assert set(METRIC_KEYS) <= set(on_disk[group])
        for key in METRIC_KEYS:
            v = on_disk[group][key]
            assert isinstance(v, float) or (isinstance(v, str) and "not available" in v), (group, key, v)
        assert on_disk[group]["n_clips"] == 2
    ceil, model = on_disk["ceiling"], on_disk["model"]
    assert ceil["SSIM"] == pytest.approx(1.0) and ceil["IFC"] == 0.0 and ceil["LMD"] == 0.0
    assert ceil["PSNR"] == cfg.psnr_max_db
    assert model["SSIM"] < 0.99 and model["PSNR"] < cfg.psnr_max_db
    assert "not available: " in model["LMD"] and "no landmark detector for generated frames" in model["LMD"]
    assert "not available" in model["AVSu"]                                   # no AV-HuBERT checkpoint
    for key in LSE_EXPERT_KEYS:                                               # our SyncNet scores every group
        assert isinstance(model[key], float) and isinstance(ceil[key], float)
    assert on_disk["run"]["n_frames"] == 40 and on_disk["run"]["generate_frames_per_s"] > 0
    assert on_disk["run"]["generator"]["silent_reference_used"] is False

    with open(store / "metrics" / "eval_per_clip.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["clip_id"], r["group"]) for r in rows) == sorted((c, g) for c in ("c1", "c2") for g in GROUPS)
    ssim_c1 = [float(r["SSIM"]) for r in rows if r["group"] == "model"]
    assert np.mean(ssim_c1) == pytest.approx(model["SSIM"], rel=1e-5)         # overall = mean over clips
    for clip in ("c1", "c2"):
        assert (store / "data" / "eval" / "videos" / f"{clip}.mp4").stat().st_size > 0
    assert (store / "plots" / "eval_samples.png").is_file()
    with open(store / "plots" / "eval_frames.csv") as f:
        assert sum(1 for _ in f) == 1 + 2 * 40                              # model + floor, every frame
    with open(store / "plots" / "eval_lse_offsets.csv") as f:
        curve = list(csv.DictReader(f))
    assert {r["group"] for r in curve} == set(GROUPS) and len(curve) == 3 * 31


class _MeanLandmarker:
    """Test double for FAN: every landmark at base + mean intensity of the frame (a known answer for LMD)."""

    def __call__(self, frames, reference=None):
        m = np.asarray(frames, np.float64).mean(axis=(1, 2, 3))
        return (m[:, None, None] + np.zeros((1, 68, 2))).astype(np.float32)


def test_evaluate_with_fid_avs_and_landmarks(store):
    from talkface.models.avhubert import AVHubert, AVHubertArch

    torch.manual_seed(0)
    gen = _tiny_generator()
    gens = Generators(gen, gen.cfg.k, S, info={"checkpoint": "in-memory"})
    avh = AVHubert(AVHubertArch(embed_dim=32, layers=1, ffn_dim=64, heads=2)).eval()
    # A small random feature extractor stands in for the FID Inception: the stage's statistics and distance code is
    # the same, and a 2048-d sqrtm would take minutes on a shared CPU (the Inception itself: tests/test_metrics_fid).
    features = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(2),
                                   torch.nn.Flatten()).eval()
    scorers = Scorers(fid=features,
                      lse_official=NotAvailable("syncnet_v2 weights not available: test"),
                      lse_expert=NotAvailable("talkface-syncnet not available: test"),
                      avhubert=avh, landmarker=_MeanLandmarker())
    (store / "data" / "splits" / "test.txt").write_text("c2\nc1\n")  # the shorter clip only (max_clips 1)
    cfg = EvaluateConfig(max_clips=1, write_videos=False, lmd_eval_size=64, device="cpu")
    result = evaluate(cfg, OUTPUTS, store, gens=gens, scorers=scorers)
    ceil, model = result["ceiling"], result["model"]
    assert model["n_clips"] == 1
    gt = np.load(store / "data" / "clips" / "c2" / "frames.npy").astype(np.float64)
    assert ceil["LMD"] == 0.0
    assert model["LMD"] > 0
    # AV-HuBERT metrics: identical inputs give cosine 1; the others are cosines.
    assert ceil["AVSm"] == pytest.approx(1.0, abs=1e-6) and ceil["AVSv"] == pytest.approx(1.0, abs=1e-6)
    for key in ("AVSu", "AVSm", "AVSv"):
        assert -1.0 <= model[key] <= 1.0
    assert model["AVSv"] < 1.0
    # FID: the real set against itself is ~0, the generated set is farther away.
    assert isinstance(ceil["FID"], float) and abs(ceil["FID"]) < 1e-3 * max(1.0, model["FID"])
    assert model["FID"] > abs(ceil["FID"])
    assert "not available" in model["LSE-C"] and "not available" in model[LSE_EXPERT_KEYS[0]]
    # LMD known answer: every landmark moves by the change of mean intensity, in x and y, measured at 64 px (x2).
    from talkface.evaluation.generate import generate_clip

    out = generate_clip(gens, gt.astype(np.uint8), np.load(store / "data" / "mels" / "c2.npy"), "c2", cfg.seed,
                        cfg.batch_size, torch.device("cpu"), cfg.window)
    diff = np.abs(out["generated"].astype(np.float64).mean(axis=(1, 2, 3)) - gt.mean(axis=(1, 2, 3)))
    assert model["LMD"] == pytest.approx(float(np.mean(math.sqrt(2) * diff * 2)), rel=1e-4)


def test_image_metrics_lower_half_sees_only_the_lower_half():
    """A change above the half line lowers the whole-face scores and leaves the lower half's perfect; a change below
    it is scored by both, the lower half's PSNR 10*log10(2) = 3.01 dB under the whole face's."""
    from talkface.evaluation.score import LOWER_HALF_KEYS, image_metrics

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    upper = gt.copy()
    upper[:, :16] = 255 - upper[:, :16]
    out, _, _ = image_metrics(upper, gt, psnr_max_db=100.0, ifc_norm="rms")
    assert out[LOWER_HALF_KEYS[1]] == 100.0 and out[LOWER_HALF_KEYS[0]] == pytest.approx(1.0)
    assert out["PSNR"] < 20 and out["SSIM"] < 0.9
    lower = gt.copy()
    lower[:, 16:] = 255 - lower[:, 16:]
    out, _, _ = image_metrics(lower, gt, psnr_max_db=100.0, ifc_norm="rms")
    # same squared error on half the pixels: the whole-face MSE is half the lower half's
    assert out["PSNR"] - out[LOWER_HALF_KEYS[1]] == pytest.approx(10 * math.log10(2), abs=1e-6)
    assert out[LOWER_HALF_KEYS[0]] < 0.5
