"""A run's settings, resolved once: one typed, frozen `RunSettings` per model run.

A *run* is a named entry under `datasets.<name>.models` (or one that `experiments:` generates): an
architecture with its arguments, a protocol with the dataset's and the run's overrides merged in,
a clip spec, an initialisation and the seeds it is trained with. `resolve_runs(cfg)` builds all of
them in one pass; training, evaluation, the workflow and the report receive these objects instead
of re-deriving settings from the raw configuration. Torch-free: the Snakefile resolves at parse time.

Each (split, run, seed) is its own training job with its own folder (`Layout.run_dir`), so adding a
seed trains only that seed; `identity()` leaves the seed list out for the same reason.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

from vidrec.plan import rehearsal
from vidrec.plan.catalogue import weights_name
from vidrec.plan.config import dataset_config, fill_defaults, model_input_shape, stable_hash
from vidrec.core.errors import ConfigError
from vidrec.core.merge import deep_merge


class FrozenDict(dict):
    """A dict that refuses changes: nested settings of a frozen RunSettings stay as resolved.

    A real dict subclass, so json, `dict(...)` and `**` unpacking work unchanged."""

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("run settings are read-only; derive changed settings with dataclasses.replace")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _read_only  # type: ignore[assignment]

    def __reduce__(self) -> tuple:
        return (FrozenDict, (dict(self),))

    def __deepcopy__(self, memo: dict) -> "FrozenDict":
        return self  # immutable all the way down


def freeze(value: Any) -> Any:
    """Dicts -> FrozenDict, lists -> tuples, recursively."""
    if isinstance(value, Mapping):
        return FrozenDict({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The plain JSON-like form (dicts and lists) of frozen settings."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class RunSettings:
    """Everything one model run is, as configured and resolved (see the module docstring)."""

    dataset: str
    name: str                                # the run's name: its folder under split<N>/
    arch: str                                # a registered architecture (vidrec/plan/catalogue.py)
    model_args: Mapping[str, Any]            # constructor arguments (dropout from the protocol)
    protocol_name: str
    protocol: Mapping[str, Any]              # the protocol with dataset and run overrides applied
    clip_name: str
    clip: Mapping[str, Any]
    normalize: Mapping[str, Any]
    train: Mapping[str, Any]                 # runtime settings: device, threads, amp, workers, ...
    evaluate: Mapping[str, Any]
    seeds: tuple[int, ...]                   # one training job per seed
    init_from_run: str | None = None         # start from this run's model.pt (same split and seed)
    init_from: str | None = None             # start from this model file (train.init_from) or named weights
    adjustments: tuple[str, ...] = field(default=())  # what resolving changed, in words (e.g. flips off)
    note: str | None = None                  # the configuration's reason for a setting (e.g. its epochs)
    # what the dataset's and the run's protocol_overrides change in the named protocol, by dotted key
    # ("optimizer.lr" -> 0.001), for the labels that name the protocol (protocol holds the values)
    overrides: Mapping[str, Any] = field(default_factory=lambda: FrozenDict())

    @property
    def augment(self) -> Mapping[str, Any]:
        return self.protocol.get("augment") or FrozenDict()

    @property
    def epochs(self) -> int:
        return int(self.protocol["epochs"])

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(C, T, H, W) the network sees: the stored clip, or its crop when the protocol crops."""
        return model_input_shape(self.clip, self.augment)

    @property
    def initialisation(self) -> str:
        """How the run's weights start, in words (train.json, evaluation.json and the report say it)."""
        if self.init_from_run:
            return f"fine-tuned from run {self.init_from_run} (its model of the same split and seed)"
        if self.init_from and weights_name(self.init_from):
            return f"pre-trained: {self.init_from}"
        if self.init_from:
            return f"initialised from {self.init_from}"
        return "from scratch"

    def to_dict(self) -> dict:
        """Plain JSON-able form (what train.json-style records and workflow params hold)."""
        return thaw(asdict(self))

    def identity(self) -> dict:
        """What a training job's result depends on, for rerun triggers and checkpoint matching: all
        but the evaluation settings and the seed list (each seed is its own job)."""
        d = self.to_dict()
        for key in ("evaluate", "seeds", "adjustments", "note", "overrides"):
            d.pop(key)
        d["train"].pop("tensorboard", None)  # logging only: switched on mid-run, it neither retrains nor restarts
        d["train"].pop("stop_margin_s", None)  # when a training pauses for its SLURM time limit: no result changes
        return d

    def identity_hash(self) -> str:
        return stable_hash(self.identity())


