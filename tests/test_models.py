"""Sync experts, generator, discriminator and VGG-19 features: shapes, value ranges, checkpoints, frozen weights."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from talkface.models.avsyncnet import AVSyncNet, AVSyncNetConfig
from talkface.models.discriminator import Discriminator, DiscriminatorConfig
from talkface.models.expert_io import build_expert, load_expert, save_expert
from talkface.models.generator import Generator, GeneratorConfig
from talkface.models.layers import AudioEncoder
from talkface.models.syncnet import SyncNet, SyncNetConfig
from talkface.models.vgg import VGG19Features
from talkface.models.expert import lower_half_stack
from talkface.models.vgg import VGG19_FILENAME
from talkface.weights import WeightsNotAvailable, hub_checkpoint

torch.set_num_threads(1)


def small_experts():
    torch.manual_seed(0)
    return [SyncNet(SyncNetConfig(width=8)), AVSyncNet(AVSyncNetConfig())]


# ---------------------------------------------------------------- sync experts
@pytest.mark.parametrize("expert", small_experts(), ids=["syncnet", "avsyncnet"])
@pytest.mark.parametrize("size", [96, 64])
def test_expert_embeddings_and_cosine(expert, size):
    torch.manual_seed(1)
    expert.train()  # train-mode BatchNorm gives varied, non-degenerate embeddings at random init
    mel, frames = torch.randn(4, 1, 80, 16), torch.rand(4, 5, 3, size, size)
    a, v = expert.embed_audio(mel), expert.embed_video(frames)
    assert a.shape == v.shape == (4, 512)
    assert (a >= 0).all() and (v >= 0).all()
    torch.testing.assert_close(a.norm(dim=1), torch.ones(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(4), atol=1e-5, rtol=0)
    cos = expert.similarity(a, v)
    assert cos.shape == (4,) and ((cos >= 0) & (cos <= 1)).all()
    torch.testing.assert_close(cos, (a * v).sum(dim=1), atol=1e-5, rtol=0)
    expert.eval()
    torch.testing.assert_close(expert(mel, frames), expert.similarity(expert.embed_audio(mel), expert.embed_video(frames)))
    assert expert.audio_encoder(mel).shape == (4, 512, 1, 1)


def test_expert_rejects_bad_shapes():
    expert = SyncNet(SyncNetConfig(width=8)).eval()
    with pytest.raises(ValueError, match=r"\[B,1,80,16\]"):
        expert.embed_audio(torch.randn(2, 80, 16))
    with pytest.raises(ValueError, match="k=5"):
        expert.embed_video(torch.rand(2, 4, 3, 96, 96))


def test_lower_half_stack_takes_lower_rows_frame_major():
    # Pixel value = 10*frame + channel in the lower half, -1 in the upper half.
    frames = torch.full((1, 2, 3, 4, 4), -1.0)
    for f in range(2):
        for c in range(3):
            frames[0, f, c, 2:] = 10 * f + c
    x = lower_half_stack(frames, (2, 4))
    assert x.shape == (1, 6, 2, 4)
    assert x[0, :, 0, 0].tolist() == [0, 1, 2, 10, 11, 12]


def test_syncnet_layout_matches_wav2lip():
    net = SyncNet()
    assert net.face_input_hw == (48, 96)
    assert net.face_encoder.net[0].conv.in_channels == 15
    n_params = sum(p.numel() for p in net.parameters())
    assert 16.0e6 < n_params < 17.0e6  # Wav2Lip's SyncNet_color layout: 16.4M


def test_avsyncnet_paper_preset():
    cfg = AVSyncNetConfig.preset("paper")
    assert (cfg.input_height, cfg.input_width) == (112, 224)
    assert cfg.image_layers == [3, 4, 6, 3] and cfg.audio_layers == [3, 4, 6, 3]
    assert cfg.audio_filters == [32, 64, 128, 256]
    net = AVSyncNet(cfg).eval()
    assert net.face_encoder.stem[0].in_channels == 15
    assert len(net.face_encoder.blocks) == 16  # ResNet-50: 3+4+6+3 bottlenecks
    assert net.face_encoder.head[0].in_channels == 2048
    assert len(net.audio_encoder.blocks) == 16  # ResNetSE34: 3+4+6+3 SE basic blocks
    with torch.no_grad():
        cos = net(torch.randn(1, 1, 80, 16), torch.rand(1, 5, 3, 96, 96))
    assert cos.shape == (1,) and 0 <= cos.item() <= 1
    assert AVSyncNetConfig.preset("small") == AVSyncNetConfig()
    with pytest.raises(ValueError, match="unknown AVSyncNet preset"):
        AVSyncNetConfig.preset("huge")


def test_expert_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    expert = build_expert("avsyncnet", {"image_width": 8, "audio_filters": [4, 8, 16, 32]})
    expert.train()
    expert(torch.randn(4, 1, 80, 16), torch.rand(4, 5, 3, 96, 96))  # move BN statistics away from their init
    expert.eval()
    save_expert(expert, tmp_path / "e.pt")
    loaded = load_expert(tmp_path / "e.pt")
    assert isinstance(loaded, AVSyncNet) and loaded.cfg.image_width == 8 and not loaded.training
    mel, frames = torch.randn(2, 1, 80, 16), torch.rand(2, 5, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded(mel, frames), expert(mel, frames))
    torch.save({"state_dict": {}}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not a sync expert checkpoint"):
        load_expert(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="unknown sync expert"):
        build_expert("lipnet")


# ---------------------------------------------------------------- generator
@pytest.mark.parametrize("size,skip", [(64, "concat"), (96, "concat"), (96, "add"), (128, "add")])
def test_generator_shapes(size, skip):
    torch.manual_seed(0)
    gen = Generator(GeneratorConfig(face_size=size, width=4, max_width=32, skip=skip), AudioEncoder(width=4),
                    freeze_audio=False)
    out = gen(torch.rand(2, 5, 3, size, size), torch.rand(2, 5, 3, size, size), torch.randn(2, 5, 1, 80, 16))
    assert out.shape == (2, 5, 3, size, size)
    assert ((out >= 0) & (out <= 1)).all()
    with pytest.raises(ValueError, match="indiv_mels"):
        gen(torch.rand(2, 5, 3, size, size), torch.rand(2, 5, 3, size, size), torch.randn(2, 5, 80, 16))


@pytest.mark.parametrize("upsample,norm", [("resize", "batch"), ("resize", "group"), ("transposed", "group")])
def test_generator_resize_upsampling_and_group_norm_shapes(upsample, norm):
    torch.manual_seed(0)
    cfg = GeneratorConfig(face_size=96, width=4, max_width=32, upsample=upsample, norm=norm)
    gen = Generator(cfg, AudioEncoder(width=4), freeze_audio=False)
    out = gen(torch.rand(2, 5, 3, 96, 96), torch.rand(2, 5, 3, 96, 96), torch.randn(2, 5, 1, 80, 16))
    assert out.shape == (2, 5, 3, 96, 96)
    kinds = {type(m) for m in gen.decoder.modules()}
    assert (nn.Upsample in kinds) == (upsample == "resize")
    assert (nn.ConvTranspose2d in kinds)  # the 1x1 -> r x r bottom level stays a transposed conv
    assert (nn.GroupNorm in kinds) == (norm == "group") and (nn.BatchNorm2d in kinds) == (norm == "batch")
    n_transposed = sum(isinstance(m, nn.ConvTranspose2d) for m in gen.decoder.modules())
    assert n_transposed == (1 if upsample == "resize" else len(gen.decoder))


def test_resize_upsampling_has_no_checkerboard():
    """A constant feature map through an untrained x2 layer: the resize layer keeps it flat (away from the border),
    a stride-2 transposed conv gives a period-2 pattern."""
    from talkface.models.generator import resize_up_relu_bn, up_relu_bn

    torch.manual_seed(0)
    x = torch.ones(1, 4, 8, 8)
    flat = resize_up_relu_bn(4, 4)[:2](x)[..., 2:-2, 2:-2]  # upsample + conv, before ReLU/BN
    checker = up_relu_bn(4, 4, 3, 2, 1, 1)[:1](x)[..., 2:-2, 2:-2]
    assert flat.std(dim=(-1, -2)).max() < 1e-5
    assert checker.std(dim=(-1, -2)).min() > 1e-3


def test_composition_keeps_the_true_upper_face():
    from talkface.models.generator import seam_mask

    torch.manual_seed(0)
    s = 96
    gen = Generator(GeneratorConfig(face_size=s, width=4, max_width=32, compose=True, seam=0.0625),
                    AudioEncoder(width=4), freeze_audio=False)
    full = torch.rand(2, 5, 3, s, s)
    pose = full.clone()
    pose[..., s // 2:, :] = 0.0  # the contract's pose input
    raw_cfg = GeneratorConfig(face_size=s, width=4, max_width=32)
    raw = Generator(raw_cfg, gen.audio_encoder, freeze_audio=False)
    raw.load_state_dict(gen.state_dict())
    ident, mels = torch.rand(2, 5, 3, s, s), torch.randn(2, 5, 1, 80, 16)
    with torch.no_grad():
        out, generated = gen(pose, ident, mels), raw(pose, ident, mels)
    ramp = round(0.0625 * s)  # 6 rows of blend ending at the half line
    assert torch.equal(out[..., : s // 2 - ramp, :], full[..., : s // 2 - ramp, :])  # the true upper face, exactly
    assert torch.equal(out[..., s // 2:, :], generated[..., s // 2:, :])  # the generated lower face, exactly
    m = seam_mask(s, 0.0625)[:, 0]
    assert m[s // 2 - ramp - 1] == 0 and m[s // 2] == 1 and (m[s // 2 - ramp: s // 2].diff() > 0).all()
    band = slice(s // 2 - ramp, s // 2)
    want = m[band, None] * generated[..., band, :] + (1 - m[band, None]) * full[..., band, :]
    assert torch.allclose(out[..., band, :], want, atol=1e-6)


def test_reference_blend_is_alpha_over_the_identity_reference():
    """output = alpha * RGB + (1 - alpha) * identity, with alpha and RGB the sigmoid of the head's 4 channels."""
    torch.manual_seed(0)
    s = 64
    cfg = GeneratorConfig(face_size=s, width=4, max_width=32, reference_blend=True, blend_bias=-2.0, paint_ellipse=[])
    gen = Generator(cfg, AudioEncoder(width=4), freeze_audio=False).eval()
    assert gen.output[1].out_channels == 4 and gen.output[1].bias[3].item() == -2.0
    pose, ident, mels = torch.rand(2, 5, 3, s, s), torch.rand(2, 5, 3, s, s), torch.randn(2, 5, 1, 80, 16)
    head = {}
    hook = gen.output.register_forward_hook(lambda m, i, o: head.update(logits=o))
    with torch.no_grad():
        out = gen(pose, ident, mels)
    hook.remove()
    h = torch.sigmoid(head["logits"]).reshape(2, 5, 4, s, s)
    alpha = h[:, :, 3:]
    assert torch.allclose(out, alpha * h[:, :, :3] + (1 - alpha) * ident, atol=1e-6)
    assert 0.0 <= out.min() and out.max() <= 1.0
    # A very negative alpha bias returns the identity reference itself: the paste floor before any training.
    with torch.no_grad():
        gen.output[1].weight[3].zero_()
        gen.output[1].bias[3].fill_(-30.0)
        assert torch.allclose(gen(pose, ident, mels), ident, atol=1e-6)


