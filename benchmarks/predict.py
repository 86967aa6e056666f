"""End-to-end `vidrec predict` throughput (decoding included) beside its two stages, from one run.

On generated 7 s 320x240 XviD AVIs (UCF101's typical clip), per model (random weights: speed does
not depend on them), one clip per video (the thesis protocol):
  decode-only   videos/s of the decode pool alone (`--workers` processes, one decoder thread each)
  model-only    clips/s of the model alone on random input at `--batch` (one warm-up batch first)
  end-to-end    videos/s of the predict pipeline: the same pool feeding the same model
and end-to-end / min(decode-only, model-only), which should be >= 0.8 when the pipeline overlaps.
Two diagnostics separate the pipeline from the machine: "model clips/s beside decoding" times the
model while the decode pool runs independently (no pipeline), i.e. what the two stages cost each
other when they share the CPU; "e2e, model off-CPU" reruns the pipeline with the model replaced by
a sleep of the measured model time per batch (an accelerator's model stage: time, but no CPU).
"serial bound" is 1 / (1/decode + 1/model), the rate when the two stages cannot run at once.
Decode workers and model threads get separate cores by default (threads = cores // 2, workers =
the rest), so the two stages do not slow each other down; with more threads + workers than cores
they share cores and end-to-end falls toward the harmonic combination of the two rates.
Targets: end-to-end / slower stage >= 0.8, on the CPU and with the model off the CPU (the overlap the
pipeline exists for). Figures and the per-model table go to benchmarks/results/predict.json
(`--out PATH` elsewhere) for benchmarks/render.py.

    python benchmarks/predict.py [--videos 64] [--full-videos 6] [--batch 4] [--workers W] [--threads P]
    python benchmarks/predict.py --only demo         # the demo-sized models only
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from decode import make_videos  # noqa: E402  (benchmarks/decode.py: the decode benchmark's videos)
from record import Record, add_out_argument

from vidrec.evaluation.evaluate import inference_speed  # noqa: E402
from vidrec.inference.decode import DecodePool, clip_plan  # noqa: E402
from vidrec.inference.predict import Predictor  # noqa: E402
from vidrec.models import create_model, model_complexity  # noqa: E402

DEMO16 = {"frames": 16, "crop": 192, "size": 64, "sampling": "uniform", "clips_per_video": 3, "stride": 1}
THESIS16 = {"frames": 16, "crop": 192, "size": 160, "sampling": "uniform", "clips_per_video": 1, "stride": 1}
# (label, arch, model args, clip spec, size group): the demo's models and the thesis's full-size pair
MODELS = [
    ("convlstm_c2d63 (demo, w16)", "convlstm_c2d63", {"base_width": 16}, DEMO16, "demo"),
    ("p3d63 (demo, w16)", "p3d63", {"base_width": 16}, DEMO16, "demo"),
    ("frame_resnet50 (demo, w16)", "frame_resnet50", {"base_width": 16}, DEMO16, "demo"),
    ("convlstm_c2d63 (full)", "convlstm_c2d63", {}, THESIS16, "full"),
    ("p3d199 (full)", "p3d199", {}, THESIS16, "full"),
]


def model_file(path: Path, arch: str, args: dict, clip: dict, classes: int = 101) -> Path:
    """A model.pt in `vidrec train`'s layout with random weights."""
    shape = [3, clip["frames"], clip["size"], clip["size"]]
    model = create_model(arch, num_classes=classes, clip_shape=shape, **args)
    torch.save({"arch": arch, "model_args": args, "num_classes": classes,
                "class_names": [f"class_{i:03d}" for i in range(classes)], "clip": clip, "clip_shape": shape,
                "normalize": {"mean": [0.43, 0.40, 0.37], "std": [0.23, 0.22, 0.22]},
                "augment": {"crop": None, "hflip": False}, "state_dict": model.state_dict()}, path)
    return path


def decode_only(predictor: Predictor, videos: list[Path], workers: int, window: int) -> float:
    spec, keep = clip_plan(predictor.spec, 1)
    tasks = [(i, str(p), spec, tuple(keep), 1) for i, p in enumerate(videos)]
    with DecodePool(workers, 1, window=window) as pool:
        start = time.perf_counter()
        out = list(pool.imap(tasks))
        seconds = time.perf_counter() - start
    bad = [d for d in out if d.error]
    if bad:
        raise RuntimeError(f"decode failed: {bad[0].path}: {bad[0].error}")
    return len(videos) / seconds


