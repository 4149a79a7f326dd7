"""The report document: assembled from whatever metric and plot files exist, rendered to Markdown and to one
self-contained HTML file (inline CSS, images as base64 data URIs: it opens offline, no CDN).

    doc = build_report(ReportConfig(), root=".")     # reads metrics/, plots/, writes reports/figures/*.png
    write_report(doc, Path("reports"))               # reports/report.md + reports/report.html

Every input is optional: a missing or unreadable file becomes a line in the report's "Missing inputs" section.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

from . import figures as figs
from . import tables


@dataclasses.dataclass
class ReportConfig:
    title: str = "talkface: evaluation report"
    metrics_dir: str = "metrics"
    plots_dir: str = "plots"
    out_dir: str = "reports"
    experiments_json: str = "metrics/experiments.json"  # saved `dvc exp show --json` output; "" = none
    run_dvc_exp_show: bool = False   # also try `dvc exp show --json` (not inside `dvc repro`: the repo lock is held)
    dvc_timeout_s: int = 120
    dpi: int = 110
    max_ablation_params: int = 6     # varying parameters shown per experiment row


# ---------------------------------------------------------------------------------------------- document model
@dataclasses.dataclass
class Block:
    kind: str          # heading | para | list | table | figure | missing
    content: Any
    level: int = 2


@dataclasses.dataclass
class Document:
    title: str
    blocks: list[Block] = dataclasses.field(default_factory=list)
    missing: list[str] = dataclasses.field(default_factory=list)

    def heading(self, text: str, level: int = 2) -> None:
        self.blocks.append(Block("heading", text, level))

    def para(self, text: str) -> None:
        self.blocks.append(Block("para", text))

    def bullets(self, items: list[str]) -> None:
        if items:
            self.blocks.append(Block("list", list(items)))

    def table(self, t: tables.Table) -> None:
        self.blocks.append(Block("table", t))

    def figure(self, f: figs.Figure) -> None:
        if f.path is None:
            self.note_missing(f"{f.title}: {f.missing}")
        else:
            self.blocks.append(Block("figure", f))

    def note_missing(self, line: str) -> None:
        self.blocks.append(Block("missing", line))
        self.missing.append(line)


# ---------------------------------------------------------------------------------------------- rendering
def _md_cell(s: str) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document, image_base: Path) -> str:
    """Markdown with images linked relative to `image_base` (the folder report.md is written to)."""
    out = [f"# {doc.title}", ""]
    for b in doc.blocks:
        if b.kind == "heading":
            out += ["#" * b.level + " " + b.content, ""]
        elif b.kind == "para":
            out += [b.content, ""]
        elif b.kind == "list":
            out += [f"- {item}" for item in b.content] + [""]
        elif b.kind == "missing":
            out += [f"> Missing: {b.content}", ""]
        elif b.kind == "table":
            t: tables.Table = b.content
            if t.caption:
                out += [f"*{t.caption}*", ""]
            out.append("| " + " | ".join(_md_cell(c) for c in t.columns) + " |")
            out.append("|" + "|".join("---" for _ in t.columns) + "|")
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
            out.append("")
            if t.notes:
                out += [f"- n/a: {_md_cell(n)}" if "not available" in n else f"- {_md_cell(n)}" for n in t.notes]
                out.append("")
        elif b.kind == "figure":
            f: figs.Figure = b.content
            rel = Path(f.path).resolve().relative_to(image_base.resolve()) if _inside(f.path, image_base) \
                else Path(f.path)
            out += [f"**{f.title}**", "", f"![{f.title}]({rel.as_posix()})", ""]
            if f.caption:
                out += [f.caption, ""]
    return "\n".join(out).rstrip() + "\n"


def _inside(path: Path, base: Path) -> bool:
    try:
        Path(path).resolve().relative_to(base.resolve())
        return True
    except ValueError:
        return False


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;max-width:1150px;
color:#222;line-height:1.45;padding:0 1em}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:13px}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#eee}
td:first-child,th:first-child{text-align:left}
caption{caption-side:top;text-align:left;font-style:italic;padding:4px 0;color:#444}
.missing{background:#fff4e0;border-left:4px solid #e0a030;padding:4px 10px;margin:6px 0}
.notes{font-size:12px;color:#555}figure{margin:1em 0}figcaption{font-size:13px;color:#444}
img{max-width:100%;border:1px solid #ddd}img.pixelated{image-rendering:pixelated;width:min(100%,900px)}
"""


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def to_html(doc: Document) -> str:
    """One self-contained HTML page (no external resource)."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(doc.title)}</title><style>{CSS}</style></head><body>", f"<h1>{e(doc.title)}</h1>"]
    for b in doc.blocks:
        if b.kind == "heading":
            lvl = min(max(b.level, 2), 6)
            parts.append(f"<h{lvl}>{e(b.content)}</h{lvl}>")
        elif b.kind == "para":
            parts.append(f"<p>{e(b.content)}</p>")
        elif b.kind == "list":
            parts.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in b.content) + "</ul>")
        elif b.kind == "missing":
            parts.append(f'<div class="missing">Missing: {e(b.content)}</div>')
        elif b.kind == "table":
            t: tables.Table = b.content
            rows = "".join("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in t.rows)
            head = "<tr>" + "".join(f"<th>{e(str(c))}</th>" for c in t.columns) + "</tr>"
            cap = f"<caption>{e(t.caption)}</caption>" if t.caption else ""
            parts.append(f"<table>{cap}<thead>{head}</thead><tbody>{rows}</tbody></table>")
            if t.notes:
                parts.append('<ul class="notes">' + "".join(
                    f"<li>{'n/a: ' if 'not available' in n else ''}{e(n)}</li>" for n in t.notes) + "</ul>")
        elif b.kind == "figure":
            f: figs.Figure = b.content
            cls = ' class="pixelated"' if f.pixelated else ""
            parts.append(f'<figure><img{cls} alt="{e(f.title)}" src="{_data_uri(f.path)}">'
                         f"<figcaption><b>{e(f.title)}</b>. {e(f.caption)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(doc: Document, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md, page = out_dir / "report.md", out_dir / "report.html"
    md.write_text(to_markdown(doc, out_dir), encoding="utf-8")
    page.write_text(to_html(doc), encoding="utf-8")
    return md, page


# ---------------------------------------------------------------------------------------------- assembly
def _read_json(path: Path, doc: Document, what: str) -> Any:
    if not path.is_file():
        doc.note_missing(f"{what}: {path} is missing")
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        doc.note_missing(f"{what}: {path} could not be read ({e})")
        return None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}" if math.isfinite(v) else "n/a"
    return str(v)


def load_experiments(cfg: ReportConfig, root: Path, doc: Document) -> list[dict] | None:
    """Experiment rows from the saved `dvc exp show --json` file, or from running it when asked; None if neither."""
    data = None
    if cfg.experiments_json and (root / cfg.experiments_json).is_file():
        try:
            data = json.loads((root / cfg.experiments_json).read_text())
        except (OSError, ValueError) as e:
            doc.note_missing(f"ablation: {cfg.experiments_json} could not be read ({e})")
    if data is None and cfg.run_dvc_exp_show:
        dvc = shutil.which("dvc")
        if dvc is None:
            doc.note_missing("ablation: `dvc` is not on PATH")
        else:
            try:
                proc = subprocess.run([dvc, "exp", "show", "--json"], cwd=root, capture_output=True, text=True,
                                      timeout=cfg.dvc_timeout_s, check=False)
                if proc.returncode == 0:
                    data = json.loads(proc.stdout)
                else:
                    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
                    doc.note_missing(f"ablation: `dvc exp show --json` failed ({last})")
            except (OSError, subprocess.TimeoutExpired, ValueError) as e:
                doc.note_missing(f"ablation: `dvc exp show --json` failed ({type(e).__name__}: {e})")
    if data is None:
        if not cfg.run_dvc_exp_show:
            doc.note_missing(f"ablation: no experiments file {cfg.experiments_json or '(none configured)'}; "
                             "write it with `python stages/queue_ablations.py --export` (`dvc exp show --json`)")
        return None
    return tables.experiments_from_dvc_json(data)


def build_report(cfg: ReportConfig, root: str | Path = ".") -> Document:
    """Assemble the document from `root`'s metrics/ and plots/; figures are written to <out_dir>/figures/."""
    root = Path(root)
    metrics_dir, plots_dir = root / cfg.metrics_dir, root / cfg.plots_dir
    out_dir = root / cfg.out_dir
    fig_dir = out_dir / "figures"
    if fig_dir.is_dir():
        shutil.rmtree(fig_dir)  # no stale figure from an earlier run survives
    doc = Document(cfg.title)

    # --- evaluation summary
    doc.heading("Evaluation")
    ev = _read_json(metrics_dir / "eval.json", doc, "evaluation metrics")
    run = ev.get("run") if isinstance(ev, dict) and isinstance(ev.get("run"), dict) else {}
    if run:
        lines = [f"test clips: {run.get('n_clips')}, frames: {run.get('n_frames')}, device: {run.get('device')}"]
        if run.get("generate_frames_per_s"):
            lines.append(f"generation throughput: {_fmt(run['generate_frames_per_s'])} frames/s; whole evaluation: "
                         f"{_fmt(run.get('evaluate_frames_per_s'))} frames/s")
        for key in ("floor", "psnr_max_db", "ifc_norm", "lmd_reference", "lmd_eval_size", "lse_official_scorer",
                    "lse_expert_scorer"):
            if key in run:
                lines.append(f"{key}: {run[key]}")
        for g, d in (run.get("groups") or {}).items():
            lines.append(f"group {g}: {d}")
        if isinstance(run.get("generator"), dict) and run["generator"]:
            lines.append("generator: " + ", ".join(f"{k}={_fmt(v)}" for k, v in run["generator"].items()))
        if run.get("skipped"):
            lines.append(f"skipped clips: {len(run['skipped'])} (first: {run['skipped'][0]})")
        doc.bullets(lines)
    doc.table(tables.comparison_table(ev if isinstance(ev, dict) else None))

    per_clip_path = metrics_dir / "eval_per_clip.csv"
    if per_clip_path.is_file():
        import pandas as pd

        try:
            summary = tables.per_clip_summary(pd.read_csv(per_clip_path))
        except Exception as e:
            summary = None
            doc.note_missing(f"per-clip metrics: {per_clip_path} could not be read ({type(e).__name__}: {e})")
        if summary is not None:
            doc.table(summary)
    else:
        doc.note_missing(f"per-clip metrics: {per_clip_path} is missing")
    for f in figs.lse_offset_figures(plots_dir, fig_dir, cfg.dpi):
        doc.figure(f)

    # --- samples
    doc.heading("Samples")
    sample_pngs = [p for p in [plots_dir / "eval_samples.png", *sorted((plots_dir / "samples").glob("*.png"))]
                   if p.is_file()]
    if sample_pngs:
        doc.para("Columns of the evaluation grid: ground truth | identity reference | silent reference (G_S, when "
                 "used) | generated | floor. Rows: frames spread over the first test clips.")
        for p in sample_pngs:
            copy = fig_dir / f"sample_{p.stem}.png"
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(p, copy)
            doc.figure(figs.Figure(f"Samples: {p.stem}", copy, str(p.relative_to(root)), pixelated=True))
    else:
        doc.note_missing(f"samples: no {plots_dir}/eval_samples.png or {plots_dir}/samples/*.png")

    # --- ablation
    doc.heading("Ablation")
    exps = load_experiments(cfg, root, doc)
    if exps is not None:
        if exps:
            doc.table(tables.ablation_table(exps, max_params=cfg.max_ablation_params))
        else:
            doc.note_missing("ablation: the experiments file lists no experiment")
    doc.table(tables.paper_ablation_table())

    # --- sync experts
    doc.heading("Sync experts")
    for f in figs.sync_cosine_figures(plots_dir, fig_dir, cfg.dpi) + figs.robustness_figures(plots_dir, fig_dir,
                                                                                                cfg.dpi):
        doc.figure(f)

    # --- training
    doc.heading("Training")
    for stage in ("syncnet", "avsyncnet", "silent", "generator"):
        m = _read_json(metrics_dir / f"{stage}.json", doc, f"training metrics of {stage}")
        if isinstance(m, dict):
            flat = tables._flatten(m)
            doc.table(tables.Table(["Metric", "Value"], [[k, _fmt(v)] for k, v in flat.items()],
                                   f"metrics/{stage}.json"))
    for stage in ("silent", "generator"):  # the checks after training (stages analyse_silent / analyse_generator)
        m = _read_json(metrics_dir / f"{stage}_analysis.json", doc, f"checks of {stage}")
        if isinstance(m, dict):
            flat = tables._flatten(m)
            doc.table(tables.Table(["Check", "Value"], [[k, _fmt(v)] for k, v in flat.items()],
                                   f"metrics/{stage}_analysis.json"))
    for f in figs.training_figures(plots_dir, fig_dir, cfg.dpi):
        doc.figure(f)

    # --- what is missing, once more in one place
    if doc.missing:
        doc.blocks.append(Block("heading", "Missing inputs", 2))
        doc.blocks.append(Block("list", list(doc.missing)))
    return doc
