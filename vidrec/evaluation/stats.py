"""How sure the report can be of an accuracy and of a difference: closed-form, exact, dependency-free.

An accuracy measured on n test videos is a binomial proportion, so it carries a Wilson score
interval (good coverage even at 0 or n correct, where the normal approximation collapses). Two
models tested on the same videos are compared with the exact McNemar test: only the videos one
model gets right and the other misses carry information, and under "no difference" each of them
is a fair coin.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

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
