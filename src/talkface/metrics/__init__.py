"""Evaluation metrics of both papers.

    image      SSIM, PSNR                       (P1 app. D eqs. C-E)
    fid        Fréchet Inception Distance       (P1 app. D eq. F; pytorch-fid protocol)
    temporal   IFC, inter-frame consistency     (P1 app. D eq. G; normalisation ours, see the module)
    landmarks  LMD, mouth landmark distance     (P1 app. D)
    lse        LSE-C / LSE-D                    (syncnet_python algorithm; official syncnet_v2 or our expert, labelled)
    avs        AVSu / AVSm / AVSv               (P2 §4.1 eqs. 4-6; AV-HuBERT features)

Submodules are imported on use (they pull in scipy, OpenCV, the models). A metric whose weights are missing is
reported as `NotAvailable(reason)`, never as a number.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class NotAvailable:
    """A metric that could not be computed; `reason` is the one-line "<thing> not available: <why>"."""

    reason: str

    def as_dict(self) -> dict:
        return {"available": False, "reason": self.reason}

    def __bool__(self) -> bool:  # `if result:` reads as "is there a value"
        return False


def json_safe(x: Any) -> Any:
    """A metrics dict with every non-finite float replaced by "not available: not finite" (JSON has no NaN)."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, float) and not math.isfinite(x):
        return "not available: not finite"
    return x


def write_metrics(path: Path, data: dict) -> dict:
    """Write a metrics JSON file (`json_safe`), creating its folder; returns what was written."""
    data = json_safe(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return data