def test_paint_region_is_always_generated():
    """Inside paint_ellipse the output is the generated RGB alone (alpha 1), outside it the reference shows through."""
    torch.manual_seed(0)
    s = 64
    cfg = GeneratorConfig(face_size=s, width=4, max_width=32, reference_blend=True, blend_bias=-30.0,
                          paint_ellipse=[0.5, 0.75, 0.25, 0.15], paint_feather=0.5)
    gen = Generator(cfg, AudioEncoder(width=4), freeze_audio=False).eval()
    head = {}
    gen.output.register_forward_hook(lambda m, i, o: head.update(logits=o))
    with torch.no_grad():
        gen.output[1].weight[3].zero_()  # learned alpha ~ 0 everywhere: only the paint region is generated
        pose, ident, mels = torch.rand(1, 5, 3, s, s), torch.rand(1, 5, 3, s, s), torch.randn(1, 5, 1, 80, 16)
        out = gen(pose, ident, mels)
    rgb = torch.sigmoid(head["logits"][:, :3]).reshape(1, 5, 3, s, s)
    cy, cx = int(0.75 * s), s // 2
    assert gen.paint[cy, cx] == 1.0 and gen.paint[5, 5] == 0.0
    assert torch.allclose(out[..., cy, cx], rgb[..., cy, cx], atol=1e-6)  # inside: the generated RGB alone
    assert torch.equal(out[..., 5, 5], ident[..., 5, 5])  # outside: the reference, exactly
    with pytest.raises(ValueError, match="paint_ellipse"):
        Generator(GeneratorConfig(face_size=s, width=4, max_width=32, reference_blend=True, paint_ellipse=[0.5]),
                  AudioEncoder(width=4))


