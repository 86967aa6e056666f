"""Experiment clips_per_video: video-level accuracy against the number of clips averaged per video and the
inference time it costs (Tran et al. 2018, section 4.3). Its page: vidrec/report/experiment_pages/clips_per_video.py.
"""
from __future__ import annotations

from vidrec.plan.experiments.base import Experiment, at_file, run_spec, scratch_name


def runs(x: dict, model: dict) -> dict[str, dict]:
    return {scratch_name(model["arch"], x["train_clip"]): run_spec(model, x["train_clip"])}


def plan(cfg: dict, p: dict) -> list[str]:
    """run, test_clip, counts, and the evaluation and scores.npz of the run on the test clip spec."""
    x, split = p["config"], p["split"]
    run = scratch_name(p["model"]["arch"], x["train_clip"])
    p["run"], p["test_clip"], p["counts"] = run, x["test_clip"], list(x["counts"])
    p["evaluation"] = at_file(cfg, split, run, x["test_clip"], "evaluation")
    p["scores"] = at_file(cfg, split, run, x["test_clip"], "scores")
    return [p["evaluation"], p["scores"]]


def check(cfg: dict, x: dict) -> list[str]:
    """At least one count fits the clips the test clip spec stores (an unknown spec: reported as such)."""
    if x["test_clip"] not in cfg["clips"]:
        return []
    stored = cfg["clips"][x["test_clip"]]["clips_per_video"]
    if not any(k <= stored for k in x["counts"]):
        return [f"config key 'experiments.clips_per_video.counts': none of {x['counts']} is <= the "
                f"{stored} clips per video that clip spec '{x['test_clip']}' stores"]
    return []


EXPERIMENT = Experiment(
    name="clips_per_video",
    title="Video-level accuracy and inference time against the clips averaged per video",
    clip_fields=("train_clip", "test_clip"), runs=runs, plan=plan, check=check)
