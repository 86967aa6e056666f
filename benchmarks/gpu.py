"""GPU throughput table: train and inference clips/s per model, the thesis's speed comparison, peak memory.

Runs each model the way `vidrec train` / `vidrec evaluate` do on CUDA (the trainer's own runtime set-up:
cudnn.benchmark, TF32, bf16 autocast; channels_last_3d; optionally torch.compile), on random clips
at batch 48 and 16x160x160 (the thesis's setting), and prints one markdown table:

  model | params | GFLOPs/clip | train clips/s | infer clips/s | peak train / infer memory

then ConvLSTM-C2D-63 / P3D-199 inference time per clip (target on a GPU <= 2.0x; the thesis measured
37 videos/s against 194 clips/s = 5.3x, FLOP ratio ~1.74x) and the thesis's "practical capacity":
videos/s with one clip per video (the thesis's protocol) and with 10 (Tran et al.'s).

    python benchmarks/gpu.py                              # on a CUDA machine (~5 minutes on one H100)
    python benchmarks/gpu.py --compile                    # also torch.compile each model
    python benchmarks/gpu.py --device cpu --batch 2 --steps 1 --models p3d63 --clip 8 64 64  # smoke run

Without a CUDA device and without `--device cpu`, it says so, writes nothing and exits with status 0
(a GPU is a bonus, never a dependency). On a GPU the figures and the table go to the machine's own file,
benchmarks/results/gpu-<GPU name>.json (gpu-<GPU name>-compile.json with --compile), which
benchmarks/render.py shows in benchmarks/README.md; `--out PATH` writes elsewhere. A CPU smoke run
writes a file only with `--out`.
"""
from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision

from record import Record, add_base_width_argument, gpu_out, width_args

from vidrec.plan.config import load_config  # noqa: E402
from vidrec.models import create_model, model_complexity  # noqa: E402
from vidrec.models.runtime import setup_runtime  # noqa: E402

DEFAULT_MODELS = ["convlstm_c2d63", "p3d63", "p3d199", "r3d_18", "r2plus1d_18", "mc3_18", "frame_resnet50"]
THESIS = {"convlstm_c2d63_videos_per_s": 37.0, "p3d199_clips_per_s": 194.0}