def model_beside_decoding(predictor: Predictor, videos: list[Path], workers: int, batch: int, batches: int) -> float:
    """Model-only clips/s while the decode pool decodes the same videos in a loop, independently:
    what the two stages do to each other when they share the CPU (no pipeline involved)."""
    spec, keep = clip_plan(predictor.spec, 1)
    tasks = [(i, str(p), spec, tuple(keep), 1) for i, p in enumerate(videos)]
    stop = threading.Event()

    def decode_loop(pool: DecodePool) -> None:
        while not stop.is_set():
            for _ in pool.imap(tasks):
                if stop.is_set():
                    break

    with DecodePool(workers, 1, window=2 * workers) as pool:
        thread = threading.Thread(target=decode_loop, args=(pool,))
        thread.start()
        try:
            time.sleep(0.3)
            return inference_speed(predictor.model, predictor.clip_shape, batch, batches, predictor.rt)
        finally:
            stop.set()
            thread.join()


def end_to_end(predictor: Predictor, videos: list[Path], workers: int, batch: int, window: int) -> float:
    with DecodePool(workers, 1, window=window) as pool:
        run = predictor.predict(videos, clips=1, batch=batch, workers=workers, pool=pool)
    if run.errors:
        raise RuntimeError(f"predict failed: {run.errors[:2]}")
    return run.videos_per_s


def accelerator_like(predictor: Predictor, clips_per_s: float):
    """The model stage as an accelerator would run it: the measured model time, without using the CPU."""
    n = len(predictor.class_names)

    def scores(clips, crops: int = 1):
        time.sleep(len(clips) * crops / clips_per_s)
        return np.full((len(clips), n) if crops == 1 else (len(clips), crops, n), 1.0 / n)
    return scores


def bench_model(label, arch, args, clip, videos, batch, workers, threads, model_batches, repeats, tmp) -> dict:
    torch.set_num_threads(threads)
    path = model_file(tmp / f"{arch}_{clip['size']}.pt", arch, args, clip)
    predictor = Predictor(path, device="cpu", threads=threads)
    shape = predictor.clip_shape
    gflops = model_complexity(predictor.model, shape)["gflops"]
    window = 2 * batch + 2 * workers
    predictor.warm_up(batch)
    rows = []
    for _ in range(repeats):  # the three measurements side by side, so load changes hit all three
        d = decode_only(predictor, videos, workers, window)
        m = inference_speed(predictor.model, shape, batch, model_batches, predictor.rt)
        b = model_beside_decoding(predictor, videos, workers, batch, model_batches)
        e = end_to_end(predictor, videos, workers, batch, window)
        predictor.scores = accelerator_like(predictor, m)
        s = end_to_end(predictor, videos, workers, batch, window)
        del predictor.scores
        rows.append((d, m, e, s, b))
    d, m, e, s, b = (statistics.median(r[i] for r in rows) for i in range(5))
    return {"model": label, "arch": arch, "clip": f"{shape[1]}x{shape[2]}x{shape[3]}", "gflops_per_clip": gflops,
            "videos": len(videos), "batch": batch, "workers": workers, "threads": threads,
            "decode_videos_per_s": d, "model_clips_per_s": m, "model_beside_decoding_clips_per_s": b,
            "end_to_end_videos_per_s": e,
            "ratio_to_slower": e / min(d, m), "serial_bound_videos_per_s": 1 / (1 / d + 1 / m), "sim_end_to_end_videos_per_s": s, "sim_ratio_to_slower": s / min(d, m),
            "repeats": repeats}


