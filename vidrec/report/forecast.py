"""The report's Forecast section: the real job's cost from its rehearsal, and later beside what it cost.

In a rehearsal's report: every job of the real DAG with its forecast wall time (vidrec/report/forecast_arithmetic.py's
arithmetic on the unit costs each rehearsal job measured: its train.json, metrics.csv,
evaluation.json, decode statistics and Snakemake benchmark file), the DAG's total on the resources the
rehearsal was given and its critical path, GPU-hours, peak memory and whether each run's batch fits,
and the shards' disk. forecast.csv holds one row per job (and the DAG's total and critical path).

In a real run's report, when a rehearsal of the same configuration (`vidrec.report.forecast_arithmetic.identity`) left
its forecast.csv under results/<dataset>-rehearsal/report/: each job's forecast beside its measured
wall time (the job's benchmark file), so the forecast calibrates itself.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from vidrec.report import forecast_arithmetic as fc
from vidrec.plan import rehearsal
from vidrec.data import formats
from vidrec.plan.layout import Layout
from vidrec.report import render
from vidrec.report.load import ArtifactReader, Results, forecast_inputs
from vidrec.report.formatting import fmt_duration
from vidrec.plan.runs import resolve_runs
from vidrec.training.schedule import batch_plan

COLUMNS = ["job", "rule", "forecast_s", "actual_s", "ratio", "rehearsed_s", "unit_cost", "real_work",
           "threads", "gpus", "peak_rss_mb", "memory", "config"]
DAG_RULE = "(dag)"  # forecast.csv's rows of the whole DAG: its scheduled total and its critical path


@dataclass(frozen=True)
class Resources:
    """What the DAG is scheduled on: the command's --cores (0: no local limit, a cluster), job slots, GPUs."""

    cores: int
    jobs: int
    gpus: int | None  # None: every visible GPU


def train_job(split: int, run: str, seed: int) -> str:
    return f"train/split{split}/{run}/seed{seed}"


def evaluate_job(split: int, run: str, seed: int) -> str:
    return f"evaluate/split{split}/{run}/seed{seed}"


def decode_job(clip: str, bucket: int) -> str:
    """The decode job of one shard bucket, named as rules/data.smk names its benchmark file."""
    return f"decode/{clip}/b{bucket:03d}"


def index_job(clip: str, split: int) -> str:
    return f"index/{clip}/split{split}"


REPORT_JOB = "report"  # the render_report job, named as its benchmark file


