"""Clips from any start frame (issue 28, part 1): the product's loader on an any-start shard against a memcpy.

An any-start clip spec (`sampling: any_start`) stores every frame of each video once, one frame per
HDF5 chunk, and ClipDataset cuts clips of L consecutive frames at load time, reading each clip's frames
at their file offsets (`os.preadv`, one read per run of frames that follow each other in the file).
This decodes a few generated AVIs (lengths evenly spread over --frames) with the product's writer
(`write_shard`) into one shard, builds its split index, and times in one process, one thread,
interleaved: ClipDataset(clips="random") reading batches of clips at the starts it draws for each epoch
(uniform over each video's valid starts), the same clips through its h5py path, and a memcpy of the
same bytes (the shard's frames held in memory, one copy per clip into a preallocated batch): clips/s
per core. Target: the loader >= 0.3x the memcpy, as for the stored-clip loader
(benchmarks/results/loader.json, which also holds the CPU train steps the loader must feed). With
--model it also times that network's train step on the clip here. The disk an any-start store of
UCF101 takes follows from the product's formula (`ClipSpec.bytes_per_video`: 13,320 videos x the mean
frames per video it assumes x H x W x 3 bytes), beside stored-clip shards' K x L x H x W x 3 bytes per
video; the shard's measured bytes over its pixel bytes give HDF5's overhead.

    python benchmarks/frames_store.py [--videos 6] [--frames 40 120] [--size 128 171] [--clip 16]
        [--batch 16] [--reps 5] [--model r2plus1d_18]   # --model: minutes on a CPU
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from decode import make_videos
from record import Record, add_out_argument, interleaved

from vidrec.data.dataset import ClipDataset
from vidrec.data.shards import build_split_index, write_shard
from vidrec.data.video import ClipSpec

UCF101_VIDEOS = 13_320


def build_shard(tmp: Path, lengths: list[int], spec: ClipSpec) -> tuple[pd.DataFrame, Path]:
    """Generated AVIs of these lengths (frames at 25 fps) decoded by the product into one shard; its index."""
    for v, n in enumerate(lengths):
        (tmp / str(v)).mkdir()
        make_videos(tmp / str(v), 1, seconds=(n + 0.5) / 25)
    videos = pd.DataFrame({"video_id": range(len(lengths)), "path": [f"{v}/v_000.avi" for v in range(len(lengths))],
                           "label": 0})
    shard = tmp / "b000.h5"
    write_shard(videos, tmp, spec, shard)
    return build_split_index(pd.DataFrame({"video_id": videos["video_id"], "split1": "train"}), [shard], 1), shard


class H5pyClipDataset(ClipDataset):
    """ClipDataset reading through h5py (its path for shards it cannot read by offset)."""

    def _offsets(self, shard: int) -> None:
        return None


class Batches:
    """`batches` batches of `batch` videos (drawn once, with replacement); each call is a new epoch, so a
    new start for every clip."""

    def __init__(self, ds: ClipDataset, batch: int, batches: int):
        rng = np.random.default_rng(0)
        self.ds, self.items, self.epoch = ds, rng.integers(0, len(ds), (batches, batch)), 0

    def next_epoch(self) -> None:
        self.ds.set_epoch(self.epoch)
        self.epoch += 1


class Loader(Batches):
    """The product's read: ClipDataset.read_tensor of each batch, at this epoch's starts."""

    def __call__(self) -> None:
        self.next_epoch()
        for idx in self.items:
            self.out = self.ds.read_tensor(idx).numpy()


class Memcpy(Batches):
    """The same clips copied from the shard's frames held in memory: one copy per clip into the batch."""

    def __init__(self, ds: ClipDataset, batch: int, batches: int, frames: np.ndarray):
        super().__init__(ds, batch, batches)
        self.frames = frames
        self.out = np.empty((batch, ds.frames, *frames.shape[1:]), np.uint8)

    def __call__(self) -> None:
        self.next_epoch()
        first = self.ds.row + self.ds.drawn_starts()
        for idx in self.items:
            for j, f in enumerate(first[idx]):
                self.out[j] = self.frames[f:f + self.ds.frames]


