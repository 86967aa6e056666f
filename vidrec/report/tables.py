"""The report's tables, from the loaded results: numeric frames (written as CSV) and their display form.

Every function returns plain DataFrames; the display versions hold formatted strings so the HTML
never shows NaN. Test videos come in clusters (load.cluster_key: UCF101's class x group), so every
top-1 accuracy carries a 95% interval with the cluster as the unit (a design-effect-adjusted Wilson
interval that adds the seed-to-seed variance when a model has several seeds), and models tested on
the same videos are compared with the exact sign-flip test over clusters (vidrec/evaluation/stats.py).
One comparison is declared primary (report.primary_comparison) and judged at 5%; every other one is
exploratory, its p-value Holm-adjusted within a stated family.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import yaml

from vidrec.catalogue import CARDS, THESIS_PAIR, TORCHVISION_SCHEME
from vidrec.config import clip_size_text
from vidrec.errors import ConfigError
from vidrec.evaluation.stats import clustered_accuracy, clustered_paired_test, holm, wilson_interval
from vidrec.data.views import Views, run_views, train_clips_text
from vidrec.layout import CLAIMS_FILE
from vidrec.report.load import Results, cluster_key
from vidrec.runs import RunSettings
from vidrec.training.schedule import batch_plan, schedule_text

ACC = ["clip_top1", "clip_top5", "video_top1", "video_top5"]
ACC_LABELS = ["Clip top-1 (%)", "Clip top-5 (%)", "Video top-1 (%)", "Video top-5 (%)"]
NA = "n/a"
ALPHA = 0.05  # level of the declared primary comparison's test (every other test: Holm-adjusted, exploratory)
# paired comparison: protocol -> predictions.csv column (is the video's top-1 right?)
LEVELS = {"clip": "correct_clip", "video": "correct_video"}
TOP1 = {f"{level}_top1": col for level, col in LEVELS.items()}  # accuracies with per-video outcomes
INTERVAL_METHOD = ("design-effect-adjusted Wilson (Kish's effective sample size n / design effect, the design "
                   "effect from the clustered variance, at least 1)")
TEST_METHOD = "exact sign-flip (randomisation) test over clusters"
POOLED = "pooled"  # the paired table's split value for the test pooled over the splits run
# evaluation.json figures averaged over splits
NUMERIC = ACC + ["chance", "n_videos", "n_clips", "params", "size_mb_fp32", "checkpoint_mb", "gflops_per_clip",
                 "infer_batch", "infer_clips_per_s", "clips_per_video", "infer_videos_per_s_one_clip",
                 "infer_videos_per_s_all_clips", "infer_videos_per_s_end_to_end", "eval_seconds", "peak_memory_mb",
                 "threads", "train_time_total_s", "train_time_per_epoch_s", "epochs"]
CLAIMS_PATH = CLAIMS_FILE  # vidrec/layout.py owns the path (an input of the report rule)


# ----------------------------------------------------------------------------- formatting
def is_num(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)


def fmt(x, digits: int = 2) -> str:
    return f"{x:,.{digits}f}" if is_num(x) else NA


def fmt_acc(mean, lo=None, hi=None, std=None, n: int | None = None, unit: str = "") -> str:
    """Fraction -> 'mm.mm [lo, hi] (sd s.ss, n=N)' in percent.

    [lo, hi]: the 95% interval (top-1 clustered, top-5 Wilson); sd: the spread of the N runs (splits x seeds),
    shown only when there are two or more; n omitted for a single run's own row."""
    if not is_num(mean):
        return NA
    text = f"{mean * 100:.2f}{unit}"
    if is_num(lo) and is_num(hi):
        text += f" [{lo * 100:.2f}, {hi * 100:.2f}]"
    if n is None:
        return text
    spread = f"sd {std * 100:.2f}, " if n > 1 and is_num(std) else ""
    return f"{text} ({spread}n={n})"


def fmt_p(p) -> str:
    """'p = 0.267' (3 significant digits) or 'p < 0.0001'; the verdict uses the exact value, not this text."""
    if not is_num(p):
        return NA
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.3g}"


def verdict(p) -> str:
    """The declared primary comparison's verdict; never used for an exploratory (unadjusted) p-value."""
    return NA if not is_num(p) else ("significant" if p < ALPHA else "not significant") + f" at {ALPHA:.0%}"


def fmt_duration(seconds) -> str:
    if not is_num(seconds):
        return NA
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{seconds:.1f} s"


def family(arch: str) -> str:
    """Display name of the architecture's family ('P3D ResNet'); a name the catalogue lacks as is."""
    return CARDS[arch].family.name if arch in CARDS else arch


def load_claims(path: Path = CLAIMS_PATH) -> dict:
    return yaml.safe_load(Path(path).read_text())


# ----------------------------------------------------------------------------- per model
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
    primary = primary_comparison(res.cfg, out)
    out["practical_time_ratio"] = np.nan
    if primary:
        # time per video: model A at one clip against model B at `what_if_clips` clips (the thesis: ConvLSTM-C2D
        # against P3D at 21), on A's row
        a, b = primary.a, primary.b
        out.loc[a, "practical_time_ratio"] = (1 / out.loc[a, "infer_videos_per_s_one_clip"]) / (
            1 / out.loc[b, "infer_videos_per_s_what_if"])
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


