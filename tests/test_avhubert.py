"""AV-HuBERT without fairseq: checkpoint layout conformance, strict loading, numerics of the parts, inputs."""

import argparse
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from talkface.faces.mouth_roi import (MouthROIConfig, REFERENCE_STABLE_POINTS_256, STABLE_POINTS, lip_input,
                                      mouth_rois, similarity_transform)
from talkface.media.mfcc import int16_scale, logfbank
from talkface.models.avhubert import (ARCHS, AVHubert, AVHubertArch, EncoderLayer, FINETUNED_PREFIX, SelfAttention,
                                      WeightNormConv1d, audio_features, avhubert_from_state, load_avhubert_checkpoint,
                                      read_fairseq_checkpoint)
from talkface.weights import WeightsNotAvailable

from avhubert_reference import reference_keys

TINY = AVHubertArch(embed_dim=32, layers=2, ffn_dim=64, heads=4, conv_pos=8, conv_pos_groups=4)


class FakeFairseqConfig:
    """Stands for the omegaconf / dataclass config objects fairseq pickles into a checkpoint."""

    def __init__(self):
        self.model = {"_name": "av_hubert", "encoder_layers": 12}


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # what a hostile checkpoint could hold: unpickling would run a shell command
        return os.system, (f"touch {self.marker}",)


def synthetic_state(size: str, finetuned: bool) -> dict[str, torch.Tensor]:
    """Random tensors with exactly the official names and shapes; one tensor per distinct shape is shared so that
    the file stays small (torch.save stores a shared storage once)."""
    ref = reference_keys(size, finetuned, decoder_layers=1)
    gen, pool, out = torch.Generator().manual_seed(0), {}, {}
    for k, shape in ref.items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(7)
            continue
        role = "var" if k.endswith("running_var") else "value"
        if (shape, role) not in pool:
            t = torch.randn(shape, generator=gen) * 0.05
            pool[(shape, role)] = t.abs() + 0.5 if role == "var" else t
        out[k] = pool[(shape, role)]
    return out


def save_checkpoint(path, state, marker=None):
    ckpt = {"args": argparse.Namespace(arch="av_hubert"), "cfg": FakeFairseqConfig(), "model": state,
            "optimizer_history": [{"num_updates": 1}], "extra_state": {"epoch": 3}}
    if marker is not None:
        ckpt["extra_state"]["hook"] = Exploit(marker)
    torch.save(ckpt, path)


def encoder_only(keys):
    strip = {k[len(FINETUNED_PREFIX):] if k.startswith(FINETUNED_PREFIX) else k: v for k, v in keys.items()}
    return {k: v for k, v in strip.items()
            if not k.startswith(("decoder.", "mask_emb", "final_proj.", "label_embs_concat"))}


