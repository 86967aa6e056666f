"""The experiments a configuration runs: config `experiments:` -> generated model runs, each experiment's
plan (its runs by role and the files it reads), its output files and the cross-key checks.

Config-level (it resolves run names for vidrec.plan.config and vidrec.plan.runs): it asks the registry
(`vidrec.plan.experiments.EXPERIMENTS`, one definition module per experiment) and holds no experiment's
particulars. No torch here: the Snakefile calls these at parse time, `vidrec.plan.config` to check the
section and `vidrec.plan.runs` to resolve the generated runs, and `vidrec experiment` to find the very files
the rule lists as its inputs.
"""
from __future__ import annotations

import json

from vidrec.core.errors import ConfigError
from vidrec.plan.experiments import EXPERIMENTS, Experiment
from vidrec.plan.experiments.base import at_file
from vidrec.plan.layout import EXPERIMENT_FILES
from vidrec.core.merge import deep_merge


class ExperimentError(ConfigError):
    """An experiment is not configured, or configured inconsistently; the message names the key."""


def configured(cfg: dict) -> list[str]:
    """Names of the experiments defined under `experiments:` (in the registry's order)."""
    xcfg = cfg.get("experiments") or {}
    return [n for n in EXPERIMENTS if xcfg.get(n)]


def experiment(name: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise ExperimentError(f"unknown experiment '{name}' (one of {', '.join(EXPERIMENTS)})")
    return EXPERIMENTS[name]


def experiment_config(cfg: dict, name: str) -> dict:
    """The config block experiments.<name> (ExperimentError naming the key when it is absent)."""
    experiment(name)
    xcfg = cfg.get("experiments") or {}
    if not xcfg.get(name):
        raise ExperimentError(f"config key 'experiments.{name}': the experiment is not configured "
                              "(see config.yaml and README 'Experiments of Tran et al.')")
    return xcfg[name]


def base_model(cfg: dict, name: str) -> dict:
    """experiments.model with experiments.<name>.model merged over it; ExperimentError when a key the
    experiment needs is missing."""
    xcfg = cfg.get("experiments") or {}
    model = deep_merge(xcfg.get("model") or {}, experiment_config(cfg, name).get("model"))
    for key in experiment(name).model_keys:
        if not model.get(key):
            raise ExperimentError(f"config key 'experiments.model.{key}' (or experiments.{name}.model.{key}) "
                                  "is missing")
    return model


def runs_of(cfg: dict, name: str) -> dict[str, dict]:
    """The model runs one experiment trains: run name -> model run spec."""
    return experiment(name).runs(experiment_config(cfg, name), base_model(cfg, name))


def experiment_runs(cfg: dict) -> dict[str, dict]:
    """Every generated run of every configured experiment; one name, one spec (else ExperimentError)."""
    runs: dict[str, dict] = {}
    owner: dict[str, str] = {}
    for name in configured(cfg):
        for run, spec in runs_of(cfg, name).items():
            if run in runs and runs[run] != spec:
                raise ExperimentError(
                    f"config keys 'experiments.{owner[run]}' and 'experiments.{name}' both need run '{run}' but "
                    f"with different settings ({json.dumps(runs[run], sort_keys=True)} vs "
                    f"{json.dumps(spec, sort_keys=True)}); use the same model settings (experiments.model) or "
                    "another clip spec")
            runs.setdefault(run, spec)
            owner.setdefault(run, name)
    return runs


def split_of(cfg: dict) -> int:
    """The official split the experiments train and test on."""
    return cfg["experiments"]["split"]


def plan(cfg: dict, name: str) -> dict:
    """What one experiment reads: its runs by role and every input file (relative to results/<dataset>).

    `inputs` is exactly what the experiment's rule declares and what `vidrec experiment` reads;
    `at_evaluations` the (run, clip) of every evaluation on another clip spec than the run's own.
    """
    xp = experiment(name)
    x = experiment_config(cfg, name)
    p: dict = {"name": name, "title": xp.title, "split": split_of(cfg), "runs": runs_of(cfg, name), "config": x,
               "model": base_model(cfg, name)}
    p["inputs"] = list(dict.fromkeys(xp.plan(cfg, p)))
    p["at_evaluations"] = sorted({(run, clip) for run in p["runs"] for clip in xp.clips(x)
                                  if at_file(cfg, p["split"], run, clip, "evaluation") in p["inputs"]})
    return p


def clips_named(cfg: dict) -> set[str]:
    """Every clip spec the `experiments:` section names (decoded for whichever dataset is active)."""
    xcfg = cfg.get("experiments") or {}
    return {c for name in configured(cfg) for c in EXPERIMENTS[name].clips(xcfg[name])}


def output_files(name: str) -> dict[str, str]:
    """Output key (vidrec.plan.layout.EXPERIMENT_FILES) -> path relative to results/<dataset>."""
    return {k: f"experiments/{name}/{v}" for k, v in EXPERIMENT_FILES.items()}


def report_files(cfg: dict) -> list[str]:
    """What the comparison report reads when experiments.in_report is true (relative to results/<dataset>)."""
    if not (cfg.get("experiments") or {}).get("in_report"):
        return []
    return [output_files(n)[k] for n in configured(cfg) for k in ("summary", "figure")]


def check(cfg: dict, clips: dict, protocols: dict, known_archs: frozenset[str]) -> list[str]:
    """Cross-key problems of the experiments section (used by vidrec.plan.config.check_references)."""
    problems = []
    xcfg = cfg.get("experiments") or {}
    for name in configured(cfg):
        x, xp = xcfg[name], EXPERIMENTS[name]
        key = f"experiments.{name}"
        for field in xp.clip_fields:
            names = x.get(field)
            for c in ([names] if isinstance(names, str) else names or []):
                if c not in clips:
                    problems.append(f"config key '{key}.{field}': unknown clip spec '{c}' "
                                    f"(define it under 'clips': {sorted(clips)})")
        try:
            runs = runs_of(cfg, name)
        except ExperimentError as err:
            problems.append(str(err))
            continue
        for run, spec in runs.items():
            if spec["protocol"] not in protocols:
                problems.append(f"config key '{key}' (run {run}): unknown protocol '{spec['protocol']}' "
                                f"(one of {sorted(protocols)})")
            if spec["arch"] not in known_archs:
                problems.append(f"config key '{key}' (run {run}): unknown model '{spec['arch']}'; "
                                "`vidrec models` lists the registered names")
        problems += xp.check(cfg, x)
    try:
        experiment_runs(cfg)
    except ExperimentError as err:
        problems.append(str(err))
    return problems
