"""vidrec.evaluation.stats against values worked out by hand and against independent computations
(enumeration of every sign pattern, a seeded cluster bootstrap)."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from vidrec.evaluation.stats import (binomial_cdf_half, clustered_accuracy, clustered_paired_test, discordant, holm,
                                     mcnemar_exact, sign_flip_pvalue, wilson_interval, wilson_share)


def test_wilson_by_hand():
    # Wilson: centre = (p + z^2/2n) / (1 + z^2/n), half = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2)
    # z = 1.96, n = 10: z^2 = 3.8416, z^2/n = 0.38416, 1 + z^2/n = 1.38416, z^2/2n = 0.19208
    # k = 0: centre = half = 0.19208 / 1.38416, so (0, 0.38416 / 1.38416) = (0, 0.277540...)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.38416 / 1.38416))
    assert wilson_interval(0, 10)[1] == pytest.approx(0.27754, abs=1e-5)
    # k = 5: centre = 0.69208 / 1.38416 = 0.5; half = 1.96 / 1.38416 * sqrt(0.025 + 0.009604)
    #        = 1.4160212 * 0.1860215 = 0.263410...
    lo, hi = wilson_interval(5, 10)
    assert (lo, hi) == (pytest.approx(0.236590, abs=1e-6), pytest.approx(0.763410, abs=1e-6))
    # k = n mirrors k = 0
    assert wilson_interval(10, 10) == (pytest.approx(1 - 0.38416 / 1.38416), 1.0)


def test_wilson_properties():
    for n in (1, 7, 100, 3783):
        for k in {0, 1, n // 3, n - 1, n}:
            lo, hi = wilson_interval(k, n)
            assert 0.0 <= lo <= k / n <= hi <= 1.0
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    narrow, wide = wilson_interval(500, 1000), wilson_interval(5, 10)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    assert wilson_interval(5, 10, z=2.576)[0] < wilson_interval(5, 10)[0]  # 99% is wider than 95%
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_binomial_cdf_by_hand():
    assert binomial_cdf_half(0, 5) == 1 / 32
    assert binomial_cdf_half(1, 2) == 3 / 4           # outcomes 00, 01, 10 of 4
    assert binomial_cdf_half(2, 10) == (1 + 10 + 45) / 1024
    assert binomial_cdf_half(10, 10) == 1.0 and binomial_cdf_half(-1, 3) == 0.0


def test_mcnemar_exact_by_hand():
    assert mcnemar_exact(0, 5) == 2 / 32 == mcnemar_exact(5, 0)         # 0.0625
    assert mcnemar_exact(1, 1) == 1.0                                   # 2 * 3/4 capped at 1
    assert mcnemar_exact(0, 0) == 1.0                                   # no discordant pair: no evidence
    assert mcnemar_exact(2, 8) == 2 * 56 / 1024                         # 0.109375
    assert mcnemar_exact(3, 5) == 2 * (1 + 8 + 28 + 56) / 256           # 0.7265625
    assert mcnemar_exact(0, 6) == 2 / 64 < 0.05 < mcnemar_exact(1, 5) == 2 * 7 / 64
    # large counts stay exact (integer sums) without overflow: near the normal approximation's 7.7e-6
    assert 5e-6 < mcnemar_exact(900, 1100) < 1.2e-5
    assert mcnemar_exact(1000, 1000) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_discordant_counts():
    a = [True, True, False, False, True]
    b = [True, False, True, False, False]
    assert discordant(a, b) == (2, 1) and discordant(b, a) == (1, 2)
    with pytest.raises(ValueError):
        discordant(a, b[:3])


# ----------------------------------------------------------------------------- clustered test videos
def test_wilson_share_is_wilson_at_any_n():
    for k, n in ((0, 10), (5, 10), (7, 10), (10, 10), (3, 1000)):
        assert wilson_share(k / n, n) == pytest.approx(wilson_interval(k, n), abs=1e-15)
    lo, hi = wilson_share(0.5, 2.5)                      # a fractional effective n lies between its neighbours
    assert wilson_share(0.5, 3)[0] > lo > wilson_share(0.5, 2)[0] and hi < 1
    with pytest.raises(ValueError):
        wilson_share(0.5, 0)


def test_clustered_accuracy_reduces_to_wilson_with_one_video_per_cluster():
    y = [1] * 7 + [0] * 3
    c = clustered_accuracy(y, clusters=range(10))
    # sum_i (y_i - p)^2 / n^2 = n p (1 - p) / n^2: the binomial variance, so the design effect is 1
    assert (c.accuracy, c.n_videos, c.n_clusters, c.n_seeds) == (0.7, 10, 10, 1)
    assert c.variance == pytest.approx(0.7 * 0.3 / 10) and c.design_effect == 1.0 and c.effective_n == 10
    assert (c.lo, c.hi) == pytest.approx(wilson_interval(7, 10), abs=1e-12)


def test_a_cluster_of_identical_outcomes_counts_once():
    # 10 clusters of 3 identical videos (7 right, 3 wrong): variance sum_c 9 (y_c - p)^2 / 30^2 = 0.7 * 0.3 / 10,
    # three times the binomial 0.7 * 0.3 / 30: design effect 3, effective n 10, the interval of 7 of 10 videos
    y = np.repeat([1] * 7 + [0] * 3, 3)
    c = clustered_accuracy(y, clusters=np.repeat(range(10), 3))
    assert c.design_effect == pytest.approx(3.0) and c.effective_n == pytest.approx(10.0) and c.n_clusters == 10
    assert (c.lo, c.hi) == pytest.approx(wilson_interval(7, 10), abs=1e-12)
    # the same 30 videos, independent: the plain Wilson interval of 21 of 30, narrower
    flat = clustered_accuracy(y, clusters=range(30))
    assert (flat.lo, flat.hi) == pytest.approx(wilson_interval(21, 30), abs=1e-12) and flat.hi - flat.lo < c.hi - c.lo


def test_clustered_accuracy_by_hand():
    # clusters {1, 1}, {1, 0}, {0, 0}, {1, 1}: p = 5/8; k_c - p n_c = 0.75, -0.25, -1.25, 0.75, squares sum 2.75;
    # variance 2.75 / 64 = 0.04296875; binomial (5/8)(3/8)/8 = 0.029296875; design effect 22/15, n_eff 60/11
    c = clustered_accuracy([1, 1, 1, 0, 0, 0, 1, 1], ["a", "a", "b", "b", "c", "c", "d", "d"])
    assert c.variance == pytest.approx(0.04296875) and c.design_effect == pytest.approx(22 / 15)
    assert c.effective_n == pytest.approx(60 / 11) and (c.lo, c.hi) == pytest.approx(wilson_share(0.625, 60 / 11))
    # mixed clusters (more spread inside than between) would give a design effect below 1: kept at 1
    assert clustered_accuracy([1, 0, 1, 0], ["a", "a", "b", "b"]).design_effect == 1.0
    # every video right: no variance to estimate; each cluster counts as one trial (4 of 4)
    full = clustered_accuracy([1] * 8, list("aabbccdd"))
    assert not full.estimated and full.effective_n == 4 and (full.lo, full.hi) == pytest.approx(wilson_interval(4, 4))


def test_clustered_variance_matches_a_cluster_bootstrap():
    """An independent computation: the variance of the accuracy over 20,000 clusters-with-replacement draws."""
    rng = np.random.default_rng(7)
    sizes = rng.integers(3, 8, size=40)
    clusters = np.repeat(np.arange(40), sizes)
    rate = np.repeat(rng.uniform(0.3, 0.95, size=40), sizes)    # clusters differ: a design effect above 1
    y = (rng.random(len(clusters)) < rate).astype(int)
    c = clustered_accuracy(y, clusters)
    k, n = np.bincount(clusters, weights=y), np.bincount(clusters)
    draws = np.random.default_rng(0).multinomial(40, [1 / 40] * 40, size=20_000)
    boot = (draws @ k) / (draws @ n)
    assert boot.var() == pytest.approx(c.variance, rel=0.05) and c.design_effect > 1.2
    # reproducible: the same seed draws the same replicates
    again = np.random.default_rng(0).multinomial(40, [1 / 40] * 40, size=20_000)
    assert ((again @ k) / (again @ n)).var() == boot.var()


def test_seed_variation_widens_the_interval():
    # 4 seeds on 10 videos, each seed all right or all wrong (1, 0, 1, 1): the videos agree (no cluster variance),
    # the seeds do not: variance = var(1, 0, 1, 1; ddof 1) / 4 = 0.25 / 4; binomial 0.75 * 0.25 / 10
    y = np.array([[1] * 10, [0] * 10, [1] * 10, [1] * 10])
    c = clustered_accuracy(y, clusters=range(10))
    assert c.n_seeds == 4 and c.accuracy == 0.75 and c.variance == pytest.approx(0.0625)
    assert c.design_effect_clusters == 1.0 and c.design_effect == pytest.approx(0.0625 / (0.75 * 0.25 / 10))
    # a second seed identical to the first adds no variation: the one-seed interval
    one = np.array([1] * 7 + [0] * 3)
    assert clustered_accuracy(np.stack([one, one]), range(10)).hi == pytest.approx(clustered_accuracy(one, range(10)).hi)
    with pytest.raises(ValueError):
        clustered_accuracy([1, 2], [0, 1])


def _sign_flip_by_enumeration(d: list[int]) -> float:
    """Every one of the 2^K sign patterns, counted: the definition, no convolution."""
    observed = abs(sum(d))
    hits = sum(abs(sum(s * v for s, v in zip(signs, d))) >= observed for signs in itertools.product((1, -1), repeat=len(d)))
    return hits / 2 ** len(d)


def test_sign_flip_is_exact_mcnemar_with_one_video_per_cluster():
    for b in range(0, 13):
        for c in range(0, 13):
            assert sign_flip_pvalue([1] * b + [-1] * c + [0] * 3) == pytest.approx(mcnemar_exact(b, c), abs=1e-12)


def test_sign_flip_by_hand_and_by_enumeration():
    # 8 vs 1 discordant videos in 5 clusters (4 clusters +2, one -1): |T| >= 7 needs the four +2s alike (2 ways)
    # and either sign of the 1 (2 ways): 4 of 32 patterns, p = 0.125 (the same videos unclustered: McNemar 0.039)
    assert sign_flip_pvalue([2, 2, 2, 2, -1]) == 0.125 == _sign_flip_by_enumeration([2, 2, 2, 2, -1])
    assert mcnemar_exact(8, 1) == pytest.approx(0.0390625)
    rng = np.random.default_rng(3)
    for _ in range(20):
        d = rng.integers(-4, 5, size=int(rng.integers(1, 11))).tolist()
        assert sign_flip_pvalue(d) == pytest.approx(_sign_flip_by_enumeration(d), abs=1e-12), d
    assert sign_flip_pvalue([0, 0]) == 1.0 and sign_flip_pvalue([]) == 1.0


def test_clustered_paired_test():
    # A right on clusters a, b (2 videos each), B right on cluster c; cluster d: both right
    a = [1, 1, 1, 1, 0, 0, 1, 1]
    b = [0, 0, 0, 0, 1, 1, 1, 1]
    groups = list("aabbccdd")
    t = clustered_paired_test(a, b, groups)
    assert (t.a_only, t.b_only, t.clusters_a, t.clusters_b, t.n_clusters) == (4, 2, 2, 1, 4)
    assert t.difference == pytest.approx(0.25) and t.p == pytest.approx(_sign_flip_by_enumeration([2, 2, -2]))
    # clusters of identical outcomes count once: McNemar on the 2 vs 1 discordant clusters
    assert t.p == pytest.approx(mcnemar_exact(2, 1))
    # one video per cluster: the exact McNemar test of the discordant videos
    assert clustered_paired_test(a, b, range(8)).p == pytest.approx(mcnemar_exact(4, 2))
    # every seed used: two seeds of A (one as above, one all right) against one of B; per video A's mean
    two = clustered_paired_test(np.array([a, [1] * 8]), b, groups)
    assert two.difference == pytest.approx(np.mean([(x + 1) / 2 - y for x, y in zip(a, b)]))
    assert two.p == pytest.approx(_sign_flip_by_enumeration([2 * 1 - 0, 2 * 1 - 0, 1 - 2, 2 - 2]))
    assert two.hi - two.lo > 0 and clustered_paired_test(a, a, groups).p == 1.0
    with pytest.raises(ValueError):
        clustered_paired_test(a, b[:5], groups)


def test_holm_by_hand():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> running max 0.02, 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.039, 0.5]) == pytest.approx([0.078, 0.5])             # a family of two doubles the smallest
    assert holm([0.5, 0.9]) == [1.0, 1.0] and holm([0.6]) == [0.6]       # capped at 1; one test unchanged
    assert holm([0.01, 0.02, 0.04]) == pytest.approx([0.03, 0.04, 0.04])  # 0.03, 0.04, 0.04: never below a smaller p
    adjusted = holm([0.02, float("nan"), 0.03])                          # NaN: left out of the family
    assert adjusted[0] == pytest.approx(0.04) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.04)
    assert holm([]) == []
