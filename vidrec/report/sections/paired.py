"""Section 1, its paired comparison: models tested on the same videos compared with the exact sign-flip test
over clusters (vidrec/evaluation/stats.py). One comparison is declared primary (report.primary_comparison,
vidrec/report/thesis.py) and judged at 5%; every other one is exploratory, its p-value Holm-adjusted within a
stated family."""
from __future__ import annotations

import numpy as np
import pandas as pd

from vidrec.evaluation.stats import clustered_paired_test, holm
from vidrec.report.formatting import NA, fmt, fmt_p, is_num
from vidrec.report.load import Results
from vidrec.report.summary import LEVELS, run_outcomes, video_clusters
from vidrec.report.thesis import Primary, no_pair_text


ALPHA = 0.05  # level of the declared primary comparison's test (every other test: Holm-adjusted, exploratory)
TEST_METHOD = "exact sign-flip (randomisation) test over clusters"
POOLED = "pooled"  # the paired table's split value for the test pooled over the splits run


def verdict(p) -> str:
    """The declared primary comparison's verdict; never used for an exploratory (unadjusted) p-value."""
    return NA if not is_num(p) else ("significant" if p < ALPHA else "not significant") + f" at {ALPHA:.0%}"


def model_pairs(summary: pd.DataFrame, primary: Primary | None) -> list[tuple[str, str]]:
    """Every pair of models once, in configuration order, the primary pair first (in its declared order)."""
    models = list(summary.index)
    pairs = [(a, b) for i, a in enumerate(models) for b in models[i + 1:]]
    if primary:
        pairs = [(primary.a, primary.b)] + [p for p in pairs if set(p) != {primary.a, primary.b}]
    return pairs


def _paired_row(res: Results, pred: pd.DataFrame, a: str, b: str) -> dict:
    """Counts, difference and clustered test per level for A and B on the test videos both were run on."""
    row: dict = {}
    for level, col in LEVELS.items():
        ya, ia = run_outcomes(pred[pred["model"] == a], col)
        yb, ib = run_outcomes(pred[pred["model"] == b], col)
        both = ia.intersection(ib, sort=False)
        ya, yb = ya[:, ia.get_indexer(both)], yb[:, ib.get_indexer(both)]
        t = clustered_paired_test(ya, yb, video_clusters(res, both))
        row.update({"n_videos": t.n_videos, "n_clusters": t.n_clusters, "seeds_a": ya.shape[0],
                    "seeds_b": yb.shape[0],
                    f"{level}_a_acc": ya.mean() if ya.size else np.nan,
                    f"{level}_b_acc": yb.mean() if yb.size else np.nan,
                    f"{level}_a_only": t.a_only, f"{level}_b_only": t.b_only,
                    f"{level}_clusters_a": t.clusters_a, f"{level}_clusters_b": t.clusters_b,
                    f"{level}_diff": t.difference, f"{level}_diff_lo": t.lo, f"{level}_diff_hi": t.hi,
                    f"{level}_p": t.p})
    return row


def paired_comparison(res: Results, summary: pd.DataFrame, primary: Primary | None) -> pd.DataFrame:
    """Per pair of models, per split and pooled over the splits: the clustered paired test at both levels.

    Every seed of each model is used (each test video's outcome averaged over the model's seeds). The test
    is the exact sign-flip test over clusters (stats.clustered_paired_test); pooling over the splits is
    legitimate because the official splits' test sets are disjoint (a video tested in two splits would fall
    in one cluster, so even then the clusters stay the independent unit). Roles: the primary comparison's
    pooled test at its level is judged at ALPHA as it is; every other pooled test is exploratory, its
    p-value Holm-adjusted within the family of the other pooled tests (pairs x levels, less the primary);
    the per-split tests (shown with two or more splits) form their own Holm family (pairs x levels x splits).
    """
    pred = res.predictions
    rows = []
    multi = len(res.splits) > 1
    for a, b in model_pairs(summary, primary):
        if multi:
            for split in res.splits:
                sub = pred[pred["split"] == split]
                if {a, b} <= set(sub["model"]):
                    rows.append({"split": split, "model_a": a, "model_b": b, **_paired_row(res, sub, a, b)})
        rows.append({"split": POOLED, "model_a": a, "model_b": b, **_paired_row(res, pred, a, b)})
    columns = ["split", "model_a", "model_b", "n_videos", "n_clusters", "seeds_a", "seeds_b"] + [
        f"{level}_{x}" for level in LEVELS for x in ("a_acc", "b_acc", "a_only", "b_only", "clusters_a",
                                                    "clusters_b", "diff", "diff_lo", "diff_hi", "p")]
    data = pd.DataFrame(rows, columns=columns)
    is_pair = [primary is not None and (a, b) == (primary.a, primary.b)
               for a, b in zip(data["model_a"], data["model_b"])]
    data.insert(3, "primary_pair", is_pair)
    pooled = data["split"] == POOLED
    for level in LEVELS:
        is_primary = pooled & data["primary_pair"] & (primary is not None and primary.level == level)
        data[f"{level}_role"] = np.where(is_primary, "primary", "exploratory")
        data[f"{level}_family"] = np.where(is_primary, "", np.where(pooled, "pooled", "per split"))
        data[f"{level}_p_adjusted"] = data[f"{level}_p"].where(is_primary, np.nan)
    for fam, mask in (("pooled", pooled), ("per split", ~pooled)):
        cells = [(i, level) for level in LEVELS for i in data.index[mask & (data[f"{level}_role"] == "exploratory")]]
        adjusted = holm([data.at[i, f"{level}_p"] for i, level in cells])
        for (i, level), p in zip(cells, adjusted):
            data.at[i, f"{level}_p_adjusted"] = p
    for level in LEVELS:
        data[f"{level}_reject_at_5pct"] = [p < ALPHA if is_num(p) else np.nan for p in data[f"{level}_p_adjusted"]]
    return data


