"""Experiment definitions: config `experiments:` -> generated model runs and the files each experiment reads.

Config-level (it resolves run names for vidrec.config), so it sits beside the config, below the
experiments package that aggregates the runs and the report that shows them.

No torch here: the Snakefile calls these at parse time, `vidrec.config.run_config` to resolve the
generated run names, and `vidrec experiment` to find the very files the rule lists as its inputs.

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
import json

from vidrec.errors import ConfigError
from vidrec.layout import EXPERIMENT_FILES, TRAIN_FILES, Layout
from vidrec.merge import deep_merge as _deep_merge

EXPERIMENTS = ("clip_length_transfer", "finetune_8_to_32", "clips_per_video", "architecture_sweep")
TITLES = {
    "clip_length_transfer": "Clip length: train at one length, test at others",
    "finetune_8_to_32": "Fine-tuning from short clips to long clips: accuracy and training time",
    "clips_per_video": "Video-level accuracy and inference time against the clips averaged per video",
    "architecture_sweep": "2D, 3D, mixed and (2+1)D convolutions at equal depth",
}
# Files every experiment writes under results/<dataset>/experiments/<name>/ (rules/experiments.smk
# declares the same names).
OUTPUTS = EXPERIMENT_FILES  # vidrec/layout.py owns the names


class ExperimentError(ConfigError):
    """An experiment is not configured, or configured inconsistently; the message names the key."""


def configured(cfg: dict) -> list[str]:
    """Names of the experiments defined under `experiments:` (in the canonical order)."""
    xcfg = cfg.get("experiments") or {}
    return [n for n in EXPERIMENTS if xcfg.get(n)]


def experiment_config(cfg: dict, name: str) -> dict:
    if name not in EXPERIMENTS:
        raise ExperimentError(f"unknown experiment '{name}' (one of {', '.join(EXPERIMENTS)})")
    xcfg = cfg.get("experiments") or {}
    if not xcfg.get(name):
        raise ExperimentError(f"config key 'experiments.{name}': the experiment is not configured "
                              "(see config.yaml and README 'Experiments of Tran et al.')")
    return xcfg[name]


def base_model(cfg: dict, name: str) -> dict:
    """experiments.model with experiments.<name>.model merged over it."""
    xcfg = cfg.get("experiments") or {}
    return _deep_merge(xcfg.get("model") or {}, experiment_config(cfg, name).get("model"))


def _run(model: dict, clip: str, arch: str | None = None, init_from: str | None = None,
         extra_overrides: dict | None = None) -> dict:
    spec = {"arch": arch or model["arch"], "protocol": model["protocol"], "args": copy.deepcopy(model.get("args") or {}),
            "clip": clip}
    overrides = _deep_merge(model.get("protocol_overrides") or {}, extra_overrides)
    if overrides:
        spec["protocol_overrides"] = overrides
    if init_from:
        spec["init_from"] = init_from
    return spec


def scratch_name(arch: str, clip: str) -> str:
    return f"x_{arch}_{clip}"


def finetune_name(arch: str, from_clip: str, to_clip: str) -> str:
    return f"x_{arch}_{from_clip}_to_{to_clip}"


def runs_of(cfg: dict, name: str) -> dict[str, dict]:
    """The model runs one experiment trains: run name -> model run spec."""
    x = experiment_config(cfg, name)
    m = base_model(cfg, name)
    for key in ("arch", "protocol"):
        if name != "architecture_sweep" and not m.get(key):
            raise ExperimentError(f"config key 'experiments.model.{key}' (or experiments.{name}.model.{key}) "
                                  "is missing")
    if name == "clip_length_transfer":
        return {scratch_name(m["arch"], c): _run(m, c) for c in x["train_clips"]}
    if name == "finetune_8_to_32":
        src, dst = x["from_clip"], x["to_clip"]
        runs = {scratch_name(m["arch"], src): _run(m, src), scratch_name(m["arch"], dst): _run(m, dst)}
        runs[finetune_name(m["arch"], src, dst)] = _run(
            m, dst, init_from=scratch_name(m["arch"], src),
            extra_overrides=(x.get("finetune") or {}).get("protocol_overrides"))
        return runs
    if name == "clips_per_video":
        return {scratch_name(m["arch"], x["train_clip"]): _run(m, x["train_clip"])}
    if name == "architecture_sweep":
        if not m.get("protocol"):
            raise ExperimentError("config key 'experiments.model.protocol' is missing")
        return {scratch_name(a, x["clip"]): _run(m, x["clip"], arch=a) for a in x["archs"]}
    raise ExperimentError(f"unknown experiment '{name}'")


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


# ----------------------------------------------------------------------------- files
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


def plan(cfg: dict, name: str) -> dict:
    """What one experiment reads: its runs by role and every input file (relative to results/<dataset>).

    `inputs` is exactly what the experiment's rule declares and what `vidrec experiment` reads.
    """
    x = experiment_config(cfg, name)
    runs = runs_of(cfg, name)
    split = (cfg.get("experiments") or {}).get("split", 1)
    m = base_model(cfg, name)
    p: dict = {"name": name, "title": TITLES[name], "split": split, "runs": runs, "config": x}
    files: list[str] = []
    if name == "clip_length_transfer":
        p["cells"] = []
        for c_tr in x["train_clips"]:
            run = scratch_name(m["arch"], c_tr)
            files.append(run_file(cfg, split, run, "summary"))
            for c_te in x["test_clips"]:
                path = evaluation_file(cfg, runs, split, run, c_te)
                p["cells"].append({"run": run, "train_clip": c_tr, "test_clip": c_te, "evaluation": path})
                files.append(path)
    elif name == "finetune_8_to_32":
        src, dst = x["from_clip"], x["to_clip"]
        roles = {"short": scratch_name(m["arch"], src), "long": scratch_name(m["arch"], dst),
                 "finetuned": finetune_name(m["arch"], src, dst)}
        p["roles"] = roles
        p["evaluations"] = {
            "short_at_short": evaluation_file(cfg, runs, split, roles["short"], src),
            "short_at_long": evaluation_file(cfg, runs, split, roles["short"], dst),
            "long_at_long": evaluation_file(cfg, runs, split, roles["long"], dst),
            "finetuned_at_long": evaluation_file(cfg, runs, split, roles["finetuned"], dst),
        }
        files += list(p["evaluations"].values())
        for run in roles.values():
            files += [run_file(cfg, split, run, "summary"), run_file(cfg, split, run, "metrics")]
    elif name == "clips_per_video":
        run = scratch_name(m["arch"], x["train_clip"])
        p["run"], p["test_clip"], p["counts"] = run, x["test_clip"], list(x["counts"])
        p["evaluation"] = at_file(cfg, split, run, x["test_clip"], "evaluation")
        p["scores"] = at_file(cfg, split, run, x["test_clip"], "scores")
        files += [p["evaluation"], p["scores"]]
    elif name == "architecture_sweep":
        p["archs"] = {a: scratch_name(a, x["clip"]) for a in x["archs"]}
        for run in p["archs"].values():
            files += [run_file(cfg, split, run, "evaluation"), run_file(cfg, split, run, "summary")]
    p["inputs"] = list(dict.fromkeys(files))
    # (run, clip) of every evaluation on another clip spec than the run's own (rule evaluate_at)
    p["at_evaluations"] = sorted({(run, clip) for run in runs for clip in _clips_read(x, name)
                                  if at_file(cfg, split, run, clip, "evaluation") in p["inputs"]})
    return p


def _clips_read(x: dict, name: str) -> list[str]:
    """Every clip spec an experiment's evaluations may use."""
    fields = ("test_clips", "from_clip", "to_clip", "test_clip", "train_clip", "clip")
    return sorted({c for f in fields for c in ([x[f]] if isinstance(x.get(f), str) else x.get(f) or [])})