def test_residual_blend_changes_the_reference():
    """blend_mode residual: reference + alpha * tanh(change); untrained it is the reference, clamped outside training."""
    torch.manual_seed(0)
    s = 64
    cfg = GeneratorConfig(face_size=s, width=4, max_width=32, reference_blend=True, blend_mode="residual",
                          paint_ellipse=[0.5, 0.75, 0.25, 0.15], paint_feather=0.5)
    gen = Generator(cfg, AudioEncoder(width=4), freeze_audio=False)
    pose, ident, mels = torch.rand(1, 5, 3, s, s), torch.rand(1, 5, 3, s, s), torch.randn(1, 5, 1, 80, 16)
    with torch.no_grad():
        assert torch.equal(gen.eval()(pose, ident, mels), ident)  # zero change at the start, paint region included
        gen.output[1].bias[:3].fill_(3.0)  # tanh(3) = 0.995: a large brightening change
        head = {}
        gen.output.register_forward_hook(lambda m, i, o: head.update(logits=o))
        train_out = gen.train()(pose, ident, mels)
        alpha = 1 - (1 - torch.sigmoid(head["logits"][:, 3:])) * (1 - gen.paint)
        want = ident + (alpha * torch.tanh(head["logits"][:, :3])).reshape(1, 5, 3, s, s)
        assert torch.allclose(train_out, want, atol=1e-6) and train_out.max() > 1.0  # unclamped while training
        eval_out = gen.eval()(pose, ident, mels)
        assert eval_out.max() <= 1.0 and eval_out.min() >= 0.0
    with pytest.raises(ValueError, match="blend_mode"):
        Generator(GeneratorConfig(face_size=s, width=4, max_width=32, blend_mode="add"), AudioEncoder(width=4))