def main() -> None:
    cores = os.cpu_count() or 1
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=64, help="videos for the demo-sized models")
    ap.add_argument("--full-videos", type=int, default=6, help="videos for the full-size models")
    ap.add_argument("--seconds", type=float, default=7.0)
    ap.add_argument("--batch", type=int, default=4, help="clips per model call (demo-sized models)")
    ap.add_argument("--full-batch", type=int, default=2, help="clips per model call (full-size models)")
    ap.add_argument("--threads", type=int, default=max(1, cores // 2), help="model threads")
    ap.add_argument("--workers", type=int, default=None, help="decode processes (default: the other cores)")
    ap.add_argument("--model-batches", type=int, default=3, help="timed batches for model-only (demo)")
    ap.add_argument("--repeats", type=int, default=3,
                    help="repeat the measurements, medians shown (demo-sized models; full-size: once)")
    ap.add_argument("--only", choices=["demo", "full"], default=None)
    ap.add_argument("--models", type=lambda s: [m for m in s.split(",") if m], default=None,
                    help="comma list of architectures to keep (default: all in the chosen groups)")
    add_out_argument(ap, __file__)
    args = ap.parse_args()
    workers = args.workers or max(1, cores - args.threads)
    rec = Record("predict", parameters={
        "videos": args.videos, "full_videos": args.full_videos, "seconds": args.seconds, "batch": args.batch,
        "full_batch": args.full_batch, "threads": args.threads, "workers": workers,
        "model_batches": args.model_batches, "repeats": args.repeats, "only": args.only, "models": args.models,
        "clips_per_video": 1})
    print(f"machine: {cores} cores, torch {torch.__version__}, model threads {args.threads}, "
          f"decode workers {workers}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n_max = max(args.videos if args.only != "full" else 0, args.full_videos if args.only != "demo" else 0)
        start = time.perf_counter()
        videos = make_videos(tmp, n_max, args.seconds)
        print(f"{n_max} videos of {args.seconds:g} s, 320x240 XviD, written in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        for label, arch, margs, clip, group in MODELS:
            if (args.only and group != args.only) or (args.models and arch not in args.models):
                continue
            full = group == "full"
            row = bench_model(label, arch, margs, clip, videos[:args.full_videos if full else args.videos],
                              args.full_batch if full else args.batch, workers, args.threads,
                              1 if full else args.model_batches, 1 if full else args.repeats, tmp)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| model | clip | GFLOPs/clip | videos | batch | workers | threads | decode-only videos/s | "
          "model-only clips/s | model clips/s beside decoding | end-to-end videos/s | e2e / slower | "
          "serial bound | e2e, model off-CPU | its ratio |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['model']} | {r['clip']} | {r['gflops_per_clip']:.2f} | {r['videos']} | {r['batch']} | "
              f"{r['workers']} | {r['threads']} | {r['decode_videos_per_s']:.1f} | {r['model_clips_per_s']:.2f} | "
              f"{r['model_beside_decoding_clips_per_s']:.2f} | {r['end_to_end_videos_per_s']:.2f} | "
              f"{r['ratio_to_slower']:.2f} | {r['serial_bound_videos_per_s']:.2f} | "
              f"{r['sim_end_to_end_videos_per_s']:.2f} | {r['sim_ratio_to_slower']:.2f} |")
    record(rec, rows).write(args.out)


def record(rec: Record, rows: list[dict]) -> Record:
    """Per model: the table row, and end-to-end / slower stage as figures with the 0.8 target."""
    rec.table("predict", "`vidrec predict` end to end beside its stages, one clip per video (medians of the repeats)",
              [("model", "model", None), ("clip", "clip", None), ("gflops_per_clip", "GFLOPs/clip", None),
               ("videos", "videos", None), ("batch", "batch", None), ("workers", "workers", None),
               ("threads", "threads", None), ("decode_videos_per_s", "decode-only", "videos/s"),
               ("model_clips_per_s", "model-only", "clips/s"),
               ("model_beside_decoding_clips_per_s", "model beside decoding", "clips/s"),
               ("end_to_end_videos_per_s", "end to end", "videos/s"), ("ratio_to_slower", "e2e / slower", "x"),
               ("serial_bound_videos_per_s", "serial bound", "videos/s"),
               ("sim_end_to_end_videos_per_s", "e2e, model off-CPU", "videos/s"),
               ("sim_ratio_to_slower", "its e2e / slower", "x")], rows)
    for r in rows:
        key = r["model"].split(" ")[0] + ("_demo" if "demo" in r["model"] else "_full")
        serial = r["serial_bound_videos_per_s"] / min(r["decode_videos_per_s"], r["model_clips_per_s"])
        rec.figure(f"{key}_e2e_over_slower", f"{r['model']}: end to end / slower stage, on the CPU",
                   r["ratio_to_slower"], "x", target=">= 0.8", note=f"serial bound / slower stage {serial:.2f}")
        rec.figure(f"{key}_offcpu_e2e_over_slower", f"{r['model']}: end to end / slower stage, model off the CPU",
                   r["sim_ratio_to_slower"], "x", target=">= 0.8")
    return rec


if __name__ == "__main__":
    main()
