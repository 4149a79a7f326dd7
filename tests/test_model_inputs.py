"""One model-input contract: the window dataset (training), the evaluate stage and the dubber build identical
generator and sync-expert inputs for the same clip and frame (talkface.model_inputs)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from talkface.data.mel import MelConfig
from talkface.data.windows import WindowDataset
from talkface.dubbing.generate import LipSync
from talkface.evaluation.generate import Generators, generate_clip, window_batch
from talkface.model_inputs import (WindowConfig, check_window, close_lips, evaluation_reference, frame_mel_windows,
                                   mel_window, needs_clamp, non_overlapping_starts, pose_input, silent_mel,
                                   training_reference)
from talkface.models.generator import Generator, GeneratorConfig
from talkface.models.layers import AudioEncoder

S, K, T = 16, 5, 40
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One clip: random frames, a mel of random values with T * 80 / 25 + 1 rows (what 16 kHz audio gives)."""
    root = tmp_path_factory.mktemp("store")
    rng = np.random.default_rng(0)
    d = root / "clips" / "c0"
    d.mkdir(parents=True)
    frames = rng.integers(0, 256, (T, S, S, 3), dtype=np.uint8)
    np.save(d / "frames.npy", frames)
    np.save(d / "landmarks.npy", np.full((T, 68, 2), np.nan, np.float32))
    (d / "meta.json").write_text(json.dumps({"clip_id": "c0", "n_frames": T}))
    (root / "mels").mkdir()
    mel = rng.uniform(-4, 4, (int(T * 80 / 25) + 1, 80)).astype(np.float32)
    np.save(root / "mels" / "c0.npy", mel)
    return root, frames, mel


def _generator(seed: int) -> Generator:
    torch.manual_seed(seed)
    return Generator(GeneratorConfig(face_size=S, k=K, width=4, max_width=16, audio_dim=16),
                     AudioEncoder(width=4, out_dim=16)).eval()