@pytest.mark.parametrize("size", ["base", "large"])
@pytest.mark.parametrize("finetuned", [False, True])
def test_reference_layout_equals_module(size, finetuned):
    with torch.device("meta"):
        model = AVHubert(ARCHS[size])
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ref = reference_keys(size, finetuned)
    assert ours == encoder_only(ref)
    if finetuned:
        assert all(k.startswith((FINETUNED_PREFIX, "decoder.")) for k in ref)
    n_layers = 1 + max(int(k.split(".")[2]) for k in ours if k.startswith("encoder.layers."))
    assert n_layers == {"base": 12, "large": 24}[size]
    assert ours["encoder.pos_conv.0.weight_v"] == (ARCHS[size].embed_dim, ARCHS[size].embed_dim // 16, 128)


def test_large_strict_load_on_meta():
    state = {k: torch.empty(s, device="meta") for k, s in reference_keys("large", True).items()}
    model, finetuned = avhubert_from_state(state)
    assert finetuned and model.arch == ARCHS["large"]
    del state[FINETUNED_PREFIX + "encoder.layers.23.fc2.bias"]
    with pytest.raises(KeyError, match="missing 1.*encoder.layers.23.fc2.bias"):
        avhubert_from_state(state)


def test_base_checkpoint_end_to_end(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "base_vox_433h.pt"
    save_checkpoint(path, synthetic_state("base", True), marker=marker)
    ckpt = read_fairseq_checkpoint(path)
    assert not marker.exists(), "reading a checkpoint must not run code named in it"
    assert ckpt["extra_state"]["epoch"] == 3 and "opaque" in repr(ckpt["cfg"])

    model = load_avhubert_checkpoint(path)
    assert model.finetuned and model.arch == ARCHS["base"] and not model.training
    ref = synthetic_state("base", True)
    sd = model.state_dict()
    for k in ("encoder.layers.11.fc1.weight", "feature_extractor_video.resnet.trunk.layer4.1.relu2.weight"):
        assert torch.equal(sd[k], ref[FINETUNED_PREFIX + k])
    torch.manual_seed(0)
    video, audio = torch.randn(1, 3, 1, 88, 88), torch.randn(1, 3, 104)
    with torch.no_grad():
        outs = [model.extract(video, None), model.extract(None, audio), model.extract(video, audio)]
    for out in outs:
        assert out.shape == (1, 3, 768) and torch.isfinite(out).all()
    assert not torch.allclose(outs[0], outs[2])
    with pytest.raises(ValueError, match="differ in length"):
        model.extract(video, audio[:, :2])


def test_pretrained_checkpoint_and_key_errors(tmp_path):
    state = synthetic_state("base", False)
    path = tmp_path / "base_lrs3_iter5.pt"
    save_checkpoint(path, state)
    model = load_avhubert_checkpoint(path)
    assert not model.finetuned and model.arch.layers == 12

    extra = dict(state, **{"encoder.layers.0.self_attn.bias_k": torch.zeros(1, 1, 768)})
    save_checkpoint(path, extra)
    with pytest.raises(KeyError, match=r"unexpected 1 \['encoder.layers.0.self_attn.bias_k'\]"):
        load_avhubert_checkpoint(path)
    missing = {k: v for k, v in state.items() if k != "feature_extractor_audio.proj.bias"}
    save_checkpoint(path, missing)
    with pytest.raises(KeyError, match="missing 1.*feature_extractor_audio.proj.bias"):
        load_avhubert_checkpoint(path)
    ft = synthetic_state("base", True)
    ft["w2v_encoder.proj.weight"] = torch.zeros(2, 2)
    save_checkpoint(path, ft)
    with pytest.raises(KeyError, match="outside the encoder.*w2v_encoder.proj.weight"):
        load_avhubert_checkpoint(path)
    with pytest.raises(WeightsNotAvailable, match="AV-HuBERT not available: no AV-HuBERT checkpoint"):
        load_avhubert_checkpoint(None)
    with pytest.raises(WeightsNotAvailable, match="no file"):
        load_avhubert_checkpoint(tmp_path / "nope.pt")


# ------------------------------------------------------------------------------------------------ numerics


def test_weight_norm_conv_matches_torch():
    torch.manual_seed(0)
    ours = WeightNormConv1d(16, 8, groups=4)
    ours.weight_g.data = torch.rand(1, 1, 8) + 0.5
    ref = torch.nn.Conv1d(16, 16, 8, padding=4, groups=4)
    ref = torch.nn.utils.parametrizations.weight_norm(ref, name="weight", dim=2)
    ref.parametrizations.weight.original0.data = ours.weight_g.data.clone()
    ref.parametrizations.weight.original1.data = ours.weight_v.data.clone()
    ref.bias.data = ours.bias.data.clone()
    x = torch.randn(2, 16, 11)
    torch.testing.assert_close(ours(x), ref(x))


def test_attention_and_layer_match_reference_formulas():
    torch.manual_seed(0)
    attn = SelfAttention(32, 4)
    mha = torch.nn.MultiheadAttention(32, 4, batch_first=True)
    mha.in_proj_weight.data = torch.cat([attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight]).data
    mha.in_proj_bias.data = torch.cat([attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias]).data
    mha.out_proj.weight.data, mha.out_proj.bias.data = attn.out_proj.weight.data, attn.out_proj.bias.data
    x = torch.randn(2, 7, 32)
    torch.testing.assert_close(attn(x), mha(x, x, x, need_weights=False)[0])
    layer = EncoderLayer(TINY)
    h = x + attn_out(layer, x)
    expected = h + layer.fc2(F.gelu(layer.fc1(layer.final_layer_norm(h))))
    torch.testing.assert_close(layer(x), expected)


def attn_out(layer, x):
    return layer.self_attn(layer.self_attn_layer_norm(x))


def test_missing_modality_is_zeros_after_projection():
    torch.manual_seed(0)
    model = AVHubert(TINY).eval()
    video = torch.randn(1, 2, 1, 32, 32)  # any ROI size works (global pool); small is fast
    with torch.no_grad():
        fv = model.feature_extractor_video(video.transpose(1, 2))
        x = model.post_extract_proj(model.layer_norm(torch.cat([torch.zeros_like(fv), fv], -1)))
        expected = model.encoder(x)
        out = model.extract(video, None)
    torch.testing.assert_close(out, expected)
    assert out.shape == (1, 2, 32)  # pos_conv drops its extra last frame: output length = input length
    with pytest.raises(ValueError, match="at least one"):
        model.extract(None, None)


def test_audio_features_stack_and_normalise():
    rng = np.random.default_rng(0)
    audio = rng.normal(0, 0.1, 16000).astype(np.float32)  # 1 s -> 99 fbank frames -> 25 stacked (zero-padded)
    feats = audio_features(audio)
    assert feats.shape == (25, 104) and feats.dtype == np.float32
    np.testing.assert_allclose(feats.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(feats.std(1), 1, atol=1e-3)
    fb = logfbank(int16_scale(audio)).astype(np.float32)
    row = np.concatenate(fb[4:8])  # stacked frame 1 = fbank frames 4..7, frame-major
    np.testing.assert_allclose(feats[1], (row - row.mean()) / np.sqrt(row.var() + 1e-5), rtol=1e-4, atol=1e-4)
    assert audio_features(audio, n_frames=30).shape == (30, 104)
    assert np.all(audio_features(audio, n_frames=30)[25:] == 0)
    assert audio_features(audio, n_frames=20).shape == (20, 104)


# ------------------------------------------------------------------------------------------------ mouth ROI


def test_similarity_transform_recovers_known_transform():
    src = np.random.default_rng(0).uniform(0, 100, (5, 2))
    ang, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    dst = src @ (scale * rot).T + shift
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], scale * rot, atol=1e-9)
    np.testing.assert_allclose(m[:, 2], shift, atol=1e-9)


def _face_with_mouth(t=3, size=96):
    """Frames with a dark mouth blob and landmarks that place the reference face at 0.3x scale."""
    lms = np.full((68, 2), 48.0)
    m = np.array([[0.3, 0.0, 10.0], [0.0, 0.3, 5.0]])  # reference frame -> 96 px frame
    ref = REFERENCE_STABLE_POINTS_256 @ m[:, :2].T + m[:, 2]
    lms[list(STABLE_POINTS)] = ref
    mouth_center = np.array([128.0, 190.0]) @ m[:, :2].T + m[:, 2]
    angles = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    lms[48:68] = mouth_center + np.stack([6 * np.cos(angles), 2 * np.sin(angles)], 1)
    frames = np.full((t, size, size, 3), 200, np.uint8)
    ys, xs = np.mgrid[:size, :size]
    blob = ((xs - mouth_center[0]) / 6) ** 2 + ((ys - mouth_center[1]) / 2.5) ** 2 <= 1
    frames[:, blob] = (20, 40, 60)
    landmarks = np.repeat(lms[None], t, 0)
    landmarks[1] = np.nan  # a frame without detection is interpolated
    return frames, landmarks


def test_mouth_rois_centre_the_mouth():
    frames, landmarks = _face_with_mouth()
    rois = mouth_rois(frames, landmarks)
    assert rois.shape == (3, 96, 96) and rois.dtype == np.uint8
    for roi in rois:
        assert roi[48, 48] < 60          # dark mouth at the centre (gray of (20, 40, 60) is 37)
        assert roi[48, 10] > 150 and roi[10, 48] > 150   # skin around it
        dark = np.argwhere(roi < 100)
        assert np.abs(dark.mean(0) - 47.5).max() < 2.0
        width = dark[:, 1].max() - dark[:, 1].min()
        assert 30 < width < 50           # 12 px mouth scaled by 1/0.3
    x = lip_input(rois)
    assert x.shape == (3, 1, 88, 88) and x.dtype == np.float32
    cfg = MouthROIConfig()
    assert x[0, 0, 0, 0] == pytest.approx((rois[0, 4, 4] / 255.0 - cfg.mean) / cfg.std, rel=1e-6)
    with pytest.raises(ValueError, match="no frame has landmarks"):
        mouth_rois(frames, np.full_like(landmarks, np.nan))