def thesis_pair(summary: pd.DataFrame) -> tuple[str | None, str | None]:
    """The first model of each thesis family (ConvLSTM-C2D, P3D), or None where absent."""
    keys = {m: CARDS[a].family.key for m, a in summary["arch"].items() if a in CARDS}
    return tuple(next((m for m, k in keys.items() if k == f), None) for f in THESIS_PAIR)


class Primary(NamedTuple):
    """The declared primary comparison: model A against model B at one level (clip | video)."""

    a: str
    b: str
    level: str
    source: str  # how it was chosen, for the report


def primary_comparison(cfg: dict, summary: pd.DataFrame) -> Primary | None:
    """report.primary_comparison resolved against the models run (config validation checked the names).

    pair: the configured [A, B]; null: the thesis pair (first convlstm_c2d*, first p3d* run) when both are
    configured, else the first two runs; None with fewer than two runs. level: the setting's (default clip,
    the thesis's protocol)."""
    setting = (cfg.get("report") or {}).get("primary_comparison") or {}
    level = setting.get("level", "clip")
    pair = setting.get("pair")
    models = list(summary.index)
    if pair:
        missing = [m for m in pair if m not in models]
        if missing:
            raise ConfigError(f"report.primary_comparison.pair names {missing}, not among the runs {models}")
        return Primary(pair[0], pair[1], level, "report.primary_comparison.pair")
    conv, p3d = thesis_pair(summary)
    if conv and p3d:
        return Primary(conv, p3d, level, "the thesis pair (report.primary_comparison's default)")
    if len(models) >= 2:
        return Primary(models[0], models[1], level,
                       "the first two runs (no thesis pair configured; report.primary_comparison's default)")
    return None


def no_pair_text(summary: pd.DataFrame) -> str:
    """Why there is no compared pair (fewer than two runs), for the sections that need one."""
    return (f"this run has {len(summary)} model{'s' if len(summary) != 1 else ''} "
            f"({', '.join(summary.index) or 'none'}), and a comparison needs two")


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


def model_args_text(run: RunSettings) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(run.model_args.items()) if k != "dropout")


def classifier_text(run: RunSettings) -> str:
    """The Classifier column: the head as run, and where it departs from the cited source (the catalogue's
    Family.deviation, shown where the run uses dropout)."""
    dropout = float(run.model_args.get("dropout", 0.0) or 0.0)
    if not dropout:
        return "linear (cross-entropy)"
    deviation = CARDS[run.arch].family.deviation if run.arch in CARDS else None
    text = f"dropout {dropout:g} on the pooled features, then linear (cross-entropy)"
    return f"{text}; {deviation}" if deviation else text


def initialisation_text(run: RunSettings) -> str:
    """The Pre-trained column: how a run's weights started (RunSettings.initialisation), yes or no first."""
    if run.init_from and run.init_from.startswith(TORCHVISION_SCHEME):
        return f"yes: torchvision's {run.init_from[len(TORCHVISION_SCHEME):]} (classifier replaced)"
    if run.initialisation == "from scratch":
        return "no (from scratch)"
    return run.initialisation if run.init_from_run else f"yes ({run.initialisation})"


# how an override reads in a protocol label: dotted key -> word (others: the key itself)
OVERRIDE_WORDS = {"batch_size": "batch", "optimizer.lr": "lr", "optimizer.name": "optimizer",
                  "optimizer.weight_decay": "weight decay", "optimizer.momentum": "momentum",
                  "train_clips": "training clips", "augment.crop": "crop", "augment.hflip": "flips",
                  "scheduler.step_size": "step"}


def _setting_text(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_setting_text(v)}" for k, v in value.items()) + "}"
    return "none" if value is None else str(value)


def overrides_text(run: RunSettings) -> str:
    """'lr 0.001, batch 16, base_width 16, zero_init_residual on': what the dataset and the run change in
    the named protocol (RunSettings.overrides), then the run's constructor arguments (every one is the
    run's choice over the architecture's default); '' when the run is the protocol as named."""
    parts = [f"{OVERRIDE_WORDS.get(k, k)} {_setting_text(v)}" for k, v in run.overrides.items()]
    parts += [f"{k} {_setting_text(v)}" for k, v in sorted(run.model_args.items()) if k != "dropout"]
    return ", ".join(parts)


def views_of(run: RunSettings) -> tuple[Views, str | None]:
    """The run's test views (K clips x S crops) and, when it has fewer crops than `evaluate.crops`, why."""
    return run_views(run.clip, run.augment, int(run.evaluate.get("crops", 1)))


def protocol_text(run: RunSettings) -> str:
    """'thesis, overridden: lr 0.001, batch 16, base_width 16: 6 epochs, ...; test views: ...'."""
    p, c = run.protocol, run.clip
    opt = p["optimizer"]
    sched = (p.get("scheduler") or {}).get("name") or "no schedule"
    aug = run.augment
    views, fewer_crops = views_of(run)
    where = "centre" if views.crops == 1 else "3 along the longer side"
    augment = ", ".join([f"random {aug['crop']} crop ({where} in test)"] * bool(aug.get("crop"))
                        + ["horizontal flips"] * bool(aug.get("hflip"))) or "no augmentation"
    # the global batch as it is made, and warm-up, accumulation, scaling rule, Nesterov (vidrec/training/schedule.py)
    batch = batch_plan(p, max(1, run.train["gpus"]), run.train.get("nodes", 1)).text()
    schedule = "".join(f", {t}" for t in schedule_text(p))
    overridden = overrides_text(run)
    text = (f"{run.protocol_name}{f', overridden: {overridden}' if overridden else ''}: {p['epochs']} epochs"
            f"{f' ({run.note})' if run.note else ''}, {opt['name']} "
            f"lr {opt['lr']:g}, {sched}, {batch}{schedule}, "
            f"training clips: {train_clips_text(p['train_clips'], c['sampling'])}, {augment}; "
            f"clips {run.clip_name} ({c['frames']} frames, {clip_size_text(c)}, {c['sampling']}, "
            f"{c['clips_per_video']} per video)")
    text += f"; test views: video level {views.video_level_text()}, clip level {views.clip_level_text()}"
    return "; ".join([text, *([fewer_crops] if fewer_crops else []), *run.adjustments])


