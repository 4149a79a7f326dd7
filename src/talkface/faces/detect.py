"""Face detectors behind one interface.

    det = make_detector("haar", DetectorConfig())
    dets = det.detect(frames, start=0)     # frames uint8 [n, H, W, 3] RGB -> list of n (Detection | None)

Backends:
- `fan`: face-alignment's S3FD boxes + FAN 68 landmarks (what P1/P2 use). Needs its weights in the torch hub cache
  (`<torch hub dir>/checkpoints/`); when they are missing it raises FaceDetectorUnavailable("fan not available: ...")
  without touching the network.
- `dlib`: dlib's HOG (or MMOD CNN) face detector every `detect_every` frames on a shrunk frame, the face tracked from
  its landmarks in between, and dlib's 68-point shape predictor (iBUG 300-W layout, as FAN's) on every full-size frame.
  Offline: the models ship in PyPI's `face_recognition_models` (trained on iBUG 300-W: research use only).
- `haar`: OpenCV's frontal-face Haar cascade. Offline, CPU-fast, boxes only: **no landmarks** (Detection.landmarks is
  None, so the crop stage stores NaN landmarks and LMD cannot be computed on such clips). Misses profiles.
- `annotations`: the boxes and landmarks of a synthetic clip's sidecar JSON (ground truth, no image analysis);
  `start` says which frame of the clip `frames[0]` is.

`auto` picks fan when its weights are cached, else dlib when it is installed, else haar (`resolve_detector`).

When a frame holds several faces, the faces are ranked by box area, largest first, and `face_index` picks one.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np


class FaceDetectorUnavailable(RuntimeError):
    """A backend cannot run here (missing weights or package); the message is one line "<name> not available: ..."."""


@dataclasses.dataclass
class Detection:
    box: np.ndarray  # float32 [4] x0, y0, x1, y1 in frame pixels
    score: float
    landmarks: np.ndarray | None = None  # float32 [68, 2] iBUG layout, frame pixels; None when the backend has none


@dataclasses.dataclass
class HaarConfig:
    cascade: str = "haarcascade_frontalface_default.xml"  # a file name in cv2.data.haarcascades, or a path
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: float = 0.15  # smallest face side, as a fraction of the frame's shorter side
    max_side: int = 256  # frames are shrunk to this longer side before detection (speed); 0 = full size


@dataclasses.dataclass
class FanConfig:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    batch_size: int = 16
    score_threshold: float = 0.5  # S3FD box confidence
    max_side: int = 640  # S3FD runs on frames shrunk to this longer side; landmarks on full-size frames; 0 = no shrink
    flip_input: bool = False  # FAN test-time flip (2x slower, slightly steadier landmarks)


@dataclasses.dataclass
class DlibConfig:
    detector: str = "hog"  # hog (fast, frontal) | mmod (CNN, slower, more poses)
    detect_every: int = 5  # full detection on every n-th frame; in between the face is tracked from its landmarks
    max_side: int = 320  # detection on frames shrunk to this longer side (landmarks on full size); 0 = no shrink
    upsample: int = 1  # detector pyramid upsampling: HOG finds faces from ~80 px, ~40 px with 1
    box: str = "rigid"  # rigid (from brows, eyes and nose: does not move with the jaw) | bounds (all 68 landmarks)
    rigid_box: list[float] = dataclasses.field(default_factory=lambda: [-1.81, -1.79, 1.81, 3.11])
    #                    rigid: left, top, right, bottom of the box in units of the rigid points' RMS radius from their
    #                    centroid (the median bounds box, measured on GRID s1 and the real samples)
    box_top: float = 0.25  # bounds: the landmarks' bounds raised by this share of their height (forehead)
    landmark_model: str = ""  # "" = face_recognition_models' shape_predictor_68_face_landmarks.dat


@dataclasses.dataclass
class DetectorConfig:
    face_index: int = 0  # 0 = the largest face in the frame, 1 = the second largest, ...
    haar: HaarConfig = dataclasses.field(default_factory=HaarConfig)
    dlib: DlibConfig = dataclasses.field(default_factory=DlibConfig)
    fan: FanConfig = dataclasses.field(default_factory=FanConfig)


class FaceDetector(Protocol):
    name: str

    def detect(self, frames: np.ndarray, start: int = 0) -> list[Detection | None]:
        """uint8 [n, H, W, 3] RGB frames (frames start..start+n-1 of a clip) -> one Detection or None per frame."""
        ...


def pick_face(boxes: np.ndarray, scores: np.ndarray, face_index: int) -> int | None:
    """Index of the face_index-th largest box of [m, 4], or None when there are not that many."""
    if len(boxes) <= face_index:
        return None
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.lexsort((-scores, -area))  # by area, then score, descending
    return int(order[face_index])


def _shrink(frame: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    side = max(frame.shape[:2])
    if max_side <= 0 or side <= max_side:
        return frame, 1.0
    s = max_side / side
    small = cv2.resize(frame, (round(frame.shape[1] * s), round(frame.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return small, s


class HaarDetector:
    """OpenCV Haar cascade: boxes only, no landmarks (Detection.landmarks is None)."""

    name = "haar"

    def __init__(self, cfg: HaarConfig | None = None, face_index: int = 0):
        self.cfg = cfg or HaarConfig()
        self.face_index = face_index
        path = self.cfg.cascade
        if not os.path.isfile(path):
            path = os.path.join(cv2.data.haarcascades, path)
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise FaceDetectorUnavailable(f"haar not available: cannot load cascade {path}")

    def detect(self, frames: np.ndarray, start: int = 0) -> list[Detection | None]:
        out: list[Detection | None] = []
        for frame in frames:
            small, s = _shrink(frame, self.cfg.max_side)
            gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
            min_side = max(8, int(self.cfg.min_size * min(gray.shape)))
            rects, _, weights = self.cascade.detectMultiScale3(
                gray, scaleFactor=self.cfg.scale_factor, minNeighbors=self.cfg.min_neighbors,
                minSize=(min_side, min_side), outputRejectLevels=True)
            if len(rects) == 0:
                out.append(None)
                continue
            rects = np.asarray(rects, np.float32).reshape(-1, 4)
            boxes = np.concatenate([rects[:, :2], rects[:, :2] + rects[:, 2:]], axis=1) / s
            scores = np.asarray(weights, np.float32).reshape(-1)
            k = pick_face(boxes, scores, self.face_index)
            out.append(None if k is None else Detection(boxes[k].astype(np.float32), float(scores[k]), None))
        return out


class AnnotationDetector:
    """Boxes and landmarks read from a synthetic clip's sidecar JSON (see docs/architecture.md)."""

    name = "annotations"

    def __init__(self, sidecar: str | Path | dict):
        data = sidecar if isinstance(sidecar, dict) else json.loads(Path(sidecar).read_text())
        if "boxes" not in data:
            raise ValueError("annotations sidecar has no 'boxes'")
        self.boxes = np.asarray(data["boxes"], np.float32).reshape(-1, 4)
        lms = data.get("landmarks")
        self.landmarks = np.asarray(lms, np.float32).reshape(-1, 68, 2) if lms else None

    def detect(self, frames: np.ndarray, start: int = 0) -> list[Detection | None]:
        out: list[Detection | None] = []
        for t in range(start, start + len(frames)):
            if t >= len(self.boxes) or np.isnan(self.boxes[t]).any():
                out.append(None)
                continue
            lm = self.landmarks[t] if self.landmarks is not None and t < len(self.landmarks) else None
            out.append(Detection(self.boxes[t].copy(), 1.0, None if lm is None else lm.copy()))
        return out


