"""Engine adapters: one per native binding, each behind a small interface (see base.py)."""
