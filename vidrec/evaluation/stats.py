"""How sure the report can be of an accuracy and of a difference: closed-form or exact, numpy only.

An accuracy measured on n independent test videos is a binomial proportion, so it carries a Wilson
score interval (good coverage even at 0 or n correct, where the normal approximation collapses).
Two models tested on the same independent videos are compared with the exact McNemar test: only the
videos one model gets right and the other misses carry information, and under "no difference" each
of them is a fair coin. When the videos come in clusters (clips cut from one recording), the
clustered versions below take the cluster as the unit: a Wilson interval at the effective sample
size n / design effect (Kish), and the exact sign-flip test over clusters, which is McNemar's exact
test when every cluster holds one video. Holm's step-down correction adjusts a family of p-values.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.96  # two-sided 95% normal quantile


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials, as fractions; (nan, nan) when n is 0."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return math.nan, math.nan
    p, z2 = k / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # at k = 0 (k = n) the lower (upper) bound is exactly 0 (1): keep rounding from moving it
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def binomial_cdf_half(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), exact in integers (then one correctly rounded division)."""
    if k < 0:
        return 0.0
    return sum(math.comb(n, i) for i in range(min(k, n) + 1)) / 2**n


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: b of the b + c discordant pairs went one way, at p = 1/2.

    p = min(1, 2 P(X <= min(b, c))), X ~ Binomial(b + c, 1/2); 1 when there is no discordant pair.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    return min(1.0, 2 * binomial_cdf_half(min(b, c), b + c))