def test_warp_by_flow_moves_content_by_known_pixels():
    from talkface.models.generator import warp_by_flow

    x = torch.rand(2, 3, 8, 8)
    flow = torch.zeros(2, 2, 8, 8)
    assert torch.allclose(warp_by_flow(x, flow, 1), x, atol=1e-6)  # zero flow: the image itself
    flow[:, 0] = 2 / 8  # sample one pixel to the right: content moves one pixel left
    assert torch.allclose(warp_by_flow(x, flow, 5)[..., :7], x[..., 1:], atol=1e-6)  # a constant flow survives the box
    flow = torch.zeros(2, 2, 8, 8)
    flow[:, 1] = -2 / 8  # sample one row up: content moves one row down
    assert torch.allclose(warp_by_flow(x, flow, 1)[..., 1:, :], x[..., :7, :], atol=1e-6)
    spike = torch.zeros(1, 2, 9, 9)
    spike[0, 0, 4, 4] = 9.0
    smoothed = F.avg_pool2d(spike, 3, stride=1, padding=1, count_include_pad=False)
    assert float(smoothed[0, 0, 4, 4]) == pytest.approx(1.0) and float(smoothed[0, 0, 3, 3]) == pytest.approx(1.0)


def test_warp_blend_moves_the_reference_then_changes_it():
    """blend_mode warp: warp(reference, flow) + alpha * tanh(change); untrained it is the reference exactly."""
    import math

    torch.manual_seed(0)
    s = 64
    cfg = GeneratorConfig(face_size=s, width=4, max_width=32, reference_blend=True, blend_mode="warp",
                          flow_max=0.1, flow_smooth=3, paint_ellipse=[0.5, 0.75, 0.25, 0.15], paint_feather=0.5)
    gen = Generator(cfg, AudioEncoder(width=4), freeze_audio=False).eval()
    assert gen.output[1].out_channels == 6  # change (3), alpha, flow (x, y)
    pose, ident, mels = torch.rand(1, 5, 3, s, s), torch.rand(1, 5, 3, s, s), torch.randn(1, 5, 1, 80, 16)
    with torch.no_grad():
        assert torch.allclose(gen(pose, ident, mels), ident, atol=1e-6)  # zero flow, zero change
        gen.output[1].bias[4].fill_(math.atanh((2 / s) / cfg.flow_max))  # flow x = one pixel everywhere
        out = gen(pose, ident, mels)
    assert torch.allclose(out[..., :-1], ident[..., 1:], atol=1e-5)  # the reference moved one pixel left, unchanged
    with pytest.raises(ValueError, match="reference_blend"):
        Generator(GeneratorConfig(face_size=s, width=4, max_width=32, blend_mode="warp"), AudioEncoder(width=4))
    with pytest.raises(ValueError, match="flow_smooth"):
        Generator(GeneratorConfig(face_size=s, width=4, max_width=32, reference_blend=True, blend_mode="warp",
                                  flow_smooth=4), AudioEncoder(width=4))


