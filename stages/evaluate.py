"""DVC stage `evaluate`: G_L on the test split -> metrics/eval.json, metrics/eval_per_clip.csv, plots/eval_*,
data/eval/videos/<clip>.mp4 (talkface.evaluate)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout's src/ on sys.path)
from talkface.config import load_params, section  # noqa: E402
from talkface.evaluate import EvaluateConfig, EvaluateOutputs, evaluate  # noqa: E402
from talkface.model_inputs import contract_params  # noqa: E402
from talkface.tracking import stage_run  # noqa: E402

# the stage's outs in dvc.yaml
OUTPUTS = EvaluateOutputs(eval_json=Path("metrics/eval.json"), per_clip_csv=Path("metrics/eval_per_clip.csv"),
                          frames_csv=Path("plots/eval_frames.csv"), lse_curves_csv=Path("plots/eval_lse_offsets.csv"),
                          samples_png=Path("plots/eval_samples.png"), videos_dir=Path("data/eval/videos"))


def configs(params: dict) -> EvaluateConfig:
    """The stage's settings: `evaluate`, with the training windows and mel parameters passed down (pipeline_params)."""
    return section(params, "evaluate", EvaluateConfig, passed=contract_params(params))


def main() -> None:
    cfg = configs(load_params())
    with stage_run("evaluate", dataclasses.asdict(cfg)) as run:
        result = evaluate(cfg, OUTPUTS)
        for group in ("model", "ceiling", "floor"):
            run.log_metrics({f"{group}.{k}": v for k, v in result[group].items()})
        run.log_metrics({k: v for k, v in result["run"].items() if k.endswith("_per_s") and v})
        run.log_artifact(OUTPUTS.eval_json)
    r, m = result["run"], result["model"]
    shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} n/a" for k, v in m.items() if k != "n_clips")
    print(f"[evaluate] {r['n_clips']} clips, {r['n_frames']} frames, {r['generate_frames_per_s'] or 0:.1f} frames/s "
          f"generation; model: {shown}")


if __name__ == "__main__":
    main()
