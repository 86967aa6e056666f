"""`vidrec experiment <name>`: aggregate one experiment's runs into a table, a figure, claims and a page.

Reads exactly the files `spec.plan(cfg, name)["inputs"]` names (the rule's inputs) and writes
`spec.OUTPUTS` under out_dir: table.csv (numbers), claims.csv (the paper's figures beside ours),
figure.png, summary.json (the display tables and text, which the comparison report renders when
experiments.in_report is true) and index.html (a self-contained page, like the report's).
"""
from __future__ import annotations

import logging
import math
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, NullFormatter

from vidrec.catalogue import card
from vidrec.config import dataset_config, run_config
from vidrec import experiment_runs as spec
from vidrec.io import atomic_path, write_csv, write_json, write_text
from vidrec.report import figures, render
from vidrec.report.load import ArtifactReader
from vidrec.report.tables import NA, fmt, fmt_duration, is_num, load_claims

log = logging.getLogger("vidrec.experiment")

CLAIMS_PATH = Path(__file__).with_name("claims.yaml")  # Tran et al.'s published figures


def net_key(arch: str) -> str:
    """'r2plus1d_18' -> 'r2plus1d' (the paper's network, without the depth)."""
    head, _, depth = arch.rpartition("_")
    return head if depth.isdigit() else arch


def pct(x) -> str:
    return f"{x * 100:.1f}" if is_num(x) else NA


def pp(x) -> str:
    """A difference of fractions in percentage points, signed."""
    return f"{x * 100:+.1f} points" if is_num(x) else NA


def clip_text(cfg: dict, name: str) -> str:
    c = cfg["clips"][name]
    return f"{name} ({c['frames']} frames, {c['size']}x{c['size']}, {c['sampling']}, {c['clips_per_video']} per video)"


def run_setting(cfg: dict, run: str) -> str:
    r = run_config(cfg, run)
    p = r["protocol"]
    args = ", ".join(f"{k}={v}" for k, v in sorted(r["model_args"].items()) if k != "dropout")
    sched = (p.get("scheduler") or {}).get("name") or "no schedule"
    text = (f"{r['arch']} ({args}), {r['protocol_name']} protocol: {p['epochs']} epochs, {p['optimizer']['name']} "
            f"lr {p['optimizer']['lr']:g}, {sched}, batch {p['batch_size']}, train clips {p['train_clips']}")
    if r.get("init_from_run"):
        text += f", initialised from {r['init_from_run']}"
    return text


def dataset_text(cfg: dict) -> str:
    ds = dataset_config(cfg)
    return f"{cfg['dataset']} (synthetic demo set)" if ds.get("synthetic") else cfg["dataset"]


class Result:
    """What one aggregator returns: numeric table, display table, claims rows, figure and text."""

    def __init__(self, table: pd.DataFrame, show: pd.DataFrame, claims: list[dict], figure, text: list[str],
                 caption: str, notes: list[str] | None = None):
        self.table, self.show, self.claims, self.figure = table, show, claims, figure
        self.text, self.caption, self.notes = text, caption, notes or []


def _claim_rows(claims: dict, name: str, measured: dict[str, str], measured_on: str) -> list[dict]:
    rows = []
    for c in claims["claims"].get(name, []):
        rows.append({"id": c["id"], "claim": c["what"], "claimed": c["claimed"], "source": c["source"],
                     "where": c["where"], "claim_measured_on": " ".join(c["setting"].split()),
                     "measured": measured.get(c.get("measure"), "not measured by this pipeline"),
                     "measured_on": measured_on})
    return rows


def _frames(cfg: dict, clip: str) -> int:
    return int(cfg["clips"][clip]["frames"])