def test_training_evaluation_and_dubbing_build_the_same_generator_inputs(store):
    root, frames, mel = store
    window = WindowConfig(k=K)
    ds = WindowDataset(root / "clips", root / "mels", ["c0"], window, seed=3)
    lips = LipSync(_generator(0), None, window, MelConfig(), torch.device("cpu"), amp=False)
    checked = set()
    for i in range(30):
        item = ds[i]
        c, f, rng = ds.locate(i)
        lo, hi = ds.valid[c]
        g = training_reference(lo, hi, f, K, rng)  # the dataset's own draw, replayed
        assert torch.equal(item["identity"], torch.from_numpy(frames[g:g + K]).permute(0, 3, 1, 2).float() / 255)
        ev = window_batch(frames, mel, [f], [g], window)                       # evaluate
        pose, mels = lips.window_inputs(frames[f:f + K][None], mel, [f])       # dub (crops = the clip's faces)
        for name, training in (("pose", item["pose"]), ("identity", item["identity"]),
                               ("indiv_mels", item["indiv_mels"])):
            assert torch.equal(ev[name][0], training), name
        assert torch.equal(pose[0], item["pose"]) and torch.equal(mels[0], item["indiv_mels"])
        assert torch.equal(item["mel"], torch.from_numpy(mel_window(mel, f, window)))  # the sync expert's window
        checked.add(f)
    assert len(checked) > 5
    # the pose input: lower half zeroed, upper half untouched
    assert torch.all(item["pose"][:, :, S // 2:] == 0) and torch.equal(item["pose"][:, :, :S // 2],
                                                                       item["frames"][:, :, :S // 2])


def test_clip_edges_are_clamped_the_same_in_evaluation_and_dubbing(store):
    root, frames, mel = store
    window = WindowConfig(k=K)
    lips = LipSync(_generator(0), None, window, MelConfig(), torch.device("cpu"), amp=False)
    for f in (0, 1, T - K):  # windows the dataset never draws: their per-frame mels leave the clip
        ev = window_batch(frames, mel, [f], [evaluation_reference("c0", f, T, K, 0)], window)
        _, mels = lips.window_inputs(frames[f:f + K][None], mel, [f])
        assert torch.equal(ev["indiv_mels"][0], mels[0])
    assert needs_clamp(T - 1 - K // 2, len(mel), window) and needs_clamp(-2, len(mel), window)
    last = frame_mel_windows(mel, T - K, window)[-1, 0]                        # moved inside the audio
    np.testing.assert_array_equal(last, mel[len(mel) - window.mel_steps:].T)
    np.testing.assert_array_equal(frame_mel_windows(mel, 0, window)[0, 0], mel[:window.mel_steps].T)
    ds = WindowDataset(root / "clips", root / "mels", ["c0"], window)
    lo, hi = ds.valid[0]
    assert all(not needs_clamp(j - K // 2, len(mel), window) for f in (lo, hi) for j in range(f, f + K))


def test_silent_reference_is_the_same_everywhere(store):
    """G_S(identity) with the silent mel of the configured mel parameters, in training, evaluation and dubbing."""
    from talkface.losses import LossConfig
    from talkface.models.generator_io import joint_audio_spec
    from talkface.train.generator import GeneratorTask, GeneratorTrainConfig
    from talkface.train.loop import LoopConfig

    root, frames, mel = store
    mel_cfg = MelConfig(max_abs_value=3.0)  # not the default: each path must read the configured one
    window = WindowConfig(k=K)
    g_s = _generator(1)
    quiet = silent_mel(mel_cfg, window.mel_steps)
    assert quiet.shape == (1, 80, 16) and np.all(quiet == -3.0)
    identity = torch.from_numpy(frames[10:10 + K][None]).permute(0, 1, 4, 2, 3).float() / 255

    cfg = GeneratorTrainConfig(loop=LoopConfig(device="cpu"), model=GeneratorConfig(face_size=S, k=K, width=4,
                                                                                    max_width=16, audio_dim=16),
                               loss=LossConfig(sync=0.0, sync_kind="none", triplet=0.0, perceptual=0.0), window=window,
                               mel=mel_cfg, use_silent_reference=True, audio_encoder="joint")
    task = GeneratorTask(cfg, AudioEncoder(width=4, out_dim=16), joint_audio_spec(4, 16), silent=g_s)
    training = task.reference(identity)
    with torch.no_grad():
        by_hand = g_s(pose_input(identity), identity, torch.full((1, K, 1, 80, 16), -3.0))
    assert torch.equal(training, by_hand)

    gens = Generators(_generator(0), K, S, silent=g_s, silent_mel=quiet)
    out = generate_clip(gens, frames, mel, "c0", 0, 8, torch.device("cpu"), window)
    with torch.no_grad():
        ref = close_lips(g_s, identity, torch.from_numpy(quiet))
    g = evaluation_reference("c0", 0, T, K, 0)
    with torch.no_grad():
        eval_ref = close_lips(g_s, torch.from_numpy(frames[g:g + K][None]).permute(0, 1, 4, 2, 3).float() / 255,
                              torch.from_numpy(quiet))
    np.testing.assert_array_equal(out["silent_ref"][:K], eval_ref.clamp(0, 1).mul(255).round().to(torch.uint8)
                                  .permute(0, 1, 3, 4, 2)[0].numpy())
    lips = LipSync(_generator(0), g_s, window, mel_cfg, torch.device("cpu"), amp=False)
    assert torch.equal(lips.reference(frames[10:10 + K][None]), ref)
    assert torch.equal(ref, training)


def test_sync_expert_windows_are_the_same_in_training_and_lse():
    """The talkface-syncnet LSE scores frame v with the aligned window the expert was trained on (dataset `mel`)."""
    from talkface.metrics.lse import LSEScorer
    from talkface.models.syncnet import SyncNet, SyncNetConfig

    rng = np.random.default_rng(1)
    window = WindowConfig(k=K)
    mel = rng.uniform(-4, 4, (int(T * 80 / 25) + 1, 80)).astype(np.float32)
    frames = rng.integers(0, 256, (T, 96, 96, 3), dtype=np.uint8)
    torch.manual_seed(0)
    expert = SyncNet(SyncNetConfig(k=K, width=4)).eval()
    scorer = LSEScorer.from_expert(expert, window=window, mel_fn=lambda audio: mel)
    _, audio_feats = scorer.embed(frames, np.zeros(T * 640, np.float32))
    with torch.no_grad():
        for f in (0, 7, 20):
            want = expert.embed_audio(torch.from_numpy(mel_window(mel, f, window))[None])
            assert torch.allclose(audio_feats[f], want[0], atol=1e-6)


def test_reference_draws_never_overlap_the_target():
    assert non_overlapping_starts(0, 10, 4, 3).tolist() == [0, 1, 7, 8, 9, 10]
    rng = np.random.default_rng(0)
    for f in range(2, 30):
        g = training_reference(2, 30, f, K, rng)
        assert 2 <= g <= 30 and (g + K <= f or g >= f + K)
        e = evaluation_reference("c", f, 35, K, 0)
        assert 0 <= e <= 30 and (e + K <= f or e >= f + K)


def test_the_window_must_fit_the_audio_encoders():
    check_window(WindowConfig(), MelConfig())
    with pytest.raises(ValueError, match="mel_steps is 20"):
        check_window(WindowConfig(mel_steps=20))
    with pytest.raises(ValueError, match="mel_fps 50.0"):
        check_window(WindowConfig(mel_fps=50.0), MelConfig())
