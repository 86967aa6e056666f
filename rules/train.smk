# Training stage: one job per (split, model, seed); resumes from its checkpoint after a kill.


rule train:
    input:
        unpack(train_inputs),
    output:
        **{kind: str(LAYOUT.train_file("{split}", "{model}", "{seed}", kind)) for kind in ("model", "metrics", "summary")},
    params:
        cli=TRAIN_CLI,  # torchrun --standalone --nproc_per_node=<train.gpus> when train.gpus > 1
        launch=TRAIN_LAUNCH,  # GPU slots; with train.nodes > 1: srun + torchrun agents (rules/common.smk)
        run=lambda w: RUNS[w.model].identity(),  # a changed setting retrains; another seed does not
        out_dir=parent_dir,
        init=lambda w, input: f"--init-from {input.init}" if "init" in input.keys() else "",
    log:
        f"{LOGS}/train/split{{split}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/train/split{{split}}/{{model}}/seed{{seed}}.tsv"
    threads: config["train"]["threads"]
    resources:
        **TRAIN_RESOURCES,  # gpu: train.gpus (0 on device: cpu); train.nodes > 1: nodes, tasks, gres, mpi
    conda:
        ENV
    shell:
        "exec {params.launch} {params.cli} train --model {wildcards.model} --seed {wildcards.seed} --index {input.index}"
        " --classes {input.classes} --out-dir {params.out_dir} {params.init} --threads {threads} > {log} 2>&1"
