"""Experiment clip_length_transfer: top-1 of a network trained at one clip length and tested at every configured
length (clip and video level), after Tran et al., CVPR 2018, "A Closer Look at Spatiotemporal Convolutions for
Action Recognition".
"""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from vidrec.plan.experiments.base import run_file
from vidrec.report import figures
from vidrec.report.experiment_pages.common import (Result, claim_rows, clip_frames, clip_text, measured_on_text, pct,
                                                   pp, run_setting)
from vidrec.report.formatting import fmt, fmt_duration
from vidrec.report.load import ArtifactReader


def aggregate(cfg: dict, p: dict, results: Path, reader: ArtifactReader, claims: dict) -> Result:
    rows = []
    train_info = {}
    for cell in p["cells"]:
        ev = reader.json(results / cell["evaluation"])
        if cell["run"] not in train_info:
            train_info[cell["run"]] = reader.json(results / run_file(cfg, p["split"], cell["run"], "summary"))
        tr = train_info[cell["run"]]
        rows.append({"run": cell["run"], "train_clip": cell["train_clip"], "train_frames": clip_frames(cfg, cell["train_clip"]),
                     "test_clip": cell["test_clip"], "test_frames": clip_frames(cfg, cell["test_clip"]),
                     "clip_top1": ev["clip_top1"], "video_top1": ev["video_top1"], "clip_top5": ev["clip_top5"],
                     "video_top5": ev["video_top5"], "n_videos": ev["n_videos"], "chance": ev["chance"],
                     "clips_per_video": ev["clips_per_video"], "infer_clips_per_s": ev["infer_clips_per_s"],
                     "train_epochs": tr.get("epochs"), "train_time_total_s": tr.get("total_time_s"),
                     "evaluation": cell["evaluation"]})
    t = pd.DataFrame(rows)
    t["same_length"] = t["train_frames"] == t["test_frames"]
    show = pd.DataFrame({
        "Trained on": [f"{f} frames ({c})" for f, c in zip(t["train_frames"], t["train_clip"])],
        "Tested on": [f"{f} frames ({c})" + (" = training length" if s else "")
                      for f, c, s in zip(t["test_frames"], t["test_clip"], t["same_length"])],
        "Clip top-1 (%)": [pct(v) for v in t["clip_top1"]],
        "Video top-1 (%)": [pct(v) for v in t["video_top1"]],
        "Video top-5 (%)": [pct(v) for v in t["video_top5"]],
        "Training": [f"{fmt(e, 0)} epochs, {fmt_duration(s)}" for e, s in zip(t["train_epochs"], t["train_time_total_s"])],
    })
    # measurements beside the claims
    short, long_ = t["train_frames"].min(), t["train_frames"].max()
    test_long = t["test_frames"].max()

    def cell(tf, sf, k):
        sel = t[(t["train_frames"] == tf) & (t["test_frames"] == sf)]
        return float(sel[k].iloc[0]) if len(sel) else math.nan

    measured = {}
    if long_ > short:
        measured["same_length_gain"] = (
            f"{long_}/{long_} minus {short}/{short} (train/test frames): clip {pp(cell(long_, long_, 'clip_top1') - cell(short, short, 'clip_top1'))}, "
            f"video {pp(cell(long_, long_, 'video_top1') - cell(short, short, 'video_top1'))}")
    if test_long > short:
        measured["short_to_long_drop"] = (
            f"trained at {short}, tested at {test_long} minus tested at {short}: clip "
            f"{pp(cell(short, test_long, 'clip_top1') - cell(short, short, 'clip_top1'))}, video "
            f"{pp(cell(short, test_long, 'video_top1') - cell(short, short, 'video_top1'))}")
    fig = _fig_clip_length(t)
    runs = list(dict.fromkeys(t["run"]))
    text = [f"A network trained on clips of one length and tested on clips of every configured length "
            f"(clip level: the centre clip; video level: softmax averaged over the test clip spec's stored clips). "
            "Runs: " + "; ".join(f"{r}: {run_setting(cfg, r)}" for r in runs) + ".",
            "Test clip specs: " + "; ".join(clip_text(cfg, c) for c in dict.fromkeys(t["test_clip"])) + "."]
    if any(cfg["clips"][c]["sampling"] == "uniform" for c in t["test_clip"]):
        text.append("Uniform sampling spreads every clip over the whole video, so here the clip length sets the "
                    "temporal resolution (the motion between sampled frames), not the temporal extent: a model "
                    "tested at more frames than it was trained on sees proportionally smaller motion per step. The "
                    "paper's clips are consecutive frames at the native rate (longer clip = longer extent, same "
                    "motion per step); clip specs with sampling: consecutive reproduce that setting.")
    return Result(t, show, claim_rows(claims, measured, measured_on_text(cfg, p)), fig, text,
                  "Top-1 accuracy against the test clip length, one line per training length (filled: video "
                  "level, open: clip level); the diagonal cells are the usual same-length evaluation.")


def _fig_clip_length(t: pd.DataFrame):
    plt = figures.plt
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    colors = figures.colors([str(f) for f in sorted(t["train_frames"].unique())])
    for tf, d in t.groupby("train_frames"):
        d = d.sort_values("test_frames")
        c = colors[str(tf)]
        ax.plot(d["test_frames"], d["video_top1"] * 100, "-o", color=c, label=f"trained on {tf} frames, video level")
        ax.plot(d["test_frames"], d["clip_top1"] * 100, "--^", color=c, mfc="none", label=f"trained on {tf} frames, clip level")
        same = d[d["same_length"]]
        ax.plot(same["test_frames"], same["video_top1"] * 100, "s", ms=12, mfc="none", color=c)
    ax.axhline(float(t["chance"].iloc[0]) * 100, color="grey", ls=":", lw=1, label="chance")
    ticks = sorted(t["test_frames"].unique())
    ax.set_xscale("log", base=2)
    ax.set_xticks(ticks, [str(v) for v in ticks])
    ax.set_xlabel("test clip length (frames)")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Train at one clip length, test at others (squares: same length)")
    ax.legend(loc="best")
    fig.tight_layout()
    return fig
