"""Post-training analyses (sync-expert stability and robustness, P1 appendix A-B)."""

from .sync_analysis import (SyncAnalysisConfig, analyse_expert, gt_cosine_curve, gt_cosines, lip_sync_loss,
                            offset_accuracy, robustness, table_a_stats)

__all__ = ["SyncAnalysisConfig", "analyse_expert", "gt_cosine_curve", "gt_cosines", "lip_sync_loss",
           "offset_accuracy", "robustness", "table_a_stats"]
