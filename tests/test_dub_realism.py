"""What makes a dub of a real person acceptable: the feathered, colour-matched paste; closed lips in silent speech;
bounded memory at any resolution; per-video adaptation with its cache; the shipped default model."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from talkface import cli
from talkface.dub import Dubber, DubConfig
from talkface.dubbing.adapt import AdaptConfig, cache_key
from talkface.dubbing.generate import PasteConfig, paste
from talkface.dubbing.silence import SilenceConfig, drop_short_runs, frame_levels, silent_frames
from talkface.dubbing.paste import colour_offset, ellipse_mask, paste_face, restore_detail, unsharp
from talkface.media.ffmpeg_bin import ffmpeg_exe
from talkface.media.probe import MediaInfo
from talkface.models.generator import Generator, GeneratorConfig
from talkface.models.generator_io import joint_audio_spec, load_generator, save_generator
from talkface.models.layers import AudioEncoder

from conftest import real_samples_dir

torch.set_num_threads(1)


def _tiny(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    cfg = GeneratorConfig(face_size=96, k=5, width=4, max_width=16, audio_dim=16, compose=True, upsample="resize")
    gen = Generator(cfg, AudioEncoder(width=4, out_dim=16)).eval()
    gen.audio = joint_audio_spec(4, 16)
    return gen


# ------------------------------------------------------------------------------------------------ paste


def test_ellipse_mask_known_values():
    m = ellipse_mask(100, 100, (0.5, 0.5, 0.4, 0.2), 0.5)
    assert m[50, 50] == pytest.approx(1.0)          # centre
    assert m[50, 5] == 0.0 and m[25, 50] == 0.0     # outside the rim (x: r = 1.125; y: r = 1.225)
    # pixel (50, 80): centre (0.505, 0.805) -> r = hypot(0.305 / 0.4, 0.005 / 0.2) = 0.7629, t = (1 - r) / 0.5
    r = math.hypot(0.305 / 0.4, 0.005 / 0.2)
    t = (1 - r) / 0.5
    assert m[50, 80] == pytest.approx(t * t * (3 - 2 * t), abs=1e-5)
    assert (m >= 0).all() and (m <= 1).all()
    with pytest.raises(ValueError, match="radii"):
        ellipse_mask(10, 10, (0.5, 0.5, 0.0, 0.2), 0.5)


def test_colour_offset_is_the_band_weighted_mean_difference():
    orig = np.full((96, 96, 3), 120, np.uint8)
    gen = orig.copy()
    gen[..., 0] -= 10
    gen[..., 2] += 4
    m = ellipse_mask(96, 96, (0.5, 0.74, 0.36, 0.26), 0.3)
    np.testing.assert_allclose(colour_offset(gen, orig, m), [10.0, 0.0, -4.0], atol=1e-4)
    assert (colour_offset(gen, orig, np.zeros((96, 96), np.float32)) == 0).all()


def test_paste_face_matches_colour_and_touches_only_the_ellipse():
    frame = np.full((200, 300, 3), 100, np.uint8)
    box = np.array([50, 20, 210, 180], np.float32)  # 160 x 160
    original = np.full((96, 96, 3), 100, np.uint8)
    generated = np.full((96, 96, 3), 130, np.uint8)  # a uniform cast of +30
    out = frame.copy()
    paste_face(out, generated, original, box, (0.5, 0.74, 0.36, 0.26), 0.3, colour_match=True)
    assert np.abs(out.astype(int) - 100).max() <= 1  # the cast is removed: no visible edge
    out = frame.copy()
    paste_face(out, generated, original, box, (0.5, 0.74, 0.36, 0.26), 0.3, colour_match=False)
    changed = np.abs(out.astype(int) - 100).max(-1) > 0
    ys, xs = np.nonzero(changed)
    assert ys.min() >= 20 + int((0.74 - 0.26) * 160) and ys.max() < 180  # inside the box, below the ellipse top
    assert xs.min() >= 50 + int((0.5 - 0.36) * 160) and xs.max() < 210 - int((0.5 - 0.36) * 160)
    assert out[20 + int(0.74 * 160), 130].tolist() == [130, 130, 130]  # full weight at the ellipse centre


def test_restore_detail_only_where_generated_agrees():
    rng = np.random.default_rng(0)
    texture = rng.normal(0, 6, (80, 80, 3)).astype(np.float32)
    dst = 120 + texture  # a flat face with fine texture
    import cv2

    smooth = cv2.GaussianBlur(dst, (0, 0), 2.0)  # what an upscaled crop looks like: the texture gone
    agree = restore_detail(smooth.copy(), dst, 4.0, 12.0)
    assert np.abs(agree - dst).mean() < 0.3 * np.abs(smooth - dst).mean()  # the texture is back
    changed = smooth.copy()
    changed[20:60, 20:60] = 30.0  # the generated mouth is new there (dark, open)
    out = restore_detail(changed, dst, 4.0, 12.0)
    np.testing.assert_allclose(out[30:50, 30:50], 30.0, atol=1e-4)  # no ghost of the old pixels inside the change


def test_unsharp_has_the_formula_and_sharpens_an_upscaled_edge():
    import cv2

    edge = np.zeros((24, 24, 3), np.float32)
    edge[:, 12:] = 200.0  # a lip edge at crop resolution
    up = cv2.resize(edge, (96, 96), interpolation=cv2.INTER_LINEAR)  # 4x upscaled: a soft ramp
    out = unsharp(up, 4.0, 1.0)
    np.testing.assert_allclose(out, 2 * up - cv2.GaussianBlur(up, (0, 0), 2.0), atol=1e-4)
    lap = lambda img: cv2.Laplacian(img.mean(-1), cv2.CV_32F).var()  # noqa: E731
    assert lap(out) > 2.0 * lap(up)
    np.testing.assert_allclose(out[:, :30], up[:, :30], atol=1e-3)  # flat regions are left as they are
    assert unsharp(up, 4.0, 0.0) is up


def test_paste_face_sharpen_zero_is_the_plain_paste():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (200, 300, 3), dtype=np.uint8)
    box = np.array([50, 20, 210, 180], np.float32)
    generated = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    original = rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)
    a, b, c = frame.copy(), frame.copy(), frame.copy()
    paste_face(a, generated, original, box, (0.5, 0.74, 0.36, 0.26), 0.3, True, 12.0)
    paste_face(b, generated, original, box, (0.5, 0.74, 0.36, 0.26), 0.3, True, 12.0, sharpen=0.0)
    paste_face(c, generated, original, box, (0.5, 0.74, 0.36, 0.26), 0.3, True, 12.0, sharpen=1.0)
    assert (a == b).all() and (a != c).any()
    outside = np.ones(frame.shape[:2], bool)
    outside[20:180, 50:210] = False
    assert (c[outside] == frame[outside]).all()


def test_paste_config_regions():
    frame = np.zeros((64, 64, 3), np.uint8)
    crop = np.full((96, 96, 3), 200, np.uint8)
    out = frame.copy()
    paste(out, crop, crop, np.array([0, 0, 64, 64], np.float32), PasteConfig(region="lower", feather=0.0))
    assert out[:32].max() == 0 and (out[32:] == 200).all()
    with pytest.raises(ValueError, match="dub.paste.region"):
        PasteConfig(region="box")


# ------------------------------------------------------------------------------------------------ silence


def test_frame_levels_known_answer():
    sr, fps = 16000, 25.0
    t = np.arange(sr) / sr
    wav = 0.5 * np.sin(2 * np.pi * 440 * t)  # 1 s of tone: RMS 0.5 / sqrt 2
    levels = frame_levels(wav, sr, fps, 27)
    np.testing.assert_allclose(levels[:25], 20 * math.log10(0.5 / math.sqrt(2)), atol=0.05)
    assert levels[25:].tolist() == [-100.0, -100.0]  # past the audio's end


def test_silent_frames_marks_silence_and_keeps_short_pauses():
    sr, fps = 16000, 25.0
    rng = np.random.default_rng(0)
    speech = 0.3 * rng.standard_normal(sr)  # 25 loud frames
    pause = 1e-4 * rng.standard_normal(sr // 25 * 2)  # 2 quiet frames: a pause between words
    silence = 1e-4 * rng.standard_normal(sr // 2)  # 12.5 quiet frames
    wav = np.concatenate([speech, pause, speech, silence])
    n = int(math.ceil(len(wav) / sr * fps))
    mask = silent_frames(wav, sr, fps, n, SilenceConfig(min_frames=5))
    assert not mask[:52].any()  # speech, the 2-frame pause, speech
    assert mask[53:].all() and n - 53 >= 12
    assert not silent_frames(wav, sr, fps, n, SilenceConfig(enabled=False)).any()
    assert drop_short_runs(np.array([1, 1, 0, 1, 1, 1, 0, 1], bool), 3).tolist() == \
        [False, False, False, True, True, True, False, False]


def test_silent_frames_get_the_silent_mel():
    d = Dubber(_tiny(0), None, DubConfig(detector="haar"), "cpu", progress=False)
    crops = np.zeros((2, 5, 96, 96, 3), np.uint8)
    mel = np.random.default_rng(0).uniform(-4, 4, (200, 80)).astype(np.float32)
    silent = np.zeros(60, bool)
    silent[7:12] = True  # frames 7..11: the last three of window 5..9 and the first two of window 10..14
    _, mels = d.lips.window_inputs(crops, mel, [5, 10], silent)
    quiet = d.lips.silent_mel.cpu()
    for w, start in enumerate([5, 10]):
        for i in range(5):
            same = torch.equal(mels[w, i], quiet)
            assert same == bool(silent[start + i]), (start, i)
    _, plain = d.lips.window_inputs(crops, mel, [5, 10])
    assert not any(torch.equal(plain[w, i], quiet) for w in range(2) for i in range(5))


# ------------------------------------------------------------------------------------------------ memory


def test_memory_plan_bounds_full_frames_at_any_resolution():
    d = Dubber(_tiny(0), None, DubConfig(detector="haar", chunk_frames=32, batch_size=16, max_chunk_mb=192), "cpu",
               progress=False)
    info = lambda w, h: MediaInfo(path="x", width=w, height=h, fps=25.0, duration=1.0, has_video=True,  # noqa: E731
                                  has_audio=True)
    assert d.memory_plan(info(640, 360)) == (32, 16)  # small frames: the configured sizes
    chunk, batch = d.memory_plan(info(3840, 2160))  # a 4K frame is 23.7 MiB
    assert chunk == 192 * 2**20 // (3840 * 2160 * 3) == 8 and batch == 1
    assert d.memory_plan(info(7680, 4320)) == (2, 1)


# ------------------------------------------------------------------------------------------------ adaptation


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def test_adapt_fine_tunes_and_caches(tmp_path):
    real = real_samples_dir()
    if real is None:
        pytest.skip("../shared/real-samples not present")
    video = tmp_path / "face.mp4"
    _ffmpeg("-i", str(real / "vrt_face_3.mp4"), "-t", "1.2", "-vf", "scale=200:200", "-c:v", "libx264",
            "-preset", "veryfast", "-crf", "12", "-c:a", "aac", str(video))
    cfg = DubConfig(detector="haar")
    cfg.adapt = AdaptConfig(steps=3, batch_size=2, cache_dir=str(tmp_path / "cache"))
    g_l = _tiny(0)
    d = Dubber(g_l, None, cfg, "cpu", progress=False)
    lips = d.adapted(video)
    files = list((tmp_path / "cache").glob("*.pt"))
    assert len(files) == 1 and d.adapt_seconds > 0
    before, after = g_l.state_dict(), lips.g_l.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if "audio_encoder" not in k)
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("audio_encoder."))  # frozen
    again = d.adapted(video)  # cached: the same weights, no training
    assert all(torch.equal(after[k], v) for k, v in again.g_l.state_dict().items())
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1
    # the key changes with the steps and with the video's bytes
    key = cache_key(video, g_l, cfg.adapt, d.crop_config(), cfg.window, cfg.mel)
    cfg.adapt.steps = 4
    assert cache_key(video, g_l, cfg.adapt, d.crop_config(), cfg.window, cfg.mel) != key
    with open(video, "ab") as f:
        f.write(b"\0")
    cfg.adapt.steps = 3
    assert cache_key(video, g_l, cfg.adapt, d.crop_config(), cfg.window, cfg.mel) != key


def test_adapt_refuses_a_video_without_a_face(tmp_path):
    from talkface.dub import DubError

    video = tmp_path / "plain.mp4"
    _ffmpeg("-f", "lavfi", "-i", "color=c=0x4080c0:s=96x80:r=25:d=1.5", "-f", "lavfi", "-i",
            "sine=frequency=300:duration=1.5", "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
            str(video))
    cfg = DubConfig(detector="haar")
    cfg.adapt = AdaptConfig(steps=2, cache_dir=str(tmp_path / "cache"))
    d = Dubber(_tiny(0), None, cfg, "cpu", progress=False)
    with pytest.raises(DubError, match="cannot adapt to plain.mp4: no face"):
        d.adapted(video)


# ------------------------------------------------------------------------------------------------ shipped model


def test_shipped_model_is_a_small_plain_state_dict():
    path = cli.default_checkpoint()
    if not path.is_file():
        pytest.fail(f"the shipped real-face model is missing: {path}")
    assert path.stat().st_size <= 30 * 2**20
    ckpt = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors and data only
    assert ckpt["arch"] == "generator" and not ckpt.get("use_silent_reference", False)
    gen = load_generator(path)
    assert gen.cfg.face_size == 96 and gen.cfg.k == 5 and gen.cfg.compose
    assert gen.cfg.reference_blend and gen.cfg.blend_mode == "residual"  # docs/model_card.md
    out = gen(torch.rand(1, 5, 3, 96, 96), torch.rand(1, 5, 3, 96, 96), torch.rand(1, 5, 1, 80, 16) * 8 - 4)
    assert out.shape == (1, 5, 3, 96, 96) and 0 <= out.min() and out.max() <= 1


def test_shipped_model_is_the_grid_experiments_generator():
    """docs/model_card.md says the shipped file is the G_L of `dvc repro experiments/grid/dvc.yaml`: its bytes are
    the ones that experiment's lock records."""
    import hashlib

    import yaml

    root = Path(__file__).resolve().parents[1]
    lock = yaml.safe_load((root / "experiments" / "grid" / "dvc.lock").read_text())
    outs = {o["path"]: o["md5"] for o in lock["stages"]["train_generator"]["outs"]}
    shipped = hashlib.md5(cli.default_checkpoint().read_bytes()).hexdigest()
    assert shipped == outs["models/generator.pt"]