def timed(fn: Callable[[], object], device: torch.device, warmup: int, steps: int) -> float:
    """Seconds per call after `warmup` calls (cudnn.benchmark and compile happen there), synchronised."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def peak_mb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def bench_model(name: str, args, rt) -> dict:
    clip = (3, *args.clip)
    torch.manual_seed(0)
    model = create_model(name, num_classes=101, clip_shape=clip, **width_args(args.base_width))
    row = {"model": name, **model_complexity(model, clip)}
    model = rt.place(model)  # the device and memory format training uses (vidrec/models/runtime.py)
    net = torch.compile(model) if args.compile else model
    x = torch.randn(args.batch, *clip, device=rt.device).contiguous(memory_format=rt.memory_format)
    y = torch.randint(0, 101, (args.batch,), device=rt.device)
    autocast = rt.autocast
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def train_step():
        with autocast():
            loss = F.cross_entropy(net(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    @torch.no_grad()
    def infer_step():
        with autocast():
            net(x)

    for phase, fn, train in (("train", train_step, True), ("infer", infer_step, False)):
        model.train(train)
        reset_peak(rt.device)
        try:
            seconds = timed(fn, rt.device, args.warmup, args.steps)
            row[f"{phase}_clips_per_s"] = args.batch / seconds
        except torch.OutOfMemoryError:
            row[f"{phase}_clips_per_s"] = float("nan")
            print(f"{name}: out of memory in the {phase} step at batch {args.batch}", file=sys.stderr)
        row[f"{phase}_peak_mb"] = peak_mb(rt.device)
    del model, net, opt, x
    reset_peak(rt.device)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--clip", type=int, nargs=3, default=(16, 160, 160), metavar=("T", "H", "W"))
    p.add_argument("--models", type=lambda s: [m for m in s.split(",") if m], default=DEFAULT_MODELS)
    p.add_argument("--amp", default="bf16", choices=["bf16", "fp16", "none"])
    p.add_argument("--contiguous", dest="channels_last", action="store_false", help="no channels_last_3d")
    p.add_argument("--compile", action="store_true", help="torch.compile each model (compile time is in warm-up)")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=None, help="CPU threads (CPU smoke runs)")
    add_base_width_argument(p)
    p.add_argument("--out", type=Path, default=None,
                   help="results file (default on a GPU: benchmarks/results/gpu-<GPU name>[-compile].json; "
                        "on CPU: none)")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device visible: run this on a GPU machine (or --device cpu for a smoke run); "
              "no results file written")
        return 0
    rec = Record("gpu")
    rt = setup_runtime({**load_config()["train"], "device": args.device, "amp": args.amp, "channels_last": args.channels_last,
                        "threads": args.threads or torch.get_num_threads()}, args.threads)
    hw = torch.cuda.get_device_name(rt.device) if rt.device.type == "cuda" else "CPU"
    print(f"{hw}; torch {torch.__version__}, torchvision {torchvision.__version__}, CUDA {torch.version.cuda}, "
          f"cuDNN {torch.backends.cudnn.version()}; batch {args.batch}, clips {tuple(args.clip)}, "
          f"amp {args.amp if rt.amp_dtype else 'off'}, channels_last_3d {rt.channels_last}, "
          f"compile {args.compile}; mean of {args.steps} timed steps after {args.warmup} warm-up\n")
    rows = []
    print("| model | params (M) | GFLOPs/clip | train clips/s | infer clips/s | peak train MB | peak infer MB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    failed = []
    for name in args.models:
        try:
            r = bench_model(name, args, rt)
        except Exception:  # one broken model must not lose the others' rows
            traceback.print_exc()
            failed.append(name)
            reset_peak(rt.device)
            continue
        rows.append(r)
        print(f"| {name} | {r['params'] / 1e6:.1f} | {r['gflops']:.1f} | {r['train_clips_per_s']:.1f} | "
              f"{r['infer_clips_per_s']:.1f} | {r['train_peak_mb']:.0f} | {r['infer_peak_mb']:.0f} |", flush=True)
    by = {r["model"]: r for r in rows}
    if {"convlstm_c2d63", "p3d199"} <= set(by):
        a, b = by["convlstm_c2d63"], by["p3d199"]
        print(f"\nconvlstm_c2d63 / p3d199 inference time per clip: "
              f"{b['infer_clips_per_s'] / a['infer_clips_per_s']:.2f}x (target on a GPU <= 2.0x; thesis "
              f"{THESIS['p3d199_clips_per_s'] / THESIS['convlstm_c2d63_videos_per_s']:.1f}x; FLOP ratio "
              f"{a['gflops'] / b['gflops']:.2f}x); train step {b['train_clips_per_s'] / a['train_clips_per_s']:.2f}x")
    print("\npractical capacity (videos/s = clips/s / clips per video):")
    for r in rows:
        print(f"  {r['model']:<16} thesis protocol (1 clip) {r['infer_clips_per_s']:8.1f}   "
              f"Tran et al. (10 clips) {r['infer_clips_per_s'] / 10:8.1f}")
    if failed:
        print(f"\nfailed (traceback above): {', '.join(failed)}")
    out = args.out or (gpu_out(hw + ("-compile" if args.compile else "")) if rt.device.type == "cuda" else None)
    if out is None:
        print("CPU smoke run: no results file written (pass --out PATH for one)")
    else:
        rec.parameters = {"device": hw, "batch": args.batch, "clip": "x".join(map(str, args.clip)),
                          "amp": args.amp if rt.amp_dtype else "off",
                          "channels_last_3d": rt.channels_last,
                          "compile": args.compile, "warmup": args.warmup, "steps": args.steps,
                          "cuda": torch.version.cuda, "cudnn": str(torch.backends.cudnn.version()),
                          "base_width": args.base_width, "models": args.models, "failed": failed}
        record(rec, rows, args).write(out, [__file__, *(sys.argv[1:] if argv is None else argv)])
    return 1 if failed else 0


def record(rec: Record, rows: list[dict], args: argparse.Namespace) -> Record:
    """The table, the thesis pair's ratios (inference target on a GPU <= 2.0x) and practical capacity."""
    how = (f"batch {args.batch}, clips {'x'.join(map(str, args.clip))}, autocast {rec.parameters['amp']}, "
           f"mean of {args.steps} steps after {args.warmup} warm-up{', compiled' if args.compile else ''}")
    rec.table("models", f"Per model on {rec.parameters['device']} ({how})",
              [("model", "model", None), ("params_m", "params", "M"), ("gflops", "GFLOPs/clip", None),
               ("train_clips_per_s", "train", "clips/s"), ("infer_clips_per_s", "inference", "clips/s"),
               ("train_peak_mb", "peak train", "MB"), ("infer_peak_mb", "peak inference", "MB"),
               ("videos_per_s_10_clips", "10 clips per video (Tran et al.)", "videos/s")],
              [{"model": r["model"], "params_m": r["params"] / 1e6, "gflops": r["gflops"],
                "train_clips_per_s": r["train_clips_per_s"], "infer_clips_per_s": r["infer_clips_per_s"],
                "train_peak_mb": r["train_peak_mb"], "infer_peak_mb": r["infer_peak_mb"],
                "videos_per_s_10_clips": r["infer_clips_per_s"] / 10} for r in rows])
    by = {r["model"]: r for r in rows}
    if {"convlstm_c2d63", "p3d199"} <= set(by):
        a, b = by["convlstm_c2d63"], by["p3d199"]
        rec.figure("convlstm_p3d199_infer", "ConvLSTM-C2D-63 / P3D-199 inference time per clip",
                   b["infer_clips_per_s"] / a["infer_clips_per_s"], "x", target="<= 2.0",
                   note=f"the thesis measured "
                        f"{THESIS['p3d199_clips_per_s'] / THESIS['convlstm_c2d63_videos_per_s']:.1f}x")
        rec.figure("convlstm_p3d199_train", "ConvLSTM-C2D-63 / P3D-199 train step time",
                   b["train_clips_per_s"] / a["train_clips_per_s"], "x")
        rec.figure("convlstm_p3d199_flops", "ConvLSTM-C2D-63 / P3D-199 FLOPs per clip", a["gflops"] / b["gflops"], "x")
        rec.figure("convlstm_videos_per_s", "ConvLSTM-C2D-63 videos/s, one clip per video (the thesis's protocol)",
                   a["infer_clips_per_s"], "videos/s", note=f"the thesis: {THESIS['convlstm_c2d63_videos_per_s']:g}")
        rec.figure("p3d199_clips_per_s", "P3D-199 inference clips/s", b["infer_clips_per_s"], "clips/s",
                   note=f"the thesis: {THESIS['p3d199_clips_per_s']:g}")
    return rec


if __name__ == "__main__":
    sys.exit(main())
