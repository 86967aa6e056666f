"""The report's figures (matplotlib, Agg): each function returns a Figure; `png_bytes` renders it."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from vidrec.report.formatting import family  # noqa: E402

plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "axes.titlesize": 11,
                     "axes.labelsize": 10, "legend.fontsize": 8, "xtick.labelsize": 8, "ytick.labelsize": 8})


def png_bytes(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def placeholder(title: str, text: str) -> plt.Figure:
    """A figure that says why there is nothing to plot (output names stay fixed)."""
    fig, ax = plt.subplots(figsize=(7, 2))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=10)
    return fig


def colors(models: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {m: cmap(i % 10) for i, m in enumerate(models)}


def time_unit(seconds: float) -> tuple[float, str]:
    if seconds >= 2 * 3600:
        return 3600.0, "h"
    if seconds >= 120:
        return 60.0, "min"
    return 1.0, "s"


def training_curves(metrics: pd.DataFrame, models: list[str], n_runs: int, title: str | None = None) -> plt.Figure:
    """The thesis's Figure 5: loss and accuracy against epoch and training time, train and test.

    One line pair per `model` value, averaged over its runs (splits x seeds; the progress report gives each run
    its own value and its own title)."""
    cols = ["train_loss", "val_loss", "train_acc", "val_acc", "wall_time_s"]
    mean = metrics.groupby(["model", "epoch"], sort=False)[cols].mean().reset_index()
    scale, unit = time_unit(float(mean["wall_time_s"].max() or 0))
    palette = colors(models)
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5))
    panels = [("loss", "epoch", axes[0, 0]), ("acc", "epoch", axes[0, 1]),
              ("loss", "wall_time_s", axes[1, 0]), ("acc", "wall_time_s", axes[1, 1])]
    for what, x, ax in panels:
        for m in models:
            d = mean[mean["model"] == m]
            xs = d[x] / scale if x == "wall_time_s" else d[x]
            factor = 100 if what == "acc" else 1
            ax.plot(xs, d[f"train_{what}"] * factor, "-o", ms=3, color=palette[m], label=f"{m} train")
            ax.plot(xs, d[f"val_{what}"] * factor, "--s", ms=3, color=palette[m], label=f"{m} test")
        ax.set_xlabel("epoch" if x == "epoch" else f"cumulative training time ({unit})")
        if x == "epoch":
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel("cross-entropy loss" if what == "loss" else "top-1 accuracy (%, clip level)")
        ax.set_title(f"{'Loss' if what == 'loss' else 'Accuracy'} vs "
                     f"{'epoch' if x == 'epoch' else 'training time'}")
    axes[0, 1].legend(loc="best")
    span = f"mean over {n_runs} runs (splits x seeds)" if n_runs > 1 else "one run"
    fig.suptitle(title or f"Training curves ({span}); solid = train, dashed = test (centre clip)")
    fig.tight_layout()
    return fig


def accuracy_vs_cost(summary: pd.DataFrame) -> plt.Figure:
    """Video and clip top-1 against GFLOPs per clip and against inference time per video."""
    palette = colors(list(summary.index))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = [("gflops_per_clip", "GFLOPs per clip"),
          ("ms_per_video", "inference time per video, thesis protocol (ms, 1 clip)")]
    s = summary.assign(ms_per_video=1000.0 / summary["infer_videos_per_s_one_clip"])
    for (col, label), ax in zip(xs, axes):
        for m, r in s.iterrows():
            v, lo, hi = r["video_top1"], r["video_top1_lo"], r["video_top1_hi"]  # clustered 95% interval
            yerr = [[max(v - lo, 0) * 100], [max(hi - v, 0) * 100]] if np.isfinite([v, lo, hi]).all() else None
            ax.errorbar(r[col], v * 100, yerr=yerr, fmt="o", color=palette[m], capsize=3, label=f"{m} video level")
            ax.plot(r[col], r["clip_top1"] * 100, marker="^", ls="none", color=palette[m], mfc="none",
                    label=f"{m} clip level")
            ax.annotate(m, (r[col], r["video_top1"] * 100), textcoords="offset points", xytext=(5, 5), fontsize=8)
        chance = float(s["chance"].iloc[0]) * 100 if len(s) else 0
        ax.axhline(chance, color="grey", ls=":", lw=1, label="chance")
        ax.set_xlabel(label)
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_ylim(0, 100)
        ax.set_xlim(left=0, right=max(float(s[col].max()) * 1.25, 1e-3) if len(s) else 1)
        ax.set_title(f"Accuracy vs {'compute' if col == 'gflops_per_clip' else 'inference time'}")
    axes[1].legend(loc="best", ncol=1)
    fig.tight_layout()
    return fig


def per_class_diff(diff: pd.DataFrame, pair: tuple[str, str] | None, why: str = "", top: int = 20) -> plt.Figure:
    """The classes where the compared pair (model A, model B) differs most, A minus B in video top-1."""
    if not pair:
        return placeholder("Per-class difference of the compared pair", f"Needs two models; {why}.")
    a, b = pair
    d = diff.dropna(subset=["diff_video_top1_pp"]).head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.3 * len(d) + 1.5))
    colors = ["tab:blue" if v >= 0 else "tab:orange" for v in d["diff_video_top1_pp"]]
    ax.barh(d["class_name"], d["diff_video_top1_pp"], color=colors)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"video top-1 difference (percentage points): {a} minus {b}")
    ax.set_title(f"Classes where the compared pair differs most (top {len(d)}; blue = {a} better)")
    fig.tight_layout()
    return fig


def confusion_grid(confusion: dict[str, pd.DataFrame], models: list[str], archs: dict[str, str]) -> plt.Figure:
    """Row-normalised video-level confusion matrix per model (summed over splits)."""
    n = len(models)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols + 1, 4.3 * rows), squeeze=False, layout="constrained")
    image = None
    for i, (ax, m) in enumerate(zip(axes.flat, models)):
        cm = confusion[m].to_numpy(dtype=float)
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) * 100
        image = ax.imshow(norm, cmap="viridis", vmin=0, vmax=100, interpolation="nearest")
        k = len(norm)
        ax.set_title(f"{family(archs[m])}\n({m})")
        ax.grid(False)
        if k <= 20:
            names = list(confusion[m].columns)
            ax.set_xticks(range(k), names, rotation=90, fontsize=6)
            ax.set_yticks(range(k), list(confusion[m].index), fontsize=6)
        ax.set_xlabel("predicted class")
        if i % cols == 0:
            ax.set_ylabel("true class")
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="% of the true class's test videos")
    fig.suptitle("Confusion matrices (video level, all splits run)")
    return fig


def shards_figure(shards: pd.DataFrame) -> plt.Figure:
    """Shard size and decode throughput per shard (bucket of videos), one colour per clip spec."""
    if shards.empty:
        return placeholder("Shards", "No shard statistics.")
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    specs = sorted(shards["clip_spec"].unique())
    width = 0.8 / len(specs)
    for i, spec in enumerate(specs):
        d = shards[shards["clip_spec"] == spec]
        x = d["bucket"] + (i - (len(specs) - 1) / 2) * width
        axes[0].bar(x, d["mb"], width=width, label=spec)
        axes[1].bar(x, d["videos_per_s"], width=width, label=spec)
    axes[0].set_ylabel("shard size (MB)")
    axes[0].set_title("Shard size per bucket of videos")
    axes[1].set_ylabel("decode throughput (videos/s)")
    axes[1].set_title("Decode throughput per shard job")
    for ax in axes:
        ax.set_xlabel("shard (bucket of videos)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend(title="clip spec")
    fig.tight_layout()
    return fig
