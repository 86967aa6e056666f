"""The report's tables, from the loaded results: numeric frames (written as CSV) and their display form.

Every function returns plain DataFrames; the display versions hold formatted strings so the HTML
never shows NaN. Every accuracy carries its 95% Wilson interval over the test videos it was measured
on, and models tested on the same videos are compared pair by pair with the exact McNemar test
(vidrec/evaluation/stats.py), so the report says which differences the test sets can resolve.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from vidrec.catalogue import CARDS, THESIS_PAIR, TORCHVISION_SCHEME
from vidrec.config import clip_size_text
from vidrec.evaluation.stats import discordant, mcnemar_exact, wilson_interval
from vidrec.layout import CLAIMS_FILE
from vidrec.report.load import Results
from vidrec.runs import RunSettings
from vidrec.training.schedule import batch_plan, schedule_text

ACC = ["clip_top1", "clip_top5", "video_top1", "video_top5"]
ACC_LABELS = ["Clip top-1 (%)", "Clip top-5 (%)", "Video top-1 (%)", "Video top-5 (%)"]
NA = "n/a"
ALPHA = 0.05  # significance level of the paired tests
# paired comparison: protocol -> predictions.csv column (is the video's top-1 right?)
LEVELS = {"clip": "correct_clip", "video": "correct_video"}
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

    [lo, hi]: the 95% Wilson interval over the test videos; sd: the spread of the N runs (splits),
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


def compact_ranges(numbers) -> str:
    """[1, 2, 3, 7, 9, 10] -> '1-3, 7, 9-10'."""
    nums = sorted(int(n) for n in numbers)
    if not nums:
        return "none"
    parts, start, prev = [], nums[0], nums[0]
    for n in nums[1:] + [None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        parts.append(f"{start}-{prev}" if prev > start else f"{start}")
        if n is not None:
            start = prev = n
    return ", ".join(parts)


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
    out["n_splits"] = g["split"].nunique()
    out["n_seeds"] = g["seed"].nunique()
    out["n_runs"] = g.size()
    out["seeds"] = g["seed"].agg(lambda s: ", ".join(str(v) for v in sorted(s.unique())))
    out["splits"] = g["split"].agg(lambda s: ", ".join(str(v) for v in sorted(s.unique())))
    for k in ("arch", "protocol", "clip_spec", "device"):
        out[k] = g[k].first()
    out = out.reindex([m for m in res.models if m in out.index])
    out["what_if_clips_per_video"] = what_if_clips
    out["infer_videos_per_s_what_if"] = out["infer_clips_per_s"] / what_if_clips
    conv, p3d = thesis_pair(out)
    out["practical_time_ratio"] = np.nan
    if conv and p3d:
        # time per video: ConvLSTM-C2D at one clip against P3D at `what_if_clips` clips, in %
        t_conv = 1 / out.loc[conv, "infer_videos_per_s_one_clip"]
        t_p3d = 1 / out.loc[p3d, "infer_videos_per_s_what_if"]
        out.loc[conv, "practical_time_ratio"] = t_conv / t_p3d
    return out


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


def missing_thesis_models(conv: str | None, p3d: str | None) -> str:
    """'p3d* model' (or both): what a thesis-pair comparison lacks, for its explanation."""
    return " and no ".join(f"{p}* model" for p, m in zip(THESIS_PAIR, (conv, p3d)) if not m)


def model_args_text(run: RunSettings) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(run.model_args.items()) if k != "dropout")


def initialisation_text(run: RunSettings) -> str:
    """The Pre-trained column: how a run's weights started (RunSettings.initialisation), yes or no first."""
    if run.init_from and run.init_from.startswith(TORCHVISION_SCHEME):
        return f"yes: torchvision's {run.init_from[len(TORCHVISION_SCHEME):]} (classifier replaced)"
    if run.initialisation == "from scratch":
        return "no (from scratch)"
    return run.initialisation if run.init_from_run else f"yes ({run.initialisation})"


