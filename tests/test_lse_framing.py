"""LSE framing as syncnet_python's run_pipeline.py does it (metrics/lse_framing.py): hand-computed windows, the median
filter of the box track, and the evaluate stage scoring reference windows cut from a real source video (or falling
back to the crops when the video is missing)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from talkface.data.mel import melspectrogram
from talkface.evaluate import EvaluateConfig, EvaluateOutputs, Generators, Scorers, evaluate
from talkface.faces.crop import crop_frames, paste_back
from talkface.metrics import NotAvailable
from talkface.metrics.lse_framing import (
    CROP_LABEL, REFERENCE_LABEL, jpeg_round_trip, jpeg_window_area, median_filter_boxes, reference_framing,
    syncnet_window,
)

OUTPUTS = EvaluateOutputs(eval_json=Path("metrics/eval.json"), per_clip_csv=Path("metrics/eval_per_clip.csv"),
                          frames_csv=Path("plots/eval_frames.csv"), lse_curves_csv=Path("plots/eval_lse_offsets.csv"),
                          samples_png=Path("plots/eval_samples.png"), videos_dir=None)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)  # the CPU is shared
    yield
    torch.set_num_threads(n)


def _coordinate_frame(h: int, w: int) -> np.ndarray:
    """Each pixel holds its own (row, column, 7): where a window was cut from can be read off its pixels."""
    rows, cols = np.mgrid[0:h, 0:w]
    return np.stack([rows, cols, np.full_like(rows, 7)], -1).astype(np.uint8)


def _padded_literal(frame, box, cs=0.4, out_size=224, pad=110):
    """The reference arithmetic written out literally: np.pad the whole frame, then slice."""
    bs = max(box[3] - box[1], box[2] - box[0]) / 2
    bsi = int(bs * (1 + 2 * cs))
    padded = np.pad(frame, ((bsi, bsi), (bsi, bsi), (0, 0)), "constant", constant_values=(pad, pad))
    my, mx = (box[1] + box[3]) / 2 + bsi, (box[0] + box[2]) / 2 + bsi
    face = padded[int(my - bs):int(my + bs * (1 + 2 * cs)), int(mx - bs * (1 + cs)):int(mx + bs * (1 + cs))]
    return cv2.resize(face, (out_size, out_size))


def test_window_inside_the_frame_hand_computed():
    frame = _coordinate_frame(100, 120)
    # bs = 20, centre (x, y) = (50, 60), cs = 0.4 -> bsi = int(20 * 1.8) = 36; padded centre my = 96, mx = 86.
    # rows int(96 - 20) = 76 .. int(96 + 36) = 132 -> frame rows 40 .. 96; cols int(86 - 28) = 58 .. int(86 + 28) = 114
    # -> frame columns 22 .. 78: a 56 x 56 window, all inside the frame.
    box = [30.0, 40.0, 70.0, 80.0]
    win = syncnet_window(frame, box, crop_scale=0.4, out_size=56)  # 56 -> 56: the resize is the identity
    assert win.shape == (56, 56, 3)
    assert np.array_equal(win, frame[40:96, 22:78])
    assert win[0, 0].tolist() == [40, 22, 7] and win[-1, -1].tolist() == [95, 77, 7]
    full = syncnet_window(frame, box)  # the default 224 px: the same window, bilinear
    assert full.shape == (224, 224, 3) and full.dtype == np.uint8
    assert np.array_equal(full, cv2.resize(np.ascontiguousarray(frame[40:96, 22:78]), (224, 224)))


def test_window_over_the_frame_edge_is_padded_with_110():
    frame = _coordinate_frame(100, 120)
    # A 25 wide, 20 high box at the bottom left: bs = max(20, 25) / 2 = 12.5, centre (12.5, 90).
    # bsi = int(12.5 * 1.8) = int(22.5) = 22; my = 112, mx = 34.5.
    # rows int(99.5) = 99 .. int(134.5) = 134 -> frame rows 77 .. 112 (rows 100.. are padding);
    # cols int(17.0) = 17 .. int(52.0) = 52 -> frame columns -5 .. 30 (columns < 0 are padding). 35 x 35 window.
    win = syncnet_window(frame, [0.0, 80.0, 25.0, 100.0], out_size=35)
    expected = np.full((35, 35, 3), 110, np.uint8)
    expected[0:23, 5:35] = frame[77:100, 0:30]
    assert np.array_equal(win, expected)
    assert (win[23:] == 110).all() and (win[:, :5] == 110).all()


def test_window_matches_the_literal_pad_and_slice():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (90, 130, 3), dtype=np.uint8)
    for _ in range(40):
        cx, cy, w, h = rng.uniform(0, 130), rng.uniform(0, 90), rng.uniform(8, 70), rng.uniform(8, 70)
        box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        for out_size in (224, 50):
            assert np.array_equal(syncnet_window(frame, box, out_size=out_size),
                                  _padded_literal(frame, box, out_size=out_size)), box


def test_median_filter_removes_an_outlier():
    boxes = np.tile(np.float32([10, 20, 50, 60]), (20, 1))   # s = 20, centre (30, 40)
    boxes[10] = [100, 100, 180, 180]                          # one bad detection: s = 40, centre (140, 140)
    out = median_filter_boxes(boxes, kernel=13)
    assert out.shape == (20, 4)
    assert np.array_equal(out, np.tile([10.0, 20.0, 50.0, 60.0], (20, 1)))
    # A non-square box comes back as the square of side max(w, h) around its centre.
    rect = np.tile(np.float32([0, 0, 40, 30]), (15, 1))
    assert np.array_equal(median_filter_boxes(rect)[0], [0.0, -5.0, 40.0, 35.0])


def test_median_filter_zero_pads_the_ends_like_scipy():
    x = 100.0 + np.arange(20)                                 # the centre moves right by 1 px a frame
    boxes = np.stack([x - 20, np.full(20, 20.0), x + 20, np.full(20, 60.0)], 1)
    cx = median_filter_boxes(boxes, kernel=13)[:, [0, 2]].mean(1)
    # medfilt pads with zeros: the last 6 medians all take frame 13's value, the first ones are unchanged.
    assert cx.tolist() == [100.0 + t for t in range(14)] + [113.0] * 6
    # A 5-frame track is filtered with kernel 5: its last 2 frames take frame 2's value (no zero as a median).
    assert median_filter_boxes(boxes[:5], kernel=13)[:, 0].tolist() == [80.0, 81.0, 82.0, 82.0, 82.0]
    with pytest.raises(ValueError):
        median_filter_boxes(boxes, kernel=12)


def test_reference_framing_filters_then_cuts():
    frames = np.stack([_coordinate_frame(100, 120)] * 15)
    boxes = np.tile(np.float32([30, 40, 70, 80]), (15, 1))
    boxes[7] = [0, 0, 10, 10]                                 # filtered away
    out = reference_framing(frames, boxes, out_size=56, jpeg=False)
    assert out.shape == (15, 56, 56, 3)
    assert all(np.array_equal(w, frames[0][40:96, 22:78]) for w in out)
    jpeg = reference_framing(frames, boxes, out_size=56)      # the JPEG round trip changes pixels, a little
    assert not np.array_equal(jpeg, out) and np.abs(jpeg.astype(int) - out).mean() < 3


def test_jpeg_of_the_window_area_equals_jpeg_of_the_whole_frame():
    rng = np.random.default_rng(1)
    for h, w in ((157, 203), (720, 1280), (64, 48)):
        yy, xx = np.mgrid[0:h, 0:w]
        frame = np.stack([np.sin(xx / 9.0) * 90 + 120, np.cos(yy / 13.0) * 80 + 120, (xx + 2 * yy) % 256], -1)
        frame = np.clip(frame + rng.normal(0, 10, frame.shape), 0, 255).astype(np.uint8)
        whole = jpeg_round_trip(frame)
        assert not np.array_equal(whole, frame)
        for _ in range(12):
            side = rng.uniform(0.1, 0.6) * min(h, w)
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)       # some windows run over the frame's edges
            box = [cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2]
            area = jpeg_window_area(frame, box)
            assert np.array_equal(syncnet_window(area, box), syncnet_window(whole, box)), (h, w, box)


# ---------------------------------------------------------------------------------------------- the evaluate stage
S, T, W, H = 32, 25, 96, 72          # crop side, frames, source size
BOX = [34.0, 14.0, 74.0, 54.0]       # side 40 (crops are resampled 40 -> 32 and back), centre (54, 34)


def _track() -> np.ndarray:
    """BOX drifting right by 1 px every 5 frames, with one bad detection (10 px off) at frame 12."""
    boxes = np.tile(np.float32(BOX), (T, 1)) + np.float32([1, 0, 1, 0]) * (np.arange(T)[:, None] // 5)
    boxes[12] += 10
    return boxes


class _RecordingScorer:
    """Test double for LSEScorer: records the frames it is given; conf = their mean, so groups differ."""

    def __init__(self, source):
        self.source, self.calls = source, []

    def score(self, frames, audio):
        self.calls.append(np.array(frames))
        return {"offset": 0, "min_dist": 1.0, "conf": float(np.mean(frames)), "n_windows": len(frames) - 5,
                "scorer": self.source, "curve": [1.0] * 31}


@pytest.fixture
def source_store(tmp_path):
    """A clip cut from a real video (written with ffmpeg) as the crop stage cuts it: decoded at 25 fps, cropped at
    BOX. Returns the repository root and the decoded source frames."""
    from talkface.media.decode import read_frames
    from talkface.media.encode import write_video

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:H, 0:W]
    frames = np.stack([np.stack([(xx * 2 + 5 * t) % 256, (yy * 3) % 256, np.full_like(xx, 60 + 4 * t)], -1)
                       for t in range(T)]).astype(np.uint8)
    audio = (rng.normal(0, 0.1, T * 640)).astype(np.float32)
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    write_video(raw / "talk.mp4", frames, fps=25, audio=audio)
    decoded = read_frames(raw / "talk.mp4", fps=25)[:T]
    assert len(decoded) == T
    boxes = _track()
    d = tmp_path / "data" / "clips" / "c1"
    d.mkdir(parents=True)
    np.save(d / "frames.npy", crop_frames(decoded, boxes, S))
    np.save(d / "audio.npy", audio)
    np.save(d / "landmarks.npy", np.full((T, 68, 2), np.nan, np.float32))
    np.save(d / "boxes.npy", boxes)
    (d / "meta.json").write_text(json.dumps({
        "clip_id": "c1", "speaker": "s", "fps": 25, "n_frames": T, "sample_rate": 16000, "source": "test",
        "detector": "annotations", "size": S, "video": "data/raw/talk.mp4", "source_size": [W, H]}))
    (tmp_path / "data" / "mels").mkdir(parents=True)
    np.save(tmp_path / "data" / "mels" / "c1.npy", melspectrogram(audio))
    (tmp_path / "data" / "splits").mkdir(parents=True)
    (tmp_path / "data" / "splits" / "test.txt").write_text("c1\n")
    return tmp_path, decoded


def _run(root, **cfg):
    from talkface.models.generator import Generator, GeneratorConfig
    from talkface.models.layers import AudioEncoder

    torch.manual_seed(0)
    gen = Generator(GeneratorConfig(face_size=S, width=4, max_width=16), AudioEncoder(width=4, out_dim=512)).eval()
    official, expert = _RecordingScorer("double (official)"), _RecordingScorer("double (expert)")
    scorers = Scorers(lse_official=official, lse_expert=expert, fid=NotAvailable("FID not available: test"),
                      avhubert=NotAvailable("AV-HuBERT not available: test"))
    result = evaluate(EvaluateConfig(write_videos=False, device="cpu", sample_clips=0, **cfg), OUTPUTS, root,
                      gens=Generators(gen, gen.cfg.k, S, info={"checkpoint": "in-memory"}), scorers=scorers)
    return result, official, expert


def test_evaluate_scores_reference_windows_of_the_source_video(source_store):
    root, decoded = source_store
    result, official, expert = _run(root)
    # syncnet_v2 got 224-px windows for model, ceiling and floor; our expert the 32-px crops it was trained on.
    assert [c.shape for c in official.calls] == [(T, 224, 224, 3)] * 3
    assert [c.shape for c in expert.calls] == [(T, S, S, 3)] * 3
    on_disk = json.loads((root / "metrics" / "eval.json").read_text())
    run = on_disk["run"]
    assert run["lse_framing"] == "reference (clip boxes in place of S3FD)" == REFERENCE_LABEL
    assert run["lse_expert_framing"] == CROP_LABEL and run["lse_framing_fallbacks"] == []
    assert run["lse_reference_framing"]["crop_scale"] == 0.4 and run["lse_reference_framing"]["pad_value"] == 110
    # The ceiling window (groups are scored in the order model, ceiling, floor) is the ground-truth crop pasted
    # back into the source frame, JPEG'd, and cut around the box: rebuilt here from its parts.
    gt, boxes = np.load(root / "data" / "clips" / "c1" / "frames.npy"), _track()
    pasted = np.stack([paste_back(decoded[t], gt[t], boxes[t], feather=0.0, region="full") for t in range(T)])
    assert np.array_equal(official.calls[1], reference_framing(pasted, boxes))
    # Frame 12's window is cut at the median of its neighbours (BOX + 2 px), not at the outlier.
    frame12 = jpeg_round_trip(pasted[12])
    assert np.array_equal(official.calls[1][12], syncnet_window(frame12, np.add(BOX, [2, 0, 2, 0])))
    assert not np.array_equal(official.calls[1][12], syncnet_window(frame12, boxes[12]))
    # Frame 0 (the start of the track keeps its box): the window reaches 1.8 * bs = 36 px below the centre (y 34 -> 70
    # of 72 rows) and 1.4 * bs = 28 px either side (x 26 .. 82 of 96): the real frame around the box, not only the crop.
    bs, bsi = 20, 36
    assert (bsi, int(34 + bsi - bs), int(34 + bsi + 1.8 * bs), int(54 + bsi - 1.4 * bs)) == (36, 50, 106, 62)
    window = cv2.resize(np.ascontiguousarray(jpeg_round_trip(pasted[0])[14:70, 26:82]), (224, 224))
    assert np.array_equal(official.calls[1][0], window)
    # LSE values are what the double returned for those frames, under the unchanged keys.
    assert result["ceiling"]["LSE-C"] == pytest.approx(float(np.mean(official.calls[1])))
    assert result["ceiling"]["LSE-C (talkface-syncnet)"] == pytest.approx(float(np.mean(expert.calls[1])))
    assert result["model"]["LSE-C"] != result["ceiling"]["LSE-C"]


def test_evaluate_falls_back_to_crops_without_the_source_video(source_store):
    root, _ = source_store
    (root / "data" / "raw" / "talk.mp4").unlink()
    result, official, _ = _run(root)
    assert [c.shape for c in official.calls] == [(T, S, S, 3)] * 3   # the crops, as they are
    run = result["run"]
    assert run["lse_framing"].startswith(CROP_LABEL) and "fallback" in run["lse_framing"]
    assert [f["clip_id"] for f in run["lse_framing_fallbacks"]] == ["c1"]
    assert "no source video at" in run["lse_framing_fallbacks"][0]["reason"]
    assert isinstance(result["model"]["LSE-C"], float)


def test_evaluate_crop_framing_and_bad_values(source_store):
    root, _ = source_store
    result, official, _ = _run(root, lse_framing="crop")
    assert [c.shape for c in official.calls] == [(T, S, S, 3)] * 3
    assert result["run"]["lse_framing"] == CROP_LABEL and result["run"]["lse_framing_fallbacks"] == []
    with pytest.raises(ValueError, match="lse_framing"):
        _run(root, lse_framing="s3fd")
