"""Face detector backends (haar on a real face, annotations, fan's offline message and glue) and box tracking."""

from __future__ import annotations

import socket

import cv2
import numpy as np
import pytest
import torch

from talkface.faces import detect as det_mod
from talkface.faces.detect import (AnnotationDetector, DetectorConfig, FaceDetectorUnavailable, FanConfig,
                                   FanDetector, HaarConfig, HaarDetector, make_detector, pick_face)
from talkface.faces.track import (fill_gaps, landmarks_to_crop, pad_boxes, smooth_boxes, square_boxes,
                                  track_boxes)
from talkface.media.decode import read_frames


@pytest.fixture(scope="module")
def real_face_frame():
    from conftest import real_samples_dir

    d = real_samples_dir()
    if d is None:
        pytest.skip("../shared/real-samples not present")
    return read_frames(d / "vrt_face_3.mp4", duration=0.04)[0]  # 590x590, one face in the middle


def test_haar_finds_real_face(real_face_frame):
    frame = real_face_frame
    dets = HaarDetector().detect(np.stack([frame, np.full_like(frame, 128)]))
    d = dets[0]
    assert d is not None and d.landmarks is None  # haar: boxes only
    x0, y0, x1, y1 = d.box
    assert 0 <= x0 < x1 <= frame.shape[1] and 0 <= y0 < y1 <= frame.shape[0]
    # the face of vrt_face_3 is centred near (268, 278) and about 290 px wide
    assert abs((x0 + x1) / 2 - 268) < 40 and abs((y0 + y1) / 2 - 278) < 40
    assert 200 < x1 - x0 < 380
    assert dets[1] is None  # a plain grey frame has no face


def test_haar_face_index_picks_by_size(real_face_frame):
    face = cv2.resize(real_face_frame[100:460, 90:450], (300, 300))
    small = cv2.resize(face, (150, 150))
    canvas = np.full((320, 520, 3), 120, np.uint8)
    canvas[10:310, 10:310] = face
    canvas[80:230, 350:500] = small
    cfg = HaarConfig(max_side=0, min_size=0.1)
    big = HaarDetector(cfg, face_index=0).detect(canvas[None])[0]
    second = HaarDetector(cfg, face_index=1).detect(canvas[None])[0]
    assert big is not None and second is not None
    assert (big.box[0] + big.box[2]) / 2 < 310 < (second.box[0] + second.box[2]) / 2
    assert (big.box[2] - big.box[0]) > 1.5 * (second.box[2] - second.box[0])


def test_pick_face_largest_then_index():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 30, 30], [0, 0, 20, 20]], np.float32)
    scores = np.array([0.9, 0.5, 0.7], np.float32)
    assert pick_face(boxes, scores, 0) == 1
    assert pick_face(boxes, scores, 1) == 2
    assert pick_face(boxes, scores, 3) is None


def test_annotations_detector_returns_sidecar_boxes():
    boxes = [[10, 20, 50, 60], [11, 21, 51, 61], [float("nan")] * 4, [13, 23, 53, 63]]
    lms = [[[i + j, 2 * j] for j in range(68)] for i in range(4)]
    det = AnnotationDetector({"boxes": boxes, "landmarks": lms})
    frames = np.zeros((2, 80, 80, 3), np.uint8)
    out = det.detect(frames, start=2)  # frames 2 and 3 of the clip
    assert out[0] is None
    np.testing.assert_allclose(out[1].box, [13, 23, 53, 63])
    assert out[1].landmarks.shape == (68, 2) and out[1].landmarks[5, 0] == 3 + 5
    assert det.detect(frames, start=4) == [None, None]  # past the sidecar's end


def test_fan_not_available_without_network(tmp_path, monkeypatch):
    # TORCH_HOME, not torch.hub.set_dir: set_dir pins the hub folder for the rest of the process
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setattr(socket.socket, "connect", lambda *a: pytest.fail("fan tried the network"))
    with pytest.raises(FaceDetectorUnavailable) as exc:
        make_detector("fan", DetectorConfig())
    msg = str(exc.value)
    assert msg.startswith("fan not available: ") and "\n" not in msg
    assert "s3fd-619a316812.pth" in msg and "2DFAN4" in msg