def test_face_pass_decodes_shrunk_frames_and_boxes_come_back_in_full_pixels(tmp_path):
    """Pass 1 of the dub: ffmpeg shrinks 2560x1440 frames to 1280x720 for the detector, boxes come back in full-frame
    pixels (known answer with pads 0 and no smoothing), and decoding stops after the frames that can be dubbed."""
    from talkface.faces.detect import Detection
    from talkface.media.probe import probe

    class Shrunk:
        name = "shrunk"
        seen: list = []

        def detect(self, frames, start=0):
            Shrunk.seen.append(frames.shape)
            return [Detection(np.array([10, 20, 110, 120], np.float32), 1.0) if (start + i) % 2 == 0 else None
                    for i in range(len(frames))]

    video = tmp_path / "wide.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=2560x1440:r=25:d=1", "-c:v", "libx264", "-preset", "ultrafast",
            "-pix_fmt", "yuv420p", str(video))
    d = Dubber(_tiny(0), None, DubConfig(detector="haar", detect_max_side=1280, pads=[0.0, 0.0, 0.0, 0.0],
                                         smooth_window=1, max_gap=1, chunk_frames=4), "cpu", progress=False)
    d.detector = Shrunk()
    info = probe(video)
    boxes, mask = d.detect_track(video, info, 6)
    assert {shape[1:] for shape in Shrunk.seen} == {(720, 1280, 3)} and sum(s[0] for s in Shrunk.seen) == 6
    assert boxes.shape == (6, 4) and mask.tolist() == [True] * 5 + [False]  # frame 5: a miss with no later face
    np.testing.assert_allclose(boxes[0], [20, 40, 220, 240])  # x2 in both directions, square already
    np.testing.assert_allclose(boxes[1], [20, 40, 220, 240])  # a one-frame gap is interpolated
    small = Dubber(_tiny(0), None, DubConfig(detector="haar", detect_max_side=4000), "cpu", progress=False)
    assert small.detect_size(info) is None and d.detect_size(info) == (1280, 720)


