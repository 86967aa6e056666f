"""Section 1, Accuracy: the thesis's table per model (means, clustered intervals, design effects) and per run."""
from __future__ import annotations

import numpy as np
import pandas as pd

from vidrec.data.views import Views
from vidrec.report.formatting import family, fmt, fmt_acc
from vidrec.report.load import Results
from vidrec.report.run_text import classifier_text, initialisation_text, protocol_text, views_of
from vidrec.report.summary import (ACC, ACC_LABELS, INTERVAL_METHOD, TOP1, add_clustered_intervals, add_intervals,
                                   with_correct_counts)


def accuracy_labels(views: list[Views]) -> list[str]:
    """The accuracy columns' labels, each naming its views: the clip level is one view; the video level
    names K clips x S crops when every row shares them, else points to the Protocol column."""
    shared = {v.text() for v in views}
    video = shared.pop() if len(shared) == 1 else "K clips x S crops: see Protocol"
    return [f"{label[:-4]} (%), {'1 view' if level == 'clip' else video}"
            for label, level in zip(ACC_LABELS, ("clip", "clip", "video", "video"))]


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