class FakeFan:
    """Stands in for face_alignment.FaceAlignment: two faces per frame, landmarks = box corners spread out."""

    class face_detector:
        @staticmethod
        def detect_from_batch(tensor):
            assert tensor.shape[1] == 3 and tensor.dtype == torch.float32
            h = tensor.shape[2]
            return [[np.array([2, 2, 12, 12, 0.99]), np.array([5, 5, h - 5, h - 5, 0.8])]
                    for _ in range(tensor.shape[0])]

    @staticmethod
    def get_landmarks_from_image(image, detected_faces):
        x0, y0, x1, y1 = detected_faces[0][:4]
        t = np.linspace(0, 1, 68)
        return [np.stack([x0 + t * (x1 - x0), y0 + t * (y1 - y0)], 1)]


def test_fan_glue_with_stand_in_model():
    frames = np.zeros((3, 100, 200, 3), np.uint8)
    det = FanDetector(FanConfig(batch_size=2, max_side=100), face_index=0, model=FakeFan())
    out = det.detect(frames)
    assert len(out) == 3
    # the larger face [5, 5, 45, 45] at half size maps back to full-size pixels
    np.testing.assert_allclose(out[2].box, [10, 10, 90, 90])
    assert out[2].score == pytest.approx(0.8)
    assert out[2].landmarks.shape == (68, 2)
    np.testing.assert_allclose(out[2].landmarks[[0, -1]], [[10, 10], [90, 90]], atol=1e-4)


@pytest.mark.skipif(not all(p.is_file() for p in det_mod.fan_weight_files().values()), reason="FAN weights absent")
def test_fan_real_weights(real_face_frame):
    d = FanDetector(FanConfig(device="cpu")).detect(real_face_frame[None])[0]
    assert d is not None and d.landmarks.shape == (68, 2)
    assert d.box[0] < d.landmarks[30, 0] < d.box[2]  # nose tip inside the box


# --------------------------------------------------------------------------------------------------- tracking


def test_fill_gaps_interpolates_short_and_holds_long():
    b = np.full((10, 4), np.nan, np.float32)
    b[0] = [0, 0, 10, 10]
    b[3] = [30, 0, 40, 10]
    b[9] = [90, 0, 100, 10]
    out = fill_gaps(b, max_gap=2)
    np.testing.assert_allclose(out[1], [10, 0, 20, 10])  # gap of 2 -> linear
    np.testing.assert_allclose(out[2], [20, 0, 30, 10])
    np.testing.assert_allclose(out[4], b[3])  # gap of 5 > 2 -> nearest detection held
    np.testing.assert_allclose(out[8], b[9])
    assert not np.isnan(out).any()


def test_smoothing_reduces_jitter():
    rng = np.random.default_rng(0)
    t = np.arange(200)
    truth = np.stack([100 + 20 * np.sin(t / 30), 80 + 0 * t, 200 + 20 * np.sin(t / 30), 180 + 0 * t], 1)
    noisy = (truth + rng.normal(0, 3, truth.shape)).astype(np.float32)
    for method in ("mean", "median"):
        sm = smooth_boxes(noisy, 7, method)
        jitter = lambda b: np.abs(np.diff(b, axis=0)).mean()  # noqa: E731
        assert jitter(sm) < 0.4 * jitter(noisy)
        assert np.abs(sm - truth).mean() < 0.6 * np.abs(noisy - truth).mean()
    np.testing.assert_array_equal(smooth_boxes(noisy, 1), noisy)


def test_pad_square_and_clip():
    b = np.array([[100, 100, 200, 300]], np.float32)
    np.testing.assert_allclose(pad_boxes(b, (0.1, 0.2, 0.5, 0.0)), [[50, 80, 200, 340]])
    sq = square_boxes(b, 640, 480)
    np.testing.assert_allclose(sq, [[50, 100, 250, 300]])  # side 200 around the centre (150, 200)
    edge = square_boxes(np.array([[-20, 400, 80, 520]], np.float32), 640, 480)
    x0, y0, x1, y1 = edge[0]
    assert x1 - x0 == y1 - y0 == 120 and x0 == 0 and y1 == 480  # moved inside, still square
    huge = square_boxes(np.array([[0, 0, 900, 900]], np.float32), 640, 480)
    np.testing.assert_allclose(huge, [[160, 0, 640, 480]])  # shrunk to the frame height, centre kept inside


