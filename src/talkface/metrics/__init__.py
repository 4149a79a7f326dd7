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


@dataclasses.dataclass(frozen=True)
class NotAvailable:
    """A metric that could not be computed; `reason` is the one-line "<thing> not available: <why>"."""

    reason: str

    def as_dict(self) -> dict:
        return {"available": False, "reason": self.reason}

    def __bool__(self) -> bool:  # `if result:` reads as "is there a value"
        return False
