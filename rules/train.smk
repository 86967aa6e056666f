# Training stage: one job per (split, model); resumes from its checkpoint after a kill.


rule train:
    input:
        unpack(train_inputs),
    output:
        **{kind: str(LAYOUT.train_file("{split}", "{model}", kind)) for kind in ("model", "metrics", "summary")},
    params:
        cli=TRAIN_CLI,  # torchrun --standalone --nproc_per_node=<train.gpus> when train.gpus > 1
        with_gpus=WITH_GPUS,
        run=lambda w: {k: v for k, v in run_config(config, w.model).items() if k != "evaluate"},
        out_dir=parent_dir,
        init=lambda w, input: f"--init-from {input.init}" if "init" in input.keys() else "",
    log:
        f"{LOGS}/train/split{{split}}/{{model}}.log",
    benchmark:
        f"{BENCH}/train/split{{split}}/{{model}}.tsv"
    threads: config["train"]["threads"]
    resources:
        gpu=TRAIN_GPUS,  # train.gpus (0 on device: cpu); SLURM: --gpus, locally: --resources gpu=N
    conda:
        ENV
    shell:
        "{params.with_gpus} {resources.gpu} -- {params.cli} train --model {wildcards.model} --index {input.index}"
        " --classes {input.classes} --out-dir {params.out_dir} {params.init} --threads {threads} > {log} 2>&1"
