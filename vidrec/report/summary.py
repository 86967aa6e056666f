"""One row per model from the loaded results: the means over splits and seeds, the spread, and each accuracy's
95% interval. Test videos come in clusters (load.cluster_key: UCF101's class x group), so every top-1 accuracy
carries an interval with the cluster as the unit (a design-effect-adjusted Wilson interval that adds the
seed-to-seed variance when a model has several seeds; vidrec/evaluation/stats.py). Every section's table
starts from this summary."""
from __future__ import annotations

import numpy as np
import pandas as pd

from vidrec.evaluation.stats import clustered_accuracy, wilson_interval
from vidrec.report.formatting import NA, is_num
from vidrec.report.load import Results, cluster_key
from vidrec.report.thesis import practical_time_ratio, primary_comparison


ACC = ["clip_top1", "clip_top5", "video_top1", "video_top5"]
ACC_LABELS = ["Clip top-1 (%)", "Clip top-5 (%)", "Video top-1 (%)", "Video top-5 (%)"]
# paired comparison: protocol -> predictions.csv column (is the video's top-1 right?)
LEVELS = {"clip": "correct_clip", "video": "correct_video"}
TOP1 = {f"{level}_top1": col for level, col in LEVELS.items()}  # accuracies with per-video outcomes
INTERVAL_METHOD = ("design-effect-adjusted Wilson (Kish's effective sample size n / design effect, the design "
                   "effect from the clustered variance, at least 1)")
# evaluation.json figures averaged over splits
NUMERIC = ACC + ["chance", "n_videos", "n_clips", "params", "size_mb_fp32", "checkpoint_mb", "gflops_per_clip",
                 "infer_batch", "infer_clips_per_s", "clips_per_video", "infer_videos_per_s_one_clip",
                 "infer_videos_per_s_all_clips", "infer_videos_per_s_end_to_end", "eval_seconds", "peak_memory_mb",
                 "threads", "train_time_total_s", "train_time_per_epoch_s", "epochs"]


def model_summary(res: Results, what_if_clips: int) -> pd.DataFrame:
    """One row per model (config order): means over splits, spread of the accuracies, derived speeds."""
    runs = res.runs.copy()
    for k in NUMERIC:  # tolerate a missing or null figure (e.g. no train.json beside a model)
        runs[k] = pd.to_numeric(runs[k], errors="coerce") if k in runs else np.nan
    runs = with_correct_counts(runs)
    g = runs.groupby("model", sort=False)
    out = g[NUMERIC].mean()
    for k in ACC:
        out[f"{k}_std"] = g[k].std(ddof=1)
    # the interval covers every test video of the splits run, each counted once: per split the mean
    # correct count over the seeds (the seeds test the same videos), then summed over the splits
    counts = [f"{k}_correct" for k in ACC] + ["n_videos"]
    per_split = runs.groupby(["model", "split"], sort=False)[counts].agg(_mean_if_complete)
    pooled = per_split.groupby(level="model", sort=False).agg(_sum_if_complete).round().astype("Int64")
    out = add_intervals(out.join(pooled.rename(columns={"n_videos": "test_videos"})), "test_videos")
    out = add_clustered_intervals(out, res, list(out.index))
    out["n_splits"] = g["split"].nunique()
    out["n_seeds"] = g["seed"].nunique()
    out["n_runs"] = g.size()
    out["seeds"] = g["seed"].agg(lambda s: ", ".join(str(v) for v in sorted(s.unique())))
    out["splits"] = g["split"].agg(lambda s: ", ".join(str(v) for v in sorted(s.unique())))
    for k in ("arch", "protocol", "clip_spec", "device"):
        out[k] = g[k].first()
    shapes = g["clip_shape"].first() if "clip_shape" in runs else pd.Series(dtype=object)
    out["flops_input"] = [" x ".join(map(str, shapes[m])) if isinstance(shapes.get(m), (list, tuple)) else NA
                          for m in out.index]
    out["views"] = g["views"].first() if "views" in runs else np.nan  # evaluation.json's K clips x S crops
    out = out.reindex([m for m in res.models if m in out.index])
    out["what_if_clips_per_video"] = what_if_clips
    out["infer_videos_per_s_what_if"] = out["infer_clips_per_s"] / what_if_clips
    out["practical_time_ratio"] = practical_time_ratio(out, primary_comparison(res.cfg, out))
    return out


def run_outcomes(pred: pd.DataFrame, col: str) -> tuple[np.ndarray, pd.Index]:
    """(seeds, test videos) 0/1 outcomes of one model's runs, a test video being (split, video_id).

    Only the videos every seed was tested on; the seeds test the same videos of a split."""
    wide = pred.assign(y=pred[col].astype(float)).pivot_table(index=["split", "video_id"], columns="seed",
                                                              values="y", aggfunc="first").dropna()
    return wide.to_numpy(dtype=float).T, wide.index


