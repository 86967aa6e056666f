"""Side-by-side table of measured complexity and published figures (backs `vidrec models`)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from vidrec.catalogue import published_text

from .complexity import model_complexity
from .registry import create_model, list_models

__all__ = ["models_table"]


def models_table(
    names: Sequence[str] | None = None,
    clip_shape: Sequence[int] = (3, 16, 160, 160),
    num_classes: int = 101,
    **overrides,
) -> pd.DataFrame:
    """One row per model: name, params, size_mb (fp32), gflops (one clip, FlopCounterMode), paper.

    `names` defaults to every registered model (full width: slow on CPU; pass a few).
    `overrides` go to every factory (e.g. base_width=16 for the demo's narrow models).
    """
    rows = []
    for name in names if names is not None else list_models():
        model = create_model(name, num_classes=num_classes, clip_shape=clip_shape, **overrides)
        c = model_complexity(model, clip_shape)
        rows.append(
            {
                "name": name,
                "params": int(c["params"]),
                "size_mb": round(c["size_mb_fp32"], 1),
                "gflops": round(c["gflops"], 2),
                "paper": published_text(name),
            }
        )
        del model
    return pd.DataFrame(rows, columns=["name", "params", "size_mb", "gflops", "paper"])
