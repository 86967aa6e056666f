"""What every experiment definition is made of: the `Experiment` record the registry holds and the
helpers that name the runs an experiment generates and the files its aggregation reads.

Torch-free and cheap: the Snakefile reads every definition at parse time.

Generated runs are ordinary model runs (arch, protocol, args, clip, protocol_overrides, init_from),
trained and evaluated by the normal `train` / `evaluate` rules under results/<dataset>/split<N>/<run>/.
They are named by what they are, so experiments that need the same network share one training:

    x_<arch>_<clip>                 trained from scratch on clip spec <clip>
    x_<arch>_<from>_to_<to>         initialised from x_<arch>_<from>, fine-tuned on clip spec <to>

Evaluating a run on another clip spec than its own writes results/<dataset>/split<N>/<run>/at_<clip>/
(rule `evaluate_at`): the same files as `evaluate` plus scores.npz, the softmax of every clip.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

from vidrec.plan.layout import TRAIN_FILES, Layout
from vidrec.core.merge import deep_merge


def _no_problems(cfg: dict, x: dict) -> list[str]:
    return []


@dataclass(frozen=True)
class Experiment:
    """One of Tran et al.'s experiments, as its module (vidrec/plan/experiments/<name>.py) declares it.

    name         its key under config `experiments:`, its target, its results folder and its claims.yaml block
    title        the heading of its page and of its report section
    clip_fields  the keys of its config block that name clip specs (one name or a list each)
    runs         (its config block, its model settings) -> run name -> run spec: the runs it trains
    plan         (cfg, plan) -> the files it reads, relative to results/<dataset>; it may add its roles to the
                 plan (a dict with name, title, split, runs, config and model), which its aggregation reads
    model_keys   the model settings it needs (experiments.model or its own model block)
    check        (cfg, its config block) -> problems beyond unknown clip specs, protocols and models
    """

    name: str
    title: str
    clip_fields: tuple[str, ...]
    runs: Callable[[dict, dict], dict[str, dict]]
    plan: Callable[[dict, dict], list[str]]
    model_keys: tuple[str, ...] = ("arch", "protocol")
    check: Callable[[dict, dict], list[str]] = _no_problems

    def clips(self, x: dict) -> list[str]:
        """Every clip spec its config block `x` names, in field order."""
        names: list[str] = []
        for field in self.clip_fields:
            value = x.get(field)
            names += [value] if isinstance(value, str) else list(value or [])
        return list(dict.fromkeys(names))


def run_spec(model: dict, clip: str, arch: str | None = None, init_from: str | None = None,
             extra_overrides: dict | None = None) -> dict:
    """A generated run's spec: the experiment's model settings on clip spec `clip`."""
    spec = {"arch": arch or model["arch"], "protocol": model["protocol"], "args": copy.deepcopy(model.get("args") or {}),
            "clip": clip}
    overrides = deep_merge(model.get("protocol_overrides") or {}, extra_overrides)
    if overrides:
        spec["protocol_overrides"] = overrides
    if init_from:
        spec["init_from"] = init_from
    return spec


def scratch_name(arch: str, clip: str) -> str:
    return f"x_{arch}_{clip}"


def finetune_name(arch: str, from_clip: str, to_clip: str) -> str:
    return f"x_{arch}_{from_clip}_to_{to_clip}"


def experiment_seed(cfg: dict) -> int:
    """The seed the experiments train with: the first of train.seeds (generated runs list no seeds)."""
    return int(cfg["train"]["seeds"][0])


def run_file(cfg: dict, split: int, run: str, kind: str) -> str:
    """Path of a run's file (a Layout TRAIN_FILES or EVALUATION_FILES kind) relative to results/<dataset>."""
    layout = Layout.of(cfg)
    seed = experiment_seed(cfg)
    path = layout.train_file(split, run, seed, kind) if kind in TRAIN_FILES else layout.evaluation_file(split, run, seed, kind)
    return str(path.relative_to(layout.results))


def at_file(cfg: dict, split: int, run: str, clip: str, kind: str) -> str:
    """A run evaluated on another clip spec (rule evaluate_at)."""
    layout = Layout.of(cfg)
    return str(layout.evaluation_file(split, run, experiment_seed(cfg), kind, at_clip=clip).relative_to(layout.results))


def evaluation_file(cfg: dict, runs: dict, split: int, run: str, clip: str) -> str:
    """The run's own evaluation when `clip` is its training clip spec, else its at_<clip> evaluation."""
    return run_file(cfg, split, run, "evaluation") if runs[run]["clip"] == clip else \
        at_file(cfg, split, run, clip, "evaluation")
