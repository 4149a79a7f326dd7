"""Stability analyses of a trained sync expert on ground-truth (GT) pairs, after P1's appendix A-B.

- `gt_cosines` + `table_a_stats`: mean/std of the cosine and of the lip-sync loss -log(cos) on GT (aligned) windows
  of a split: P1 Table A (train and test columns).
- `gt_cosine_curve`: per-sample cosine on N fixed GT test windows: P1 Fig. 1 / Fig. A (columns sample, cosine).
- `robustness`: lip-sync loss on GT windows under horizontal shift, random shear and rotation at a range of
  magnitudes: P1 Fig. 6 / Fig. B (columns transform, magnitude, loss). Each window gets a fixed random sign per
  transform (same signs at every magnitude), so the curves do not mix in a directional bias [ours].
- `offset_accuracy`: for a test window, score the video against audio windows shifted by -M..+M video frames
  (M = 15, as syncnet_python's vshift); correct when the best offset is 0 [ours: per window, not averaged per video].

Windows are the first n items of a WindowDataset, so every run (and every expert) sees the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..augment import TRANSFORMS
from ..data.mel import mel_start
from ..data.windows import WindowDataset
from ..models.expert import SyncExpert


@dataclass
class SyncAnalysisConfig:
    """Sizes of the post-training analyses (params.yaml `<expert>.analysis`)."""

    stats_windows: int = 256          # GT windows per split for Table A
    curve_windows: int = 100          # N fixed GT test windows of the per-sample cosine curve (Fig. 1)
    robustness_windows: int = 64      # GT test windows per (transform, magnitude)
    shift_pixels: list[float] = field(default_factory=lambda: [0.0, 2.0, 4.0, 8.0, 12.0, 16.0])
    shear_degrees: list[float] = field(default_factory=lambda: [0.0, 5.0, 10.0, 20.0, 30.0])
    rotation_degrees: list[float] = field(default_factory=lambda: [0.0, 5.0, 10.0, 20.0, 30.0])
    padding: str = "zeros"            # fill of uncovered pixels under the transforms
    offset_windows: int = 200         # test windows for the offset accuracy
    max_offset: int = 15              # audio offsets -M..+M video frames (syncnet_python vshift)
    batch_size: int = 32
    seed: int = 0                     # random signs of the transforms, choice of offset windows
    loss_clamp_min: float = 1e-6      # floor of cos inside -log (a zero cosine gives a finite loss)

    def magnitudes(self) -> dict[str, list[float]]:
        return {"shift": list(self.shift_pixels), "shear": list(self.shear_degrees),
                "rotation": list(self.rotation_degrees)}


def _batches(dataset: WindowDataset, n: int, batch_size: int):
    """The first n items of a dataset as collated batches of frames and mel."""
    if n < 1:
        raise ValueError(f"need at least one window, got n={n}")
    for start in range(0, n, batch_size):
        items = [dataset[i] for i in range(start, min(n, start + batch_size))]
        yield torch.stack([it["frames"] for it in items]), torch.stack([it["mel"] for it in items])


def _device(expert: SyncExpert) -> torch.device:
    return next(expert.parameters()).device


def lip_sync_loss(cos: np.ndarray | torch.Tensor, clamp_min: float = 1e-6):
    """Per-sample lip-sync loss of P1 Eq. (B): -log(cos) (BCE with target 1)."""
    if isinstance(cos, torch.Tensor):
        return -torch.log(cos.clamp(min=clamp_min))
    return -np.log(np.maximum(cos, clamp_min))


@torch.no_grad()
def gt_cosines(expert: SyncExpert, dataset: WindowDataset, n: int, batch_size: int = 32) -> np.ndarray:
    """Cosine of the first n GT (aligned) windows of `dataset`: float64 [n] in [0,1]."""
    expert.eval()
    dev, out = _device(expert), []
    for frames, mel in _batches(dataset, n, batch_size):
        out.append(expert(mel.to(dev), frames.to(dev)).double().cpu())
    return torch.cat(out).numpy()


def table_a_stats(cos: np.ndarray, clamp_min: float = 1e-6) -> dict[str, float]:
    """P1 Table A row from GT cosines: cos_mean, cos_std, loss_mean, loss_std (loss = -log cos), windows."""
    if cos.size == 0:
        raise ValueError("no cosines to summarise")
    loss = lip_sync_loss(cos, clamp_min)
    return {"cos_mean": float(cos.mean()), "cos_std": float(cos.std()), "loss_mean": float(loss.mean()),
            "loss_std": float(loss.std()), "windows": int(cos.size)}


def gt_cosine_curve(cos: np.ndarray) -> pd.DataFrame:
    """P1 Fig. 1 analogue: one row per fixed GT test window, columns (sample, cosine)."""
    return pd.DataFrame({"sample": np.arange(len(cos), dtype=np.int64), "cosine": np.asarray(cos, dtype=np.float64)})


@torch.no_grad()
def robustness(expert: SyncExpert, dataset: WindowDataset, n: int, magnitudes: dict[str, list[float]],
               batch_size: int = 32, padding: str = "zeros", seed: int = 0,
               clamp_min: float = 1e-6) -> pd.DataFrame:
    """Mean lip-sync loss on the first n GT windows under each transform and magnitude.

    magnitudes: {"shift": [pixels...], "shear": [degrees...], "rotation": [degrees...]} (any subset).
    Returns columns (transform, magnitude, loss), one row per transform and magnitude, in the given order.
    """
    unknown = set(magnitudes) - set(TRANSFORMS)
    if unknown:
        raise ValueError(f"unknown transform(s) {sorted(unknown)}; known: {sorted(TRANSFORMS)}")
    expert.eval()
    dev = _device(expert)
    signs_rng = np.random.default_rng(seed)
    signs = {name: torch.from_numpy(signs_rng.choice([-1.0, 1.0], size=n)) for name in TRANSFORMS}
    # The audio embeddings do not depend on the transform: compute them once per batch.
    sums = {(name, float(m)): 0.0 for name, mags in magnitudes.items() for m in mags}
    start = 0
    for frames, mel in _batches(dataset, n, batch_size):
        b = frames.shape[0]
        frames, a = frames.to(dev), expert.embed_audio(mel.to(dev))
        cache: dict[float, torch.Tensor] = {}
        for name, mags in magnitudes.items():
            fn = TRANSFORMS[name][0]
            for m in mags:
                m = float(m)
                if m == 0.0 and 0.0 in cache:  # magnitude 0 is the identity for every transform
                    loss = cache[0.0]
                else:
                    amount = (signs[name][start : start + b] * m).to(dev)
                    v = expert.embed_video(fn(frames, amount, padding) if m != 0.0 else frames)
                    loss = lip_sync_loss(expert.similarity(a, v).double(), clamp_min)
                    if m == 0.0:
                        cache[0.0] = loss
                sums[(name, m)] += float(loss.sum())
        start += b
    rows = [{"transform": name, "magnitude": m, "loss": total / n} for (name, m), total in sums.items()]
    return pd.DataFrame(rows, columns=["transform", "magnitude", "loss"])


def _offset_candidates(dataset: WindowDataset, max_offset: int) -> list[tuple[int, int, int]]:
    """(clip, first start, last start) where frames f..f+k-1 and audio windows at f-M..f+M all lie inside the clip."""
    cfg, out = dataset.cfg, []
    for c, clip_id in enumerate(dataset.clip_ids):
        n_mel = np.load(dataset.mels_dir / f"{clip_id}.npy", mmap_mode="r").shape[0]
        n_frames = np.load(dataset.clips_dir / clip_id / "frames.npy", mmap_mode="r").shape[0]
        lo = max_offset
        hi = n_frames - cfg.k
        while hi >= lo and mel_start(hi + max_offset, cfg.fps, cfg.mel_fps) + cfg.mel_steps > n_mel:
            hi -= 1
        if hi >= lo:
            out.append((c, lo, hi))
    return out


@torch.no_grad()
def offset_accuracy(expert: SyncExpert, dataset: WindowDataset, n: int, max_offset: int = 15,
                    batch_size: int = 32, seed: int = 0) -> dict[str, float]:
    """Fraction of n random test windows whose best audio offset in [-M, M] video frames is 0.

    Returns {"offset_accuracy", "offset_mean_abs_error" (frames), "windows", "max_offset"}.
    """
    cands = _offset_candidates(dataset, max_offset)
    if not cands:
        raise ValueError(f"no clip is long enough to test audio offsets of +-{max_offset} frames")
    expert.eval()
    cfg, dev = dataset.cfg, _device(expert)
    rng = np.random.default_rng(seed)
    ends = np.cumsum([hi - lo + 1 for _, lo, hi in cands])  # windows drawn uniformly over all candidates
    picks = []
    for w in rng.integers(int(ends[-1]), size=n):
        j = int(np.searchsorted(ends, w, side="right"))
        c, lo, _ = cands[j]
        picks.append((c, lo + int(w - (ends[j - 1] if j else 0))))
    offsets = np.arange(-max_offset, max_offset + 1)
    best_all = []
    for s in range(0, n, batch_size):
        frames, mels = [], []
        for c, f in picks[s : s + batch_size]:
            clip_id = dataset.clip_ids[c]
            video = np.load(dataset.clips_dir / clip_id / "frames.npy", mmap_mode="r")[f : f + cfg.k]
            mel = np.load(dataset.mels_dir / f"{clip_id}.npy", mmap_mode="r")
            frames.append(torch.from_numpy(np.array(video)).permute(0, 3, 1, 2).float() / 255.0)
            for o in offsets:
                m0 = mel_start(f + int(o), cfg.fps, cfg.mel_fps)
                mels.append(torch.from_numpy(np.ascontiguousarray(mel[m0 : m0 + cfg.mel_steps].T))[None])
        b = len(frames)
        v = expert.embed_video(torch.stack(frames).to(dev))                       # [b, D]
        a = expert.embed_audio(torch.stack(mels).to(dev)).reshape(b, len(offsets), -1)  # [b, 2M+1, D]
        cos = torch.einsum("bod,bd->bo", a.float(), v.float())  # unit vectors: dot = cosine
        best_all.append(offsets[cos.argmax(dim=1).cpu().numpy()])
    best = np.concatenate(best_all)
    return {"offset_accuracy": float((best == 0).mean()), "offset_mean_abs_error": float(np.abs(best).mean()),
            "windows": int(n), "max_offset": int(max_offset)}


def analyse_expert(expert: SyncExpert, train_set: WindowDataset, test_set: WindowDataset | None,
                   cfg: SyncAnalysisConfig, plots_dir: str | Path | None = None,
                   name: str = "expert") -> dict[str, object]:
    """All analyses; writes plots/<name>_gt_cosine.csv and plots/<name>_robustness.csv when plots_dir is given.

    Returns {"table_a": {"train": stats, "test": stats}, "offset": {...}} plus the two data frames under
    "gt_cosine" and "robustness". Without a test split the test parts are "not available: ..." strings.
    """
    b = cfg.batch_size
    result: dict[str, object] = {}
    table = {"train": table_a_stats(gt_cosines(expert, train_set, cfg.stats_windows, b), cfg.loss_clamp_min)}
    if test_set is None:
        reason = "not available: empty test split"
        table["test"] = reason
        result.update(offset=reason, gt_cosine=None, robustness=None)
    else:
        test_cos = gt_cosines(expert, test_set, max(cfg.stats_windows, cfg.curve_windows), b)
        table["test"] = table_a_stats(test_cos[: cfg.stats_windows], cfg.loss_clamp_min)
        result["gt_cosine"] = gt_cosine_curve(test_cos[: cfg.curve_windows])
        result["robustness"] = robustness(expert, test_set, cfg.robustness_windows, cfg.magnitudes(), b, cfg.padding,
                                          cfg.seed, cfg.loss_clamp_min)
        try:
            result["offset"] = offset_accuracy(expert, test_set, cfg.offset_windows, cfg.max_offset, b, cfg.seed)
        except ValueError as e:
            result["offset"] = f"not available: {e}"
    result["table_a"] = table
    if plots_dir is not None and test_set is not None:
        plots_dir = Path(plots_dir)
        plots_dir.mkdir(parents=True, exist_ok=True)
        result["gt_cosine"].to_csv(plots_dir / f"{name}_gt_cosine.csv", index=False)
        result["robustness"].to_csv(plots_dir / f"{name}_robustness.csv", index=False)
    return result


__all__ = ["SyncAnalysisConfig", "analyse_expert", "gt_cosine_curve", "gt_cosines", "lip_sync_loss",
           "offset_accuracy", "robustness", "table_a_stats"]
