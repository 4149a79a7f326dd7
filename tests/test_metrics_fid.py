"""FID: Fréchet distance against closed forms; the FID Inception's layout against the official weight file's keys."""

import numpy as np
import pytest
import torch

from talkface.metrics.fid import FeatureStats, accumulate_features, fid_from_features, frechet_distance, mean_cov
from talkface.models.inception import FIDInceptionV3, load_fid_inception, load_inception_state
from talkface.weights import WeightsNotAvailable


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    s1, s2 = rng.uniform(0.1, 2.0, 5), rng.uniform(0.1, 2.0, 5)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_full_covariance_closed_form():
    # Commuting covariances A = Q diag(a) Q^T, B = Q diag(b) Q^T: Tr(A + B - 2 (AB)^1/2) = sum(a + b - 2 sqrt(ab)).
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a, b = rng.uniform(0.2, 3.0, 6), rng.uniform(0.2, 3.0, 6)
    expected = np.sum(a + b - 2 * np.sqrt(a * b))
    got = frechet_distance(np.zeros(6), q @ np.diag(a) @ q.T, np.zeros(6), q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-8)


def test_fid_identical_and_shifted_features():
    rng = np.random.default_rng(2)
    f = rng.normal(size=(400, 8))
    assert abs(fid_from_features(f, f)) < 1e-6
    shift = np.array([1.0, 0, 0, 0, 0, 0, 0, 2.0])
    assert fid_from_features(f, f + shift) == pytest.approx(5.0, rel=1e-6)  # same covariance: |d|^2


def test_feature_stats_stream_matches_numpy():
    rng = np.random.default_rng(3)
    f = rng.normal(size=(50, 4)) * [1, 2, 3, 4] + 7
    stats = FeatureStats(4)
    for chunk in np.array_split(f, 3):
        stats.update(torch.from_numpy(chunk).float())
    mu, cov = stats.mean_cov()
    mu_ref, cov_ref = mean_cov(f.astype(np.float32))
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-5)
    np.testing.assert_allclose(cov, cov_ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        FeatureStats(4).mean_cov()


# Key names of pt_inception-2015-12-05-6726825d.pth, from reading pytorch-fid (fid_inception_v3: torchvision's
# Inception3 with num_classes=1008, aux_logits=False, blocks replaced by FIDInceptionA/C/E_1/E_2 that keep
# torchvision's branch names). Every conv unit has `conv.weight` and `bn.{weight,bias,running_mean,running_var}`.
STEM = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3"]
A = ["branch1x1", "branch5x5_1", "branch5x5_2", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3", "branch_pool"]
B = ["branch3x3", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"]
C = ["branch1x1", "branch7x7_1", "branch7x7_2", "branch7x7_3", "branch7x7dbl_1", "branch7x7dbl_2", "branch7x7dbl_3",
     "branch7x7dbl_4", "branch7x7dbl_5", "branch_pool"]
D = ["branch3x3_1", "branch3x3_2", "branch7x7x3_1", "branch7x7x3_2", "branch7x7x3_3", "branch7x7x3_4"]
E = ["branch1x1", "branch3x3_1", "branch3x3_2a", "branch3x3_2b", "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3a",
     "branch3x3dbl_3b", "branch_pool"]
LAYOUT = {**{s: [None] for s in STEM}, "Mixed_5b": A, "Mixed_5c": A, "Mixed_5d": A, "Mixed_6a": B, "Mixed_6b": C,
          "Mixed_6c": C, "Mixed_6d": C, "Mixed_6e": C, "Mixed_7a": D, "Mixed_7b": E, "Mixed_7c": E}
SHAPES = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_6e.branch7x7_2.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch3x3_2.conv.weight": (320, 192, 3, 3),
    "Mixed_7c.branch3x3dbl_1.conv.weight": (448, 2048, 1, 1),
    "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
    "fc.weight": (1008, 2048),
}


def official_keys() -> set[str]:
    keys = {"fc.weight", "fc.bias"}
    for block, branches in LAYOUT.items():
        for br in branches:
            p = block if br is None else f"{block}.{br}"
            keys |= {f"{p}.conv.weight"} | {f"{p}.bn.{n}" for n in ("weight", "bias", "running_mean", "running_var")}
    return keys


def test_inception_layout_matches_official_keys():
    model = FIDInceptionV3()
    sd = model.state_dict()
    ours = {k for k in sd if not k.endswith("num_batches_tracked")}
    assert ours == official_keys()
    for k, shape in SHAPES.items():
        assert tuple(sd[k].shape) == shape, k
    assert len(official_keys()) == 94 * 5 + 2  # 94 conv units


def test_inception_runs_and_loads_state(tmp_path):
    torch.manual_seed(0)
    model = FIDInceptionV3().eval()
    with torch.no_grad():  # one forward only: this network is slow on a shared CPU
        feats = model(torch.rand(1, 3, 299, 299))
    assert feats.shape == (1, 2048)
    assert torch.isfinite(feats).all() and (feats >= 0).all() and feats.std() > 0
    # A file in the official format (no BN batch counters) loads strictly into a fresh model.
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, path)
    loaded = load_fid_inception(path)
    assert not loaded.training
    for k, v in loaded.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(v, state[k]), k


def test_accumulate_features_streams_batches():
    proj = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 4 * 4, 2048))
    batches = [torch.rand(2, 3, 4, 4), torch.rand(3, 3, 4, 4)]
    stats = accumulate_features(proj, batches)
    with torch.no_grad():
        ref = torch.cat([proj(b) for b in batches]).double().numpy()
    mu, _ = stats.mean_cov()
    assert stats.n == 5
    np.testing.assert_allclose(mu, ref.mean(0), rtol=1e-5, atol=1e-6)


def test_inception_weights_not_available(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotAvailable, match="not available"):
        load_fid_inception(None)
    with pytest.raises(WeightsNotAvailable, match="no file"):
        load_fid_inception(tmp_path / "missing.pth")
    bad = dict(FIDInceptionV3().state_dict())
    bad.pop("fc.bias")
    bad["extra.weight"] = torch.zeros(1)
    with pytest.raises(WeightsNotAvailable, match="missing 1.*unexpected 1"):
        load_inception_state(FIDInceptionV3(), bad)
