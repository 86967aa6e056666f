"""`vidrec experiment <name>`: aggregate one experiment's runs into a table, a figure, claims and a page.

Reads exactly the files `experiment_runs.plan(cfg, name)["inputs"]` names and the experiment's block of
vidrec/plan/experiments/claims.yaml (the rule's inputs), and writes vidrec.plan.layout.EXPERIMENT_FILES under out_dir: table.csv (numbers), claims.csv (the paper's figures beside ours),
figure.png, summary.json (the display tables and text, which the comparison report renders when
experiments.in_report is true) and index.html (a self-contained page, like the report's).
"""
from __future__ import annotations

import importlib
import logging
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from vidrec.plan.config import dataset_config
from vidrec.plan.experiment_runs import plan
from vidrec.plan.experiments import CLAIMS_FILE
from vidrec.core.io import atomic_path, write_csv, write_json, write_text
from vidrec.plan.layout import EXPERIMENT_FILES
from vidrec.report import figures, render
from vidrec.report.experiment_pages.common import Result
from vidrec.report.formatting import NA
from vidrec.report.load import ArtifactReader
from vidrec.report.sections.claims import load_claims

log = logging.getLogger("vidrec.experiment")


def aggregate(cfg: dict, p: dict, results: Path, reader: ArtifactReader, claims: dict) -> Result:
    """The experiment's own module's aggregate (vidrec/report/experiment_pages/<name>.py): `claims` is its
    block of claims.yaml."""
    module = importlib.import_module(f"vidrec.report.experiment_pages.{p['name']}")
    return module.aggregate(cfg, p, results, reader, claims)


# ----------------------------------------------------------------------------- page
def _records(frame: pd.DataFrame) -> dict:
    return {"columns": list(frame.columns), "rows": frame.astype(object).where(frame.notna(), NA).values.tolist()}


def claims_show(claims: pd.DataFrame, sources: dict) -> pd.DataFrame:
    if claims.empty:
        return claims
    return pd.DataFrame({
        "Claim": claims["claim"], "Claimed (claim)": claims["claimed"],
        "Source": [f"{s}: {w}" for s, w in zip(claims["source"], claims["where"])],
        "Claim measured on": claims["claim_measured_on"],
        "Measured here": claims["measured"], "Measured on": claims["measured_on"],
    })


def run_experiment(cfg: dict, name: str, results_dir: Path, out_dir: Path) -> Path:
    """Aggregate experiment `name` from results_dir into out_dir; return the page's path."""
    p = plan(cfg, name)
    results, out = Path(results_dir), Path(out_dir)
    reader = ArtifactReader()
    claims = load_claims(CLAIMS_FILE)
    res = aggregate(cfg, p, results, reader, claims.get(name) or {})
    claims_frame = pd.DataFrame(res.claims, columns=["id", "claim", "claimed", "source", "where", "claim_measured_on",
                                                     "measured", "measured_on"])
    write_csv(out / EXPERIMENT_FILES["table"], res.table)
    write_csv(out / EXPERIMENT_FILES["claims"], claims_frame)
    png = figures.png_bytes(res.figure)
    with atomic_path(out / EXPERIMENT_FILES["figure"]) as tmp:
        tmp.write_bytes(png)
    used = set(claims_frame["source"]) | set(res.sources)
    summary = {
        "name": name, "title": p["title"], "dataset": cfg["dataset"], "split": p["split"],
        "synthetic": bool(dataset_config(cfg).get("synthetic")), "text": res.text, "caption": res.caption,
        "notes": res.notes, "show": _records(res.show), "claims_show": _records(claims_show(claims_frame, claims["sources"])),
        "sources": {k: v for k, v in claims["sources"].items() if k in used},
        "runs": sorted(p["runs"]), "inputs": [str(x.relative_to(results)) if x.is_relative_to(results) else str(x)
                                              for x in reader.read],
        "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    write_json(out / EXPERIMENT_FILES["summary"], summary)
    banners = []
    if summary["synthetic"]:
        banners.append(render.banner(
            f"Measured on the demo set ('{cfg['dataset']}'): synthetic videos with motion-only classes, narrow networks "
            "and few epochs. It exercises the experiment end to end; its numbers are not comparable with the paper's "
            "Kinetics-400 figures quoted as claims.", "demo"))
    html = render.page(f"vidrec experiment: {name}", f"{p['title']} | dataset {cfg['dataset']} | split "
                       f"{p['split']} | generated {summary['generated_utc']}", banners,
                       [(name, p["title"], render.experiment_section(summary, png, EXPERIMENT_FILES["figure"]))])
    write_text(out / EXPERIMENT_FILES["html"], html)
    log.info("experiment %s: %s (%d inputs)", name, out / EXPERIMENT_FILES["html"], len(reader.read))
    return out / EXPERIMENT_FILES["html"]
