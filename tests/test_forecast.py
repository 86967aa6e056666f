"""The forecast (issue 29): its arithmetic by hand, then a rehearsal and the real run it forecasts.

Unit tests check vidrec/report/forecast_arithmetic.py's sums, schedule, critical path and memory projection against
numbers worked out by hand. The end-to-end test rehearses a tiny dataset (two classes, 3 videos each, in
shards of 2 videos; 2 videos per class rehearsed),
then runs it for real: the rehearsal's report has the Forecast section (every job, the DAG's total and
critical path, memory, disk) and forecast.csv; the real run's report sets each job's forecast beside
its measured time. Nothing here depends on how fast the machine is.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from support import REAL_LISTS, make_dataset, repo_config, run_snakemake
from vidrec.report import forecast_arithmetic as fc
from vidrec.plan import rehearsal
from vidrec.data.formats import ucf101
from vidrec.plan.config import load_config

pytestmark = pytest.mark.slow  # runs Snakemake end to end



# ----------------------------------------------------------------------------- arithmetic
def test_extend_adds_the_cut_work_at_its_unit_cost():
    # 10 s rehearsed; 100 videos instead of 4 at 0.5 s; 30 clips instead of 6 at 0.1 s
    assert fc.extend(10.0, [(0.5, 100, 4), (0.1, 30, 6)]) == pytest.approx(10 + 48 + 2.4)
    assert fc.extend(1.0, [(1.0, 0, 5)]) == 0.0  # never below zero


def test_schedule_on_two_cores_and_one_gpu():
    jobs = [fc.Job("a", "decode", 3), fc.Job("b", "decode", 2), fc.Job("c", "decode", 1),
            fc.Job("t1", "train", 4, gpus=1, after=("a", "b")), fc.Job("t2", "train", 5, gpus=1, after=("c",)),
            fc.Job("e", "evaluate", 1, after=("t1", "t2"))]
    plan = fc.schedule(jobs, cores=2, gpus=1)
    # longest remaining path first: a (3+4+... ) and b start; c at 2 when b ends; at 3 t2 (5+1) takes the
    # GPU before t1 (4+1); t1 at 8; e at 12
    assert plan.start == {"a": 0, "b": 0, "c": 2, "t2": 3, "t1": 8, "e": 12}
    assert plan.total_s == 13
    # no resource limit: the critical path alone, a -> t1 -> e (8) vs c -> t2 -> e (7)
    assert fc.schedule(jobs).total_s == 8
    assert fc.critical_path(jobs) == (8, ["a", "t1", "e"])
    assert fc.gpu_hours(jobs) == pytest.approx(9 / 3600)


def test_schedule_caps_a_job_at_all_cores_and_counts_job_slots():
    jobs = [fc.Job("x", "train", 2, threads=8), fc.Job("y", "train", 2, threads=1)]
    assert fc.schedule(jobs, cores=4).total_s == 4  # x takes all 4 cores: y waits
    assert fc.schedule(jobs, cores=16, max_jobs=1).total_s == 4
    assert fc.schedule(jobs, cores=16).total_s == 2
    with pytest.raises(ValueError, match="unknown"):
        fc.schedule([fc.Job("z", "train", 1, after=("nope",))])


def test_batch_fit_projects_activations_and_names_the_largest_batch():
    # 200 MB static, 1000 MB peak at batch 2: 400 MB per clip; 90% of 2000 MB usable = 1800 MB
    fit = fc.batch_fit(1000, 2000, 200, 2, 4)
    assert fit.projected_mb == 1800 and fit.fits and fit.text().startswith("fits at 4 clips per device")
    big = fc.batch_fit(1000, 2000, 200, 2, 5)
    assert not big.fits and big.largest_batch == 4
    assert "does not fit at 5 clips per device" in big.text() and "about 4 fit; raise the protocol's accumulate" in big.text()
    assert fc.static_memory_mb(2**20, "SGD") == 12  # weights, gradients, momentum: 3 x 4 bytes


def test_real_counts_per_bucket_and_split_by_hand():
    # 5 videos, 2 per shard: buckets 0 {0, 1}, 1 {2, 3}, 2 {4}; split 1: 3 train, 1 test, 1 unused
    videos = pd.DataFrame({"video_id": range(5)})
    membership = pd.DataFrame({"video_id": range(5), "split1": ["train", "test", "train", "unused", "train"],
                               "split2": ["test", "train", "test", "train", "train"]})
    counts = fc.real_counts(videos, membership, [1, 2], videos_per_shard=2)
    assert counts.buckets == {0: 2, 1: 2, 2: 1} and counts.videos == 5
    assert (counts.train, counts.test) == ({1: 3, 2: 3}, {1: 1, 2: 2})
    assert fc.real_counts(videos, membership, [2], videos_per_shard=1000).buckets == {0: 5}


def test_real_counts_from_the_official_lists():
    manifest = ucf101.build(REAL_LISTS.parent, None, check_files_exist=False, lists=REAL_LISTS)
    counts = fc.real_counts(manifest.videos, manifest.membership, [1, 2, 3], videos_per_shard=1000)
    assert counts.videos == 13320 and sorted(counts.buckets) == list(range(14))
    assert counts.buckets[13] == 320 and set(list(counts.buckets.values())[:13]) == {1000}
    assert (counts.train[1], counts.test[1]) == (9537, 3783)
    assert fc.steps_per_epoch(9537, 48) == 199


def test_rehearsal_keeps_the_capped_values_and_names_the_same_real_job():
    real = load_config()
    rehearsed = load_config(overrides=["rehearsal=true"])
    assert rehearsed["evaluate"]["speed_batches"] == 1 and rehearsed["train"]["max_steps"] is not None
    again = load_config(overrides=["rehearsal=true"])  # jobs validate the config a second time
    from vidrec.plan.config import validate_config

    validate_config(again)
    back = rehearsal.real_config(again)
    assert back["evaluate"] == real["evaluate"] and back["train"] == real["train"] and not back["rehearsal"]
    assert fc.identity(rehearsed) == fc.identity(real) == fc.identity(again)
    assert fc.identity(load_config(overrides=["train.threads=3"])) != fc.identity(real)


# ----------------------------------------------------------------------------- rehearsal, then the real run
def _snakemake(work: Path, *args: str) -> str:
    proc = run_snakemake(work, "report", *args)
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def forecast_runs(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("forecast")
    _, lists = make_dataset(work / "tiny", ["Alpha", "Beta"], groups=15, clips=1, frames=20)
    for path in lists.glob("*list0*.txt"):  # groups 1, 8 and 15 only: split 1 tests group 1, trains on 8 and 15
        keep = [line for line in path.read_bytes().decode().splitlines(True) if re.search(r"_g(01|08|15)_", line)]
        path.write_bytes("".join(keep).encode())
    cfg = repo_config()
    cfg["dataset"] = "tiny"
    cfg["clips"]["tiny8"] = {"frames": 8, "crop": 192, "size": 32, "sampling": "uniform", "clips_per_video": 2}
    cfg["datasets"]["tiny"] = {
        "root": str(work / "tiny"), "splits": [1], "clip": "tiny8",
        "models": {"p3d63": {"arch": "p3d63", "protocol": "thesis", "args": {"base_width": 4}}},
        "protocol_overrides": {"thesis": {"epochs": 2, "batch_size": 2}}}
    cfg["evaluate"] = {"end_to_end_videos": 2, "batch_size": 4}
    cfg["decode"] = {"videos_per_shard": 2}  # 6 videos: buckets 0, 1, 2
    # per class, the first 2 videos (paths ..._g01_..., ..._g08_...: a test and a training video of split 1)
    cfg["rehearsal_settings"] = {"videos_per_class": 2, "train_steps": 1, "eval_videos": 2}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    _snakemake(work, "--config", "rehearsal=true")
    _snakemake(work)
    return work


def rows_of(frame: pd.DataFrame, rule: str) -> pd.DataFrame:
    return frame[frame["rule"] == rule]


def _section(html: str) -> str:
    m = re.search(r'<section id="forecast">(.*?)</section>', html, re.S)
    assert m, "no Forecast section"
    return m.group(1)


def test_rehearsal_report_forecasts_every_job_of_the_real_dag(forecast_runs):
    report = forecast_runs / "results" / "tiny-rehearsal" / "report"
    html = _section((report / "index.html").read_text())
    for what in ("DAG total", "on 2 cores, 2 job slots", "Critical path", "GPU-hours", "Shard disk",
                 "Peak host RSS", "fits at 2 clips per device"):
        assert what in html, what
    frame = pd.read_csv(report / "forecast.csv")
    jobs = set(frame["job"])
    # the real DAG: 3 buckets of 2 videos decoded (the rehearsal's held 2, 1, 1), one index, one training,
    # one evaluation
    assert {f"decode/tiny8/b{b:03d}" for b in (0, 1, 2)} <= jobs
    assert set(rows_of(frame, "decode")["real_work"]) == {"2 videos"}
    assert {"manifest", "index/tiny8/split1", "train/split1/p3d63/seed0", "evaluate/split1/p3d63/seed0",
            "report", "total", "critical path"} <= jobs
    rows = frame.set_index("job")
    assert (rows.loc[[j for j in jobs if j not in ("total", "critical path")], "forecast_s"] > 0).all()
    assert rows.loc["train/split1/p3d63/seed0", "real_work"] == "2 epochs x 2 steps"  # 4 training videos, batch 2
    assert rows.loc["evaluate/split1/p3d63/seed0", "real_work"] == "2 videos x 2 clips"
    path = rows.loc["critical path", "real_work"].split(" -> ")
    assert path[0] == "manifest" and path[-2:] == ["evaluate/split1/p3d63/seed0", "report"]
    # the report job: this rehearsal's own, until it forecast (its benchmark file: the whole job, written after)
    rehearsed_report = pd.read_csv(forecast_runs / "results/tiny-rehearsal/benchmarks/report.tsv", sep="\t")["s"].iloc[-1]
    assert 0 < rows.loc["report", "forecast_s"] <= rehearsed_report
    assert rows.loc["report", "real_work"] == "1 run"
    assert rows.loc["total", "forecast_s"] >= rows.loc["critical path", "forecast_s"]
    # the clip spec's formula: 2 clips x 8 frames x 32 x 32 x 3 bytes per video, 6 videos
    assert "<td>0.049</td>" in html and "0.00 GB" in html


def test_real_report_sets_each_forecast_beside_its_measured_time(forecast_runs):
    report = forecast_runs / "results" / "tiny" / "report"
    html = _section((report / "index.html").read_text())
    assert "Forecast by the rehearsal of this configuration" in html
    frame = pd.read_csv(report / "forecast.csv").set_index("job")
    for job in ("train/split1/p3d63/seed0", "evaluate/split1/p3d63/seed0", "decode/tiny8/b002"):
        assert frame.loc[job, "actual_s"] > 0 and frame.loc[job, "forecast_s"] > 0
        assert frame.loc[job, "ratio"] == pytest.approx(frame.loc[job, "forecast_s"] / frame.loc[job, "actual_s"])
