"""Tran et al.'s experiments end to end on a miniature synthetic set, as a user runs them.

One module-scoped `snakemake experiments` run (2 classes, 21 groups, 32x32 clips, 8 -> 16 frames instead
of 8 -> 32, 1 epoch, base_width 4, a 2-network sweep listed against the paper's order) in a scratch
working directory, then checks every experiment's outputs, the generated runs (fine-tuning initialised
from the short-clip run, evaluation on other clip specs), a no-op second run, the comparison report
with experiments.in_report, and config errors naming their key. Plus unit checks of the run
generation and the clip subsets.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from support import REPO, mini_config, run_snakemake, workflow_run
from vidrec.plan.config import ConfigError, load_config, validate_config
from vidrec.plan.experiment_runs import configured, experiment_runs, output_files, plan
from vidrec.plan.experiments import CLAIMS_FILE, EXPERIMENTS
from vidrec.plan.layout import EXPERIMENT_FILES
from vidrec.report.experiment_pages.clips_per_video import subset_indices, video_accuracy_at
from vidrec.report.sections import section_titles
from vidrec.plan.runs import run_settings

pytestmark = pytest.mark.slow  # runs Snakemake end to end

SWEEP = ["r2plus1d_18", "r2d_18"]  # the report orders them as the paper's table


def xp_config(**experiments_over) -> dict:
    cfg = mini_config()
    ds = cfg["datasets"]["mini"]
    ds["synthetic"]["classes"] = 2  # 2 classes x 21 groups: 42 videos
    ds["models"] = {"r2d_18": {"arch": "r2d_18", "protocol": "tran", "args": {"base_width": 4}}}
    ds["clip"] = "m8"  # the report's own run reads the experiments' shards
    cfg["evaluate"]["end_to_end_videos"] = 0  # the timed end-to-end pass runs in the other workflow tests
    # m16 stores 4 clips: clips_per_video tests the 8-frame run on them, as config.yaml's xp8 run on
    # xp8x20, and shares that evaluation with clip_length_transfer's 8 -> 16 cell
    for name, frames, k in (("m8", 8, 2), ("m16", 16, 4)):
        cfg["clips"][name] = {"frames": frames, "crop": 192, "size": 32, "sampling": "uniform", "clips_per_video": k}
    cfg["experiments"] = {
        "in_report": False, "split": 1,
        "model": {"arch": "r2plus1d_18", "protocol": "tran", "args": {"base_width": 4},
                  "protocol_overrides": {"epochs": 1, "batch_size": 8, "augment": {"crop": None, "hflip": False}}},
        "clip_length_transfer": {"train_clips": ["m8", "m16"], "test_clips": ["m8", "m16"]},
        "finetune_8_to_32": {"from_clip": "m8", "to_clip": "m16",
                             "finetune": {"protocol_overrides": {"epochs": 1, "optimizer": {"lr": 0.005}}}},
        "clips_per_video": {"train_clip": "m8", "test_clip": "m16", "counts": [1, 2, 4, 5]},
        "architecture_sweep": {"clip": "m8", "archs": SWEEP},
    }
    cfg["experiments"].update(experiments_over)
    return cfg


@pytest.fixture(scope="module")
def xp(tmp_path_factory) -> Path:
    return workflow_run(tmp_path_factory.mktemp("experiments"), xp_config(), "experiments")


# ----------------------------------------------------------------------------- unit
def test_runs_are_generated_shared_and_resolved():
    cfg = validate_config(xp_config())
    runs = experiment_runs(cfg)
    # the 8-frame R(2+1)D is shared by three experiments and the sweep: one training
    assert set(runs) == {"x_r2plus1d_18_m8", "x_r2plus1d_18_m16", "x_r2plus1d_18_m8_to_m16",
                         "x_r2d_18_m8"}
    ft = run_settings(cfg, "x_r2plus1d_18_m8_to_m16")
    assert ft.init_from_run == "x_r2plus1d_18_m8" and ft.clip_name == "m16"
    assert ft.protocol["epochs"] == 1 and ft.protocol["optimizer"]["lr"] == 0.005
    assert ft.protocol["optimizer"]["name"] == "SGD" and ft.protocol["augment"]["hflip"] is False
    # a dataset run without the new keys resolves exactly as before
    assert run_settings(cfg, "r2d_18").init_from_run is None
    p = plan(cfg, "clip_length_transfer")
    assert "split1/x_r2plus1d_18_m8/seed0/evaluation.json" in p["inputs"]  # own clip: the normal evaluation
    assert "split1/x_r2plus1d_18_m8/seed0/at_m16/evaluation.json" in p["inputs"]
    assert ("x_r2plus1d_18_m16", "m8") in p["at_evaluations"]
    # clips_per_video reads the very evaluation (with scores) that clip_length_transfer's 8 -> 16 cell does
    assert "split1/x_r2plus1d_18_m8/seed0/at_m16/scores.npz" in plan(cfg, "clips_per_video")["inputs"]


@pytest.mark.parametrize("key, value, message", [
    ("clip_length_transfer", {"train_clips": ["m8", "nope"], "test_clips": ["m8"]},
     "experiments.clip_length_transfer.train_clips': unknown clip spec 'nope'"),
    ("architecture_sweep", {"clip": "m8", "archs": ["resnet9000"]}, "unknown model 'resnet9000'"),
    ("finetune_8_to_32", {"from_clip": "m8", "to_clip": "m8"}, "from_clip and to_clip must differ"),
    ("clips_per_video", {"train_clip": "m8", "test_clip": "m16", "counts": [5, 10]}, "none of [5, 10]"),
    ("clip_length_transfer", {"train_clips": ["m8"], "test_clips": ["m8"],
                              "model": {"args": {"base_width": 16}}}, "both need run 'x_r2plus1d_18_m8'"),
    ("clip_lenght_transfer", {"train_clips": ["m8"]},
     "(the experiments: architecture_sweep, clip_length_transfer, clips_per_video, finetune_8_to_32; "),
])
def test_bad_experiment_config_names_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        validate_config(xp_config(**{key: value}))


def test_run_init_from_must_name_another_run():
    cfg = xp_config()
    cfg["datasets"]["mini"]["models"]["r2d_18"]["init_from"] = "nope"
    with pytest.raises(ConfigError, match="datasets.mini.models.r2d_18.init_from"):
        validate_config(cfg)


def test_repository_config_defines_every_experiment():
    cfg = load_config(REPO / "config.yaml")
    assert configured(cfg) == list(EXPERIMENTS)
    assert cfg["experiments"]["in_report"] is False
    for name in EXPERIMENTS:
        assert plan(cfg, name)["inputs"]


def test_every_registered_experiment_is_complete():
    """What adding an experiment takes beside its definition: its page, config block, claims and caption."""
    import importlib

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())["properties"]["experiments"]
    claims = yaml.safe_load(CLAIMS_FILE.read_text())
    assert set(claims) - {"sources"} == set(EXPERIMENTS)
    assert set(schema["properties"]) - {"in_report", "split", "model"} == set(EXPERIMENTS)
    for name, xp in EXPERIMENTS.items():
        block = schema["properties"][name]["properties"]
        assert set(xp.clip_fields) <= set(block), name
        assert callable(importlib.import_module(f"vidrec.report.experiment_pages.{name}").aggregate)
        assert (REPO / "workflow/report" / f"experiment_{name}.rst").exists(), name
        assert {c["source"] for c in claims[name]["claims"]} <= set(claims["sources"]), name
    assert "one of architecture_sweep, clip_length_transfer" in str(pytest.raises(ConfigError, plan, xp_config(),
                                                                                        "nope").value)


def test_section_names_have_one_spelling():
    """The report's headings and `snakemake --report`'s categories: one title per section, numbered as shown."""
    cfg = validate_config(xp_config())
    assert section_titles(cfg)["experiments"] == "Experiments of Tran et al."  # not in the report: unnumbered
    shown = section_titles(validate_config(xp_config(in_report=True)))
    assert shown["experiments"] == "8. Experiments of Tran et al." and shown["forecast"] == "9. Forecast beside actual"


def test_clip_subsets_and_video_accuracy():
    assert list(subset_indices(20, 1)) == [10] and list(subset_indices(20, 20)) == list(range(20))
    assert list(subset_indices(20, 5)) == [2, 6, 10, 14, 18] and list(subset_indices(4, 2)) == [1, 3]
    # 2 videos x 4 clips, 2 classes: only clip 2 of video 0 is right (the centre clip, k = 1)
    scores = np.array([[0.4, 0.6], [0.45, 0.55], [0.7, 0.3], [0.3, 0.7],
                       [0.2, 0.8], [0.2, 0.8], [0.2, 0.8], [0.2, 0.8]])
    labels = np.array([0] * 4 + [1] * 4)
    vid, ci, n = np.repeat([0, 1], 4), np.tile(np.arange(4), 2), np.full(8, 4)
    assert video_accuracy_at(scores, labels, vid, ci, n, 1)["video_top1"] == 1.0
    assert video_accuracy_at(scores, labels, vid, ci, n, 2)["video_top1"] == 0.5
    assert video_accuracy_at(scores, labels, vid, ci, n, 4)["video_top1"] == 0.5


def test_clip_length_transfer_refuses_models_built_for_their_clip():
    from vidrec.core.errors import VidrecError
    from vidrec.evaluation.evaluate import check_clip_transfer

    check_clip_transfer({"arch": "r2plus1d_18", "clip_shape": [3, 8, 32, 32]}, (3, 32, 32, 32), "m32")  # pools globally
    with pytest.raises(VidrecError, match="r2d_18 is built for its training clip's frames"):
        check_clip_transfer({"arch": "r2d_18", "clip_shape": [3, 8, 32, 32]}, (3, 16, 32, 32), "m16")


# ----------------------------------------------------------------------------- end to end
def out(wd: Path, name: str, key: str) -> Path:
    return wd / "results" / "mini" / output_files(name)[key]


def test_every_experiment_writes_its_outputs(xp):
    for name in EXPERIMENTS:
        for key in EXPERIMENT_FILES:
            assert out(xp, name, key).stat().st_size > 0, (name, key)
        html = out(xp, name, "html").read_text()
        assert f'<section id="{name}">' in html and "data:image/png;base64," in html
        text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)  # base64 may spell anything
        assert "demo set" in text and "Kinetics-400" in text and not re.search(r"\bnan\b", text, re.I)
        summary = json.loads(out(xp, name, "summary").read_text())
        assert summary["inputs"] and summary["show"]["rows"]
        assert (xp / "logs/mini/experiments" / f"{name}.log").exists()


def test_clip_length_transfer_table(xp):
    t = pd.read_csv(out(xp, "clip_length_transfer", "table"))
    assert sorted(zip(t["train_frames"], t["test_frames"])) == [(8, 8), (8, 16), (16, 8), (16, 16)]
    assert t["clip_top1"].between(0, 1).all() and (t["n_videos"] == 14).all()
    ev = json.loads((xp / "results/mini/split1/x_r2plus1d_18_m8/seed0/at_m16/evaluation.json").read_text())
    assert ev["clip_spec"] == "m16" and ev["trained_clip_spec"] == "m8" and ev["clip_shape"] == [3, 16, 32, 32]
    claims = pd.read_csv(out(xp, "clip_length_transfer", "claims"))
    assert set(claims["id"]) == {"longer_clips_better", "short_model_on_long_clips"}
    assert claims["measured"].str.contains("points").all()


def test_finetune_starts_from_the_short_run(xp):
    log = (xp / "logs/mini/train/split1/x_r2plus1d_18_m8_to_m16/seed0.log").read_text()
    assert "initialised from results/mini/split1/x_r2plus1d_18_m8/seed0/model.pt" in log
    t = pd.read_csv(out(xp, "finetune_8_to_32", "table"))
    assert list(t["role"]) == ["short_at_short", "short_at_long", "finetuned_at_long", "long_at_long"]
    tr = {r: json.loads((xp / f"results/mini/split1/{r}/seed0/train.json").read_text())["total_time_s"]
          for r in ("x_r2plus1d_18_m8", "x_r2plus1d_18_m8_to_m16", "x_r2plus1d_18_m16")}
    ft = t.set_index("role").loc["finetuned_at_long"]
    assert ft["train_time_s"] == pytest.approx(tr["x_r2plus1d_18_m8"] + tr["x_r2plus1d_18_m8_to_m16"])
    assert ft["time_share_of_scratch"] == pytest.approx(ft["train_time_s"] / tr["x_r2plus1d_18_m16"])
    # the fine-tuning job depends on the short run's model.pt: a changed one retrains the fine-tuning
    # (Snakemake skips a newer mtime alone when the recorded checksum still matches, so change the bytes)
    short = xp / "results/mini/split1/x_r2plus1d_18_m8/seed0/model.pt"
    blob, before = short.read_bytes(), short.stat()
    short.write_bytes(blob + b"changed")
    try:
        proc = run_snakemake(xp, "-n", "results/mini/split1/x_r2plus1d_18_m8_to_m16/seed0/model.pt")
        text = proc.stdout + proc.stderr
        jobs = [j for j in text.split("\n\n") if "rule train:" in j]
        assert len(jobs) == 1 and "model=x_r2plus1d_18_m8_to_m16" in jobs[0], text
        assert "results/mini/split1/x_r2plus1d_18_m8/seed0/model.pt" in jobs[0].split("reason:")[1], jobs[0]
    finally:
        short.write_bytes(blob)
        os.utime(short, (before.st_atime, before.st_mtime))


def test_clips_per_video_table(xp):
    t = pd.read_csv(out(xp, "clips_per_video", "table"))
    assert list(t["clips_per_video"]) == [1, 2, 4]  # 5 > the 4 stored clips: left out, and said so
    assert t["ms_per_video"].is_monotonic_increasing and t["video_top1"].between(0, 1).all()
    z = np.load(xp / "results/mini/split1/x_r2plus1d_18_m8/seed0/at_m16/scores.npz")
    assert z["scores"].shape == (14 * 4, 2) and np.allclose(z["scores"].sum(1), 1, atol=1e-5)
    ev = json.loads((xp / "results/mini/split1/x_r2plus1d_18_m8/seed0/at_m16/evaluation.json").read_text())
    assert t["video_top1"].iloc[-1] == pytest.approx(ev["video_top1"])  # all clips = the evaluation's video level
    assert "Left out: 5 clips per video" in out(xp, "clips_per_video", "html").read_text()


def test_architecture_sweep_table(xp):
    t = pd.read_csv(out(xp, "architecture_sweep", "table"))
    assert list(t["net"]) == ["R2D-18", "R(2+1)D-18"]  # the paper's order, not the configuration's
    assert t["params"].gt(0).all() and t["params_full_width"].gt(1e6).all()
    assert t.set_index("net").loc["R(2+1)D-18", "paper_video_top1"] == pytest.approx(0.648)
    html = out(xp, "architecture_sweep", "html").read_text()
    assert "Kinetics 8 frames (claim, %)" in html


def test_second_run_does_nothing(xp):
    proc = run_snakemake(xp, "experiments")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_claims_are_an_input_of_every_experiment(xp):
    """A changed claim reruns the aggregations: claims.yaml is an input of each experiment's rule."""
    proc = run_snakemake(xp, "-D", "experiments")
    rows = [line.split("\t") for line in proc.stdout.splitlines() if "/experiments/" in line and "table.csv" in line]
    assert len(rows) == len(EXPERIMENTS) and all(str(CLAIMS_FILE) in "\t".join(r) for r in rows), proc.stdout[-3000:]


def test_report_shows_experiments_when_in_report(xp):
    cfg = xp_config(in_report=True)
    (xp / "config.yaml").write_text(yaml.safe_dump(cfg))
    try:
        dry = run_snakemake(xp, "-n", "report")
        text = dry.stdout + dry.stderr
        assert "experiment_clip_length_transfer" not in text  # the experiments are up to date
        run_snakemake(xp, "report")
        html = (xp / "results/mini/report/index.html").read_text()
        assert '<section id="experiments">' in html
        for name in EXPERIMENTS:
            assert f'id="experiment-{name}"' in html
        # switched off, the report neither shows nor needs them
        (xp / "config.yaml").write_text(yaml.safe_dump(xp_config()))
        run_snakemake(xp, "report")
        assert '<section id="experiments">' not in (xp / "results/mini/report/index.html").read_text()
    finally:
        (xp / "config.yaml").write_text(yaml.safe_dump(xp_config()))
