"""Report tables: this run beside the papers (the layout of P2 Table 1), and the ablation from DVC experiments.

A table is plain data (`Table`: columns, rows of strings, notes) that `report.html` renders as Markdown or HTML.
Metric values are numbers or "not available: <reason>" strings (docs/architecture.md); a cell shows "n/a" and the
reason goes into the table's notes, once.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .paper_numbers import COLUMNS, HIGHER_IS_BETTER, P1_ABLATION_ROWS, P2_ABLATION_ROWS, REFERENCE_ROWS

EXPERT_COLUMNS = ("LSE-C (talkface-syncnet)", "LSE-D (talkface-syncnet)")
# not in the papers: SSIM / PSNR of the lower half alone, mouth-opening correlation with the ground truth (metrics.mouth)
OURS_COLUMNS = ("SSIM (lower half)", "PSNR (lower half)", "MouthCorr")
ALL_COLUMNS = (*COLUMNS, *EXPERT_COLUMNS, *OURS_COLUMNS)
HIGHER_IS_BETTER = {**HIGHER_IS_BETTER, "MouthCorr": True}
DECIMALS = {"SSIM": 3, "PSNR": 2, "FID": 2, "IFC": 3, "LMD": 3, "LSE-C": 3, "LSE-D": 3, "AVSu": 3, "AVSm": 3,
            "AVSv": 3, "MouthCorr": 3}
GROUP_LABELS = {"model": "This run: G_L (model)", "ceiling": "This run: ground truth (ceiling)",
                "floor": "This run: floor"}


@dataclasses.dataclass
class Table:
    columns: list[str]
    rows: list[list[str]]
    caption: str = ""
    notes: list[str] = dataclasses.field(default_factory=list)


def arrow(column: str) -> str:
    base = column.split(" (")[0]
    if base not in HIGHER_IS_BETTER:
        return column
    return f"{column} {'↑' if HIGHER_IS_BETTER[base] else '↓'}"


def format_value(column: str, value: Any, notes: list[str] | None = None) -> str:
    """A metric cell: rounded number, "n/a" for "not available: ..." (reason added to `notes`), "—" when absent."""
    if value is None:
        return "—"
    if isinstance(value, str):
        if notes is not None and value not in notes:
            notes.append(value)
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if not math.isfinite(value):
        return "n/a"
    return f"{value:.{DECIMALS.get(column.split(' (')[0], 3)}f}"


def comparison_table(eval_json: dict | None) -> Table:
    """This run's model / ceiling / floor beside the papers' LRS2 numbers (P2 Table 1 layout, P1's IFC added).

    Our own-SyncNet LSE sits in separate columns that paper rows leave empty: it is another scorer, never compared
    with official syncnet_v2 numbers."""
    notes: list[str] = []
    columns = ["Method", *[arrow(c) for c in ALL_COLUMNS], "Data / setup"]
    rows: list[list[str]] = []
    if eval_json:
        run = eval_json.get("run", {}) if isinstance(eval_json.get("run"), dict) else {}
        setup = f"this run ({run.get('n_clips', '?')} test clips)"
        for group in ("model", "ceiling", "floor"):
            g = eval_json.get(group)
            if not isinstance(g, dict):
                continue
            label = GROUP_LABELS[group]
            if group == "floor" and run.get("floor"):
                label += f" ({run['floor']})"
            rows.append([label, *[format_value(c, g.get(c), notes) for c in ALL_COLUMNS], setup])
    for ref in REFERENCE_ROWS:
        rows.append([ref["label"], *[format_value(c, ref["values"].get(c)) for c in ALL_COLUMNS],
                     f"{ref['source']}: other data/setup"])
    caption = ("Test-set metrics of this run beside the papers' reported numbers. Paper rows are LRS2 with the "
               "authors' setup and official scorers: other data and setup, not a like-for-like comparison.")
    return Table(columns, rows, caption, notes)


# ---------------------------------------------------------------------------------------------- DVC experiments
def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = d
    return out


def experiments_from_dvc_json(data: Any, metrics_file: str = "metrics/eval.json") -> list[dict]:
    """Rows of `dvc exp show --json` output: [{"name", "rev", "params": flat dict, "metrics": dict or None,
    "error": str or None}]. Tolerates missing pieces: any entry that has a "data" dict with "params" is a row;
    nested "experiments" -> "revs" are walked (DVC 3 layout)."""
    rows: list[dict] = []

    def visit(entry: Any) -> None:
        if isinstance(entry, list):
            for e in entry:
                visit(e)
            return
        if not isinstance(entry, dict):
            return
        data = entry.get("data")
        if isinstance(data, dict):
            params = {}
            for file_name, file_params in (data.get("params") or {}).items():
                if isinstance(file_params, dict):
                    flat = _flatten(file_params.get("data") or {})
                    # another pipeline's params file (experiments/grid/params.yaml has the same keys) must not
                    # overwrite the root's: its keys are prefixed with the file name
                    if file_name != "params.yaml":
                        flat = {f"{file_name}:{k}": v for k, v in flat.items()}
                    params.update(flat)
            metrics, error = None, None
            m = (data.get("metrics") or {}).get(metrics_file)
            if isinstance(m, dict) and isinstance(m.get("data"), dict):
                metrics = m["data"]
            elif isinstance(m, dict) and m.get("error"):
                error = str(m["error"].get("msg", m["error"])) if isinstance(m["error"], dict) else str(m["error"])
            rev = str(entry.get("rev") or data.get("rev") or "")
            short = rev[:7] if len(rev) == 40 and all(c in "0123456789abcdef" for c in rev) else rev
            rows.append({"name": entry.get("name") or short, "rev": rev, "params": params, "metrics": metrics,
                         "error": error})
        for child in (entry.get("experiments") or []):
            if isinstance(child, dict) and "revs" in child:
                visit(child["revs"])
            else:
                visit(child)

    visit(data)
    return rows


def varying_params(rows: list[dict], ignore_prefixes: tuple[str, ...] = ()) -> list[str]:
    """Parameter keys whose values differ between the rows (what an ablation changes)."""
    keys = sorted({k for r in rows for k in r["params"]})
    out = []
    for k in keys:
        if any(k.startswith(p) for p in ignore_prefixes):
            continue
        values = {repr(r["params"].get(k)) for r in rows}
        if len(values) > 1:
            out.append(k)
    return out


def ablation_table(rows: list[dict], group: str = "model", max_params: int = 6) -> Table:
    """One row per experiment with an evaluation: the parameters that vary, then the model group's metrics."""
    with_metrics = [r for r in rows if isinstance(r.get("metrics"), dict) and isinstance(r["metrics"].get(group), dict)]
    notes: list[str] = []
    params = varying_params(with_metrics)[:max_params]
    columns = ["Experiment", *params, *[arrow(c) for c in ALL_COLUMNS]]
    table_rows = []
    for r in with_metrics:
        m = r["metrics"][group]
        table_rows.append([str(r["name"]), *[str(r["params"].get(p, "—")) for p in params],
                           *[format_value(c, m.get(c), notes) for c in ALL_COLUMNS]])
    skipped = [r for r in rows if r not in with_metrics]
    if skipped:
        notes.append("without evaluation metrics: " + ", ".join(
            f"{r['name']}" + (f" ({r['error']})" if r.get("error") else "") for r in skipped))
    caption = (f"Queued DVC experiments ({len(with_metrics)} with metrics); columns = parameters that differ "
               "between them, then the G_L metrics of each experiment's evaluate stage.")
    return Table(columns, table_rows, caption, notes)


def paper_ablation_table() -> Table:
    """The papers' own ablations (P1 partial numbers [notes], P2 Table 4 [paper]), for reading the ablation above."""
    columns = ["Setup", *[arrow(c) for c in COLUMNS], "Source"]
    rows = [[r["label"], *[format_value(c, r["values"].get(c)) for c in COLUMNS], r["source"]]
            for r in (*P1_ABLATION_ROWS, *P2_ABLATION_ROWS)]
    return Table(columns, rows, "Ablations reported by the papers (LRS2; other data/setup).")


def per_clip_summary(per_clip: "Any") -> Table | None:
    """Spread of the per-clip model metrics (metrics/eval_per_clip.csv as a pandas DataFrame): mean, std, min, max."""
    if per_clip is None or len(per_clip) == 0 or "group" not in per_clip:
        return None
    model = per_clip[per_clip["group"] == "model"]
    stats_rows = []
    for c in ALL_COLUMNS:
        if c not in model or model[c].dropna().empty:
            continue
        v = model[c].dropna().astype(float)
        stats_rows.append([arrow(c), *[format_value(c, float(x)) for x in (v.mean(), v.std(ddof=0), v.min(),
                                                                            v.max())], str(len(v))])
    if not stats_rows:
        return None
    return Table(["Metric", "mean", "std", "min", "max", "clips"], stats_rows,
                 "Per-clip spread of the model's metrics (metrics/eval_per_clip.csv).")