def fan_weight_files() -> dict[str, Path]:
    """Where face-alignment looks for its S3FD and 2D-FAN weights: {name: path in the torch hub cache}."""
    import torch
    from face_alignment import api
    from face_alignment.detection.sfd import sfd_detector

    cache = Path(torch.hub.get_dir()) / "checkpoints"
    urls = {"s3fd": sfd_detector.models_urls["s3fd"], "2DFAN-4": api.models_urls["2DFAN-4"]}
    return {name: cache / url.rsplit("/", 1)[-1] for name, url in urls.items()}


def check_fan_available() -> None:
    """Raise FaceDetectorUnavailable unless face-alignment and both weight files are present (no network is tried)."""
    try:
        files = fan_weight_files()
    except ImportError as exc:
        raise FaceDetectorUnavailable(f"fan not available: face-alignment is not installed ({exc})") from None
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FaceDetectorUnavailable(
            "fan not available: weights not in the torch hub cache (offline, nothing downloaded): missing "
            + ", ".join(missing))


class FanDetector:
    """face-alignment: S3FD face boxes, then 2D-FAN 68 landmarks on the chosen face (full-resolution frame)."""

    name = "fan"

    def __init__(self, cfg: FanConfig | None = None, face_index: int = 0, model=None):
        """`model`: an already built face_alignment.FaceAlignment (or an object with the same two methods used
        here); by default one is built from the cached weights."""
        self.cfg = cfg or FanConfig()
        self.face_index = face_index
        if model is None:
            check_fan_available()
            import face_alignment
            import torch

            device = self.cfg.device
            if device == "auto":
                device = "cuda" if torch.cuda.is_available() else "cpu"
            kwargs = dict(device=device, flip_input=self.cfg.flip_input, face_detector="sfd",
                          face_detector_kwargs={"filter_threshold": self.cfg.score_threshold})
            if "compile" in inspect.signature(face_alignment.FaceAlignment).parameters:
                kwargs["compile"] = False  # torch.compile warm-up costs minutes on CPU for a one-off pass
            model = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, **kwargs)
        self.model = model

    def detect(self, frames: np.ndarray, start: int = 0) -> list[Detection | None]:
        import torch

        out: list[Detection | None] = []
        for b in range(0, len(frames), self.cfg.batch_size):
            batch = frames[b: b + self.cfg.batch_size]
            small = [_shrink(f, self.cfg.max_side) for f in batch]
            scale = small[0][1]
            tensor = torch.from_numpy(np.stack([s for s, _ in small])).permute(0, 3, 1, 2).float()
            found = self.model.face_detector.detect_from_batch(tensor)
            for frame, faces in zip(batch, found):
                faces = np.asarray(faces, np.float32).reshape(-1, 5)
                k = pick_face(faces[:, :4], faces[:, 4], self.face_index)
                if k is None:
                    out.append(None)
                    continue
                box = faces[k, :4] / scale
                lms = self.model.get_landmarks_from_image(frame, detected_faces=[np.append(box, faces[k, 4])])
                lm = None if not lms else np.asarray(lms[0], np.float32)[:, :2].reshape(68, 2)
                out.append(Detection(box.astype(np.float32), float(faces[k, 4]), lm))
        return out


