"""Section 7, Provenance: the seeds and determinism settings of every run (the rest: vidrec/core/provenance.py)."""
from __future__ import annotations

import pandas as pd

from vidrec.report.formatting import NA
from vidrec.report.load import Results


def runs_table(res: Results) -> pd.DataFrame:
    """Seeds and determinism settings of every run (from train.json)."""
    r = res.runs
    cols = {"split": "Split", "model": "Model", "train_seed": "Seed", "train_device": "Device",
            "train_world_size": "GPUs / processes", "train_threads": "Threads", "train_amp": "AMP",
            "train_deterministic_algorithms": "Deterministic algorithms", "train_epochs": "Epochs",
            "train_train_clips": "Train clips",
            "train_val_clips": "Test clips"}
    present = [c for c in cols if c in r.columns]
    return r[present].rename(columns=cols).astype(str).replace({"nan": NA, "None": NA})
