# Tran et al.'s experiments (README "Experiments of Tran et al."), one target each, named as the
# experiment (the registry vidrec/plan/experiments/, e.g. `snakemake --cores 2 clip_length_transfer`):
#   snakemake --cores 2 experiments                  all of those configured
# The runs each experiment needs are generated from config `experiments:` (vidrec/plan/experiment_runs.py:
# x_<arch>_<clip>, x_<arch>_<from>_to_<to>) and trained and evaluated by the normal train/evaluate
# rules; `evaluate_at` tests a trained run on another clip spec; the experiment rules only aggregate
# (`vidrec experiment <name>` -> results/<dataset>/experiments/<name>/), reading the runs' files and the
# published figures (vidrec/plan/experiments/claims.yaml: a changed claim reruns the aggregation). They are
# not inputs of the comparison report unless experiments.in_report is true (vidrec/report/load.py).
from vidrec.plan import experiment_runs
import vidrec.plan.experiments
from vidrec.report.sections import section_titles

XP_NAMES = experiment_runs.configured(config)
XP_CATEGORY = section_titles(config)["experiments"]


rule evaluate_at:
    input:
        model=rules.train.output.model,
        summary=rules.train.output.summary,
        index=str(LAYOUT.split_index("{clip}", "{split}")),
    output:
        **{kind: str(LAYOUT.evaluation_file("{split}", "{model}", "{seed}", kind, at_clip="{clip}"))
           for kind in ("evaluation", "scores", "predictions", "per_class", "confusion")},
    params:
        cli=CLI,
        with_gpus=WITH_GPUS,
        evaluate=config["evaluate"],
        clip=lambda w: config["clips"][w.clip],
        out_dir=parent_dir,
    log:
        f"{LOGS}/evaluate_at/split{{split}}/{{model}}/seed{{seed}}/{{clip}}.log",
    benchmark:
        f"{BENCH}/evaluate_at/split{{split}}/{{model}}/seed{{seed}}/{{clip}}.tsv"
    threads: config["train"]["threads"]
    resources:
        gpu=EVAL_GPUS,
    conda:
        ENV
    shell:
        "{params.with_gpus} {resources.gpu} -- {params.cli} evaluate --model-file {input.model} --index {input.index}"
        " --split {wildcards.split} --clip {wildcards.clip} --scores --out-dir {params.out_dir} --threads {threads}"
        " > {log} 2>&1"


# One aggregation rule and one target per configured experiment.
for _name in XP_NAMES:
    _plan = experiment_runs.plan(config, _name)
    _out = experiment_runs.output_files(_name)
    _caption = f"../workflow/report/experiment_{_name}.rst"

    rule:
        name:
            f"experiment_{_name}"
        input:
            [f"{RESULTS}/{f}" for f in _plan["inputs"]],
            claims=str(vidrec.plan.experiments.CLAIMS_FILE),
        output:
            **{
                key: report(f"{RESULTS}/{path}", caption=_caption, category=XP_CATEGORY, subcategory=_name)
                for key, path in _out.items()
            },
        params:
            cli=CLI,
            results=lambda w, output: str(Path(output[0]).parents[2]),  # results/<dataset>
            out_dir=parent_dir,
            name=_name,  # a param, not an f-string in shell: the shell string is formatted at job time
            experiment=config["experiments"][_name],
        log:
            f"{LOGS}/experiments/{_name}.log",
        benchmark:
            f"{BENCH}/experiments/{_name}.tsv"
        threads: 1
        conda:
            ENV
        shell:
            "{params.cli} experiment {params.name} --results {params.results} --out-dir {params.out_dir} > {log} 2>&1"

    rule:
        name:
            _name
        input:
            [f"{RESULTS}/{path}" for path in _out.values()],


rule experiments:
    input:
        [f"{RESULTS}/{p}" for n in XP_NAMES for p in experiment_runs.output_files(n).values()],
