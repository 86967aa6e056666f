"""The Snakemake workflow end to end on a miniature synthetic set, as a user runs it.

One session-scoped run (synth -> manifest -> shards -> train -> evaluate -> report) in a scratch
working directory (`snakemake --directory`), then checks: outputs, a no-op second run, config errors
stopping before any job, and that changing one model's parameter reruns that model (and the report) only.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from support import mini_config, run_snakemake, workflow_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return workflow_run(tmp_path_factory.mktemp("workflow"), mini_config(), "report")


def test_full_run_produces_every_stage(workdir):
    res = workdir / "results" / "mini"
    assert (res / "manifest" / "audit.json").exists()
    assert len(list((workdir / "data/mini/shards/mini8").glob("b*.h5"))) == 3
    for model in ("p3d63", "r3d_18"):
        ev = json.loads((res / "split1" / model / "seed0" / "evaluation.json").read_text())
        assert ev["model"] == model and ev["n_videos"] == 21 and 0 <= ev["video_top1"] <= 1
        # what ran, named in evaluation.json: seed, initialisation, training sampling, the test clips
        assert ev["seed"] == 0 and ev["initialisation"] == "from scratch" and ev["train_clip_sampling"]
        assert "frames" in ev["test_clip"] and "per video" in ev["test_clip"] and ev["epochs"] >= 1
        assert (workdir / "logs/mini/train/split1" / model / "seed0.log").exists()
        assert (res / "benchmarks/train/split1" / model / "seed0.tsv").exists()
    assert (res / "report" / "index.html").exists()


def test_second_run_does_nothing(workdir):
    proc = run_snakemake(workdir, "report")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changed_param_reruns_exactly_the_dependent_jobs(workdir):
    cfg = mini_config()
    cfg["datasets"]["mini"]["models"]["p3d63"]["args"]["base_width"] = 4
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    try:
        proc = run_snakemake(workdir, "-n", "report")
        text = proc.stdout + proc.stderr
        table = text[text.index("Job stats"):]
        jobs = dict(line.split()[:2] for line in table.splitlines()[3:] if len(line.split()) == 2
                    and line.split()[1].isdigit())
        assert jobs.get("train") == "1" and jobs.get("evaluate") == "1", table
        assert "decode" not in jobs and "manifest" not in jobs and "synth" not in jobs, table
    finally:
        (workdir / "config.yaml").write_text(yaml.safe_dump(mini_config()))


@pytest.mark.parametrize("key, value, message", [
    ("dataset", "nope", "config key 'dataset'"),
    ("datasets.mini.models.p3d63.arch", "resnet9000", "datasets.mini.models.p3d63.arch"),
    ("datasets.mini.splits", [4], "datasets.mini.splits"),
    ("protocols.thesis.epochs", -1, "protocols.thesis.epochs"),
    ("clips.mini8.crop", 400, "clips.mini8.crop"),
])
def test_bad_config_stops_before_any_job(tmp_path, key, value, message):
    cfg = mini_config()
    node = cfg
    *parents, last = key.split(".")
    for p in parents:
        node = node[p]
    node[last] = value
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = run_snakemake(tmp_path, "-n", "report", check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "results" / "mini" / "manifest").exists()
