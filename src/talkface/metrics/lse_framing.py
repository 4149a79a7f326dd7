"""The face framing LSE-C/LSE-D are scored on in the papers: syncnet_python's `run_pipeline.py` (METHOD.md §7).

Wav2Lip's LSE scripts, and with them P1 and P2, do not score the generator's tight crops. syncnet_python decodes the
video at 25 fps, writes every frame as a JPEG, detects faces on the full frames with S3FD, tracks them, and cuts one
224x224 window per frame (`crop_video`):

- per box: s = half the larger side, centre (x, y); each of s, x, y median-filtered over the track
  (`scipy.signal.medfilt`, kernel 13, zero-padded at the track ends);
- per frame, with bs = s and cs = crop_scale = 0.4: the frame is padded by bsi = int(bs*(1+2cs)) on every side with
  the value 110, the centre moves by bsi (my = y + bsi, mx = x + bsi), and the window is
  rows int(my-bs) : int(my+bs*(1+2cs)), columns int(mx-bs*(1+cs)) : int(mx+bs*(1+cs)) of the padded frame: a
  2.8*bs square from the top of the box down to 1.8*bs below its centre (chin and some neck), resized to 224x224
  (cv2.resize, bilinear).

Offline there is no S3FD here: `reference_framing` is given the boxes to use. In the evaluate stage those are the clip
store's crop boxes (data/clips/<id>/boxes.npy), which are not S3FD's: they are the crop stage's detector boxes with
`crop.pads` added (10 % below by default), made square and mean-smoothed over 5 frames. The window is therefore the
reference's arithmetic on a box about as large as the detector box plus its pad, not on S3FD's box of the same face.

The reference also passes the frames through lossy codecs (ffmpeg JPEGs at -qscale:v 2 before the crop, an XVID AVI
and ffmpeg JPEGs again after it) and reads them back with OpenCV as BGR. Here one OpenCV JPEG round trip of the full
frame before the crop stands in for all of that (`jpeg_quality`, OpenCV's default 95; encoded in BGR order, as OpenCV
writes it; computed on the part of the frame the window reads, `jpeg_window_area`, with the same pixels). Frames go
in and come out as RGB: the scorers (metrics/lse.py) flip to BGR themselves.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from scipy import signal

MEDIAN_KERNEL = 13
CROP_SCALE = 0.4
WINDOW_SIZE = 224
PAD_VALUE = 110
JPEG_QUALITY = 95  # cv2.IMWRITE_JPEG_QUALITY's default

REFERENCE_LABEL = "reference (clip boxes in place of S3FD)"
CROP_LABEL = "crop (the clip store's face crops as they are; not syncnet_python's framing)"


class SourceUnavailable(RuntimeError):
    """The source video of a clip cannot give the full frames the reference framing needs (the message says why)."""


def median_filter_boxes(boxes: np.ndarray, kernel: int = MEDIAN_KERNEL) -> np.ndarray:
    """float [T,4] (x0, y0, x1, y1) -> float64 [T,4]: the track smoothed as syncnet_python's `crop_video` does it.

    s = max(h, w) / 2 and the centre x, y are each filtered with scipy.signal.medfilt(kernel_size=kernel), which
    zero-pads both ends and so pulls the medians of the first and last (kernel-1)/2 frames down: an increasing track
    keeps its first frames, and its last (kernel-1)/2 frames take the value of frame T-1-(kernel-1)/2 (a decreasing
    track the other way round). The result is the square of side 2s around the filtered centre (`syncnet_window`
    reads back exactly s and the centre). A track shorter than the kernel (syncnet_python never has one: its tracks
    are at least 100 frames) is filtered with the largest odd kernel <= T instead, so no median is one of the zeros.
    """
    b = np.asarray(boxes, np.float64)
    if b.ndim != 2 or b.shape[1] != 4 or len(b) == 0:
        raise ValueError(f"expected boxes [T,4], got {b.shape}")
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"the median kernel must be a positive odd number, got {kernel}")
    k = min(kernel, len(b) if len(b) % 2 else len(b) - 1)
    s = np.maximum(b[:, 3] - b[:, 1], b[:, 2] - b[:, 0]) / 2
    x = (b[:, 0] + b[:, 2]) / 2
    y = (b[:, 1] + b[:, 3]) / 2
    s, x, y = (signal.medfilt(v, kernel_size=k) for v in (s, x, y))
    return np.stack([x - s, y - s, x + s, y + s], axis=1)


def window_bounds(box, crop_scale: float = CROP_SCALE) -> tuple[int, int, int, int, int]:
    """(bsi, row0, row1, col0, col1) of the window in the padded frame's pixels (module docstring)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    bs = max(y1 - y0, x1 - x0) / 2
    if not bs > 0:
        raise ValueError(f"empty box {[x0, y0, x1, y1]}")
    cs = crop_scale
    bsi = int(bs * (1 + 2 * cs))
    my, mx = (y0 + y1) / 2 + bsi, (x0 + x1) / 2 + bsi
    return bsi, int(my - bs), int(my + bs * (1 + 2 * cs)), int(mx - bs * (1 + cs)), int(mx + bs * (1 + cs))