def family_size(paired: pd.DataFrame, family: str) -> int:
    """How many tests a Holm family holds ('pooled': the exploratory pooled tests; 'per split')."""
    return int(sum((paired[f"{level}_family"] == family).sum() for level in LEVELS))


def test_text(r: pd.Series, level: str) -> str:
    """One cell: the primary test's p and verdict, or an exploratory test's Holm-adjusted p beside its raw p."""
    p, adj = r[f"{level}_p"], r[f"{level}_p_adjusted"]
    if not is_num(p):
        return NA
    if r[f"{level}_role"] == "primary":
        return f"primary: {fmt_p(p)}, {verdict(p)}"
    return f"exploratory: Holm-adjusted {fmt_p(adj)} (unadjusted {fmt_p(p)})"


def paired_show(paired: pd.DataFrame, pooled: bool = True) -> pd.DataFrame:
    """Display form: the pooled rows (one per pair), or every split's rows."""
    d = paired[(paired["split"] == POOLED) == pooled]
    out = {"Model A": d["model_a"], "Model B": d["model_b"]}
    if not pooled:
        out["Split"] = d["split"]
    out["Seeds A / B"] = [f"{x} / {y}" for x, y in zip(d["seeds_a"], d["seeds_b"])]
    out["Test videos (clusters)"] = [f"{n} ({c})" for n, c in zip(d["n_videos"], d["n_clusters"])]
    for level in LEVELS:
        name = level.capitalize()
        out[f"{name} top-1 A / B (%)"] = [f"{fmt(a * 100)} / {fmt(b * 100)}" for a, b in
                                         zip(d[f"{level}_a_acc"], d[f"{level}_b_acc"])]
        out[f"{name}: A - B (pp) [95%]"] = [f"{v * 100:+.2f} [{lo * 100:+.2f}, {hi * 100:+.2f}]" if is_num(v) else NA
                                           for v, lo, hi in zip(d[f"{level}_diff"], d[f"{level}_diff_lo"],
                                                                d[f"{level}_diff_hi"])]
        out[f"{name}: A only / B only, videos (clusters)"] = [
            f"{x} / {y} ({cx} / {cy})" for x, y, cx, cy in zip(d[f"{level}_a_only"], d[f"{level}_b_only"],
                                                                d[f"{level}_clusters_a"], d[f"{level}_clusters_b"])]
        out[f"{name}: clustered test"] = [test_text(r, level) for _, r in d.iterrows()]
    return pd.DataFrame(out)


def primary_text(paired: pd.DataFrame, summary: pd.DataFrame, primary: Primary | None, splits: list[int]) -> str:
    """The declared primary comparison's result, the one test the report judges at 5%."""
    if primary is None:
        return f"No primary comparison: {no_pair_text(summary)}."
    rows = paired[(paired["split"] == POOLED) & paired["primary_pair"]]
    r = rows.iloc[0] if len(rows) else None
    if r is None or not r["n_videos"]:
        return f"{primary.a} and {primary.b} share no test video, so they cannot be compared video by video."
    level = primary.level
    where = f"split{'s' if len(splits) > 1 else ''} {', '.join(map(str, splits))}"
    seeds = (f"; every seed used ({int(r['seeds_a'])} of {primary.a}, {int(r['seeds_b'])} of {primary.b})"
             if max(r["seeds_a"], r["seeds_b"]) > 1 else "; one seed each, so the test is about these two trained "
             "networks, not the architectures (see the accuracy section on seeds)")
    other = "video" if level == "clip" else "clip"
    protocol = "the thesis's protocol" if level == "clip" else "Tran et al.'s protocol"
    return (f"Primary comparison ({primary.source}): {primary.a} vs {primary.b} at {level} level ({protocol}), "
            f"on the same {int(r['n_videos'])} test videos in {int(r['n_clusters'])} clusters of {where}"
            f"{', pooled over the splits' if len(splits) > 1 else ''}{seeds}: "
            f"{r[f'{level}_a_acc'] * 100:.2f}% vs {r[f'{level}_b_acc'] * 100:.2f}%, difference "
            f"{r[f'{level}_diff'] * 100:+.2f} pp [95% {r[f'{level}_diff_lo'] * 100:+.2f}, "
            f"{r[f'{level}_diff_hi'] * 100:+.2f}]; {int(r[f'{level}_a_only'])} vs {int(r[f'{level}_b_only'])} "
            f"discordant videos in {int(r[f'{level}_clusters_a'])} vs {int(r[f'{level}_clusters_b'])} clusters; "
            f"{TEST_METHOD} {fmt_p(r[f'{level}_p'])}, {verdict(r[f'{level}_p'])}. The same pair at {other} "
            f"level is exploratory: {test_text(r, other).removeprefix('exploratory: ')}.")