def test_anchor_lines_and_stretch_known_answer():
    from talkface.dubbing.anchor import AnchorConfig, anchor_boxes, anchor_lines

    lm = np.zeros((68, 2), np.float32)
    lm[36:48, 1] = 130.0  # eye line
    lm[[48, 54], 1] = 190.0  # mouth corners
    lm[49:54, 1] = 500.0  # the lips do not count (they move with the opening)
    assert anchor_lines(lm).tolist() == [130.0, 190.0]
    assert np.isnan(anchor_lines(None)).all()
    # a 200-px box from y=100: eye at 0.15, mouth at 0.45 of the box; the training crops have them at 0.3 / 0.7
    boxes = np.tile(np.array([[50, 100, 250, 300]], np.float32), (6, 1))
    lines = np.tile(np.array([[130.0, 190.0]], np.float32), (6, 1))
    cfg = AnchorConfig(enabled=True, eye_y=0.3, mouth_y=0.7, max_stretch=2.0, min_frames=5)
    out, stretch = anchor_boxes(boxes, lines, cfg, height=1000)
    assert stretch == pytest.approx(0.75)  # (0.45 - 0.15) / (0.7 - 0.3)
    h = out[0, 3] - out[0, 1]
    assert h == 150 and out[0, 1] == 130 - 0.3 * 150 == 85  # eye line at 0.3, mouth line at 0.7 of the new box
    assert (190 - out[0, 1]) / h == pytest.approx(0.7)
    assert (out[:, [0, 2]] == boxes[:, [0, 2]]).all()  # horizontally untouched
    # clamped stretch, kept inside the frame, off, too few frames, no-face rows stay NaN
    _, s = anchor_boxes(boxes, lines, AnchorConfig(True, eye_y=0.3, mouth_y=0.7, max_stretch=1.1), height=1000)
    assert s == pytest.approx(1 / 1.1)
    top, _ = anchor_boxes(boxes, lines - 100, cfg, height=1000)
    assert top[0, 1] == 0
    assert anchor_boxes(boxes, lines, AnchorConfig(enabled=False), 1000)[1] == 1.0
    assert anchor_boxes(boxes[:4], lines[:4], cfg, 1000)[1] == 1.0
    gap = boxes.copy()
    gap[2] = np.nan
    out, _ = anchor_boxes(gap, lines, cfg, 1000)
    assert np.isnan(out[2]).all() and np.isfinite(out[3]).all()
    with pytest.raises(ValueError):
        AnchorConfig(eye_y=0.7, mouth_y=0.3)