def seconds_this_job_has_run() -> float:
    """Wall seconds since this process started (what Snakemake's benchmark of the job counts): from
    /proc on Linux, else since this module was imported (the interpreter's start-up left out)."""
    try:
        start_ticks = float(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _IMPORTED


_IMPORTED = time.monotonic()


def benchmark(reader: ArtifactReader, layout: Layout, job: str) -> dict | None:
    """A job's Snakemake benchmark (s, max_rss, ... : the mean of its rows), or None if it has none."""
    path = layout.job_benchmark(job)
    if not path.exists():
        return None
    frame = reader.csv(path, sep="\t")
    return {k: float(pd.to_numeric(frame[k], errors="coerce").mean()) for k in ("s", "max_rss") if k in frame}


# ----------------------------------------------------------------------------- the rehearsal's forecast
def _row(job: str, rule: str, seconds: float, rehearsed: float | None, unit: str, work: str, threads: int,
         gpus: int, rss: float | None = None, memory: str = "") -> dict:
    return {"job": job, "rule": rule, "forecast_s": seconds, "rehearsed_s": rehearsed, "unit_cost": unit,
            "real_work": work, "threads": threads, "gpus": gpus, "peak_rss_mb": rss, "memory": memory}


def real_counts(cfg: dict, splits: list[int]) -> fc.Counts:
    """The real job's counts, from the manifest of the whole dataset a rehearsal subsets (built again
    from the format's inputs: the rehearsal's own manifest holds only its subset)."""
    manifest = formats.build_manifest(formats.dataset(cfg), missing=cfg["decode"]["on_bad_video"])
    return fc.real_counts(manifest.videos, manifest.membership, splits, cfg["decode"]["videos_per_shard"])


def rehearsal_forecast(res: Results, reader: ArtifactReader, layout: Layout,
                       resources: Resources) -> tuple[pd.DataFrame, fc.Plan, list[fc.Job], dict]:
    """Every real job's forecast (one row each), the DAG's schedule, its jobs, and the disk per clip spec."""
    cfg, real_cfg = res.cfg, rehearsal.real_config(res.cfg)
    real_runs = resolve_runs(real_cfg)
    counts = real_counts(cfg, res.splits)
    rows, waits = [], {}

    def add(row: dict, after: tuple[str, ...]) -> None:
        rows.append(row)
        waits[row["job"]] = after

    man = benchmark(reader, layout, "manifest")
    if man:
        add(_row("manifest", "manifest", man["s"], man["s"], "as rehearsed (reads the same dataset)", "",
                 1, 0, man.get("max_rss")), ())
    stats = pd.DataFrame(res.shard_stats)
    disk = {}
    for clip, shards in stats.groupby("clip_spec"):
        # The rehearsal keeps the real video ids: it decodes the real job's buckets, sparse. Each real
        # bucket extends its own rehearsed job (the mean one where the rehearsal had none).
        bench = {int(b): benchmark(reader, layout, decode_job(clip, int(b))) for b in shards["bucket"]}
        rehearsed = dict(zip(shards["bucket"].astype(int), shards["videos"].astype(int)))
        walls = [b["s"] for b in bench.values() if b]
        mean_wall = sum(walls) / len(walls) if walls else float(shards["seconds"].mean())
        per_video = float(shards["seconds"].sum()) / max(int(shards["videos"].sum()), 1)
        mean_videos = float(shards["videos"].mean())
        rss = max((b.get("max_rss", 0.0) for b in bench.values() if b), default=None)
        for g, n in counts.buckets.items():
            wall = bench[g]["s"] if bench.get(g) else mean_wall
            done = rehearsed.get(g, mean_videos)
            add(_row(decode_job(clip, g), "decode", fc.extend(wall, [(per_video, n, done)]), wall,
                     f"{per_video:.3g} s/video", f"{n} videos", cfg["decode"]["workers"], 0, rss),
                ("manifest",) if man else ())
        from vidrec.data.video import ClipSpec
        from vidrec.data.diskspace import shard_bytes

        spec = ClipSpec.from_config(cfg["clips"][clip])
        stored = float(shards["bytes"].sum()) if "bytes" in shards else float("nan")
        planned = sum(shard_bytes(spec, int(n)) for n in shards["videos"])  # the formula, on the rehearsal's shards
        disk[clip] = {"videos": counts.videos, "bytes_per_video": spec.bytes_per_video,
                      "bytes": sum(shard_bytes(spec, n) for n in counts.buckets.values()),
                      "rehearsal_overhead": stored / max(planned, 1)}
    decoded = {clip: tuple(decode_job(clip, g) for g in counts.buckets) for clip in disk}
    for clip in disk:
        for split in res.splits:
            b = benchmark(reader, layout, index_job(clip, split))
            if b:
                add(_row(index_job(clip, split), "split_index", b["s"], b["s"], "as rehearsed", "", 1, 0,
                         b.get("max_rss")), decoded[clip])
    for _, r in res.runs.iterrows():
        split, run, seed = int(r["split"]), r["model"], int(r["seed"])
        real = real_runs[run]
        clips_per_video = int(real.clip["clips_per_video"])
        per_video = clips_per_video if real.protocol["train_clips"] == "all" else 1
        train_real = counts.train[split] * per_video * real.epochs
        val_real = counts.test[split] * real.epochs
        epochs = int(r["train_epochs"])
        last = res.metrics[(res.metrics["split"] == split) & (res.metrics["model"] == run)
                           & (res.metrics["seed"] == seed)].sort_values("epoch").iloc[-1]
        s_clip = 1.0 / float(last["train_clips_per_s"])
        s_infer = 1.0 / float(r["infer_clips_per_s"])
        gpus = int(r.get("train_world_size", 1)) if str(r["train_device"]).startswith("cuda") else 0
        bench = benchmark(reader, layout, train_job(split, run, seed))
        wall = bench["s"] if bench else float(r["train_total_time_s"])
        batch = int(real.protocol["batch_size"])
        memory = ""
        if "train_peak_memory_mb" in r and pd.notna(r["train_peak_memory_mb"]):
            static = fc.static_memory_mb(float(r["params"]), real.protocol["optimizer"]["name"])
            # micro-batches: the rehearsal's as train.json states it, the real job's from its batch plan
            measured = int(r["train_per_device_batch"])
            micro = batch_plan(real.protocol, max(1, real.train["gpus"]), real.train["nodes"]).per_device
            fit = fc.batch_fit(float(r["train_peak_memory_mb"]), float(r["train_memory_total_mb"]), static,
                               measured, micro)
            memory = ("" if str(r["train_device"]).startswith("cuda") else "host: ") + fit.text() + (
                f" (projected from {measured} clips per device)" if micro != measured else "")
        warm = "after a warm-up epoch" if epochs >= 2 else "first epoch, warm-up included"
        after = [index_job(real.clip_name, split)]
        if real.init_from_run:
            after.append(train_job(split, real.init_from_run, seed))
        add(_row(train_job(split, run, seed), "train",
                 fc.extend(wall, [(s_clip, train_real, epochs * int(r["train_train_clips"])),
                                  (s_infer, val_real, epochs * int(r["train_val_clips"]))]),
                 wall, f"{s_clip * batch:.3g} s/step at batch {batch} ({warm})",
                 f"{real.epochs} epochs x {fc.steps_per_epoch(train_real // real.epochs, batch)} steps",
                 real.train["threads"], gpus, bench.get("max_rss") if bench else None, memory),
            tuple(after))
        ev = benchmark(reader, layout, evaluate_job(split, run, seed))
        e_wall = ev["s"] if ev else float(r["eval_seconds"])
        test_clips = counts.test[split] * clips_per_video
        work = [(s_infer, test_clips, float(r["n_clips"]))]
        e2e_real = min(int(real_cfg["evaluate"]["end_to_end_videos"]), counts.test[split])
        if pd.notna(r.get("end_to_end_videos")) and r.get("end_to_end_seconds"):
            work.append((float(r["end_to_end_seconds"]) / float(r["end_to_end_videos"]), e2e_real,
                         float(r["end_to_end_videos"])))
        timed = int(real_cfg["evaluate"]["speed_batches"]) - int(cfg["evaluate"]["speed_batches"])
        work.append((s_infer, timed * int(real_cfg["evaluate"]["batch_size"]), 0))
        add(_row(evaluate_job(split, run, seed), "evaluate", fc.extend(e_wall, work), e_wall,
                 f"{s_infer * 1e3:.3g} ms/clip", f"{counts.test[split]} videos x {clips_per_video} clips",
                 real.train["threads"], 1 if gpus else 0, ev.get("max_rss") if ev else None),
            (train_job(split, run, seed),))
    # The report job: this very job until it writes the forecast (the figures are drawn by then); the real
    # one renders as many runs, from larger per-video files. It waits for every other job.
    so_far = seconds_this_job_has_run()
    add(_row(REPORT_JOB, "render_report", so_far, so_far, "as rehearsed (this job, until its forecast)",
             f"{len(res.runs)} run{'' if len(res.runs) == 1 else 's'}", 1, 0), tuple(waits))
    # a job waits only for jobs of this DAG (a run initialised from one the report does not list: its own DAG)
    jobs = [fc.Job(r["job"], r["rule"], r["forecast_s"], max(int(r["threads"]), 1), int(r["gpus"]),
                   tuple(a for a in waits[r["job"]] if a in waits)) for r in rows]
    gpus = gpu_limit(resources, jobs)
    plan = fc.schedule(jobs, resources.cores or None, gpus, resources.jobs or None)
    frame = pd.DataFrame(rows)
    frame["config"] = fc.identity(cfg)
    frame["start_s"] = frame["job"].map(plan.start)
    return frame, plan, jobs, disk


def gpu_limit(resources: Resources, jobs: list[fc.Job]) -> int | None:
    """The GPUs the schedule shares: as given, else every visible one when a job takes GPUs."""
    if resources.gpus is not None or not any(j.gpus for j in jobs):
        return resources.gpus
    from vidrec.core.provenance import gpus

    return len(gpus())


def dag_rows(plan: fc.Plan, config: str) -> pd.DataFrame:
    return pd.DataFrame([
        {"job": "total", "rule": DAG_RULE, "forecast_s": plan.total_s, "real_work": "scheduled", "config": config},
        {"job": "critical path", "rule": DAG_RULE, "forecast_s": plan.critical_s,
         "real_work": " -> ".join(plan.critical_path), "config": config}])


def rehearsal_body(frame: pd.DataFrame, plan: fc.Plan, jobs: list[fc.Job], disk: dict,
                   resources: Resources, gpus: int | None) -> list[str]:
    """The section in a rehearsal's report."""
    cores = f"{resources.cores} cores" if resources.cores else "no local core limit"
    where = f"{cores}, {resources.jobs or 'unlimited'} job slots, " + (
        f"{gpus} GPU(s)" if gpus is not None else "no GPU limit")
    stage = frame.groupby("rule", sort=False)["forecast_s"].agg(["count", "sum", "max"]).reset_index()
    stage.columns = ["Rule", "Jobs", "Forecast (job-seconds)", "Longest job (s)"]
    jobs_show = pd.DataFrame({
        "Job": frame["job"], "Forecast": frame["forecast_s"].map(fmt_duration),
        "Rehearsed (s)": frame["rehearsed_s"].round(1), "Unit cost": frame["unit_cost"],
        "Real work": frame["real_work"], "Threads": frame["threads"], "GPUs": frame["gpus"],
        "Peak RSS (MB)": frame["peak_rss_mb"].round(0), "Memory": frame["memory"]})
    fits = frame.loc[frame["rule"] == "train", ["job", "memory"]]
    disk_rows = pd.DataFrame([{"Clip spec": c, "Videos": d["videos"], "MB per video": round(d["bytes_per_video"] / 1e6, 3),
                               "Shards (GB)": round(d["bytes"] / 1e9, 2),
                               "Rehearsal's shards: stored / formula": round(d["rehearsal_overhead"], 3)}
                              for c, d in disk.items()])
    rss = frame["peak_rss_mb"].max()
    return [
        render.para("What the real job (rehearsal: false, same configuration) will cost, from what each rehearsal "
                    "job measured on this set-up: its wall time, plus the work the rehearsal cut at the unit cost it "
                    "measured (decode seconds per video; training seconds per clip in the last epoch, after a warm-up "
                    "epoch, the real loader included; inference seconds per clip after a warm-up batch; end-to-end "
                    "seconds per video). Counts from the real dataset's manifest: videos per shard bucket, training steps per epoch x "
                    "epochs per run, test clips x clips per video. The report job: this rehearsal's report job until it "
                    "wrote this section (its figures drawn), as the real one renders as many runs."),
        render.kv([("DAG total", f"{fmt_duration(plan.total_s)} on {where} (longest remaining path first)"),
                   ("Critical path", f"{fmt_duration(plan.critical_s)}: {' -> '.join(plan.critical_path)}"),
                   ("GPU-hours", f"{fc.gpu_hours(jobs):.2f}"),
                   ("Job-hours on cores", f"{sum(j.seconds * j.threads for j in jobs) / 3600:.2f}"),
                   ("Peak host RSS of a job", "n/a" if pd.isna(rss) else f"{rss:,.0f} MB (Snakemake benchmark files)"),
                   ("Shard disk", f"{sum(d['bytes'] for d in disk.values()) / 1e9:.2f} GB "
                                  "(vidrec/data/diskspace.py: K x T x H x W x 3 bytes per video, uncompressed, "
                                  "plus HDF5's share)")]),
        "<h3>Per stage</h3>", render.table(stage.round(1), "forecast-stages"),
        "<h3>Memory: does each run's batch fit?</h3>",
        render.bullets([f"{j}: {m or 'n/a (no peak recorded in train.json)'}" for j, m in fits.itertuples(index=False)]),
        "<h3>Shard disk per clip spec</h3>", render.table(disk_rows, "forecast-disk"),
        render.details(f"Every job ({len(frame)}; forecast.csv)", render.table(jobs_show, "forecast")),
    ]


# ----------------------------------------------------------------------------- the real run: beside actual
def actual_frame(res: Results, reader: ArtifactReader, layout: Layout, forecast_csv: Path | None) -> tuple[pd.DataFrame, str]:
    """The real run's jobs with their measured wall time and, when its rehearsal's forecast matches this
    configuration, the forecast beside it; and a sentence on where the forecast came from."""
    names = ["manifest"] + [decode_job(s["clip_spec"], int(s["bucket"])) for s in res.shard_stats]
    names += [index_job(c, s) for c in sorted({s["clip_spec"] for s in res.shard_stats}) for s in res.splits]
    for _, r in res.runs.iterrows():
        names += [train_job(int(r["split"]), r["model"], int(r["seed"])),
                  evaluate_job(int(r["split"]), r["model"], int(r["seed"]))]
    rows = []
    for job in names:
        b = benchmark(reader, layout, job)
        rows.append({"job": job, "rule": job.split("/")[0].replace("index", "split_index"),
                     "actual_s": b["s"] if b else None, "peak_rss_mb": b.get("max_rss") if b else None})
    frame = pd.DataFrame(rows)
    own = fc.identity(res.cfg)
    if forecast_csv is None:
        note = ("No rehearsal forecast of this configuration: run the rehearsal (`--config rehearsal=true`) "
                "first to see each job's forecast here.")
        return frame.assign(forecast_s=None, ratio=None), note
    fore = reader.csv(forecast_csv)
    if fore.empty or (fore["config"].astype(str) != own).any():
        return frame.assign(forecast_s=None, ratio=None), (
            f"The rehearsal's forecast ({forecast_csv}) is of another configuration (identity "
            f"{fore['config'].iloc[0] if not fore.empty else 'n/a'}, this run's {own}): not shown.")
    frame = frame.merge(fore[["job", "forecast_s"]], on="job", how="left")
    frame["ratio"] = frame["forecast_s"] / frame["actual_s"]
    dag = fore[fore["rule"] == DAG_RULE].set_index("job")["forecast_s"]
    note = (f"Forecast by the rehearsal of this configuration ({forecast_csv}); the DAG's forecast total was "
            f"{fmt_duration(dag.get('total'))}, its critical path {fmt_duration(dag.get('critical path'))}.")
    return frame, note


def actual_body(frame: pd.DataFrame, note: str) -> list[str]:
    stage = frame.groupby("rule", sort=False)[["forecast_s", "actual_s"]].sum(min_count=1).reset_index()
    stage["ratio"] = stage["forecast_s"] / stage["actual_s"]
    stage.columns = ["Rule", "Forecast (job-seconds)", "Actual (job-seconds)", "Forecast / actual"]
    show = pd.DataFrame({"Job": frame["job"], "Forecast": frame["forecast_s"].map(fmt_duration),
                         "Actual": frame["actual_s"].map(fmt_duration),
                         "Forecast / actual": frame["ratio"].astype(float).round(2),
                         "Peak RSS (MB)": frame["peak_rss_mb"].astype(float).round(0)})
    return [render.para("Each job's measured wall time (its Snakemake benchmark file) beside the forecast its "
                        "rehearsal made. " + note),
            render.table(stage.round(2), "forecast-stages"),
            render.details(f"Every job ({len(frame)}; forecast.csv)", render.table(show, "forecast"))]


def section(res: Results, layout: Layout, resources: Resources | None) -> tuple[pd.DataFrame, list[str], list[Path]]:
    """forecast.csv's frame, the section's HTML and the files read, for a rehearsal or a real run."""
    reader = ArtifactReader()
    if rehearsal.active(res.cfg):
        resources = resources or default_resources(res.cfg)
        frame, plan, jobs, disk = rehearsal_forecast(res, reader, layout, resources)
        reader.read.extend(formats.inputs(formats.dataset(res.cfg)))
        body = rehearsal_body(frame, plan, jobs, disk, resources, gpu_limit(resources, jobs))
        frame = pd.concat([frame, dag_rows(plan, fc.identity(res.cfg))], ignore_index=True)
    else:
        found = forecast_inputs(res.cfg, layout)
        frame, note = actual_frame(res, reader, layout, found[0] if found else None)
        frame["config"] = fc.identity(res.cfg)
        body = actual_body(frame, note)
    return frame.reindex(columns=COLUMNS + [c for c in frame.columns if c not in COLUMNS]), body, reader.read


def default_resources(cfg: dict) -> Resources:
    """By hand (no --cores): this machine's usable cores, one job per core, every visible GPU."""
    from vidrec.core.provenance import hardware

    cores = int(hardware()["usable_cores"] or 1)
    return Resources(cores, cores, None)
