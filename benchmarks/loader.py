"""Does the HDF5 loader keep up with training? Loader clips/s vs the fastest model's train step.

Builds real shards (generated 320x240 XviD AVIs decoded by the decode stage into 16x160x160 clips),
then measures, in one run and at the same batch and clip shape:
  * the training DataLoader as `vidrec train` configures it (uint8 batches via `__getitems__`,
    normalisation on the training device), in-process and with 1 and 2 worker processes;
  * the train-step clips/s of the models (random data), the fastest of which sets the bar.
Target (issue 7): loader >= 3x the fastest model's train step. The figures go to
benchmarks/results/loader.json (`--out PATH` elsewhere) for benchmarks/render.py.

    python benchmarks/loader.py [--videos 96] [--batch 8] [--models p3d63 r2plus1d_18 frame_resnet50]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decode import make_videos  # noqa: E402
from record import Record, add_out_argument  # noqa: E402 (puts the checkout on sys.path)

from vidrec.data.dataset import ClipDataset, normalize_clips  # noqa: E402
from vidrec.data.shards import build_split_index, write_shard  # noqa: E402
from vidrec.data.video import ClipSpec  # noqa: E402
from vidrec.models import create_model  # noqa: E402
from vidrec.runtime import Runtime  # noqa: E402
from vidrec.training.trainer import make_loader  # noqa: E402


def build_index(tmp: Path, videos: int, spec: ClipSpec) -> pd.DataFrame:
    paths = make_videos(tmp, videos, seconds=3.0)
    per_shard = max(videos // 4, 1)
    shard_paths, frames = [], []
    for s in range(0, videos, per_shard):
        chunk = pd.DataFrame({"video_id": range(s, min(s + per_shard, videos)),
                              "path": [p.name for p in paths[s:s + per_shard]], "label": 0, "group": 1})
        out = tmp / f"g{s:03d}.h5"
        write_shard(chunk, tmp, spec, out, workers=2)
        shard_paths.append(out)
        frames.append(chunk)
    membership = pd.DataFrame({"video_id": range(videos), "split1": "train"})
    return build_split_index(membership, shard_paths, 1)


def loader_rate(index: pd.DataFrame, batch: int, workers: int, epochs: int = 2) -> float:
    ds = ClipDataset(index, "train", clips="all", raw=True)
    loader, sampler = make_loader(ds, batch, Runtime(torch.device("cpu")), seed=0, shuffle=True, workers=workers)
    n, start = 0, None
    for epoch in range(epochs + 1):  # first epoch warms up workers and the page cache
        sampler.set_epoch(epoch)
        if epoch == 1:
            n, start = 0, time.perf_counter()
        for b in loader:
            x = normalize_clips(b["clips"], (0.4,) * 3, (0.2,) * 3)  # as the trainer does
            n += len(x)
    return n / (time.perf_counter() - start)


def train_rate(name: str, batch: int, shape: tuple[int, ...], reps: int = 2) -> float:
    model = create_model(name, num_classes=101, clip_shape=shape)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(batch, *shape), torch.randint(0, 101, (batch,))

    def step():
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()

    step()
    start = time.perf_counter()
    for _ in range(reps):
        step()
    return batch * reps / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=96)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["p3d63", "r2plus1d_18", "frame_resnet50"])
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2],
                    help="loader worker processes to measure (0: in-process, the default of `vidrec train`)")
    add_out_argument(ap, __file__)
    args = ap.parse_args()
    rec = Record("loader", parameters={"videos": args.videos, "clips": 3 * args.videos, "batch": args.batch,
                                       "threads": args.threads, "clip": "16x160x160", "models": args.models,
                                       "workers": args.workers})
    torch.set_num_threads(args.threads)
    spec = ClipSpec(frames=16, crop=192, size=160, sampling="uniform", clips_per_video=3)
    with tempfile.TemporaryDirectory() as tmp:
        index = build_index(Path(tmp), args.videos, spec)
        loaders = {w: loader_rate(index, args.batch, w) for w in args.workers}
    models = {m: train_rate(m, args.batch, (3, 16, 160, 160)) for m in args.models}
    fastest = max(models, key=models.get)
    print(f"batch {args.batch}, clips 16x160x160 uint8, {3 * args.videos} clips, threads {args.threads}")
    names = {w: "in-process" if w == 0 else f"{w} worker{'s' * (w > 1)}" for w in loaders}
    for w, rate in loaders.items():
        print(f"  loader, {names[w]:<12} {rate:8.1f} clips/s")
        rec.figure(f"loader_{w}_workers", f"loader, {names[w]}{' (the default)' if w == 0 else ''}, "
                   f"batch {args.batch}", rate, "clips/s")
    for m, rate in models.items():
        print(f"  train step {m:<16} {rate:8.2f} clips/s")
    rec.table("train_step", f"Train-step clips/s at batch {args.batch}, 16x160x160, {args.threads} torch threads",
              [("model", "model", None), ("clips_per_s", "train step", "clips/s")],
              [{"model": m, "clips_per_s": rate} for m, rate in models.items()])
    best = max(loaders, key=loaders.get)
    print(f"ratio: best loader ({names[best]}) / fastest train step "
          f"({fastest}) = {loaders[best] / models[fastest]:.1f}x (target >= 3x)"
          + (f"; in-process / 2 workers = {loaders[0] / loaders[2]:.2f}x" if {0, 2} <= set(loaders) else ""))
    rec.figure("best_loader_over_train", f"best loader ({names[best]}) / fastest train step ({fastest})",
               loaders[best] / models[fastest], "x", target=">= 3")
    if 0 in loaders:
        rec.figure("default_loader_over_train", f"in-process loader (the default) / fastest train step ({fastest})",
                   loaders[0] / models[fastest], "x", target=">= 3")
    if {0, 2} <= set(loaders):
        rec.figure("in_process_over_2_workers", "in-process / 2 workers", loaders[0] / loaders[2], "x")
    rec.write(args.out)


if __name__ == "__main__":
    main()