# ----------------------------------------------------------------------------- 1. clip length
def clip_length_transfer(cfg: dict, p: dict, results: Path, reader: ArtifactReader, claims: dict) -> Result:
    rows = []
    train_info = {}
    for cell in p["cells"]:
        ev = reader.json(results / cell["evaluation"])
        if cell["run"] not in train_info:
            train_info[cell["run"]] = reader.json(results / spec.run_file(p["split"], cell["run"], "train.json"))
        tr = train_info[cell["run"]]
        rows.append({"run": cell["run"], "train_clip": cell["train_clip"], "train_frames": _frames(cfg, cell["train_clip"]),
                     "test_clip": cell["test_clip"], "test_frames": _frames(cfg, cell["test_clip"]),
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
            f"Runs: " + "; ".join(f"{r}: {run_setting(cfg, r)}, trained on {clip_text(cfg, run_config(cfg, r)['clip_name'])}"
                                 for r in runs) + ".",
            "Test clip specs: " + "; ".join(clip_text(cfg, c) for c in dict.fromkeys(t["test_clip"])) + "."]
    if any(cfg["clips"][c]["sampling"] == "uniform" for c in t["test_clip"]):
        text.append("Uniform sampling spreads every clip over the whole video, so here the clip length sets the "
                    "temporal resolution (the motion between sampled frames), not the temporal extent: a model "
                    "tested at more frames than it was trained on sees proportionally smaller motion per step. The "
                    "paper's clips are consecutive frames at the native rate (longer clip = longer extent, same "
                    "motion per step); clip specs with sampling: consecutive reproduce that setting.")
    return Result(t, show, _claim_rows(claims, p["name"], measured, _measured_on(cfg, p)), fig, text,
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


# ----------------------------------------------------------------------------- 2. fine-tuning
def finetune(cfg: dict, p: dict, results: Path, reader: ArtifactReader, claims: dict) -> Result:
    x, roles, split = p["config"], p["roles"], p["split"]
    ev = {k: reader.json(results / path) for k, path in p["evaluations"].items()}
    tr = {r: reader.json(results / spec.run_file(split, run, "train.json")) for r, run in roles.items()}
    metrics = {r: reader.csv(results / spec.run_file(split, run, "metrics.csv")) for r, run in roles.items()}
    fs, fl = _frames(cfg, x["from_clip"]), _frames(cfg, x["to_clip"])
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
    return Result(t, show, _claim_rows(claims, p["name"], measured, _measured_on(cfg, p)), fig, text,
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


# ----------------------------------------------------------------------------- 3. clips per video
def subset_indices(stored: int, k: int) -> np.ndarray:
    """k of `stored` clips, evenly spread and centred: k=1 is the centre clip, k=stored all of them."""
    return np.floor((np.arange(k) + 0.5) * stored / k).astype(np.int64)


def video_accuracy_at(scores: np.ndarray, labels: np.ndarray, video_ids: np.ndarray, clip_index: np.ndarray,
                      n_clips: np.ndarray, k: int) -> dict:
    """Video-level top-1/top-5 when averaging k evenly spread clips of each video's stored clips."""
    from vidrec.evaluation.evaluate import average_over_videos, topk_correct

    keep = np.zeros(len(scores), bool)
    for n in np.unique(n_clips):
        rows = n_clips == n
        keep |= rows & np.isin(clip_index, subset_indices(int(n), min(k, int(n))))
    videos, vscores, vlabels = average_over_videos(scores[keep], labels[keep], video_ids[keep])
    return {"video_top1": float(topk_correct(vscores, vlabels, 1).mean()),
            "video_top5": float(topk_correct(vscores, vlabels, 5).mean()), "n_videos": int(len(videos))}


def clips_per_video(cfg: dict, p: dict, results: Path, reader: ArtifactReader, claims: dict) -> Result:
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
    text = [f"{run} ({run_setting(cfg, run)}, trained on {clip_text(cfg, run_config(cfg, run)['clip_name'])}) is evaluated "
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
    return Result(t, show, _claim_rows(claims, p["name"], measured, _measured_on(cfg, p)), fig, text,
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


# ----------------------------------------------------------------------------- 4. architectures
def full_width_params(arch: str, frames: int, num_classes: int = 400) -> int | None:
    """Parameters of this implementation at the paper's width (64) and 400 classes (Kinetics)."""
    try:
        from vidrec.models import count_params, create_model

        return int(count_params(create_model(arch, num_classes=num_classes, clip_shape=(3, frames, 112, 112))))
    except Exception as err:  # a figure for the table, never a reason to fail
        log.warning("full-width parameter count of %s failed: %s", arch, err)
        return None


def architecture_sweep(cfg: dict, p: dict, results: Path, reader: ArtifactReader, claims: dict) -> Result:
    x, split = p["config"], p["split"]
    frames = _frames(cfg, x["clip"])
    col = 16 if frames >= 16 else 8  # the paper's nearer column
    paper = claims["table2"]["nets"]
    rows = []
    for arch, run in p["archs"].items():
        ev = reader.json(results / spec.run_file(split, run, "evaluation.json"))
        tr = reader.json(results / spec.run_file(split, run, "train.json"))
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
    width = run_config(cfg, t["run"].iloc[0])["model_args"].get("base_width") if len(t) else None
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
    return Result(t, show, _claim_rows(claims, p["name"], measured, _measured_on(cfg, p)), fig, text,
                  f"Left: this run's clip and video top-1 per network ({dataset_text(cfg)}). Right: the paper's Table 2 "
                  f"({col}-frame column, Kinetics-400, claims). Same network order as the paper.")


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


AGGREGATORS = {"clip_length_transfer": clip_length_transfer, "finetune_8_to_32": finetune,
               "clips_per_video": clips_per_video, "architecture_sweep": architecture_sweep}


# ----------------------------------------------------------------------------- page
def _measured_on(cfg: dict, p: dict) -> str:
    from vidrec.provenance import hardware

    hw = hardware()
    return (f"{dataset_text(cfg)}, split {p['split']}; {hw.get('cpu')}"
            + (f", GPU {', '.join(hw['gpus'])}" if hw.get("gpus") else ""))


def _records(frame: pd.DataFrame) -> dict:
    return {"columns": list(frame.columns), "rows": frame.astype(object).where(frame.notna(), NA).values.tolist()}


def claims_show(claims: pd.DataFrame, sources: dict) -> pd.DataFrame:
    if claims.empty:
        return claims
    return pd.DataFrame({
        "Claim": claims["claim"], "Claimed (claim)": claims["claimed"],
        "Source": [f"{s}: {w}" for s, w in zip(claims["source"], claims["where"])],
        "Claim measured on": claims["claim_measured_on"],
        "Measured here": claims["measured"], "Measured on": claims["measured_on"],
    })


def run_experiment(cfg: dict, name: str, results_dir: Path, out_dir: Path) -> Path:
    """Aggregate experiment `name` from results_dir into out_dir; return the page's path."""
    p = spec.plan(cfg, name)
    results, out = Path(results_dir), Path(out_dir)
    reader = ArtifactReader()
    claims = load_claims(CLAIMS_PATH)
    res = AGGREGATORS[name](cfg, p, results, reader, claims)
    claims_frame = pd.DataFrame(res.claims, columns=["id", "claim", "claimed", "source", "where", "claim_measured_on",
                                                     "measured", "measured_on"])
    write_csv(out / spec.OUTPUTS["table"], res.table)
    write_csv(out / spec.OUTPUTS["claims"], claims_frame)
    png = figures.png_bytes(res.figure)
    with atomic_path(out / spec.OUTPUTS["figure"]) as tmp:
        tmp.write_bytes(png)
    used = {claims_frame["source"].iloc[i] for i in range(len(claims_frame))} | (
        {claims["table2"]["source"]} if name == "architecture_sweep" else set())
    summary = {
        "name": name, "title": spec.TITLES[name], "dataset": cfg["dataset"], "split": p["split"],
        "synthetic": bool(dataset_config(cfg).get("synthetic")), "text": res.text, "caption": res.caption,
        "notes": res.notes, "show": _records(res.show), "claims_show": _records(claims_show(claims_frame, claims["sources"])),
        "sources": {k: v for k, v in claims["sources"].items() if k in used},
        "runs": sorted(p["runs"]), "inputs": [str(x.relative_to(results)) if x.is_relative_to(results) else str(x)
                                              for x in reader.read],
        "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    write_json(out / spec.OUTPUTS["summary"], summary)
    banners = []
    if summary["synthetic"]:
        banners.append(render.banner(
            f"Measured on the demo set ('{cfg['dataset']}'): synthetic videos with motion-only classes, narrow networks "
            "and few epochs. It exercises the experiment end to end; its numbers are not comparable with the paper's "
            "Kinetics-400 figures quoted as claims.", "demo"))
    html = render.page(f"vidrec experiment: {name}", f"{spec.TITLES[name]} | dataset {cfg['dataset']} | split "
                       f"{p['split']} | generated {summary['generated_utc']}", banners,
                       [(name, spec.TITLES[name], render.experiment_section(summary, png, spec.OUTPUTS["figure"]))])
    write_text(out / spec.OUTPUTS["html"], html)
    log.info("experiment %s: %s (%d inputs)", name, out / spec.OUTPUTS["html"], len(reader.read))
    return out / spec.OUTPUTS["html"]
