"""Per-video vertical alignment of the dub's face boxes to the geometry the generator was trained on.

    lines = anchor_lines(landmarks)                       # [T, 2] eye line, mouth-corner line (frame pixels)
    boxes, stretch = anchor_boxes(boxes, lines, cfg, frame_height)

The rigid face box (faces.detect.rigid_landmark_box) is placed by brows, eyes and nose only, so the mouth of a
person whose mouth sits higher or lower under the nose than the training speaker's lands elsewhere in the crop: on
GRID s1's crops the mouth-corner line lies at 0.687 of the crop side, on vrt_face_2 at about 0.64. A G_L trained on
one face paints its mouth where it learnt it, and the dub shows two mouths (the person's own, kept by the reference
blend, and a ghost lip line below it). Here the box of the whole video is stretched vertically, by one factor, so
that the video's median eye line and median mouth-corner line land at the training crops' (`eye_y`, `mouth_y`); the
crop is then resized to the square model input (a vertical stretch of a few per cent), and the generated face is
pasted back through the same box (unstretched). Medians over the whole video are constants, so nothing of the
per-frame mouth motion reaches the box (the lip-leak channel docs/real_faces.md describes). Ours, not the papers'.
"""

from __future__ import annotations

import dataclasses

import numpy as np

EYES = slice(36, 48)
MOUTH_CORNERS = [48, 54]  # the corners move less with the opening than the lips do


@dataclasses.dataclass
class AnchorConfig:
    enabled: bool = False  # measured: no gain on unseen faces (docs/dubbing.md); the ghost lip line has another cause
    eye_y: float = 0.321  # eye line (mean y of landmarks 36-47) in the generator's training crops, share of the side
    mouth_y: float = 0.691  # mouth-corner line (mean y of landmarks 48 and 54) there
    max_stretch: float = 1.25  # the box height changes by at most this factor (either way)
    min_frames: int = 5  # fewer frames with landmarks: boxes unchanged

    def __post_init__(self) -> None:
        if not 0 <= self.eye_y < self.mouth_y <= 1:
            raise ValueError(f"dub.anchor: need 0 <= eye_y < mouth_y <= 1, got {self.eye_y}, {self.mouth_y}")
        if self.max_stretch < 1:
            raise ValueError(f"dub.anchor.max_stretch must be >= 1, got {self.max_stretch}")


def anchor_lines(landmarks: np.ndarray | None) -> np.ndarray:
    """float32 [..., 2]: (eye line y, mouth-corner line y) of 68 landmarks [..., 68, 2] (NaN landmarks give NaN);
    NaN [2] for None (no landmarks)."""
    if landmarks is None:
        return np.full(2, np.nan, np.float32)
    lm = np.asarray(landmarks, np.float32)
    return np.stack([lm[..., EYES, 1].mean(axis=-1), lm[..., MOUTH_CORNERS, 1].mean(axis=-1)], axis=-1)


def anchor_boxes(boxes: np.ndarray, lines: np.ndarray, cfg: AnchorConfig, height: int) -> tuple[np.ndarray, float]:
    """Boxes float32 [T, 4] (NaN rows: no face) and lines [T, 2] (frame pixels, NaN: unknown) -> (boxes stretched
    vertically so that the medians of the lines land at cfg.eye_y / cfg.mouth_y of the box height, inside a frame of
    `height` rows; the stretch factor of the heights, 1.0 when unchanged)."""
    boxes = np.asarray(boxes, np.float32)
    lines = np.asarray(lines, np.float32)
    ok = np.isfinite(boxes).all(axis=1) & np.isfinite(lines).all(axis=1)
    if not cfg.enabled or ok.sum() < cfg.min_frames:
        return boxes, 1.0
    y0, h = boxes[:, 1], boxes[:, 3] - boxes[:, 1]
    eye = float(np.median((lines[ok, 0] - y0[ok]) / h[ok]))
    mouth = float(np.median((lines[ok, 1] - y0[ok]) / h[ok]))
    if not mouth > eye:
        return boxes, 1.0
    stretch = float(np.clip((mouth - eye) / (cfg.mouth_y - cfg.eye_y), 1 / cfg.max_stretch, cfg.max_stretch))
    out = boxes.copy()
    new_h = np.minimum(np.round(h * stretch), height)
    top = np.clip(np.round(y0 + eye * h - cfg.eye_y * new_h), 0, height - new_h)
    out[:, 1], out[:, 3] = top, top + new_h
    out[~np.isfinite(boxes).all(axis=1)] = np.nan
    return out, stretch


def training_lines(clips_dir, clip_ids: list[str] | None = None) -> tuple[float, float]:
    """(eye_y, mouth_y): medians over a clip store's clips of their median eye and mouth-corner lines, as shares of the
    crop side (data/clips/<id>/landmarks.npy, crop pixels): the `eye_y` / `mouth_y` a generator trained there expects."""
    from pathlib import Path

    root = Path(clips_dir)
    ids = clip_ids if clip_ids is not None else sorted(d.name for d in root.iterdir() if (d / "landmarks.npy").is_file())
    eyes, mouths = [], []
    for cid in ids:
        lm = np.load(root / cid / "landmarks.npy", mmap_mode="r")
        side = float(np.load(root / cid / "frames.npy", mmap_mode="r").shape[1])
        lines = anchor_lines(lm)
        lines = lines[np.isfinite(lines).all(axis=1)]
        if len(lines):
            eyes.append(np.median(lines[:, 0] + 0.5) / side)  # pixel centres (cv2.resize's convention)
            mouths.append(np.median(lines[:, 1] + 0.5) / side)
    if not eyes:
        raise ValueError(f"no clip with landmarks under {root}")
    return float(np.median(eyes)), float(np.median(mouths))
