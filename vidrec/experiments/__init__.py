"""Tran et al.'s experiments beyond the architecture table (`vidrec experiment <name>`).

`vidrec.experiment_runs` (a config-level module) turns the config's `experiments:` section into ordinary model
runs (trained and evaluated by the normal rules) and names the files each experiment reads; one module per
experiment (`common` holds what they share) aggregates them into a table, a figure and the paper's claims beside
our measurements, and `build` writes those and a small HTML page per experiment.
"""
from vidrec.experiment_runs import EXPERIMENTS, OUTPUTS, TITLES, experiment_runs, plan

__all__ = ["EXPERIMENTS", "OUTPUTS", "TITLES", "experiment_runs", "plan"]