def syncnet_window(frame: np.ndarray, box, crop_scale: float = CROP_SCALE, out_size: int = WINDOW_SIZE,
                   pad_value: int = PAD_VALUE) -> np.ndarray:
    """uint8 [H,W,3] frame and one box (x0, y0, x1, y1) -> uint8 [out_size, out_size, 3], the reference window.

    Same pixels as padding the frame by bsi with `pad_value` and slicing it, without copying the whole padded frame.
    Bounds past the padded frame are cut as numpy slicing cuts them in the reference."""
    frame = np.asarray(frame)
    h, w = frame.shape[:2]
    bsi, r0, r1, c0, c1 = window_bounds(box, crop_scale)
    r0, c0 = max(r0, 0), max(c0, 0)  # negative starts cannot occur for a box centre inside the frame
    r1, c1 = min(r1, h + 2 * bsi), min(c1, w + 2 * bsi)
    if r1 <= r0 or c1 <= c0:
        raise ValueError(f"empty window for box {np.asarray(box).tolist()} in a {w}x{h} frame")
    face = np.full((r1 - r0, c1 - c0, frame.shape[2]), pad_value, np.uint8)
    fr0, fr1 = max(r0 - bsi, 0), min(r1 - bsi, h)  # the part of the window that lies on the frame
    fc0, fc1 = max(c0 - bsi, 0), min(c1 - bsi, w)
    if fr1 > fr0 and fc1 > fc0:
        face[fr0 + bsi - r0:fr1 + bsi - r0, fc0 + bsi - c0:fc1 + bsi - c0] = frame[fr0:fr1, fc0:fc1]
    return cv2.resize(face, (out_size, out_size))  # cv2's default, bilinear, as the reference


