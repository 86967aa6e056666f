"""Job-graph build time of the full UCF101 DAG: `snakemake -n report`, 3 splits, every model.

Stand-in files (empty, the names only) for all 13,320 videos of the real split lists in
tests/data/ucfTrainTestlist (or --lists), a config with `dataset: ucf101`, splits 1-3 and
every registered model (`vidrec.models.list_models()`: the thesis's on thesis16 clips with the
thesis protocol, Tran et al.'s on tran16 clips with theirs), then the dry run, timed from the
command's start to its end (Python start-up, Snakefile parsing, DAG, job listing), as wall time and
as the command's CPU time (user + sys: what it costs on an idle core, whatever else the machine is
doing). The job count grows with shards (buckets of videos x clip specs) and models x splits, never with videos.
The figures go to benchmarks/results/dag.json (`--out PATH` elsewhere) for benchmarks/render.py.

    python benchmarks/dag.py [--lists DIR] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from record import REPO, Record, add_out_argument, load_average  # noqa: E402

LISTS = REPO / "tests" / "data" / "ucfTrainTestlist"  # the official lists, committed as test data
THESIS_FAMILIES = ("convlstm_c2d", "p3d", "frame_resnet")


def list_videos(lists: Path) -> list[str]:
    """Every video named by the train/test lists (class folder / file name)."""
    names = set()
    for f in sorted(lists.glob("*list0[123].txt")):
        for line in f.read_text().splitlines():
            if line.strip():
                names.add(line.split()[0].strip())
    return sorted(names)


def build_standin(root: Path, lists: Path = LISTS) -> int:
    """root/UCF-101/<Class>/<video>.avi as empty files, root/ucfTrainTestlist copied; n videos."""
    shutil.copytree(lists, root / "ucfTrainTestlist", dirs_exist_ok=True)
    videos = list_videos(lists)
    for name in videos:
        path = root / "UCF-101" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    return len(videos)


def full_config(root: Path) -> dict:
    """The repository's config, switched to ucf101 at `root`, 3 splits, every registered model."""
    from vidrec.models import list_models

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    models = {}
    for name in list_models():
        thesis = name.startswith(THESIS_FAMILIES)
        models[name] = {"arch": name, "protocol": "thesis" if thesis else "tran",
                        "clip": "thesis16" if thesis else "tran16"}
    cfg["dataset"] = "ucf101"
    cfg["datasets"]["ucf101"].update({"root": str(root), "splits": [1, 2, 3], "models": models})
    return cfg


def dry_run(workdir: Path, target: str = "report") -> tuple[float, dict[str, int], str, float]:
    """(wall seconds, jobs per rule, output, CPU seconds) of `snakemake -n <target>` in workdir."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([str(bin_dir / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
                           target, "-n", "--quiet", "rules"], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"snakemake -n {target} failed:\n{out[-4000:]}")
    table = out[out.index("Job stats"):] if "Job stats" in out else ""
    jobs = {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)}
    return seconds, jobs, out, cpu


def setup(workdir: Path, lists: Path = LISTS) -> tuple[int, dict]:
    n = build_standin(workdir / "data" / "ucf101", lists)
    cfg = full_config(workdir / "data" / "ucf101")
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    return n, cfg


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lists", type=Path, default=LISTS)
    p.add_argument("--repeat", type=int, default=3)
    add_out_argument(p, __file__)
    args = p.parse_args()
    rec = Record("dag", parameters={"repeat": args.repeat, "target": "report", "splits": [1, 2, 3]})
    with tempfile.TemporaryDirectory() as tmp:
        n, cfg = setup(Path(tmp), args.lists)
        models = cfg["datasets"]["ucf101"]["models"]
        rec.parameters |= {"videos": n, "models": len(models)}
        print(f"{n} stand-in videos, {len(models)} models, splits 1-3")
        times, cpus = [], []
        for i in range(args.repeat):
            seconds, jobs, _, cpu = dry_run(Path(tmp))
            times.append(seconds)
            cpus.append(cpu)
            print(f"run {i + 1}: snakemake -n report: {seconds:.2f} s wall, {cpu:.2f} s CPU, "
                  f"{jobs.get('total')} jobs {jobs}")
    print(f"wall: best {min(times):.2f} s, median {statistics.median(times):.2f} s; "
          f"CPU: median {statistics.median(cpus):.2f} s; load average {load_average()}")
    what = f"`snakemake -n report`, {n} videos, {len(models)} models x 3 splits"
    rec.figure("dry_run_best", f"{what}: wall time, best of {args.repeat}", min(times), "s")
    rec.figure("dry_run_median", f"{what}: wall time, median of {args.repeat}", statistics.median(times), "s")
    rec.figure("dry_run_cpu_median", f"{what}: CPU time (user + sys), median", statistics.median(cpus), "s")
    rec.figure("jobs", "jobs in the DAG", jobs.get("total", sum(v for k, v in jobs.items() if k != "total")), "jobs")
    rec.table("jobs", "Jobs per rule", [("rule", "rule", None), ("jobs", "jobs", None)],
              [{"rule": k, "jobs": v} for k, v in jobs.items() if k != "total"])
    rec.write(args.out)


if __name__ == "__main__":
    main()
