"""Post-training analyses: sync-expert stability and robustness (sync_analysis.py, P1 appendix A-B), lip leaking and
the silent-lip check (leaking.py, generator_checks.py). Import from the modules (this package runs none of them)."""