def test_checkpoint_without_reference_blend_loads_as_plain(tmp_path):
    from talkface.models.generator_io import joint_audio_spec, load_generator, save_generator

    gen = Generator(GeneratorConfig(face_size=64, width=4, max_width=32), AudioEncoder(width=4, out_dim=512),
                    freeze_audio=False)
    path = tmp_path / "old.pt"
    save_generator(gen, path, joint_audio_spec(4))
    ckpt = torch.load(path, weights_only=True)
    del ckpt["config"]["reference_blend"], ckpt["config"]["blend_bias"]  # as written before the option existed
    torch.save(ckpt, path)
    loaded = load_generator(path)
    assert not loaded.cfg.reference_blend and loaded.output[1].out_channels == 3


def test_generator_uses_audio_and_both_references():
    torch.manual_seed(0)
    # Train mode: batch statistics keep the signal alive through the untrained stack (eval-mode BN at init does not).
    gen = Generator(GeneratorConfig(face_size=64, width=4, max_width=32), AudioEncoder(width=4)).train()
    pose, ident, mels = torch.rand(1, 5, 3, 64, 64), torch.rand(1, 5, 3, 64, 64), torch.randn(1, 5, 1, 80, 16)
    with torch.no_grad():
        base = gen(pose, ident, mels)
        assert not torch.allclose(base, gen(pose, ident, torch.randn_like(mels)))
        assert not torch.allclose(base, gen(pose, torch.rand_like(ident), mels))
        assert not torch.allclose(base, gen(torch.rand_like(pose), ident, mels))


def test_gradient_reaches_generator_not_frozen_expert():
    torch.manual_seed(0)
    expert = SyncNet(SyncNetConfig(width=8)).freeze()
    gen = Generator(GeneratorConfig(face_size=96, width=4, max_width=32), expert.audio_encoder, freeze_audio=True)
    gen.train()
    assert not gen.audio_encoder.training  # frozen encoder keeps eval-mode BatchNorm inside a training generator
    bn = expert.audio_encoder.net[0].bn
    running_mean = bn.running_mean.clone()
    mels = torch.randn(2, 5, 1, 80, 16)
    out = gen(torch.rand(2, 5, 3, 96, 96), torch.rand(2, 5, 3, 96, 96), mels)
    cos = expert(mels[:, 0], out)  # the loss path goes through the frozen expert's video tower
    (-torch.log(cos.clamp(min=1e-6))).mean().backward()
    assert all(p.grad is None for p in expert.parameters())
    trainable = [p for p in gen.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for p in trainable)
    assert gen.pose_encoder.levels[0][0][0].weight.grad.abs().sum() > 0
    torch.testing.assert_close(bn.running_mean, running_mean)


