# Report stage: the comparison report from exactly the artifacts it shows.
# (skeleton; outputs flagged with report() for `snakemake --report report.zip`)


def report_inputs(w):
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
    }


rule render_report:
    input:
        unpack(report_inputs),
    output:
        html=f"{RESULTS}/report/index.html",
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCH}/report.tsv"
    threads: 1
    conda:
        ENV
    shell:
        "{VIDREC} report {CLI_ARGS} --results {RESULTS} --out-dir {RESULTS}/report > {log} 2>&1"
