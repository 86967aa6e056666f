"""Kill -9 at every stage, then the same command: complete outputs, identical to an uninterrupted run.

One uninterrupted miniature run (conftest.mini_reference: 3 classes, 21 groups, 8x32x32 clips, a
base-width-8 P3D-63 trained 2 epochs on CPU on each of the 3 splits) is the reference, and split 1's
jobs are the ones killed. For each stage (decode, train, evaluate, report) a copy of it loses that
stage's outputs, `snakemake` is started in its own
process group, the whole group (Snakemake and its job processes) is SIGKILLed at a random moment
while the stage runs, and the user's recovery is replayed: `snakemake --unlock` (a killed Snakemake
leaves its lock) and the same command again. The default workflow profile (found beside the
Snakefile even with `-s`/`-d`) sets rerun-incomplete, so the killed jobs are redone without asking.
Then: shards hold the same pixels, labels and content hash; the model the same weights, bit for
bit; the evaluation the same numbers; the report is complete.

The kill moments are random; the seed is printed with every failure (set VIDREC_KILL_SEED to replay).
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from support import copy_run, snakemake_argv, snakemake_env
from vidrec.data.shards import verify_content_hash

pytestmark = pytest.mark.slow

RES, SHARDS, LOGS = "results/mini", "data/mini/shards/mini8", "logs/mini"
RUN = f"{RES}/split1/p3d63/seed0"
SEED = int(os.environ.get("VIDREC_KILL_SEED", random.SystemRandom().randrange(2**31)))
KILLED_BUCKETS = [1, 3, 5]  # shards the decode test deletes and rebuilds (3 of 7 jobs)


# ----------------------------------------------------------------------------- helpers
def clone(reference: Path, dst: Path, *remove: str) -> Path:
    """Copy the reference run (mtimes and .snakemake metadata included) without `remove`."""
    copy_run(reference, dst)
    for rel in remove:
        for p in sorted(dst.glob(rel)):
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    return dst


def bench_seconds(reference: Path, rel: str) -> float:
    """Wall seconds of one job in the reference run (its benchmark: TSV)."""
    return float(pd.read_csv(reference / RES / "benchmarks" / rel, sep="\t")["s"].iloc[0])


def _group_alive(pgid: int) -> list[int]:
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            alive.append(int(stat.parent.name))
    return alive


def run_and_kill(wd: Path, targets: list[str], started: Callable[[], bool], wait: Callable[[], str],
                 rng: np.random.Generator) -> dict:
    """Start `snakemake TARGETS`, wait for the stage to start, then `wait()` and SIGKILL the group."""
    log = open(wd / "killed_run.log", "w")
    proc = subprocess.Popen(snakemake_argv(wd, *targets), cwd=wd, env=snakemake_env(), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 600
    while not started() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert started(), f"the stage never started (seed {SEED}):\n{(wd / 'killed_run.log').read_text()[-3000:]}"
    t0 = time.time()
    how = wait()
    finished = proc.poll() is not None
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and every job process it started
    except ProcessLookupError:
        pass
    proc.wait()
    log.close()
    deadline = time.time() + 30
    while _group_alive(proc.pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not _group_alive(proc.pid), "job processes survived the kill of the process group"
    # a kill in Snakemake's last moments (the job done, the lock released, the process not yet
    # exited) leaves no lock: then there is nothing to unlock and the rerun has nothing to do
    locked = any((wd / ".snakemake" / "locks").glob("*"))
    return {"how": how, "after_s": round(time.time() - t0, 2), "snakemake_had_finished": finished,
            "lock_left": locked}


def recover(wd: Path, targets: list[str], info: dict, expect_lock: bool = False) -> str:
    """What the user types after the kill: `snakemake --unlock`, then the same command."""
    print(f"kill (seed {SEED}): {info}")
    if expect_lock and info["lock_left"]:
        again = subprocess.run(snakemake_argv(wd, *targets), cwd=wd, env=snakemake_env(), capture_output=True,
                               text=True, timeout=600)
        text = again.stdout + again.stderr
        assert again.returncode != 0 and "LockException" in text and "--unlock" in text, text[-3000:]
    unlock = subprocess.run(snakemake_argv(wd, "--unlock"), cwd=wd, env=snakemake_env(), capture_output=True,
                            text=True, timeout=600)
    assert unlock.returncode == 0, unlock.stdout + unlock.stderr
    proc = subprocess.run(snakemake_argv(wd, *targets), cwd=wd, env=snakemake_env(), capture_output=True,
                          text=True, timeout=900)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"rerun failed after kill {info} (seed {SEED}):\n{text[-6000:]}"
    assert "Using workflow specific profile" in text and "IncompleteFilesException" not in text
    return text


def uniform_wait(rng: np.random.Generator, seconds: float) -> Callable[[], str]:
    def wait() -> str:
        delay = float(rng.uniform(0, seconds))
        time.sleep(delay)
        return f"{delay:.2f}s after the stage started"
    return wait


# ----------------------------------------------------------------------------- the stages
def test_kill_during_decode(mini_reference, tmp_path):
    rng = np.random.default_rng([SEED, 1])
    # Snakemake rebuilds a missing intermediate file only for an output that is missing too: the index
    remove = [f"{SHARDS}/b{g:03d}.*" for g in KILLED_BUCKETS] + [f"{LOGS}/decode/mini8/b{g:03d}.log"
                                                               for g in KILLED_BUCKETS] + [f"{RES}/mini8"]
    wd = clone(mini_reference, tmp_path / "decode", *remove)
    logs = [wd / LOGS / "decode/mini8" / f"b{g:03d}.log" for g in KILLED_BUCKETS]
    window = sum(bench_seconds(mini_reference, f"decode/mini8/b{g:03d}.tsv") for g in KILLED_BUCKETS) / 2
    info = run_and_kill(wd, ["shards"], lambda: any(p.exists() for p in logs), uniform_wait(rng, window), rng)
    info["shards_done_at_kill"] = sorted(p.name for p in (wd / SHARDS).glob("b*.h5"))
    recover(wd, ["shards"], info)
    ref = mini_reference / SHARDS
    shards = sorted(p.name for p in ref.glob("b*.h5"))
    assert len(shards) == 7
    for name in shards:
        with h5py.File(ref / name) as a, h5py.File(wd / SHARDS / name) as b:
            assert dict(b.attrs)["complete"] and a.attrs["content_hash"] == b.attrs["content_hash"], (name, info)
            for key in ("clips", "labels", "video_ids", "clip_index", "frame_indices", "repairs"):
                assert np.array_equal(a[key][()], b[key][()]), (name, key, info, SEED)
        assert verify_content_hash(wd / SHARDS / name)
        sa, sb = (json.loads((d / name).with_suffix(".json").read_text()) for d in (ref, wd / SHARDS))
        for key in ("videos", "clips", "skipped", "repairs", "config_hash", "content_hash", "backends"):
            assert sa[key] == sb[key], (name, key)
    assert not list((wd / SHARDS).glob(".*.tmp")), "a killed writer's temporary file was left behind"
    index = f"{RES}/mini8/split1/index.csv"
    assert (wd / index).read_bytes() == (mini_reference / index).read_bytes()


def test_kill_during_training(mini_reference, tmp_path):
    rng = np.random.default_rng([SEED, 2])
    wd = clone(mini_reference, tmp_path / "train", f"{RUN}/*", f"{LOGS}/train")
    log = wd / LOGS / "train/split1/p3d63/seed0.log"
    ckpt = wd / RUN / "checkpoint.pt"

    def wait() -> str:  # half the time just after the first epoch's checkpoint (tests the resume)
        if rng.random() < 0.5:
            deadline = time.time() + 300
            while not ckpt.exists() and time.time() < deadline:
                time.sleep(0.01)
            delay = float(rng.uniform(0, 0.3))
            time.sleep(delay)
            return f"{delay:.2f}s after the epoch-1 checkpoint"
        return uniform_wait(rng, bench_seconds(mini_reference, "train/split1/p3d63/seed0.tsv"))()

    target = [f"{RUN}/model.pt"]
    info = run_and_kill(wd, target, log.exists, wait, rng)
    info["left"] = sorted(p.name for p in (wd / RUN).iterdir()) if (wd / RUN).exists() else []
    recover(wd, target, info)
    if "checkpoint.pt" in info["left"] and "model.pt" not in info["left"]:
        assert "resumed from" in log.read_text(), info
    a = torch.load(mini_reference / RUN / "model.pt", weights_only=False)["state_dict"]
    b = torch.load(wd / RUN / "model.pt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs after kill {info} (seed {SEED})"
    cols = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]
    pd.testing.assert_frame_equal(pd.read_csv(mini_reference / RUN / "metrics.csv")[cols],
                                  pd.read_csv(wd / RUN / "metrics.csv")[cols])
    ta, tb = (json.loads((d / RUN / "train.json").read_text()) for d in (mini_reference, wd))
    for key in ("seed", "deterministic_algorithms", "epochs", "final_train_acc", "final_val_acc", "train_clips", "val_clips"):
        assert ta[key] == tb[key], key


EVAL_FIELDS = ["clip_top1", "clip_top5", "video_top1", "video_top5", "n_clips", "n_videos", "chance", "params",
               "gflops_per_clip", "size_mb_fp32", "epochs", "clip_shape"]


def test_kill_during_evaluation(mini_reference, tmp_path):
    rng = np.random.default_rng([SEED, 3])
    outputs = ["evaluation.json", "predictions.csv", "per_class.csv", "confusion.csv"]
    wd = clone(mini_reference, tmp_path / "evaluate", *[f"{RUN}/{o}" for o in outputs], f"{LOGS}/evaluate")
    log = wd / LOGS / "evaluate/split1/p3d63/seed0.log"
    target = [f"{RUN}/evaluation.json"]
    info = run_and_kill(wd, target, log.exists,
                        uniform_wait(rng, bench_seconds(mini_reference, "evaluate/split1/p3d63/seed0.tsv")), rng)
    recover(wd, target, info)
    ea, eb = (json.loads((d / RUN / "evaluation.json").read_text()) for d in (mini_reference, wd))
    assert {k: ea[k] for k in EVAL_FIELDS} == {k: eb[k] for k in EVAL_FIELDS}, (info, SEED)
    for name in outputs[1:]:
        assert (wd / RUN / name).read_bytes() == (mini_reference / RUN / name).read_bytes(), name


def test_kill_during_report(mini_reference, tmp_path):
    rng = np.random.default_rng([SEED, 4])
    wd = clone(mini_reference, tmp_path / "report", f"{RES}/report", f"{LOGS}/report.log")
    info = run_and_kill(wd, ["report"], (wd / LOGS / "report.log").exists,
                        uniform_wait(rng, bench_seconds(mini_reference, "report.tsv")), rng)
    recover(wd, ["report"], info, expect_lock=True)
    html = (wd / RES / "report/index.html").read_text()
    assert html.rstrip().endswith("</html>") and "Runs: seeds and determinism" in html
    ref = mini_reference / RES / "report"
    assert sorted(p.name for p in (wd / RES / "report").iterdir()) == sorted(p.name for p in ref.iterdir())
    for table in ref.glob("*.csv"):  # rendered from the same (copied) inputs: the same tables
        assert (wd / RES / "report" / table.name).read_bytes() == table.read_bytes(), table.name
