"""Does the HDF5 loader keep up with training, and with memory? Loader clips/s vs memcpy and the train step.

Builds real shards (generated 320x240 XviD AVIs decoded by the decode stage into 16x160x160 clips),
then measures, in one run, with the page cache warm and one process:
  * the training DataLoader as `vidrec train` configures it (uint8 batches of random clips across
    the split's shards via `__getitems__`, normalisation on the training device), in-process and
    with worker processes, at --batch (48);
  * interleaved with it, a plain memcpy of the same bytes (the same batches gathered from an
    in-memory copy of the clips into a preallocated buffer) and the loader through h5py's read path
    (what ClipDataset used before reading rows at their file offsets);
  * the train-step clips/s of the models (random data, --train-batch), the fastest of which sets the bar.
Targets: the in-process loader >= 0.3x memcpy (issue 19) and >= 3x the fastest model's train step
(issue 7). The figures go to benchmarks/results/loader.json (`--out PATH` elsewhere) for
benchmarks/render.py.

    python benchmarks/loader.py [--videos 96] [--batch 48] [--models p3d63 r2plus1d_18 frame_resnet50]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from decode import make_videos  # noqa: E402
from record import Record, add_base_width_argument, add_out_argument, interleaved, width_args

from vidrec.data.dataset import ClipDataset, normalize_clips  # noqa: E402
from vidrec.data.shards import build_split_index, write_shard  # noqa: E402
from vidrec.data.video import ClipSpec  # noqa: E402
from vidrec.models import create_model  # noqa: E402
from vidrec.models.runtime import Runtime  # noqa: E402
from vidrec.training.trainer import make_loader  # noqa: E402


def build_index(tmp: Path, videos: int, spec: ClipSpec, seconds: float = 3.0) -> pd.DataFrame:
    """Decode `videos` generated AVIs of `seconds` into 4 shards; their split-1 training index."""
    paths = make_videos(tmp, videos, seconds=seconds)
    per_shard = max(videos // 4, 1)
    shard_paths = []
    for s in range(0, videos, per_shard):
        chunk = pd.DataFrame({"video_id": range(s, min(s + per_shard, videos)),
                              "path": [p.name for p in paths[s:s + per_shard]], "label": 0, "group": 1})
        out = tmp / f"g{s:03d}.h5"
        write_shard(chunk, tmp, spec, out, workers=2)
        shard_paths.append(out)
    membership = pd.DataFrame({"video_id": range(videos), "split1": "train"})
    return build_split_index(membership, shard_paths, 1)


class H5pyClipDataset(ClipDataset):
    """ClipDataset reading every shard through h5py (its path for shards it cannot read by offset)."""

    def _offsets(self, shard: int) -> None:
        return None


class Epochs:
    """One call = one epoch of a DataLoader (a new permutation each call), the clips counted."""

    def __init__(self, ds: ClipDataset, batch: int, workers: int, normalize: bool = False):
        self.loader, self.sampler = make_loader(ds, batch, Runtime(torch.device("cpu")), seed=0, shuffle=True,
                                                workers=workers)
        self.normalize, self.epoch, self.clips = normalize, 0, len(ds)

    def __call__(self) -> None:
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        for b in self.loader:
            if self.normalize:  # as the trainer does on a CPU
                normalize_clips(b["clips"], (0.4,) * 3, (0.2,) * 3, torch.contiguous_format)


class Memcpy:
    """The same batches as an Epochs, copied from the clips held in memory into a preallocated buffer."""

    def __init__(self, ds: ClipDataset, batch: int):
        self.clips = ds.read(np.arange(len(ds)))
        self.out = np.empty((batch, *self.clips.shape[1:]), np.uint8)
        self.sampler = make_loader(ds, batch, Runtime(torch.device("cpu")), seed=0, shuffle=True, workers=0)[1]
        self.batch, self.epoch = batch, 0

    def __call__(self) -> None:
        self.sampler.set_epoch(self.epoch)
        self.epoch += 1
        order = np.fromiter(self.sampler, np.int64)
        for s in range(0, len(order), self.batch):
            for j, i in enumerate(order[s:s + self.batch]):  # one memcpy per clip (np.take is 4x slower)
                self.out[j] = self.clips[i]


def loader_rates(index: pd.DataFrame, batch: int, workers: list[int], reps: int) -> dict[str, float]:
    """Clips/s of each way of delivering batches, measured interleaved (median epoch of `reps`)."""
    ds = ClipDataset(index, "train", clips="all", raw=True)
    fns = {"memcpy": Memcpy(ds, batch), "h5py": Epochs(H5pyClipDataset(index, "train", clips="all", raw=True),
                                                       batch, 0)}
    fns |= {f"loader_{w}": Epochs(ClipDataset(index, "train", clips="all", raw=True), batch, w) for w in workers}
    fns["loader_0_normalized"] = Epochs(ds, batch, 0, normalize=True)
    seconds = interleaved(fns, warmup=1, reps=reps)  # the warm-up epoch fills the page cache
    return {k: len(ds) / s for k, s in seconds.items()}


def train_rate(name: str, batch: int, shape: tuple[int, ...], reps: int = 2, base_width: int | None = None) -> float:
    model = create_model(name, num_classes=101, clip_shape=shape,
                         **width_args(base_width))
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
    ap.add_argument("--batch", type=int, default=48, help="loader batch (issue 19: 48)")
    ap.add_argument("--train-batch", type=int, default=8, help="batch of the models' train step (at most --batch)")
    ap.add_argument("--reps", type=int, default=15, help="interleaved epochs per loader measurement")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs="+", default=["p3d63", "r2plus1d_18", "frame_resnet50"])
    add_base_width_argument(ap)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                    help="loader worker processes to measure (0: in-process, the default of `vidrec train`)")
    add_out_argument(ap, __file__)
    args = ap.parse_args()
    args.train_batch = min(args.train_batch, args.batch)
    rec = Record("loader", parameters={"videos": args.videos, "clips": 3 * args.videos, "batch": args.batch,
                                       "train_batch": args.train_batch, "reps": args.reps,
                                       "threads": args.threads, "clip": "16x160x160", "models": args.models,
                                       "base_width": args.base_width, "workers": args.workers})
    torch.set_num_threads(args.threads)
    spec = ClipSpec(frames=16, crop=192, size=160, sampling="uniform", clips_per_video=3)
    with tempfile.TemporaryDirectory() as tmp:
        index = build_index(Path(tmp), args.videos, spec)
        rates = loader_rates(index, args.batch, args.workers, args.reps)
    loaders = {w: rates[f"loader_{w}"] for w in args.workers}
    models = {m: train_rate(m, args.train_batch, (3, 16, 160, 160), base_width=args.base_width) for m in args.models}
    fastest = max(models, key=models.get)
    print(f"batch {args.batch}, clips 16x160x160 uint8, {3 * args.videos} clips, threads {args.threads}")
    print(f"  memcpy of the same bytes {rates['memcpy']:8.1f} clips/s")
    rec.figure("memcpy", f"memcpy of the same bytes, batch {args.batch}", rates["memcpy"], "clips/s")
    names = {w: "in-process" if w == 0 else f"{w} worker{'s' * (w > 1)}" for w in loaders}
    for w, rate in loaders.items():
        print(f"  loader, {names[w]:<12} {rate:8.1f} clips/s")
        rec.figure(f"loader_{w}_workers", f"loader, {names[w]}{' (the default)' if w == 0 else ''}, "
                   f"batch {args.batch}", rate, "clips/s")
    print(f"  loader, h5py read path {rates['h5py']:8.1f} clips/s; in-process + host normalisation "
          f"{rates['loader_0_normalized']:8.1f} clips/s")
    rec.figure("loader_h5py", f"loader, in-process, through h5py's read path, batch {args.batch}", rates["h5py"],
               "clips/s")
    rec.figure("loader_0_normalized", f"loader, in-process, + normalisation to float on the host, batch {args.batch}",
               rates["loader_0_normalized"], "clips/s")
    if 0 in loaders:
        print(f"  in-process loader / memcpy = {loaders[0] / rates['memcpy']:.2f}x (target >= 0.3)")
        rec.figure("loader_over_memcpy", "in-process loader / memcpy of the same bytes",
                   loaders[0] / rates["memcpy"], "x", target=">= 0.3")
        rec.figure("loader_over_h5py", "in-process loader / the same through h5py's read path",
                   loaders[0] / rates["h5py"], "x")
    for m, rate in models.items():
        print(f"  train step {m:<16} {rate:8.2f} clips/s")
    rec.table("train_step", f"Train-step clips/s at batch {args.train_batch}, 16x160x160, {args.threads} torch threads",
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
