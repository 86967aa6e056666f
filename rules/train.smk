# Training stage: one job per (split, model); resumes from its checkpoint after a kill.


def train_inputs(w):
    inputs = {
        "index": split_index(w.split, w.model),
        "classes": rules.manifest.output.classes,
    }
    if config["train"]["init_from"]:
        inputs["init"] = config["train"]["init_from"]
    return inputs


rule train:
    input:
        unpack(train_inputs),
    output:
        model=f"{RESULTS}/split{{split}}/{{model}}/model.pt",
        metrics=f"{RESULTS}/split{{split}}/{{model}}/metrics.csv",
        summary=f"{RESULTS}/split{{split}}/{{model}}/train.json",
    params:
        run=lambda w: run_config(config, w.model),
        out_dir=lambda w: run_dir(w.split, w.model),
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
        "{VIDREC} train {CLI_ARGS} --model {wildcards.model} --index {input.index}"
        " --classes {input.classes} --out-dir {params.out_dir} --threads {threads} > {log} 2>&1"
