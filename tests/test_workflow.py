"""The Snakemake workflow end to end on a miniature synthetic set, as a user runs it.

The shared reference run (conftest.mini_reference: synth -> manifest -> shards -> train -> evaluate ->
report of one narrow P3D-63 on each of the 3 splits, in a scratch working directory through
`snakemake --directory`), copied once; then checks: outputs, a no-op second run, config errors naming
their key and stopping Snakemake before any job, and that changing the model's parameter reruns its
trainings and evaluations (and the report) only. Runs of Tran et al.'s protocol go through the same
rules in tests/test_experiments.py (its report test) and tests/test_rehearsal.py.
"""
from __future__ import annotations

import json
import re

import pytest
import yaml

from support import mini_config, run_snakemake
from vidrec.plan.config import ConfigError, apply_override, validate_config

pytestmark = pytest.mark.slow


def test_full_run_produces_every_stage(reference_copy):
    res = reference_copy / "results" / "mini"
    assert (res / "manifest" / "audit.json").exists()
    assert len(list((reference_copy / "data/mini/shards/mini8").glob("b*.h5"))) == 7
    for split in (1, 2, 3):
        ev = json.loads((res / f"split{split}" / "p3d63" / "seed0" / "evaluation.json").read_text())
        assert ev["model"] == "p3d63" and ev["n_videos"] == 21 and 0 <= ev["video_top1"] <= 1
        # what ran, named in evaluation.json: seed, initialisation, training sampling, the test clips
        assert ev["seed"] == 0 and ev["initialisation"] == "from scratch" and ev["train_clip_sampling"]
        assert "frames" in ev["test_clip"] and "per video" in ev["test_clip"] and ev["epochs"] == 2
        assert (reference_copy / f"logs/mini/train/split{split}/p3d63/seed0.log").exists()
        assert (res / f"benchmarks/train/split{split}/p3d63/seed0.tsv").exists()
    assert (res / "report" / "index.html").exists()


def test_second_run_does_nothing(reference_copy):
    proc = run_snakemake(reference_copy, "report")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changed_param_reruns_exactly_the_dependent_jobs(reference_copy):
    config = reference_copy / "config.yaml"
    original = config.read_text()
    cfg = yaml.safe_load(original)
    cfg["datasets"]["mini"]["models"]["p3d63"]["args"]["base_width"] = 4
    config.write_text(yaml.safe_dump(cfg))
    try:
        proc = run_snakemake(reference_copy, "-n", "report")
        text = proc.stdout + proc.stderr
        table = text[text.index("Job stats"):]
        jobs = dict(line.split()[:2] for line in table.splitlines()[3:] if len(line.split()) == 2
                    and line.split()[1].isdigit())
        assert jobs.get("train") == "3" and jobs.get("evaluate") == "3", table  # one per split
        assert "decode" not in jobs and "manifest" not in jobs and "synth" not in jobs, table
    finally:
        config.write_text(original)


BAD_CONFIGS = [
    ("dataset", "nope", "config key 'dataset'"),
    ("datasets.mini.models.p3d63.arch", "resnet9000", "datasets.mini.models.p3d63.arch"),
    ("datasets.mini.splits", [4], "datasets.mini.splits"),
    ("protocols.thesis.epochs", -1, "protocols.thesis.epochs"),
    ("clips.mini8.crop", 400, "clips.mini8.crop"),
]


def _bad_config(key: str, value) -> dict:
    cfg = mini_config()
    apply_override(cfg, key.split("."), value)
    return cfg


@pytest.mark.parametrize("key, value, message", BAD_CONFIGS)
def test_bad_config_names_its_key(key, value, message):
    """What the Snakefile runs on the configuration before it plans a job."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(_bad_config(key, value))


def test_bad_config_stops_before_any_job(tmp_path):
    key, value, message = BAD_CONFIGS[1]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(_bad_config(key, value)))
    proc = run_snakemake(tmp_path, "-n", "report", check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
    assert not (tmp_path / "results" / "mini" / "manifest").exists()
