"""Experiment clips_per_video: video-level top-1 against the number of clips averaged per video and the inference
time it costs, after Tran et al., CVPR 2018, "A Closer Look at Spatiotemporal Convolutions for Action
Recognition".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, NullFormatter

from vidrec.evaluation.accuracy import average_over_videos, topk_correct
from vidrec.report import figures
from vidrec.report.experiment_pages.common import Result, claim_rows, clip_text, measured_on_text, pct, pp, run_setting
from vidrec.report.formatting import fmt
from vidrec.report.load import ArtifactReader


def subset_indices(stored: int, k: int) -> np.ndarray:
    """k of `stored` clips, evenly spread and centred: k=1 is the centre clip, k=stored all of them."""
    return np.floor((np.arange(k) + 0.5) * stored / k).astype(np.int64)


def video_accuracy_at(scores: np.ndarray, labels: np.ndarray, video_ids: np.ndarray, clip_index: np.ndarray,
                      n_clips: np.ndarray, k: int) -> dict:
    """Video-level top-1/top-5 when averaging k evenly spread clips of each video's stored clips."""
    keep = np.zeros(len(scores), bool)
    for n in np.unique(n_clips):
        rows = n_clips == n
        keep |= rows & np.isin(clip_index, subset_indices(int(n), min(k, int(n))))
    videos, vscores, vlabels = average_over_videos(scores[keep], labels[keep], video_ids[keep])
    return {"video_top1": float(topk_correct(vscores, vlabels, 1).mean()),
            "video_top5": float(topk_correct(vscores, vlabels, 5).mean()), "n_videos": int(len(videos))}


def aggregate(cfg: dict, p: dict, results: Path, reader: ArtifactReader, claims: dict) -> Result:
    ev = reader.json(results / p["evaluation"])
    with np.load(reader._check(results / p["scores"])) as z:
        data = {k: z[k] for k in ("scores", "labels", "video_ids", "clip_index", "n_clips")}
    stored = int(data["n_clips"].min())
    counts = [k for k in p["counts"] if k <= stored]
    left_out = [k for k in p["counts"] if k > stored]
    per_clip_ms = 1000.0 / ev["infer_clips_per_s"]
    rows = []
    for k in counts:
        acc = video_accuracy_at(data["scores"], data["labels"], data["video_ids"], data["clip_index"], data["n_clips"], k)
        rows.append({"clips_per_video": k, **acc, "ms_per_video": k * per_clip_ms, "chance": ev["chance"],
                     "infer_clips_per_s": ev["infer_clips_per_s"], "clip_indices": " ".join(map(str, subset_indices(stored, k)))})
    t = pd.DataFrame(rows)
    t["time_vs_max"] = t["ms_per_video"] / t["ms_per_video"].max()
    show = pd.DataFrame({
        "Clips per video": t["clips_per_video"], "Video top-1 (%)": [pct(v) for v in t["video_top1"]],
        "Video top-5 (%)": [pct(v) for v in t["video_top5"]],
        "Inference per video (ms, model only)": [fmt(v, 1) for v in t["ms_per_video"]],
        f"Time vs {int(t['clips_per_video'].max())} clips": [f"{v:.2f}x" for v in t["time_vs_max"]],
        "Clips used (of the stored)": t["clip_indices"],
    })
    kmax = int(t["clips_per_video"].max())
    kfew = int(min(t["clips_per_video"], key=lambda k: abs(k - kmax / 5)))
    k1 = int(min(counts))
    a = lambda k, col: float(t.loc[t["clips_per_video"] == k, col].iloc[0])  # noqa: E731
    few = (f"{kfew} clip{'s' * (kfew > 1)}: {pp(a(kfew, 'video_top1') - a(kmax, 'video_top1'))} against {kmax} clips, "
           f"at {a(kfew, 'ms_per_video') / a(kmax, 'ms_per_video'):.2f}x the inference time")
    if k1 != kfew:
        few += f"; {k1} clip{'s' * (k1 > 1)}: {pp(a(k1, 'video_top1') - a(kmax, 'video_top1'))}"
    measured = {"few_vs_many": few}
    fig = _fig_clips(t)
    run = p["run"]
    text = [f"{run} ({run_setting(cfg, run)}) is evaluated "
            f"once on {clip_text(cfg, p['test_clip'])}, keeping the softmax of every clip (scores.npz); the video-level "
            f"accuracy for k clips averages k of the {stored} stored clips, evenly spread and centred (k = 1: the centre "
            "clip). Inference time per video is k clips at the clips/s measured in the same evaluation "
            f"({fmt(ev['infer_clips_per_s'], 1)} clips/s, batch {ev['infer_batch']}, {ev['device']}, "
            f"{ev['threads']} threads), decoding excluded."]
    if cfg["clips"][p["test_clip"]]["sampling"] == "uniform":
        text.append("With uniform sampling every clip spans the whole video (the clips differ only by a phase "
                    "shift within each segment), so averaging more clips adds little; the paper's clips are "
                    "consecutive frames at different places in the video (sampling: consecutive), where each added "
                    "clip sees another part of it.")
    if left_out:
        text.append(f"Left out: {', '.join(map(str, left_out))} clips per video (only {stored} are stored by "
                    f"clip spec '{p['test_clip']}').")
    return Result(t, show, claim_rows(claims, measured, measured_on_text(cfg, p)), fig, text,
                  "Video-level top-1 against the number of clips averaged per video (left) and against the "
                  "model's inference time per video (right).", notes=[f"left out: {left_out}"] if left_out else [])


def _fig_clips(t: pd.DataFrame):
    plt = figures.plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    chance = float(t["chance"].iloc[0]) * 100
    a.plot(t["clips_per_video"], t["video_top1"] * 100, "-o", label="video top-1")
    a.plot(t["clips_per_video"], t["video_top5"] * 100, "--s", mfc="none", label="video top-5")
    a.set_xscale("log")
    a.set_xticks(list(t["clips_per_video"]), [str(k) for k in t["clips_per_video"]])
    a.set_xlabel("clips averaged per video")
    b.plot(t["ms_per_video"], t["video_top1"] * 100, "-o")
    for r in t.itertuples():
        b.annotate(f"{r.clips_per_video}", (r.ms_per_video, r.video_top1 * 100), xytext=(4, -10),
                   textcoords="offset points", fontsize=8)
    b.set_xscale("log")
    b.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    b.xaxis.set_minor_formatter(NullFormatter())
    b.set_xlabel("inference time per video (ms, model only, log scale)")
    for ax in (a, b):
        ax.axhline(chance, color="grey", ls=":", lw=1, label="chance")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
    a.legend(loc="best")
    a.set_title("Accuracy against clips per video")
    b.set_title("Accuracy against inference time (labels: clips per video)")
    fig.tight_layout()
    return fig