def test_training_lines_reads_the_store(tmp_path):
    from talkface.dubbing.anchor import training_lines

    for cid, (e, m) in {"a": (29.5, 65.5), "b": (31.5, 67.5), "c": (30.5, 66.5)}.items():
        d = tmp_path / cid
        d.mkdir()
        lm = np.full((4, 68, 2), np.nan, np.float32)
        lm[:3, 36:48, 1], lm[:3, [48, 54], 1] = e, m  # the last frame has no face
        np.save(d / "landmarks.npy", lm)
        np.save(d / "frames.npy", np.zeros((4, 96, 96, 3), np.uint8))
    assert training_lines(tmp_path) == pytest.approx((31 / 96, 67 / 96))


def test_closed_windows_pick_the_most_closed_mouth_per_segment():
    from talkface.dubbing.reference import closed_windows, source_index

    assert source_index(np.arange(7), 5, "loop").tolist() == [0, 1, 2, 3, 4, 0, 1]
    assert source_index(np.arange(7), 5, "hold").tolist() == [0, 1, 2, 3, 4, 4, 4]
    openings = np.full(40, 0.3)
    openings[6:9] = 0.05   # segment 0 (frames 0-19): windows of 3 starting at 6 are the most closed
    openings[30:33] = 0.01  # segment 1
    openings[31] = np.nan   # ... but frame 31 has no landmarks: no window may use it
    openings[24:27] = 0.1
    boxes = np.zeros((40, 4), np.float32)
    picks = closed_windows(openings, boxes, n_out=40, every=20, k=3, long_audio="loop")
    assert picks == {0: 6, 1: 24}
    boxes[6] = np.nan  # no face at frame 6: the best window left is 7-9 (0.05, 0.05, 0.3)
    assert closed_windows(openings, boxes, 40, 20, 3, "loop")[0] == 7
    # audio longer than the video (loop): segment 2 shows source frames 0-19 again
    picks = closed_windows(openings[:20], np.zeros((20, 4)), n_out=60, every=20, k=3, long_audio="loop")
    assert picks == {0: 6, 1: 6, 2: 6}
    # hold: segment 1 shows only the last frame, which makes no window of 3
    assert closed_windows(openings[:20], np.zeros((20, 4)), 40, 20, 3, "hold") == {0: 6}
    assert closed_windows(np.full(10, np.nan), np.zeros((10, 4)), 10, 5, 3, "loop") == {}
