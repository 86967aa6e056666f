"""Experiment clip_length_transfer: a network trained at each configured clip length and tested at every
configured length (Tran et al. 2018, section 4.3). Its page: vidrec/report/experiment_pages/clip_length_transfer.py.
"""
from __future__ import annotations

from vidrec.plan.experiments.base import Experiment, evaluation_file, run_file, run_spec, scratch_name


def runs(x: dict, model: dict) -> dict[str, dict]:
    """One run from scratch per training clip spec."""
    return {scratch_name(model["arch"], c): run_spec(model, c) for c in x["train_clips"]}


def plan(cfg: dict, p: dict) -> list[str]:
    """cells: one per (training clip, test clip), with the evaluation it reads."""
    x, split = p["config"], p["split"]
    files: list[str] = []
    p["cells"] = []
    for c_tr in x["train_clips"]:
        run = scratch_name(p["model"]["arch"], c_tr)
        files.append(run_file(cfg, split, run, "summary"))
        for c_te in x["test_clips"]:
            path = evaluation_file(cfg, p["runs"], split, run, c_te)
            p["cells"].append({"run": run, "train_clip": c_tr, "test_clip": c_te, "evaluation": path})
            files.append(path)
    return files


EXPERIMENT = Experiment(
    name="clip_length_transfer", title="Clip length: train at one length, test at others",
    clip_fields=("train_clips", "test_clips"), runs=runs, plan=plan)
