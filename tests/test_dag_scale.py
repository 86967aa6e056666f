"""The full UCF101 job graph: 13,320 stand-in videos, 3 splits, every registered model.

Empty placeholder files for every name in the real split lists (tests/data/ucfTrainTestlist)
are enough for `snakemake -n report`. The graph must scale with shards and models, never with
videos: one decode job per (clip spec, bucket of videos), one index per (clip spec, split), one train and one
evaluate per (split, model). The dry run's time is printed, not asserted (this machine is shared);
`python benchmarks/dag.py` measures it on its own.
"""
from __future__ import annotations

import copy
import importlib.util

import pytest

from support import REAL_LISTS, REPO

pytestmark = pytest.mark.slow


def _bench():
    spec = importlib.util.spec_from_file_location("bench_dag", REPO / "benchmarks" / "dag.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_full_ucf101_dry_run_scales_with_shards_and_models(tmp_path):
    from vidrec.plan.config import validate_config
    from vidrec.plan.layout import shard_buckets
    from vidrec.models import list_models

    bench = _bench()
    n_videos, cfg = bench.setup(tmp_path, REAL_LISTS)
    assert n_videos == 13320
    seconds, jobs, out, cpu = bench.dry_run(tmp_path)
    print(f"snakemake -n report, full UCF101 ({n_videos} videos, {len(list_models())} models, "
          f"3 splits): {seconds:.2f} s wall, {cpu:.2f} s CPU, {jobs.get('total')} jobs")

    models = cfg["datasets"]["ucf101"]["models"]
    assert set(models) == set(list_models())
    clips = {m["clip"] for m in models.values()}
    buckets = shard_buckets(n_videos, validate_config(copy.deepcopy(cfg))["decode"]["videos_per_shard"])
    assert len(buckets) == 14 and clips == {"thesis16", "tran16"}  # 13,320 videos in shards of 1,000
    expected = {
        "manifest": 1,
        "decode": len(clips) * len(buckets),  # 28: one shard per (clip spec, bucket of videos)
        "split_index": len(clips) * 3,        # 6
        "train": 3 * len(models),             # 96
        "evaluate": 3 * len(models),          # 96
        "render_report": 1,
        "report": 1,
    }
    expected["total"] = sum(expected.values())
    assert jobs == expected, out[-3000:]
    assert jobs["total"] < n_videos / 50  # proportional to shards and models, not to videos
