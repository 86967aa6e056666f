# Shared definitions: cross-key config checks, paths, wildcard constraints, the config as run.
# Parsing this file writes no file and imports neither torch nor matplotlib (tests/test_parse.py).
import os
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake_interface_executor_plugins.settings import DeploymentMethod

from vidrec.plan.config import CONFIG_ENV, config_for_jobs, dataset_config
from vidrec.data import formats
from vidrec.plan import rehearsal
from vidrec.data.video import ClipSpec
from vidrec.data.diskspace import Need, check_free_space, shard_bytes, shard_fix
from vidrec.plan.layout import Layout, shard_buckets
from vidrec.plan.catalogue import weights_name
from vidrec.plan.runs import resolve_runs, run_instances
from vidrec.training.schedule import batch_plan

DATASET = config["dataset"]
DS = dataset_config(config)
VIDEOS_DIR = formats.videos_dir(DS)  # the folder the manifest's video paths are relative to
FORMAT_INPUTS = [str(p) for p in formats.inputs(DS)]  # what the manifest reads (vidrec/data/formats/)
LAYOUT = Layout.of(config)  # every artifact path (vidrec/plan/layout.py); a rehearsal's apart
RESULTS = str(LAYOUT.results)
LOGS = str(LAYOUT.logs)
BENCH = str(LAYOUT.benchmarks)
ENV = "../envs/vidrec.yaml"
# The configuration as run (config.yaml with any --config/--configfile overrides, validated) reaches
# every job through one environment variable, not a file: parsing writes nothing, and params carry
# the values each job depends on, so a changed value reruns exactly the jobs that use it.
os.environ[CONFIG_ENV] = config_for_jobs(config)
CLI_ARGS = f"--quiet --config-env {CONFIG_ENV} --dataset {DATASET}"
# Jobs run vidrec with the interpreter that runs Snakemake (`.venv/bin/snakemake` works without an
# activated virtualenv); under --software-deployment-method conda, with the job environment's python.
PYTHON = "python" if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method else (
    shlex.quote(sys.executable))
CLI = f"{PYTHON} -m vidrec.cli {CLI_ARGS}"

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
WITH_GPUS = f"{PYTHON} -m vidrec.training.distributed --gpus"
TRAIN_CLI = CLI if TRAIN_PROCS == 1 else (
    f"{PYTHON} -m torch.distributed.run --standalone --nproc_per_node={TRAIN_PROCS} -m vidrec.cli {CLI_ARGS}")
TRAIN_LAUNCH = f"{WITH_GPUS} {TRAIN_GPUS} --"
TRAIN_RESOURCES = {"gpu": TRAIN_GPUS}  # SLURM: --gpus=N; locally: counted against --resources gpu=N
# train.nodes > 1: one SLURM job over that many nodes (train.gpus GPUs each). The SLURM executor plugin
# (2.8.0) runs an `mpi` job's shell directly on the first node instead of under its `srun -n1`; there
# the launcher starts one torchrun agent per node with srun (vidrec/training/distributed.py). Resources,
# as the plugin turns them into sbatch options: nodes -> --nodes, tasks (one per node) -> --ntasks with
# tasks_per_gpu 0 (else `tasks` becomes --ntasks-per-gpu on a GPU job), gres -> --gres=gpu:<per node>
# (the `gpu` resource, --gpus, is a total that SLURM need not spread evenly), cpus_per_gpu (profile).
TRAIN_NODES = config["train"]["nodes"]


def train_nodes(wildcards):
    """train.nodes for the job's resources; refused when the job would run here, outside SLURM."""
    plugin = getattr(workflow.executor_plugin, "name", None)
    if TRAIN_NODES > 1 and plugin == "local" and not os.environ.get("SLURM_JOB_ID"):
        raise WorkflowError(
            f"train.nodes is {TRAIN_NODES}: a training across several nodes runs only on a SLURM cluster "
            "(snakemake --profile workflow/profiles/slurm ...); on one machine set train.nodes: 1 and "
            "train.gpus to its GPUs (README, 'Running on a cluster')")
    return TRAIN_NODES


