"""Parametric 2D talking faces: identities, visemes from phonemes, head motion, blinks, 68 iBUG landmarks.

Everything is built in a face-centred canonical frame (unit = face half-width, y down) and mapped to pixels by one
similarity transform per frame (head translation, rotation, scale), so the landmarks are exactly the points the
shapes are drawn through.

    ident = random_identity(rng)
    tracks = viseme_tracks(phonemes, n_frames, fps=25)              # MouthTracks: open/spread/round [T] each
    poses = head_motion(rng, n_frames, fps, frame_size, ...)        # [T, 4] (cx, cy, angle rad, scale)
    blinks = blink_track(rng, n_frames, fps, rate_hz)               # [T] eyelid closure 0..1
    background = render_background(ident, frame_size=160)          # uint8 [160, 160, 3], static per identity
    frame, lm68, box = render_frame(ident, background, poses[t], (o, s, r), blinks[t])
"""

from __future__ import annotations

import dataclasses
import functools
import math

import cv2
import numpy as np
from scipy.ndimage import gaussian_filter1d

# ---------------------------------------------------------------------------------------------------------- visemes
# Viseme targets (open 0..1, spread -1..1 (negative = narrow), round 0..1) for espeak-ng English mnemonics, after
# stress marks and variant suffixes are stripped. Bilabials are closed; f/v rest the lip on the teeth.
BILABIALS = frozenset({"p", "b", "m"})
_VISEMES: dict[str, tuple[float, float, float]] = {
    "p": (0.0, 0.0, 0.0), "b": (0.0, 0.0, 0.0), "m": (0.0, 0.0, 0.0),
    "f": (0.08, 0.1, 0.0), "v": (0.08, 0.1, 0.0),
    "T": (0.22, 0.1, 0.0), "D": (0.22, 0.1, 0.0),
    "t": (0.2, 0.2, 0.0), "d": (0.2, 0.2, 0.0), "n": (0.2, 0.15, 0.0), "l": (0.28, 0.1, 0.0),
    "s": (0.12, 0.35, 0.0), "z": (0.12, 0.35, 0.0),
    "S": (0.18, -0.3, 0.6), "Z": (0.18, -0.3, 0.6), "tS": (0.18, -0.3, 0.6), "dZ": (0.18, -0.3, 0.6),
    "k": (0.3, 0.0, 0.0), "g": (0.3, 0.0, 0.0), "N": (0.25, 0.0, 0.0), "h": (0.35, 0.0, 0.0), "x": (0.3, 0.0, 0.0),
    "r": (0.22, -0.2, 0.5), "w": (0.1, -0.5, 1.0), "j": (0.2, 0.3, 0.0), ";": (0.3, 0.1, 0.0), "?": (0.1, 0.0, 0.0),
    "a": (0.95, 0.1, 0.0), "A:": (1.0, 0.0, 0.0), "A@": (0.9, 0.0, 0.1), "aI": (0.9, 0.2, 0.0), "aU": (0.9, 0.0, 0.3),
    "V": (0.6, 0.0, 0.0), "@": (0.45, 0.0, 0.0), "3": (0.45, 0.0, 0.3), "3:": (0.45, 0.0, 0.3), "@L": (0.35, 0.0, 0.0),
    "E": (0.65, 0.3, 0.0), "e": (0.6, 0.3, 0.0), "e@": (0.65, 0.2, 0.0), "eI": (0.55, 0.4, 0.0),
    "I": (0.35, 0.5, 0.0), "i": (0.3, 0.6, 0.0), "i:": (0.3, 0.7, 0.0), "i@": (0.35, 0.5, 0.0),
    "0": (0.75, -0.3, 0.6), "O": (0.7, -0.3, 0.7), "O:": (0.7, -0.4, 0.8), "O@": (0.7, -0.3, 0.7),
    "OI": (0.7, -0.2, 0.6), "oU": (0.6, -0.4, 0.8), "o@": (0.6, -0.3, 0.7),
    "U": (0.35, -0.5, 0.9), "u:": (0.3, -0.6, 1.0), "U@": (0.35, -0.5, 0.8),
}
_SILENCE = (0.0, 0.0, 0.0)
_VOWEL_FALLBACK = (0.5, 0.0, 0.0)
_CONSONANT_FALLBACK = (0.2, 0.0, 0.0)


