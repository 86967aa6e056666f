"""The data stage at UCF101's full scale: 13,320 videos through manifest -> shards -> split views.

The 13,320 names of the official lists (tests/data/ucfTrainTestlist, or --lists) are hard links to a
handful of distinct generated 320x240 XviD AVIs (vidrec.data.synth, 25 fps) whose lengths average
UCF101's ~7.2 s (its videos run 1-71 s), assigned round-robin, so every decode job sees the same mix.
Then the real workflow runs: `snakemake --cores 2 shards` on a config that points
`datasets.ucf101.root` at that tree with one model (its clip spec, default thesis16) and splits 1-3:
manifest + leakage audit, one shard per bucket of decode.videos_per_shard videos (14 decode jobs at
1,000), one split view per split.

Recorded (benchmarks/results/datascale.json, `--out PATH` elsewhere): the run's wall time, videos/s
per core (videos / the decode jobs' summed wall time: a decode job holds one core, decode.workers = 1)
and per decode job, shard bytes (total, per video), and each job's peak RSS from Snakemake's
benchmark files. It loads every core for a few minutes: run it on an otherwise idle machine.

    python benchmarks/datascale.py [--cores 2] [--clip thesis16] [--keep DIR] [--lengths 2.5,4.5,...]
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import yaml

from dag import LISTS, list_videos  # noqa: E402
from record import REPO, Record, add_out_argument, load_average, work_folder

from vidrec.plan.config import load_config  # noqa: E402

# distinct video lengths (s): their mean is UCF101's 7.2 s, their spread a few of its typical lengths
LENGTHS = (2.5, 4.5, 6.5, 8.5, 14.0)
def distinct_videos(folder: Path, lengths: tuple[float, ...], fps: int = 25) -> list[Path]:
    """One generated 320x240 XviD AVI per length (synth's pinwheel, a different class and group each)."""
    from vidrec.data.synth import class_definitions, render_video, write_avi

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, seconds in enumerate(lengths):
        path = folder / f"len{seconds:g}s.avi"
        if not path.exists():
            cdef = class_definitions(10)[k % 10]
            frames = render_video(cdef, group=k + 1, clip=1, fps=fps, min_seconds=seconds, max_seconds=seconds)
            write_avi(path, frames, fps)
        paths.append(path)
    return paths


def build_tree(root: Path, lists: Path, lengths: tuple[float, ...]) -> tuple[list[str], list[Path]]:
    """root/UCF-101/<Class>/<name>.avi hard-linked round-robin to the distinct videos; lists copied."""
    sources = distinct_videos(root / "distinct", lengths)
    shutil.copytree(lists, root / "ucfTrainTestlist", dirs_exist_ok=True)
    names = list_videos(lists)
    for i, name in enumerate(names):
        path = root / "UCF-101" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            os.link(sources[i % len(sources)], path)
    return names, sources


def write_config(workdir: Path, root: Path, clip: str) -> None:
    """The repository's config switched to ucf101 at `root`, splits 1-3, one model on `clip`."""
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    model = "convlstm_c2d63" if clip == "thesis16" else "r2plus1d_18"
    protocol = "thesis" if clip == "thesis16" else "tran"
    cfg["dataset"] = "ucf101"
    cfg["datasets"]["ucf101"].update({"root": str(root), "splits": [1, 2, 3], "clip": clip,
                                      "models": {model: {"arch": model, "protocol": protocol, "clip": clip}}})
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))


