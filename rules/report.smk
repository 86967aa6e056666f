# Report stage: the comparison report from exactly the artifacts it shows.
# Every figure and table is also flagged with report() for `snakemake --report report.zip`;
# captions live in workflow/report/ (paths relative to this file).
from pathlib import Path

from vidrec.report.build import OUTPUTS as REPORT_FILES
from vidrec.report.tables import CLAIMS_PATH

REPORT_DIR = f"{RESULTS}/report"
REPORT_RUNS = [(s, m) for s in SPLITS for m in MODELS]
# What `vidrec report` reads (vidrec/report/load.py names the same files).
REPORT_INPUTS = {
    **{
        kind: [f"{run_dir(s, m)}/{name}" for s, m in REPORT_RUNS]
        for kind, name in [
            ("evaluations", "evaluation.json"),
            ("metrics", "metrics.csv"),
            ("train", "train.json"),
            ("per_class", "per_class.csv"),
            ("confusion", "confusion.csv"),
        ]
    },
    "audit": rules.manifest.output.audit,
    "videos": rules.manifest.output.videos,
    "shard_stats": [p for c in sorted({run_clip(m) for m in MODELS}) for p in shard_stats(c)],
    # experiments.in_report: true -> the experiments' tables and figures (else nothing)
    "experiments": experiment_report_files(),
    # shown in the report: a changed configuration or claim re-renders it
    "config": CONFIG_AS_RUN,
    "claims": str(CLAIMS_PATH),
}
# output key (vidrec.report.build.OUTPUTS) -> caption (workflow/report/<caption>.rst), category
REPORT_CAPTIONS = {
    "html": ("index", "0. Comparison report"),
    "accuracy": ("accuracy", "1. Accuracy"),
    "claims": ("claims", "2. Claims beside measurements"),
    "curves": ("training_curves", "3. Training curves"),
    "efficiency": ("efficiency", "4. Efficiency"),
    "cost": ("accuracy_vs_cost", "4. Efficiency"),
    "per_class": ("per_class_diff", "5. Per class"),
    "per_class_fig": ("per_class_diff_fig", "5. Per class"),
    "confusion": ("confusion", "5. Per class"),
    "audit": ("data_audit", "6. Data"),
    "shards": ("shards", "6. Data"),
    "shards_fig": ("shards_fig", "6. Data"),
    "skipped": ("skipped_repaired", "6. Data"),
    "provenance": ("provenance", "7. Provenance"),
}
REPORT_OUTPUTS = {
    key: report(
        f"{REPORT_DIR}/{REPORT_FILES[key]}",
        caption=f"../workflow/report/{caption}.rst",
        category=category,
    )
    for key, (caption, category) in REPORT_CAPTIONS.items()
}


rule render_report:
    input:
        **REPORT_INPUTS,
    output:
        **REPORT_OUTPUTS,
    params:
        cli=CLI,
        results=lambda w, input: str(Path(input.audit).parent.parent),
        out_dir=lambda w, output: str(Path(output.html).parent),
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    threads: 1
    conda:
        ENV
    shell:
        "{params.cli} report --results {params.results} --out-dir {params.out_dir} > {log} 2>&1"
