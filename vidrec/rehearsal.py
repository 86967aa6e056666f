"""Rehearsal: the configured real job end to end in minutes, before GPU-days are spent on it.

`rehearsal: true` (e.g. `snakemake --cores N report --config rehearsal=true`) keeps everything that can
break on a real set-up — the real videos and split lists, every configured split and model at full
width, the real clip specs, the profile and executor — and cuts what only costs time: a few videos per
class (one clip of each of a few groups, so every split keeps training and test videos), one epoch of a
few steps, a few test videos, one timed batch. Its artifacts live under `<dataset>-rehearsal` folders
(`Layout.of`), so a rehearsal never satisfies a real target, and its report is stamped REHEARSAL.

Torch-free and config-level: validation applies the caps; the manifest step applies the data subset.
"""
from __future__ import annotations

from typing import Any

import pandas as pd


def active(cfg: dict) -> bool:
    return bool(cfg.get("rehearsal"))


def settings(cfg: dict) -> dict:
    return cfg["rehearsal_settings"]


def apply_caps(cfg: dict) -> dict:
    """In place (idempotent): cap training steps, evaluated videos and timed batches; return cfg."""
    if active(cfg):
        r = settings(cfg)
        cfg["train"]["max_steps"] = r["train_steps"]
        cfg["evaluate"]["max_videos"] = r["eval_videos"]
        cfg["evaluate"]["speed_batches"] = 1
        cfg["evaluate"]["end_to_end_videos"] = min(cfg["evaluate"]["end_to_end_videos"], r["eval_videos"])
        if r["batch_size"]:
            cfg["evaluate"]["batch_size"] = min(cfg["evaluate"]["batch_size"], r["batch_size"])
    return cfg


def protocol(protocol: dict[str, Any], cfg: dict) -> tuple[dict[str, Any], list[str]]:
    """A run's resolved protocol under rehearsal (its epochs and, if set, batch size) and what changed."""
    if not active(cfg):
        return protocol, []
    r = settings(cfg)
    changed = {"epochs": r["epochs"]} | ({"batch_size": r["batch_size"]} if r["batch_size"] else {})
    note = (f"REHEARSAL: {r['epochs']} epoch(s) of at most {r['train_steps']} steps"
            f"{', batch ' + str(r['batch_size']) if r['batch_size'] else ''}, {r['eval_videos']} test videos")
    return protocol | changed, [note]


def groups(cfg: dict, all_groups: list[int]) -> list[int]:
    """The groups whose videos a rehearsal decodes (all of them otherwise)."""
    return sorted(set(all_groups) & set(settings(cfg)["groups"])) if active(cfg) else all_groups


def subset(videos: pd.DataFrame, membership: pd.DataFrame, cfg: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The manifest's rehearsal subset: per class, the first `clips_per_group` clips of each rehearsal group."""
    if not active(cfg):
        return videos, membership
    r = settings(cfg)
    keep = videos[videos["group"].isin(r["groups"])].sort_values(["label", "group", "clip"], kind="stable")
    keep = keep.groupby(["label", "group"], sort=False).head(r["clips_per_group"]).sort_index()
    return keep.reset_index(drop=True), membership[membership["video_id"].isin(keep["video_id"])].reset_index(drop=True)
