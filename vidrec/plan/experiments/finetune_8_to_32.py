"""Experiment finetune_8_to_32: a short-clip network fine-tuned on long clips, against the short-clip network
and a long-clip network trained from scratch (Tran et al. 2018, section 4.3). Its page:
vidrec/report/experiment_pages/finetune_8_to_32.py.
"""
from __future__ import annotations

from vidrec.plan.experiments.base import Experiment, evaluation_file, finetune_name, run_file, run_spec, scratch_name


def _roles(x: dict, model: dict) -> dict[str, str]:
    src, dst = x["from_clip"], x["to_clip"]
    return {"short": scratch_name(model["arch"], src), "long": scratch_name(model["arch"], dst),
            "finetuned": finetune_name(model["arch"], src, dst)}


def runs(x: dict, model: dict) -> dict[str, dict]:
    """Short and long from scratch, and the short one fine-tuned on long clips (its own overrides on top)."""
    roles = _roles(x, model)
    return {roles["short"]: run_spec(model, x["from_clip"]), roles["long"]: run_spec(model, x["to_clip"]),
            roles["finetuned"]: run_spec(model, x["to_clip"], init_from=roles["short"],
                                         extra_overrides=(x.get("finetune") or {}).get("protocol_overrides"))}


def plan(cfg: dict, p: dict) -> list[str]:
    """roles: short | long | finetuned -> run; evaluations: the four accuracies the table compares."""
    x, split, runs_ = p["config"], p["split"], p["runs"]
    src, dst = x["from_clip"], x["to_clip"]
    roles = p["roles"] = _roles(x, p["model"])
    p["evaluations"] = {
        "short_at_short": evaluation_file(cfg, runs_, split, roles["short"], src),
        "short_at_long": evaluation_file(cfg, runs_, split, roles["short"], dst),
        "long_at_long": evaluation_file(cfg, runs_, split, roles["long"], dst),
        "finetuned_at_long": evaluation_file(cfg, runs_, split, roles["finetuned"], dst),
    }
    files = list(p["evaluations"].values())
    for run in roles.values():
        files += [run_file(cfg, split, run, "summary"), run_file(cfg, split, run, "metrics")]
    return files


def check(cfg: dict, x: dict) -> list[str]:
    if x["from_clip"] == x["to_clip"]:
        return ["config key 'experiments.finetune_8_to_32': from_clip and to_clip must differ"]
    return []


EXPERIMENT = Experiment(
    name="finetune_8_to_32", title="Fine-tuning from short clips to long clips: accuracy and training time",
    clip_fields=("from_clip", "to_clip"), runs=runs, plan=plan, check=check)
