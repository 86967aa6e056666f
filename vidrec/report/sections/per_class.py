"""Section 5, Per-class view: the compared pair's accuracy per class, largest differences first."""
from __future__ import annotations

import pandas as pd

from vidrec.report.formatting import NA, fmt, is_num
from vidrec.report.load import Results
from vidrec.report.thesis import Primary


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