if TRAIN_NODES > 1:
    TRAIN_CLI = CLI  # the launcher wraps it: srun -> torchrun agents -> vidrec.cli
    TRAIN_LAUNCH = f"{WITH_GPUS} {TRAIN_GPUS} --nodes {TRAIN_NODES} --procs {TRAIN_PROCS} --"
    TRAIN_RESOURCES = {"gpu": 0, "nodes": train_nodes, "tasks": TRAIN_NODES, "tasks_per_gpu": 0, "mpi": "srun",
                       **({"gres": f"gpu:{TRAIN_GPUS}"} if TRAIN_GPUS else {})}

# All local cores (--cores) for a job that runs alone; 1 where none are given: `snakemake --report`,
# or a cluster executor, where a profile's set-threads decides.
try:
    ALL_CORES = max(1, int(workflow.cores))
except WorkflowError:
    ALL_CORES = 1

SPLITS = DS["splits"]
MODELS = list(DS["models"])
RUNS = resolve_runs(config)  # every run's settings, resolved once (vidrec/plan/runs.py)
for _run in RUNS.values():  # per-device batch x devices x nodes x accumulate = batch_size, or stop here
    batch_plan(_run.protocol, TRAIN_PROCS, TRAIN_NODES)
# (split, run, seed) of every training job the comparison report needs
INSTANCES = run_instances(config, RUNS)
# Shards hold fixed buckets of videos (video_id // decode.videos_per_shard), whatever the format; the
# bucket list comes from the format's video count, read from its lists without decoding (or from the
# generator's settings), so it is known before the manifest exists. A rehearsal keeps the real video
# ids: it plans the same buckets, most of them sparse.
BUCKETS = shard_buckets(formats.video_count(DS), config["decode"]["videos_per_shard"])


def planned_videos() -> int:
    """Videos the planned shards hold (the disk check's count, before the manifest exists): the format's
    count (its lists, or the generator's settings). A rehearsal's subset keeps the video ids, so its
    shards are the real job's buckets, sparse: checked here as if full."""
    return formats.video_count(DS)


def bucket_videos(bucket: int) -> int:
    """Videos of one planned shard: decode.videos_per_shard, fewer in the last."""
    size = config["decode"]["videos_per_shard"]
    return max(0, min(size, planned_videos() - bucket * size))


def run_clip(model):
    return RUNS[model].clip_name


def shard_paths(clip):
    return [str(LAYOUT.shard(clip, b)) for b in BUCKETS]


def split_index(split, model):
    return str(LAYOUT.split_index(run_clip(model), split))


def parent_dir(w, output):
    """Folder of the first output, for CLI verbs that write several files there."""
    return str(Path(output[0]).parent)


def train_inputs(w):
    inputs = {"index": split_index(w.split, w.model), "classes": str(LAYOUT.manifest("classes"))}
    run = RUNS[w.model]
    if run.init_from_run:  # the run's `init_from: <run>`: that run's model.pt of the same split and seed
        inputs["init"] = str(LAYOUT.model_file(w.split, run.init_from_run, w.seed))
    elif run.init_from and not weights_name(run.init_from):  # a model file (named weights: the job's cache)
        inputs["init"] = run.init_from
    return inputs


def end_to_end_videos(w):
    """The raw videos that evaluation times end to end (evaluate.end_to_end_videos > 0), as an input:
    a missing folder stops the DAG instead of silently dropping the figure."""
    return ancient(str(VIDEOS_DIR)) if config["evaluate"]["end_to_end_videos"] else []


def shard_needs(jobs) -> list:
    """The bytes every scheduled decode job will write (its bucket's videos): the disk check's needs."""
    return [Need(job.output.shard, shard_bytes(ClipSpec.from_config(config["clips"][job.wildcards.clip]),
                                               bucket_videos(int(job.wildcards.bucket))),
                 f"clip spec {job.wildcards.clip}") for job in jobs if job.rule.name == "decode"]


def check_shard_space(jobs) -> None:
    """Stop before the first job when the shards `jobs` decode do not fit their file system (disk.check)."""
    needs = shard_needs(jobs)
    clip_runs = {need.what.split()[-1]: [] for need in needs}
    for name in MODELS:
        clip_runs.setdefault(run_clip(name), []).append(name)
    check_free_space(needs, shard_fix(DATASET, clip_runs, config["clips"]))