def video_clusters(res: Results, index: pd.Index) -> np.ndarray:
    """The cluster of each (split, video_id) test video: load.cluster_key's unit (a video it lacks: its own)."""
    keys, _ = cluster_key(res.videos)
    ids = index.get_level_values("video_id")
    found = keys.reindex(ids)
    return np.where(found.isna(), ["video " + str(v) for v in ids], found.astype(str)).astype(str)


def add_clustered_intervals(frame: pd.DataFrame, res: Results, models: list[str],
                            runs: pd.DataFrame | None = None) -> pd.DataFrame:
    """Replace the top-1 intervals by the clustered ones (stats.clustered_accuracy) and add their design effects.

    Per model over every split and seed it ran (frame indexed by model), or, with `runs` (split, model, seed
    per row of frame, same order), per run."""
    frame = frame.copy()
    pred = res.predictions
    for k, col in TOP1.items():
        found = []
        for i, m in enumerate(models):
            sub = pred[pred["model"] == m]
            if runs is not None:
                r = runs.iloc[i]
                sub = sub[(sub["split"] == r["split"]) & (sub["seed"] == r["seed"])]
            y, index = run_outcomes(sub, col)
            found.append(clustered_accuracy(y, video_clusters(res, index)) if y.size else None)
        frame[f"{k}_lo"] = [c.lo if c else np.nan for c in found]
        frame[f"{k}_hi"] = [c.hi if c else np.nan for c in found]
        frame[f"{k}_design_effect"] = [c.design_effect if c else np.nan for c in found]
        frame[f"{k}_design_effect_clusters"] = [c.design_effect_clusters if c else np.nan for c in found]
        frame[f"{k}_effective_n"] = [c.effective_n if c else np.nan for c in found]
        frame[f"{k}_deff_estimated"] = [c.estimated if c else np.nan for c in found]
        frame["n_clusters"] = [c.n_clusters if c else np.nan for c in found]
    return frame


def _mean_if_complete(values: pd.Series) -> float:
    """Mean, or missing when a value is."""
    return values.astype(float).mean() if values.notna().all() and len(values) else np.nan


def _sum_if_complete(values: pd.Series) -> float:
    """Sum, or missing when a value is (a partial count would give a wrong interval)."""
    return values.sum() if values.notna().all() and len(values) else np.nan


def with_correct_counts(runs: pd.DataFrame) -> pd.DataFrame:
    """Add {k}_correct: the test videos each run got right (evaluation.json stores k / n_videos)."""
    n = pd.to_numeric(runs["n_videos"], errors="coerce") if "n_videos" in runs else np.nan
    return runs.assign(**{f"{k}_correct": (pd.to_numeric(runs[k], errors="coerce") * n).round().astype("Int64")
                          for k in ACC})


def add_intervals(frame: pd.DataFrame, n_col: str) -> pd.DataFrame:
    """Add {k}_lo / {k}_hi: the 95% Wilson interval of {k}_correct out of frame[n_col] (NaN where unknown)."""
    frame = frame.copy()
    for k in ACC:
        bounds = [wilson_interval(int(c), int(n)) if is_num(c) and is_num(n) else (np.nan, np.nan)
                  for c, n in zip(frame[f"{k}_correct"], frame[n_col])]
        frame[f"{k}_lo"] = [lo for lo, _ in bounds]
        frame[f"{k}_hi"] = [hi for _, hi in bounds]
    return frame


def seeds_note(summary: pd.DataFrame) -> str:
    """What the intervals condition on: one trained network per model, or the seeds' variation too."""
    one = [m for m in summary.index if int(summary.loc[m, "n_seeds"]) < 2]
    if not one:
        return ("Every model has two or more seeds: each top-1 interval adds the seed-to-seed variance of its "
                "accuracy (sample variance of the per-seed accuracies over the number of seeds) to the clustered "
                "test-sampling variance, and every paired test uses every seed (each video's outcome averaged "
                "over its model's seeds).")
    return (f"{', '.join(one)}: one seed, so {'its' if len(one) == 1 else 'their'} interval is conditional on one "
            "trained network: it says how well that network does, not the architecture. A claim about an "
            "architecture needs the spread over training seeds: list them in config.yaml's train.seeds (e.g. "
            "train: {seeds: [0, 1, 2]}, or in a file passed with `snakemake --configfile config.yaml seeds.yaml`; a "
            "run may list its own seeds); adding a seed trains only that seed, and the report then adds the "
            "seed-to-seed variance to each interval.")
