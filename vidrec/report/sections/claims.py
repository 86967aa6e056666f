"""Section 2, Claims beside measurements: the published figures of claims.yaml measured on the active dataset's
benchmark, each beside what this run measured."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from vidrec.plan.layout import CLAIMS_FILE
from vidrec.report.formatting import fmt, fmt_acc, fmt_duration, is_num
from vidrec.report.load import Results
from vidrec.report.run_text import model_args_text
from vidrec.report.summary import ACC


def load_claims(path: Path = CLAIMS_FILE) -> dict:
    """Published figures and their sources (claims.yaml: the report's by default)."""
    return yaml.safe_load(Path(path).read_text())


def _measured(summary: pd.DataFrame, model: str, metric: str, unit: str) -> tuple[float, str]:
    r = summary.loc[model]
    value = r.get(metric, np.nan)
    if metric in ACC:
        return value * 100, fmt_acc(value, r[f"{metric}_lo"], r[f"{metric}_hi"], r[f"{metric}_std"],
                                    int(r["n_runs"]), unit=" %")
    if metric == "practical_time_ratio":
        return value * 100, (f"{value * 100:.1f} %" if is_num(value) else
                             "n/a (needs this model as model A of the compared pair, report.primary_comparison)")
    if unit == "s":
        return value, fmt_duration(value)
    return value, f"{fmt(value, 1)} {unit}"


def _claim_measurements(res: Results, summary: pd.DataFrame, claim: dict, spec: dict, base: dict,
                        demo: str) -> list[dict]:
    """The rows of one claim's `measure` entry: one per model of the architecture it names."""
    models = [m for m in summary.index if summary.loc[m, "arch"].startswith(spec["arch"])]
    if spec["metric"] == "practical_time_ratio":
        models = [m for m in models if is_num(summary.loc[m, "practical_time_ratio"])] or models[:1]
    label = f"{spec['label']}: " if spec.get("label") else ""
    if not models:
        return [{**base, "model": "", "measured_value": np.nan,
                 "measured": f"{label}not measured: no {spec['arch']}* model in this configuration", "measured_on": ""}]
    rows = []
    for m in models:
        r = summary.loc[m]
        v, text = _measured(summary, m, spec["metric"], claim["unit"])
        details = [r["arch"]] if r["arch"] != m else []
        details += [model_args_text(res.settings[m])] if model_args_text(res.settings[m]) else []
        on = (f"{m}{' (' + ', '.join(details) + ')' if details else ''} on {res.dataset}{demo}, "
              f"split{'s' if r['n_splits'] > 1 else ''} {r['splits']}, seed{'s' if r['n_seeds'] > 1 else ''} "
              f"{r['seeds']}, {r['device']}, {fmt(r['threads'], 0)} threads")
        rows.append({**base, "model": m, "measure": spec["metric"], "measured_value": v, "measured": label + text,
                     "measured_on": on})
    return rows


def dataset_claims(res: Results, claims: dict) -> list[dict]:
    """The claims measured on the active dataset's benchmark (claims.yaml `dataset` = its format)."""
    return [c for c in claims["claims"] if c["dataset"] == res.cfg["datasets"][res.dataset]["format"]]


def claims_table(res: Results, summary: pd.DataFrame, claims: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    demo = " (synthetic demo set)" if res.synthetic else ""
    rows = []
    for c in dataset_claims(res, claims):
        value = c["value"]
        base = {"id": c["id"], "kind": c["kind"], "claim": c["what"], "claimed": c["claimed"],
                "claimed_value": "-".join(str(v) for v in value) if isinstance(value, list) else value,
                "unit": c["unit"], "source": c["source"], "source_text": " ".join(claims["sources"][c["source"]].split()),
                "where": c["where"], "setting": " ".join(c["setting"].split()),
                "note": " ".join(c.get("note", "").split())}
        specs = c.get("measure") or []
        for spec in [specs] if isinstance(specs, dict) else specs:  # one measure, or several labelled ones
            rows += _claim_measurements(res, summary, c, spec, base, demo)
        if not specs:
            rows.append({**base, "model": "", "measured_value": np.nan, "measured": "not measured by this pipeline",
                         "measured_on": ""})
    data = pd.DataFrame(rows, columns=None if rows else [
        "id", "kind", "claim", "claimed", "claimed_value", "unit", "source", "source_text", "where", "setting",
        "note", "model", "measure", "measured_value", "measured", "measured_on"])
    show = pd.DataFrame({
        "Claim": data["claim"], "Claimed (claim)": data["claimed"],
        "Source": [f"{s}: {w}" for s, w in zip(data["source"], data["where"])],
        "Claim's setting": data["setting"], "Measured here": data["measured"],
        "Measured on": data["measured_on"], "Note": data["note"],
    })
    return data, show
