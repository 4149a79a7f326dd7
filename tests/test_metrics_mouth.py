"""Mouth opening over inter-ocular distance and its per-clip correlation: known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from talkface.metrics.mouth import mouth_opening, opening_correlation


def _face(gap: float, scale: float = 1.0) -> np.ndarray:
    """68 points: eye centres 40 px apart, inner lips 61-63 at y=70, 65-67 at y=70 + gap (all scaled)."""
    lm = np.zeros((68, 2))
    lm[36:42] = [30, 40]
    lm[42:48] = [70, 40]
    lm[61:64, 1] = 70
    lm[65:68, 1] = 70 + gap
    lm[61:64, 0] = lm[[67, 66, 65], 0] = [45, 50, 55]
    return lm * scale


def test_opening_is_gap_over_interocular_distance_at_any_scale():
    lms = np.stack([_face(0.0), _face(8.0), _face(8.0, scale=2.5)])
    assert mouth_opening(lms) == pytest.approx([0.0, 0.2, 0.2])


def test_missing_landmarks_give_nan():
    lms = np.stack([_face(4.0), np.full((68, 2), np.nan)])
    out = mouth_opening(lms)
    assert out[0] == pytest.approx(0.1) and math.isnan(out[1])


def test_correlation_known_answers():
    t = np.arange(50, dtype=float)
    gt = np.sin(t / 3)
    assert opening_correlation(2 * gt + 1, gt) == pytest.approx(1.0)
    assert opening_correlation(-gt, gt) == pytest.approx(-1.0)
    assert math.isnan(opening_correlation(np.zeros(50), gt))  # a still mouth
    noisy = gt + np.random.default_rng(0).normal(0, 1, 50)
    assert opening_correlation(noisy, gt) == pytest.approx(np.corrcoef(noisy, gt)[0, 1])
    gt_nan = gt.copy()
    gt_nan[:46] = np.nan
    assert math.isnan(opening_correlation(gt, gt_nan))  # 4 frames left < min_frames