# ---------------------------------------------------------------- discriminator
@pytest.mark.parametrize("size", [64, 96, 128])
def test_discriminator_per_frame_logits(size):
    disc = Discriminator(DiscriminatorConfig(width=8, max_width=32))
    convs = [m for m in disc.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 7 and all(c.stride == (2, 2) for c in convs)
    assert all(hasattr(c, "parametrizations") for c in convs)  # spectral norm
    logits = disc(torch.rand(3, 5, 3, size, size))
    assert logits.shape == (3, 5)
    frames = torch.rand(1, 2, 3, size, size)
    torch.testing.assert_close(disc.eval()(frames)[0, 1], disc(frames[:, 1:])[0, 0])  # frames judged independently


# ---------------------------------------------------------------- VGG-19
def test_vgg_missing_weights_message(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    assert hub_checkpoint(VGG19_FILENAME) is None
    with pytest.raises(WeightsNotAvailable, match=r"^vgg19 not available: vgg19-dcbb9e9d.pth is not in the torch hub"):
        VGG19Features.from_pretrained()
    with pytest.raises(WeightsNotAvailable, match=r"^vgg19 not available: no file at .*nowhere.pth"):
        VGG19Features.from_pretrained(tmp_path / "nowhere.pth")


def _torchvision_vgg19_state_dict() -> tuple[dict[str, torch.Tensor], torch.nn.Module]:
    """Random weights in torchvision's vgg19 key layout (features only: the 500 MB classifier is not needed)."""
    import torchvision

    with torch.device("meta"):
        tv = torchvision.models.vgg19(weights=None)
    tv.features.to_empty(device="cpu")
    torch.manual_seed(0)
    for m in tv.features:
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight)
            torch.nn.init.uniform_(m.bias, -0.1, 0.1)
    state = {f"features.{k}": v for k, v in tv.features.state_dict().items()}
    state["classifier.6.bias"] = torch.zeros(1000)  # classifier keys are ignored by our loader
    return state, tv.features


def test_vgg_loads_torchvision_layout_from_hub_cache(tmp_path, monkeypatch):
    state, tv_features = _torchvision_vgg19_state_dict()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    ckpt = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"  # torchvision's own filename, written literally
    ckpt.parent.mkdir(parents=True)
    torch.save(state, ckpt)
    assert hub_checkpoint(VGG19_FILENAME) == ckpt
    vgg = VGG19Features.from_pretrained(layers=("relu1_2", "relu2_2"))
    assert all(not p.requires_grad for p in vgg.parameters())
    x = torch.rand(2, 3, 32, 32)
    feats = vgg(x)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = tv_features[:9]((x - mean) / std)  # torchvision index 8 = relu2_2
    assert feats["relu2_2"].shape == (2, 128, 16, 16)
    torch.testing.assert_close(feats["relu2_2"], ref)
    manual = F.relu(F.conv2d(F.relu(F.conv2d((x - mean) / std, state["features.0.weight"], state["features.0.bias"],
                                             padding=1)), state["features.2.weight"], state["features.2.bias"], padding=1))
    torch.testing.assert_close(feats["relu1_2"], manual)

    del state["features.34.weight"]
    with pytest.raises(WeightsNotAvailable, match=r"not a torchvision vgg19 state dict .*features.34.weight"):
        VGG19Features().load_torchvision_state_dict(state, "broken.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsNotAvailable, match=r"^vgg19 not available: cannot read .*garbage.pth"):
        VGG19Features.from_pretrained(tmp_path / "garbage.pth")


def test_vgg_unknown_layer():
    with pytest.raises(ValueError, match="unknown VGG-19 layer"):
        VGG19Features(layers=("relu6_1",))
    assert math.isclose(len(VGG19Features().features), 37)
