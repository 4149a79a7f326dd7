"""68 landmarks on face crops (generated or ground truth), for LMD and the mouth-opening analyses.

    mark = make_crop_landmarker("dlib")           # or "fan" (cached face-alignment weights) or "auto"
    lms = mark(frames, reference)                 # uint8 [T,S,S,3], float32 [T,68,2] -> float32 [T,68,2] crop pixels

A generated crop and its ground truth must be measured the same way, so neither detector searches the crop for a face:
- FAN is given the whole crop as the face box;
- dlib's shape predictor is given the box of the clip's stored landmarks (`reference`, the ground truth's, the same for
  the generated frame of that moment; the whole crop where a frame has none). A generator keeps the upper face, so
  that box is the face box of the generated frame too; only the mouth points move with what was generated.
"""

from __future__ import annotations

import numpy as np

from .detect import DlibConfig, FaceDetectorUnavailable, check_dlib_available, check_fan_available, dlib_model_files

LANDMARKERS = ("auto", "fan", "dlib", "none")


class FanCropLandmarker:
    """face-alignment's 2D-FAN with the whole crop as the face box; NaN where FAN returns nothing."""

    name = "fan"

    def __init__(self, fan_model):
        self.model = fan_model

    def __call__(self, frames: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        out = np.full((len(frames), 68, 2), np.nan, np.float32)
        for t, frame in enumerate(frames):
            h, w = frame.shape[:2]
            lms = self.model.get_landmarks_from_image(np.ascontiguousarray(frame),
                                                      detected_faces=[np.array([0, 0, w, h, 1.0], np.float32)])
            if lms:
                out[t] = np.asarray(lms[0], np.float32)[:, :2].reshape(68, 2)
        return out


class DlibCropLandmarker:
    """dlib's 68-point shape predictor inside the box of the reference landmarks (module docstring)."""

    name = "dlib"

    def __init__(self, cfg: DlibConfig | None = None):
        cfg = cfg or DlibConfig()
        check_dlib_available(cfg)
        import dlib

        self._dlib = dlib
        self.predictor = dlib.shape_predictor(str(dlib_model_files(cfg)["landmarks"]))

    def __call__(self, frames: np.ndarray, reference: np.ndarray | None = None) -> np.ndarray:
        out = np.empty((len(frames), 68, 2), np.float32)
        for t, frame in enumerate(frames):
            h, w = frame.shape[:2]
            ref = None if reference is None else reference[t]
            if ref is not None and np.isfinite(ref).all():
                x0, y0 = np.floor(ref.min(axis=0)).astype(int)
                x1, y1 = np.ceil(ref.max(axis=0)).astype(int)
            else:
                x0, y0, x1, y1 = 0, 0, w - 1, h - 1
            shape = self.predictor(np.ascontiguousarray(frame), self._dlib.rectangle(int(x0), int(y0), int(x1), int(y1)))
            out[t] = [(p.x, p.y) for p in shape.parts()]
        return out


def make_crop_landmarker(name: str, device: str = "cpu", dlib_cfg: DlibConfig | None = None):
    """A crop landmarker by name (`auto`: fan when its weights are cached, else dlib). FaceDetectorUnavailable with
    the reason when it cannot run here."""
    if name not in LANDMARKERS:
        raise ValueError(f"landmarker must be one of {LANDMARKERS}, got {name!r}")
    if name == "none":
        raise FaceDetectorUnavailable("landmarks not available: the landmarker is set to none")
    if name == "auto":
        try:
            check_fan_available()
            name = "fan"
        except FaceDetectorUnavailable:
            name = "dlib"
    if name == "fan":
        from .detect import FanConfig, FanDetector

        return FanCropLandmarker(FanDetector(FanConfig(device=device)).model)
    return DlibCropLandmarker(dlib_cfg)
