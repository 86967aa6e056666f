"""Rehearsal of the real job: `snakemake --cores N report --config rehearsal=true` on a UCF101 tree.

A tree in UCF101's layout with all 13,320 names of the official lists (tests/data/ucfTrainTestlist)
hard-linked to a few short generated 320x240 XviD AVIs (benchmarks/datascale.py), and the repository's
`ucf101` configuration pointed at it: every configured split and model at full width, the real clip
specs and protocols. The rehearsal (vidrec/plan/rehearsal.py) decodes a few videos per class, trains two
epochs of a few steps, evaluates a few videos, and renders a report stamped REHEARSAL, with its
forecast of the real job (vidrec/report/forecast.py). Recorded (benchmarks/results/rehearsal.json,
`--out PATH` elsewhere): the command's wall time and jobs per rule, the forecast's DAG total, critical
path and GPU-hours, each run's forecast and memory fit, with the settings it ran under (`--set`
overrides, e.g. a CPU-sized batch). `--plan-only` builds the tree and plans the DAG (`snakemake -n`)
without running it: benchmarks/gpu_check.sh's CPU dry run.

    python benchmarks/rehearsal.py [--cores 2] [--set rehearsal_settings.batch_size=2] [--keep DIR] [--plan-only]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from datascale import build_tree  # noqa: E402
from dag import LISTS  # noqa: E402
from record import REPO, Record, add_out_argument, work_folder

LENGTHS = (1.6, 2.4)  # a rehearsal decodes a few videos: short ones keep the data stage quick


def write_config(workdir: Path, root: Path, overrides: list[str]) -> dict:
    """The repository's config, switched to ucf101 at `root`, with `key.sub=value` overrides."""
    from vidrec.plan.config import apply_override, parse_override

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["dataset"] = "ucf101"
    cfg["datasets"]["ucf101"]["root"] = str(root)
    for text in overrides:
        apply_override(cfg, *parse_override(text))
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg


def run_rehearsal(workdir: Path, cores: int, timeout: float = 3600, plan_only: bool = False) -> tuple[float, str]:
    """(wall seconds, output) of the README's rehearsal command in workdir (plan_only: `snakemake -n`).
    Snakemake runs as `python -m snakemake`: where the wheels were installed with --target (a lent GPU
    machine), no `snakemake` script sits beside the interpreter."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
                           "--cores", str(cores), "report", "--config", "rehearsal=true", *(["-n"] if plan_only else [])],
                          capture_output=True, text=True, env=env, timeout=timeout)
    seconds = time.perf_counter() - start
    out = proc.stdout + proc.stderr
    if proc.returncode:
        raise RuntimeError(f"the rehearsal failed:\n{out[-6000:]}")
    return seconds, out


def job_counts(out: str) -> dict[str, int]:
    table = out[out.index("Job stats"):] if "Job stats" in out else ""
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", table, re.M) if k != "total"}


def record_forecast(rec: Record, forecast_csv: Path) -> None:
    """The rehearsal's forecast of the real job: the DAG's total, critical path, GPU-hours, and per run."""
    import pandas as pd

    fore = pd.read_csv(forecast_csv)
    dag = fore[fore["rule"] == "(dag)"].set_index("job")
    jobs = fore[fore["rule"] != "(dag)"]
    rec.figure("forecast_total", "forecast of the real job: the DAG's scheduled total on the same cores and GPUs",
               float(dag.loc["total", "forecast_s"]) / 3600, "h")
    rec.figure("forecast_critical_path", "forecast: its critical path", float(dag.loc["critical path", "forecast_s"]) / 3600,
               "h", note=str(dag.loc["critical path", "real_work"]))
    rec.figure("forecast_gpu_hours", "forecast: GPU-hours", float((jobs["forecast_s"] * jobs["gpus"]).sum()) / 3600, "h")
    runs = jobs[jobs["rule"].isin(["train", "evaluate"])]
    rec.table("forecast", "The rehearsal's forecast per training and evaluation job",
              [("job", "job", None), ("forecast_h", "forecast", "h"), ("unit_cost", "unit cost", None),
               ("real_work", "work", None), ("memory", "memory", None)],
              [{"job": r["job"], "forecast_h": r["forecast_s"] / 3600, "unit_cost": r["unit_cost"],
                "real_work": r["real_work"], "memory": r["memory"] if isinstance(r["memory"], str) else ""}
               for _, r in runs.iterrows()])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="config override key.sub=value (repeatable), e.g. rehearsal_settings.batch_size=2")
    ap.add_argument("--keep", type=Path, default=None, help="build the tree and run in DIR and keep it")
    ap.add_argument("--plan-only", action="store_true", help="plan the DAG (snakemake -n) without running it")
    add_out_argument(ap, "rehearsal")
    args = ap.parse_args()
    rec = Record("rehearsal")
    with work_folder(args.keep, "rehearsal") as work:
        names, _ = build_tree(work / "ucf101", LISTS, LENGTHS)
        cfg = write_config(work, work / "ucf101", args.overrides)
        seconds, out = run_rehearsal(work, args.cores, plan_only=args.plan_only)
        ds = cfg["datasets"]["ucf101"]
        rec.parameters.update(cores=args.cores, overrides=args.overrides, videos_in_tree=len(names),
                              splits=ds["splits"], models=list(ds["models"]), distinct_lengths_s=list(LENGTHS),
                              plan_only=args.plan_only)
        rec.figure("rehearsal_wall", "`snakemake --cores N report --config rehearsal=true` on the UCF101 "
                   f"configuration (splits {', '.join(map(str, ds['splits']))}, every model, full width)"
                   + (", planned only (-n)" if args.plan_only else ""), seconds, "s")
        report = work / "results" / "ucf101-rehearsal" / "report"
        if not args.plan_only:
            rec.figure("stamped", "report stamped REHEARSAL", float("REHEARSAL" in (report / "index.html").read_text()),
                       "yes=1")
            record_forecast(rec, report / "forecast.csv")
        rec.table("jobs", "Jobs the rehearsal ran, per rule",
                  [("rule", "rule", None), ("jobs", "jobs", None)],
                  [{"rule": k, "jobs": v} for k, v in job_counts(out).items()])
        print(f"rehearsal: {seconds:.0f} s, jobs {job_counts(out)}")
    rec.write(args.out)


if __name__ == "__main__":
    main()
