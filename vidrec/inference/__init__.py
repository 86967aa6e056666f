"""Inference on new videos: `vidrec predict` (decode workers feeding a batched model) and `vidrec export`.

Imports are lazy: decode worker processes import `vidrec.inference.decode` only (no torch).
May import: `vidrec.models`, `vidrec.data`, `vidrec.plan` and `vidrec.core`.
"""
from __future__ import annotations

__all__ = ["Predictor", "measure_end_to_end", "export_model", "load_exported"]


def __getattr__(name: str):
    if name in ("Predictor", "measure_end_to_end"):
        from vidrec.inference import predict

        return getattr(predict, name)
    if name in ("export_model", "load_exported"):
        from vidrec.inference import export

        return getattr(export, name)
    raise AttributeError(f"module 'vidrec.inference' has no attribute {name!r}")
