"""Test-time BatchNorm statistics of dubbing (dubbing/norm_stats.py): the copy's statistics are the windows' batch
statistics (known answer from the layer's own input), the loaded G_L is untouched, the audio encoder only on request,
and the windows are spread over the dub where the video has faces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkface.dubbing.norm_stats import NormStatsConfig, batch_norms, stats_windows, video_norm_stats
from talkface.models.generator import Generator, GeneratorConfig
from talkface.models.layers import AudioEncoder


def _generator(norm: str = "batch") -> Generator:
    torch.manual_seed(0)
    cfg = GeneratorConfig(face_size=32, k=5, width=4, max_width=16, audio_dim=16, norm=norm)
    return Generator(cfg, AudioEncoder(width=4, out_dim=16)).eval()


def _inputs(n: int = 3, s: int = 32):
    torch.manual_seed(1)
    return torch.rand(n, 5, 3, s, s), torch.rand(n, 5, 3, s, s) * 0.5 + 0.5, torch.randn(n, 5, 1, 80, 16)


def test_statistics_are_the_windows_batch_statistics():
    gen = _generator()
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    pose, identity, mels = _inputs()
    video = video_norm_stats(gen, pose, identity, mels, NormStatsConfig(audio=False))
    assert video is not gen and not video.training
    # known answer for the identity encoder's first BatchNorm: mean / unbiased variance of its input, ReLU(conv(x))
    first = gen.identity_encoder.levels[0][0]  # conv, ReLU, BatchNorm
    with torch.no_grad():
        x = first[1](first[0](identity.reshape(-1, 3, 32, 32)))
    bn = video.identity_encoder.levels[0][0][2]
    torch.testing.assert_close(bn.running_mean, x.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, x.var(dim=(0, 2, 3), unbiased=True), rtol=1e-4, atol=1e-5)
    assert bn.momentum == gen.identity_encoder.levels[0][0][2].momentum
    # the loaded generator is untouched; the copy differs only in BatchNorm statistics outside the audio encoder
    after, copied = gen.state_dict(), video.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    changed = {k for k in before if not torch.equal(before[k], copied[k])}
    assert changed and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)
    assert not any(k.startswith("audio_encoder.") for k in changed)
    # and the outputs change: the statistics are used
    with torch.no_grad():
        assert not torch.allclose(gen(pose, identity, mels), video(pose, identity, mels))


def test_audio_encoder_statistics_only_on_request():
    gen = _generator()
    pose, identity, mels = _inputs()
    video = video_norm_stats(gen, pose, identity, mels, NormStatsConfig(audio=True))
    a, b = gen.state_dict(), video.state_dict()
    assert any(k.startswith("audio_encoder.") and k.endswith("running_mean") and not torch.equal(a[k], b[k]) for k in a)
    assert len(batch_norms(gen, True)) > len(batch_norms(gen, False)) > 0


def test_groupnorm_generator_and_no_windows_are_left_alone():
    gen = _generator("group")
    pose, identity, mels = _inputs()
    assert video_norm_stats(gen, pose, identity, mels, NormStatsConfig(audio=False)) is gen  # nothing to re-estimate
    assert video_norm_stats(gen, pose, identity, mels, NormStatsConfig(audio=True)) is not gen  # its audio encoder's
    bn = _generator()
    assert video_norm_stats(bn, pose[:0], identity[:0], mels[:0], NormStatsConfig()) is bn
    with pytest.raises(ValueError, match="windows"):
        NormStatsConfig(windows=0)


def test_stats_windows_spread_over_the_dub_where_there_are_faces():
    faces = np.ones(30, bool)
    assert stats_windows(20, faces, 5, 4, "loop") == [(0, 0), (5, 5), (10, 10), (15, 15)]
    # a shorter video looped: output frame 15 shows source frame 15 % 12 = 3
    assert stats_windows(20, np.ones(12, bool), 5, 4, "loop") == [(0, 0), (5, 5), (10, 7), (15, 3)]
    # held: output frames past the end show the last frame; a window must lie inside the video
    assert stats_windows(20, np.ones(12, bool), 5, 4, "hold") == [(0, 0), (5, 5), (10, 7), (15, 7)]
    gap = faces.copy()
    gap[7] = False  # a window that contains frame 7 is dropped
    assert stats_windows(20, gap, 5, 4, "loop") == [(0, 0), (10, 10), (15, 15)]  # [5, 10) holds frame 7
    assert stats_windows(20, faces, 5, 100, "loop")[:3] == [(0, 0), (1, 1), (2, 2)]  # at most one per start
    assert len(stats_windows(20, faces, 5, 100, "loop")) == 16
    assert stats_windows(4, faces, 5, 4, "loop") == []  # shorter than one window


def test_statistics_pool_the_passes_into_the_whole_sets():
    """Passes of cfg.batch windows: the first layer's statistics are those of all windows at once (pooled means and
    variances, law of total variance), not the mean of the passes' variances."""
    gen = _generator()
    pose, identity, mels = _inputs(n=4)
    video = video_norm_stats(gen, pose, identity, mels, NormStatsConfig(audio=False, batch=1))
    first = gen.identity_encoder.levels[0][0]
    with torch.no_grad():
        x = first[1](first[0](identity.reshape(-1, 3, 32, 32)))
    bn = video.identity_encoder.levels[0][0][2]
    torch.testing.assert_close(bn.running_mean, x.mean(dim=(0, 2, 3)), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, x.var(dim=(0, 2, 3), unbiased=True), rtol=1e-4, atol=1e-5)
    assert not video.training and all(not m.training for m in batch_norms(video, True))
    with pytest.raises(ValueError, match="batch"):
        NormStatsConfig(batch=0)