def test_track_boxes_and_landmarks_to_crop():
    from talkface.faces.detect import Detection

    lm = np.tile(np.array([[60, 70]], np.float32), (68, 1))
    dets = [Detection(np.array([10, 20, 110, 120], np.float32), 1.0, lm), None,
            Detection(np.array([10, 20, 110, 120], np.float32), 1.0, None)]
    boxes, lms, found = track_boxes(dets, 640, 480, pads=(0, 0, 0, 0), window=3)
    np.testing.assert_allclose(boxes, [[10, 20, 110, 120]] * 3)
    assert found.tolist() == [True, False, True]
    crop_lm = landmarks_to_crop(lms, boxes, 50)
    np.testing.assert_allclose(crop_lm[0, 0], [24.75, 24.75])  # (60 - 10 + 0.5) * 0.5 - 0.5
    assert np.isnan(crop_lm[1]).all() and np.isnan(crop_lm[2]).all()
    with pytest.raises(ValueError):
        track_boxes([None, None], 64, 64)


# ------------------------------------------------------------------------------------------------------------ dlib

@pytest.fixture(scope="module")
def real_face_clip():
    from conftest import real_samples_dir

    d = real_samples_dir()
    if d is None:
        pytest.skip("../shared/real-samples not present")
    pytest.importorskip("dlib")
    return read_frames(d / "vrt_face_3.mp4", duration=0.8)  # 20 frames, one face in the middle


def test_dlib_finds_real_face_with_68_landmarks(real_face_clip):
    frames = real_face_clip
    dets = make_detector("dlib", DetectorConfig()).detect(frames)
    assert all(d is not None for d in dets)
    d = dets[0]
    assert d.landmarks.shape == (68, 2)
    x0, y0, x1, y1 = d.box
    # the same face the haar test locates: centred near (268, 278), about 290 px wide
    assert abs((x0 + x1) / 2 - 268) < 40 and abs((y0 + y1) / 2 - 278) < 50 and 200 < x1 - x0 < 380
    lm = d.landmarks
    # iBUG layout: eyes (36-47) above the nose tip (30) above the mouth (48-67) above the chin (8)
    assert lm[36:48, 1].mean() < lm[30, 1] < lm[48:68, 1].mean() < lm[8, 1]
    assert lm[36:42, 0].mean() < lm[42:48, 0].mean()  # the image-left eye is points 36-41
    # tracked frames (between detections every 5th) stay on the face: landmarks move little frame to frame
    steps = [np.abs(dets[t].landmarks - dets[t - 1].landmarks).mean() for t in range(1, len(dets))]
    assert max(steps) < 6.0


def test_dlib_no_face_and_restart(real_face_clip):
    detector = make_detector("dlib", DetectorConfig())
    grey = np.full((3, 240, 320, 3), 128, np.uint8)
    assert detector.detect(grey) == [None, None, None]
    assert detector.detect(real_face_clip[:2], start=0)[0] is not None  # start=0: a new clip, detection again


def test_dlib_not_available_is_one_line(monkeypatch, tmp_path):
    cfg = det_mod.DlibConfig(landmark_model=str(tmp_path / "missing.dat"))
    pytest.importorskip("dlib")
    with pytest.raises(FaceDetectorUnavailable) as e:
        det_mod.check_dlib_available(cfg)
    assert str(e.value).startswith("dlib not available:") and "missing.dat" in str(e.value)


def test_auto_prefers_fan_then_dlib_then_haar(monkeypatch):
    def unavailable(*_):
        raise FaceDetectorUnavailable("x not available: test")

    monkeypatch.setattr(det_mod, "check_fan_available", lambda: None)
    assert det_mod.resolve_detector("auto") == "fan"
    monkeypatch.setattr(det_mod, "check_fan_available", unavailable)
    monkeypatch.setattr(det_mod, "check_dlib_available", lambda cfg=None: None)
    assert det_mod.resolve_detector("auto") == "dlib"
    monkeypatch.setattr(det_mod, "check_dlib_available", unavailable)
    assert det_mod.resolve_detector("auto") == "haar"
    assert det_mod.resolve_detector("haar") == "haar"


