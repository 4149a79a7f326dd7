"""Geometric transforms do what they claim: exact pixel shifts, identity at 0, rotation direction, shear about the
centre row, one transform per window; the random training augmentation is off at prob 0 and resumable by seed; the mel
warp moves formants by its factor on data.mel's own band centres."""

import math

import pytest
import torch

from talkface.augment import (AppearanceConfig, AugmentConfig, MelWarpConfig, mel_band_centres, random_appearance,
                              random_augment, random_mel_factors, random_mel_warp, rotate, shear, shift,
                              slaney_hz_to_mel, slaney_mel_to_hz, warp_mel)
from talkface.data.mel import MelConfig


def _frames(b=2, k=3, s=17, seed=0):
    return torch.rand(b, k, 3, s, s, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("s", [1, 3, -2])
def test_shift_moves_content_by_s_pixels(s):
    x = _frames()
    y = shift(x, float(s))
    w = x.shape[-1]
    if s > 0:
        assert torch.allclose(y[..., s:], x[..., : w - s], atol=1e-5)
        assert torch.all(y[..., :s] == 0)  # zeros padding where nothing was
    else:
        assert torch.allclose(y[..., : w + s], x[..., -s:], atol=1e-5)
        assert torch.all(y[..., w + s :] == 0)


def test_shift_per_window_magnitudes():
    x = _frames(b=2)
    y = shift(x, torch.tensor([2.0, -1.0]))
    assert torch.allclose(y[0, ..., 2:], x[0, ..., :-2], atol=1e-5)
    assert torch.allclose(y[1, ..., :-1], x[1, ..., 1:], atol=1e-5)
    with pytest.raises(ValueError, match="magnitude"):
        shift(x, torch.tensor([1.0, 2.0, 3.0]))


@pytest.mark.parametrize("fn", [shift, shear, rotate])
def test_zero_magnitude_is_identity_and_shapes_ranges_hold(fn):
    x = _frames()
    assert torch.allclose(fn(x, 0.0), x, atol=1e-5)
    y = fn(x, 7.0, padding="border")
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0.0 and y.max() <= 1.0 + 1e-6
    four_d = fn(x[:, 0], 7.0, padding="border")  # [B,3,S,S] also accepted
    assert torch.allclose(four_d, y[:, 0], atol=1e-5)


def test_rotation_direction_and_full_turn():
    s = 21
    x = torch.zeros(1, 1, 3, s, s)
    x[..., s // 2, s - 3] = 1.0  # a dot right of the centre
    y = rotate(x, 90.0)
    row, col = divmod(int(y[0, 0, 0].argmax()), s)
    assert (row, col) == (2, s // 2)  # counter-clockwise as displayed: right -> top
    z = _frames(s=s)
    assert torch.allclose(rotate(z, 360.0), z, atol=1e-4)


def test_shear_keeps_the_centre_row_and_tilts_verticals():
    s = 21  # odd: the centre row lies exactly on pixel row 10
    x = _frames(s=s)
    y = shear(x, 20.0)
    assert torch.allclose(y[..., s // 2, :], x[..., s // 2, :], atol=1e-5)
    line = torch.zeros(1, 1, 3, s, s)
    line[..., :, s // 2] = 1.0  # a vertical line through the centre
    col = shear(line, 20.0)[0, 0, 0].argmax(dim=1)  # column of the line in each row
    assert col[0] < s // 2 < col[-1]  # rows above move left, rows below move right (y points down)
    assert col[s // 2] == s // 2


def test_one_transform_per_window():
    x = _frames(b=3, k=1).repeat(1, 4, 1, 1, 1)  # the k frames of a window are equal
    y = random_augment(x, AugmentConfig(prob=1.0, max_shift=3, max_shear=10, max_rotation=10),
                       torch.Generator().manual_seed(1))
    assert not torch.allclose(y, x)
    for j in range(1, 4):
        assert torch.equal(y[:, j], y[:, 0])


def test_random_augment_off_and_seeded():
    x = _frames()
    assert random_augment(x, AugmentConfig(prob=0.0)) is x
    cfg = AugmentConfig(prob=0.5, max_shift=4, max_shear=5, max_rotation=5)
    a = random_augment(x, cfg, torch.Generator().manual_seed(3))
    b = random_augment(x, cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="prob"):
        AugmentConfig(prob=1.5)
    with pytest.raises(ValueError, match="padding"):
        AugmentConfig(padding="wrap")
    with pytest.raises(ValueError, match="frames"):
        shift(torch.rand(2, 3, 8, 9), 1.0)


def test_random_appearance_off_draws_nothing_and_returns_the_inputs():
    images = [torch.rand(2, 5, 3, 8, 8), torch.rand(2, 5, 3, 8, 8)]
    torch.manual_seed(3)
    state = torch.get_rng_state()
    out = random_appearance(images, AppearanceConfig(prob=0.0, flip=0.0))
    assert all(o is i for o, i in zip(out, images))
    assert torch.equal(torch.get_rng_state(), state)  # a run with it off draws what it drew before the option existed


def test_random_appearance_is_one_draw_per_window_for_all_images():
    torch.manual_seed(0)
    target = torch.rand(3, 5, 3, 8, 8) * 0.6 + 0.1  # x gain <= 0.7 x e^0.3 < 1: no clamping
    pose = target.clone()
    pose[..., 4:, :] = 0.0  # the masked lower half of the pose input
    reference = torch.rand(3, 5, 3, 8, 8) * 0.6 + 0.1
    g = torch.Generator().manual_seed(1)
    out_t, out_p, out_r = random_appearance([target, pose, reference], AppearanceConfig(prob=1.0, gain=0.3,
                                                                                      gamma=0.0, flip=0.0), g)
    gain = out_t / target  # gamma 0: a pure per-window, per-channel gain (no clamping at these values)
    assert torch.allclose(gain, gain[:, :1, :, :1, :1].expand_as(gain), atol=1e-5)  # one gain per window and channel
    assert torch.allclose(out_r, (reference * gain[:, :1, :, :1, :1]).clamp(0, 1), atol=1e-6)  # the same for the ref
    assert torch.equal(out_p[..., 4:, :], pose[..., 4:, :])  # black stays black
    assert not torch.allclose(gain[0, 0, :, 0, 0], gain[1, 0, :, 0, 0])  # windows differ
    assert float(gain.min()) >= math.exp(-0.3) - 1e-5 and float(gain.max()) <= math.exp(0.3) + 1e-5


def test_random_appearance_mirror_and_gamma():
    x = torch.rand(2, 5, 3, 8, 8)
    (mirrored,) = random_appearance([x], AppearanceConfig(prob=0.0, flip=1.0))
    assert torch.equal(mirrored, x.flip(-1))
    (gam,) = random_appearance([x], AppearanceConfig(prob=1.0, gain=0.0, gamma=0.5, flip=0.0))
    e = torch.log(gam[:, 0, 0, 0, 0]) / torch.log(x[:, 0, 0, 0, 0])  # x^e per window
    assert torch.allclose(gam, x ** e.reshape(2, 1, 1, 1, 1), atol=1e-5)
    assert float(e.min()) >= math.exp(-0.5) - 1e-4 and float(e.max()) <= math.exp(0.5) + 1e-4
    with pytest.raises(ValueError, match="appearance"):
        AppearanceConfig(prob=1.5)
    with pytest.raises(ValueError, match="appearance"):
        random_appearance([torch.rand(2, 3, 8, 8)], AppearanceConfig(prob=1.0))


# ------------------------------------------------------------------ mel_warp (vocal tract length perturbation)
MEL = MelConfig(n_mels=80, fmin=55.0, fmax=7600.0)


def test_slaney_scale_round_trip_and_band_centres_match_the_filterbank():
    import torchaudio

    hz = torch.tensor([0.0, 500.0, 999.0, 1000.0, 2500.0, 7600.0], dtype=torch.float64)
    assert torch.allclose(slaney_mel_to_hz(slaney_hz_to_mel(hz)), hz, atol=1e-9)
    assert slaney_hz_to_mel(torch.tensor(1000.0)).item() == pytest.approx(15.0)
    assert slaney_hz_to_mel(torch.tensor(6400.0)).item() == pytest.approx(15.0 + 27.0)
    # each band of data.mel's filterbank peaks at its centre (within one FFT bin, 20 Hz)
    fbank = torchaudio.functional.melscale_fbanks(401, 55.0, 7600.0, 80, 16000, norm="slaney", mel_scale="slaney")
    peaks = torch.linspace(0, 8000, 401, dtype=torch.float64)[fbank.argmax(0)]
    centres = slaney_mel_to_hz(mel_band_centres(MEL))
    assert (peaks - centres).abs().max().item() <= 10.0


def test_warp_mel_identity_at_one_and_known_answer():
    mel = torch.randn(3, 5, 1, 80, 16)
    assert torch.allclose(warp_mel(mel, 1.0, MEL), mel, atol=1e-6)
    # bands whose value is their centre's mel value (linear in the band index): band i of the warped mel holds the
    # mel value of centre_i / alpha, held at the edge bands outside the axis
    centres = mel_band_centres(MEL)
    ramp = centres.float()[None, None, :, None].expand(2, 1, 80, 4).contiguous()
    alpha = torch.tensor([1.2, 0.8], dtype=torch.float64)
    out = warp_mel(ramp, alpha, MEL)
    for b in range(2):
        want = slaney_hz_to_mel(slaney_mel_to_hz(centres) / alpha[b]).clamp(centres[0], centres[-1])
        assert torch.allclose(out[b, 0, :, 0].double(), want, atol=1e-4)


def test_warp_mel_moves_a_formant_up_by_alpha():
    centres_hz = slaney_mel_to_hz(mel_band_centres(MEL))
    mel = torch.full((1, 1, 80, 16), -4.0)
    j = 40
    mel[..., j, :] = 4.0
    out = warp_mel(mel, 1.2, MEL)
    peak = int(out[0, 0, :, 0].argmax())
    assert abs(centres_hz[peak].item() - 1.2 * centres_hz[j].item()) < 0.5 * (centres_hz[peak + 1] - centres_hz[peak]).item() + 1
    assert peak > j
    with pytest.raises(ValueError, match="80 bands"):
        warp_mel(torch.zeros(1, 1, 16, 80), 1.1, MEL)
    with pytest.raises(ValueError, match="alpha"):
        warp_mel(mel, torch.tensor([1.1, 1.2]), MEL)


def test_random_mel_warp_off_draws_nothing_and_on_is_one_voice_per_window():
    mels = [torch.randn(4, 5, 1, 80, 16), torch.randn(4, 1, 80, 16)]
    torch.manual_seed(0)
    assert random_mel_warp(mels, MelWarpConfig(prob=0.0), MEL) is mels
    after = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(after, torch.rand(1))  # the global RNG did not move
    g = torch.Generator().manual_seed(3)
    factors = random_mel_factors(4, MelWarpConfig(prob=1.0, max_factor=1.2), torch.Generator().manual_seed(3))
    assert ((factors >= 1 / 1.2 - 1e-9) & (factors <= 1.2 + 1e-9)).all() and (factors != 1).all()
    out = random_mel_warp(mels, MelWarpConfig(prob=1.0, max_factor=1.2), MEL, generator=g)
    for m, o in zip(mels, out):
        assert torch.allclose(o, warp_mel(m, factors, MEL))
    with pytest.raises(ValueError, match="max_factor"):
        MelWarpConfig(prob=0.5, max_factor=0.9)
