"""The rehearsal switch runs the real UCF101 job, cut to minutes, apart from the real artifacts.

A tree in UCF101's layout named by the official lists (the real files' syntax and CRLF line endings)
cut to their first classes, as hard links to two short generated 320x240 XviD AVIs, the repository's
`ucf101` configuration pointed at it, and `snakemake report --config rehearsal=true`. The cut keeps
what the rehearsal's cost is made of apart from decoding (the networks at full width on the real clip
specs and protocols: the classifier is the only layer that depends on the class count); the 101-class
tree's 13,320 names are planned by benchmarks/rehearsal.py and tests/test_dag_scale.py. To fit CI's
two cores the test keeps split 1 and two of the configured runs (ConvLSTM-C2D-63 on the thesis's
clips and R(2+1)D-18 on Tran et al.'s, so both clip specs and both protocols run) with batches of 1,
one test video, and 2 of tran16's 10 clips per video (the count changes no shape); the timed
end-to-end pass, which decodes the test video again, runs in the miniature workflow tests.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch

from support import BIN, REAL_LISTS, REPO

pytestmark = pytest.mark.slow
RUNS = ("convlstm_c2d63", "r2plus1d_18")
CLASSES = 3  # the first classes of classInd.txt, with every list line that names them


def first_classes(lists: Path, out: Path, n: int) -> Path:
    """The official lists cut to their first n classes, byte for byte otherwise (CRLF kept)."""
    out.mkdir(parents=True)
    rows = (lists / "classInd.txt").read_bytes().splitlines(keepends=True)[:n]
    (out / "classInd.txt").write_bytes(b"".join(rows))
    keep = tuple(row.split()[1] + b"/" for row in rows)
    for path in sorted(lists.glob("*list0[123].txt")):
        lines = path.read_bytes().splitlines(keepends=True)
        (out / path.name).write_bytes(b"".join(line for line in lines if line.startswith(keep)))
    return out


def _bench():
    import rehearsal  # benchmarks/rehearsal.py (pytest's pythonpath)

    return rehearsal


@pytest.fixture(scope="module")
def rehearsed(tmp_path_factory):
    bench = _bench()
    work = tmp_path_factory.mktemp("rehearsal")
    lists = first_classes(REAL_LISTS, work / "lists", CLASSES)
    names, _ = bench.build_tree(work / "ucf101", lists, bench.LENGTHS)
    assert len(names) == len(set(names)) > 25 * CLASSES and b"\r\n" in (lists / "trainlist01.txt").read_bytes()
    cfg = bench.write_config(work, work / "ucf101", [
        "datasets.ucf101.splits=[1]",
        "rehearsal_settings={batch_size: 1, epochs: 1, train_steps: 1, eval_videos: 1}",
        "train.threads=1", "clips.tran16.clips_per_video=2", "evaluate.end_to_end_videos=0"])
    models = cfg["datasets"]["ucf101"]["models"]
    cfg["datasets"]["ucf101"]["models"] = {k: models[k] for k in RUNS}
    import yaml

    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    _, out = bench.run_rehearsal(work, cores=2, timeout=1500)
    return work, out, bench


def test_rehearsal_runs_every_stage_apart_from_the_real_job(rehearsed):
    work, out, bench = rehearsed
    jobs = bench.job_counts(out)
    # the real job's buckets (1,000 videos each: one for the cut lists) per clip spec (thesis16, tran16),
    # sparse in a rehearsal; 3 runs on split 1
    assert jobs == {"manifest": 1, "decode": 2, "split_index": 2, "train": 2, "evaluate": 2,
                    "render_report": 1, "report": 1}, jobs
    res = work / "results" / "ucf101-rehearsal"
    assert not (work / "results" / "ucf101").exists() and not (work / "data" / "ucf101").exists()
    videos = (res / "manifest" / "videos.csv").read_text().splitlines()
    assert len(videos) - 1 == CLASSES * 4  # rehearsal_settings.videos_per_class
    membership = pd.read_csv(res / "manifest" / "splits.csv")
    for split in ("split1", "split2", "split3"):  # every class keeps a training and a test video in every split
        per_class = membership.merge(pd.read_csv(res / "manifest" / "videos.csv"), on="video_id").groupby("label")[split]
        assert per_class.agg(lambda s: {"train", "test"} <= set(s)).all(), split
    html = (res / "report" / "index.html").read_text()
    assert 'data-banner="rehearsal"' in html and "<title>REHEARSAL vidrec" in html
    for run in RUNS:
        folder = res / "split1" / run / "seed0"
        train = json.loads((folder / "train.json").read_text())
        ev = json.loads((folder / "evaluation.json").read_text())
        assert train["epochs"] == 1 and train["train_clips"] <= 2 and "REHEARSAL" in " ".join(train["adjustments"])
        assert ev["n_videos"] == 1
        blob = torch.load(folder / "model.pt", weights_only=True)
        assert "base_width" not in blob["model_args"]  # full width: the registry's default
    tran = json.loads((res / "split1" / "r2plus1d_18" / "seed0" / "evaluation.json").read_text())
    assert tran["clip_spec"] == "tran16" and "128x171" in tran["test_clip"]


def test_rehearsal_never_satisfies_a_real_target(rehearsed):
    work, _, bench = rehearsed
    snakemake = BIN / "snakemake"
    proc = subprocess.run([str(snakemake), "-s", str(REPO / "Snakefile"), "-d", str(work), "-n", "report"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = bench.job_counts(proc.stdout + proc.stderr)
    assert jobs["train"] == 2 and jobs["decode"] == 2  # the real job: its bucket of both clip specs, undecoded
