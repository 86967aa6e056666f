# Shared definitions: cross-key config checks, paths, wildcard constraints, the config as run.
import yaml
from pathlib import Path

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
CLI = f"vidrec --quiet --config {CONFIG_AS_RUN} --dataset {DATASET}"

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
    if config["train"]["init_from"]:
        inputs["init"] = config["train"]["init_from"]
    return inputs
