"""The record step of benchmarks/pipeline.sh: its wall times, the demo's accuracies, the report's page load.

pipeline.sh runs the demo in a clean clone and times it; this step, run with the clone's code, writes
what came out to benchmarks/results/pipeline.json (pipeline.sh's `--out PATH` elsewhere):
  * the three wall times pipeline.sh measured (targets: report < 900 s, no-op rerun <= 5 s);
  * the demo's accuracies, from the run's own report (results/demo/report/accuracy.csv: clip and
    video top-1/top-5 per model, means over the configured splits, and chance);
  * every job's wall and CPU time from Snakemake's benchmark files (results/demo/benchmarks/), which
    show the critical path;
  * the report page's load in headless Chromium (start, load, the rendered DOM), where Chromium is
    installed (target < 20 s); without it the figure is left out and the file says why.

    python benchmarks/pipeline.py --clone DIR --full S --noop S --dry S [--cores 2] [--load-start L] [--out PATH]
"""
from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from record import Record, add_out_argument  # noqa: E402

ACCURACY = [("clip_top1", "clip top-1"), ("clip_top5", "clip top-5"), ("video_top1", "video top-1"),
            ("video_top5", "video top-5")]


def find_browser() -> str | None:
    """Chromium as tests/test_report.py finds it (CI installs it; this project's machines may not have it)."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def page_load_seconds(browser: str, page: Path, timeout: float = 120) -> float:
    """Wall time of a headless browser starting, loading `page` and printing its DOM: what the report
    test's browser check took (start-up included), on the real report."""
    with tempfile.TemporaryDirectory() as profile:
        start = time.perf_counter()
        done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                               "--disable-extensions", f"--user-data-dir={profile}", "--dump-dom",
                               page.resolve().as_uri()], capture_output=True, text=True, timeout=timeout)
        seconds = time.perf_counter() - start
    if done.returncode != 0 or "</html>" not in done.stdout.lower():
        raise RuntimeError(f"{browser} could not load {page}: {done.stderr[-2000:]}")
    return seconds


def accuracy_rows(report: Path) -> list[dict]:
    """accuracy.csv of the demo's report: per model, the means over splits (fractions) and chance."""
    with open(report / "accuracy.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        raise RuntimeError(f"{report / 'accuracy.csv'}: no models")
    return [{"model": r["model"], "arch": r["arch"], "splits": r["splits"],
             **{k: 100 * float(r[f"{k}_mean"]) for k, _ in ACCURACY}, "chance": 100 * float(r["chance"])}
            for r in rows]


def job_rows(bench_dir: Path) -> list[dict]:
    """Every job's Snakemake benchmark file (wall `s`, `cpu_time`), in the order of the DAG's stages."""
    rows = []
    for tsv in sorted(bench_dir.rglob("*.tsv")):
        with open(tsv, newline="") as f:
            for r in csv.DictReader(f, delimiter="\t"):
                rows.append({"job": str(tsv.relative_to(bench_dir).with_suffix("")), "seconds": float(r["s"]),
                             "cpu_seconds": float(r["cpu_time"]) if r.get("cpu_time") not in (None, "", "NA")
                             else None})
    return sorted(rows, key=lambda r: -r["seconds"])


def build(rec: Record, clone: Path, full: float, noop: float, dry: float, browser: str | None) -> Record:
    """Fill `rec` from the clone's results and the times pipeline.sh measured."""
    results = clone / "results" / "demo"
    rec.figure("demo_report", "demo `snakemake --cores N report` from a clean clone (after install)", full, "s",
               target="< 900")
    rec.figure("noop_rerun", "no-op rerun of the same command", noop, "s", target="<= 5")
    rec.figure("dry_run", "DAG only: `snakemake report --dry-run`", dry, "s")
    acc = accuracy_rows(results / "report")
    for r in acc:
        rec.figure(f"video_top1_{r['model']}", f"{r['model']}: video-level test top-1 (splits {r['splits']}; "
                   f"chance {r['chance']:.0f} %)", r["video_top1"], "%")
    rec.table("accuracy", "The demo's test accuracy (results/demo/report/accuracy.csv; means over the splits)",
              [("model", "model", None), ("arch", "architecture", None), ("splits", "splits", None),
               *[(k, label, "%") for k, label in ACCURACY], ("chance", "chance", "%")], acc)
    jobs = job_rows(results / "benchmarks")
    if jobs:
        rec.table("jobs", "Every job's time (Snakemake's benchmark files, results/demo/benchmarks/), longest first",
                  [("job", "job", None), ("seconds", "wall", "s"), ("cpu_seconds", "CPU", "s")], jobs)
    page = results / "report" / "index.html"
    if browser:
        rec.figure("report_page_load", f"report page in headless {Path(browser).name}: start, load, DOM",
                   page_load_seconds(browser, page), "s", target="< 20")
        rec.parameters["browser"] = browser
    else:
        rec.parameters["browser"] = "none installed: the report page's load was not measured"
    return rec


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clone", type=Path, required=True, help="the clone the demo ran in")
    ap.add_argument("--full", type=float, required=True, help="seconds: the demo report from a clean clone")
    ap.add_argument("--noop", type=float, required=True, help="seconds: the no-op rerun")
    ap.add_argument("--dry", type=float, required=True, help="seconds: the dry run")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--load-start", type=float, default=None, help="1-minute load average when the demo started")
    ap.add_argument("--command", default=None, help="the command line that ran the pipeline (pipeline.sh's own)")
    ap.add_argument("--browser", default=find_browser(), help="headless browser for the page load (default: chromium)")
    add_out_argument(ap, __file__)
    args = ap.parse_args(argv)
    rec = Record("pipeline", command=args.command, parameters={"cores": args.cores, "dataset": "demo"})
    if args.load_start is not None:
        rec.load_at_start = args.load_start
    rec.started -= args.full + args.noop + args.dry  # run_seconds: the three timed commands and this step
    build(rec, args.clone, args.full, args.noop, args.dry, args.browser)
    for f in rec.figures:
        print(f"{f['label']}: {f['value']:.2f} {f['unit']}" + (f" (target {f['target']})" if "target" in f else ""))
    rec.write(args.out)


if __name__ == "__main__":
    main()
