"""The registry of Tran et al.'s experiments: `EXPERIMENTS`, experiment name -> `Experiment`.

Each module of this package but `base` defines one experiment as `EXPERIMENT = Experiment(...)`
(vidrec/plan/experiments/base.py): its name, title, clip fields, the runs it trains and the files it reads.
The registry finds them by listing the package, so a new experiment is

    vidrec/plan/experiments/<name>.py            its definition (torch-free: read at parse time)
    vidrec/report/experiment_pages/<name>.py     its aggregation: `aggregate(...)` -> table, figure, claims
    its block under `experiments:` in workflow/schemas/config.schema.yaml and config.yaml
    its claims under `<name>:` in vidrec/plan/experiments/claims.yaml
    workflow/report/experiment_<name>.rst        the caption of its files in `snakemake --report`
    a test in tests/test_experiments.py

and the rules (rules/experiments.smk), `vidrec experiment`, config validation and the report ask
`EXPERIMENTS`. `vidrec.plan.experiment_runs` turns a configuration into the runs and plans of the
experiments it configures.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from vidrec.plan.experiments.base import Experiment

# Published figures the experiment pages set beside their measurements: one block per experiment name,
# plus `sources`. An input of every experiment rule.
CLAIMS_FILE = Path(__file__).with_name("claims.yaml")


def _discover() -> dict[str, Experiment]:
    """Every module's EXPERIMENT, by name (sorted), each named as its module."""
    found: dict[str, Experiment] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name == "base":
            continue
        experiment = importlib.import_module(f"{__name__}.{info.name}").EXPERIMENT
        if experiment.name != info.name:
            raise ImportError(f"vidrec/plan/experiments/{info.name}.py defines experiment '{experiment.name}': "
                              "an experiment is named as its module")
        found[experiment.name] = experiment
    return found


EXPERIMENTS: dict[str, Experiment] = _discover()

__all__ = ["CLAIMS_FILE", "EXPERIMENTS", "Experiment"]