def jpeg_round_trip(frame: np.ndarray, quality: int = JPEG_QUALITY) -> np.ndarray:
    """uint8 RGB [H,W,3] -> the same frame after an OpenCV JPEG encode / decode (encoded as BGR, as OpenCV writes)."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


def jpeg_window_area(frame: np.ndarray, box, crop_scale: float = CROP_SCALE, quality: int = JPEG_QUALITY,
                     inplace: bool = False) -> np.ndarray:
    """`frame` as a full-frame JPEG round trip leaves it, in the part the window of `box` reads; elsewhere unchanged.

    Only the window's part of the frame, widened to the 16-px block grid plus one block on each side (cut at the
    frame's edges), is encoded: with OpenCV's 4:2:0 JPEG (16x16 blocks, chroma upsampling that reads one neighbouring
    sample) that gives the same pixels inside it as encoding the whole frame (tests/test_lse_framing.py checks it),
    at the cost of the window rather than of the whole frame."""
    h, w = frame.shape[:2]
    bsi, r0, r1, c0, c1 = window_bounds(box, crop_scale)
    fr0, fr1, fc0, fc1 = max(r0 - bsi, 0), min(r1 - bsi, h), max(c0 - bsi, 0), min(c1 - bsi, w)
    out = frame if inplace else np.array(frame, copy=True)
    if fr1 <= fr0 or fc1 <= fc0:  # the window lies in the padding only
        return out
    a0, a1 = max(fr0 // 16 * 16 - 16, 0), min(-(-fr1 // 16) * 16 + 16, h)
    b0, b1 = max(fc0 // 16 * 16 - 16, 0), min(-(-fc1 // 16) * 16 + 16, w)
    out[a0:a1, b0:b1] = jpeg_round_trip(out[a0:a1, b0:b1], quality)
    return out


def reference_framing(full_frames: np.ndarray, boxes: np.ndarray, kernel: int = MEDIAN_KERNEL,
                      crop_scale: float = CROP_SCALE, out_size: int = WINDOW_SIZE, pad_value: int = PAD_VALUE,
                      jpeg: bool = True, jpeg_quality: int = JPEG_QUALITY) -> np.ndarray:
    """uint8 RGB [T,H,W,3] full frames and their face boxes [T,4] -> uint8 RGB [T,out_size,out_size,3] windows:
    the boxes median-filtered over the whole track, each frame (JPEG round trip first when `jpeg`) cut the reference
    way. For a long video, `median_filter_boxes` once and `frame_windows` per chunk give the same result."""
    if len(full_frames) != len(boxes):
        raise ValueError(f"{len(full_frames)} frames but {len(boxes)} boxes")
    return frame_windows(full_frames, median_filter_boxes(boxes, kernel), crop_scale, out_size, pad_value, jpeg,
                         jpeg_quality)


def frame_windows(full_frames, smoothed_boxes: np.ndarray, crop_scale: float = CROP_SCALE,
                  out_size: int = WINDOW_SIZE, pad_value: int = PAD_VALUE, jpeg: bool = True,
                  jpeg_quality: int = JPEG_QUALITY) -> np.ndarray:
    """The windows of frames whose boxes are already median-filtered -> uint8 [n,out_size,out_size,3]."""
    out = np.empty((len(smoothed_boxes), out_size, out_size, 3), np.uint8)
    for i, (frame, box) in enumerate(zip(full_frames, smoothed_boxes)):
        if jpeg:
            frame = jpeg_window_area(frame, box, crop_scale, jpeg_quality)
        out[i] = syncnet_window(frame, box, crop_scale, out_size, pad_value)
    return out


def clip_reference_windows(video: str | Path, fps: float, boxes: np.ndarray, crops: dict[str, np.ndarray],
                           kernel: int = MEDIAN_KERNEL, crop_scale: float = CROP_SCALE, out_size: int = WINDOW_SIZE,
                           pad_value: int = PAD_VALUE, jpeg: bool = True, jpeg_quality: int = JPEG_QUALITY,
                           source_size: tuple[int, int] | None = None,
                           chunk_frames: int = 32) -> dict[str, np.ndarray]:
    """Reference windows of several versions of one clip: {name: uint8 [T,S,S,3] crops} -> {name: uint8 RGB
    [T,out_size,out_size,3]}.

    The source is decoded at `fps` with media.decode.iter_frames, the decode the crop stage cut the clip from, so
    its first T frames are the clip's frames. Each version's crop t is pasted back into full frame t at boxes[t] with
    faces.crop.paste_back(region="full", feather=0): a hard paste of the whole crop, resized to the box as the
    dubbing path does, so the window sees the crop's pixels inside the box and the real frame around it, and every
    version (the ground truth too) goes through the same 96 px -> box -> window resampling. The windows are then cut
    around the median-filtered boxes. Frames are streamed in chunks: only the windows are kept.

    Raises SourceUnavailable when the video is missing, cannot be decoded, is not `source_size` (W, H), is shorter
    than the clip, or the boxes do not lie inside its frames.
    """
    from contextlib import closing

    from ..faces.crop import paste_back
    from ..media.decode import iter_frames
    from ..media.probe import MediaError

    boxes = np.asarray(boxes, np.float32)
    n = len(boxes)
    for name, c in crops.items():
        if len(c) != n:
            raise ValueError(f"{name}: {len(c)} crops for {n} boxes")
    video = Path(video)
    if not video.is_file():
        raise SourceUnavailable(f"no source video at {video}")
    smooth = median_filter_boxes(boxes, kernel)
    out = {name: np.empty((n, out_size, out_size, 3), np.uint8) for name in crops}
    t = 0
    try:
        with closing(iter_frames(video, fps=fps, chunk_frames=chunk_frames)) as chunks:  # stops ffmpeg on exit
            for chunk in chunks:
                if t == 0:
                    _check_source(video, chunk.shape[2], chunk.shape[1], boxes, source_size)
                for frame in chunk[:n - t]:
                    for name, c in crops.items():
                        full = paste_back(frame, c[t], boxes[t], feather=0.0, region="full")  # a copy
                        if jpeg:
                            jpeg_window_area(full, smooth[t], crop_scale, jpeg_quality, inplace=True)
                        out[name][t] = syncnet_window(full, smooth[t], crop_scale, out_size, pad_value)
                    t += 1
                if t >= n:
                    break
    except MediaError as e:
        raise SourceUnavailable(f"cannot decode {video}: {e}") from None
    if t < n:
        raise SourceUnavailable(f"{video} gave {t} frames at {fps:g} fps, the clip has {n}")
    return out


def _check_source(video: Path, w: int, h: int, boxes: np.ndarray, source_size) -> None:
    if source_size is not None and (w, h) != tuple(source_size):
        raise SourceUnavailable(f"{video} decodes to {w}x{h}, the clip was cut from {source_size[0]}x{source_size[1]}")
    if (boxes[:, :2] < 0).any() or (boxes[:, 2] > w).any() or (boxes[:, 3] > h).any():
        raise SourceUnavailable(f"the clip's boxes do not lie inside the {w}x{h} frames of {video}")


def framing_label(framing: str, n_fallback: int, n_clips: int) -> str:
    """What eval.json says scored the LSE rows: `framing` asked for, `n_fallback` of `n_clips` clips fell back."""
    if framing == "crop":
        return CROP_LABEL
    if n_fallback == 0:
        return REFERENCE_LABEL
    if n_fallback >= n_clips:
        return f"{CROP_LABEL}: fallback, no clip's source video could be used (see lse_framing_fallbacks)"
    return (f"mixed: {REFERENCE_LABEL} for {n_clips - n_fallback} clips, crop for {n_fallback} "
            f"(see lse_framing_fallbacks)")
