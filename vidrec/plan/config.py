"""Configuration: load config.yaml and validate it against the schema (a run's settings: vidrec/plan/runs.py).

The schema (workflow/schemas/config.schema.yaml) is the single source of defaults; Snakemake's
`validate()` and this module read the same file, so the CLI and the workflow agree on every value.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from vidrec.plan.catalogue import MODEL_NAMES, torchvision_weights_problem, weights_name
from vidrec.plan import rehearsal
from vidrec.core.errors import ConfigError

# Package data: in a checkout, links to workflow/schemas/config.schema.yaml and config.yaml (the files a
# user edits); in a built wheel, copies of them, so an installed vidrec validates without a checkout.
SCHEMA_PATH = Path(__file__).parent.parent / "resources" / "config.schema.yaml"
DEFAULT_CONFIG = Path(__file__).parent.parent / "resources" / "config.yaml"


@functools.cache
def _defaults_filling_validator() -> type:
    base = jsonschema.Draft202012Validator

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults})


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = ""
    for p in error.absolute_path:
        parts += f"[{p}]" if isinstance(p, int) else (f".{p}" if parts else str(p))
    return parts or "(top level)"


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    return yaml.safe_load(SCHEMA_PATH.read_text())


def fill_defaults(block: dict, definition: str) -> dict:
    """Fill in place (and return) the schema's defaults of `definitions.<definition>` into a block put
    together after validation, e.g. a protocol merged with its overrides (overrides carry no defaults)."""
    schema = _schema()
    validator = _defaults_filling_validator()({**schema["definitions"][definition],
                                               "definitions": schema["definitions"]})
    for _ in validator.iter_errors(block):
        pass  # each part was validated where it was written; this pass only fills defaults
    return block


def _experiments_hint(error: jsonschema.ValidationError) -> str:
    """An unknown key under `experiments:` (a misspelt experiment): the registry's names, and the settings."""
    if list(error.absolute_path) != ["experiments"] or error.validator != "additionalProperties":
        return ""
    from vidrec.plan.experiments import EXPERIMENTS

    settings = sorted(set(error.schema["properties"]) - set(EXPERIMENTS))
    return f" (the experiments: {', '.join(EXPERIMENTS)}; the settings: {', '.join(settings)})"


def validate_config(cfg: dict) -> dict:
    """Validate in place (filling schema defaults) and check cross-references; return cfg."""
    _exponent_strings_to_floats(cfg)
    validator = _defaults_filling_validator()(_schema())  # fills copies of defaults: the schema stays as read
    errors = sorted(validator.iter_errors(cfg), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        lines = [f"config key '{_key_path(e)}': {e.message}{_experiments_hint(e)}" for e in errors]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines))
    check_references(cfg)
    return rehearsal.apply_caps(cfg)


_EXPONENT_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")


