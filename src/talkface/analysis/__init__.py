"""Analyses of trained models: lip leaking, the silent-lip check."""
