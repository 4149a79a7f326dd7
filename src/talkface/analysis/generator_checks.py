"""Checks of a trained generator on validation windows (after P1): the G_S silent check, G_L's lip leaking, a sample
grid. Run by the analysis stages (stages/analyse_generator.py), apart from training, so that changing how many
windows they look at does not retrain a generator.

    silent_analysis(g_s, val_set, cfg, mouth, silent_mel, device)   # mouth opening before/after G_S on silent audio
    leak_analysis(g_l, g_s, val_set, cfg, mouth, silent_mel, device) # reference vs output mouth opening (lip leak)
    generator_samples(gen, g_s, batch, n, use_silent, silent_mel)    # uint8 grid, one row per window
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from ..data.windows import WindowDataset
from ..metrics.image import mean_finite, psnr
from ..model_inputs import close_lips
from ..models.generator import Generator
from .leaking import MouthOpeningConfig, lip_leak, mouth_opening, silent_check


@dataclasses.dataclass
class GeneratorAnalysisConfig:
    """params.yaml `silent.analysis` / `generator.analysis`."""

    windows: int = 64  # validation windows of the lip-leak / silent checks
    samples: int = 4  # rows of the sample grid PNG
    batch_size: int = 4  # windows per forward pass
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    landmarker: str = "none"  # dlib | fan | auto | none: also measure mouths from 68 landmarks (real faces)


def landmark_openings(landmarker, frames: torch.Tensor, boxes: torch.Tensor) -> np.ndarray:
    """Mouth opening from 68 landmarks (metrics.mouth: inner-lip gap / inter-ocular distance) of float crops
    [B,k,3,S,S]; `boxes` [B,k,68,2] are the landmarks whose box the predictor fits inside (faces.crop_landmarks),
    -> [B*k] (NaN where none)."""
    from ..metrics.mouth import mouth_opening as landmark_mouth_opening
    from ..model_inputs import to_uint8

    s = frames.shape[-1]
    crops = to_uint8(frames).reshape(-1, s, s, 3)
    return landmark_mouth_opening(landmarker(crops, boxes.reshape(-1, 68, 2).cpu().numpy()))


def sil_frame_openings(val_set: WindowDataset) -> np.ndarray:
    """The speaker's own mouth opening (stored landmarks) on the frames the alignments label `sil`, over the
    validation clips that have labels (GRID); empty when none has."""
    import json

    from ..metrics.mouth import mouth_opening as landmark_mouth_opening

    values = []
    for clip_id in val_set.clip_ids:
        d = val_set.clips_dir / clip_id
        if not (d / "labels.json").is_file():
            continue
        labels = np.array(json.loads((d / "labels.json").read_text())["labels"])
        lms = np.load(d / "landmarks.npy")
        values.append(landmark_mouth_opening(lms[labels == "sil"]))
    return np.concatenate(values) if values else np.zeros(0)


def analysis_batches(val_set: WindowDataset, n: int, batch_size: int, device: torch.device):
    from torch.utils.data import default_collate

    for first in range(0, n, batch_size):
        items = [val_set[i] for i in range(first, min(n, first + batch_size))]
        batch = default_collate(items)
        yield {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}


@torch.no_grad()
def silent_analysis(silent: Generator, val_set: WindowDataset, cfg: GeneratorAnalysisConfig, mouth: MouthOpeningConfig,
                    silent_mel: torch.Tensor, device: torch.device, landmarker=None) -> dict[str, Any]:
    """The G_S check on validation identity references: mouth opening before/after G_S with silent audio, and the
    distance to the closed-lip ground truth (silent.npy) when the data has it. With a `landmarker`, the openings from
    landmarks too, beside the speaker's own opening on the frames labelled `sil` (GRID's silences)."""
    silent.eval()
    opens: dict[str, list[torch.Tensor]] = {"in": [], "out": [], "gt": []}
    lm_in, lm_out = [], []
    l1_out, l1_in, psnr_out, psnr_in = [], [], [], []
    for batch in analysis_batches(val_set, cfg.windows, cfg.batch_size, device):
        identity = batch["identity"]
        closed = close_lips(silent, identity, silent_mel)
        opens["in"].append(mouth_opening(identity, mouth).flatten().cpu())
        opens["out"].append(mouth_opening(closed, mouth).flatten().cpu())
        if landmarker is not None:  # the target window's stored landmarks give the box (the head barely moves)
            lm_in.append(landmark_openings(landmarker, identity, batch["landmarks"]))
            lm_out.append(landmark_openings(landmarker, closed, batch["landmarks"]))
        if "identity_silent" in batch:
            target = batch["identity_silent"]
            s = target.shape[-1]
            opens["gt"].append(mouth_opening(target, mouth).flatten().cpu())
            l1_out.append((closed - target).abs().flatten(1).mean(1).cpu())
            l1_in.append((identity - target).abs().flatten(1).mean(1).cpu())
            psnr_out.append(psnr(closed.reshape(-1, 3, s, s), target.reshape(-1, 3, s, s)).cpu())
            psnr_in.append(psnr(identity.reshape(-1, 3, s, s), target.reshape(-1, 3, s, s)).cpu())
    has_gt = bool(opens["gt"])
    out = silent_check(torch.cat(opens["in"]).numpy(), torch.cat(opens["out"]).numpy(),
                       torch.cat(opens["gt"]).numpy() if has_gt else None)
    if has_gt:
        out.update({"l1_to_silent_gt": float(torch.cat(l1_out).mean()),
                    "l1_input_to_silent_gt": float(torch.cat(l1_in).mean()),
                    "psnr_to_silent_gt": mean_finite(torch.cat(psnr_out)),
                    "psnr_input_to_silent_gt": mean_finite(torch.cat(psnr_in))})
    else:
        out["silent_gt"] = "not available: the data has no closed-lip ground truth (silent.npy)"
    out["mouth_measure"] = "luminance contrast of the mouth box (analysis.leaking.mouth_opening)"
    if landmarker is not None:
        sil = sil_frame_openings(val_set)
        i, o = np.concatenate(lm_in), np.concatenate(lm_out)
        out["landmarks"] = {
            "input_opening": float(np.nanmean(i)), "output_opening": float(np.nanmean(o)),
            "share_closed_more": float(np.mean(o[np.isfinite(o) & np.isfinite(i)] < i[np.isfinite(o) & np.isfinite(i)])),
            "speaker_sil_opening": float(np.nanmean(sil)) if len(sil) else "not available: no `sil` labels",
            "at_or_below_sil": bool(len(sil) and np.nanmean(o) <= np.nanmean(sil)),
            "measure": f"{landmarker.name} 68 landmarks: inner-lip gap / inter-ocular distance (metrics.mouth)"}
    return out


@torch.no_grad()
def leak_analysis(gen: Generator, silent: Generator | None, val_set: WindowDataset, cfg: GeneratorAnalysisConfig,
                  mouth: MouthOpeningConfig, silent_mel: torch.Tensor, device: torch.device,
                  silent_reason: str = "", landmarker=None) -> dict[str, Any]:
    """Lip leaking of G_L: correlation of the identity reference's and the output's mouth opening, with the raw
    reference and with the G_S-closed reference; with a `landmarker`, from 68 landmarks too."""
    gen.eval()
    opens: dict[str, list[torch.Tensor]] = {"ref": [], "gt": [], "raw": [], "silent": []}
    lms: dict[str, list[np.ndarray]] = {"ref": [], "gt": [], "raw": [], "silent": []}
    for batch in analysis_batches(val_set, cfg.windows, cfg.batch_size, device):
        identity = batch["identity"]
        opens["ref"].append(mouth_opening(identity, mouth).flatten().cpu())
        opens["gt"].append(mouth_opening(batch["frames"], mouth).flatten().cpu())
        out = gen(batch["pose"], identity, batch["indiv_mels"])
        opens["raw"].append(mouth_opening(out, mouth).flatten().cpu())
        if landmarker is not None:
            box = batch["landmarks"]
            for key, frames in (("ref", identity), ("gt", batch["frames"]), ("raw", out)):
                lms[key].append(landmark_openings(landmarker, frames, box))
        if silent is not None:
            out = gen(batch["pose"], close_lips(silent, identity, silent_mel), batch["indiv_mels"])
            opens["silent"].append(mouth_opening(out, mouth).flatten().cpu())
            if landmarker is not None:
                lms["silent"].append(landmark_openings(landmarker, out, batch["landmarks"]))
    ref, gt = torch.cat(opens["ref"]).numpy(), torch.cat(opens["gt"]).numpy()
    result: dict[str, Any] = {"without_silent": lip_leak(ref, torch.cat(opens["raw"]).numpy(), gt)}
    if silent is not None:
        result["with_silent"] = lip_leak(ref, torch.cat(opens["silent"]).numpy(), gt)
    else:
        result["with_silent"] = f"not available: {silent_reason or 'no G_S'}"
    result["mouth_measure"] = "luminance contrast of the mouth box (analysis.leaking.mouth_opening)"
    if landmarker is not None:
        ref, gt = np.concatenate(lms["ref"]), np.concatenate(lms["gt"])
        ok = lambda *a: np.all([np.isfinite(x) for x in a], axis=0)  # noqa: E731
        raw = np.concatenate(lms["raw"])
        m = ok(ref, gt, raw)
        result["landmarks"] = {"without_silent": lip_leak(ref[m], raw[m], gt[m]),
                               "measure": f"{landmarker.name} 68 landmarks: inner-lip gap / inter-ocular distance"}
        if lms["silent"]:
            sil = np.concatenate(lms["silent"])
            m = ok(ref, gt, sil)
            result["landmarks"]["with_silent"] = lip_leak(ref[m], sil[m], gt[m])
    return result


@torch.no_grad()
def generator_samples(gen: Generator, silent: Generator | None, batch: dict[str, Any], n: int, use_silent: bool,
                      silent_mel: torch.Tensor) -> np.ndarray:
    """uint8 [n*S, 5*S, 3]: per row (middle frame of a window) GT | pose ref | identity ref | silent ref | generated.

    The silent-ref column is G_S(identity, silent audio) when a G_S is given, else mid-grey. For the G_S stage pass
    the model itself as `silent` and use_silent=False: the last column is then its reconstruction with real audio.
    """
    gen.eval()
    b = min(n, batch["frames"].shape[0])
    sub = {k: v[:b] for k, v in batch.items() if torch.is_tensor(v) and v.dim() > 1}
    closed = close_lips(silent, sub["identity"], silent_mel) if silent is not None else torch.full_like(sub["identity"], 0.5)
    ref = closed if use_silent else sub["identity"]
    out = gen(sub["pose"], ref, sub["indiv_mels"]).float()
    mid = sub["frames"].shape[1] // 2
    cols = [sub["frames"], sub["pose"], sub["identity"], closed, out]
    grid = torch.cat([torch.cat([c[:, mid] for c in cols], dim=-1)[i] for i in range(b)], dim=-2)  # [3, bS, 5S]
    return (grid.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)
