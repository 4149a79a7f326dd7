"""Writing for the evaluate stage: overall numbers per group, eval.json, the per-clip and per-frame CSVs, the LSE
distance curves and the sample grid. Every path comes from the caller (`EvaluateOutputs`)."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..metrics import NotAvailable
from .score import GROUPS, LSE_OFFICIAL_KEYS, METRIC_KEYS, PER_CLIP_KEYS


@dataclasses.dataclass
class EvaluateOutputs:
    """Where the evaluate stage writes (dvc.yaml's outs of the stage)."""

    eval_json: Path         # overall numbers per group + run information
    per_clip_csv: Path      # clip_id, group, n_frames, every per-clip metric
    frames_csv: Path        # clip_id, group, frame, ssim, psnr (model and floor)
    lse_curves_csv: Path    # scorer, group, offset, mean_dist
    samples_png: Path       # a grid of sample frames
    videos_dir: Path | None  # <clip>.mp4 of the generated frames with the clip's audio; None = none written


def summarize(values: list, what: str) -> float | str:
    """Mean of the numeric per-clip values; "not available: ..." when there is none (the first reason given)."""
    nums = [float(v) for v in values if not isinstance(v, NotAvailable) and v is not None and math.isfinite(v)]
    if nums:
        return float(np.mean(nums))
    reasons = [v.reason for v in values if isinstance(v, NotAvailable)]
    if reasons:
        return reasons[0]
    return f"{what} not available: no clip gave a finite value"


def as_json_value(v):
    if isinstance(v, NotAvailable):
        return v.reason if "not available" in v.reason else f"not available: {v.reason}"
    if isinstance(v, str):
        return v if "not available" in v else f"not available: {v}"
    return float(v)


def group_results(per_clip: dict[str, list[dict]], fid: dict[str, Any]) -> dict[str, dict]:
    """Overall numbers of each group: the mean over clips of each per-clip metric, FID as given per group."""
    result = {}
    for group in GROUPS:
        rows = per_clip[group]
        g = {key: as_json_value(summarize([r[key] for r in rows], key)) for key in PER_CLIP_KEYS}
        g["FID"] = as_json_value(fid[group])
        result[group] = {key: g[key] for key in METRIC_KEYS}
        result[group]["n_clips"] = len(rows)
    return result


def _cell(v) -> str:
    if isinstance(v, NotAvailable) or v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def tile_images(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile equal-size uint8 images [S,S,3]: rows of columns, white gaps -> uint8 [H,W,3]."""
    s = rows[0][0].shape[0]
    n_cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (s + gap) - gap, n_cols * (s + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            out[i * (s + gap):i * (s + gap) + s, j * (s + gap):j * (s + gap) + s] = img
    return out


def write_outputs(out: EvaluateOutputs, result: dict, per_clip: dict, frame_rows: list, curves: dict,
                  samples: list) -> None:
    for path in (out.eval_json, out.per_clip_csv, out.frames_csv, out.lse_curves_csv, out.samples_png):
        path.parent.mkdir(parents=True, exist_ok=True)
    out.eval_json.write_text(json.dumps(result, indent=2, allow_nan=False))
    with open(out.per_clip_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "group", "n_frames", *PER_CLIP_KEYS])
        for group in GROUPS:
            for r in per_clip[group]:
                w.writerow([r["clip_id"], group, r["n_frames"], *[_cell(r[k]) for k in PER_CLIP_KEYS]])
    with open(out.frames_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["clip_id", "group", "frame", "ssim", "psnr"])
        w.writerows([c, g, t, f"{s:.6g}", f"{p:.6g}"] for c, g, t, s, p in frame_rows)
    with open(out.lse_curves_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["scorer", "group", "offset", "mean_dist"])
        for (group, key), cs in sorted(curves.items()):
            mean = np.mean(np.stack(cs), axis=0)
            vshift = (len(mean) - 1) // 2
            scorer = "syncnet_v2" if key == LSE_OFFICIAL_KEYS[0] else "talkface-syncnet"
            # curve index j compares video v with audio v + j - vshift; syncnet_python's offset is vshift - j
            w.writerows([scorer, group, vshift - j, f"{d:.6g}"] for j, d in enumerate(mean))
    if samples:
        cv2.imwrite(str(out.samples_png), cv2.cvtColor(tile_images(samples), cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_PNG_COMPRESSION, 9])
    elif out.samples_png.exists():
        out.samples_png.unlink()
