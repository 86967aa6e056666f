"""Where every artifact of a dataset lives: the one owner of the results tree's layout.

The rules (as output patterns), the CLI, the report and the experiments all ask a `Layout`; nobody
else spells a path or parses a split number out of one. Torch-free and side-effect-free, so the
Snakefile can use it at parse time. Arguments may be Snakemake wildcards such as "{split}": every
method formats them into the pattern unchanged.

    data/<dataset>/shards/<clip>/bNNN.h5 (+ bNNN.json)     decoded clips of one bucket of videos, once per clip spec
    results/<dataset>/manifest/{videos,splits}.csv, audit.json, classes.txt
    results/<dataset>/<clip>/split<N>/index.csv            a split's view of the shards
    results/<dataset>/split<N>/<run>/seed<S>/             model.pt, checkpoint.pt, metrics.csv, train.json,
                                                          evaluation.json, predictions.csv, per_class.csv,
                                                          confusion.csv; at_<clip>/ (tested on another spec)
    results/<dataset>/report/                             the comparison report (REPORT_FILES)
    results/<dataset>/progress/                           `vidrec report` mid-run (PROGRESS_FILES)
    results/<dataset>/experiments/<name>/                 one of Tran et al.'s experiments (EXPERIMENT_FILES)
    logs/<dataset>/, results/<dataset>/benchmarks/        Snakemake's logs and job benchmarks
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MANIFEST_FILES = {"videos": "videos.csv", "splits": "splits.csv", "audit": "audit.json", "classes": "classes.txt"}
# What `vidrec train` writes into a run folder, and what `vidrec evaluate` writes beside it.
TRAIN_FILES = {"model": "model.pt", "metrics": "metrics.csv", "summary": "train.json"}
CHECKPOINT_FILE = "checkpoint.pt"
EVALUATION_FILES = {"evaluation": "evaluation.json", "predictions": "predictions.csv",
                    "per_class": "per_class.csv", "confusion": "confusion.csv"}
SCORES_FILE = "scores.npz"  # every clip's softmax, for clip-count experiments (evaluate --scores)
# The comparison report's files (rules/report.smk flags each with report() and a caption).
REPORT_FILES = {
    "html": "index.html",
    "accuracy": "accuracy.csv",
    "accuracy_splits": "accuracy_per_split.csv",
    "paired": "paired_comparison.csv",
    "claims": "claims.csv",
    "curves": "training_curves.png",
    "efficiency": "efficiency.csv",
    "cost": "accuracy_vs_cost.png",
    "per_class": "per_class_diff.csv",
    "per_class_fig": "per_class_diff.png",
    "confusion": "confusion.png",
    "audit": "data_audit.csv",
    "shards": "shards.csv",
    "shards_fig": "shards.png",
    "skipped": "skipped_repaired.csv",
    "provenance": "provenance.json",
    "forecast": "forecast.csv",
}
# `vidrec report` on unfinished runs: the progress report, never in the final report's folder.
PROGRESS_FILES = {"html": "index.html", "status": "status.csv", "accuracy": "accuracy.csv",
                  "curves": "training_curves.png"}
# Files every experiment writes into its folder.
EXPERIMENT_FILES = {"table": "table.csv", "claims": "claims.csv", "figure": "figure.png",
                    "summary": "summary.json", "html": "index.html"}


REHEARSAL_SUFFIX = "-rehearsal"  # folder names of a rehearsal's artifacts (vidrec/plan/rehearsal.py)

# Published figures the report sets beside measurements (package data, an input of the report rule).
CLAIMS_FILE = Path(__file__).parent.parent / "report" / "claims.yaml"


def _bucket(bucket: int | str) -> str:
    return f"{bucket:03d}" if isinstance(bucket, int) else str(bucket)


def shard_buckets(n_videos: int, videos_per_shard: int) -> list[int]:
    """The shards of a dataset of n_videos: bucket b holds the videos with video_id // videos_per_shard == b.
    Dataset-independent (no format's grouping); at least one bucket, so an empty plan still parses."""
    return list(range(max(1, -(-n_videos // videos_per_shard))))


def bucket_of(video_id: int, videos_per_shard: int) -> int:
    return video_id // videos_per_shard


@dataclass(frozen=True)
class Layout:
    """The artifact paths of one dataset under a working directory (the Snakefile's by default)."""

    dataset: str
    root: Path = Path(".")

    @classmethod
    def of(cls, cfg: dict, root: Path | str = ".") -> "Layout":
        """The active dataset's layout; a rehearsal's lives apart (<dataset>-rehearsal), so it never
        satisfies a real target (vidrec/plan/rehearsal.py)."""
        return cls(cfg["dataset"] + (REHEARSAL_SUFFIX if cfg.get("rehearsal") else ""), Path(root))

    # -- top-level folders
    @property
    def results(self) -> Path:
        return self.root / "results" / self.dataset

    @property
    def data(self) -> Path:
        return self.root / "data" / self.dataset

    @property
    def logs(self) -> Path:
        return self.root / "logs" / self.dataset

    @property
    def benchmarks(self) -> Path:
        """Snakemake's per-job `benchmark:` files."""
        return self.results / "benchmarks"

    def job_benchmark(self, job: str) -> Path:
        """Snakemake's `benchmark:` file of one job, named as the rules name it (vidrec/report/forecast.py):
        'manifest', 'decode/<clip>/b<BBB>', 'index/<clip>/split<N>', 'train/split<N>/<run>/seed<S>',
        'evaluate/split<N>/<run>/seed<S>', 'report'."""
        return self.benchmarks / f"{job}.tsv"

    # -- data
    def manifest(self, kind: str) -> Path:
        return self.results / "manifest" / MANIFEST_FILES[kind]

    def shards_dir(self, clip: str) -> Path:
        return self.data / "shards" / clip

    def shard(self, clip: str, bucket: int | str) -> Path:
        return self.shards_dir(clip) / f"b{_bucket(bucket)}.h5"

    def shard_stats(self, clip: str, bucket: int | str) -> Path:
        return self.shards_dir(clip) / f"b{_bucket(bucket)}.json"

    def split_index(self, clip: str, split: int | str) -> Path:
        return self.results / clip / f"split{split}" / "index.csv"

    # -- runs: one folder per (split, run, seed)
    def run_dir(self, split: int | str, run: str, seed: int | str) -> Path:
        return self.results / f"split{split}" / run / f"seed{seed}"

    def train_file(self, split: int | str, run: str, seed: int | str, kind: str) -> Path:
        return self.run_dir(split, run, seed) / TRAIN_FILES[kind]

    def model_file(self, split: int | str, run: str, seed: int | str) -> Path:
        return self.train_file(split, run, seed, "model")

    def checkpoint(self, split: int | str, run: str, seed: int | str) -> Path:
        return self.run_dir(split, run, seed) / CHECKPOINT_FILE

    def evaluation_dir(self, split: int | str, run: str, seed: int | str, at_clip: str | None = None) -> Path:
        """A run's own evaluation, or (at_clip) its evaluation on another clip spec."""
        run_dir = self.run_dir(split, run, seed)
        return run_dir / f"at_{at_clip}" if at_clip else run_dir

    def evaluation_file(self, split: int | str, run: str, seed: int | str, kind: str = "evaluation",
                        at_clip: str | None = None) -> Path:
        name = SCORES_FILE if kind == "scores" else EVALUATION_FILES[kind]
        return self.evaluation_dir(split, run, seed, at_clip) / name

    # -- report and experiments
    @property
    def report_dir(self) -> Path:
        return self.results / "report"

    def report_file(self, kind: str) -> Path:
        return self.report_dir / REPORT_FILES[kind]

    @property
    def progress_dir(self) -> Path:
        """The progress report of runs still training (`vidrec report` by hand; no rule's target)."""
        return self.results / "progress"

    def progress_file(self, kind: str) -> Path:
        return self.progress_dir / PROGRESS_FILES[kind]

    def experiment_dir(self, name: str) -> Path:
        return self.results / "experiments" / name

    def experiment_file(self, name: str, kind: str) -> Path:
        return self.experiment_dir(name) / EXPERIMENT_FILES[kind]
