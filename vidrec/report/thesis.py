"""The thesis pair's logic: which two models the report compares (report.primary_comparison; by default
the thesis's ConvLSTM-C2D against P3D) and the thesis's practical-capacity argument (model A at one clip per
video against model B at the thesis's what-if clips per video), recomputed from the measured speeds."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from vidrec.plan.catalogue import CARDS, THESIS_PAIR
from vidrec.core.errors import ConfigError
from vidrec.report.formatting import fmt


def thesis_pair(summary: pd.DataFrame) -> tuple[str | None, str | None]:
    """The first model of each thesis family (ConvLSTM-C2D, P3D), or None where absent."""
    keys = {m: CARDS[a].family.key for m, a in summary["arch"].items() if a in CARDS}
    return tuple(next((m for m, k in keys.items() if k == f), None) for f in THESIS_PAIR)


class Primary(NamedTuple):
    """The declared primary comparison: model A against model B at one level (clip | video)."""

    a: str
    b: str
    level: str
    source: str  # how it was chosen, for the report


def primary_comparison(cfg: dict, summary: pd.DataFrame) -> Primary | None:
    """report.primary_comparison resolved against the models run (config validation checked the names).

    pair: the configured [A, B]; null: the thesis pair (first convlstm_c2d*, first p3d* run) when both are
    configured, else the first two runs; None with fewer than two runs. level: the setting's (default clip,
    the thesis's protocol)."""
    setting = cfg["report"]["primary_comparison"]
    level, pair = setting["level"], setting["pair"]
    models = list(summary.index)
    if pair:
        missing = [m for m in pair if m not in models]
        if missing:
            raise ConfigError(f"report.primary_comparison.pair names {missing}, not among the runs {models}")
        return Primary(pair[0], pair[1], level, "report.primary_comparison.pair")
    conv, p3d = thesis_pair(summary)
    if conv and p3d:
        return Primary(conv, p3d, level, "the thesis pair (report.primary_comparison's default)")
    if len(models) >= 2:
        return Primary(models[0], models[1], level,
                       "the first two runs (no thesis pair configured; report.primary_comparison's default)")
    return None


def practical_time_ratio(summary: pd.DataFrame, primary: Primary | None) -> pd.Series:
    """Per model: time per video of model A at one clip as a share of model B's at `what_if_clips_per_video`
    clips (the thesis: ConvLSTM-C2D against P3D at 21), on A's row; NaN elsewhere and without a pair."""
    ratio = pd.Series(np.nan, index=summary.index)
    if primary:
        a, b = primary.a, primary.b
        ratio[a] = (1 / summary.loc[a, "infer_videos_per_s_one_clip"]) / (
            1 / summary.loc[b, "infer_videos_per_s_what_if"])
    return ratio


def no_pair_text(summary: pd.DataFrame) -> str:
    """Why there is no compared pair (fewer than two runs), for the sections that need one."""
    return (f"this run has {len(summary)} model{'s' if len(summary) != 1 else ''} "
            f"({', '.join(summary.index) or 'none'}), and a comparison needs two")


def capacity_text(summary: pd.DataFrame, primary: Primary | None) -> list[str]:
    """The thesis's 'practical capacity' argument for the compared pair, recomputed from the measured speeds:
    model A at one clip per video against model B at the thesis's what-if clips per video (for P3D)."""
    if primary is None:
        return [f"The practical-capacity comparison needs the compared pair; {no_pair_text(summary)}."]
    a, b = primary.a, primary.b
    c, p = summary.loc[a], summary.loc[b]
    k = int(p["what_if_clips_per_video"])
    one = c["infer_videos_per_s_one_clip"] / p["infer_videos_per_s_one_clip"]
    return [
        f"{a} at one clip per video (the thesis protocol): {fmt(c['infer_videos_per_s_one_clip'], 1)} videos/s. "
        f"{b}: {fmt(p['infer_clips_per_s'], 1)} clips/s, so {fmt(p['infer_videos_per_s_one_clip'], 1)} videos/s "
        f"at one clip per video and {fmt(p['infer_videos_per_s_what_if'], 2)} videos/s at the {k} clips per "
        "video the thesis assumes for P3D.",
        f"Time per video, {a} (1 clip) as a share of {b} ({k} clips): "
        f"{fmt(c['practical_time_ratio'] * 100, 1)}% (the thesis claims 24% for ConvLSTM-C2D against P3D). At one "
        f"clip per video each, the protocol under which both thesis accuracies were reported, {a} processes "
        f"{fmt(one, 2)}x as many videos per second as {b}.",
    ]