def dlib_model_files(cfg: DlibConfig | None = None) -> dict[str, Path]:
    """The landmark model and the MMOD detector that the dlib backend loads (face_recognition_models' copies)."""
    cfg = cfg or DlibConfig()
    try:
        import face_recognition_models as frm
    except ImportError:
        frm = None
    if cfg.landmark_model:
        landmarks = Path(cfg.landmark_model).expanduser()
    elif frm is not None:
        landmarks = Path(frm.pose_predictor_model_location())
    else:
        landmarks = Path("shape_predictor_68_face_landmarks.dat (pip install face_recognition_models)")
    mmod = Path(frm.cnn_face_detector_model_location()) if frm is not None else Path("mmod_human_face_detector.dat")
    return {"landmarks": landmarks, "mmod": mmod}


def check_dlib_available(cfg: DlibConfig | None = None) -> None:
    """Raise FaceDetectorUnavailable unless dlib imports and its model files are present."""
    cfg = cfg or DlibConfig()
    try:
        import dlib  # noqa: F401
    except ImportError as exc:
        raise FaceDetectorUnavailable(f"dlib not available: {exc} (pip install dlib-bin face_recognition_models)") \
            from None
    files = dlib_model_files(cfg)
    needed = [files["landmarks"]] + ([files["mmod"]] if cfg.detector == "mmod" else [])
    missing = [str(p) for p in needed if not p.is_file()]
    if missing:
        raise FaceDetectorUnavailable("dlib not available: model file missing: " + ", ".join(missing))


RIGID_POINTS = slice(17, 48)  # brows, nose, eyes: they do not move when the mouth opens


def rigid_landmark_box(landmarks: np.ndarray, rigid_box: list[float]) -> np.ndarray:
    """float32 [4] face box placed and sized by the brows, nose and eyes only (`RIGID_POINTS`): centroid c and RMS
    radius r of those points, box = c + r x rigid_box. The bounds box follows the chin, so its size tracks the mouth
    opening (r 0.4-0.8 with dlib's inner-lip opening on GRID s1); a crop from it would tell the generator the mouth
    opening through the scale of the upper face it is given, and a dub would copy the original mouth."""
    pts = landmarks[RIGID_POINTS].astype(np.float64)
    c = pts.mean(axis=0)
    r = float(np.sqrt(((pts - c) ** 2).sum(axis=1).mean()))
    left, top, right, bottom = rigid_box
    return np.array([c[0] + left * r, c[1] + top * r, c[0] + right * r, c[1] + bottom * r], np.float32)


def face_box(landmarks: np.ndarray, cfg: DlibConfig) -> np.ndarray:
    """float32 [4] face box of 68 landmarks under `cfg.box` (rigid | bounds)."""
    if cfg.box == "rigid":
        return rigid_landmark_box(landmarks, cfg.rigid_box)
    return landmark_box(landmarks, cfg.box_top)


def landmark_box(landmarks: np.ndarray, box_top: float) -> np.ndarray:
    """float32 [4] face box of 68 landmarks: their bounds, the top raised by box_top x their height (forehead), so the
    box covers about what S3FD's does (the detectors' own boxes differ: dlib's HOG box stops at the brows)."""
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    return np.array([x0, y0 - box_top * (y1 - y0), x1, y1], np.float32)


