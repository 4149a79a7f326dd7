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


from ..faces.mouth_roi import MouthROIConfig  # noqa: E402  (light: numpy + OpenCV)


@dataclasses.dataclass
class MetricsConfig:
    """What the evaluate stage needs to compute every metric (params.yaml section of its choosing).

    Weight paths: "" means "look in the torch hub cache" (FID Inception, syncnet_v2) or "none" (AV-HuBERT); a metric
    whose weights are missing is recorded as not available.
    """

    fid_weights: str = ""                 # pt_inception-2015-12-05-6726825d.pth
    fid_batch_size: int = 50
    syncnet_v2_weights: str = ""          # syncnet_v2.model
    lse_vshift: int = 15
    lse_batch_size: int = 20
    lse_fallback_expert: bool = True      # without syncnet_v2: our sync expert, labelled, never mixed
    avhubert_checkpoint: str = ""         # e.g. the lip-reading fine-tuned base_vox_433h.pt (P2)
    psnr_max_db: float | None = None      # None: identical frames give +inf and are left out of the mean
    ifc_norm: str = "rms"                 # rms | l2 | mean_abs (temporal.py)
    lmd_eval_size: int = 96               # LMD is reported in pixels of a crop this size
    mouth_roi: MouthROIConfig = dataclasses.field(default_factory=MouthROIConfig)
