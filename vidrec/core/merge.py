"""Recursive merge of nested settings (protocol overrides over protocols, experiment models over defaults)."""
from __future__ import annotations

import copy


def deep_merge(base: dict, extra: dict | None) -> dict:
    """Recursive dict merge (extra wins) without mutating either input."""
    out = copy.deepcopy(base)
    for k, v in (extra or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out
