"""How the report and the experiment pages write numbers and names: never NaN, 'n/a' where a figure is missing."""
from __future__ import annotations

import math

import numpy as np

from vidrec.plan.catalogue import CARDS


NA = "n/a"


def is_num(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool) and math.isfinite(x)


def fmt(x, digits: int = 2) -> str:
    return f"{x:,.{digits}f}" if is_num(x) else NA


def fmt_acc(mean, lo=None, hi=None, std=None, n: int | None = None, unit: str = "") -> str:
    """Fraction -> 'mm.mm [lo, hi] (sd s.ss, n=N)' in percent.

    [lo, hi]: the 95% interval (top-1 clustered, top-5 Wilson); sd: the spread of the N runs (splits x seeds),
    shown only when there are two or more; n omitted for a single run's own row."""
    if not is_num(mean):
        return NA
    text = f"{mean * 100:.2f}{unit}"
    if is_num(lo) and is_num(hi):
        text += f" [{lo * 100:.2f}, {hi * 100:.2f}]"
    if n is None:
        return text
    spread = f"sd {std * 100:.2f}, " if n > 1 and is_num(std) else ""
    return f"{text} ({spread}n={n})"


def fmt_p(p) -> str:
    """'p = 0.267' (3 significant digits) or 'p < 0.0001'; the verdict uses the exact value, not this text."""
    if not is_num(p):
        return NA
    return "p < 0.0001" if p < 1e-4 else f"p = {p:.3g}"


def fmt_duration(seconds) -> str:
    if not is_num(seconds):
        return NA
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    if s >= 60:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{seconds:.1f} s"


def family(arch: str) -> str:
    """Display name of the architecture's family ('P3D ResNet'); a name the catalogue lacks as is."""
    return CARDS[arch].family.name if arch in CARDS else arch
