# Report stage: the comparison report from exactly the artifacts it shows.
# Every figure and table is also flagged with report() for `snakemake --report report.zip`;
# captions live in workflow/report/ (paths relative to this file).
from vidrec.report.build import OUTPUTS as REPORT_FILES
from vidrec.report.tables import CLAIMS_PATH

REPORT_DIR = f"{RESULTS}/report"


def report_inputs(w):
    """What `vidrec report` reads (vidrec/report/load.py names the same files)."""
    runs = [(s, m) for s in SPLITS for m in MODELS]
    clips = sorted({run_clip(m) for m in MODELS})
    return {
        "evaluations": [f"{run_dir(s, m)}/evaluation.json" for s, m in runs],
        "metrics": [f"{run_dir(s, m)}/metrics.csv" for s, m in runs],
        "train": [f"{run_dir(s, m)}/train.json" for s, m in runs],
        "per_class": [f"{run_dir(s, m)}/per_class.csv" for s, m in runs],
        "confusion": [f"{run_dir(s, m)}/confusion.csv" for s, m in runs],
        "audit": rules.manifest.output.audit,
        "videos": rules.manifest.output.videos,
        "shard_stats": [p for c in clips for p in shard_stats(c)],
        # shown in the report: a changed configuration or claim re-renders it
        "config": CONFIG_AS_RUN,
        "claims": str(CLAIMS_PATH),
    }


def report_file(key, caption, category, subcategory=None):
    return report(f"{REPORT_DIR}/{REPORT_FILES[key]}", caption=f"../workflow/report/{caption}.rst",
                  category=category, subcategory=subcategory)


rule render_report:
    input:
        unpack(report_inputs),
    output:
        html=report_file("html", "index", "0. Comparison report"),
        accuracy=report_file("accuracy", "accuracy", "1. Accuracy"),
        claims=report_file("claims", "claims", "2. Claims beside measurements"),
        curves=report_file("curves", "training_curves", "3. Training curves"),
        efficiency=report_file("efficiency", "efficiency", "4. Efficiency"),
        cost=report_file("cost", "accuracy_vs_cost", "4. Efficiency"),
        per_class=report_file("per_class", "per_class_diff", "5. Per class"),
        per_class_fig=report_file("per_class_fig", "per_class_diff_fig", "5. Per class"),
        confusion=report_file("confusion", "confusion", "5. Per class"),
        audit=report_file("audit", "data_audit", "6. Data"),
        shards=report_file("shards", "shards", "6. Data"),
        shards_fig=report_file("shards_fig", "shards_fig", "6. Data"),
        skipped=report_file("skipped", "skipped_repaired", "6. Data"),
        provenance=report_file("provenance", "provenance", "7. Provenance"),
    params:
        cli=CLI,
        results=RESULTS,
        out_dir=REPORT_DIR,
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    threads: 1
    conda:
        ENV
    shell:
        "{params.cli} report --results {params.results} --out-dir {params.out_dir} > {log} 2>&1"
