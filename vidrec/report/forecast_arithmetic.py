"""The forecast's arithmetic: what the real job will cost, from what its rehearsal measured.

A rehearsal (vidrec/plan/rehearsal.py) runs every job of the real DAG on a cut of the work. Each of its
jobs measures a unit cost on the real set-up: decode seconds per video, training seconds per clip
after a warm-up epoch (the real loader included; x batch = seconds per step), inference seconds per
clip, end-to-end seconds per video, peak memory. A real job's forecast is its rehearsal job's wall time
plus the work the rehearsal cut, at those unit costs (`extend`): start-up, model building and warm-up
are in the measured wall time once, as they are in the real job. The DAG is then scheduled on the
given cores, job slots and GPUs (`schedule`, longest remaining path first, as a list scheduler), and
its critical path found (`critical_path`). Memory: `batch_fit` projects the peak to the real batch.

Torch-free; no file is read here: vidrec/report/forecast.py builds the real dataset's manifest (for
`real_counts`), gathers the measurements and renders the section.
"""
from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from vidrec.plan import rehearsal
from vidrec.plan.config import stable_hash
from vidrec.plan.layout import bucket_of

# Share of a device's memory a job may plan to use: the caching allocator's fragmentation and the
# CUDA context live in the rest.
MEMORY_HEADROOM = 0.9
# Optimizer state tensors per parameter (momentum, running averages); others: 2 (Adam's moments).
OPTIMIZER_STATES = {"SGD": 1, "RMSprop": 1, "Adam": 2, "AdamW": 2}


def identity(cfg: dict) -> str:
    """A hash of the real job's configuration, the rehearsal's settings left out: the same for a
    rehearsal and the real run it forecasts (vidrec.plan.rehearsal.real_config)."""
    real = rehearsal.real_config(cfg)
    return stable_hash({k: v for k, v in real.items() if k not in ("rehearsal", "rehearsal_settings")})


def extend(wall_s: float, work: Iterable[tuple[float, float, float]]) -> float:
    """A real job's seconds: its rehearsal job's wall time plus, for each (seconds per unit, real units,
    rehearsed units), the units the rehearsal cut at the measured cost. Never below zero."""
    return max(0.0, wall_s + sum(unit_s * (real - rehearsed) for unit_s, real, rehearsed in work))


# ----------------------------------------------------------------------------- counts
@dataclass(frozen=True)
class Counts:
    """The real job's videos, from its dataset's manifest: per shard bucket, and per split train/test."""

    buckets: Mapping[int, int]
    train: Mapping[int, int]
    test: Mapping[int, int]

    @property
    def videos(self) -> int:
        return sum(self.buckets.values())


def real_counts(videos: pd.DataFrame, membership: pd.DataFrame, splits: Iterable[int],
                videos_per_shard: int) -> Counts:
    """Count the real manifest's videos (vidrec.data.formats.build_manifest: `videos` with video_id,
    `membership` with split<N> = "train"/"test"/"unused"): every video once in its bucket
    (vidrec/plan/layout.py's bucket_of: what one decode job decodes), and each configured split's train and
    test videos."""
    buckets: dict[int, int] = {}
    for video_id in videos["video_id"]:
        b = bucket_of(int(video_id), videos_per_shard)
        buckets[b] = buckets.get(b, 0) + 1
    train = {s: int((membership[f"split{s}"] == "train").sum()) for s in splits}
    test = {s: int((membership[f"split{s}"] == "test").sum()) for s in splits}
    return Counts(dict(sorted(buckets.items())), train, test)


def steps_per_epoch(clips: int, batch: int) -> int:
    return math.ceil(clips / batch) if clips else 0


# ----------------------------------------------------------------------------- memory
def static_memory_mb(params: float, optimizer: str) -> float:
    """Weights, gradients and optimizer state in fp32: what a training job holds at any batch."""
    return params * 4 * (2 + OPTIMIZER_STATES.get(optimizer, 2)) / 2**20


@dataclass(frozen=True)
class Fit:
    batch: int  # clips per device in one forward/backward pass (the micro-batch)
    projected_mb: float
    total_mb: float
    largest_batch: int  # the largest micro-batch that fits, about (a linear model of activations)

    @property
    def fits(self) -> bool:
        return self.projected_mb <= MEMORY_HEADROOM * self.total_mb

    def text(self) -> str:
        share = f"{self.projected_mb:,.0f} of {self.total_mb:,.0f} MB ({self.projected_mb / self.total_mb:.0%})"
        if self.fits:
            return f"fits at {self.batch} clips per device: {share}"
        return (f"does not fit at {self.batch} clips per device ({share}; {MEMORY_HEADROOM:.0%} usable): about "
                f"{self.largest_batch} fit; raise the protocol's accumulate (the global batch stays batch_size) "
                "or lower batch_size")


