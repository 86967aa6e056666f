# Evaluation stage: clip- and video-level accuracy plus efficiency, per (split, model, seed).


rule evaluate:
    input:
        model=rules.train.output.model,
        summary=rules.train.output.summary,
        index=lambda w: split_index(w.split, w.model),
        videos=end_to_end_videos,  # decoded again to time videos/s end to end
    output:
        **{kind: str(LAYOUT.evaluation_file("{split}", "{model}", "{seed}", kind))
           for kind in ("evaluation", "predictions", "per_class", "confusion")},
    params:
        cli=CLI,
        with_gpus=WITH_GPUS,
        evaluate=config["evaluate"],
        out_dir=parent_dir,
    log:
        f"{LOGS}/evaluate/split{{split}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH}/evaluate/split{{split}}/{{model}}/seed{{seed}}.tsv"
    threads: config["train"]["threads"]
    resources:
        gpu=EVAL_GPUS,  # one device (0 on device: cpu)
    conda:
        ENV
    shell:
        "{params.with_gpus} {resources.gpu} -- {params.cli} evaluate --model-file {input.model} --index {input.index}"
        " --split {wildcards.split} --out-dir {params.out_dir} --threads {threads} > {log} 2>&1"


rule evaluations:
    input:
        [str(LAYOUT.evaluation_file(s, m, seed)) for s, m, seed in INSTANCES],
