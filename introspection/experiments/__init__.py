"""Experiments beyond the main self- vs cross-prediction matrix (docs/method.md §6, 7, 8.2)."""
