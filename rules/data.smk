# Data stage: (synthetic videos) -> manifest + leakage audit (the dataset's format) -> one HDF5 shard per
# bucket of videos -> split index.


onstart:
    # Before the first job: the shards this run decodes must fit on their file system (disk.check).
    if config["disk"]["check"]:
        check_shard_space(workflow.dag.needrun_jobs())


if DS.get("synthetic"):

    rule synth:
        output:
            [directory(p) for p in FORMAT_INPUTS],  # written in the ucf101 format: videos and lists
        params:
            cli=CLI,
            synthetic=DS["synthetic"],
        log:
            f"{LOGS}/synth.log",
        benchmark:
            f"{BENCH}/synth.tsv"
        threads: ALL_CORES  # runs alone at the start of the DAG: every core renders videos
        conda:
            ENV
        shell:
            "{params.cli} synth --workers {threads} > {log} 2>&1"


rule manifest:
    input:
        FORMAT_INPUTS,
    output:
        **{kind: str(LAYOUT.manifest(kind)) for kind in ("videos", "splits", "audit", "classes")},
    params:
        cli=CLI,
        out_dir=parent_dir,
        leakage=config["leakage"],
        source={key: DS[key] for key in ("root", "format", "partition")},  # a changed split rule: a new manifest
        rehearsal=config["rehearsal_settings"] if config["rehearsal"] else None,
    log:
        f"{LOGS}/manifest.log",
    benchmark:
        f"{BENCH}/manifest.tsv"
    threads: 1
    conda:
        ENV
    shell:
        "{params.cli} manifest --out-dir {params.out_dir} > {log} 2>&1"


rule decode:
    input:
        manifest=rules.manifest.output.videos,
        videos=ancient(str(VIDEOS_DIR)),  # the videos it decodes (their folder)
    output:
        shard=str(LAYOUT.shard("{clip}", "{bucket}")),
        stats=str(LAYOUT.shard_stats("{clip}", "{bucket}")),
    params:
        cli=CLI,
        clip=lambda w: config["clips"][w.clip],
        on_bad_video=config["decode"]["on_bad_video"],  # workers/threads change no byte
        videos_per_shard=config["decode"]["videos_per_shard"],
        buckets=len(BUCKETS),
    log:
        f"{LOGS}/decode/{{clip}}/b{{bucket}}.log",
    benchmark:
        f"{BENCH}/decode/{{clip}}/b{{bucket}}.tsv"
    threads: config["decode"]["workers"]
    conda:
        ENV
    shell:
        "{params.cli} decode --manifest {input.manifest} --bucket {wildcards.bucket} --buckets {params.buckets}"
        " --clip {wildcards.clip} --out {output.shard} --stats {output.stats} --workers {threads}"
        " > {log} 2>&1"


rule split_index:
    input:
        splits=rules.manifest.output.splits,
        videos=rules.manifest.output.videos,
        shards=lambda w: shard_paths(w.clip),
    output:
        str(LAYOUT.split_index("{clip}", "{split}")),
    params:
        cli=CLI,
    log:
        f"{LOGS}/index/{{clip}}/split{{split}}.log",
    benchmark:
        f"{BENCH}/index/{{clip}}/split{{split}}.tsv"
    threads: 1
    conda:
        ENV
    shell:
        "{params.cli} index --splits {input.splits} --videos {input.videos} --split {wildcards.split}"
        " --shards {input.shards} --out {output} > {log} 2>&1"


rule shards:
    input:
        sorted({split_index(s, m) for s in SPLITS for m in MODELS}),