def _exponent_strings_to_floats(node: Any) -> None:
    """In place: '1e-4' -> 1e-4. PyYAML (and so Snakemake's config loader) follows YAML 1.1, which
    reads a float without a dot (`lr: 1e-4`) as a string; YAML 1.2 and every user read it as a number.
    Likewise 'true'/'false', which Snakemake's `--config key=true` passes as strings."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in list(items):
        if isinstance(v, str) and _EXPONENT_FLOAT.match(v):
            node[k] = float(v)
        elif isinstance(v, str) and v.lower() in ("true", "false"):  # `snakemake --config rehearsal=true`
            node[k] = v.lower() == "true"
        else:
            _exponent_strings_to_floats(v)


def check_references(cfg: dict) -> None:
    """Cross-key checks the schema cannot express; each problem names its key."""
    from vidrec.plan.experiment_runs import ExperimentError, clips_named, experiment_runs
    from vidrec.plan.experiment_runs import check as check_experiments

    problems = []
    if cfg["dataset"] not in cfg["datasets"]:
        problems.append(f"config key 'dataset': '{cfg['dataset']}' is not one of "
                        f"{sorted(cfg['datasets'])} (defined under 'datasets')")
    known = MODEL_NAMES  # the registry's names without importing torch (vidrec/plan/catalogue.py)
    for dname, ds in cfg["datasets"].items():
        if ds["clip"] not in cfg["clips"]:
            problems.append(f"config key 'datasets.{dname}.clip': unknown clip spec '{ds['clip']}' "
                            f"(define it under 'clips': {sorted(cfg['clips'])})")
        for run, spec in ds["models"].items():
            key = f"datasets.{dname}.models.{run}"
            if spec["arch"] not in known:
                problems.append(f"config key '{key}.arch': unknown model '{spec['arch']}'; "
                                f"`vidrec models` lists the {len(known)} registered names")
            if spec["protocol"] not in cfg["protocols"]:
                problems.append(f"config key '{key}.protocol': unknown protocol '{spec['protocol']}' "
                                f"(one of {sorted(cfg['protocols'])})")
            if spec.get("clip") and spec["clip"] not in cfg["clips"]:
                problems.append(f"config key '{key}.clip': unknown clip spec '{spec['clip']}'")
            init = spec.get("init_from")
            if init and weights_name(init):
                problems += _named_weights_problems(f"config key '{key}.init_from'", init, spec)
            elif init and (init == run or init not in ds["models"]):
                problems.append(f"config key '{key}.init_from': '{init}' is not another run under "
                                f"'datasets.{dname}.models' (known: {sorted(set(ds['models']) - {run})})")
        for pname in ds["protocol_overrides"]:
            if pname not in cfg["protocols"]:
                problems.append(f"config key 'datasets.{dname}.protocol_overrides.{pname}': "
                                f"no protocol of that name")
        synth = ds.get("synthetic")
        width, height = (synth["width"], synth["height"]) if synth else ds["frame_size"]
        used = {ds["clip"]} | {m["clip"] for m in ds["models"].values() if m.get("clip")}
        used |= clips_named(cfg)
        for cname in sorted(used & set(cfg["clips"])):
            crop = cfg["clips"][cname]["crop"]
            if crop is not None and crop > min(width, height):
                problems.append(f"config key 'clips.{cname}.crop': {crop} is larger than the {width}x{height} "
                                f"frames of dataset '{dname}'; use a crop <= {min(width, height)}")
        if synth:
            if ds["format"] != "ucf101":
                problems.append(f"config key 'datasets.{dname}.format': a synthetic set is written in the ucf101 "
                                f"format (`vidrec synth`), not '{ds['format']}'")
            if synth["min_seconds"] > synth["max_seconds"]:
                problems.append(f"config key 'datasets.{dname}.synthetic.min_seconds' exceeds max_seconds")
        problems += _crop_problems(cfg, ds, ds["models"], f"config key 'datasets.{dname}.models.{{run}}'")
    if cfg.get("experiments"):
        problems += check_experiments(cfg, cfg["clips"], cfg["protocols"], known)
        if cfg["dataset"] in cfg["datasets"]:
            try:
                problems += _crop_problems(cfg, cfg["datasets"][cfg["dataset"]], experiment_runs(cfg),
                                           "config key 'experiments' (run {run})")
            except ExperimentError:
                pass  # reported by check_experiments
    pair = cfg["report"]["primary_comparison"]["pair"]
    if pair and cfg["dataset"] in cfg["datasets"]:
        runs = cfg["datasets"][cfg["dataset"]]["models"]
        unknown = [m for m in pair if m not in runs]
        if unknown:
            problems.append(f"config key 'report.primary_comparison.pair': {unknown} not among the runs of dataset "
                            f"'{cfg['dataset']}' ({sorted(runs)})")
    init = cfg["train"].get("init_from")
    if init and weights_name(init) and cfg["dataset"] in cfg["datasets"]:
        for run, spec in cfg["datasets"][cfg["dataset"]]["models"].items():
            problems += _named_weights_problems(f"config key 'train.init_from' (run {run})", init, spec)
    if problems:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems))


def _crop_problems(cfg: dict, ds: dict, runs: dict, where: str) -> list[str]:
    """A run whose protocol crops (augment.crop, after the dataset's and its own overrides) more than its
    clip spec stores."""
    problems = []
    for run, spec in runs.items():
        cname = spec.get("clip") or ds["clip"]
        if spec.get("protocol") not in cfg["protocols"] or cname not in cfg["clips"]:
            continue  # reported as unknown names
        augment = dict(cfg["protocols"][spec["protocol"]].get("augment") or {})
        for over in (ds["protocol_overrides"].get(spec["protocol"]), spec.get("protocol_overrides")):
            augment.update((over or {}).get("augment") or {})
        crop = augment.get("crop")
        height, width = clip_hw(cfg["clips"][cname]["size"])
        if crop and crop > min(height, width):
            problems.append(f"{where.format(run=run)}: protocol '{spec['protocol']}' crops {crop}x{crop} (augment.crop) "
                            f"but clip spec '{cname}' stores {height}x{width}; lower the crop in the run's "
                            "protocol_overrides ({augment: {crop: ...}}) or use a larger clip spec")
    return problems


def _named_weights_problems(where: str, init: str, spec: dict) -> list[str]:
    """Published weights (torchvision:<Weights>.<member>) fit one architecture, at base_width 64."""
    problem = torchvision_weights_problem(spec["arch"], weights_name(init)) if spec["arch"] in MODEL_NAMES \
        else None
    width = (spec.get("args") or {}).get("base_width", 64)
    if problem is None and width != 64:
        problem = f"the weights have base_width 64, the run sets {width}"
    return [f"{where}: {problem}"] if problem else []


def parse_override(text: str) -> tuple[list[str], Any]:
    """`a.b.c=value` -> (['a','b','c'], yaml-parsed value)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.sub=value")
    key, value = text.split("=", 1)
    return key.split("."), yaml.safe_load(value)


def apply_override(cfg: dict, keys: list[str], value: Any) -> None:
    node = cfg
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value


# The environment variable through which the workflow hands every job the configuration as run
# (rules/common.smk): the validated config with Snakemake's --config/--configfile overrides applied.
CONFIG_ENV = "VIDREC_CONFIG"


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                from_env: str | None = None) -> dict:
    """Read YAML (or, with from_env, the JSON config the workflow put in that environment variable),
    apply `key.sub=value` overrides, validate; raise ConfigError naming the key."""
    if from_env:
        text = os.environ.get(from_env)
        if text is None:
            raise ConfigError(f"--config-env {from_env}: the environment variable is not set "
                              "(the workflow sets it for its jobs; by hand, pass --config PATH)")
        cfg = json.loads(text)
    else:
        path = Path(path) if path else DEFAULT_CONFIG
        if not path.exists():
            raise ConfigError(f"config file {path} not found; pass --config PATH")
        cfg = yaml.safe_load(path.read_text()) or {}
    for text in overrides or []:
        apply_override(cfg, *parse_override(text))
    return validate_config(cfg)