def viseme(phoneme: str) -> tuple[float, float, float]:
    """(open, spread, round) target of an espeak-ng mnemonic ("'eI", "t#", "aI2", "r-" are all understood)."""
    name = phoneme.lstrip("',%=")
    if name in _VISEMES:
        return _VISEMES[name]
    base = name.rstrip("#-[/0123456789")
    if base in _VISEMES:
        return _VISEMES[base]
    if base[:1] and base[:1] in "aAeEiIoOuUV@03":
        return _VOWEL_FALLBACK
    return _CONSONANT_FALLBACK


@dataclasses.dataclass
class MouthTracks:
    open: np.ndarray  # [T] 0..1, the value drawn (and written as sidecar mouth_open)
    spread: np.ndarray  # [T] -1..1
    round: np.ndarray  # [T] 0..1


def viseme_tracks(phonemes, n_frames: int, fps: float, sigma_frames: float = 1.0, subsamples: int = 4,
                  anticipation_frames: int = 1, lead: float = 0.0) -> MouthTracks:
    """Per-frame mouth parameters from phoneme intervals (objects with .phoneme/.start/.end or dicts).

    Each frame averages the viseme targets at `subsamples` instants inside it; a Gaussian of `sigma_frames` then blends
    neighbouring visemes (coarticulation). Lips are forced shut on every bilabial (at least its nearest frame), and in
    silence farther than `anticipation_frames` from speech. `lead` (seconds) moves the mouth earlier than the sound:
    articulation precedes the acoustic event, and espeak-ng's vowel energy peaks early in each phoneme.
    """
    items = [(p["phoneme"], p["start"] - lead, p["end"] - lead) if isinstance(p, dict)
             else (p.phoneme, p.start - lead, p.end - lead) for p in phonemes]
    times = (np.arange(n_frames * subsamples) + 0.5) / (subsamples * fps)
    targets = np.tile(np.array(_SILENCE, np.float64), (len(times), 1))
    speaking = np.zeros(len(times), bool)
    for name, start, end in items:
        sel = (times >= start) & (times < end)
        targets[sel] = viseme(name)
        speaking[sel] = True
    per_frame = targets.reshape(n_frames, subsamples, 3).mean(1)
    active = speaking.reshape(n_frames, subsamples).any(1)
    if sigma_frames > 0:
        per_frame = gaussian_filter1d(per_frame, sigma_frames, axis=0, mode="nearest")
    # silence: closed unless next to speech (anticipation / release)
    near = active.copy()
    for k in range(1, anticipation_frames + 1):
        near[k:] |= active[:-k]
        near[:-k] |= active[k:]
    per_frame[~near] = 0.0
    openness = per_frame[:, 0].copy()
    for name, start, end in items:
        if name.lstrip("',%=") in BILABIALS:
            centres = (np.arange(n_frames) + 0.5) / fps
            shut = (centres >= start) & (centres < end)
            mid = int(min(n_frames - 1, max(0, math.floor((start + end) / 2 * fps))))
            shut[mid] = True
            openness[shut] = 0.0
    return MouthTracks(np.clip(openness, 0.0, 1.0), np.clip(per_frame[:, 1], -1, 1), np.clip(per_frame[:, 2], 0, 1))


