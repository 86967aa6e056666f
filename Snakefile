# vidrec: UCF101-style action recognition, from AVIs to the comparison report.
#   snakemake --cores 2 report          the comparison report (also the default target)
#   snakemake --cores 2 shards          decode up to the HDF5 shards
#   snakemake --cores 2 evaluations     train and evaluate every configured model and split
#   snakemake --cores 2 clip_length_transfer | finetune_8_to_32 | clips_per_video | architecture_sweep
#                                       Tran et al.'s experiments (rules/experiments.smk), or all: experiments
from snakemake.utils import min_version

from vidrec.plan.config import validate_config
from vidrec.data.preflight import check_environment

min_version("9.0")


configfile: "config.yaml"


# Validated against workflow/schemas/config.schema.yaml (its defaults filled in) plus cross-key
# checks, before any job: a bad value stops the run with a message naming the key.
validate_config(config)
check_environment(config)


include: "rules/common.smk"


wildcard_constraints:
    split="[123]",
    model="[A-Za-z0-9_]+",
    seed="[0-9]+",
    clip="[A-Za-z0-9_]+",
    bucket="[0-9][0-9][0-9]+",



include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/experiments.smk"


rule all:
    input:
        f"{RESULTS}/report/index.html",


rule report:
    input:
        f"{RESULTS}/report/index.html",
