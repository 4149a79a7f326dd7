"""Report figures (matplotlib, Agg backend, PNG). Every input is optional.

Each builder reads CSV files from `plots/` and returns a list of `Figure`s: a written PNG with a caption, or, when
an input is absent or unreadable, a `Figure` with `missing` set to one line saying what is missing (never an
exception for a missing file).

    sync_cosine_figures    plots/syncnet_gt_cosine.csv, plots/avsyncnet_gt_cosine.csv   (P1 Fig. 1a/b analogue)
    robustness_figures     plots/<expert>_robustness.csv: transform, magnitude, loss      (P1 Fig. 6 / P2 Fig. 5)
    training_figures       plots/<stage>_train.csv: step + metric columns
    lse_offset_figures     plots/eval_lse_offsets.csv: scorer, group, offset, mean_dist   (evaluate stage)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

EXPERTS = ("syncnet", "avsyncnet")


@dataclasses.dataclass
class Figure:
    title: str
    path: Path | None = None     # the PNG, when made
    caption: str = ""
    missing: str | None = None   # why it was not made
    pixelated: bool = False      # small-pixel image (face crops): shown enlarged without smoothing


def _save(fig, path: Path, dpi: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi, format="png")
    plt.close(fig)
    return path


def _read_csv(path: Path) -> tuple[pd.DataFrame | None, str | None]:
    if not path.is_file():
        return None, f"{path} is missing"
    try:
        df = pd.read_csv(path)
    except Exception as e:  # empty or malformed file: a line in the report, not a crash
        return None, f"{path} could not be read ({type(e).__name__}: {e})"
    if df.empty:
        return None, f"{path} has no rows"
    return df, None


def value_column(df: pd.DataFrame, preferred: tuple[str, ...]) -> str | None:
    """The first of `preferred` present, else the last numeric column."""
    for c in preferred:
        if c in df.columns:
            return c
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c])]
    return numeric[-1] if numeric else None


def sync_cosine_figures(plots_dir: Path, out_dir: Path, dpi: int = 110) -> list[Figure]:
    """Per-sample cosine similarity of ground-truth audio-lip pairs under SyncNet and AVSyncNet (P1 Fig. 1a/b)."""
    title = "Sync experts on ground-truth pairs (P1 Fig. 1 analogue)"
    series, missing = {}, []
    for name in EXPERTS:
        df, err = _read_csv(plots_dir / f"{name}_gt_cosine.csv")
        if err:
            missing.append(err)
            continue
        col = value_column(df, ("cosine", "cos", "similarity"))
        if col is None:
            missing.append(f"{plots_dir / f'{name}_gt_cosine.csv'} has no numeric column")
            continue
        series[name] = df[col].to_numpy(dtype=float)
    if not series:
        return [Figure(title, missing="; ".join(missing))]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    for name, v in series.items():
        line, = ax.plot(np.arange(len(v)), v, lw=0.9, label=f"{name}: mean {np.nanmean(v):.3f}, std {np.nanstd(v):.3f}")
        ax.axhline(np.nanmean(v), color=line.get_color(), ls="--", lw=0.8)
    ax.set_xlabel("test sample")
    ax.set_ylabel("cosine(audio, GT lips)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=10)
    path = _save(fig, out_dir / "sync_gt_cosine.png", dpi)
    caption = ("Cosine similarity between audio and ground-truth lip windows, per test sample; a stable expert "
               "gives high, steady values. " + ("Missing: " + "; ".join(missing) if missing else ""))
    return [Figure(title, path, caption.strip())]


def robustness_figures(plots_dir: Path, out_dir: Path, dpi: int = 110) -> list[Figure]:
    """Sync loss on ground-truth pairs vs transform magnitude, one panel per transform, one line per expert."""
    title = "Expert robustness to spatial transforms"
    frames, missing = [], []
    files = sorted(plots_dir.glob("*_robustness.csv")) if plots_dir.is_dir() else []
    for f in files:
        df, err = _read_csv(f)
        if err:
            missing.append(err)
            continue
        need = {"transform", "magnitude", "loss"}
        if not need <= set(df.columns):
            missing.append(f"{f} lacks columns {sorted(need - set(df.columns))}")
            continue
        frames.append(df.assign(expert=f.name[: -len("_robustness.csv")]))
    if not frames:
        return [Figure(title, missing="; ".join(missing) or f"no {plots_dir}/<expert>_robustness.csv files")]
    df = pd.concat(frames, ignore_index=True)
    transforms = list(dict.fromkeys(df["transform"].astype(str)))
    fig, axes = plt.subplots(1, len(transforms), figsize=(4 * len(transforms), 3.4), squeeze=False)
    for ax, t in zip(axes[0], transforms):
        sub = df[df["transform"].astype(str) == t]
        for expert, g in sub.groupby("expert"):
            curve = g.groupby("magnitude")["loss"].mean().sort_index()
            ax.plot(curve.index, curve.values, marker="o", ms=3, label=expert)
        ax.set_title(t, fontsize=10)
        ax.set_xlabel("magnitude")
        ax.set_ylabel("sync loss (GT pairs)")
        ax.legend(fontsize=8)
    path = _save(fig, out_dir / "robustness.png", dpi)
    caption = "Lip-sync loss of ground-truth pairs as the faces are shifted / sheared / rotated (lower is better)."
    if missing:
        caption += " Missing: " + "; ".join(missing)
    return [Figure(title, path, caption)]


def training_figures(plots_dir: Path, out_dir: Path, dpi: int = 110, max_panels: int = 8) -> list[Figure]:
    """One figure per plots/<stage>_train.csv: every metric column against `step`."""
    files = sorted(plots_dir.glob("*_train.csv")) if plots_dir.is_dir() else []
    if not files:
        return [Figure("Training curves", missing=f"no {plots_dir}/<stage>_train.csv files")]
    out = []
    for f in files:
        stage = f.name[: -len("_train.csv")]
        title = f"Training curves: {stage}"
        df, err = _read_csv(f)
        if err:
            out.append(Figure(title, missing=err))
            continue
        x = "step" if "step" in df.columns else df.columns[0]
        metrics = [c for c in df.columns if c != x and pd.api.types.is_numeric_dtype(df[c])
                   and df[c].notna().any()][:max_panels]
        if not metrics:
            out.append(Figure(title, missing=f"{f} has no numeric metric columns"))
            continue
        cols = min(4, len(metrics))
        rows = (len(metrics) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows), squeeze=False)
        for ax, m in zip(axes.flat, metrics):
            d = df[[x, m]].dropna()
            ax.plot(d[x], d[m], lw=1, marker="." if len(d) < 30 else None)
            ax.set_title(m, fontsize=9)
            ax.set_xlabel(x, fontsize=8)
            ax.tick_params(labelsize=7)
        for ax in list(axes.flat)[len(metrics):]:
            ax.axis("off")
        path = _save(fig, out_dir / f"train_{stage}.png", dpi)
        out.append(Figure(title, path, f"{f.name}: {', '.join(metrics)} against {x}."))
    return out


def lse_offset_figures(plots_dir: Path, out_dir: Path, dpi: int = 110) -> list[Figure]:
    """Mean SyncNet distance per audio offset (the LSE curve), model vs ceiling vs floor, one panel per scorer."""
    title = "LSE distance vs audio offset"
    df, err = _read_csv(plots_dir / "eval_lse_offsets.csv")
    if err:
        return [Figure(title, missing=err)]
    need = {"scorer", "group", "offset", "mean_dist"}
    if not need <= set(df.columns):
        return [Figure(title, missing=f"eval_lse_offsets.csv lacks columns {sorted(need - set(df.columns))}")]
    scorers = list(dict.fromkeys(df["scorer"].astype(str)))
    fig, axes = plt.subplots(1, len(scorers), figsize=(5 * len(scorers), 3.4), squeeze=False)
    for ax, s in zip(axes[0], scorers):
        for group, g in df[df["scorer"].astype(str) == s].groupby("group"):
            g = g.sort_values("offset")
            ax.plot(g["offset"], g["mean_dist"], label=str(group))
        ax.set_title(s, fontsize=10)
        ax.set_xlabel("offset (video frames)")
        ax.set_ylabel("mean distance")
        ax.legend(fontsize=8)
    path = _save(fig, out_dir / "lse_offsets.png", dpi)
    return [Figure(title, path, "A deep minimum at offset 0 means in sync (LSE-D = the minimum, LSE-C = median - "
                                "minimum), averaged over test clips.")]
