"""Read exactly the artifacts the report shows, and record every path read.

`input_files` names them from the configuration (splits x models of the active dataset, the shard
statistics of the clip specs those models use) through the dataset's `Layout`; rules/report.smk
declares the same call's result as the rule's inputs, so the report never picks up a stale run that
the configuration no longer lists. Torch- and matplotlib-free: the Snakefile imports it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vidrec.plan import rehearsal
from vidrec.plan.config import dataset_config
from vidrec.data import formats
from vidrec.plan.layout import Layout, shard_buckets
from vidrec.plan.runs import resolve_runs, run_instances

RUN_FILES = {"evaluations": ("evaluation", "evaluation"), "metrics": ("train", "metrics"),
             "train": ("train", "summary"), "per_class": ("evaluation", "per_class"),
             "confusion": ("evaluation", "confusion"), "predictions": ("evaluation", "predictions")}
# predictions.csv columns the paired comparison needs (one row per test video)
PREDICTION_COLUMNS = ["video_id", "correct_clip", "correct_video"]


def clip_specs(cfg: dict) -> list[str]:
    """Clip spec names used by the active dataset's models (one shard set each)."""
    runs = resolve_runs(cfg)
    return sorted({runs[m].clip_name for m in dataset_config(cfg)["models"]})


def _run_file(layout: Layout, split: int, run: str, seed: int, stage: str, kind: str) -> Path:
    return layout.train_file(split, run, seed, kind) if stage == "train" else layout.evaluation_file(split, run, seed, kind)


def input_files(cfg: dict, layout: Layout, buckets: list[int]) -> dict[str, list[Path]]:
    """Every file the report reads, by kind (buckets: the shards', layout.shard_buckets)."""
    runs = run_instances(cfg)
    files = {kind: [_run_file(layout, s, m, seed, *where) for s, m, seed in runs] for kind, where in RUN_FILES.items()}
    files["audit"] = [layout.manifest("audit")]
    files["videos"] = [layout.manifest("videos")]
    files["shard_stats"] = [layout.shard_stats(c, b) for c in clip_specs(cfg) for b in buckets]
    # experiments.in_report: true -> the experiments' summaries and figures (else nothing)
    files["experiments"] = [layout.results / f for f in experiment_files(cfg)]
    files["forecast"] = forecast_inputs(cfg, layout)
    return files


def forecast_inputs(cfg: dict, layout: Layout) -> list[Path]:
    """What the Forecast section (vidrec/report/forecast.py) reads beyond the other inputs: a rehearsal,
    the dataset format's inputs (the real job's counts, from its manifest); a real run, its rehearsal's forecast.csv when there is one."""
    if rehearsal.active(cfg):
        return formats.inputs(formats.dataset(cfg))
    path = Layout.of({**cfg, "rehearsal": True}, layout.root).report_file("forecast")
    return [path] if path.exists() else []


def experiment_files(cfg: dict) -> list[str]:
    """summary.json and figure.png of every configured experiment when experiments.in_report is true."""
    from vidrec.plan.experiment_runs import report_files

    return report_files(cfg)


def cluster_key(videos: pd.DataFrame) -> tuple[pd.Series, str]:
    """The unit whose test videos are not independent, per video: (video_id -> cluster label, its name).

    The one place the report asks which videos belong together: UCF101's (and the demo's) clips of
    one class and group are cut from one long recording, so the cluster is class x group
    (videos.csv's class_name and group columns). A manifest without groups: every video is its own
    cluster (the unclustered formulas), and the name says so.
    """
    ids = videos["video_id"]
    if "group" in videos and videos["group"].notna().all() and len(videos):
        keys = videos["class_name"].astype(str) + "/g" + videos["group"].astype(int).map("{:02d}".format)
        return pd.Series(keys.to_numpy(), index=ids.to_numpy()), \
            "class x group (the clips of one class and group, cut from one recording)"
    return pd.Series(ids.astype(str).to_numpy(), index=ids.to_numpy()), \
        "video (the manifest has no groups, so each test video is its own cluster: the unclustered formulas)"


