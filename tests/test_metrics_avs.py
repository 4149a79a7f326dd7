"""AVSu / AVSm / AVSv (P2 eqs. 4-6) on a small random AV-HuBERT: known answers and the not-available path."""

import numpy as np
import pytest
import torch

from talkface.metrics import NotAvailable
from talkface.metrics.avs import ClipAVS, cosine_over_time, features, load_avhubert
from talkface.models.avhubert import AVHubert, AVHubertArch

TINY = AVHubertArch(embed_dim=32, layers=2, ffn_dim=64, heads=4, conv_pos=8, conv_pos_groups=4)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return AVHubert(TINY).eval()


def test_cosine_over_time_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[3.0, 0.0], [1.0, 0.0]])
    assert cosine_over_time(a, b) == pytest.approx(0.5)  # cos 1 at t=0, 0 at t=1
    with pytest.raises(ValueError, match="equal shape"):
        cosine_over_time(a, b[:1])


def test_avs_identical_and_shifted(model):
    torch.manual_seed(1)
    lips = torch.randn(2, 1, 32, 32)  # the ResNet pools globally: small ROIs keep this test fast
    audio = torch.randn(2, 104)
    avs = ClipAVS(model, lips, audio)
    same = avs.scores(lips)
    assert same["AVSv"] == pytest.approx(1.0, abs=1e-6) and same["AVSm"] == pytest.approx(1.0, abs=1e-6)
    assert avs.scores(None) == pytest.approx(same, abs=1e-9)  # None: the ground truth itself
    shifted = torch.roll(lips, 1, dims=-1)
    moved = avs.scores(shifted)
    assert -1.0 < moved["AVSv"] < 1.0 - 1e-6 and -1.0 < moved["AVSm"] < 1.0 - 1e-6
    assert -1.0 <= moved["AVSu"] <= 1.0 and moved["AVSu"] != pytest.approx(same["AVSu"], abs=1e-9)
    # P2 eqs. 4-6, written out
    te = lambda v, a: features(model, v, a)  # noqa: E731
    assert moved["AVSu"] == pytest.approx(cosine_over_time(te(shifted, None), te(None, audio)), abs=1e-9)
    assert moved["AVSm"] == pytest.approx(cosine_over_time(te(shifted, audio), te(lips, audio)), abs=1e-9)
    assert moved["AVSv"] == pytest.approx(cosine_over_time(te(shifted, None), te(lips, None)), abs=1e-9)
    na = ClipAVS(model, None, audio).scores(lips)
    assert set(na) == set(ClipAVS.KEYS) and all("no landmarks" in v.reason for v in na.values())


def test_load_avhubert_not_available():
    result = load_avhubert(None)
    assert isinstance(result, NotAvailable) and not result
    assert result.reason == "AV-HuBERT not available: no AV-HuBERT checkpoint"
    assert result.as_dict() == {"available": False, "reason": result.reason}


def test_clip_inputs_shapes():
    from talkface.metrics.avs import clip_inputs
    from test_avhubert import _face_with_mouth

    frames, landmarks = _face_with_mouth(t=4)
    audio = torch.randn(4 * 640).numpy() * 0.1
    lips, aud = clip_inputs(frames, landmarks, audio)
    assert lips.shape == (4, 1, 88, 88) and aud.shape == (4, 104)
    assert clip_inputs(frames, landmarks, None)[1] is None
    assert clip_inputs(frames, landmarks * np.nan, None)[0] is None  # no landmarks: no ROI