def output_files(name: str) -> dict[str, str]:
    """Output key -> path relative to results/<dataset>."""
    return {k: f"experiments/{name}/{v}" for k, v in OUTPUTS.items()}


def report_files(cfg: dict) -> list[str]:
    """What the comparison report reads when experiments.in_report is true (relative to results/<dataset>)."""
    if not (cfg.get("experiments") or {}).get("in_report"):
        return []
    return [output_files(n)[k] for n in configured(cfg) for k in ("summary", "figure")]


def check(cfg: dict, clips: dict, protocols: dict, known_archs: frozenset[str]) -> list[str]:
    """Cross-key problems of the experiments section (used by vidrec.config.check_references)."""
    problems = []
    xcfg = cfg.get("experiments") or {}
    for name in configured(cfg):
        x = xcfg[name]
        key = f"experiments.{name}"
        for field in ("train_clips", "test_clips", "from_clip", "to_clip", "train_clip", "test_clip", "clip"):
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
    if "clips_per_video" in configured(cfg):
        x = xcfg["clips_per_video"]
        stored = (clips.get(x["test_clip"]) or {}).get("clips_per_video", 1)
        if not any(k <= stored for k in x["counts"]):
            problems.append(f"config key 'experiments.clips_per_video.counts': none of {x['counts']} is <= the "
                            f"{stored} clips per video that clip spec '{x['test_clip']}' stores")
    if "finetune_8_to_32" in configured(cfg):
        x = xcfg["finetune_8_to_32"]
        if x["from_clip"] == x["to_clip"]:
            problems.append("config key 'experiments.finetune_8_to_32': from_clip and to_clip must differ")
    try:
        experiment_runs(cfg)
    except ExperimentError as err:
        problems.append(str(err))
    return problems