def merge_protocol(base: Mapping[str, Any], extra: Mapping[str, Any] | None) -> dict:
    """Overrides merged over a protocol (deep_merge), except that an optimizer or scheduler naming
    another class replaces that block: one optimizer's arguments never reach another (SGD's
    nesterov would make RMSprop fail; SGD's momentum means something else to RMSprop)."""
    out = deep_merge(dict(base), dict(extra or {}))
    for key in ("optimizer", "scheduler"):
        new = (extra or {}).get(key)
        if isinstance(new, Mapping) and "name" in new and (base.get(key) or {}).get("name") != new["name"]:
            out[key] = deep_merge({}, dict(new))
    return out


def _resolve(cfg: dict, ds_name: str, name: str, spec: Mapping[str, Any]) -> RunSettings:
    ds = dataset_config(cfg, ds_name)
    protocol = merge_protocol(cfg["protocols"][spec["protocol"]],
                              ds["protocol_overrides"].get(spec["protocol"], {}))
    if spec.get("protocol_overrides"):  # the run's own overrides, over the dataset's
        protocol = merge_protocol(protocol, spec["protocol_overrides"])
    protocol = fill_defaults(protocol, "protocol")  # e.g. an override's warm-up gets its start_factor
    overrides = changed_settings(cfg["protocols"][spec["protocol"]], protocol)
    protocol, adjustments = rehearsal.protocol(protocol, cfg)
    augment = protocol.get("augment") or {}
    if augment.get("hflip") and not ds["hflip_safe"]:
        protocol = deep_merge(protocol, {"augment": {"hflip": False}})
        adjustments.append(f"horizontal flips off: dataset '{ds_name}' declares them unsafe (hflip_safe: false)")
    clip_name = spec.get("clip") or ds["clip"]
    args = dict(spec.get("args") or {})
    args.setdefault("dropout", protocol.get("dropout", 0.0))
    train = {k: v for k, v in cfg["train"].items() if k not in ("seeds", "init_from")}
    seeds = tuple(int(s) for s in (spec.get("seeds") or cfg["train"]["seeds"]))
    init = spec.get("init_from")  # another run's name, or named weights such as torchvision:<Weights>
    from_run = init if init and not weights_name(init) else None
    return RunSettings(
        dataset=ds_name, name=name, arch=spec["arch"], model_args=freeze(args),
        protocol_name=spec["protocol"], protocol=freeze(protocol), clip_name=clip_name,
        clip=freeze(cfg["clips"][clip_name]), normalize=freeze(cfg["normalize"]), train=freeze(train),
        evaluate=freeze(cfg["evaluate"]), seeds=seeds, init_from_run=from_run,
        init_from=None if from_run else (init or cfg["train"].get("init_from")), adjustments=tuple(adjustments),
        note=spec.get("note"), overrides=freeze(overrides))


def changed_settings(base: Mapping[str, Any], merged: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """The leaves of `merged` that differ from `base`, by dotted key ({"optimizer.lr": 0.001}), in
    `merged`'s order; a whole value where `base` has none or a non-mapping there."""
    out: dict[str, Any] = {}
    for key, value in merged.items():
        old = base.get(key) if isinstance(base, Mapping) else None
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            out.update(changed_settings(old, value, f"{prefix}{key}."))
        elif key not in base or old != value:
            out[f"{prefix}{key}"] = value
    return out




def resolve_runs(cfg: dict, dataset: str | None = None) -> dict[str, RunSettings]:
    """Every run of the dataset, listed ones first, then those `experiments:` generates."""
    from vidrec.plan.experiment_runs import ExperimentError, experiment_runs

    ds_name = dataset or cfg["dataset"]
    specs = dict(dataset_config(cfg, ds_name)["models"])
    try:
        generated = experiment_runs(cfg) if cfg.get("experiments") else {}
    except ExperimentError as err:
        raise ConfigError(str(err)) from err
    for name, spec in generated.items():
        specs.setdefault(name, spec)
    return {name: _resolve(cfg, ds_name, name, spec) for name, spec in specs.items()}


def run_settings(cfg: dict, run: str, dataset: str | None = None) -> RunSettings:
    """One run's settings; ConfigError naming the known runs when there is no such run."""
    runs = resolve_runs(cfg, dataset)
    if run not in runs:
        ds_name = dataset or cfg["dataset"]
        raise ConfigError(f"model run '{run}' is not listed under 'datasets.{ds_name}.models' "
                          f"(known: {sorted(dataset_config(cfg, ds_name)['models'])}) nor generated by 'experiments'")
    return runs[run]


def listed_runs(cfg: dict, dataset: str | None = None) -> list[str]:
    """The runs the dataset lists (the comparison report's models), in config order."""
    return list(dataset_config(cfg, dataset)["models"])


def run_instances(cfg: dict, runs: Mapping[str, RunSettings] | None = None) -> list[tuple[int, str, int]]:
    """(split, run, seed) of every training job the comparison report needs, in a stable order."""
    runs = runs if runs is not None else resolve_runs(cfg)
    splits = dataset_config(cfg)["splits"]
    return [(s, name, seed) for s in splits for name in listed_runs(cfg) for seed in runs[name].seeds]
