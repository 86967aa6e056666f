"""`vidrec report` while runs are still going: a progress report beside, never inside, the final one.

The comparison report needs every run's evaluation (vidrec/report/load.py); a GPU-day DAG would
show nothing until its last job. Run by hand at any time, `vidrec report` writes instead, when the
final report's inputs are incomplete (or always with --progress), a progress report into
results/<dataset>/progress/ (Layout.progress_dir): every (split, run, seed)'s status read from its
folder, the accuracy of each evaluation that exists, and the training curves of every run with a
metrics.csv so far. It never writes into results/<dataset>/report, the workflow's target, so
Snakemake's final report is never stale or half-written; the final report itself is unchanged.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from vidrec.core.errors import VidrecError
from vidrec.evaluation.stats import wilson_interval
from vidrec.core.io import atomic_path, write_csv, write_text
from vidrec.plan.layout import PROGRESS_FILES, Layout
from vidrec.report import figures, render
from vidrec.report.load import input_files, planned_buckets
from vidrec.report.formatting import NA, fmt, fmt_acc, fmt_duration
from vidrec.plan.runs import resolve_runs, run_instances

log = logging.getLogger("vidrec.report")

DONE, EVALUATING, TRAINING, NOT_STARTED = "done", "in progress: evaluation", "in progress: training", "not started"
# status.csv: the run, its status, its last metrics.csv row so far, its evaluation once done
STATUS_COLUMNS = ["split", "model", "seed", "status", "epochs", "epochs_planned", "train_loss", "train_acc",
                  "val_acc", "wall_time_s", "updated_utc", "clip_top1", "video_top1", "n_videos"]


def final_inputs_complete(cfg: dict, layout: Layout) -> bool:
    """Whether every file the final report reads exists (its shards come from the manifest's audit)."""
    audit = layout.manifest("audit")
    if not audit.exists():
        return False
    buckets = planned_buckets(cfg, json.loads(audit.read_text()))
    return all(Path(p).exists() for paths in input_files(cfg, layout, buckets).values() for p in paths)


def run_status(cfg: dict, layout: Layout) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per (split, run, seed) of the final report, and the metrics.csv rows read so far.

    A checkpoint, or metrics without train.json, is a run training; train.json without
    evaluation.json one awaiting (or in) evaluation; evaluation.json with no checkpoint is done."""
    settings = resolve_runs(cfg)
    rows, curves = [], []
    for split, name, seed in run_instances(cfg, settings):
        metrics_csv = layout.train_file(split, name, seed, "metrics")
        training = layout.checkpoint(split, name, seed).exists() or (
            metrics_csv.exists() and not layout.train_file(split, name, seed, "summary").exists())
        evaluation = layout.evaluation_file(split, name, seed)
        status = (TRAINING if training else DONE if evaluation.exists()
                  else EVALUATING if layout.train_file(split, name, seed, "summary").exists() else NOT_STARTED)
        row = {"split": split, "model": name, "seed": seed, "status": status, "epochs": 0,
               "epochs_planned": settings[name].epochs}
        if metrics_csv.exists():
            m = pd.read_csv(metrics_csv)
            if not m.empty:
                last = m.iloc[-1]
                row |= {"epochs": len(m), "train_loss": last["train_loss"], "train_acc": last["train_acc"],
                        "val_acc": last["val_acc"], "wall_time_s": last["wall_time_s"],
                        "updated_utc": _utc(metrics_csv.stat().st_mtime)}
                curves.append(m.assign(split=split, model=name, seed=seed))
        if status == DONE:
            ev = json.loads(evaluation.read_text())
            row |= {k: ev[k] for k in ("clip_top1", "video_top1", "n_videos")}
        rows.append(row)
    return pd.DataFrame(rows, columns=STATUS_COLUMNS).astype({"n_videos": "Int64"}), (pd.concat(curves, ignore_index=True) if curves else pd.DataFrame())


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def status_show(status: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "Split": status["split"], "Model": status["model"], "Seed": status["seed"], "Status": status["status"],
        "Epochs": [f"{e} of {p}" for e, p in zip(status["epochs"], status["epochs_planned"])],
        "Train loss": status["train_loss"].map(lambda x: fmt(x, 4)),
        "Train acc (%)": status["train_acc"].map(fmt_acc),
        "Test acc (%, centre clip)": status["val_acc"].map(fmt_acc),
        "Training time": status["wall_time_s"].map(fmt_duration),
        "metrics.csv updated": status["updated_utc"].fillna(NA),
    })


def accuracy_show(status: pd.DataFrame) -> pd.DataFrame:
    """The evaluations that exist, each with its 95% Wilson interval over its test videos."""
    done = status[status["status"] == DONE]
    rows = []
    for _, r in done.iterrows():
        n = int(r["n_videos"])
        cells = {}
        for level in ("clip", "video"):
            acc = float(r[f"{level}_top1"])
            cells[f"{level.capitalize()} top-1 (%)"] = fmt_acc(acc, *wilson_interval(round(acc * n), n))
        rows.append({"Split": r["split"], "Model": r["model"], "Seed": r["seed"], **cells, "Test videos": n})
    return pd.DataFrame(rows)


def build_progress_report(cfg: dict, layout: Layout, out_dir: Path | None = None) -> Path:
    """Write the progress report (PROGRESS_FILES) and return the path of its index.html."""
    out = Path(out_dir) if out_dir is not None else layout.progress_dir
    if out.resolve() == layout.report_dir.resolve():
        raise VidrecError(f"{out}: the progress report never writes into the final report's folder "
                          f"({layout.report_dir}, the workflow's target); leave --out-dir out "
                          f"(default {layout.progress_dir}) or name another folder")
    status, metrics = run_status(cfg, layout)
    write_csv(out / PROGRESS_FILES["status"], status)
    accuracy = accuracy_show(status)
    write_csv(out / PROGRESS_FILES["accuracy"], accuracy)
    multi_seed = status["seed"].nunique() > 1
    if metrics.empty:
        fig = figures.placeholder("Training curves", "No run has finished an epoch yet.")
    else:
        labels = metrics.apply(lambda r: f"{r['model']} split {r['split']}"
                               + (f" seed {r['seed']}" if multi_seed else ""), axis=1)
        runs = list(dict.fromkeys(labels))
        fig = figures.training_curves(metrics.assign(model=labels), runs, 1,
                                      title="Training curves so far, one line per run; solid = train, "
                                            "dashed = test (centre clip)")
    png = figures.png_bytes(fig)
    with atomic_path(out / PROGRESS_FILES["curves"]) as tmp:
        tmp.write_bytes(png)

    counts = status["status"].value_counts()
    done, total = int(counts.get(DONE, 0)), len(status)
    banner = render.banner(
        f"Progress report, not the comparison report: {done} of {total} runs evaluated, "
        f"{int(counts.get(TRAINING, 0))} training, {int(counts.get(EVALUATING, 0))} awaiting or in evaluation, "
        f"{int(counts.get(NOT_STARTED, 0))} not started. The comparison report ({layout.report_file('html')}) "
        "is written by `snakemake --cores N report` once every run is evaluated; run `vidrec report` again "
        "for a newer view.", "demo")
    sections = [
        ("status", "1. Runs", [
            render.para("Every (split, model, seed) the comparison report needs, read from its folder now: "
                        "'in progress: training' has a checkpoint or metrics but no train.json yet, 'in "
                        "progress: evaluation' a train.json but no evaluation.json. The last columns are the "
                        "last finished epoch's metrics.csv row."),
            render.table(status_show(status), "status")]),
        ("accuracy", "2. Evaluations so far", [
            render.para("Test accuracy of each evaluated run, in brackets the 95% Wilson interval over its test "
                        "videos, unclustered (a first look: the final report's top-1 intervals count the videos' "
                        "class x group clusters, and are wider). Clip level: the centre clip; video level: "
                        "softmax averaged over the stored clips."),
            render.table(accuracy, "accuracy", empty="No run has been evaluated yet.")]),
        ("curves", "3. Training curves", [
            render.figure(png, "training curves so far", "Loss and accuracy against epoch and cumulative "
                          "training time, from each run's metrics.csv as it stands.", PROGRESS_FILES["curves"])]),
    ]
    generated = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    html = render.page(f"vidrec progress report: {cfg['dataset']}", f"dataset {cfg['dataset']} | generated "
                       f"{generated} | {done} of {total} runs evaluated", [banner], sections)
    write_text(out / PROGRESS_FILES["html"], html)
    log.info("progress report: %s (%d of %d runs evaluated)", out / PROGRESS_FILES["html"], done, total)
    return out / PROGRESS_FILES["html"]
