"""Leaf helpers every layer may use: the offline guard, the shared SQLite state, CJK text, hashing.
Rule: nothing here imports kura code (app, ingest, retrieval, models)."""
