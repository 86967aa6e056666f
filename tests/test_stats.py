"""vidrec.evaluation.stats against values worked out by hand."""
from __future__ import annotations

import math

import pytest

from vidrec.evaluation.stats import binomial_cdf_half, discordant, mcnemar_exact, wilson_interval


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
