# Report stage: the comparison report from exactly the artifacts it shows.
# Every figure and table is also flagged with report() for `snakemake --report report.zip`;
# captions live in workflow/report/ (paths relative to this file).
from pathlib import Path

from vidrec.plan.layout import CLAIMS_FILE
from vidrec.report.load import input_files
from vidrec.report.sections import section_titles

# What `vidrec report` reads: vidrec/report/load.py's input_files() names them, here and in the job.
REPORT_INPUTS = {
    **{kind: [str(p) for p in paths] for kind, paths in input_files(config, LAYOUT, BUCKETS).items()},
    # shown in the report: a changed claim re-renders it (a changed configuration: params.config)
    "claims": str(CLAIMS_FILE),
}
# output key (vidrec.plan.layout.REPORT_FILES) -> caption (workflow/report/<caption>.rst), section id
# (vidrec/report/sections: its numbered title is the category; None: the page itself)
REPORT_CAPTIONS = {
    "html": ("index", None),
    "accuracy": ("accuracy", "accuracy"),
    "accuracy_splits": ("accuracy_per_split", "accuracy"),
    "paired": ("paired_comparison", "accuracy"),
    "claims": ("claims", "claims"),
    "curves": ("training_curves", "curves"),
    "efficiency": ("efficiency", "efficiency"),
    "cost": ("accuracy_vs_cost", "efficiency"),
    "per_class": ("per_class_diff", "per-class"),
    "per_class_fig": ("per_class_diff_fig", "per-class"),
    "confusion": ("confusion", "per-class"),
    "audit": ("data_audit", "data"),
    "shards": ("shards", "data"),
    "shards_fig": ("shards_fig", "data"),
    "skipped": ("skipped_repaired", "data"),
    "provenance": ("provenance", "provenance"),
    "forecast": ("forecast", "forecast"),
}
REPORT_SECTIONS = section_titles(config)
# A rehearsal's forecast schedules the real DAG on what this command was given: --cores (0 with a
# cluster executor: no local limit), --jobs, --resources gpu=N (else every visible GPU).
try:
    _FORECAST_CORES = int(workflow.cores)
except WorkflowError:
    _FORECAST_CORES = 0
_FORECAST_GPUS = getattr(workflow.global_resources.get("gpu"), "value", None)  # a Resource, when given
FORECAST_ARGS = (
    f"--cores {_FORECAST_CORES} --jobs {workflow.nodes or _FORECAST_CORES}"
    + (f" --gpus {_FORECAST_GPUS}" if _FORECAST_GPUS is not None else "")
    if rehearsal.active(config) else "")
REPORT_OUTPUTS = {
    key: report(
        str(LAYOUT.report_file(key)),
        caption=f"../workflow/report/{caption}.rst",
        category=REPORT_SECTIONS[section] if section else "0. Comparison report",
    )
    for key, (caption, section) in REPORT_CAPTIONS.items()
}


rule render_report:
    input:
        **REPORT_INPUTS,
    output:
        **REPORT_OUTPUTS,
    params:
        cli=CLI,
        config=config,  # the report shows the configuration as run
        out_dir=lambda w, output: str(Path(output.html).parent),
        forecast=FORECAST_ARGS,
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    threads: 1
    conda:
        ENV
    shell:
        "{params.cli} report --out-dir {params.out_dir} {params.forecast} > {log} 2>&1"
