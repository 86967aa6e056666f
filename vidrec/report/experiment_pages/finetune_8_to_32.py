"""Experiment finetune_8_to_32: accuracy and training time of a short-clip network fine-tuned on long clips,
against the short-clip network and a long-clip network trained from scratch, after Tran et al., CVPR 2018, "A
Closer Look at Spatiotemporal Convolutions for Action Recognition".
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from vidrec.plan.experiments.base import run_file
from vidrec.report import figures
from vidrec.report.experiment_pages.common import (Result, claim_rows, clip_frames, clip_text, measured_on_text, pct,
                                                   pp, run_setting)
from vidrec.report.formatting import NA, fmt_duration, is_num
from vidrec.report.load import ArtifactReader


def aggregate(cfg: dict, p: dict, results: Path, reader: ArtifactReader, claims: dict) -> Result:
    x, roles, split = p["config"], p["roles"], p["split"]
    ev = {k: reader.json(results / path) for k, path in p["evaluations"].items()}
    tr = {r: reader.json(results / run_file(cfg, split, run, "summary")) for r, run in roles.items()}
    metrics = {r: reader.csv(results / run_file(cfg, split, run, "metrics")) for r, run in roles.items()}
    fs, fl = clip_frames(cfg, x["from_clip"]), clip_frames(cfg, x["to_clip"])
    t_short, t_ft, t_long = (tr[k].get("total_time_s") for k in ("short", "finetuned", "long"))
    e_short, e_ft, e_long = (tr[k].get("epochs") for k in ("short", "finetuned", "long"))
    rows = [
        {"method": f"trained at {fs}, tested at {fs}", "role": "short_at_short", "train_frames": fs, "test_frames": fs,
         "epochs": f"{e_short}", "train_time_s": t_short, **_acc(ev["short_at_short"])},
        {"method": f"trained at {fs}, tested at {fl} (no fine-tuning)", "role": "short_at_long", "train_frames": fs,
         "test_frames": fl, "epochs": f"{e_short}", "train_time_s": t_short, **_acc(ev["short_at_long"])},
        {"method": f"trained at {fs}, fine-tuned at {fl}, tested at {fl}", "role": "finetuned_at_long",
         "train_frames": f"{fs} -> {fl}", "test_frames": fl, "epochs": f"{e_short} + {e_ft}",
         "train_time_s": (t_short or 0) + (t_ft or 0), "finetune_time_s": t_ft, **_acc(ev["finetuned_at_long"])},
        {"method": f"trained at {fl} from scratch, tested at {fl}", "role": "long_at_long", "train_frames": fl,
         "test_frames": fl, "epochs": f"{e_long}", "train_time_s": t_long, **_acc(ev["long_at_long"])},
    ]
    t = pd.DataFrame(rows)
    t["time_share_of_scratch"] = t["train_time_s"] / t_long if is_num(t_long) and t_long else math.nan
    show = pd.DataFrame({
        "Method": t["method"], "Epochs": t["epochs"],
        "Training time (total)": [fmt_duration(v) for v in t["train_time_s"]],
        f"Share of training at {fl} from scratch": [f"{v * 100:.0f}%" if is_num(v) else NA for v in t["time_share_of_scratch"]],
        "Clip top-1 (%)": [pct(v) for v in t["clip_top1"]], "Video top-1 (%)": [pct(v) for v in t["video_top1"]],
    })
    get = lambda role, k: float(t.loc[t["role"] == role, k].iloc[0])  # noqa: E731
    measured = {
        "finetune_gain": f"video {pp(get('finetuned_at_long', 'video_top1') - get('short_at_short', 'video_top1'))}, "
                         f"clip {pp(get('finetuned_at_long', 'clip_top1') - get('short_at_short', 'clip_top1'))}",
        "finetune_vs_scratch": f"video {pp(get('finetuned_at_long', 'video_top1') - get('long_at_long', 'video_top1'))}, "
                               f"clip {pp(get('finetuned_at_long', 'clip_top1') - get('long_at_long', 'clip_top1'))} "
                               "(fine-tuned minus from scratch)",
        "time_share": (f"{fmt_duration(get('finetuned_at_long', 'train_time_s'))} ({fmt_duration(t_short)} at {fs} frames + "
                       f"{fmt_duration(t_ft)} fine-tuning) = "
                       f"{get('finetuned_at_long', 'time_share_of_scratch') * 100:.0f}% of {fmt_duration(t_long)} at {fl} from scratch"
                       if is_num(t_long) and t_long else NA),
    }
    fig = _fig_finetune(metrics, t, fs, fl)
    text = [f"The {fs}-frame run ({roles['short']}) initialises {roles['finetuned']}, which is fine-tuned on {fl}-frame "
            f"clips; {roles['long']} trains on {fl}-frame clips from scratch. Training time is the sum of the epoch times "
            "recorded in each run's train.json (validation excluded), so the fine-tuned total includes the "
            f"{fs}-frame training it starts from.",
            f"Settings: {roles['short']}: {run_setting(cfg, roles['short'])}; {roles['finetuned']}: "
            f"{run_setting(cfg, roles['finetuned'])}; {roles['long']}: {run_setting(cfg, roles['long'])}. Clips: "
            f"{clip_text(cfg, x['from_clip'])}; {clip_text(cfg, x['to_clip'])}."]
    return Result(t, show, claim_rows(claims, measured, measured_on_text(cfg, p)), fig, text,
                  f"Left: test accuracy (clip level, centre clip, from metrics.csv) against cumulative training time; the "
                  f"fine-tuned curve starts where the {fs}-frame run ends. Right: total training time per method, with "
                  "its final video-level top-1.")


def _acc(ev: dict) -> dict:
    return {k: ev[k] for k in ("clip_top1", "video_top1", "clip_top5", "video_top5", "chance", "n_videos")}


def _fig_finetune(metrics: dict, t: pd.DataFrame, fs: int, fl: int):
    plt = figures.plt
    total = max(float(np.nansum([t["train_time_s"].max()])), 1e-9)
    scale, unit = figures.time_unit(total)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11.5, 4.2), gridspec_kw={"width_ratios": [1.3, 1]})
    short, ft, long_ = metrics["short"], metrics["finetuned"], metrics["long"]
    offset = float(short["wall_time_s"].iloc[-1]) if len(short) else 0.0
    a.plot(short["wall_time_s"] / scale, short["val_acc"] * 100, "-o", ms=3, color="tab:blue",
           label=f"{fs} frames from scratch (tested at {fs})")
    a.plot((offset + ft["wall_time_s"]) / scale, ft["val_acc"] * 100, "-o", ms=3, color="tab:green",
           label=f"fine-tuned at {fl} (tested at {fl})")
    if len(ft):
        a.plot([offset / scale, (offset + ft["wall_time_s"].iloc[0]) / scale],
               [short["val_acc"].iloc[-1] * 100, ft["val_acc"].iloc[0] * 100], ":", color="tab:green")
    a.plot(long_["wall_time_s"] / scale, long_["val_acc"] * 100, "-s", ms=3, color="tab:red",
           label=f"{fl} frames from scratch (tested at {fl})")
    a.axhline(float(t["chance"].iloc[0]) * 100, color="grey", ls=":", lw=1, label="chance")
    a.set_xlabel(f"cumulative training time ({unit})")
    a.set_ylabel("test top-1 (%, clip level)")
    a.set_ylim(0, 100)
    a.set_title("Accuracy against training time")
    a.legend(loc="best")
    labels, colors = [], {"short_at_short": "tab:blue", "short_at_long": "tab:purple",
                          "finetuned_at_long": "tab:green", "long_at_long": "tab:red"}
    for i, r in enumerate(t.itertuples()):
        if r.role == "finetuned_at_long":
            pre = (r.train_time_s - (r.finetune_time_s or 0)) / scale
            b.barh(i, pre, color="tab:blue", alpha=0.5)
            b.barh(i, (r.finetune_time_s or 0) / scale, left=pre, color=colors[r.role])
        else:
            b.barh(i, (r.train_time_s or 0) / scale, color=colors[r.role], alpha=0.5 if r.role == "short_at_long" else 1)
        b.annotate(f"video top-1 {pct(r.video_top1)}%", ((r.train_time_s or 0) / scale, i), xytext=(4, 0),
                   textcoords="offset points", va="center", fontsize=8)
        labels.append(r.method.replace(", tested", ",\ntested"))
    b.set_yticks(range(len(labels)), labels, fontsize=8)
    b.invert_yaxis()
    b.set_xlim(0, total / scale * 1.45)
    b.set_xlabel(f"total training time ({unit})")
    b.set_title("Training time (light blue: the short-clip training)")
    fig.tight_layout()
    return fig
