"""Rebuilding one split's stage leaves the other splits alone.

The shared miniature reference run (conftest.mini_reference: all 3 official splits, one narrow model)
is copied once. Then, as the README's "Rerunning one split" shows (targets before the flags:
`--forcerun` takes every word after it): dry runs with `--forcerun <file>` / `--until` select only
split 2's jobs, and a real forced retraining of split 2 (from scratch: a finished run keeps no checkpoint) rewrites
split 2's model, its evaluation and the report, while every file of splits 1 and 3, every shard and
every split index keeps its bytes and its mtime. Adding a seed schedules only that seed's jobs.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import yaml

from support import run_snakemake

pytestmark = pytest.mark.slow

MODEL_OUT = "results/mini/split{}/p3d63/seed0/model.pt"


def _snakemake(wd: Path, *args: str) -> str:
    proc = run_snakemake(wd, *args)
    return proc.stdout + proc.stderr


def _job_stats(out: str) -> dict[str, int]:
    table = out[out.index("Job stats"):] if "Job stats" in out else ""
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", table, re.M) if k != "total"}


def _snapshot(wd: Path, *folders: str) -> dict[str, tuple[int, str]]:
    files = {}
    for folder in folders:
        for p in sorted((wd / folder).rglob("*")):
            if p.is_file():
                files[str(p.relative_to(wd))] = (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
    return files


def test_dry_runs_select_only_split_2(reference_copy):
    for s in (1, 2, 3):
        assert (reference_copy / MODEL_OUT.format(s)).exists()
    target = MODEL_OUT.format(2)
    # split 2's training and what depends on it
    out = _snakemake(reference_copy, "report", "-n", "--forcerun", target)
    assert _job_stats(out) == {"train": 1, "evaluate": 1, "render_report": 1, "report": 1}, out[-3000:]
    assert "split=2" in out and "split=1" not in out and "split=3" not in out
    # split 2's training only (--until stops there)
    out = _snakemake(reference_copy, target, "-n", "--forcerun", "train", "--until", "train")
    assert _job_stats(out) == {"train": 1}, out[-3000:]
    # split 2's index only, and --until keeps the rebuilt index from cascading to training
    index = "results/mini/mini8/split2/index.csv"
    out = _snakemake(reference_copy, "report", "-n", "--forcerun", index, "--until", "split_index")
    assert _job_stats(out) == {"split_index": 1}, out[-3000:]
    # and nothing else is stale
    assert "Nothing to be done" in _snakemake(reference_copy, "-n", "report")


def test_retraining_split_2_leaves_splits_1_and_3_untouched(reference_copy):
    keep = ("results/mini/split1", "results/mini/split3", "results/mini/mini8", "results/mini/manifest",
            "data/mini/shards")
    before = _snapshot(reference_copy, *keep)
    assert any("split1" in k for k in before) and any("split3" in k for k in before)
    model = reference_copy / MODEL_OUT.format(2)
    report = reference_copy / "results/mini/report/index.html"
    old_model, old_report = model.stat().st_mtime_ns, report.stat().st_mtime_ns
    # a finished run keeps no checkpoint: a forced rerun retrains from scratch, nothing to delete by hand
    assert not (model.parent / "checkpoint.pt").exists()
    out = _snakemake(reference_copy, "report", "--forcerun", MODEL_OUT.format(2))
    assert _job_stats(out) == {"train": 1, "evaluate": 1, "render_report": 1, "report": 1}, out[-3000:]
    assert _snapshot(reference_copy, *keep) == before  # same bytes, same mtimes
    assert model.stat().st_mtime_ns > old_model and report.stat().st_mtime_ns > old_report
    assert not (model.parent / "checkpoint.pt").exists()
    assert "resumed from" not in (reference_copy / "logs/mini/train/split2/p3d63/seed0.log").read_text()
    assert "Nothing to be done" in _snakemake(reference_copy, "-n", "report")


def test_adding_a_seed_schedules_only_that_seed(reference_copy):
    """train.seeds [0] -> [0, 1]: one new training and evaluation per split, all of seed 1, beside seed 0's
    (whose jobs are up to date: the seed list is not part of a run's settings), then the report."""
    config = reference_copy / "config.yaml"
    original = config.read_text()
    cfg = yaml.safe_load(original)
    cfg.setdefault("train", {})["seeds"] = [0, 1]
    config.write_text(yaml.safe_dump(cfg))
    try:
        out = _snakemake(reference_copy, "report", "-n")
    finally:
        config.write_text(original)
    assert _job_stats(out) == {"train": 3, "evaluate": 3, "render_report": 1, "report": 1}, out[-3000:]
    jobs = [j for j in out.split("rule ")[1:] if j.startswith(("train:", "evaluate:"))]
    assert len(jobs) == 6 and all("seed=1" in j and "seed=0" not in j for j in jobs), out[-3000:]
    assert all("results/mini/split{}/p3d63/seed1/".format(s) in out for s in (1, 2, 3))