# ------------------------------------------------------------------------------------------------------- identities
SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 125), (198, 134, 90), (160, 100, 65), (110, 70, 45))
IRIS_COLOURS = ((90, 55, 30), (60, 110, 170), (70, 120, 70), (130, 100, 50), (110, 120, 130), (40, 30, 25))
HAIR_COLOURS = ((25, 20, 20), (70, 45, 30), (120, 80, 45), (215, 180, 110), (165, 70, 35), (160, 160, 160))
N_HAIR_STYLES = 5  # short, long, bald, fringe, voluminous
N_BACKGROUNDS = 5  # solid, stripes, gradient, checker, dots


@dataclasses.dataclass(frozen=True)
class Identity:
    """Everything that makes one synthetic person look like themselves (canonical units: face half-width = 1)."""

    face_px: float  # face half-width in pixels at scale 1, as a fraction of the frame size
    jaw_height: float  # jaw-top to chin
    jaw_square: float  # superellipse exponent of the jaw (2 = round, 3+ = square)
    forehead: float  # height of the skull above the jaw top
    skin: tuple[int, int, int]
    eye_x: float
    eye_y: float
    eye_w: float
    eye_h: float
    iris: tuple[int, int, int]
    brow_gap: float
    brow_thick: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_up: float
    lip_low: float
    lip: tuple[int, int, int]
    hair: tuple[int, int, int]
    hair_style: int
    shirt: tuple[int, int, int]
    bg: tuple[int, int, int]
    bg2: tuple[int, int, int]
    bg_pattern: int
    bg_period: float  # pattern period as a fraction of the frame size


def _hsv_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    hsv = np.array([[[h * 179, s * 255, v * 255]]], np.uint8)
    return tuple(int(c) for c in cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0])


def random_identity(rng: np.random.Generator) -> Identity:
    u = rng.uniform
    tone = int(rng.integers(len(SKIN_TONES)))
    skin = np.clip(np.array(SKIN_TONES[tone]) * u(0.93, 1.05, 3), 0, 255)
    lip = np.clip(skin * np.array([0.85, 0.55, 0.55]) + np.array([25, 0, 5]), 0, 255)
    hue = u(0, 1)
    return Identity(
        face_px=u(0.2, 0.25), jaw_height=u(1.15, 1.4), jaw_square=u(2.0, 3.2), forehead=u(0.95, 1.25),
        skin=tuple(int(c) for c in skin),
        eye_x=u(0.36, 0.44), eye_y=u(-0.3, -0.18), eye_w=u(0.16, 0.22), eye_h=u(0.07, 0.12),
        iris=IRIS_COLOURS[int(rng.integers(len(IRIS_COLOURS)))],
        brow_gap=u(0.14, 0.24), brow_thick=u(0.04, 0.08), nose_len=u(0.45, 0.6), nose_w=u(0.13, 0.2),
        mouth_y=u(0.58, 0.7), mouth_w=u(0.28, 0.38), lip_up=u(0.05, 0.08), lip_low=u(0.07, 0.11),
        lip=tuple(int(c) for c in lip),
        hair=HAIR_COLOURS[int(rng.integers(len(HAIR_COLOURS)))], hair_style=int(rng.integers(N_HAIR_STYLES)),
        shirt=_hsv_rgb(u(0, 1), u(0.3, 0.9), u(0.3, 0.9)),
        bg=_hsv_rgb(hue, u(0.1, 0.6), u(0.45, 0.95)), bg2=_hsv_rgb((hue + u(0.2, 0.8)) % 1, u(0.1, 0.6), u(0.35, 0.9)),
        bg_pattern=int(rng.integers(N_BACKGROUNDS)), bg_period=u(0.08, 0.25),
    )