def test_landmark_box_raises_the_top_by_a_share_of_the_height():
    lm = np.array([[10, 20], [50, 20], [30, 60]], np.float32)
    assert det_mod.landmark_box(lm, 0.25).tolist() == [10, 10, 50, 60]


def test_rigid_box_does_not_move_when_the_jaw_opens():
    """Brows, nose and eyes place the rigid box: dropping the jaw and lips (points 0-16 below the nose, 48-67) leaves it
    where it was, while the bounds box grows by the drop. Known answer for a square of rigid points."""
    rng = np.random.default_rng(0)
    lm = rng.uniform(40, 60, (68, 2)).astype(np.float32)
    lm[17:48] = [[40, 40], [60, 40], [60, 60], [40, 60]] * 7 + [[40, 40], [60, 40], [60, 60]]  # not all on the square
    lm[8] = [50, 90]  # chin
    opened = lm.copy()
    opened[[5, 6, 7, 8, 9, 10, 11]] += [0, 12]
    opened[48:68] += [0, 6]
    cfg = det_mod.DlibConfig(box="rigid", rigid_box=[-1.0, -1.0, 1.0, 2.0])
    closed_box, open_box = det_mod.face_box(lm, cfg), det_mod.face_box(opened, cfg)
    assert closed_box.tolist() == open_box.tolist()
    c = lm[17:48].mean(axis=0)
    r = np.sqrt(((lm[17:48] - c) ** 2).sum(axis=1).mean())
    np.testing.assert_allclose(closed_box, [c[0] - r, c[1] - r, c[0] + r, c[1] + 2 * r], rtol=1e-5)
    bounds = det_mod.DlibConfig(box="bounds", box_top=0.0)
    assert det_mod.face_box(opened, bounds)[3] - det_mod.face_box(lm, bounds)[3] == pytest.approx(12)


def test_dlib_rigid_box_does_not_follow_the_mouth_on_grid():
    """GRID s1 speech (2 s): the bounds box's height follows dlib's mouth opening (r 0.8); the rigid box's does not."""
    from conftest import ROOT

    from talkface.metrics.mouth import mouth_opening

    video = ROOT.parent / "shared" / "grid" / "s1" / "video" / "bbaf5a.mp4"
    if not video.is_file():
        pytest.skip("../shared/grid not present")
    pytest.importorskip("dlib")
    dets = [d for d in make_detector("dlib", DetectorConfig()).detect(read_frames(video, duration=2.0)) if d]
    opening = mouth_opening(np.stack([d.landmarks for d in dets]))
    rigid = np.array([d.box[3] - d.box[1] for d in dets])
    bounds = np.array([np.subtract(*det_mod.landmark_box(d.landmarks, 0.25)[[3, 1]]) for d in dets])
    r_rigid, r_bounds = np.corrcoef(rigid, opening)[0, 1], np.corrcoef(bounds, opening)[0, 1]
    assert r_bounds > 0.6 and abs(r_rigid) < 0.5, (r_rigid, r_bounds)


def test_dlib_crop_landmarker_follows_the_mouth(real_face_clip):
    """On crops, dlib fits inside the reference landmarks' box: a crop gives its full-frame landmarks back closely."""
    from talkface.faces.crop import crop_frames
    from talkface.faces.crop_landmarks import make_crop_landmarker
    from talkface.faces.track import track_boxes

    frames = real_face_clip
    dets = make_detector("dlib", DetectorConfig()).detect(frames)
    boxes, lms_full, _ = track_boxes(dets, frames.shape[2], frames.shape[1])
    crops = crop_frames(frames, boxes, 96)
    ref = landmarks_to_crop(lms_full, boxes, 96)
    got = make_crop_landmarker("dlib")(crops, ref)
    assert got.shape == (len(crops), 68, 2)
    assert np.abs(got - ref).mean() < 2.0  # px at 96: the full-frame fit, re-fitted on the small crop


def test_crop_landmarker_names():
    from talkface.faces.crop_landmarks import make_crop_landmarker

    with pytest.raises(FaceDetectorUnavailable, match="none"):
        make_crop_landmarker("none")
    with pytest.raises(ValueError, match="landmarker"):
        make_crop_landmarker("sift")