def config_for_jobs(cfg: dict) -> str:
    """The validated configuration as the JSON text `load_config(from_env=...)` reads."""
    return json.dumps(cfg, sort_keys=True)


def dataset_config(cfg: dict, name: str | None = None) -> dict:
    name = name or cfg["dataset"]
    if name not in cfg["datasets"]:
        raise ConfigError(f"config key 'dataset': unknown dataset '{name}'")
    return cfg["datasets"][name]


def clip_hw(size: int | list[int] | tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a clip spec's `size`: an int is a square, a pair is [height, width]."""
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def clip_size_text(clip: dict) -> str:
    """'128x171 (whole frame)' or '160x160 (centre 192 crop)': what a clip spec stores, for tables."""
    height, width = clip_hw(clip["size"])
    crop = clip.get("crop")
    return f"{height}x{width} ({'whole frame' if crop is None else f'centre {crop} crop'})"


def model_input_shape(clip: dict, augment: dict | None = None) -> tuple[int, int, int, int]:
    """(C, T, H, W) the network sees: the stored clip, or its crop when the protocol crops."""
    crop = (augment or {}).get("crop")
    height, width = (crop, crop) if crop else clip_hw(clip["size"])
    return (3, clip["frames"], int(height), int(width))


def stable_hash(obj: Any, length: int = 12) -> str:
    """Order-independent hash of a JSON-able object (config identity of an artifact)."""
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]
