# Training stage: one job per (split, model); resumes from its checkpoint after a kill.


rule train:
    input:
        unpack(train_inputs),
    output:
        model=f"{RESULTS}/split{{split}}/{{model}}/model.pt",
        metrics=f"{RESULTS}/split{{split}}/{{model}}/metrics.csv",
        summary=f"{RESULTS}/split{{split}}/{{model}}/train.json",
    params:
        cli=CLI,
        run=lambda w: run_config(config, w.model),
        out_dir=parent_dir,
    log:
        f"{LOGS}/train/split{{split}}/{{model}}.log",
    benchmark:
        f"{BENCH}/train/split{{split}}/{{model}}.tsv"
    threads: config["train"]["threads"]
    resources:
        gpu=config["train"]["gpus"] if config["train"]["device"] != "cpu" else 0,
    conda:
        ENV
    shell:
        "{params.cli} train --model {wildcards.model} --index {input.index}"
        " --classes {input.classes} --out-dir {params.out_dir} --threads {threads} > {log} 2>&1"
