"""How good is the rehearsal's forecast? Rehearse the demo, run the demo, compare forecast with actual.

In a scratch folder with the repository's config.yaml (the demo; `--set key.sub=value` overrides, e.g.
fewer epochs): `snakemake --cores N report --config rehearsal=true`, then `snakemake --cores N report`,
timed. The rehearsal's report forecasts every job of the real DAG (vidrec/report/forecast.py,
forecast.csv); the real run's report sets each job's measured wall time beside it. Recorded
(benchmarks/results/forecast.json): forecast / actual for every training, every evaluation, the decode
stage (its jobs' seconds summed) and the whole DAG (the rehearsal's scheduled total, its report job
included, against the real command's wall time), each against the target 0.75-1.33, with the load average
sampled through the run (other processes slow one side of a ratio only: the two runs are minutes apart).

    python benchmarks/forecast.py [--cores 2] [--set datasets.demo.protocol_overrides.thesis.epochs=2] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import yaml

from record import REPO, Record, add_out_argument, load_average, work_folder

TARGET = "between 0.75 and 1.33"


def snakemake(workdir: Path, cores: int, *args: str, timeout: float = 7200) -> float:
    """Wall seconds of `snakemake --cores N report ARGS` in workdir (raises with its output on failure)."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    start = time.perf_counter()
    proc = subprocess.run([str(bin_dir / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
                           "--cores", str(cores), "report", *args], capture_output=True, text=True, env=env,
                          timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"snakemake {' '.join(args)} failed:\n{(proc.stdout + proc.stderr)[-6000:]}")
    return time.perf_counter() - start


class LoadSampler:
    """The 1-minute load average every `every` seconds while the benchmark runs."""

    def __init__(self, every: float = 15.0):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)

    def _run(self, every: float) -> None:
        while not self._stop.is_set():
            value = load_average()
            if value is not None:
                self.samples.append(value)
            self._stop.wait(every)

    def __enter__(self) -> "LoadSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def write_config(workdir: Path, overrides: list[str]) -> dict:
    from vidrec.plan.config import apply_override, parse_override

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    for text in overrides:
        apply_override(cfg, *parse_override(text))
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg


def compare(rehearsal_csv: Path, real_csv: Path, real_wall: float) -> list[dict]:
    """Rows (what, job, forecast_s, actual_s, ratio): every training and evaluation, the decode stage, the DAG."""
    fore = pd.read_csv(rehearsal_csv)
    real = pd.read_csv(real_csv)
    rows = [{"what": r["rule"], "job": r["job"], "forecast_s": r["forecast_s"], "actual_s": r["actual_s"]}
            for _, r in real.iterrows() if r["rule"] in ("train", "evaluate")]
    decode = real[real["rule"] == "decode"]
    rows.append({"what": "decode stage", "job": f"{len(decode)} jobs, seconds summed",
                 "forecast_s": decode["forecast_s"].sum(), "actual_s": decode["actual_s"].sum()})
    total = float(fore.loc[(fore["rule"] == "(dag)") & (fore["job"] == "total"), "forecast_s"].iloc[0])
    rows.append({"what": "whole DAG", "job": "scheduled total (the report job included) vs the command's wall time",
                 "forecast_s": total, "actual_s": real_wall})
    for r in rows:
        r["ratio"] = r["forecast_s"] / r["actual_s"]
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="config override key.sub=value (repeatable)")
    ap.add_argument("--keep", type=Path, default=None, help="run in DIR and keep it")
    add_out_argument(ap, "forecast")
    args = ap.parse_args()
    rec = Record("forecast")
    with work_folder(args.keep, "forecast") as work:
        cfg = write_config(work, args.overrides)
        with LoadSampler() as load:
            rehearsal_wall = snakemake(work, args.cores, "--config", "rehearsal=true")
            real_wall = snakemake(work, args.cores)
        ds = cfg["dataset"]
        rehearsal_dir, real_dir = work / "results" / f"{ds}-rehearsal", work / "results" / ds
        rows = compare(rehearsal_dir / "report" / "forecast.csv", real_dir / "report" / "forecast.csv", real_wall)
        rec.parameters.update(cores=args.cores, overrides=args.overrides, dataset=ds,
                              models=list(cfg["datasets"][ds]["models"]))
        rec.figure("rehearsal_wall", "the rehearsal (`--config rehearsal=true`), wall time", rehearsal_wall, "s")
        rec.figure("real_wall", "the real run, wall time", real_wall, "s")
        rec.figure("load_mean", "load average (1 min) through both runs, mean of samples every 15 s",
                   statistics.mean(load.samples), "")
        rec.figure("load_max", "same, highest sample", max(load.samples), "")
        for r in rows:
            name = r["job"] if r["what"] in ("train", "evaluate") else r["what"]
            rec.figure(f"ratio {name}", f"forecast / actual, {r['what']}: {r['job']}", r["ratio"], "x",
                       target=TARGET)
        rec.table("jobs", "Forecast beside actual", [("what", "what", None), ("job", "job", None),
                                                     ("forecast_s", "forecast", "s"), ("actual_s", "actual", "s"),
                                                     ("ratio", "forecast / actual", "x")], rows)
        for r in rows:
            print(f"{r['what']:>12} {r['job']:<45} forecast {r['forecast_s']:8.1f} s  actual {r['actual_s']:8.1f} s"
                  f"  ratio {r['ratio']:.2f}")
    rec.write(args.out)


if __name__ == "__main__":
    main()