def protocol_text(run: RunSettings) -> str:
    p, c = run.protocol, run.clip
    opt = p["optimizer"]
    sched = (p.get("scheduler") or {}).get("name") or "no schedule"
    aug = run.augment
    augment = ", ".join([f"random {aug['crop']} crop (centre in test)"] * bool(aug.get("crop"))
                        + ["horizontal flips"] * bool(aug.get("hflip"))) or "no augmentation"
    # the global batch as it is made, and warm-up, accumulation, scaling rule, Nesterov (vidrec/training/schedule.py)
    batch = batch_plan(p, max(1, run.train["gpus"]), run.train.get("nodes", 1)).text()
    schedule = "".join(f", {t}" for t in schedule_text(p))
    text = (f"{run.protocol_name}: {p['epochs']} epochs{f' ({run.note})' if run.note else ''}, {opt['name']} "
            f"lr {opt['lr']:g}, {sched}, {batch}{schedule}, training clips: {p['train_clips']}, {augment}; "
            f"clips {run.clip_name} ({c['frames']} frames, {clip_size_text(c)}, {c['sampling']}, "
            f"{c['clips_per_video']} per video)")
    if c["clips_per_video"] == 1:
        text += "; one clip per video, so video level equals clip level"
    return "; ".join([text, *run.adjustments])


