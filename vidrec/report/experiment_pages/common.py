"""What the experiment aggregators share: the Result they return, the claim rows and the text describing
a run, a clip spec and the data measured on. The experiments are those of Tran et al., CVPR 2018,
"A Closer Look at Spatiotemporal Convolutions for Action Recognition".
"""
from __future__ import annotations

import pandas as pd

from vidrec.plan.config import clip_size_text, dataset_config
from vidrec.report.formatting import NA, is_num
from vidrec.report.run_text import protocol_text
from vidrec.plan.runs import RunSettings, resolve_runs


def net_key(arch: str) -> str:
    """'r2plus1d_18' -> 'r2plus1d' (the paper's network, without the depth)."""
    head, _, depth = arch.rpartition("_")
    return head if depth.isdigit() else arch


def pct(x) -> str:
    return f"{x * 100:.1f}" if is_num(x) else NA


def pp(x) -> str:
    """A difference of fractions in percentage points, signed."""
    return f"{x * 100:+.1f} points" if is_num(x) else NA


def clip_text(cfg: dict, name: str) -> str:
    c = cfg["clips"][name]
    return f"{name} ({c['frames']} frames, {clip_size_text(c)}, {c['sampling']}, {c['clips_per_video']} per video)"


def settings(cfg: dict, run: str) -> RunSettings:
    """One run's resolved settings (the experiment's runs are generated ones: vidrec/plan/runs.py)."""
    return resolve_runs(cfg)[run]


def run_setting(cfg: dict, run: str) -> str:
    """'r2plus1d_18, tran, overridden: ...: 6 epochs, ...' (vidrec/report/run_text.py's protocol_text, the one
    description of a run), then how its weights started when another run initialises it."""
    r = settings(cfg, run)
    return f"{r.arch}, {protocol_text(r)}" + (f"; {r.initialisation}" if r.init_from_run else "")


def dataset_text(cfg: dict) -> str:
    ds = dataset_config(cfg)
    return f"{cfg['dataset']} (synthetic demo set)" if ds.get("synthetic") else cfg["dataset"]


class Result:
    """What one aggregator returns: numeric table, display table, claims rows, figure and text."""

    def __init__(self, table: pd.DataFrame, show: pd.DataFrame, claims: list[dict], figure, text: list[str],
                 caption: str, notes: list[str] | None = None, sources: list[str] | None = None):
        self.table, self.show, self.claims, self.figure = table, show, claims, figure
        self.text, self.caption, self.notes = text, caption, notes or []
        self.sources = sources or []  # sources the page cites beyond its claims' (claims.yaml `sources`)


def claim_rows(claims: dict, measured: dict[str, str], measured_on: str) -> list[dict]:
    """One row per claim of the experiment's claims.yaml block, beside its measurement (`measure` names it)."""
    rows = []
    for c in claims.get("claims", []):
        rows.append({"id": c["id"], "claim": c["what"], "claimed": c["claimed"], "source": c["source"],
                     "where": c["where"], "claim_measured_on": " ".join(c["setting"].split()),
                     "measured": measured.get(c.get("measure"), "not measured by this pipeline"),
                     "measured_on": measured_on})
    return rows


def clip_frames(cfg: dict, clip: str) -> int:
    return int(cfg["clips"][clip]["frames"])


def measured_on_text(cfg: dict, p: dict) -> str:
    from vidrec.core.provenance import hardware

    hw = hardware()
    return (f"{dataset_text(cfg)}, split {p['split']}; {hw.get('cpu')}"
            + (f", GPU {', '.join(hw['gpus'])}" if hw.get("gpus") else ""))
