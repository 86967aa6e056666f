"""Fixtures shared by several test modules; the helpers they use live in tests/support/."""
from __future__ import annotations

import fcntl
import os
import shutil

# One thread per process: tests and the jobs they start share 2 cores, and oversubscribed torch
# threads spin-wait (10x slower measured here). Subprocesses inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from support import (TINY_VIDEOS_PER_SHARD, copy_run, make_dataset, reference_config, run_cli,  # noqa: E402
                     tiny_config, workflow_run)


# Files that mostly wait (on a mini SLURM cluster's polling): started first, their waits overlap the
# CPU-heavy files on the other worker instead of leaving a core idle beside the short ones.
WAITING_FILES = ("test_slurm.py",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Files with a slow test first (the waiting ones before them). `make test` hands whole files to its
    pytest-xdist workers in collection order (--dist loadfile): the long files then start at once and
    the short ones, last, fill the gaps, so that the workers finish together instead of a long file
    running alone at the end."""
    items.sort(key=lambda item: (item.path.name not in WAITING_FILES, item.get_closest_marker("slow") is None))


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> tuple[Path, Path]:
    """(videos folder, split lists folder): 2 classes x 25 groups of 24-frame AVIs in UCF101's layout.
    Shared by every worker: read it, never change it."""
    root = built_once(tmp_path_factory, "tiny_ucf",
                      lambda folder: make_dataset(folder, ["Alpha", "Beta"], groups=25, clips=1, frames=24))
    return root / "UCF-101", root / "ucfTrainTestlist"


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset, tmp_path_factory) -> dict:
    """Manifest, shards and the split-1 index of the tiny dataset, built through the CLI. Shared by
    every worker: read it, never change it."""
    videos, _ = tiny_dataset

    def paths(work: Path) -> dict:
        cfg = work / "config.yaml"
        common = ["--config", str(cfg), "--quiet", "--set", f"decode.videos_per_shard={TINY_VIDEOS_PER_SHARD}"]
        return {"work": work, "config": cfg, "index": work / "split1" / "index.csv",
                "classes": work / "manifest/classes.txt", "common": common}

    def build(work: Path) -> None:
        run = paths(work)
        tiny_config(run["config"], videos.parent)
        common = run["common"]
        run_cli(*common, "manifest", "--out-dir", str(work / "manifest"))
        n_videos = len((work / "manifest/videos.csv").read_text().splitlines()) - 1
        shards = []
        for b in range(-(-n_videos // TINY_VIDEOS_PER_SHARD)):
            out = work / "shards" / f"b{b:03d}.h5"
            run_cli(*common, "decode", "--manifest", str(work / "manifest/videos.csv"), "--bucket", str(b),
                    "--clip", "tiny8", "--out", str(out), "--stats", str(out.with_suffix(".json")))
            shards.append(str(out))
        run_cli(*common, "index", "--splits", str(work / "manifest/splits.csv"), "--split", "1",
                "--shards", *shards, "--out", str(run["index"]))

    return paths(built_once(tmp_path_factory, "tiny_run", build))


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build) -> Path:
    """`build(folder)` once per test run, in a fresh folder it returns. Under pytest-xdist the workers
    share the run's base folder: the first to ask builds (under a lock) and the others wait and reuse
    its folder, so a costly session fixture is built once whichever workers its modules land on."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    shared = tmp_path_factory.getbasetemp().parent  # this run's base folder (each worker's is below it)
    folder, done = shared / name, shared / f"{name}.done"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            done.touch()
    return folder


@pytest.fixture(scope="session")
def mini_reference(tmp_path_factory) -> Path:
    """One uninterrupted `snakemake report` of reference_config(), shared by the kill, determinism,
    reruns and workflow tests: read it, or change a copy (`copy_run`, or the `reference_copy` fixture)."""
    return built_once(tmp_path_factory, "mini_reference",
                      lambda folder: workflow_run(folder, reference_config(), "report"))


@pytest.fixture(scope="module")
def reference_copy(mini_reference, tmp_path_factory) -> Path:
    """A copy of mini_reference that one test module may change (its tests share it, in order)."""
    return copy_run(mini_reference, tmp_path_factory.mktemp("reference_copy") / "wd")
