"""`vidrec experiment <name>`: aggregate one experiment's runs into a table, a figure, claims and a page.

Reads exactly the files `spec.plan(cfg, name)["inputs"]` names (the rule's inputs) and writes
`spec.OUTPUTS` under out_dir: table.csv (numbers), claims.csv (the paper's figures beside ours),
figure.png, summary.json (the display tables and text, which the comparison report renders when
experiments.in_report is true) and index.html (a self-contained page, like the report's).
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from vidrec.config import dataset_config
from vidrec import experiment_runs as spec
from vidrec.experiments import architecture_sweep, clip_length_transfer, clips_per_video, finetune_8_to_32
from vidrec.io import atomic_path, write_csv, write_json, write_text
from vidrec.report import figures, render
from vidrec.report.load import ArtifactReader
from vidrec.report.tables import NA, load_claims

log = logging.getLogger("vidrec.experiment")

CLAIMS_PATH = Path(__file__).with_name("claims.yaml")  # Tran et al.'s published figures

# experiment name -> its module's aggregate(cfg, plan, results_dir, reader, claims) -> common.Result
AGGREGATORS = {"clip_length_transfer": clip_length_transfer.aggregate, "finetune_8_to_32": finetune_8_to_32.aggregate,
               "clips_per_video": clips_per_video.aggregate, "architecture_sweep": architecture_sweep.aggregate}


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
    p = spec.plan(cfg, name)
    results, out = Path(results_dir), Path(out_dir)
    reader = ArtifactReader()
    claims = load_claims(CLAIMS_PATH)
    res = AGGREGATORS[name](cfg, p, results, reader, claims)
    claims_frame = pd.DataFrame(res.claims, columns=["id", "claim", "claimed", "source", "where", "claim_measured_on",
                                                     "measured", "measured_on"])
    write_csv(out / spec.OUTPUTS["table"], res.table)
    write_csv(out / spec.OUTPUTS["claims"], claims_frame)
    png = figures.png_bytes(res.figure)
    with atomic_path(out / spec.OUTPUTS["figure"]) as tmp:
        tmp.write_bytes(png)
    used = {claims_frame["source"].iloc[i] for i in range(len(claims_frame))} | (
        {claims["table2"]["source"]} if name == "architecture_sweep" else set())
    summary = {
        "name": name, "title": spec.TITLES[name], "dataset": cfg["dataset"], "split": p["split"],
        "synthetic": bool(dataset_config(cfg).get("synthetic")), "text": res.text, "caption": res.caption,
        "notes": res.notes, "show": _records(res.show), "claims_show": _records(claims_show(claims_frame, claims["sources"])),
        "sources": {k: v for k, v in claims["sources"].items() if k in used},
        "runs": sorted(p["runs"]), "inputs": [str(x.relative_to(results)) if x.is_relative_to(results) else str(x)
                                              for x in reader.read],
        "generated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    write_json(out / spec.OUTPUTS["summary"], summary)
    banners = []
    if summary["synthetic"]:
        banners.append(render.banner(
            f"Measured on the demo set ('{cfg['dataset']}'): synthetic videos with motion-only classes, narrow networks "
            "and few epochs. It exercises the experiment end to end; its numbers are not comparable with the paper's "
            "Kinetics-400 figures quoted as claims.", "demo"))
    html = render.page(f"vidrec experiment: {name}", f"{spec.TITLES[name]} | dataset {cfg['dataset']} | split "
                       f"{p['split']} | generated {summary['generated_utc']}", banners,
                       [(name, spec.TITLES[name], render.experiment_section(summary, png, spec.OUTPUTS["figure"]))])
    write_text(out / spec.OUTPUTS["html"], html)
    log.info("experiment %s: %s (%d inputs)", name, out / spec.OUTPUTS["html"], len(reader.read))
    return out / spec.OUTPUTS["html"]