def render_background(ident: Identity, frame_size: int) -> np.ndarray:
    """uint8 [H, W, 3] static backdrop of an identity."""
    s = frame_size
    img = np.empty((s, s, 3), np.uint8)
    img[:] = ident.bg
    period = max(2, int(round(ident.bg_period * s)))
    yy, xx = np.mgrid[0:s, 0:s]
    c1, c2 = np.array(ident.bg, np.float32), np.array(ident.bg2, np.float32)
    if ident.bg_pattern == 1:  # vertical stripes
        img[(xx // period) % 2 == 1] = ident.bg2
    elif ident.bg_pattern == 2:  # vertical gradient
        a = (yy / max(1, s - 1))[..., None]
        img[:] = np.round(c1 * (1 - a) + c2 * a).astype(np.uint8)
    elif ident.bg_pattern == 3:  # checker
        img[((xx // period) + (yy // period)) % 2 == 1] = ident.bg2
    elif ident.bg_pattern == 4:  # dots
        r = max(1, period // 4)
        for cy in range(period // 2, s, period):
            for cx in range(period // 2, s, period):
                cv2.circle(img, (cx, cy), r, ident.bg2, -1, cv2.LINE_AA)
    return img


# --------------------------------------------------------------------------------------------------- head and eyes
def _smooth_noise(rng: np.random.Generator, t: np.ndarray, freqs=(0.1, 0.5), n: int = 3) -> np.ndarray:
    """Sum of n slow sinusoids with random frequency/phase, normalised to peak 1 over the clip."""
    out = np.zeros_like(t)
    for _ in range(n):
        out += rng.uniform(0.5, 1.0) * np.sin(2 * np.pi * rng.uniform(*freqs) * t + rng.uniform(0, 2 * np.pi))
    return out / max(1e-6, float(np.abs(out).max()))


def head_motion(rng: np.random.Generator, n_frames: int, fps: float, frame_size: int, translate: float = 0.04,
                rotate_deg: float = 4.0, scale: float = 0.04, centre_jitter: float = 0.03) -> np.ndarray:
    """[T, 4] per-frame pose (cx px, cy px, angle rad, scale) = slow random head motion.

    translate / centre_jitter are fractions of the frame size, scale a relative amplitude around 1."""
    t = np.arange(n_frames) / fps
    s = frame_size
    cx = s * (0.5 + rng.uniform(-centre_jitter, centre_jitter) + translate * _smooth_noise(rng, t))
    cy = s * (0.46 + rng.uniform(-centre_jitter, centre_jitter) + translate * _smooth_noise(rng, t))
    ang = np.deg2rad(rotate_deg) * _smooth_noise(rng, t)
    sc = 1.0 + scale * _smooth_noise(rng, t)
    return np.stack([cx, cy, ang, sc], 1)


def blink_track(rng: np.random.Generator, n_frames: int, fps: float, rate_hz: float = 0.3) -> np.ndarray:
    """[T] eyelid closure 0..1: blinks at Poisson times, each a ~4-frame close/open profile (at 25 fps)."""
    closure = np.zeros(n_frames)
    profile = np.array([0.5, 1.0, 0.7, 0.3])
    t = rng.exponential(1 / rate_hz) if rate_hz > 0 else math.inf
    while t * fps < n_frames:
        f0 = int(t * fps)
        for k, c in enumerate(profile):
            if f0 + k < n_frames:
                closure[f0 + k] = max(closure[f0 + k], c)
        t += 0.4 + rng.exponential(1 / rate_hz)  # refractory 0.4 s between blinks
    return closure


# ------------------------------------------------------------------------------------------------------ geometry
def _arc(cx, cy, rx, ry, t0, t1, n):
    t = np.linspace(t0, t1, n)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)


def _superellipse(a, b, y0, exponent, t):
    """Jaw curve: t = pi (left ear) .. pi/2 (chin) .. 0 (right ear); y grows downward from y0."""
    c, s = np.cos(t), np.sin(t)
    e = 2.0 / exponent
    return np.stack([a * np.sign(c) * np.abs(c) ** e, y0 + b * np.sign(s) * np.abs(s) ** e], 1)


@dataclasses.dataclass
class _Mouth:
    """Lip curves for one frame (canonical): x -> y of the 4 lip contours."""

    cy: float
    hw: float  # outer half-width
    hw_in: float
    gap: float
    p: float  # opening profile exponent
    up: float  # upper lip thickness
    low: float

    def _prof(self, x, half):
        return np.clip(1 - (x / half) ** 2, 0, 1) ** self.p

    def upper_inner(self, x):
        return self.cy - 0.25 * self.gap * self._prof(x, self.hw_in)

    def lower_inner(self, x):
        return self.cy + 0.75 * self.gap * self._prof(x, self.hw_in)

    def upper_outer(self, x):
        bow = 1 - 0.3 * np.exp(-(x / (0.18 * self.hw)) ** 2)  # cupid's bow dip at the centre
        lip = self.up * np.sqrt(np.clip(1 - (x / self.hw) ** 2, 0, 1)) * bow
        return self.cy - 0.25 * self.gap * self._prof(x, self.hw) - lip

    def lower_outer(self, x):
        lip = self.low * np.sqrt(np.clip(1 - (x / self.hw) ** 2, 0, 1))
        return self.cy + 0.75 * self.gap * self._prof(x, self.hw) + lip


MAX_GAP = 0.36  # inner-mouth height at open = 1, in face half-widths
JAW_DROP = 0.6  # fraction of the lower-lip drop that the chin follows
_LIP_X = np.linspace(-1, 1, 25)  # lip contour samples, in mouth half-widths
_EYE_T = np.linspace(-1, 1, 17)  # eyelid samples, in eye half-widths
_JAW_T = np.linspace(np.pi, 0, 33)  # head outline: jaw samples (landmarks use every 2nd)


def _mouth(ident: Identity, open_: float, spread: float, round_: float) -> _Mouth:
    hw = ident.mouth_w * (1 + 0.18 * spread - 0.3 * round_)
    return _Mouth(cy=ident.mouth_y, hw=hw, hw_in=0.9 * hw, gap=MAX_GAP * open_, p=0.9 - 0.45 * round_,
                  up=ident.lip_up * (1 + 0.3 * round_), low=ident.lip_low * (1 + 0.3 * round_))


def _jaw_drop(m: _Mouth) -> float:
    return 0.75 * m.gap * JAW_DROP


def _eyelids(ident: Identity, blink: float, u: np.ndarray):
    """Eyelid offsets from the eye centre's y at relative positions u in [-1, 1]: (upper [n], lower [n])."""
    low_h = 0.55 * ident.eye_h
    up_h = ident.eye_h * (1 - blink) - low_h * 0.9 * blink  # the lid travels down to just above the lower lid
    prof = np.clip(1 - u ** 2, 0, 1) ** 0.8
    return -up_h * prof, low_h * prof


@functools.lru_cache(maxsize=64)
def _static(ident: Identity) -> dict:
    """Canonical shapes of an identity that do not move with the mouth or the eyelids (computed once)."""
    y0 = ident.eye_y + 0.05  # jaw top (ear level)
    chin = y0 + ident.jaw_height
    g = {"y0": y0, "chin": chin}
    if ident.hair_style == 1:  # long: a curtain behind the head down to the shoulders
        g["hair_back"] = np.concatenate([_arc(0, y0, 1.2, ident.forehead * 1.15, np.pi, 2 * np.pi, 24),
                                         [[1.25, chin + 0.7], [-1.25, chin + 0.7]]])
    elif ident.hair_style == 4:  # voluminous
        g["hair_back"] = _arc(0, y0 - 0.15, 1.4, ident.forehead * 1.45, 0, 2 * np.pi, 40)
    g["neck"] = np.array([[-0.45, chin - 0.5], [0.45, chin - 0.5], [0.5, chin + 1.2], [-0.5, chin + 1.2]])
    g["shirt"] = np.concatenate([_arc(0, chin + 1.25, 2.0, 0.75, np.pi, 2 * np.pi, 24),
                                 [[2.0, chin + 4], [-2.0, chin + 4]]])
    g["ears"] = [_arc(side * 0.97, y0 + 0.12, 0.11, 0.2, 0, 2 * np.pi, 16) for side in (-1, 1)]
    g["jaw"] = _superellipse(0.97, ident.jaw_height, y0, ident.jaw_square, _JAW_T)
    g["jaw_w"] = np.sin(_JAW_T) ** 2  # how much of the jaw drop each point follows (all at the chin)
    g["skull"] = _arc(0, y0, 0.97, ident.forehead, 0, -np.pi, 25)[1:-1]  # right ear -> top -> left ear
    if ident.hair_style in (0, 1, 3, 4):
        hairline = {0: 0.6, 1: 0.55, 3: 0.25, 4: 0.55}[ident.hair_style]
        inner_t = np.linspace(-np.pi, 0, 25)
        inner = np.stack([0.97 * np.cos(inner_t), y0 - 0.08 + ident.forehead * hairline * np.sin(inner_t)], 1)
        g["hair_top"] = np.concatenate([_arc(0, y0, 1.04, ident.forehead * 1.08, 0.15, -np.pi - 0.15, 25), inner])
    lm = np.zeros((68, 2))
    # brows 17..21 (image left, outer -> inner) and 22..26 (image right, inner -> outer): left to right in the image
    for k, side in ((17, -1), (22, 1)):
        span = np.linspace(-1.2, 1.0, 5) if side < 0 else np.linspace(-1.0, 1.2, 5)
        xs = side * ident.eye_x + ident.eye_w * span
        lm[k:k + 5] = np.stack([xs, ident.eye_y - ident.eye_h - ident.brow_gap - 0.06 * (1 - (span / 1.2) ** 2)], 1)
    # nose bridge 27..30 and base 31..35
    tip = ident.eye_y + ident.nose_len
    lm[27:31] = np.stack([np.zeros(4), np.linspace(ident.eye_y, tip, 4)], 1)
    nx = np.linspace(-ident.nose_w, ident.nose_w, 5)
    lm[31:36] = np.stack([nx, tip + 0.06 - 0.04 * (nx / ident.nose_w) ** 2], 1)
    g["lm"] = lm
    g["bridge"] = lm[[27, 28, 29, 30]] + [0.04, 0]
    g["nostrils"] = [_arc(lm[k, 0], lm[k, 1] - 0.02, 0.045, 0.025, 0, 2 * np.pi, 10) for k in (32, 34)]
    r = 0.85 * ident.eye_h
    g["eyes"] = [(side * ident.eye_x,
                  _arc(side * ident.eye_x, ident.eye_y, 2 * ident.eye_w, 2 * ident.eye_w, 0, 2 * np.pi, 8),
                  _arc(side * ident.eye_x, ident.eye_y, r, r, 0, 2 * np.pi, 20),
                  _arc(side * ident.eye_x, ident.eye_y, 0.45 * r, 0.45 * r, 0, 2 * np.pi, 16)) for side in (-1, 1)]
    for v in g.values():  # shared between calls: keep it read-only
        if isinstance(v, np.ndarray):
            v.setflags(write=False)
    return g


_LM_EYE_U = np.array([-1, -1 / 3, 1 / 3, 1, 1 / 3, -1 / 3])  # 36..41 / 42..47: corner, 2 upper, corner, 2 lower
_LM_OUTER_X = np.array([-1, -0.6, -0.3, 0, 0.3, 0.6, 1, 0.6, 0.3, 0, -0.3, -0.6])  # 48..59, of the half-width
_LM_INNER_X = np.array([-1, -0.45, 0, 0.45, 1, 0.45, 0, -0.45])  # 60..67, of the inner half-width


def canonical_landmarks(ident: Identity, mouth: tuple[float, float, float], blink: float) -> np.ndarray:
    """[68, 2] iBUG landmarks in canonical units for mouth = (open, spread, round) and eyelid closure `blink`."""
    g = _static(ident)
    lm = g["lm"].copy()
    m = _mouth(ident, *mouth)
    # jaw 0..16, image-left ear over the chin to the image-right ear; the chin drops with the lower lip
    lm[0:17] = g["jaw"][::2]
    lm[0:17, 1] += _jaw_drop(m) * g["jaw_w"][::2]
    # eyes 36..41 (image left: outer corner first), 42..47 (image right: inner corner first)
    up, low = _eyelids(ident, blink, _LM_EYE_U)
    for k, side in ((36, -1), (42, 1)):
        lm[k:k + 6, 0] = side * ident.eye_x + ident.eye_w * _LM_EYE_U
        lm[k:k + 6, 1] = ident.eye_y + np.concatenate([up[:4], low[4:]])
    # outer lips 48..59 (left corner, upper lip left -> right, right corner, lower lip right -> left), inner 60..67
    xo = m.hw * _LM_OUTER_X
    lm[48:60, 0] = xo
    lm[48:60, 1] = np.concatenate([m.upper_outer(xo[:7]), m.lower_outer(xo[7:])])
    xi = m.hw_in * _LM_INNER_X
    lm[60:68, 0] = xi
    lm[60:68, 1] = np.concatenate([m.upper_inner(xi[:5]), m.lower_inner(xi[5:])])
    return lm


# ------------------------------------------------------------------------------------------------------ rendering
def _affine(pose: np.ndarray, unit: float) -> tuple[np.ndarray, np.ndarray]:
    """Canonical -> pixel map of one frame as (A [2, 2], b [2]): px = pts @ A.T + b."""
    cx, cy, ang, sc = pose
    k = unit * sc
    c, s = math.cos(ang) * k, math.sin(ang) * k
    return np.array([[c, -s], [s, c]]), np.array([cx, cy])


def _fill(img, pts_px, colour):
    cv2.fillPoly(img, [np.round(pts_px * 16).astype(np.int32)], colour, cv2.LINE_AA, shift=4)


def _line(img, pts_px, colour, thickness):
    cv2.polylines(img, [np.round(pts_px * 16).astype(np.int32)], False, colour, max(1, int(round(thickness))),
                  cv2.LINE_AA, shift=4)


def _clipped(img, clip_px, draw):
    """Run draw(layer, offset) on a copy of the clip polygon's bounding box and blend it in through the polygon."""
    h, w = img.shape[:2]
    x0, y0 = np.floor(clip_px.min(0)).astype(int) - 1
    x1, y1 = np.ceil(clip_px.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        return
    roi = img[y0:y1, x0:x1]
    layer = roi.copy()
    off = np.array([x0, y0], np.float64)
    draw(layer, off)
    mask = np.zeros(roi.shape[:2], np.uint8)
    _fill(mask, clip_px - off, 255)
    a = mask[..., None].astype(np.float32) / 255.0
    roi[:] = np.round(roi * (1 - a) + layer * a).astype(np.uint8)


def _shade(colour, f):
    return tuple(int(min(255, max(0, c * f))) for c in colour)


def render_frame(ident: Identity, background: np.ndarray, pose: np.ndarray, mouth: tuple[float, float, float],
                 blink: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw one frame at pose (cx, cy, angle, scale) with mouth = (open, spread, round) and eyelid closure `blink`.

    Returns (frame uint8 [H, W, 3] RGB, landmarks float [68, 2] pixels, face box float [4] x0, y0, x1, y1)."""
    img = background.copy()
    size = img.shape[0]
    unit = ident.face_px * size
    A, b = _affine(pose, unit)
    P = lambda pts: np.asarray(pts, np.float64) @ A.T + b  # noqa: E731
    g = _static(ident)
    lm = canonical_landmarks(ident, mouth, blink)
    m = _mouth(ident, *mouth)
    skin, hair = ident.skin, ident.hair

    # behind the head: hair, neck, shirt, ears
    if "hair_back" in g:
        _fill(img, P(g["hair_back"]), hair)
    _fill(img, P(g["neck"]), _shade(skin, 0.82))
    _fill(img, P(g["shirt"]), ident.shirt)
    for ear in g["ears"]:
        _fill(img, P(ear), _shade(skin, 0.9))
    # the head: jaw (the chin follows the lower lip) closed by the skull arc; hair on top; brows
    jaw = g["jaw"].copy()
    jaw[:, 1] += _jaw_drop(m) * g["jaw_w"]
    _fill(img, P(np.concatenate([jaw, g["skull"]])), skin)
    if "hair_top" in g:
        _fill(img, P(g["hair_top"]), hair)
    brow = _shade(hair, 0.8)
    for k in (17, 22):
        _line(img, P(lm[k:k + 5]), brow, ident.brow_thick * unit * pose[3])
    # eyes: sclera, iris and pupil clipped to the lids, then the upper lid line
    up, low = _eyelids(ident, blink, _EYE_T)
    for cx, sclera, iris, pupil in g["eyes"]:
        xs = cx + ident.eye_w * _EYE_T
        upper = np.stack([xs, ident.eye_y + up], 1)
        if blink < 0.95:
            def draw_eye(layer, off, sclera=sclera, iris=iris, pupil=pupil):
                _fill(layer, P(sclera) - off, (245, 245, 240))
                _fill(layer, P(iris) - off, ident.iris)
                _fill(layer, P(pupil) - off, (15, 15, 15))
            lower = np.stack([xs[::-1], ident.eye_y + low[::-1]], 1)
            _clipped(img, P(np.concatenate([upper, lower])), draw_eye)
        _line(img, P(upper), _shade(skin, 0.35), max(1.0, 0.025 * unit))
    # nose: bridge shading and nostrils
    _line(img, P(g["bridge"]), _shade(skin, 0.8), max(1.0, 0.02 * unit))
    for nostril in g["nostrils"]:
        _fill(img, P(nostril), _shade(skin, 0.45))
    # mouth: lips, then the inner mouth (dark, teeth, tongue) clipped to the inner contour
    xs = m.hw * _LIP_X
    _fill(img, P(np.concatenate([np.stack([xs, m.upper_outer(xs)], 1),
                                 np.stack([xs[::-1], m.lower_outer(xs[::-1])], 1)])), ident.lip)
    xi = m.hw_in * _LIP_X
    top = np.stack([xi, m.upper_inner(xi)], 1)
    if m.gap * unit * pose[3] > 0.6:  # less than ~half a pixel open: a lip line only
        inner = np.concatenate([top, np.stack([xi[::-1], m.lower_inner(xi[::-1])], 1)])

        def draw_inside(layer, off):
            layer[:] = (45, 12, 18)
            _fill(layer, P(np.concatenate([top - [0, 0.05], (top + [0, 0.07])[::-1]])) - off, (235, 232, 220))
            bot = np.stack([xi * 0.8, m.lower_inner(xi * 0.8)], 1)
            _fill(layer, P(np.concatenate([bot + [0, 0.05], (bot - [0, 0.045])[::-1]])) - off, (215, 212, 200))
            _fill(layer, P(_arc(0, m.cy + 0.75 * m.gap + 0.03, 0.6 * m.hw_in, 0.12, 0, 2 * np.pi, 16)) - off,
                  (170, 60, 70))
        _clipped(img, P(inner), draw_inside)
    _line(img, P(top), _shade(ident.lip, 0.55), max(1.0, 0.02 * unit))

    lm_px = P(lm)
    # face box: the landmarks' extent, raised to cover the forehead, inside the frame
    x0, ya = lm_px.min(0)
    x1, yb = lm_px.max(0)
    box = np.array([max(0.0, x0), max(0.0, ya - 0.3 * (yb - ya)), min(size - 1.0, x1), min(size - 1.0, yb)])
    return img, lm_px, box