# ----------------------------------------------------------------------------- 1. accuracy
def accuracy_table(res: Results, summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for m, r in summary.iterrows():
        row = {"method": f"{family(r['arch'])} ({m})", "model": m, "arch": r["arch"],
               "classifier": "linear (cross-entropy)",
               "pretrained": initialisation_text(res.settings[m]),
               "protocol": protocol_text(res.settings[m]), "splits": r["splits"], "n_splits": int(r["n_splits"]),
               "seeds": r["seeds"], "n_seeds": int(r["n_seeds"]), "n_runs": int(r["n_runs"])}
        for k in ACC:
            row[f"{k}_mean"], row[f"{k}_std"] = r[k], r[f"{k}_std"] if r["n_runs"] > 1 else np.nan
            row[f"{k}_lo"], row[f"{k}_hi"], row[f"{k}_correct"] = r[f"{k}_lo"], r[f"{k}_hi"], r[f"{k}_correct"]
        row["n_videos"] = r["test_videos"]
        row["chance"] = r["chance"]
        rows.append(row)
    data = pd.DataFrame(rows)
    show = pd.DataFrame({
        "Method": data["method"], "Classifier": data["classifier"], "Pre-trained": data["pretrained"],
        "Protocol": data["protocol"], "Splits": data["splits"], "Seeds": data["seeds"],
        "Test videos": [fmt(v, 0) for v in data["n_videos"]],
        **{label: [fmt_acc(r[f"{k}_mean"], r[f"{k}_lo"], r[f"{k}_hi"], r[f"{k}_std"], r["n_runs"])
                   for _, r in data.iterrows()] for k, label in zip(ACC, ACC_LABELS)},
        "Chance (%)": [fmt(c * 100) for c in data["chance"]],
    })
    return data, show


def split_accuracy_table(res: Results, summary: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every run (model x split x seed) with each accuracy's 95% Wilson interval over that split's test videos."""
    runs = with_correct_counts(res.runs)
    runs = runs.assign(order=runs["model"].map({m: i for i, m in enumerate(summary.index)}))
    runs = runs.sort_values(["order", "split", "seed"], kind="stable")
    data = add_intervals(runs[["split", "seed", "model", "arch", "n_videos"] + ACC + [f"{k}_correct" for k in ACC]],
                         "n_videos").reset_index(drop=True)
    show = pd.DataFrame({
        "Method": [f"{family(a)} ({m})" for m, a in zip(data["model"], data["arch"])], "Split": data["split"],
        "Seed": data["seed"],
        "Test videos": [fmt(v, 0) for v in data["n_videos"]],
        **{label: [fmt_acc(r[k], r[f"{k}_lo"], r[f"{k}_hi"]) for _, r in data.iterrows()]
           for k, label in zip(ACC, ACC_LABELS)},
    })
    return data, show


# ----------------------------------------------------------------------------- 1b. paired comparison
def model_pairs(summary: pd.DataFrame) -> list[tuple[str, str]]:
    """Every pair of models once, in configuration order, the thesis pair first (ConvLSTM-C2D as A)."""
    models = list(summary.index)
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    conv, p3d = thesis_pair(summary)
    if conv and p3d:
        pairs = [(conv, p3d)] + [p for p in pairs if set(p) != {conv, p3d}]
    return pairs


def _paired_counts(both: pd.DataFrame) -> dict:
    """Counts and exact McNemar p per protocol, from the A/B outcomes of the same videos."""
    row = {"n_videos": len(both)}
    for level, col in LEVELS.items():
        a, b = both[f"{col}_a"].astype(bool), both[f"{col}_b"].astype(bool)
        a_only, b_only = discordant(a, b)
        row.update({f"{level}_a_correct": int(a.sum()), f"{level}_b_correct": int(b.sum()),
                    f"{level}_a_only": a_only, f"{level}_b_only": b_only,
                    f"{level}_p_mcnemar": mcnemar_exact(a_only, b_only)})
    return row


def paired_comparison(res: Results, summary: pd.DataFrame) -> pd.DataFrame:
    """Per pair of models, split and seed: the videos each gets right and the other misses, exact McNemar test.

    Runs are paired seed by seed (A's seed-s run against B's seed-s run, for the seeds both have).
    The pooled row of a seed adds the discordant counts over the splits run. Each video is a test
    video in exactly one official split, so the splits' test sets are disjoint, every discordant video
    counts once, and the pooled count is again Binomial(b + c, 1/2) under "no difference": an exact
    test. Should the splits' test sets overlap, the pooled p-value is NaN instead.
    """
    pred = res.predictions
    by_run = {key: g[["video_id", *LEVELS.values()]] for key, g in pred.groupby(["split", "model", "seed"], sort=False)}
    seeds_of = pred.groupby("model")["seed"].agg(lambda s: sorted(set(s))).to_dict()
    thesis = thesis_pair(summary)
    rows = []
    for a, b in model_pairs(summary):
        for seed in [s for s in seeds_of.get(a, []) if s in seeds_of.get(b, [])]:
            merged = []
            for split in res.splits:
                if (split, a, seed) not in by_run or (split, b, seed) not in by_run:
                    continue
                both = by_run[(split, a, seed)].merge(by_run[(split, b, seed)], on="video_id", suffixes=("_a", "_b"))
                merged.append(both)
                rows.append({"split": split, "seed": seed, "model_a": a, "model_b": b, **_paired_counts(both)})
            if not merged:
                continue
            every = pd.concat(merged, ignore_index=True)
            pooled = {"split": POOLED, "seed": seed, "model_a": a, "model_b": b, **_paired_counts(every)}
            if not every["video_id"].is_unique:
                pooled.update({f"{level}_p_mcnemar": np.nan for level in LEVELS})
            rows.append(pooled)
    columns = ["split", "seed", "model_a", "model_b", "n_videos"] + [
        f"{level}_{x}" for level in LEVELS for x in ("a_correct", "b_correct", "a_only", "b_only", "p_mcnemar")]
    data = pd.DataFrame(rows, columns=columns)
    data.insert(4, "thesis_pair", [(a, b) == thesis for a, b in zip(data["model_a"], data["model_b"])])
    for level in LEVELS:
        data[f"{level}_significant"] = [p < ALPHA if is_num(p) else np.nan for p in data[f"{level}_p_mcnemar"]]
    return data


def paired_show(paired: pd.DataFrame, pooled: bool = True) -> pd.DataFrame:
    """Display form: the pooled rows (one per pair), or every split's rows."""
    d = paired[(paired["split"] == POOLED) == pooled]
    out = {"Model A": d["model_a"], "Model B": d["model_b"]}
    if not pooled:
        out["Split"] = d["split"]
    if paired["seed"].nunique() > 1:
        out["Seed"] = d["seed"]
    out["Test videos (paired)"] = d["n_videos"]
    for level in LEVELS:
        name = level.capitalize()
        out[f"{name} top-1 A / B (%)"] = [f"{fmt(a / n * 100)} / {fmt(b / n * 100)}" if n else NA for a, b, n in
                                         zip(d[f"{level}_a_correct"], d[f"{level}_b_correct"], d["n_videos"])]
        out[f"{name}: A only / B only"] = [f"{x} / {y}" for x, y in zip(d[f"{level}_a_only"], d[f"{level}_b_only"])]
        out[f"{name}: exact McNemar test"] = [
            f"{fmt_p(p)}, {verdict(p)}" if is_num(p) else "n/a (the splits' test sets overlap)"
            for p in d[f"{level}_p_mcnemar"]]
    return pd.DataFrame(out)


def significance_text(r: pd.Series, level: str) -> str:
    """'not significant at 5% (exact McNemar p = 0.62, 3 vs 5 discordant videos)' for one row of the paired table."""
    p, a_only, b_only = r[f"{level}_p_mcnemar"], int(r[f"{level}_a_only"]), int(r[f"{level}_b_only"])
    if not is_num(p):
        return f"not tested: the splits' test sets overlap ({a_only} vs {b_only} discordant videos)"
    return f"{verdict(p)} (exact McNemar {fmt_p(p)}, {a_only} vs {b_only} discordant videos)"


def thesis_gap_text(paired: pd.DataFrame, summary: pd.DataFrame) -> str:
    """Whether the measured ConvLSTM-C2D vs P3D gap is real, from the pooled exact McNemar test."""
    conv, p3d = thesis_pair(summary)
    if not (conv and p3d):
        return ("Whether ConvLSTM-C2D and P3D differ needs both thesis networks; this run has no "
                f"{missing_thesis_models(conv, p3d)}.")
    rows = paired[(paired["split"] == POOLED) & paired["thesis_pair"]]
    n = int(rows["n_videos"].iloc[0]) if len(rows) else 0
    if not n:
        return f"{conv} and {p3d} share no test video, so they cannot be compared video by video."
    splits = sorted(set(paired.loc[(paired["split"] != POOLED) & paired["thesis_pair"], "split"]))
    where = f"split{'s' if len(splits) > 1 else ''} {', '.join(map(str, splits))}"

    def level_text(r: pd.Series, level: str) -> str:
        acc = f"{r[f'{level}_a_correct'] / n * 100:.2f}% vs {r[f'{level}_b_correct'] / n * 100:.2f}%"
        return f"{acc}, {significance_text(r, level)}"

    per_seed = [f"{'seed ' + str(r['seed']) + ': ' if len(rows) > 1 else ''}clip level (the thesis's protocol) "
                f"{level_text(r, 'clip')}; video level {level_text(r, 'video')}" for _, r in rows.iterrows()]
    seeds = f", each seed's runs paired with each other's, {len(rows)} seeds" if len(rows) > 1 else ""
    return (f"The measured ConvLSTM-C2D vs P3D gap ({conv} vs {p3d} on the same {n} test videos of {where}"
            f"{', discordant videos pooled over the splits' if len(splits) > 1 else ''}{seeds}): "
            + ". ".join(per_seed) + ".")


# ----------------------------------------------------------------------------- 2. claims
def _measured(summary: pd.DataFrame, model: str, metric: str, unit: str) -> tuple[float, str]:
    r = summary.loc[model]
    value = r.get(metric, np.nan)
    if metric in ACC:
        return value * 100, fmt_acc(value, r[f"{metric}_lo"], r[f"{metric}_hi"], r[f"{metric}_std"],
                                    int(r["n_runs"]), unit=" %")
    if metric == "practical_time_ratio":
        return value * 100, (f"{value * 100:.1f} %" if is_num(value) else
                             "n/a (needs a ConvLSTM-C2D and a P3D model)")
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


def claims_table(res: Results, summary: pd.DataFrame, claims: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    demo = " (synthetic demo set)" if res.synthetic else ""
    rows = []
    for c in claims["claims"]:
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
    data = pd.DataFrame(rows)
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
        "gflops_per_clip": s["gflops_per_clip"].values, "epochs": s["epochs"].values,
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
        "GFLOPs / clip": [fmt(v) for v in data["gflops_per_clip"]],
        "Epochs": [fmt(v, 0) for v in data["epochs"]],
        "Train / epoch": [fmt_duration(v) for v in data["train_time_per_epoch_s"]],
        "Train total": [fmt_duration(v) for v in data["train_time_total_s"]],
        "Inference (clips/s)": [fmt(v, 1) for v in data["infer_clips_per_s"]],
        "Videos/s, thesis (1 clip)": [fmt(v, 1) for v in data["videos_per_s_thesis_1clip"]],
        "Videos/s, video level (K clips)": [f"{fmt(v, 1)} (K={fmt(c, 0)})" for v, c in
                                            zip(data["videos_per_s_video_level"], data["clips_per_video"])],
        f"Videos/s at {k} clips (what-if)": [fmt(v, 2) for v in data["videos_per_s_what_if"]],
        "Videos/s, end-to-end (decode incl., 1 clip)": [fmt(v, 1) for v in data["videos_per_s_end_to_end"]],
        "Peak memory (MB)": [fmt(v, 0) for v in data["peak_memory_mb"]],
        "Device": [f"{d}, {fmt(t, 0)} threads" for d, t in zip(data["device"], data["threads"])],
    })
    return data, show


def capacity_text(summary: pd.DataFrame) -> list[str]:
    """The thesis's 'practical capacity' argument, recomputed from the measured speeds."""
    conv, p3d = thesis_pair(summary)
    if not (conv and p3d):
        return ["The practical-capacity comparison needs both thesis networks; this run has no "
                f"{missing_thesis_models(conv, p3d)}."]
    c, p = summary.loc[conv], summary.loc[p3d]
    k = int(p["what_if_clips_per_video"])
    one = c["infer_videos_per_s_one_clip"] / p["infer_videos_per_s_one_clip"]
    return [
        f"{conv} at one clip per video (the thesis protocol): {fmt(c['infer_videos_per_s_one_clip'], 1)} videos/s. "
        f"{p3d}: {fmt(p['infer_clips_per_s'], 1)} clips/s, so {fmt(p['infer_videos_per_s_one_clip'], 1)} videos/s "
        f"at one clip per video and {fmt(p['infer_videos_per_s_what_if'], 2)} videos/s at the {k} clips per "
        "video the thesis assumes for P3D.",
        f"Time per video, {conv} (1 clip) as a share of {p3d} ({k} clips): "
        f"{fmt(c['practical_time_ratio'] * 100, 1)}% (the thesis claims 24%). At one clip per video each, the "
        f"protocol under which both thesis accuracies were reported, {conv} processes "
        f"{fmt(one, 2)}x as many videos per second as {p3d}.",
    ]


# ----------------------------------------------------------------------------- 5. per class
def per_class_diff(res: Results, summary: pd.DataFrame) -> tuple[pd.DataFrame, str | None, str | None]:
    """Per class: both thesis networks' accuracies (mean over splits), sorted by |difference|."""
    conv, p3d = thesis_pair(summary)
    if not (conv and p3d):
        return pd.DataFrame(columns=["class_name", "label", "n_videos", "diff_video_top1_pp"]), conv, p3d
    pc = res.per_class
    mean = pc.groupby(["model", "class_name"], sort=False)[["clip_top1", "video_top1"]].mean()
    n = pc[pc["model"] == conv].groupby("class_name")["n_videos"].sum()
    labels = pc.drop_duplicates("class_name").set_index("class_name")["label"]
    out = pd.DataFrame({"class_name": labels.index, "label": labels.values})
    out["n_videos"] = out["class_name"].map(n).fillna(0).astype(int)
    for m, tag in ((conv, "convlstm"), (p3d, "p3d")):
        sub = mean.loc[m]
        out[f"{tag}_clip_top1"] = out["class_name"].map(sub["clip_top1"])
        out[f"{tag}_video_top1"] = out["class_name"].map(sub["video_top1"])
    out["diff_video_top1_pp"] = (out["convlstm_video_top1"] - out["p3d_video_top1"]) * 100
    out["abs"] = out["diff_video_top1_pp"].abs()
    out = out.sort_values(["abs", "class_name"], ascending=[False, True], na_position="last")
    return out.drop(columns="abs").reset_index(drop=True), conv, p3d


def per_class_show(diff: pd.DataFrame, conv: str, p3d: str, top: int = 15) -> pd.DataFrame:
    d = diff.head(top)
    return pd.DataFrame({
        "Class": d["class_name"], "Test videos (all splits)": d["n_videos"],
        f"{conv} video top-1 (%)": [fmt(v * 100, 1) for v in d["convlstm_video_top1"]],
        f"{p3d} video top-1 (%)": [fmt(v * 100, 1) for v in d["p3d_video_top1"]],
        "Difference (pp)": [f"{v:+.1f}" if is_num(v) else NA for v in d["diff_video_top1_pp"]],
    })


# ----------------------------------------------------------------------------- 6. data
def leaks(res: Results) -> dict[str, list[str]]:
    return {s: a["leaked_groups"] for s, a in res.audit["splits"].items() if a.get("leaked_groups")}


def leakage_banner_needed(res: Results) -> bool:
    return bool(res.audit.get("leakage_allowed")) and bool(leaks(res))


def dataset_summary(res: Results) -> pd.DataFrame:
    v = res.videos
    kind = ("synthetic demo set (motion-only classes generated by `vidrec synth`: " +
            ", ".join(f"{k}={res.synthetic[k]}" for k in sorted(res.synthetic)) + ")"
            if res.synthetic else f"real videos under {res.cfg['datasets'][res.dataset]['root']}")
    rows = [("Dataset", res.dataset), ("Kind", kind), ("Videos", f"{len(v):,}"),
            ("Classes", f"{v['label'].nunique():,}"), ("Groups", f"{v['group'].nunique()} ({compact_ranges(res.groups)})"),
            ("Class x group units", f"{len(v.drop_duplicates(['class_name', 'group'])):,}"),
            ("Splits run", ", ".join(str(s) for s in res.splits)),
            ("Models run", ", ".join(res.models))]
    return pd.DataFrame(rows, columns=["Item", "Value"])


def audit_table(res: Results) -> tuple[pd.DataFrame, pd.DataFrame]:
    rows = []
    for name, a in res.audit["splits"].items():
        leaked = a.get("leaked_groups") or []
        number = int(name.removeprefix("split")) if name.removeprefix("split").isdigit() else None
        if not leaked:
            verdict = "OK: no class/group in both train and test"
        else:
            verdict = (f"LEAK: {len(leaked)} class/group units in both train and test"
                       + (" (allowed by config override)" if res.audit.get("leakage_allowed") else ""))
        rows.append({"split": name, "run_in_this_report": number in res.splits,
                     "train_videos": a["train_videos"], "test_videos": a["test_videos"],
                     "train_groups": compact_ranges(a["train_groups"]), "test_groups": compact_ranges(a["test_groups"]),
                     "leaked_groups": len(leaked), "leaked_list": " ".join(leaked), "verdict": verdict})
    data = pd.DataFrame(rows)
    show = pd.DataFrame({
        "Split": data["split"], "Run here": ["yes" if r else "no" for r in data["run_in_this_report"]],
        "Train videos": data["train_videos"], "Test videos": data["test_videos"],
        "Train groups": data["train_groups"], "Test groups": data["test_groups"],
        "Leaked units": data["leaked_groups"], "Verdict": data["verdict"],
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
    rows = [{"clip_spec": st["clip_spec"], "shard": st["shard"], "group": st["group"], "videos": st["videos"],
             "clips": st["clips"], "skipped": len(st.get("skipped") or []), "repaired": len(st.get("repairs") or []),
             "mb": st["bytes"] / 1e6, "seconds": st["seconds"], "videos_per_s": st["videos_per_s"],
             "workers": st.get("workers"),
             "backends": ", ".join(f"{k}={v}" for k, v in sorted((st.get("backends") or {}).items())),
             "config_hash": st.get("config_hash")} for st in res.shard_stats]
    return pd.DataFrame(rows, columns=["clip_spec", "shard", "group", "videos", "clips", "skipped", "repaired",
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
