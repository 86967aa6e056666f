"""Experiment architecture_sweep: every 18-layer network of the paper's Table 2 trained and tested alike, clip
and video top-1, parameters and GFLOPs beside the published figures of Tran et al., CVPR 2018, "A Closer Look
at Spatiotemporal Convolutions for Action Recognition".
"""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from vidrec.plan.catalogue import card
from vidrec.plan.experiments.base import run_file
from vidrec.report import figures
from vidrec.report.experiment_pages.common import (Result, claim_rows, clip_frames, clip_text, dataset_text,
                                                   measured_on_text, net_key, pct, pp, run_setting, settings)
from vidrec.report.formatting import NA, fmt, fmt_duration, is_num
from vidrec.report.load import ArtifactReader

log = logging.getLogger("vidrec.experiment")


def full_width_params(arch: str, frames: int, num_classes: int = 400) -> int | None:
    """Parameters of this implementation at the paper's width (64) and 400 classes (Kinetics)."""
    try:
        from vidrec.models import count_params, create_model

        return int(count_params(create_model(arch, num_classes=num_classes, clip_shape=(3, frames, 112, 112))))
    except Exception as err:  # a figure for the table, never a reason to fail
        log.warning("full-width parameter count of %s failed: %s", arch, err)
        return None


def aggregate(cfg: dict, p: dict, results: Path, reader: ArtifactReader, claims: dict) -> Result:
    x, split = p["config"], p["split"]
    frames = clip_frames(cfg, x["clip"])
    col = 16 if frames >= 16 else 8  # the paper's nearer column
    paper = claims["table2"]["nets"]
    rows = []
    for arch, run in p["archs"].items():
        ev = reader.json(results / run_file(cfg, split, run, "evaluation"))
        tr = reader.json(results / run_file(cfg, split, run, "summary"))
        key = net_key(arch)
        ref = paper.get(key, {})
        rows.append({"net": card(arch).display, "arch": arch, "run": run, "params": ev["params"],
                     "params_full_width": full_width_params(arch, frames),
                     "params_paper": ref.get("params_m", math.nan) * 1e6 if ref else math.nan,
                     "clip_top1": ev["clip_top1"], "video_top1": ev["video_top1"], "video_top5": ev["video_top5"],
                     "chance": ev["chance"], "gflops_per_clip": ev["gflops_per_clip"],
                     "infer_clips_per_s": ev["infer_clips_per_s"], "train_time_total_s": tr.get("total_time_s"),
                     "epochs": tr.get("epochs"),
                     "paper_clip_top1": ref.get(f"clip{col}", math.nan) / 100 if ref else math.nan,
                     "paper_video_top1": ref.get(f"video{col}", math.nan) / 100 if ref else math.nan,
                     "paper_frames": col})
    t = pd.DataFrame(rows)
    rank = [card(a).table_rank for a in t["arch"]]  # the paper's Table 2 order; networks outside it last
    t = t.assign(_o=[99 if r is None else r for r in rank]).sort_values(["_o", "arch"]).drop(columns="_o")
    t = t.reset_index(drop=True)
    width = settings(cfg, t["run"].iloc[0]).model_args.get("base_width") if len(t) else None
    show = pd.DataFrame({
        "Net": t["net"],
        f"Params here (base_width {width})": [fmt(v / 1e6, 3) + "M" for v in t["params"]],
        "Params, this implementation at full width (400 classes)": [fmt(v / 1e6, 1) + "M" if is_num(v) else NA
                                                                   for v in t["params_full_width"]],
        "Params, paper (claim)": [fmt(v / 1e6, 1) + "M" if is_num(v) else NA for v in t["params_paper"]],
        "Clip top-1 here (%)": [pct(v) for v in t["clip_top1"]],
        "Video top-1 here (%)": [pct(v) for v in t["video_top1"]],
        f"Clip@1, paper, Kinetics {col} frames (claim, %)": [pct(v) for v in t["paper_clip_top1"]],
        f"Video@1, paper, Kinetics {col} frames (claim, %)": [pct(v) for v in t["paper_video_top1"]],
        "GFLOPs / clip here": [fmt(v, 3) for v in t["gflops_per_clip"]],
        "Training here": [f"{fmt(e, 0)} epochs, {fmt_duration(s)}" for e, s in zip(t["epochs"], t["train_time_total_s"])],
    })
    measured = {}
    if len(t):
        best = t.loc[t["video_top1"].idxmax()]
        r21 = t[t["arch"].map(net_key) == "r2plus1d"]
        rank = (f"; R(2+1)D ranks {int((t['video_top1'] > r21['video_top1'].iloc[0]).sum()) + 1} of {len(t)}"
                if len(r21) else "; no R(2+1)D run")
        measured["best_net"] = f"best here: {best['net']} ({pct(best['video_top1'])}% video top-1){rank}"
        two_d = t["arch"].map(net_key).isin(["r2d", "fr2d"])
        if two_d.any() and (~two_d).any():
            measured["gap_3d_2d"] = (f"mean video top-1 of the 3D/mixed/(2+1)D nets minus the 2D nets: "
                                     f"{pp(t.loc[~two_d, 'video_top1'].mean() - t.loc[two_d, 'video_top1'].mean())}; "
                                     f"{int((t.loc[~two_d, 'video_top1'] > t.loc[two_d, 'video_top1'].max()).sum())} of "
                                     f"{int((~two_d).sum())} above the best 2D net")
    fig = _fig_sweep(t, col, cfg)
    text = [f"Every network at 18 layers, trained and tested alike on {clip_text(cfg, x['clip'])}: "
            f"{run_setting(cfg, t['run'].iloc[0]) if len(t) else ''} (architecture varies). Clip level: the centre "
            "clip; video level: softmax averaged over the stored clips. Parameters here are at the configured width; "
            "the full-width column rebuilds each network at 64 stem channels with 400 classes, the setting of the "
            "paper's counts.",
            f"The paper's columns are its Table 2 ({claims['table2']['setting'].strip()}), {col}-frame inputs: claims "
            f"measured on Kinetics-400, not on {dataset_text(cfg)}."]
    return Result(t, show, claim_rows(claims, measured, measured_on_text(cfg, p)), fig, text,
                  f"Left: this run's clip and video top-1 per network ({dataset_text(cfg)}). Right: the paper's Table 2 "
                  f"({col}-frame column, Kinetics-400, claims). Same network order as the paper.",
                  sources=[claims["table2"]["source"]])


def _fig_sweep(t: pd.DataFrame, col: int, cfg: dict):
    plt = figures.plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.4), sharey=False)
    x = np.arange(len(t))
    w = 0.4
    a.bar(x - w / 2, t["clip_top1"] * 100, w, label="clip top-1", color="tab:blue", alpha=0.6)
    a.bar(x + w / 2, t["video_top1"] * 100, w, label="video top-1", color="tab:blue")
    if len(t):
        a.axhline(float(t["chance"].iloc[0]) * 100, color="grey", ls=":", lw=1, label="chance")
    a.set_title(f"Measured here: {dataset_text(cfg)}")
    a.set_ylim(0, 100)
    b.bar(x - w / 2, t["paper_clip_top1"] * 100, w, label="clip@1 (claim)", color="tab:orange", alpha=0.6)
    b.bar(x + w / 2, t["paper_video_top1"] * 100, w, label="video@1 (claim)", color="tab:orange")
    b.set_title(f"Published (Tran et al. 2018, Table 2): Kinetics-400, {col} frames")
    b.set_ylim(0, 80)
    for ax in (a, b):
        ax.set_xticks(x, list(t["net"]), rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("top-1 accuracy (%)")
        ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
