"""DVC stages `analyse_silent` and `analyse_generator`: `python stages/analyse_generator.py silent|generator`.

The checks of a trained generator on the validation windows of its training (analysis/generator_checks.py): for G_S
the silent check, for G_L the lip leak with and without G_S; both a sample grid. Reads `<section>.analysis`,
`<section>.mouth` and `<section>.loop.seed` (which validation windows), the shared `windows` and `mels.mel`; writes
metrics/<section>_analysis.json and plots/samples/<section>.png. Apart from training, so that changing what the
checks look at does not retrain the generator.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import _bootstrap  # noqa: F401  (this checkout's src/ on sys.path)
from talkface.analysis.generator_checks import GeneratorAnalysisConfig  # noqa: E402
from talkface.analysis.leaking import MouthOpeningConfig  # noqa: E402
from talkface.config import build, get, load_params  # noqa: E402
from talkface.data.mel_store import mel_params  # noqa: E402
from talkface.model_inputs import window_params  # noqa: E402
from talkface.tracking import stage_run  # noqa: E402
from talkface.analysis.generator_stage import STAGES, AnalysisPaths, analysis_stage  # noqa: E402


def paths(name: str) -> AnalysisPaths:
    """The stage's deps and outs in dvc.yaml."""
    return AnalysisPaths(Path("data/clips"), Path("data/mels"), Path("data/splits"), Path("models") / f"{name}.pt",
                         Path("models/silent.pt"), Path("metrics") / f"{name}_analysis.json",
                         Path("plots/samples") / f"{name}.png")


def configs(params: dict, name: str) -> dict:
    """`<name>.analysis`, `<name>.mouth`, `<name>.loop.seed`, the windows and the mel parameters."""
    return {"cfg": build(GeneratorAnalysisConfig, get(params, f"{name}.analysis"), f"{name}.analysis"),
            "mouth": build(MouthOpeningConfig, get(params, f"{name}.mouth"), f"{name}.mouth"),
            "seed": int(get(params, f"{name}.loop.seed")),
            "window": window_params(params), "mel": mel_params(params)}


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in STAGES:
        sys.exit(f"usage: python stages/analyse_generator.py {'|'.join(STAGES)}")
    name = sys.argv[1]
    c = configs(load_params(), name)
    logged = {"analysis": dataclasses.asdict(c["cfg"]), "mouth": dataclasses.asdict(c["mouth"]), "seed": c["seed"]}
    with stage_run(f"analyse_{name}", logged) as run:
        checks = analysis_stage(name, c["cfg"], c["mouth"], c["window"], c["mel"], c["seed"], paths(name), run)
    print(f"[analyse_{name}] {', '.join(checks)} -> metrics/{name}_analysis.json, plots/samples/{name}.png")


if __name__ == "__main__":
    main()