def job_benchmarks(workdir: Path) -> list[dict]:
    """Snakemake's benchmark file of every job: rule kind (from its folder), seconds, max RSS (MB)."""
    rows = []
    for tsv in sorted(workdir.glob("results/*/benchmarks/**/*.tsv")):
        with tsv.open() as f:
            rec = next(csv.DictReader(f, delimiter="\t"))
        rel = tsv.relative_to(next(p for p in tsv.parents if p.name == "benchmarks"))
        rule = {"decode": "decode", "index": "split_index"}.get(rel.parts[0], tsv.stem)
        rows.append({"job": str(rel.with_suffix("")), "rule": rule, "s": float(rec["s"]),
                     "max_rss_mb": float(rec["max_rss"]) if rec.get("max_rss") not in (None, "", "-") else None})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lists", type=Path, default=LISTS)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--clip", default="thesis16", help="clip spec of the shards (default thesis16: 16x160x160)")
    p.add_argument("--lengths", type=lambda s: tuple(float(v) for v in s.split(",")), default=LENGTHS,
                   help=f"seconds of the distinct videos (default {','.join(map(str, LENGTHS))})")
    p.add_argument("--keep", type=Path, help="build the tree and run in DIR and keep it (default: a temporary folder)")
    add_out_argument(p, __file__)
    args = p.parse_args()
    rec = Record("datascale", parameters={"cores": args.cores, "clip": args.clip, "lengths_s": list(args.lengths),
                                          "fps": 25, "size": "320x240", "splits": [1, 2, 3]})
    with work_folder(args.keep, "datascale") as workdir:
        root = workdir / "data" / "ucf101"
        t0 = time.perf_counter()
        names, sources = build_tree(root, args.lists, args.lengths)
        print(f"{len(names)} names hard-linked to {len(sources)} distinct videos "
              f"({sum(p.stat().st_size for p in sources) / 1e6:.1f} MB) in {time.perf_counter() - t0:.0f} s")
        write_config(workdir, root, args.clip)
        bin_dir = Path(sys.executable).parent
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1"}
        cmd = [str(bin_dir / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--cores", str(args.cores), "shards", "--quiet", "rules"]
        load_before = load_average()
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"snakemake shards failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
        jobs = job_benchmarks(workdir)
        shards = sorted(workdir.glob(f"data/ucf101/shards/{args.clip}/b*.h5"))
        with open(workdir / "results/ucf101/manifest/videos.csv", newline="") as f:
            size = load_config(workdir / "config.yaml")["decode"]["videos_per_shard"]
            per_bucket = Counter(f"b{int(r['video_id']) // size:03d}" for r in csv.DictReader(f))
        shard_bytes = sum(s.stat().st_size for s in shards)
    decode = [j for j in jobs if j["rule"] == "decode"]
    for j in decode:
        j["videos"] = per_bucket[Path(j["job"]).name]
        j["videos_per_s"] = j["videos"] / j["s"]
    decode_s = sum(j["s"] for j in decode)
    n = len(names)
    mean_len = sum(args.lengths[i % len(args.lengths)] for i in range(n)) / n
    print(f"snakemake --cores {args.cores} shards: {wall:.0f} s wall, {len(jobs)} jobs, {len(shards)} shards "
          f"{shard_bytes / 1e9:.2f} GB; decode {n / decode_s:.1f} videos/s per core; load {load_before} -> "
          f"{load_average()}")
    rec.parameters |= {"videos": n, "distinct_videos": len(sources), "mean_video_s": round(mean_len, 2),
                       "shards": len(per_bucket), "command": " ".join(["snakemake", *cmd[5:]])}
    what = f"{n} videos, {args.clip}, {args.cores} cores"
    rec.figure("wall_s", f"`snakemake --cores {args.cores} shards` (manifest, {len(decode)} decode jobs, split views), "
               f"{what}: wall time", wall, "s")
    rec.figure("videos_per_s", f"{what}: videos/s over the whole run", n / wall, "videos/s")
    rec.figure("videos_per_s_per_core", "decode: videos / summed decode-job wall time (one core per job)",
               n / decode_s, "videos/s")
    rec.figure("decode_job_median_videos_per_s", "decode: videos/s of the median job",
               statistics.median(j["videos_per_s"] for j in decode), "videos/s")
    rec.figure("shard_bytes", f"shards of {args.clip}, all {len(shards)} buckets of videos", shard_bytes / 1e9, "GB")
    rec.figure("shard_bytes_per_video", "shard bytes per video", shard_bytes / n / 1e6, "MB")
    for rule in ("manifest", "decode", "split_index"):
        rss = [j["max_rss_mb"] for j in jobs if j["rule"] == rule and j["max_rss_mb"] is not None]
        if rss:
            rec.figure(f"peak_rss_{rule}", f"peak RSS of a {rule} job (max over {len(rss)})", max(rss), "MB")
    rows = []
    for rule in ("manifest", "decode", "split_index"):
        sel = [j for j in jobs if j["rule"] == rule]
        if sel:
            rss = [j["max_rss_mb"] for j in sel if j["max_rss_mb"] is not None]
            rows.append({"rule": rule, "jobs": len(sel), "median_s": statistics.median(j["s"] for j in sel),
                         "total_s": sum(j["s"] for j in sel), "max_rss_mb": max(rss) if rss else None})
    rec.table("jobs", "Jobs per rule (Snakemake benchmark files): wall seconds and peak RSS",
              [("rule", "rule", None), ("jobs", "jobs", None), ("median_s", "median", "s"),
               ("total_s", "total", "s"), ("max_rss_mb", "peak RSS", "MB")], rows)
    rec.write(args.out)


if __name__ == "__main__":
    main()