def discordant(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> tuple[int, int]:
    """(b, c): the items A gets right and B misses, and the reverse (paired by position)."""
    if len(correct_a) != len(correct_b):
        raise ValueError(f"paired outcomes differ in length: {len(correct_a)} and {len(correct_b)}")
    b = sum(1 for x, y in zip(correct_a, correct_b) if x and not y)
    c = sum(1 for x, y in zip(correct_a, correct_b) if y and not x)
    return b, c


# ----------------------------------------------------------------------------- clustered test videos
# Test videos are not independent trials: UCF101's clips of one class x group are cut from one long
# recording, so their outcomes move together. The intervals and the paired test below take the
# cluster (whatever unit the caller passes) as the independent unit; a cluster of one video each
# gives back the unclustered formulas above.


def wilson_share(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a share p observed on an effective sample size n (any n > 0, not only integers).

    wilson_share(k / n, n) equals wilson_interval(k, n); p at 0 (1) keeps its lower (upper) bound there."""
    if not 0.0 <= p <= 1.0 or not n > 0:
        raise ValueError(f"need 0 <= p <= 1 and n > 0, got p={p}, n={n}")
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    lo = 0.0 if p == 0.0 else max(0.0, centre - half)
    hi = 1.0 if p == 1.0 else min(1.0, centre + half)
    return lo, hi


def _codes(clusters: Sequence) -> tuple[np.ndarray, int]:
    """Cluster labels -> 0-based codes and the number of clusters."""
    _, codes = np.unique(np.asarray(clusters, dtype=object).astype(str), return_inverse=True)
    return codes.ravel(), int(codes.max()) + 1 if len(codes) else 0


def _outcomes(correct) -> np.ndarray:
    """(seeds, videos) float array of 0/1 outcomes; a 1-D input is one seed."""
    y = np.asarray(correct, dtype=float)
    y = y[None, :] if y.ndim == 1 else y
    if y.ndim != 2 or not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("outcomes must be a (seeds, videos) array of 0/1 (or booleans)")
    return y


@dataclass(frozen=True)
class ClusteredAccuracy:
    """An accuracy over test videos in clusters, measured by one or more trained networks (seeds).

    accuracy: the mean over seeds and videos. variance: its estimated sampling variance, clusters as
    the independent unit (the linearised variance of a ratio over clusters drawn with replacement,
    sum_c (k_c - p n_c)^2 / n^2, of the outcomes averaged over the seeds), plus, with two or more
    seeds, the seed-to-seed variance of the per-seed accuracies over the number of seeds.
    design_effect: variance / (p (1 - p) / n), at least 1; design_effect_clusters the same with the
    clusters' part alone. effective_n = n / design_effect. lo, hi: the Wilson interval of the
    accuracy at effective_n. At 0% or 100% no variance can be estimated: every cluster then counts
    as one trial (effective_n = clusters) and `estimated` is False.
    """

    accuracy: float
    lo: float
    hi: float
    n_videos: int
    n_clusters: int
    n_seeds: int
    variance: float
    design_effect: float
    design_effect_clusters: float
    effective_n: float
    estimated: bool


def clustered_accuracy(correct, clusters: Sequence, z: float = Z95) -> ClusteredAccuracy:
    """Design-effect-adjusted Wilson interval of an accuracy (see ClusteredAccuracy).

    correct: (videos,) or (seeds, videos) 0/1 outcomes, every seed on the same videos; clusters:
    one label per video. One cluster per video and one seed give wilson_interval(k, n) exactly; a
    cluster of m identical outcomes weighs as one video (clusters of m identical outcomes each give
    wilson_interval(k / m, n / m)).
    """
    y = _outcomes(correct)
    seeds, n = y.shape
    codes, n_clusters = _codes(clusters)
    if len(codes) != n:
        raise ValueError(f"{n} outcomes but {len(codes)} cluster labels")
    if n == 0:
        return ClusteredAccuracy(math.nan, math.nan, math.nan, 0, 0, seeds, math.nan, math.nan, math.nan, 0.0, False)
    mean = y.mean(axis=0)                      # each video's outcome averaged over the seeds
    p = float(mean.mean())
    resid = np.bincount(codes, weights=mean - p, minlength=n_clusters)  # k_c - p n_c
    v_clusters = float((resid ** 2).sum()) / n ** 2
    v_seeds = float(np.var(y.mean(axis=1), ddof=1)) / seeds if seeds > 1 else 0.0
    variance = v_clusters + v_seeds
    binomial = p * (1 - p) / n
    if binomial > 0:
        deff, deff_clusters, estimated = max(1.0, variance / binomial), max(1.0, v_clusters / binomial), True
    else:  # every outcome the same: count each cluster once
        deff = deff_clusters = n / n_clusters
        estimated = False
    n_eff = n / deff
    lo, hi = wilson_share(p, n_eff, z)
    return ClusteredAccuracy(p, lo, hi, n, n_clusters, seeds, variance, deff, deff_clusters, n_eff, estimated)


def sign_flip_pvalue(totals: Sequence[int]) -> float:
    """Exact two-sided p of the sign-flip (randomisation) test on integer per-cluster differences.

    Under "no difference" the two models are exchangeable within a cluster, so each cluster's
    difference d_c is as likely to be +d_c as -d_c: p = P(|sum_c s_c d_c| >= |sum_c d_c|) over all
    2^K sign patterns s, computed exactly by convolution (no sampling, nothing seeded). With one
    video per cluster and d_c = +1 / -1 for the discordant videos this is mcnemar_exact(b, c).
    """
    d = np.abs(np.asarray(totals, dtype=np.int64))
    if d.ndim != 1:
        raise ValueError("totals must be one integer per cluster")
    d = d[d != 0]
    observed = abs(int(np.asarray(totals, dtype=np.int64).sum()))
    span = int(d.sum())
    if span == 0:
        return 1.0
    dist = np.zeros(2 * span + 1)              # index i holds P(T = i - span)
    dist[span] = 1.0
    for v in d.tolist():
        dist = 0.5 * (np.roll(dist, v) + np.roll(dist, -v))  # no wrap-around: |T| <= span throughout
    values = np.abs(np.arange(-span, span + 1))
    return float(min(1.0, dist[values >= observed].sum()))


@dataclass(frozen=True)
class ClusteredPairedTest:
    """Two models on the same test videos, clusters as the unit (see clustered_paired_test)."""

    p: float                 # exact two-sided sign-flip p over clusters
    difference: float        # accuracy of A minus B (means over each model's seeds)
    lo: float                # 95% interval of the difference: normal, clustered (and seed) variance
    hi: float
    n_videos: int
    n_clusters: int
    a_only: int              # videos A gets right more often than B over the seeds (one seed: A right, B wrong)
    b_only: int
    clusters_a: int          # clusters where A's total beats B's
    clusters_b: int


def clustered_paired_test(correct_a, correct_b, clusters: Sequence, z: float = Z95) -> ClusteredPairedTest:
    """Paired comparison of two models' 0/1 outcomes on the same videos, the cluster as the unit.

    correct_a: (seeds_a, videos), correct_b: (seeds_b, videos) or 1-D (one seed); every seed of each
    model is used: per video each model's outcome averaged over its seeds. The test: the exact
    sign-flip test (sign_flip_pvalue) of the per-cluster sums of the differences (scaled by
    seeds_a * seeds_b to integers); it conditions on the trained networks. The interval of the
    difference adds, with two or more seeds per model, the seed-to-seed variance of each model's
    accuracy (one seed: clusters only).
    """
    ya, yb = _outcomes(correct_a), _outcomes(correct_b)
    if ya.shape[1] != yb.shape[1]:
        raise ValueError(f"paired outcomes differ in length: {ya.shape[1]} and {yb.shape[1]}")
    n = ya.shape[1]
    codes, n_clusters = _codes(clusters)
    if len(codes) != n:
        raise ValueError(f"{n} outcomes but {len(codes)} cluster labels")
    sa, sb = ya.shape[0], yb.shape[0]
    scaled = ya.sum(axis=0) * sb - yb.sum(axis=0) * sa           # integer: (mean_a - mean_b) * sa * sb
    totals = np.bincount(codes, weights=scaled, minlength=n_clusters).round().astype(np.int64)
    if n == 0:
        return ClusteredPairedTest(math.nan, math.nan, math.nan, math.nan, 0, 0, 0, 0, 0, 0)
    diff_v = ya.mean(axis=0) - yb.mean(axis=0)
    diff = float(diff_v.mean())
    sizes = np.bincount(codes, minlength=n_clusters)
    resid = np.bincount(codes, weights=diff_v, minlength=n_clusters) - diff * sizes
    variance = float((resid ** 2).sum()) / n ** 2
    for y in (ya, yb):
        if y.shape[0] > 1:
            variance += float(np.var(y.mean(axis=1), ddof=1)) / y.shape[0]
    half = z * math.sqrt(variance)
    return ClusteredPairedTest(
        p=sign_flip_pvalue(totals), difference=diff, lo=max(-1.0, diff - half), hi=min(1.0, diff + half),
        n_videos=n, n_clusters=n_clusters, a_only=int((scaled > 0).sum()), b_only=int((scaled < 0).sum()),
        clusters_a=int((totals > 0).sum()), clusters_b=int((totals < 0).sum()))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values of one family, in the input order; NaN stays NaN and is not counted.

    Sorted ascending p_(1) <= ... <= p_(m): adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j)).
    Rejecting where the adjusted p < alpha controls the family-wise error rate at alpha."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    m = len(idx)
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()