def batch_fit(peak_mb: float, total_mb: float, static_mb: float, measured_batch: int, batch: int) -> Fit:
    """Project a peak measured at a micro-batch of `measured_batch` clips per device to `batch` clips per
    device: the static part stays, activations scale with the clips; the largest micro-batch is where
    the projection meets the usable share of the total."""
    static_mb = min(static_mb, peak_mb)
    per_clip = (peak_mb - static_mb) / max(measured_batch, 1)
    projected = static_mb + per_clip * batch
    usable = MEMORY_HEADROOM * total_mb - static_mb
    largest = int(usable // per_clip) if per_clip > 0 else batch
    return Fit(batch, projected, total_mb, max(largest, 0))


# ----------------------------------------------------------------------------- the DAG
@dataclass(frozen=True)
class Job:
    """One job of the real DAG with its forecast seconds and what it holds while it runs."""

    name: str
    rule: str
    seconds: float
    threads: int = 1
    gpus: int = 0
    after: tuple[str, ...] = ()  # names of the jobs it waits for


@dataclass
class Plan:
    """A schedule of the DAG: every job's start and end, the makespan, the critical path."""

    start: dict[str, float] = field(default_factory=dict)
    end: dict[str, float] = field(default_factory=dict)
    critical_path: list[str] = field(default_factory=list)
    critical_s: float = 0.0

    @property
    def total_s(self) -> float:
        return max(self.end.values(), default=0.0)


def _check(jobs: list[Job]) -> dict[str, Job]:
    by_name = {j.name: j for j in jobs}
    if len(by_name) != len(jobs):
        raise ValueError("two jobs share a name")
    for j in jobs:
        missing = [a for a in j.after if a not in by_name]
        if missing:
            raise ValueError(f"job {j.name} waits for unknown jobs {missing}")
    return by_name


def _remaining(by_name: dict[str, Job]) -> dict[str, float]:
    """Each job's seconds plus the longest chain of jobs waiting for it (its 'bottom level')."""
    children: dict[str, list[str]] = {n: [] for n in by_name}
    for j in by_name.values():
        for a in j.after:
            children[a].append(j.name)
    memo: dict[str, float] = {}

    def rest(name: str, path: tuple[str, ...] = ()) -> float:
        if name in path:
            raise ValueError(f"the jobs form a cycle through {name}")
        if name not in memo:
            memo[name] = by_name[name].seconds + max((rest(c, path + (name,)) for c in children[name]), default=0.0)
        return memo[name]

    for n in by_name:
        rest(n)
    return memo


def critical_path(jobs: list[Job]) -> tuple[float, list[str]]:
    """The longest chain of dependent jobs (seconds, names in order): no schedule ends sooner."""
    by_name = _check(jobs)
    rest = _remaining(by_name)
    children: dict[str, list[str]] = {n: [] for n in by_name}
    for j in jobs:
        for a in j.after:
            children[a].append(j.name)
    roots = [j.name for j in jobs if not j.after]
    if not roots:
        return 0.0, []
    node = max(roots, key=lambda n: rest[n])
    path = [node]
    while children[node]:
        node = max(children[node], key=lambda n: rest[n])
        path.append(node)
    return rest[path[0]], path


def schedule(jobs: list[Job], cores: int | None = None, gpus: int | None = None,
             max_jobs: int | None = None) -> Plan:
    """Run the DAG on `cores` (a job takes its threads, at most all cores), `gpus` (a job takes its
    gpus, at most all) and `max_jobs` slots; None: no limit. Whenever a job ends, the ready jobs start,
    longest remaining path first, as many as fit."""
    by_name = _check(jobs)
    rest = _remaining(by_name)
    waiting = {j.name: set(j.after) for j in jobs}
    ready = [n for n, deps in waiting.items() if not deps]
    free_cores, free_gpus, free_slots = cores, gpus, max_jobs
    running: list[tuple[float, str]] = []
    plan, now = Plan(), 0.0

    def need(job: Job) -> tuple[int, int]:
        return (min(job.threads, cores) if cores else job.threads), (min(job.gpus, gpus) if gpus is not None else job.gpus)

    while ready or running:
        ready.sort(key=lambda n: (-rest[n], n))
        for name in list(ready):
            c, g = need(by_name[name])
            if (free_cores is None or c <= free_cores) and (free_gpus is None or g <= free_gpus) and \
                    (free_slots is None or free_slots > 0):
                ready.remove(name)
                free_cores = None if free_cores is None else free_cores - c
                free_gpus = None if free_gpus is None else free_gpus - g
                free_slots = None if free_slots is None else free_slots - 1
                plan.start[name] = now
                heapq.heappush(running, (now + by_name[name].seconds, name))
        if not running:
            raise ValueError(f"jobs {ready} can never start on {cores} cores, {gpus} GPUs, {max_jobs} slots")
        now = running[0][0]
        while running and running[0][0] == now:  # every job ending now frees its share first
            _, name = heapq.heappop(running)
            plan.end[name] = now
            c, g = need(by_name[name])
            free_cores = None if free_cores is None else free_cores + c
            free_gpus = None if free_gpus is None else free_gpus + g
            free_slots = None if free_slots is None else free_slots + 1
            for other, deps in waiting.items():
                if name in deps:
                    deps.discard(name)
                    if not deps:
                        ready.append(other)
    plan.critical_s, plan.critical_path = critical_path(jobs)
    return plan


def gpu_hours(jobs: Iterable[Job]) -> float:
    return sum(j.seconds * j.gpus for j in jobs) / 3600