def disk_rows(size: tuple[int, int], clip: int) -> list[dict]:
    """UCF101's disk per layout, from the product's formula (ClipSpec.bytes_per_video; GB = 1e9 bytes)."""
    rows = []
    for spec, layout in [(ClipSpec(clip, None, size, "any_start", 10), "every frame, clips cut at load time "
                          "(any start, any length up to the video's)")] + \
            [(ClipSpec(clip, None, size, "consecutive", k), f"K = {k} stored clips of {clip} frames "
              "(sampling: consecutive)") for k in (1, 10)]:
        rows.append({"layout": f"{layout}, {size[0]}x{size[1]}", "frames_per_video": spec.frames_per_video,
                     "gb": UCF101_VIDEOS * spec.bytes_per_video / 1e9})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=6)
    ap.add_argument("--frames", type=int, nargs=2, default=[40, 120], metavar=("MIN", "MAX"),
                    help="video lengths, evenly spread over [MIN, MAX] frames")
    ap.add_argument("--size", type=int, nargs=2, default=[128, 171], metavar=("H", "W"),
                    help="stored frame size (tran16's 128x171)")
    ap.add_argument("--clip", type=int, default=16, help="clip length L in frames")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=8, help="batches per timed call")
    ap.add_argument("--reps", type=int, default=5, help="interleaved calls per measurement (median)")
    ap.add_argument("--model", default="", help="also time this network's train step on the clip (e.g. "
                    "r2plus1d_18; minutes on a CPU); loader.json holds the CPU train steps of the models")
    ap.add_argument("--train-batch", type=int, default=2)
    ap.add_argument("--crop", type=int, default=112, help="the network's input crop (tran's 112)")
    add_out_argument(ap, __file__)
    args = ap.parse_args()
    size = tuple(args.size)
    lengths = [int(v) for v in np.linspace(*args.frames, args.videos)]
    if min(lengths) < args.clip:
        raise SystemExit(f"--frames: every video needs at least --clip {args.clip} frames")
    rec = Record("frames_store", parameters={
        "videos": args.videos, "frames": sum(lengths), "size": f"{size[0]}x{size[1]}", "clip": args.clip,
        "batch": args.batch, "batches": args.batches, "reps": args.reps, "threads": 1,
        "model": args.model or None, "train_batch": args.train_batch if args.model else None})
    clip_bytes = args.clip * size[0] * size[1] * 3
    spec = ClipSpec(args.clip, None, size, "any_start", 10)
    with tempfile.TemporaryDirectory() as tmp:
        index, shard = build_shard(Path(tmp), lengths, spec)
        with h5py.File(shard, "r") as f:
            frames = f["frames"][()]
        fns = {"loader": Loader(ClipDataset(index, clips="random", raw=True), args.batch, args.batches),
               "h5py": Loader(H5pyClipDataset(index, clips="random", raw=True), args.batch, args.batches),
               "memcpy": Memcpy(ClipDataset(index, clips="random", raw=True), args.batch, args.batches, frames)}
        if fns["loader"].ds._offsets(0) is None:
            raise SystemExit(f"{shard}: the product's loader cannot read this shard by file offsets")
        for fn in fns.values():
            fn()
        if not all(np.array_equal(fns["memcpy"].out, fn.out) for fn in fns.values()):
            raise SystemExit(f"{shard}: the loaders read other bytes than the frames written")
        seconds = interleaved(fns, warmup=1, reps=args.reps)  # every call a new epoch: new starts
        overhead = shard.stat().st_size / frames.nbytes
    rate = {k: args.batch * args.batches / s for k, s in seconds.items()}
    print(f"ClipDataset {rate['loader']:8.1f} clips/s, its h5py path {rate['h5py']:8.1f}, memcpy {rate['memcpy']:8.1f} "
          f"({rate['loader'] / rate['memcpy']:.2f}x); shard bytes / pixel bytes {overhead:.4f}")
    rec.figure("loader", f"ClipDataset, any-start clips from the product's shard, batch {args.batch}",
               rate["loader"], "clips/s")
    rec.figure("memcpy", f"memcpy of the same bytes, batch {args.batch}", rate["memcpy"], "clips/s")
    rec.figure("loader_over_memcpy", "ClipDataset (by file offset) / memcpy of the same bytes",
               rate["loader"] / rate["memcpy"], "x", target=">= 0.3")
    rec.figure("loader_over_h5py", "ClipDataset by file offset / its h5py path", rate["loader"] / rate["h5py"], "x")
    rec.figure("loader_mb_per_s", "ClipDataset, bytes delivered", rate["loader"] * clip_bytes / 1e6, "MB/s")
    rec.figure("shard_overhead", "any-start shard: file bytes / pixel bytes (one frame per chunk)", overhead, "x")
    rec.table("loader", f"Any-start {args.clip}-frame clips at {size[0]}x{size[1]} from the product's shard, "
              "in-process, 1 thread (clips/s per core)",
              [("read", "read", None), ("clips_per_s", "rate", "clips/s"), ("vs_memcpy", "/ memcpy", "x")],
              [{"read": name, "clips_per_s": rate[key], "vs_memcpy": rate[key] / rate["memcpy"]}
               for key, name in (("loader", "ClipDataset, by file offset"), ("h5py", "ClipDataset, h5py path"),
                                 ("memcpy", "memcpy of the same bytes"))])
    if args.model:
        shape = (3, args.clip, args.crop, args.crop)
        from loader import train_rate  # the train step as benchmarks/loader.py times it

        train = train_rate(args.model, args.train_batch, shape, reps=1)
        print(f"train step {args.model} at batch {args.train_batch}, {args.clip}x{args.crop}x{args.crop}: "
              f"{train:.2f} clips/s")
        rec.figure("train_step", f"train step, {args.model}, batch {args.train_batch}, "
                   f"{args.clip}x{args.crop}x{args.crop}, 1 thread", train, "clips/s")
        rec.figure("loader_over_train", f"loader (one frame per chunk) / {args.model}'s train step",
                   rate["loader"] / train, "x", target=">= 3")
    rec.table("disk", f"UCF101 on disk by the product's formula (ClipSpec.bytes_per_video): {UCF101_VIDEOS:,} videos "
              f"x frames per video x {size[0]} x {size[1]} x 3 bytes (an any-start spec assumes "
              f"{spec.frames_per_video:.0f} frames per video, vidrec/data/video.py; not measured)",
              [("layout", "layout", None), ("frames_per_video", "frames per video", None), ("gb", "UCF101", "GB")],
              disk_rows(size, args.clip))
    rec.write(args.out)


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    main()
