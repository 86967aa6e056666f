# Shared definitions: cross-key config checks, paths, wildcard constraints, the config as run.
import yaml
from pathlib import Path

from snakemake.exceptions import WorkflowError

from vidrec.config import dataset_config, dataset_paths, run_config
from vidrec.data.splits import read_groups

DATASET = config["dataset"]
DS = dataset_config(config)
PATHS = dataset_paths(config)
RESULTS = f"results/{DATASET}"
SHARDS = f"data/{DATASET}/shards"
LOGS = f"logs/{DATASET}"
BENCH = f"{RESULTS}/benchmarks"
ENV = "../envs/vidrec.yaml"
# The configuration as run: every rule's CLI reads this file; params carry the values each job
# depends on, so a changed value reruns exactly the jobs that use it.
CONFIG_AS_RUN = f"{RESULTS}/config.yaml"
_text = yaml.safe_dump(config, sort_keys=True)
if not Path(CONFIG_AS_RUN).exists() or Path(CONFIG_AS_RUN).read_text() != _text:
    Path(CONFIG_AS_RUN).parent.mkdir(parents=True, exist_ok=True)
    Path(CONFIG_AS_RUN).write_text(_text)
# Each job runs vidrec with the config as run and the dataset (passed as params.cli).
CLI_ARGS = f"--quiet --config {CONFIG_AS_RUN} --dataset {DATASET}"
CLI = f"vidrec {CLI_ARGS}"

# GPUs. `resources: gpu` is what a train/evaluate job asks for: the SLURM plugin turns it into
# `--gpus=N`; locally `--resources gpu=N` caps how many GPUs concurrent jobs hold in total. Core
# Snakemake sets no CUDA_VISIBLE_DEVICES, so GPU jobs start through WITH_GPUS: it locks that many
# free devices (one flock per device, held for the job's lifetime), exports CUDA_VISIBLE_DEVICES and
# execs the command; inside a SLURM job it leaves SLURM's CUDA_VISIBLE_DEVICES alone
# (vidrec/training/distributed.py). train.gpus > 1 runs one job per training with torchrun, one
# process per GPU (DistributedDataParallel; on device: cpu, that many gloo processes).
TRAIN_PROCS = max(1, config["train"]["gpus"])
TRAIN_GPUS = config["train"]["gpus"] if config["train"]["device"] != "cpu" else 0
EVAL_GPUS = min(1, TRAIN_GPUS)  # evaluation runs on one device
WITH_GPUS = "python -m vidrec.training.distributed --gpus"
TRAIN_CLI = CLI if TRAIN_PROCS == 1 else (
    f"torchrun --standalone --nproc_per_node={TRAIN_PROCS} -m vidrec.cli {CLI_ARGS}")

# All local cores (--cores) for a job that runs alone; 1 where none are given: `snakemake --report`,
# or a cluster executor, where a profile's set-threads decides.
try:
    ALL_CORES = max(1, int(workflow.cores))
except WorkflowError:
    ALL_CORES = 1

SPLITS = DS["splits"]
MODELS = list(DS["models"])
# Groups are known before the manifest exists: from the lists when present, else the generator's.
GROUPS = read_groups(PATHS["lists"]) if PATHS["lists"].exists() else list(
    range(1, (DS.get("synthetic") or {}).get("groups", 25) + 1))


def run_clip(model):
    return run_config(config, model)["clip_name"]


def shard_paths(clip):
    return [f"{SHARDS}/{clip}/g{g:02d}.h5" for g in GROUPS]


def shard_stats(clip):
    return [f"{SHARDS}/{clip}/g{g:02d}.json" for g in GROUPS]


def split_index(split, model):
    return f"{RESULTS}/{run_clip(model)}/split{split}/index.csv"


def run_dir(split, model):
    return f"{RESULTS}/split{split}/{model}"


def parent_dir(w, output):
    """Folder of the first output, for CLI verbs that write several files there."""
    return str(Path(output[0]).parent)


def train_inputs(w):
    inputs = {"index": split_index(w.split, w.model), "classes": f"{RESULTS}/manifest/classes.txt"}
    init_run = run_config(config, w.model).get("init_from_run")
    if init_run:  # the run's `init_from: <run>`: that run's model.pt of the same split
        inputs["init"] = f"{run_dir(w.split, init_run)}/model.pt"
    elif config["train"]["init_from"]:
        inputs["init"] = config["train"]["init_from"]
    return inputs


def experiment_report_files():
    """The experiments' outputs the comparison report shows (experiments.in_report: true), else none."""
    from vidrec.experiments.spec import report_files

    return [f"{RESULTS}/{f}" for f in report_files(config)]