def accuracy_labels(views: list[Views]) -> list[str]:
    """The accuracy columns' labels, each naming its views: the clip level is one view; the video level
    names K clips x S crops when every row shares them, else points to the Protocol column."""
    shared = {v.text() for v in views}
    video = shared.pop() if len(shared) == 1 else "K clips x S crops: see Protocol"
    return [f"{label[:-4]} (%), {'1 view' if level == 'clip' else video}"
            for label, level in zip(ACC_LABELS, ("clip", "clip", "video", "video"))]


# ----------------------------------------------------------------------------- 1. accuracy
def accuracy_table(res: Results, summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for m, r in summary.iterrows():
        row = {"method": f"{family(r['arch'])} ({m})", "model": m, "arch": r["arch"],
               "classifier": classifier_text(res.settings[m]),
               "pretrained": initialisation_text(res.settings[m]),
               "protocol": protocol_text(res.settings[m]), "views": views_of(res.settings[m])[0].text(),
               "splits": r["splits"], "n_splits": int(r["n_splits"]),
               "seeds": r["seeds"], "n_seeds": int(r["n_seeds"]), "n_runs": int(r["n_runs"])}
        for k in ACC:
            row[f"{k}_mean"], row[f"{k}_std"] = r[k], r[f"{k}_std"] if r["n_runs"] > 1 else np.nan
            row[f"{k}_lo"], row[f"{k}_hi"], row[f"{k}_correct"] = r[f"{k}_lo"], r[f"{k}_hi"], r[f"{k}_correct"]
            row[f"{k}_interval"] = INTERVAL_METHOD if k in TOP1 else "Wilson, unclustered (no per-video outcome stored)"
        for k in TOP1:
            row[f"{k}_design_effect"] = r[f"{k}_design_effect"]
            row[f"{k}_design_effect_clusters"] = r[f"{k}_design_effect_clusters"]
            row[f"{k}_effective_n"] = r[f"{k}_effective_n"]
            row[f"{k}_deff_estimated"] = r[f"{k}_deff_estimated"]
        row["n_videos"] = r["test_videos"]
        row["n_clusters"] = r["n_clusters"]
        row["chance"] = r["chance"]
        rows.append(row)
    data = pd.DataFrame(rows)
    labels = accuracy_labels([views_of(res.settings[m])[0] for m in summary.index])
    show = pd.DataFrame({
        "Method": data["method"], "Classifier": data["classifier"], "Pre-trained": data["pretrained"],
        "Protocol": data["protocol"], "Splits": data["splits"], "Seeds": data["seeds"],
        "Test videos": [fmt(v, 0) for v in data["n_videos"]],
        "Clusters": [fmt(v, 0) for v in data["n_clusters"]],
        **{label: [fmt_acc(r[f"{k}_mean"], r[f"{k}_lo"], r[f"{k}_hi"], r[f"{k}_std"], r["n_runs"])
                   for _, r in data.iterrows()] for k, label in zip(ACC, labels)},
        "Design effect, clip / video top-1": [deff_text(r) for _, r in data.iterrows()],
        "Chance (%)": [fmt(c * 100) for c in data["chance"]],
    })
    return data, show


def deff_text(r: pd.Series) -> str:
    """'2.21 / 1.87': the top-1 design effects, clip / video level; '*' marks one not estimable (0% or 100%
    right: each cluster counted as one trial)."""
    def mark(estimated) -> str:
        return "*" if isinstance(estimated, (bool, np.bool_)) and not estimated else ""

    return " / ".join(fmt(r[f"{k}_design_effect"]) + mark(r[f"{k}_deff_estimated"]) for k in TOP1)


def split_accuracy_table(res: Results, summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run (model x split x seed): each top-1 accuracy's clustered 95% interval over that run's test videos
    (one network: clusters only), the top-5 ones' Wilson interval."""
    runs = with_correct_counts(res.runs)
    runs = runs.assign(order=runs["model"].map({m: i for i, m in enumerate(summary.index)}))
    runs = runs.sort_values(["order", "split", "seed"], kind="stable")
    data = add_intervals(runs[["split", "seed", "model", "arch", "n_videos"] + ACC + [f"{k}_correct" for k in ACC]],
                         "n_videos").reset_index(drop=True)
    data = add_clustered_intervals(data, res, list(data["model"]), runs=data)
    show = pd.DataFrame({
        "Method": [f"{family(a)} ({m})" for m, a in zip(data["model"], data["arch"])], "Split": data["split"],
        "Seed": data["seed"],
        "Test videos": [fmt(v, 0) for v in data["n_videos"]],
        "Clusters": [fmt(v, 0) for v in data["n_clusters"]],
        **{label: [fmt_acc(r[k], r[f"{k}_lo"], r[f"{k}_hi"]) for _, r in data.iterrows()]
           for k, label in zip(ACC, accuracy_labels([views_of(res.settings[m])[0] for m in summary.index]))},
        "Design effect, clip / video top-1": [deff_text(r) for _, r in data.iterrows()],
    })
    return data, show


# ----------------------------------------------------------------------------- 1b. paired comparison
def model_pairs(summary: pd.DataFrame, primary: Primary | None) -> list[tuple[str, str]]:
    """Every pair of models once, in configuration order, the primary pair first (in its declared order)."""
    models = list(summary.index)
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    if primary:
        pairs = [(primary.a, primary.b)] + [p for p in pairs if set(p) != {primary.a, primary.b}]
    return pairs


def _paired_row(res: Results, pred: pd.DataFrame, a: str, b: str) -> dict:
    """Counts, difference and clustered test per level for A and B on the test videos both were run on."""
    row: dict = {}
    for level, col in LEVELS.items():
        ya, ia = run_outcomes(pred[pred["model"] == a], col)
        yb, ib = run_outcomes(pred[pred["model"] == b], col)
        both = ia.intersection(ib, sort=False)
        ya, yb = ya[:, ia.get_indexer(both)], yb[:, ib.get_indexer(both)]
        t = clustered_paired_test(ya, yb, video_clusters(res, both))
        row.update({"n_videos": t.n_videos, "n_clusters": t.n_clusters, "seeds_a": ya.shape[0],
                    "seeds_b": yb.shape[0],
                    f"{level}_a_acc": ya.mean() if ya.size else np.nan,
                    f"{level}_b_acc": yb.mean() if yb.size else np.nan,
                    f"{level}_a_only": t.a_only, f"{level}_b_only": t.b_only,
                    f"{level}_clusters_a": t.clusters_a, f"{level}_clusters_b": t.clusters_b,
                    f"{level}_diff": t.difference, f"{level}_diff_lo": t.lo, f"{level}_diff_hi": t.hi,
                    f"{level}_p": t.p})
    return row


def paired_comparison(res: Results, summary: pd.DataFrame, primary: Primary | None) -> pd.DataFrame:
    """Per pair of models, per split and pooled over the splits: the clustered paired test at both levels.

    Every seed of each model is used (each test video's outcome averaged over the model's seeds). The test
    is the exact sign-flip test over clusters (stats.clustered_paired_test); pooling over the splits is
    legitimate because the official splits' test sets are disjoint (a video tested in two splits would fall
    in one cluster, so even then the clusters stay the independent unit). Roles: the primary comparison's
    pooled test at its level is judged at ALPHA as it is; every other pooled test is exploratory, its
    p-value Holm-adjusted within the family of the other pooled tests (pairs x levels, less the primary);
    the per-split tests (shown with two or more splits) form their own Holm family (pairs x levels x splits).
    """
    pred = res.predictions
    rows = []
    multi = len(res.splits) > 1
    for a, b in model_pairs(summary, primary):
        if multi:
            for split in res.splits:
                sub = pred[pred["split"] == split]
                if {a, b} <= set(sub["model"]):
                    rows.append({"split": split, "model_a": a, "model_b": b, **_paired_row(res, sub, a, b)})
        rows.append({"split": POOLED, "model_a": a, "model_b": b, **_paired_row(res, pred, a, b)})
    columns = ["split", "model_a", "model_b", "n_videos", "n_clusters", "seeds_a", "seeds_b"] + [
        f"{level}_{x}" for level in LEVELS for x in ("a_acc", "b_acc", "a_only", "b_only", "clusters_a",
                                                    "clusters_b", "diff", "diff_lo", "diff_hi", "p")]
    data = pd.DataFrame(rows, columns=columns)
    is_pair = [primary is not None and (a, b) == (primary.a, primary.b)
               for a, b in zip(data["model_a"], data["model_b"])]
    data.insert(3, "primary_pair", is_pair)
    pooled = data["split"] == POOLED
    for level in LEVELS:
        is_primary = pooled & data["primary_pair"] & (primary is not None and primary.level == level)
        data[f"{level}_role"] = np.where(is_primary, "primary", "exploratory")
        data[f"{level}_family"] = np.where(is_primary, "", np.where(pooled, "pooled", "per split"))
        data[f"{level}_p_adjusted"] = data[f"{level}_p"].where(is_primary, np.nan)
    for fam, mask in (("pooled", pooled), ("per split", ~pooled)):
        cells = [(i, level) for level in LEVELS for i in data.index[mask & (data[f"{level}_role"] == "exploratory")]]
        adjusted = holm([data.at[i, f"{level}_p"] for i, level in cells])
        for (i, level), p in zip(cells, adjusted):
            data.at[i, f"{level}_p_adjusted"] = p
    for level in LEVELS:
        data[f"{level}_reject_at_5pct"] = [p < ALPHA if is_num(p) else np.nan for p in data[f"{level}_p_adjusted"]]
    return data


def family_size(paired: pd.DataFrame, family: str) -> int:
    """How many tests a Holm family holds ('pooled': the exploratory pooled tests; 'per split')."""
    return int(sum((paired[f"{level}_family"] == family).sum() for level in LEVELS))


def test_text(r: pd.Series, level: str) -> str:
    """One cell: the primary test's p and verdict, or an exploratory test's Holm-adjusted p beside its raw p."""
    p, adj = r[f"{level}_p"], r[f"{level}_p_adjusted"]
    if not is_num(p):
        return NA
    if r[f"{level}_role"] == "primary":
        return f"primary: {fmt_p(p)}, {verdict(p)}"
    return f"exploratory: Holm-adjusted {fmt_p(adj)} (unadjusted {fmt_p(p)})"


def paired_show(paired: pd.DataFrame, pooled: bool = True) -> pd.DataFrame:
    """Display form: the pooled rows (one per pair), or every split's rows."""
    d = paired[(paired["split"] == POOLED) == pooled]
    out = {"Model A": d["model_a"], "Model B": d["model_b"]}
    if not pooled:
        out["Split"] = d["split"]
    out["Seeds A / B"] = [f"{x} / {y}" for x, y in zip(d["seeds_a"], d["seeds_b"])]
    out["Test videos (clusters)"] = [f"{n} ({c})" for n, c in zip(d["n_videos"], d["n_clusters"])]
    for level in LEVELS:
        name = level.capitalize()
        out[f"{name} top-1 A / B (%)"] = [f"{fmt(a * 100)} / {fmt(b * 100)}" for a, b in
                                         zip(d[f"{level}_a_acc"], d[f"{level}_b_acc"])]
        out[f"{name}: A - B (pp) [95%]"] = [f"{v * 100:+.2f} [{lo * 100:+.2f}, {hi * 100:+.2f}]" if is_num(v) else NA
                                           for v, lo, hi in zip(d[f"{level}_diff"], d[f"{level}_diff_lo"],
                                                                d[f"{level}_diff_hi"])]
        out[f"{name}: A only / B only, videos (clusters)"] = [
            f"{x} / {y} ({cx} / {cy})" for x, y, cx, cy in zip(d[f"{level}_a_only"], d[f"{level}_b_only"],
                                                                d[f"{level}_clusters_a"], d[f"{level}_clusters_b"])]
        out[f"{name}: clustered test"] = [test_text(r, level) for _, r in d.iterrows()]
    return pd.DataFrame(out)


def primary_text(paired: pd.DataFrame, summary: pd.DataFrame, primary: Primary | None, splits: list[int]) -> str:
    """The declared primary comparison's result, the one test the report judges at 5%."""
    if primary is None:
        return f"No primary comparison: {no_pair_text(summary)}."
    rows = paired[(paired["split"] == POOLED) & paired["primary_pair"]]
    r = rows.iloc[0] if len(rows) else None
    if r is None or not r["n_videos"]:
        return f"{primary.a} and {primary.b} share no test video, so they cannot be compared video by video."
    level = primary.level
    where = f"split{'s' if len(splits) > 1 else ''} {', '.join(map(str, splits))}"
    seeds = (f"; every seed used ({int(r['seeds_a'])} of {primary.a}, {int(r['seeds_b'])} of {primary.b})"
             if max(r["seeds_a"], r["seeds_b"]) > 1 else "; one seed each, so the test is about these two trained "
             "networks, not the architectures (see the accuracy section on seeds)")
    other = "video" if level == "clip" else "clip"
    protocol = "the thesis's protocol" if level == "clip" else "Tran et al.'s protocol"
    return (f"Primary comparison ({primary.source}): {primary.a} vs {primary.b} at {level} level ({protocol}), "
            f"on the same {int(r['n_videos'])} test videos in {int(r['n_clusters'])} clusters of {where}"
            f"{', pooled over the splits' if len(splits) > 1 else ''}{seeds}: "
            f"{r[f'{level}_a_acc'] * 100:.2f}% vs {r[f'{level}_b_acc'] * 100:.2f}%, difference "
            f"{r[f'{level}_diff'] * 100:+.2f} pp [95% {r[f'{level}_diff_lo'] * 100:+.2f}, "
            f"{r[f'{level}_diff_hi'] * 100:+.2f}]; {int(r[f'{level}_a_only'])} vs {int(r[f'{level}_b_only'])} "
            f"discordant videos in {int(r[f'{level}_clusters_a'])} vs {int(r[f'{level}_clusters_b'])} clusters; "
            f"{TEST_METHOD} {fmt_p(r[f'{level}_p'])}, {verdict(r[f'{level}_p'])}. The same pair at {other} "
            f"level is exploratory: {test_text(r, other).removeprefix('exploratory: ')}.")


# ----------------------------------------------------------------------------- 2. claims
def _measured(summary: pd.DataFrame, model: str, metric: str, unit: str) -> tuple[float, str]:
    r = summary.loc[model]
    value = r.get(metric, np.nan)
    if metric in ACC:
        return value * 100, fmt_acc(value, r[f"{metric}_lo"], r[f"{metric}_hi"], r[f"{metric}_std"],
                                    int(r["n_runs"]), unit=" %")
    if metric == "practical_time_ratio":
        return value * 100, (f"{value * 100:.1f} %" if is_num(value) else
                             "n/a (needs this model as model A of the compared pair, report.primary_comparison)")
    if unit == "s":
        return value, fmt_duration(value)
    return value, f"{fmt(value, 1)} {unit}"


def _claim_measurements(res: Results, summary: pd.DataFrame, claim: dict, spec: dict, base: dict,
                        demo: str) -> list[dict]:
    """The rows of one claim's `measure` entry: one per model of the architecture it names."""
    models = [m for m in summary.index if summary.loc[m, "arch"].startswith(spec["arch"])]
    if spec["metric"] == "practical_time_ratio":
        models = [m for m in models if is_num(summary.loc[m, "practical_time_ratio"])] or models[:1]
    label = f"{spec['label']}: " if spec.get("label") else ""
    if not models:
        return [{**base, "model": "", "measured_value": np.nan,
                 "measured": f"{label}not measured: no {spec['arch']}* model in this configuration", "measured_on": ""}]
    rows = []
    for m in models:
        r = summary.loc[m]
        v, text = _measured(summary, m, spec["metric"], claim["unit"])
        details = [r["arch"]] if r["arch"] != m else []
        details += [model_args_text(res.settings[m])] if model_args_text(res.settings[m]) else []
        on = (f"{m}{' (' + ', '.join(details) + ')' if details else ''} on {res.dataset}{demo}, "
              f"split{'s' if r['n_splits'] > 1 else ''} {r['splits']}, seed{'s' if r['n_seeds'] > 1 else ''} "
              f"{r['seeds']}, {r['device']}, {fmt(r['threads'], 0)} threads")
        rows.append({**base, "model": m, "measure": spec["metric"], "measured_value": v, "measured": label + text,
                     "measured_on": on})
    return rows


def dataset_claims(res: Results, claims: dict) -> list[dict]:
    """The claims measured on the active dataset's benchmark (claims.yaml `dataset` = its format)."""
    return [c for c in claims["claims"] if c["dataset"] == res.cfg["datasets"][res.dataset]["format"]]


def claims_table(res: Results, summary: pd.DataFrame, claims: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    demo = " (synthetic demo set)" if res.synthetic else ""
    rows = []
    for c in dataset_claims(res, claims):
        value = c["value"]
        base = {"id": c["id"], "kind": c["kind"], "claim": c["what"], "claimed": c["claimed"],
                "claimed_value": "-".join(str(v) for v in value) if isinstance(value, list) else value,
                "unit": c["unit"], "source": c["source"], "source_text": " ".join(claims["sources"][c["source"]].split()),
                "where": c["where"], "setting": " ".join(c["setting"].split()),
                "note": " ".join(c.get("note", "").split())}
        specs = c.get("measure") or []
        for spec in [specs] if isinstance(specs, dict) else specs:  # one measure, or several labelled ones
            rows += _claim_measurements(res, summary, c, spec, base, demo)
        if not specs:
            rows.append({**base, "model": "", "measured_value": np.nan, "measured": "not measured by this pipeline",
                         "measured_on": ""})
    data = pd.DataFrame(rows, columns=None if rows else [
        "id", "kind", "claim", "claimed", "claimed_value", "unit", "source", "source_text", "where", "setting",
        "note", "model", "measure", "measured_value", "measured", "measured_on"])
    show = pd.DataFrame({
        "Claim": data["claim"], "Claimed (claim)": data["claimed"],
        "Source": [f"{s}: {w}" for s, w in zip(data["source"], data["where"])],
        "Claim's setting": data["setting"], "Measured here": data["measured"],
        "Measured on": data["measured_on"], "Note": data["note"],
    })
    return data, show


# ----------------------------------------------------------------------------- 4. efficiency
def efficiency_table(res: Results, summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    s = summary
    data = pd.DataFrame({
        "model": s.index, "arch": s["arch"].values, "params": s["params"].values,
        "size_mb_fp32": s["size_mb_fp32"].values, "checkpoint_mb": s["checkpoint_mb"].values,
        "gflops_per_clip": s["gflops_per_clip"].values, "flops_input": s["flops_input"].values,
        "epochs": s["epochs"].values,
        "train_time_per_epoch_s": s["train_time_per_epoch_s"].values,
        "train_time_total_s": s["train_time_total_s"].values,
        "infer_batch": s["infer_batch"].values, "infer_clips_per_s": s["infer_clips_per_s"].values,
        "clips_per_video": s["clips_per_video"].values,
        "videos_per_s_thesis_1clip": s["infer_videos_per_s_one_clip"].values,
        "videos_per_s_video_level": s["infer_videos_per_s_all_clips"].values,
        "what_if_clips_per_video": s["what_if_clips_per_video"].values,
        "videos_per_s_what_if": s["infer_videos_per_s_what_if"].values,
        # decode included (vidrec.inference.measure_end_to_end); absent from older evaluation.json
        "videos_per_s_end_to_end": s["infer_videos_per_s_end_to_end"].values,
        "peak_memory_mb": s["peak_memory_mb"].values, "device": s["device"].values,
        "threads": s["threads"].values, "n_splits": s["n_splits"].values,
    })
    k = int(data["what_if_clips_per_video"].iloc[0]) if len(data) else 0
    show = pd.DataFrame({
        "Model": [f"{family(a)} ({m})" for m, a in zip(data["model"], data["arch"])],
        "Params (M)": [fmt(p / 1e6) for p in data["params"]],
        "Size fp32 (MB)": [fmt(v, 1) for v in data["size_mb_fp32"]],
        "Checkpoint (MB)": [fmt(v, 1) for v in data["checkpoint_mb"]],
        "GFLOPs / clip (multiply-add = 2 FLOPs)": [fmt(v) for v in data["gflops_per_clip"]],
        "FLOPs input (C x T x H x W)": data["flops_input"],
        "Epochs": [fmt(v, 0) for v in data["epochs"]],
        "Train / epoch": [fmt_duration(v) for v in data["train_time_per_epoch_s"]],
        "Train total": [fmt_duration(v) for v in data["train_time_total_s"]],
        "Inference (clips/s)": [fmt(v, 1) for v in data["infer_clips_per_s"]],
        "Videos/s, thesis (1 clip)": [fmt(v, 1) for v in data["videos_per_s_thesis_1clip"]],
        "Videos/s, video level (K clips x S crops)": [
            f"{fmt(v, 1)} ({views if isinstance(views, str) else f'K={fmt(c, 0)}'})"  # K alone: an older file
            for v, views, c in zip(data["videos_per_s_video_level"], s["views"], data["clips_per_video"])],
        f"Videos/s at {k} clips (what-if)": [fmt(v, 2) for v in data["videos_per_s_what_if"]],
        "Videos/s, end-to-end (decode incl., 1 clip)": [fmt(v, 1) for v in data["videos_per_s_end_to_end"]],
        "Peak memory (MB)": [fmt(v, 0) for v in data["peak_memory_mb"]],
        "Device": [f"{d}, {fmt(t, 0)} threads" for d, t in zip(data["device"], data["threads"])],
    })
    return data, show


def capacity_text(summary: pd.DataFrame, primary: Primary | None) -> list[str]:
    """The thesis's 'practical capacity' argument for the compared pair, recomputed from the measured speeds:
    model A at one clip per video against model B at the thesis's what-if clips per video (for P3D)."""
    if primary is None:
        return [f"The practical-capacity comparison needs the compared pair; {no_pair_text(summary)}."]
    a, b = primary.a, primary.b
    c, p = summary.loc[a], summary.loc[b]
    k = int(p["what_if_clips_per_video"])
    one = c["infer_videos_per_s_one_clip"] / p["infer_videos_per_s_one_clip"]
    return [
        f"{a} at one clip per video (the thesis protocol): {fmt(c['infer_videos_per_s_one_clip'], 1)} videos/s. "
        f"{b}: {fmt(p['infer_clips_per_s'], 1)} clips/s, so {fmt(p['infer_videos_per_s_one_clip'], 1)} videos/s "
        f"at one clip per video and {fmt(p['infer_videos_per_s_what_if'], 2)} videos/s at the {k} clips per "
        "video the thesis assumes for P3D.",
        f"Time per video, {a} (1 clip) as a share of {b} ({k} clips): "
        f"{fmt(c['practical_time_ratio'] * 100, 1)}% (the thesis claims 24% for ConvLSTM-C2D against P3D). At one "
        f"clip per video each, the protocol under which both thesis accuracies were reported, {a} processes "
        f"{fmt(one, 2)}x as many videos per second as {b}.",
    ]


# ----------------------------------------------------------------------------- 5. per class
def per_class_diff(res: Results, summary: pd.DataFrame, primary: Primary | None) -> pd.DataFrame:
    """Per class: the compared pair's accuracies (mean over splits and seeds), sorted by |difference|.

    Columns a_* are model A's (model_a names it), b_* model B's; diff_video_top1_pp = A minus B."""
    if primary is None:
        return pd.DataFrame(columns=["class_name", "label", "n_videos", "model_a", "model_b", "diff_video_top1_pp"])
    a, b = primary.a, primary.b
    pc = res.per_class
    mean = pc.groupby(["model", "class_name"], sort=False)[["clip_top1", "video_top1"]].mean()
    # test videos per class: each split's count once (its seeds test the same videos)
    n = pc[pc["model"] == a].drop_duplicates(["split", "class_name"]).groupby("class_name")["n_videos"].sum()
    labels = pc.drop_duplicates("class_name").set_index("class_name")["label"]
    out = pd.DataFrame({"class_name": labels.index, "label": labels.values})
    out["n_videos"] = out["class_name"].map(n).fillna(0).astype(int)
    out["model_a"], out["model_b"] = a, b
    for m, tag in ((a, "a"), (b, "b")):
        sub = mean.loc[m]
        out[f"{tag}_clip_top1"] = out["class_name"].map(sub["clip_top1"])
        out[f"{tag}_video_top1"] = out["class_name"].map(sub["video_top1"])
    out["diff_video_top1_pp"] = (out["a_video_top1"] - out["b_video_top1"]) * 100
    out["abs"] = out["diff_video_top1_pp"].abs()
    out = out.sort_values(["abs", "class_name"], ascending=[False, True], na_position="last")
    return out.drop(columns="abs").reset_index(drop=True)


def per_class_show(diff: pd.DataFrame, primary: Primary, top: int = 15) -> pd.DataFrame:
    d = diff.head(top)
    return pd.DataFrame({
        "Class": d["class_name"], "Test videos (all splits)": d["n_videos"],
        f"{primary.a} video top-1 (%)": [fmt(v * 100, 1) for v in d["a_video_top1"]],
        f"{primary.b} video top-1 (%)": [fmt(v * 100, 1) for v in d["b_video_top1"]],
        "Difference (pp)": [f"{v:+.1f}" if is_num(v) else NA for v in d["diff_video_top1_pp"]],
    })


# ----------------------------------------------------------------------------- 6. data
def leaks(res: Results) -> dict[str, list[str]]:
    return {s: a["leaked"] for s, a in res.audit["splits"].items() if a.get("leaked")}


def leakage_banner_needed(res: Results) -> bool:
    return bool(res.audit.get("leakage_allowed")) and bool(leaks(res))


def audit_applies(res: Results) -> bool:
    """Whether the dataset's format has a leakage key (else the audit does not apply; audit.json says why)."""
    return bool(res.audit.get("leakage_key"))


def dataset_summary(res: Results) -> pd.DataFrame:
    v = res.videos
    ds = res.cfg["datasets"][res.dataset]
    kind = ("synthetic demo set (motion-only classes generated by `vidrec synth`: " +
            ", ".join(f"{k}={res.synthetic[k]}" for k in sorted(res.synthetic)) + ")"
            if res.synthetic else f"real videos under {ds['root']}")
    rows = [("Dataset", res.dataset), ("Kind", kind), ("Format", ds["format"]), ("Videos", f"{len(v):,}"),
            ("Classes", f"{v['label'].nunique():,}"),
            ("How the splits were made", res.audit.get("split_rule", NA)),
            ("Leakage key", res.audit.get("leakage_key") or f"none: {res.audit.get('leakage_note', NA)}")]
    if audit_applies(res):
        rows.append(("Leakage units", f"{v['leak_key'].nunique():,}"))
    rows += [("Splits run", ", ".join(str(s) for s in res.splits)), ("Models run", ", ".join(res.models))]
    return pd.DataFrame(rows, columns=["Item", "Value"])


def audit_table(res: Results) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    applies = audit_applies(res)
    for name, a in res.audit["splits"].items():
        leaked = a.get("leaked") or []
        number = int(name.removeprefix("split")) if name.removeprefix("split").isdigit() else None
        if not applies:
            verdict = "not audited: the format has no leakage key"
        elif not leaked:
            verdict = "OK: no leakage unit in both train and test"
        else:
            verdict = (f"LEAK: {len(leaked)} leakage units in both train and test"
                       + (" (allowed by config override)" if res.audit.get("leakage_allowed") else ""))
        rows.append({"split": name, "run_in_this_report": number in res.splits,
                     "train_videos": a["train_videos"], "test_videos": a["test_videos"],
                     "unused_videos": a.get("unused_videos", 0),
                     "train_units": a["train_units"] if applies else NA, "test_units": a["test_units"] if applies else NA,
                     "leaked_units": len(leaked), "leaked_list": " ".join(leaked), "verdict": verdict})
    data = pd.DataFrame(rows)
    show = pd.DataFrame({
        "Split": data["split"], "Run here": ["yes" if r else "no" for r in data["run_in_this_report"]],
        "Train videos": data["train_videos"], "Test videos": data["test_videos"], "Unused videos": data["unused_videos"],
        "Train units": data["train_units"], "Test units": data["test_units"],
        "Leaked units": data["leaked_units"], "Verdict": data["verdict"],
    })
    return data, show


def skipped_repaired(res: Results) -> pd.DataFrame:
    rows = []
    for st in res.shard_stats:
        for s in st.get("skipped") or []:
            rows.append({"clip_spec": st["clip_spec"], "shard": st["shard"], "video_id": s["video_id"],
                         "path": s["path"], "event": "skipped", "detail": s["reason"]})
        for r in st.get("repairs") or []:
            rows.append({"clip_spec": st["clip_spec"], "shard": st["shard"], "video_id": r["video_id"],
                         "path": r["path"], "event": "repaired", "detail": r["repair"]})
    return pd.DataFrame(rows, columns=["clip_spec", "shard", "video_id", "path", "event", "detail"])


def shards_table(res: Results) -> pd.DataFrame:
    rows = [{"clip_spec": st["clip_spec"], "shard": st["shard"], "bucket": st["bucket"], "videos": st["videos"],
             "clips": st["clips"], "skipped": len(st.get("skipped") or []), "repaired": len(st.get("repairs") or []),
             "mb": st["bytes"] / 1e6, "seconds": st["seconds"], "videos_per_s": st["videos_per_s"],
             "workers": st.get("workers"),
             "backends": ", ".join(f"{k}={v}" for k, v in sorted((st.get("backends") or {}).items())),
             "config_hash": st.get("config_hash")} for st in res.shard_stats]
    return pd.DataFrame(rows, columns=["clip_spec", "shard", "bucket", "videos", "clips", "skipped", "repaired",
                                       "mb", "seconds", "videos_per_s", "workers", "backends", "config_hash"])


def shards_summary(shards: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for spec, g in shards.groupby("clip_spec", sort=True):
        seconds = g["seconds"].sum()
        rows.append({"Clip spec": spec, "Shards": len(g), "Videos": int(g["videos"].sum()),
                     "Clips": int(g["clips"].sum()), "Skipped": int(g["skipped"].sum()),
                     "Repaired": int(g["repaired"].sum()), "Total (MB)": fmt(g["mb"].sum(), 1),
                     "Shard MB (min / mean / max)": f"{fmt(g['mb'].min(), 1)} / {fmt(g['mb'].mean(), 1)} / "
                                                    f"{fmt(g['mb'].max(), 1)}",
                     "Decode time (sum)": fmt_duration(seconds),
                     "Decode throughput (videos/s per job)": fmt((g["videos"] + g["skipped"]).sum() / seconds, 1)
                     if seconds > 0 else NA,
                     "Workers per job": ", ".join(str(w) for w in sorted(g["workers"].dropna().unique()))})
    return pd.DataFrame(rows)


def runs_table(res: Results) -> pd.DataFrame:
    """Seeds and determinism settings of every run (from train.json)."""
    r = res.runs
    cols = {"split": "Split", "model": "Model", "train_seed": "Seed", "train_device": "Device",
            "train_world_size": "GPUs / processes", "train_threads": "Threads", "train_amp": "AMP",
            "train_deterministic_algorithms": "Deterministic algorithms", "train_epochs": "Epochs",
            "train_train_clips": "Train clips",
            "train_val_clips": "Test clips"}
    present = [c for c in cols if c in r.columns]
    return r[present].rename(columns=cols).astype(str).replace({"nan": NA, "None": NA})