class DlibDetector:
    """dlib: HOG/MMOD boxes every `detect_every` frames, landmark tracking in between, 68 landmarks on every frame.

    State (the tracked face) carries across `detect` calls, so a clip must be fed in order, chunk after chunk; a call
    with start=0 starts a new clip."""

    name = "dlib"

    def __init__(self, cfg: DlibConfig | None = None, face_index: int = 0):
        self.cfg = cfg or DlibConfig()
        if self.cfg.detector not in ("hog", "mmod"):
            raise ValueError(f"dlib detector must be 'hog' or 'mmod', got {self.cfg.detector!r}")
        if self.cfg.box not in ("rigid", "bounds"):
            raise ValueError(f"dlib box must be 'rigid' or 'bounds', got {self.cfg.box!r}")
        if len(self.cfg.rigid_box) != 4:
            raise ValueError(f"dlib rigid_box must be [left, top, right, bottom], got {self.cfg.rigid_box}")
        if self.cfg.detect_every < 1:
            raise ValueError(f"dlib detect_every must be >= 1, got {self.cfg.detect_every}")
        check_dlib_available(self.cfg)
        import dlib

        self._dlib = dlib
        files = dlib_model_files(self.cfg)
        self.predictor = dlib.shape_predictor(str(files["landmarks"]))
        self.face_detector = (dlib.get_frontal_face_detector() if self.cfg.detector == "hog"
                              else dlib.cnn_face_detection_model_v1(str(files["mmod"])))
        self.face_index = face_index
        self._tracked: np.ndarray | None = None  # the last frame's landmarks [68, 2]
        self._since_detect = 0

    def _detect_boxes(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face boxes [m, 4] (frame pixels) and scores [m] of one full frame."""
        small, s = _shrink(frame, self.cfg.max_side)
        small = np.ascontiguousarray(small)
        if self.cfg.detector == "hog":
            rects, scores, _ = self.face_detector.run(small, self.cfg.upsample, 0.0)
        else:
            found = self.face_detector(small, self.cfg.upsample)
            rects, scores = [d.rect for d in found], [d.confidence for d in found]
        boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], np.float32).reshape(-1, 4)
        return boxes / s, np.asarray(scores, np.float32).reshape(-1)

    def _landmarks(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
        shape = self.predictor(frame, self._dlib.rectangle(x0, y0, x1, y1))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)

    def detect(self, frames: np.ndarray, start: int = 0) -> list[Detection | None]:
        if start == 0:
            self._tracked, self._since_detect = None, 0
        out: list[Detection | None] = []
        for frame in frames:
            frame = np.ascontiguousarray(frame)
            if self._tracked is None or self._since_detect >= self.cfg.detect_every:
                boxes, scores = self._detect_boxes(frame)
                k = pick_face(boxes, scores, self.face_index)
                if k is None:  # follow the face we had a little longer, looking again on every frame
                    if self._tracked is None or self._since_detect >= 2 * self.cfg.detect_every:
                        self._tracked = None
                        out.append(None)
                        continue
                    search = landmark_box(self._tracked, 0.0)
                else:
                    search, self._since_detect = boxes[k], 0
            else:  # tracking: the previous frame's landmarks say where the face is now
                search = landmark_box(self._tracked, 0.0)
            lm = self._landmarks(frame, search)
            self._tracked = lm
            self._since_detect += 1
            out.append(Detection(face_box(lm, self.cfg), 1.0, lm))
        return out


DETECTORS = ("fan", "dlib", "haar", "annotations")


def resolve_detector(name: str, cfg: DetectorConfig | None = None) -> str:
    """`auto` -> fan when its weights are cached, else dlib when installed with its models, else haar; other names
    are returned as they are."""
    if name != "auto":
        return name
    try:
        check_fan_available()
        return "fan"
    except FaceDetectorUnavailable:
        pass
    try:
        check_dlib_available((cfg or DetectorConfig()).dlib)
        return "dlib"
    except FaceDetectorUnavailable:
        return "haar"


def make_detector(name: str, cfg: DetectorConfig | None = None, sidecar: str | Path | dict | None = None):
    """Build a backend by name; `sidecar` is required for 'annotations'."""
    cfg = cfg or DetectorConfig()
    if name == "haar":
        return HaarDetector(cfg.haar, cfg.face_index)
    if name == "fan":
        return FanDetector(cfg.fan, cfg.face_index)
    if name == "dlib":
        return DlibDetector(cfg.dlib, cfg.face_index)
    if name == "annotations":
        if sidecar is None:
            raise ValueError("annotations detector needs the clip's sidecar")
        return AnnotationDetector(sidecar)
    raise ValueError(f"unknown face detector {name!r}; choose one of {DETECTORS} or auto")
