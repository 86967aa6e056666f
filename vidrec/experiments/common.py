"""What the experiment aggregators share: the Result they return, the claim rows and the text describing
a run, a clip spec and the data measured on. The experiments are those of Tran et al., CVPR 2018,
"A Closer Look at Spatiotemporal Convolutions for Action Recognition".
"""
from __future__ import annotations

import pandas as pd

from vidrec.config import clip_size_text, dataset_config
from vidrec.data.views import train_clips_text
from vidrec.report.tables import NA, is_num, overrides_text, views_of
from vidrec.runs import RunSettings, resolve_runs


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
    """One run's resolved settings (the experiment's runs are generated ones: vidrec/runs.py)."""
    return resolve_runs(cfg)[run]


def run_setting(cfg: dict, run: str) -> str:
    """'r2plus1d_18, tran protocol, overridden: epochs 6, ..., base_width 8: 6 epochs, ...' (the overrides
    name the run's constructor arguments too)."""
    r = settings(cfg, run)
    p = r.protocol
    sched = (p.get("scheduler") or {}).get("name") or "no schedule"
    overridden = overrides_text(r)
    text = (f"{r.arch}, {r.protocol_name} protocol{f', overridden: {overridden}' if overridden else ''}: "
            f"{p['epochs']} epochs, {p['optimizer']['name']} "
            f"lr {p['optimizer']['lr']:g}, {sched}, batch {p['batch_size']}, "
            f"train clips {train_clips_text(p['train_clips'], r.clip['sampling'])}, "
            f"test views {views_of(r)[0].text()}")
    if r.init_from_run:
        text += f", initialised from {r.init_from_run}"
    return "; ".join([text, *r.adjustments])


def dataset_text(cfg: dict) -> str:
    ds = dataset_config(cfg)
    return f"{cfg['dataset']} (synthetic demo set)" if ds.get("synthetic") else cfg["dataset"]


class Result:
    """What one aggregator returns: numeric table, display table, claims rows, figure and text."""

    def __init__(self, table: pd.DataFrame, show: pd.DataFrame, claims: list[dict], figure, text: list[str],
                 caption: str, notes: list[str] | None = None):
        self.table, self.show, self.claims, self.figure = table, show, claims, figure
        self.text, self.caption, self.notes = text, caption, notes or []


def claim_rows(claims: dict, name: str, measured: dict[str, str], measured_on: str) -> list[dict]:
    rows = []
    for c in claims["claims"].get(name, []):
        rows.append({"id": c["id"], "claim": c["what"], "claimed": c["claimed"], "source": c["source"],
                     "where": c["where"], "claim_measured_on": " ".join(c["setting"].split()),
                     "measured": measured.get(c.get("measure"), "not measured by this pipeline"),
                     "measured_on": measured_on})
    return rows


def clip_frames(cfg: dict, clip: str) -> int:
    return int(cfg["clips"][clip]["frames"])


def measured_on_text(cfg: dict, p: dict) -> str:
    from vidrec.provenance import hardware

    hw = hardware()
    return (f"{dataset_text(cfg)}, split {p['split']}; {hw.get('cpu')}"
            + (f", GPU {', '.join(hw['gpus'])}" if hw.get("gpus") else ""))
