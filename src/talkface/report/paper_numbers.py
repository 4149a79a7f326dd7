"""Numbers the papers report, for the report's comparison tables. Other data and setup than a talkface run: LRS2 test
set, FAN crops, official syncnet_v2 for LSE, the authors' AV-HuBERT checkpoint.

Sources (see /work/shared/METHOD.md §6, §7, §9 and papers/):
- P2 = Yaman et al., "Audio-Visual Speech Representation Expert for Enhanced Talking Face Video Generation and
  Evaluation" (CVPRW 2024), Table 1 (LRS2) and Table 4 (ablation, LRS2) [paper].
- P1 = Yaman et al., "Audio-driven Talking Face Generation with Stabilized Synchronization Loss" (ECCV 2024): the full
  model on LRS2 without face restoration and the partial ablation numbers, from secondary summaries of P1 that were
  not checked against the PDF [notes].
- Real LRS2 videos' LSE-C / LSE-D as the Wav2Lip paper reports them [code/paper notes in METHOD.md §7].
"""

from __future__ import annotations

COLUMNS = ("SSIM", "PSNR", "FID", "IFC", "LMD", "LSE-C", "LSE-D", "AVSu", "AVSm", "AVSv")
HIGHER_IS_BETTER = {"SSIM": True, "PSNR": True, "FID": False, "IFC": False, "LMD": False, "LSE-C": True,
                    "LSE-D": False, "AVSu": True, "AVSm": True, "AVSv": True}


def _row(label: str, source: str, values: dict[str, float]) -> dict:
    unknown = set(values) - set(COLUMNS)
    if unknown:
        raise ValueError(f"paper row {label!r}: unknown columns {sorted(unknown)}")
    return {"label": label, "source": source, "values": dict(values)}


# Headline comparison (the layout of P2 Table 1, LRS2 columns).
REFERENCE_ROWS = [
    _row("P2 \"Ours\" (LRS2)", "P2 Table 1 [paper]",
         {"SSIM": 0.947, "PSNR": 31.273, "FID": 4.51, "LMD": 1.188, "LSE-C": 7.958, "LSE-D": 6.301,
          "AVSu": 0.508, "AVSm": 0.939, "AVSv": 0.879}),
    _row("P1 full model, w/o face restoration (LRS2)", "P1 main results [notes, METHOD.md §6]",
         {"SSIM": 0.952, "PSNR": 32.64, "FID": 3.83, "IFC": 0.16, "LMD": 1.13, "LSE-C": 8.41, "LSE-D": 6.03}),
    _row("Wav2Lip (LRS2)", "P2 Table 1 [paper]",
         {"SSIM": 0.865, "PSNR": 26.538, "FID": 7.05, "LMD": 2.388, "LSE-C": 7.594, "LSE-D": 6.759,
          "AVSu": 0.248, "AVSm": 0.659, "AVSv": 0.289}),
    _row("Real LRS2 test videos", "Wav2Lip paper, via METHOD.md §7",
         {"LSE-C": 7.838, "LSE-D": 6.736}),
]

# Ablations the papers report (LRS2), shown beside this project's queued experiments.
P2_ABLATION_ROWS = [
    _row("P2 baseline (lip-expert sync loss)", "P2 Table 4 [paper]",
         {"SSIM": 0.864, "PSNR": 26.424, "FID": 12.25, "LMD": 2.423, "LSE-C": 7.116, "LSE-D": 7.396,
          "AVSu": 0.301, "AVSm": 0.637, "AVSv": 0.423}),
    _row("P2 visual-visual AV-HuBERT loss", "P2 Table 4 [paper]",
         {"SSIM": 0.905, "PSNR": 29.248, "FID": 15.14, "LMD": 1.798, "LSE-C": 7.481, "LSE-D": 6.556,
          "AVSu": 0.381, "AVSm": 0.765, "AVSv": 0.545}),
    _row("P2 multimodal AV-HuBERT loss", "P2 Table 4 [paper]",
         {"SSIM": 0.910, "PSNR": 30.014, "FID": 6.11, "LMD": 1.774, "LSE-C": 6.998, "LSE-D": 6.794,
          "AVSu": 0.395, "AVSm": 0.789, "AVSv": 0.575}),
    _row("P2 unsupervised AV-HuBERT loss", "P2 Table 4 [paper]",
         {"SSIM": 0.947, "PSNR": 31.273, "FID": 4.51, "LMD": 1.188, "LSE-C": 7.958, "LSE-D": 6.301,
          "AVSu": 0.508, "AVSm": 0.939, "AVSv": 0.879}),
]
P1_ABLATION_ROWS = [
    _row("P1 A: plain sync loss", "P1 Table 2 [notes]", {"LSE-C": 7.116, "LSE-D": 7.396, "LMD": 2.408}),
    _row("P1 B: frozen AVSyncNet audio encoder", "P1 Table 2 [notes]", {"LSE-C": 7.271, "LSE-D": 7.106, "LMD": 2.325}),
    _row("P1 D: + silent-lip generator", "P1 Table 2 [notes]", {"LSE-C": 7.752, "LMD": 1.741}),
    _row("P1 E: D with stabilized sync loss", "P1 Table 2 [notes]", {"SSIM": 0.925, "PSNR": 31.17}),
    _row("P1 G: E + adaptive triplet loss", "P1 Table 2 [notes]", {"PSNR": 32.75, "FID": 4.02}),
]