@dataclass
class Results:
    """Everything the report shows, as tables."""

    cfg: dict
    results_dir: Path
    dataset: str
    splits: list[int]
    models: list[str]
    synthetic: dict | None
    runs: pd.DataFrame          # one row per (split, model, seed): evaluation.json + train.json (train_*)
    metrics: pd.DataFrame       # metrics.csv rows + split, model, seed
    per_class: pd.DataFrame     # per_class.csv rows + split, model, seed
    predictions: pd.DataFrame   # predictions.csv's PREDICTION_COLUMNS + split, model, seed: one row per test video and run
    confusion: dict[str, pd.DataFrame]  # model -> video-level counts summed over splits
    audit: dict
    videos: pd.DataFrame
    shard_stats: list[dict]     # bNNN.json contents + clip_spec, bucket
    read: list[Path] = field(default_factory=list)
    # experiments.in_report: experiment name -> {"summary": summary.json, "png": figure.png bytes}
    experiments: dict[str, dict] = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # run name -> RunSettings (vidrec/plan/runs.py), resolved once



def planned_buckets(cfg: dict, audit: dict) -> list[int]:
    """The shards the workflow planned: every bucket of the videos the format listed (audit.json records
    their count before a rehearsal's subset, which keeps the video ids)."""
    return shard_buckets(audit["listed_videos"], cfg["decode"]["videos_per_shard"])


class ArtifactReader:
    """Reads artifacts, naming a missing one with how to produce it, and records every path read."""

    def __init__(self) -> None:
        self.read: list[Path] = []

    def _check(self, path: Path) -> Path:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: missing; the report needs every run the configuration lists "
                "(datasets.<dataset>.splits x models) and their data statistics: run "
                "`snakemake --cores N report` to produce them")
        self.read.append(path)
        return path

    def json(self, path: Path) -> dict:
        return json.loads(self._check(path).read_text())

    def csv(self, path: Path, **kwargs) -> pd.DataFrame:
        return pd.read_csv(self._check(path), **kwargs)

    def bytes(self, path: Path) -> bytes:
        return self._check(path).read_bytes()


def load_results(cfg: dict, layout: Layout) -> Results:
    ds = dataset_config(cfg)
    reader = ArtifactReader()
    videos = reader.csv(layout.manifest("videos"))
    audit = reader.json(layout.manifest("audit"))
    buckets = planned_buckets(cfg, audit)
    files = input_files(cfg, layout, buckets)

    rows, metrics, per_class, predictions, confusion = [], [], [], [], {}
    for i, (split, model, seed) in enumerate(run_instances(cfg)):
        ev = reader.json(files["evaluations"][i])
        tr = reader.json(files["train"][i])
        row = {**ev, "split": split, "model": model, "seed": seed}
        row.update({f"train_{k}": v for k, v in tr.items() if k not in ("model", "arch", "dataset", "protocol")})
        rows.append(row)
        m = reader.csv(files["metrics"][i])
        metrics.append(m.assign(split=split, model=model, seed=seed))
        pc = reader.csv(files["per_class"][i])
        per_class.append(pc.assign(split=split, model=model, seed=seed))
        pred = reader.csv(files["predictions"][i], usecols=PREDICTION_COLUMNS)
        predictions.append(pred.assign(split=split, model=model, seed=seed))
        cm = reader.csv(files["confusion"][i], index_col="true_class")
        confusion[model] = cm if model not in confusion else confusion[model].add(cm, fill_value=0)
    shard_stats = []
    for clip in clip_specs(cfg):
        for bucket in buckets:
            stats = reader.json(layout.shard_stats(clip, bucket))
            shard_stats.append({**stats, "clip_spec": clip, "bucket": bucket})
    experiments: dict[str, dict] = {}
    for path in files["experiments"]:
        entry = experiments.setdefault(path.parent.name, {})
        if path.suffix == ".json":
            entry["summary"] = reader.json(path)
        else:
            entry["png"] = reader.bytes(path)
    return Results(
        experiments=experiments, settings=resolve_runs(cfg),
        cfg=cfg, results_dir=layout.results, dataset=cfg["dataset"], splits=list(ds["splits"]),
        models=list(ds["models"]), synthetic=ds.get("synthetic"), runs=pd.DataFrame(rows),
        metrics=pd.concat(metrics, ignore_index=True), per_class=pd.concat(per_class, ignore_index=True),
        predictions=pd.concat(predictions, ignore_index=True),
        confusion=confusion, audit=audit, videos=videos, shard_stats=shard_stats, read=reader.read)
