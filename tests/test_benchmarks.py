"""The benchmarks run and record (tiny sizes, CPU), and benchmarks/README.md is what their files say.

Nothing here depends on how fast anything ran: the smoke runs check that each script writes a
results file with figures, units and provenance; the speed itself is the benchmarks' business.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from support import REPO

from record import load
from render import fmt

BENCH = REPO / "benchmarks"


def _bench(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    if check:
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done


def _recorded(path: Path, benchmark: str, figures: set[str] = frozenset(), tables: set[str] = frozenset()) -> dict:
    """The results file exists and carries figures with units and the run's provenance."""
    data = load(path)
    assert data["benchmark"] == benchmark and data["command"].startswith(("python benchmarks/", "CORES="))
    assert data["figures"] and all(isinstance(f["value"], float) and f["unit"] for f in data["figures"])
    assert all(f["met"] in (True, False) for f in data["figures"] if "target" in f)
    assert {f["name"] for f in data["figures"]} >= figures and set(data["tables"]) >= tables
    assert data["machine"]["cpu"] and data["machine"]["cores"] >= 1
    assert data["versions"]["torch"] and data["versions"]["python"]
    assert len(data["git"]["commit"]) == 40 and data["date_utc"].endswith("UTC")
    return data


# ----------------------------------------------------------------------------- render.py
def test_readme_matches_the_committed_results_files():
    done = _bench("benchmarks/render.py", "--check", check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_render_detects_a_changed_results_file(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(BENCH / "results", results)
    readme = tmp_path / "README.md"
    shutil.copy(BENCH / "README.md", readme)
    args = ["benchmarks/render.py", "--results", str(results), "--readme", str(readme)]
    assert _bench(*args, "--check").returncode == 0
    path = sorted(results.glob("*.json"))[0]
    data = json.loads(path.read_text())
    data["figures"][0]["value"] = 12345.0
    shown = fmt(12345.0, data["figures"][0]["unit"])
    path.write_text(json.dumps(data))
    done = _bench(*args, "--check", check=False)
    assert done.returncode == 1 and "differs" in done.stdout
    assert any(line.startswith("+") and shown in line for line in done.stdout.splitlines()), done.stdout
    _bench(*args)  # re-render the copy: then it matches again
    assert shown in readme.read_text() and _bench(*args, "--check").returncode == 0


# ----------------------------------------------------------------------------- smoke runs, tiny sizes
@pytest.mark.slow
def test_loader_benchmark_records(tmp_path):
    _bench("benchmarks/loader.py", "--videos", "2", "--batch", "2", "--threads", "1", "--models", "p3d63",
           "--base-width", "8", "--workers", "0", "--out", str(tmp_path / "x.json"))
    _recorded(tmp_path / "x.json", "loader", {"loader_0_workers", "best_loader_over_train"}, {"train_step"})


def test_frames_store_benchmark_records(tmp_path):
    _bench("benchmarks/frames_store.py", "--videos", "2", "--frames", "20", "30", "--size", "16", "24", "--clip",
           "4", "--batch", "2", "--batches", "1", "--reps", "1", "--model", "", "--out", str(tmp_path / "x.json"))
    data = _recorded(tmp_path / "x.json", "frames_store", {"loader_over_memcpy", "loader_over_h5py"},
                     {"loader", "disk"})
    every = data["tables"]["disk"]["rows"][0]
    assert every["gb"] == pytest.approx(13320 * 175 * 16 * 24 * 3 / 1e9)  # videos x mean frames x frame bytes


@pytest.mark.slow
def test_models_benchmark_records(tmp_path):
    _bench("benchmarks/models.py", "--quick", "--threads", "1", "--batch", "2", "--models",
           "p3d63,convlstm_c2d63,p3d199", "--base-width", "8", "--clip", "4", "32", "32", "--tv-clip", "4", "32", "32",
           "--plain-batches", "2", "--plain-reps", "1", "--out", str(tmp_path / "x.json"))
    data = _recorded(tmp_path / "x.json", "models", {"convlstm_p3d199_forward", "convlstm_p3d199_train",
                                                     "recurrence_fwd_c64", "ours_tv_r3d_18",
                                                     "plain_over_ours_train_c64_b2"}, {"models", "convlstm_plain"})
    assert [r["model"] for r in data["tables"]["models"]["rows"]] == ["p3d63", "convlstm_c2d63", "p3d199"]
    targets = {f["name"]: f["target"] for f in data["figures"] if "target" in f}
    assert targets["convlstm_p3d199_forward"] == "<= 1.2" and targets["ours_tv_mc3_18"] == "<= 1.05"
    assert targets["plain_over_ours_fwd_c256_b2"] == ">= 1.3"


def test_decode_benchmark_records(tmp_path):
    _bench("benchmarks/decode.py", "--videos", "3", "--seconds", "1", "--out", str(tmp_path / "x.json"))
    data = _recorded(tmp_path / "x.json", "decode", {"stage_1_worker", "workers_2_over_1"})
    assert {f["name"]: f["unit"] for f in data["figures"]}["stage_1_worker"] == "videos/s"


@pytest.mark.slow
def test_dag_benchmark_records(tmp_path):
    _bench("benchmarks/dag.py", "--repeat", "1", "--out", str(tmp_path / "x.json"))
    data = _recorded(tmp_path / "x.json", "dag", {"dry_run_best", "jobs"}, {"jobs"})
    assert data["parameters"]["videos"] == 13320


@pytest.mark.slow
def test_predict_benchmark_records(tmp_path):
    _bench("benchmarks/predict.py", "--only", "demo", "--models", "p3d63", "--videos", "2", "--seconds", "1",
           "--repeats", "1", "--model-batches", "1", "--batch", "2", "--threads", "1", "--workers", "1",
           "--out", str(tmp_path / "x.json"))
    data = _recorded(tmp_path / "x.json", "predict",
                     {"p3d63_demo_e2e_over_slower", "p3d63_demo_offcpu_e2e_over_slower"}, {"predict"})
    assert [r["arch"] for r in data["tables"]["predict"]["rows"]] == ["p3d63"]


def test_pipeline_record_step(tmp_path):
    """pipeline.sh's Python step on a stand-in of a finished demo clone (the demo itself takes 15 minutes):
    the accuracies come from the report's accuracy.csv, job times from Snakemake's benchmark files."""
    report = tmp_path / "clone" / "results" / "demo" / "report"
    report.mkdir(parents=True)
    (report / "accuracy.csv").write_text(
        "method,model,arch,splits,n_splits,clip_top1_mean,clip_top1_std,clip_top5_mean,clip_top5_std,"
        "video_top1_mean,video_top1_std,video_top5_mean,video_top5_std,chance\n"
        "P3D (p3d63),p3d63,p3d63,1,1,0.9,,1.0,,0.99,,1.0,,0.1\n"
        "ConvLSTM (c),convlstm_c2d63,convlstm_c2d63,1,1,0.8,,1.0,,0.875,,1.0,,0.1\n")
    (report / "index.html").write_text("<html><body>report</body></html>")
    bench = tmp_path / "clone" / "results" / "demo" / "benchmarks" / "train" / "split1"
    bench.mkdir(parents=True)
    (bench / "p3d63.tsv").write_text("s\th:m:s\tmax_rss\tcpu_time\n301.5\t0:05:01\t900\t298.0\n")
    browser = tmp_path / "browser"  # stands in for chromium: prints the page it was given
    browser.write_text('#!/bin/sh\nfor a; do u="$a"; done\ncat "${u#file://}"\n')
    browser.chmod(0o755)
    _bench("benchmarks/pipeline.py", "--clone", str(tmp_path / "clone"), "--full", "700.5", "--noop", "3.2",
           "--dry", "2.9", "--command", "CORES=2 benchmarks/pipeline.sh", "--browser", str(browser),
           "--out", str(tmp_path / "x.json"))
    data = _recorded(tmp_path / "x.json", "pipeline", {"demo_report", "noop_rerun", "report_page_load"},
                     {"accuracy", "jobs"})
    fig = {f["name"]: f for f in data["figures"]}
    assert fig["demo_report"]["value"] == 700.5 and fig["demo_report"]["met"] is True
    assert fig["noop_rerun"]["target"] == "<= 5" and fig["video_top1_p3d63"]["value"] == pytest.approx(99.0)
    assert fig["video_top1_convlstm_c2d63"]["unit"] == "%"
    assert data["tables"]["jobs"]["rows"] == [{"job": "train/split1/p3d63", "seconds": 301.5, "cpu_seconds": 298.0}]
    assert data["command"] == "CORES=2 benchmarks/pipeline.sh"


def test_pipeline_script_refuses_unknown_arguments():
    done = subprocess.run(["bash", str(BENCH / "pipeline.sh"), "--bogus"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "usage" in done.stderr


@pytest.mark.slow
def test_gpu_benchmark_smoke_run_on_cpu(tmp_path):
    """A GPU-only table must not rot unseen between GPU loans; its file (here a CPU run's, written to a
    temporary copy of the results as if from a GPU machine) renders in the README's GPU block."""
    results = tmp_path / "results"
    shutil.copytree(BENCH / "results", results)
    path = results / "gpu-test-machine.json"
    out = _bench("benchmarks/gpu.py", "--device", "cpu", "--batch", "2", "--steps", "1", "--warmup", "1",
                 "--threads", "1", "--models", "p3d63,convlstm_c2d63,p3d199", "--clip", "4", "32", "32",
                 "--base-width", "8",
                 "--out", str(path)).stdout
    rows = [line for line in out.splitlines() if line.startswith("| p3d") or line.startswith("| convlstm")]
    assert len(rows) == 3 and all("nan" not in r.split("|")[4] for r in rows), out
    assert "convlstm_c2d63 / p3d199 inference time per clip" in out and "practical capacity" in out
    data = _recorded(path, "gpu", {"convlstm_p3d199_infer"}, {"models"})
    assert data["figures"][0]["target"] == "<= 2.0" and len(data["tables"]["models"]["rows"]) == 3
    readme = tmp_path / "README.md"
    shutil.copy(BENCH / "README.md", readme)
    _bench("benchmarks/render.py", "--results", str(results), "--readme", str(readme))
    text = readme.read_text()
    block = text[text.index("<!-- results:gpu-* -->"):text.index("<!-- /results:gpu-* -->")]
    assert "benchmarks/results/gpu-test-machine.json" in block and "| convlstm_c2d63 |" in block
    assert "`gpu-test-machine.json`" in text[:text.index("<!-- /results-summary -->")]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
def test_gpu_benchmark_without_cuda_says_so_and_writes_nothing(capsys):
    """In this process (the script's main, which says so before it sets anything up): a fresh
    interpreter would spend its seconds importing torch to print one line."""
    import gpu  # benchmarks/gpu.py (pytest's pythonpath)

    before = sorted((BENCH / "results").glob("gpu-*.json"))
    assert gpu.main([]) == 0
    out = capsys.readouterr().out
    assert "no CUDA device" in out and "no results file written" in out
    assert sorted((BENCH / "results").glob("gpu-*.json")) == before


def test_datascale_tree_and_job_files(tmp_path):
    """benchmarks/datascale.py's parts (its full run loads every core for minutes): every listed name is a
    hard link to one of the distinct videos, of the lengths asked for; Snakemake's job files are read by rule."""
    import cv2
    from datascale import build_tree, job_benchmarks

    lists, classes = tmp_path / "lists", ("ApplyEyeMakeup", "ApplyLipstick")
    lists.mkdir()
    for f in (BENCH.parent / "tests" / "data" / "ucfTrainTestlist").glob("*.txt"):
        lines = f.read_text().splitlines(keepends=True)
        (lists / f.name).write_text("".join(ln for ln in lines if ln.split("/")[0].split(" ")[-1].strip() in classes))
    names, sources = build_tree(tmp_path / "root", lists, (0.2, 0.4))
    assert len(names) == 259 and len(sources) == 2  # the official lists name 145 + 114 videos of these classes
    frames = [int(cv2.VideoCapture(str(s)).get(cv2.CAP_PROP_FRAME_COUNT)) for s in sources]
    assert frames == [5, 10]
    inodes = {(tmp_path / "root" / "UCF-101" / n).stat().st_ino for n in names}
    assert inodes == {s.stat().st_ino for s in sources}
    bench = tmp_path / "work" / "results" / "ucf101" / "benchmarks"
    for rel, s in (("manifest.tsv", 1.5), ("decode/thesis16/g07.tsv", 9.0), ("index/thesis16/split2.tsv", 2.0)):
        (bench / rel).parent.mkdir(parents=True, exist_ok=True)
        (bench / rel).write_text(f"s\th:m:s\tmax_rss\tcpu_time\n{s}\t0:00:01\t{100 * s}\t{s}\n")
    jobs = {j["job"]: (j["rule"], j["s"], j["max_rss_mb"]) for j in job_benchmarks(tmp_path / "work")}
    assert jobs == {"manifest": ("manifest", 1.5, 150.0), "decode/thesis16/g07": ("decode", 9.0, 900.0),
                    "index/thesis16/split2": ("split_index", 2.0, 200.0)}
