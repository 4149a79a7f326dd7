"""The landmark measures of the generator checks: mouth opening of crops from 68 landmarks, and the speaker's own
opening on the frames GRID's alignments label `sil`."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import torch

from talkface.analysis.generator_checks import landmark_openings, sil_frame_openings


def _face(gap: float, iod: float = 40.0) -> np.ndarray:
    """68 landmarks with eye centres `iod` apart and the three inner-lip pairs `gap` apart."""
    lm = np.zeros((68, 2), np.float32)
    lm[36:42] = [30.0, 40.0]
    lm[42:48] = [30.0 + iod, 40.0]
    for top, bottom in ((61, 67), (62, 66), (63, 65)):
        lm[top] = [48.0, 70.0]
        lm[bottom] = [48.0, 70.0 + gap]
    return lm


class FakeLandmarker:
    name = "fake"

    def __init__(self, gaps):
        self.gaps = gaps
        self.seen = None

    def __call__(self, crops, boxes):
        self.seen = (crops.shape, crops.dtype, boxes.shape)
        return np.stack([_face(g) for g in self.gaps])


def test_landmark_openings_known_answer():
    mark = FakeLandmarker([0.0, 4.0, 8.0, 2.0, 10.0, 0.0])
    frames = torch.rand(2, 3, 3, 96, 96)
    out = landmark_openings(mark, frames, torch.zeros(2, 3, 68, 2))
    np.testing.assert_allclose(out, np.array([0.0, 4.0, 8.0, 2.0, 10.0, 0.0]) / 40.0, atol=1e-6)
    assert mark.seen == ((6, 96, 96, 3), np.uint8, (6, 68, 2))  # uint8 crops, one box per frame


def test_sil_frame_openings_reads_labelled_frames(tmp_path):
    for clip, gaps, labels in (("a", [0.0, 8.0, 2.0], ["sil", "bin", "sil"]), ("b", [4.0, 4.0], ["blue", "at"])):
        d = tmp_path / clip
        d.mkdir()
        np.save(d / "landmarks.npy", np.stack([_face(g) for g in gaps]))
        (d / "labels.json").write_text(json.dumps({"labels": labels}))
    (tmp_path / "c").mkdir()  # a clip without labels is skipped
    val = SimpleNamespace(clip_ids=["a", "b", "c"], clips_dir=tmp_path)
    np.testing.assert_allclose(sil_frame_openings(val), [0.0, 2.0 / 40.0], atol=1e-6)
    assert len(sil_frame_openings(SimpleNamespace(clip_ids=["c"], clips_dir=tmp_path))) == 0
