"""Rehearsal: the configured real job end to end in minutes, before GPU-days are spent on it.

`rehearsal: true` (e.g. `snakemake --cores N report --config rehearsal=true`) keeps everything that can
break on a real set-up — the real videos and split lists, every configured split and model at full
width, the real clip specs, the profile and executor — and cuts what only costs time: a few videos per
class (chosen so that every split keeps training and test videos, on any dataset format), two epochs of a
few steps, a few test videos, one timed batch. Its artifacts live under `<dataset>-rehearsal` folders
(`Layout.of`), so a rehearsal never satisfies a real target, and its report is stamped REHEARSAL.

Torch-free and config-level: validation applies the caps; the manifest step applies the data subset.
The caps keep the values they replace (`rehearsal_settings.uncapped`), so `real_config` gives back the
real job's configuration, which the rehearsal report's forecast costs (vidrec/report/forecast_arithmetic.py).
"""
from __future__ import annotations

import copy
from typing import Any

import pandas as pd

# What apply_caps replaces: (section, key) -> kept in rehearsal_settings.uncapped before capping.
CAPPED = (("train", "max_steps"), ("evaluate", "max_videos"), ("evaluate", "speed_batches"),
          ("evaluate", "end_to_end_videos"), ("evaluate", "batch_size"))


def active(cfg: dict) -> bool:
    return bool(cfg.get("rehearsal"))


def settings(cfg: dict) -> dict:
    return cfg["rehearsal_settings"]


def apply_caps(cfg: dict) -> dict:
    """In place (idempotent): cap training steps, evaluated videos and timed batches; return cfg."""
    if active(cfg):
        r = settings(cfg)
        if not r.get("uncapped"):  # first validation: keep the real values (jobs validate again)
            r["uncapped"] = {sec: {k: cfg[sec][k] for s, k in CAPPED if s == sec} for sec in ("train", "evaluate")}
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


def subset(videos: pd.DataFrame, membership: pd.DataFrame, cfg: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The manifest's rehearsal subset, on any format: per class, `videos_per_class` videos, first (in
    video_id order) those that give every split a training and a test video of the class, then the next.
    Video ids are kept, so the rehearsal's shards are the real job's buckets, most of them sparse."""
    if not active(cfg):
        return videos, membership
    n = settings(cfg)["videos_per_class"]
    splits = [c for c in membership.columns if c.startswith("split")]
    table = videos[["video_id", "label"]].merge(membership, on="video_id").sort_values("video_id")
    keep: list[int] = []
    for _, rows in table.groupby("label", sort=True):
        members = list(zip(rows["video_id"], *(rows[s] for s in splits)))
        need = {(s, sub) for s in splits for sub in ("train", "test")}
        chosen: list[int] = []
        for video_id, *subsets in members:
            covers = set(zip(splits, subsets)) & need
            if covers and len(chosen) < n:
                chosen.append(video_id)
                need -= covers
        chosen += [v for v, *_ in members if v not in set(chosen)][:n - len(chosen)]
        keep += chosen
    kept = videos["video_id"].isin(keep)
    return (videos[kept].reset_index(drop=True),
            membership[membership["video_id"].isin(keep)].reset_index(drop=True))


def real_config(cfg: dict) -> dict:
    """The configuration of the real job a rehearsal stands for (a copy; a real run's: an equal copy):
    rehearsal off and the capped values restored."""
    real = copy.deepcopy(cfg)
    kept = real["rehearsal_settings"].pop("uncapped", None) or {}
    for section, values in kept.items():
        real[section].update(values)
    real["rehearsal"] = False
    return real

