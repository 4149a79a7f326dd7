"""LSE-C / LSE-D: the syncnet_python offset search, the syncnet_v2 layout, and the MFCC features it reads."""

import numpy as np
import pytest
import torch

from talkface.media.mfcc import SpeechFeatureConfig, fbank, frame_signal, int16_scale, logfbank, mel_filterbank, mfcc
from talkface.metrics.lse import EXPERT, OFFICIAL, LSEScorer, lse_scores, num_windows, summarize
from talkface.models.lse_syncnet import SyncNetV2, load_syncnet_v2
from talkface.weights import WeightsNotAvailable

# ------------------------------------------------------------------------------------------------ offset search


def _seq(t=60, d=32, seed=0):
    return torch.randn(t, d, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("shift", [3, -4, 0])
def test_lse_recovers_known_offset(shift):
    video = _seq()
    # audio embedding i carries the content of video frame i + shift (zeros where there is none)
    audio = torch.zeros_like(video)
    idx = torch.arange(len(video)) + shift
    ok = (idx >= 0) & (idx < len(video))
    audio[ok] = video[idx[ok]]
    offset, min_dist, conf, curve = lse_scores(video, audio, vshift=15)
    assert offset == shift
    assert curve.shape == (31,) and int(np.argmin(curve)) == 15 - shift
    assert conf > 1.0 and min_dist < float(np.median(curve))


def test_lse_identical_sequences():
    v = _seq(40, 16, 1)
    offset, min_dist, conf, curve = lse_scores(v, v.clone(), vshift=15)
    assert offset == 0 and min_dist < 1e-4 and conf == pytest.approx(float(np.median(curve)) - min_dist)


def test_lse_curve_matches_reference_loop():
    # The syncnet_python calc_pdist loop, written out, on unequal lengths.
    v, a = _seq(12, 8, 2), _seq(10, 8, 3)
    vshift = 4
    ap = torch.nn.functional.pad(a, (0, 0, vshift, vshift + 2))
    ref = torch.stack([torch.nn.functional.pairwise_distance(v[[i]].repeat(9, 1), ap[i:i + 9]) for i in range(12)])
    _, _, _, curve = lse_scores(v, a, vshift=vshift)
    np.testing.assert_allclose(curve, ref.mean(0).numpy(), rtol=1e-6)


def test_lse_window_count_follows_syncnet_python():
    assert num_windows(100, 100 * 640) == 95   # lastframe = min_length - 5
    assert num_windows(100, 50 * 640 + 10) == 45


def test_summarize_refuses_mixed_scorers():
    r1 = {"min_dist": 7.0, "conf": 2.0, "scorer": OFFICIAL}
    r2 = {"min_dist": 9.0, "conf": 4.0, "scorer": OFFICIAL}
    assert summarize([r1, r2]) == {"LSE-D": 8.0, "LSE-C": 3.0, "n_videos": 2, "scorer": OFFICIAL}
    with pytest.raises(ValueError, match="different scorers"):
        summarize([r1, dict(r2, scorer=EXPERT)])


# ------------------------------------------------------------------------------------------------ syncnet_v2

# State-dict names of syncnet_python's SyncNetModel.S (from reading it): conv/BN positions in each Sequential.
def official_syncnet_keys() -> set[str]:
    keys = set()
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    for tower in ("netcnnaud", "netcnnlip"):
        for conv in (0, 4, 8, 11, 14, 18):
            keys |= {f"{tower}.{conv}.weight", f"{tower}.{conv}.bias"}
            keys |= {f"{tower}.{conv + 1}.{n}" for n in bn}
    for head in ("netfcaud", "netfclip"):
        keys |= {f"{head}.0.weight", f"{head}.0.bias", f"{head}.3.weight", f"{head}.3.bias"}
        keys |= {f"{head}.1.{n}" for n in bn}
    return keys


def test_syncnet_v2_layout_and_shapes(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = SyncNetV2().eval()
    sd = model.state_dict()
    assert set(sd) == official_syncnet_keys()
    assert tuple(sd["netcnnlip.0.weight"].shape) == (96, 3, 5, 7, 7)
    assert tuple(sd["netcnnaud.18.weight"].shape) == (512, 256, 5, 4)
    assert tuple(sd["netfclip.3.weight"].shape) == (1024, 512)
    with torch.no_grad():
        assert model.embed_audio(torch.randn(2, 1, 13, 20)).shape == (2, 1024)
        assert model.embed_lips(torch.rand(1, 3, 5, 224, 224) * 255).shape == (1, 1024)
    with pytest.raises(ValueError, match="13"):
        model.embed_audio(torch.randn(2, 1, 12, 20))
    path = tmp_path / "syncnet_v2.model"
    torch.save(sd, path)
    loaded = load_syncnet_v2(path)
    assert all(torch.equal(v, sd[k]) for k, v in loaded.state_dict().items())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(WeightsNotAvailable, match="syncnet_v2 weights not available"):
        LSEScorer.from_official(None)
    torch.save({"netcnnaud.0.weight": sd["netcnnaud.0.weight"]}, tmp_path / "bad.model")
    with pytest.raises(WeightsNotAvailable, match="does not match"):
        load_syncnet_v2(tmp_path / "bad.model")


def test_official_scorer_end_to_end(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "syncnet_v2.model"
    torch.save(SyncNetV2().state_dict(), path)
    scorer = LSEScorer.from_official(path, vshift=2)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (7, 48, 48, 3), dtype=np.uint8)
    audio = rng.normal(0, 0.1, 7 * 640).astype(np.float32)
    r = scorer.score(frames, audio)
    assert r["scorer"] == OFFICIAL and r["n_windows"] == 2 and len(r["curve"]) == 5
    assert -2 <= r["offset"] <= 2 and r["conf"] >= 0 and np.isfinite(r["min_dist"])


class TimeCodeExpert(torch.nn.Module):
    """A stand-in sync expert whose embeddings encode *when* a window starts, so the aligned audio window must meet
    the video window of the same time: video frames carry their index in pixel value, the mel carries its frame."""

    k = 5

    def __init__(self):
        super().__init__()
        self.freqs = torch.linspace(0.05, 1.3, 16)

    def _code(self, t):  # [B] times in video frames -> [B, 32] distinct unit vectors
        ang = t[:, None] * self.freqs[None]
        return torch.cat([ang.cos(), ang.sin()], 1) / 4.0

    def embed_video(self, frames):  # [B,k,3,S,S] in [0,1]
        return self._code(torch.round(frames[:, 0, 0, 0, 0] * 255.0))

    def embed_audio(self, mel):  # [B,1,80,16]; mel value = mel frame index (80 fps)
        return self._code(torch.round(mel[:, 0, 0, 0] * 25.0 / 80.0))


@pytest.mark.parametrize("shift", [0, 3, -2])
def test_expert_scorer_recovers_offset(shift):
    t = 30
    frames = np.zeros((t, 16, 16, 3), np.uint8)
    frames[:] = np.arange(t, dtype=np.uint8)[:, None, None, None]
    audio = np.zeros(t * 640, np.float32)

    def mel_fn(_audio):  # mel frame m carries the time of video frame m*25/80 + shift
        n = int(len(_audio) / 200) + 1
        return np.repeat((np.arange(n, dtype=np.float32) + shift * 80 / 25)[:, None], 80, axis=1)

    scorer = LSEScorer.from_expert(TimeCodeExpert(), vshift=6, mel_fn=mel_fn)
    r = scorer.score(frames, audio)
    assert r["scorer"] == EXPERT and r["n_windows"] == t - 5
    assert r["offset"] == shift


# ------------------------------------------------------------------------------------------------ MFCC


def test_frame_count_and_zero_signal():
    assert frame_signal(np.ones(400), 400, 160).shape == (1, 400)
    assert frame_signal(np.ones(401), 400, 160).shape == (2, 400)
    assert frame_signal(np.ones(16000), 400, 160).shape == (1 + int(np.ceil((16000 - 400) / 160)), 400)
    z = np.zeros(1000)
    eps = np.finfo(float).eps
    np.testing.assert_allclose(logfbank(z), np.log(eps))
    c = mfcc(z)
    np.testing.assert_allclose(c[:, 0], np.log(eps))  # log energy replaces c0
    np.testing.assert_allclose(c[:, 1:], 0.0, atol=1e-9)  # DCT of a constant log spectrum


def test_impulse_power_spectrum_by_hand():
    # x = delta[n]: after pre-emphasis the frame is [1, -0.97, 0...]; |X_k|^2 = 1 + a^2 - 2a cos(2 pi k / 512).
    x = np.zeros(400)
    x[0] = 1.0
    k = np.arange(257)
    power = (1 + 0.97**2 - 2 * 0.97 * np.cos(2 * np.pi * k / 512)) / 512
    feat, energy = fbank(x)
    assert energy[0] == pytest.approx(power.sum(), rel=1e-12)
    np.testing.assert_allclose(feat[0], mel_filterbank() @ power, rtol=1e-10)
    c = mfcc(x)
    lift = 1 + 11 * np.sin(np.pi * np.arange(13) / 22)
    n = np.arange(26)
    logfb = np.log(mel_filterbank() @ power)
    c1 = np.sqrt(2 / 26) * np.sum(logfb * np.cos(np.pi * 1 * (2 * n + 1) / 52))  # DCT-II, orthonormal
    assert c[0, 1] == pytest.approx(c1 * lift[1], rel=1e-9)


def test_filterbank_and_tone():
    fb = mel_filterbank()
    assert fb.shape == (26, 257) and fb.max() == pytest.approx(1.0) and (fb >= 0).all()
    t = np.arange(16000) / 16000
    tone = 10000 * np.sin(2 * np.pi * 1000 * t)
    peak = int(np.argmax(logfbank(tone).mean(0)))
    centers = np.argmax(fb, axis=1)  # filter j peaks at its centre bin
    assert abs(centers[peak] - 1000 * 512 / 16000) <= 4
    assert mfcc(tone).shape == (99, 13) and mfcc(tone, SpeechFeatureConfig(num_ceps=20)).shape == (99, 20)


def test_int16_scale():
    assert int16_scale(np.array([0.5, -1.0, 1.0], np.float32)).tolist() == [16384.0, -32768.0, 32767.0]
    assert int16_scale(np.array([3, -4], np.int16)).tolist() == [3.0, -4.0]


def test_matches_python_speech_features_when_installed():
    psf = pytest.importorskip("python_speech_features")
    a = (np.random.default_rng(0).normal(size=16000 + 77) * 3000).astype(np.int16)
    np.testing.assert_allclose(mfcc(a), psf.mfcc(a, 16000), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(logfbank(a), psf.logfbank(a, 16000), rtol=1e-10, atol=1e-10)
