"""The comparison report's sections: their names (the one spelling the page's headings and
`snakemake --report`'s categories both ask) and one module per section building its tables.

    accuracy     1. Accuracy (per model and per run)     accuracy.py; its paired comparison: paired.py
    claims       2. Claims beside measurements            claims.py
    curves       3. Training curves                       (a figure only: vidrec/report/figures.py)
    efficiency   4. Efficiency                            efficiency.py
    per-class    5. Per-class view                        per_class.py
    data         6. Data                                  data.py
    provenance   7. Provenance                            runs.py (the runs' seeds; the rest: vidrec/core/provenance.py)
    experiments  Experiments of Tran et al.               (their summary files: vidrec/report/experiment_pages/)
    forecast     Forecast                                 vidrec/report/forecast.py

This module is torch- and matplotlib-free: rules/report.smk and rules/experiments.smk read it at parse time.
"""
from __future__ import annotations

from vidrec.plan import rehearsal
from vidrec.plan.experiment_runs import report_files

# section id (the page's anchor) -> name, in the page's order
SECTIONS = {"accuracy": "Accuracy", "claims": "Claims beside measurements", "curves": "Training curves",
            "efficiency": "Efficiency", "per-class": "Per-class view", "data": "Data", "provenance": "Provenance",
            "experiments": "Experiments of Tran et al.", "forecast": "Forecast"}


def section_titles(cfg: dict) -> dict[str, str]:
    """Section id -> 'N. Name' of every section the report of `cfg` shows, in order, numbered: the
    experiments' only when it reads them (experiments.in_report, and one configured), the forecast of a real run 'Forecast beside actual'
    (set beside its rehearsal's). The experiments' id always maps to a title (unnumbered when the
    report leaves them out: `snakemake --report` still files their pages under it)."""
    shown = [s for s in SECTIONS if s != "experiments" or report_files(cfg)]
    names = {**SECTIONS, "forecast": SECTIONS["forecast"] + ("" if rehearsal.active(cfg) else " beside actual")}
    titles = {s: f"{i}. {names[s]}" for i, s in enumerate(shown, 1)}
    return {**titles, "experiments": titles.get("experiments", names["experiments"])}
