"""Read exactly the artifacts the report shows, and record every path read.

The files are named by the configuration (splits x models of the active dataset, the shard
statistics of the clip specs those models use), the same way `rules/report.smk` names the rule's
inputs, so the report never picks up a stale run that the configuration no longer lists.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vidrec.config import dataset_config, run_config

RUN_FILES = ("evaluation.json", "metrics.csv", "train.json", "per_class.csv", "confusion.csv")


def default_shards_dir(cfg: dict, results_dir: Path) -> Path:
    """`data/<dataset>/shards` beside `results/<dataset>` (the workflow's layout)."""
    return Path(results_dir).parent.parent / "data" / cfg["dataset"] / "shards"


def clip_specs(cfg: dict) -> list[str]:
    """Clip spec names used by the active dataset's models (one shard set each)."""
    return sorted({run_config(cfg, m)["clip_name"] for m in dataset_config(cfg)["models"]})


def input_files(cfg: dict, results_dir: Path, shards_dir: Path, groups: list[int]) -> dict[str, list[Path]]:
    """Every file the report reads, by kind (mirrors `report_inputs` in rules/report.smk)."""
    ds = dataset_config(cfg)
    results_dir = Path(results_dir)
    runs = [(s, m) for s in ds["splits"] for m in ds["models"]]
    files = {name: [results_dir / f"split{s}" / m / name for s, m in runs] for name in RUN_FILES}
    files["audit"] = [results_dir / "manifest" / "audit.json"]
    files["videos"] = [results_dir / "manifest" / "videos.csv"]
    files["shard_stats"] = [Path(shards_dir) / c / f"g{g:02d}.json" for c in clip_specs(cfg) for g in groups]
    if experiment_files(cfg):  # experiments.in_report: true
        files["experiments"] = [results_dir / f for f in experiment_files(cfg)]
    return files


def experiment_files(cfg: dict) -> list[str]:
    """summary.json and figure.png of every configured experiment when experiments.in_report is true."""
    from vidrec.experiments.spec import report_files

    return report_files(cfg)


@dataclass
class Results:
    """Everything the report shows, as tables."""

    cfg: dict
    results_dir: Path
    dataset: str
    splits: list[int]
    models: list[str]
    synthetic: dict | None
    runs: pd.DataFrame          # one row per (split, model): evaluation.json + train.json (train_*)
    metrics: pd.DataFrame       # metrics.csv rows + split, model
    per_class: pd.DataFrame     # per_class.csv rows + split, model
    confusion: dict[str, pd.DataFrame]  # model -> video-level counts summed over splits
    audit: dict
    videos: pd.DataFrame
    shard_stats: list[dict]     # gGG.json contents + clip_spec
    read: list[Path] = field(default_factory=list)
    # experiments.in_report: experiment name -> {"summary": summary.json, "png": figure.png bytes}
    experiments: dict[str, dict] = field(default_factory=dict)

    @property
    def groups(self) -> list[int]:
        return sorted(int(g) for g in self.videos["group"].unique())


class _Reader:
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


def load_results(cfg: dict, results_dir: Path, shards_dir: Path | None = None) -> Results:
    results_dir = Path(results_dir)
    shards_dir = Path(shards_dir) if shards_dir else default_shards_dir(cfg, results_dir)
    ds = dataset_config(cfg)
    reader = _Reader()
    videos = reader.csv(results_dir / "manifest" / "videos.csv")
    audit = reader.json(results_dir / "manifest" / "audit.json")
    groups = sorted(int(g) for g in videos["group"].unique())
    files = input_files(cfg, results_dir, shards_dir, groups)

    rows, metrics, per_class, confusion = [], [], [], {}
    runs = [(s, m) for s in ds["splits"] for m in ds["models"]]
    for i, (split, model) in enumerate(runs):
        ev = reader.json(files["evaluation.json"][i])
        tr = reader.json(files["train.json"][i])
        row = {**ev, "split": split, "model": model}
        row.update({f"train_{k}": v for k, v in tr.items() if k not in ("model", "arch", "dataset", "protocol")})
        rows.append(row)
        m = reader.csv(files["metrics.csv"][i])
        metrics.append(m.assign(split=split, model=model))
        pc = reader.csv(files["per_class.csv"][i])
        per_class.append(pc.assign(split=split, model=model))
        cm = reader.csv(files["confusion.csv"][i], index_col="true_class")
        confusion[model] = cm if model not in confusion else confusion[model].add(cm, fill_value=0)
    shard_stats = []
    for path in files["shard_stats"]:
        stats = reader.json(path)
        shard_stats.append({**stats, "clip_spec": path.parent.name, "group": int(path.stem[1:])})
    experiments: dict[str, dict] = {}
    for path in files.get("experiments", []):
        entry = experiments.setdefault(path.parent.name, {})
        if path.suffix == ".json":
            entry["summary"] = reader.json(path)
        else:
            entry["png"] = reader._check(path).read_bytes()
    return Results(
        experiments=experiments,
        cfg=cfg, results_dir=results_dir, dataset=cfg["dataset"], splits=list(ds["splits"]),
        models=list(ds["models"]), synthetic=ds.get("synthetic"), runs=pd.DataFrame(rows),
        metrics=pd.concat(metrics, ignore_index=True), per_class=pd.concat(per_class, ignore_index=True),
        confusion=confusion, audit=audit, videos=videos, shard_stats=shard_stats, read=reader.read)
