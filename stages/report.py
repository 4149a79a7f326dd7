"""DVC stage `report`: reports/report.md and a self-contained reports/report.html from metrics/ and plots/
(talkface.report)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout's src/ on sys.path)
from talkface.config import load_params, section  # noqa: E402
from talkface.report.html import ReportConfig, build_report, write_report  # noqa: E402
from talkface.tracking import stage_run  # noqa: E402


def configs(params: dict) -> ReportConfig:
    return section(params, "report", ReportConfig)


def main() -> None:
    cfg = configs(load_params())
    with stage_run("report", dataclasses.asdict(cfg)) as run:
        doc = build_report(cfg)
        md, page = write_report(doc, Path(cfg.out_dir))
        run.log_metrics({"missing_inputs": len(doc.missing)})
        run.log_artifact(page)
    print(f"[report] {md}, {page}; {len(doc.missing)} missing input(s)")
    for line in doc.missing:
        print(f"[report]   missing: {line}")


if __name__ == "__main__":
    main()
