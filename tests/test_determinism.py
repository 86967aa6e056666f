"""Determinism: same config and seed -> the same shards, weights and metrics; the report says so;
a changed parameter reruns exactly the stages that depend on it.

Uses conftest.mini_reference (one uninterrupted miniature `snakemake report`, shared with
tests/test_kill.py) as the first clean run; the second runs here in fresh processes.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from support import copy_run, run_cli, snakemake_argv, snakemake_env
from vidrec.data.shards import check_shard, verify_content_hash, write_shard
from vidrec.data.video import ClipSpec
from vidrec.plan.config import apply_override

pytestmark = pytest.mark.slow

RES, SHARDS = "results/mini", "data/mini/shards/mini8"
RUN = f"{RES}/split1/p3d63/seed0"


def test_shard_contents_are_identical_and_hash_checked(mini_reference, tmp_path):
    """A second decode, in another process than the workflow's, stores the same bytes and hash."""
    cfg = yaml.safe_load((mini_reference / "config.yaml").read_text())
    spec = ClipSpec.from_config(cfg["clips"]["mini8"])
    videos = pd.read_csv(mini_reference / RES / "manifest/videos.csv")
    ref = mini_reference / SHARDS / "b001.h5"
    again = tmp_path / "b001.h5"
    size = cfg["decode"]["videos_per_shard"]
    write_shard(videos[videos["video_id"] // size == 1], mini_reference / "data/mini/UCF-101", spec, again)
    assert check_shard(again, spec)["content_hash"] == check_shard(ref, spec)["content_hash"]
    with h5py.File(ref) as a, h5py.File(again) as b:
        for key in ("clips", "labels", "video_ids", "clip_index", "frame_indices", "repairs"):
            assert np.array_equal(a[key][()], b[key][()]), key
    # the stored hash is checked against the pixels: one changed byte is caught
    assert verify_content_hash(again)
    with h5py.File(again, "r+") as f:
        f["clips"][0, 0, 0, 0, 0] ^= 1
    assert not verify_content_hash(again)


def test_training_twice_gives_identical_weights_and_metrics(mini_reference, tmp_path):
    """A clean second training run (fresh process, another PYTHONHASHSEED) = the workflow's, bit for bit."""
    out = tmp_path / "p3d63"
    run_cli("--quiet", "--config", "config.yaml", "--dataset", "mini", "train", "--model", "p3d63",
            "--index", f"{RES}/mini8/split1/index.csv", "--classes", f"{RES}/manifest/classes.txt",
            "--out-dir", str(out), "--threads", "1", cwd=mini_reference,
            env={"PYTHONHASHSEED": "12345", "OMP_NUM_THREADS": "1"})
    a = torch.load(mini_reference / RUN / "model.pt", weights_only=False)["state_dict"]
    b = torch.load(out / "model.pt", weights_only=False)["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs between two clean runs"
    cols = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"]
    pd.testing.assert_frame_equal(pd.read_csv(mini_reference / RUN / "metrics.csv")[cols],
                                  pd.read_csv(out / "metrics.csv")[cols])
    summary = json.loads((out / "train.json").read_text())
    assert summary["seed"] == 0 and summary["threads"] == 1
    # train.deterministic: true in this config: torch's deterministic algorithms were in force, and
    # train.json says so (cuDNN's autotuner does not apply on CPU)
    assert summary["deterministic_algorithms"] is True and summary["cudnn_benchmark"] is None


def _table(html: str, css_class: str) -> list[dict]:
    body = re.search(rf'<table class="[^"]*\b{css_class}\b[^"]*">(.*?)</table>', html, re.S)[1]
    head = re.findall(r"<th>(.*?)</th>", body)
    return [dict(zip(head, re.findall(r"<td>(.*?)</td>", row))) for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
            if "<td>" in row]


def test_report_provenance_shows_seeds_and_determinism(mini_reference):
    html = (mini_reference / RES / "report/index.html").read_text()
    assert "Runs: seeds and determinism" in html
    runs = _table(html, "runs")
    assert runs == [{**row, "Split": split, "Model": "p3d63", "Seed": "0", "Device": "cpu", "Threads": "1",
                     "AMP": "none", "Deterministic algorithms": "True", "Epochs": "2"}
                    for row, split in zip(runs, ("1", "2", "3"))]
    # the seeds of the data too: the configuration as run is part of the provenance section
    assert re.search(r"synthetic:.*?seed: 0", html, re.S)


# ----------------------------------------------------------------------------- reruns after a change
def _planned_jobs(workdir: Path) -> dict[str, int]:
    proc = subprocess.run(snakemake_argv(workdir, "-n", "report"), cwd=workdir, env=snakemake_env(),
                          capture_output=True, text=True, timeout=600)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, text[-4000:]
    if "Nothing to be done" in text:
        return {}
    table = text[text.index("Job stats"):].split("\ntotal")[0]  # job / count rows up to the total
    return {p[0]: int(p[1]) for p in (line.split() for line in table.splitlines()[3:]) if len(p) == 2}


def _changed(mini_reference: Path, tmp_path: Path, key: str, value) -> Path:
    wd = tmp_path / "wd"
    copy_run(mini_reference, wd)
    cfg = yaml.safe_load((wd / "config.yaml").read_text())
    apply_override(cfg, key.split("."), value)
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg))
    return wd


DOWNSTREAM = {"train": 3, "evaluate": 3, "render_report": 1, "report": 1}  # one run on each of 3 splits


@pytest.mark.parametrize("key, value, expected", [
    # the clip spec defines the pixels: every shard, the index and everything after; not synth/manifest
    ("clips.mini8.size", 24, {"decode": 7, "split_index": 3, **DOWNSTREAM}),
    # (any change re-renders the report: it shows the configuration as run)
    # decode workers/threads change no byte (test_parallel_decode_matches_serial): nothing reruns
    ("decode.workers", 2, {"render_report": 1, "report": 1}),
    # an evaluation setting reruns evaluation, not training
    ("evaluate.speed_batches", 2, {"evaluate": 3, "render_report": 1, "report": 1}),
])
def test_a_changed_param_reruns_exactly_the_dependent_stages(mini_reference, tmp_path, key, value, expected):
    assert _planned_jobs(_changed(mini_reference, tmp_path, key, value)) == expected
