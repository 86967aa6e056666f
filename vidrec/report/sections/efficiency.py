"""Section 4, Efficiency: size, FLOPs, training time and inference speed per model (its practical-capacity text:
vidrec/report/thesis.py)."""
from __future__ import annotations

import pandas as pd

from vidrec.report.formatting import family, fmt, fmt_duration
from vidrec.report.load import Results


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


def efficiency_parts(show: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The shown table in two, each with the model column, so each fits a laptop's page: size and
    compute (up to the FLOPs' input shape), then training time, speed, memory and device."""
    split = list(show.columns).index("Epochs")
    return [("Size and compute", show.iloc[:, :split]),
            ("Training time, speed and memory", show[["Model", *show.columns[split:]]])]
