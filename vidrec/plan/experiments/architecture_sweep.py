"""Experiment architecture_sweep: every 18-layer network of the paper's Table 2 trained and tested alike
(Tran et al. 2018, section 4.1). Its page: vidrec/report/experiment_pages/architecture_sweep.py.
"""
from __future__ import annotations

from vidrec.plan.experiments.base import Experiment, run_file, run_spec, scratch_name


def runs(x: dict, model: dict) -> dict[str, dict]:
    """One run per architecture, each on the one clip spec (experiments.model's arch is not used)."""
    return {scratch_name(a, x["clip"]): run_spec(model, x["clip"], arch=a) for a in x["archs"]}


def plan(cfg: dict, p: dict) -> list[str]:
    """archs: architecture -> its run."""
    x, split = p["config"], p["split"]
    p["archs"] = {a: scratch_name(a, x["clip"]) for a in x["archs"]}
    files: list[str] = []
    for run in p["archs"].values():
        files += [run_file(cfg, split, run, "evaluation"), run_file(cfg, split, run, "summary")]
    return files


EXPERIMENT = Experiment(
    name="architecture_sweep", title="2D, 3D, mixed and (2+1)D convolutions at equal depth",
    clip_fields=("clip",), runs=runs, plan=plan, model_keys=("protocol",))
