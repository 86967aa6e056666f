"""Clips from any start frame: a store of every frame, clips cut at load time (issue 28, part 1: the design).

Training clips of L consecutive frames that start at any frame (the paper's temporal jitter) need
every frame of a video at hand, not K stored clips. This measures the storage that would serve them,
without changing the shards: every frame of a few generated videos (random pixels, which no codec or
filter would shrink) at the clip spec's size, written into one HDF5 file as a (frames, H, W, 3) uint8
dataset, uncompressed, chunked one frame per chunk or one clip length (L frames) per chunk; a loader
then cuts batches of clips at random starts (uniform over each video's valid starts), reading each
clip's bytes at their file offsets (one `os.preadv` per run of contiguous chunks, as ClipDataset reads
stored clips), and, interleaved with it, the same clips through h5py's slicing and a plain memcpy of the
same bytes from memory (one copy per clip into a preallocated batch), all in one process, one thread:
clips/s per core. Target: the loader >= 0.3x the memcpy, as for the stored-clip loader
(benchmarks/results/loader.json, which also holds the CPU train steps the loader must feed). With
--model it also times that network's train step on the clip here. The disk a store of every UCF101 frame takes follows from a formula,
not a measurement: 13,320 videos x mean frames per video (about 7 s at 25 fps, data facts) x H x W x 3
bytes, beside the stored-clip shards' K x L x H x W x 3 bytes per video; the file's measured bytes
over its raw pixel bytes give HDF5's overhead.

    python benchmarks/frames_store.py [--videos 6] [--frames 40 120] [--size 128 171] [--clip 16]
        [--batch 16] [--reps 5] [--model r2plus1d_18]   # --model: minutes on a CPU
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from record import Record, add_out_argument, interleaved

UCF101_VIDEOS = 13_320
UCF101_MEAN_FRAMES = 7 * 25  # mean length about 7 s at 25 fps (UCF101 as distributed)


def write_store(path: Path, lengths: list[int], size: tuple[int, int], chunk_frames: int,
                seed: int = 0) -> np.ndarray:
    """Every frame of len(lengths) videos into `path` (dataset `frames`, chunks of `chunk_frames` frames,
    `starts`: each video's first row); returns the frames written, (sum(lengths), H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (sum(lengths), *size, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        d = f.create_dataset("frames", shape=frames.shape, dtype=np.uint8, chunks=(chunk_frames, *size, 3))
        for a in range(0, len(frames), chunk_frames):  # chunk by chunk, in order: the file holds them in order
            d[a:a + chunk_frames] = frames[a:a + chunk_frames]
        f["starts"] = np.cumsum([0, *lengths[:-1]])
        f["lengths"] = np.asarray(lengths)
    return frames


def chunk_offsets(d: h5py.Dataset) -> np.ndarray | None:
    """File offset of each chunk (in row order) when every chunk is stored whole and unfiltered, else None."""
    rows = d.chunks[0]
    n = -(-d.shape[0] // rows)
    offsets = np.full(n, -1, np.int64)
    if d.id.get_create_plist().get_nfilters():
        return None

    def visit(info) -> None:
        offsets[info.chunk_offset[0] // rows] = info.byte_offset

    d.id.chunk_iter(visit)
    return offsets if (offsets >= 0).all() else None


class Starts:
    """Random clip starts, uniform over every video's valid starts, from (seed, draw)."""

    def __init__(self, starts: np.ndarray, lengths: np.ndarray, clip: int, batch: int, batches: int):
        self.first, self.valid = starts, lengths - clip + 1
        self.batch, self.batches, self.draw = batch, batches, 0

    def __call__(self) -> np.ndarray:
        """Rows of the clips' first frames, (batches, batch)."""
        rng = np.random.default_rng([0, self.draw])
        self.draw += 1
        video = rng.integers(0, len(self.first), (self.batches, self.batch))
        return self.first[video] + (rng.random(video.shape) * self.valid[video]).astype(np.int64)


class OffsetLoader:
    """Clips cut at load time by reading their frames' bytes at the chunks' file offsets."""

    def __init__(self, path: Path, clip: int, batch: int, starts: Starts):
        with h5py.File(path, "r") as f:
            d = f["frames"]
            self.offsets, self.rows = chunk_offsets(d), d.chunks[0]
            self.shape = d.shape[1:]
        if self.offsets is None:
            raise SystemExit(f"{path}: chunks not stored raw; nothing to read by offset")
        self.frame_bytes = int(np.prod(self.shape))
        self.fd = os.open(path, os.O_RDONLY)
        self.out = np.empty((batch, clip, *self.shape), np.uint8)
        self.clip, self.starts = clip, starts

    def segments(self, first: int) -> list[tuple[int, int, int]]:
        """(file offset, bytes, position in the clip) of each run of contiguous chunks the clip spans."""
        out: list[tuple[int, int, int]] = []
        row, end = first, first + self.clip
        while row < end:
            c = row // self.rows
            take = min(end, (c + 1) * self.rows) - row
            offset = int(self.offsets[c]) + (row - c * self.rows) * self.frame_bytes
            pos = (row - first) * self.frame_bytes
            if out and out[-1][0] + out[-1][1] == offset:  # the next chunk follows in the file: one read
                out[-1] = (out[-1][0], out[-1][1] + take * self.frame_bytes, out[-1][2])
            else:
                out.append((offset, take * self.frame_bytes, pos))
            row += take
        return out

    def __call__(self) -> None:
        for batch in self.starts():
            for j, first in enumerate(batch):
                view = memoryview(self.out[j].reshape(-1)).cast("B")
                for offset, size, pos in self.segments(int(first)):
                    done = 0
                    while done < size:
                        done += os.preadv(self.fd, [view[pos + done:pos + size]], offset + done)


class H5pyLoader:
    """The same clips through h5py's slicing (read_direct of L consecutive rows)."""

    def __init__(self, path: Path, clip: int, batch: int, starts: Starts):
        self.d = h5py.File(path, "r")["frames"]
        self.out = np.empty((batch, clip, *self.d.shape[1:]), np.uint8)
        self.clip, self.starts = clip, starts

    def __call__(self) -> None:
        for batch in self.starts():
            for j, first in enumerate(batch):
                self.d.read_direct(self.out, np.s_[first:first + self.clip], np.s_[j])


class Memcpy:
    """The same clips copied from the frames held in memory: one copy per clip into the batch buffer."""

    def __init__(self, frames: np.ndarray, clip: int, batch: int, starts: Starts):
        self.frames, self.out = frames, np.empty((batch, clip, *frames.shape[1:]), np.uint8)
        self.clip, self.starts = clip, starts

    def __call__(self) -> None:
        for batch in self.starts():
            for j, first in enumerate(batch):
                self.out[j] = self.frames[first:first + self.clip]


def disk_rows(size: tuple[int, int], clip: int) -> list[dict]:
    """UCF101's disk per layout, from the formula (GB = 1e9 bytes)."""
    frame = size[0] * size[1] * 3
    every = UCF101_VIDEOS * UCF101_MEAN_FRAMES * frame / 1e9
    rows = [{"layout": f"every frame, {size[0]}x{size[1]} (clips cut at load time, any start, any length)",
             "frames_per_video": UCF101_MEAN_FRAMES, "gb": every},
            {"layout": f"every 2nd frame, {size[0]}x{size[1]} (clips of stride 2 only)",
             "frames_per_video": UCF101_MEAN_FRAMES / 2, "gb": every / 2}]
    for k in (1, 10):
        rows.append({"layout": f"K = {k} stored clips of {clip} frames (today's shards)",
                     "frames_per_video": k * clip, "gb": UCF101_VIDEOS * k * clip * frame / 1e9})
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
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for chunk, name in ((1, "frame"), (args.clip, "clip")):
            path = Path(tmp) / f"frames_{name}.h5"
            frames = write_store(path, lengths, size, chunk)
            with h5py.File(path, "r") as f:
                first, length = f["starts"][()], f["lengths"][()]
            check = [cls(*src, args.clip, args.batch, Starts(first, length, args.clip, args.batch, 1))
                     for cls, src in ((Memcpy, (frames,)), (OffsetLoader, (path,)), (H5pyLoader, (path,)))]
            for fn in check:
                fn()
            if not all(np.array_equal(check[0].out, fn.out) for fn in check[1:]):
                raise SystemExit(f"{path}: the loaders read other bytes than the frames written")
            starts = Starts(first, length, args.clip, args.batch, args.batches)
            fns = {"memcpy": Memcpy(frames, args.clip, args.batch, starts),
                   "offsets": OffsetLoader(path, args.clip, args.batch, starts),
                   "h5py": H5pyLoader(path, args.clip, args.batch, starts)}
            seconds = interleaved(fns, warmup=1, reps=args.reps)  # the warm-up fills the page cache
            rate = {k: args.batch * args.batches / s for k, s in seconds.items()}
            rows.append({"chunk": "1 frame" if chunk == 1 else f"{chunk} frames (one clip length)",
                         "loader": rate["offsets"],
                         "h5py": rate["h5py"], "memcpy": rate["memcpy"],
                         "ratio": rate["offsets"] / rate["memcpy"],
                         "overhead": path.stat().st_size / frames.nbytes})
            print(f"chunks of {chunk:>2} frames: loader {rate['offsets']:8.1f} clips/s, h5py {rate['h5py']:8.1f}, "
                  f"memcpy {rate['memcpy']:8.1f} ({rate['offsets'] / rate['memcpy']:.2f}x); "
                  f"file / pixels {rows[-1]['overhead']:.4f}")
    per_frame, per_clip = rows
    rec.figure("loader_frame_chunks", f"loader, any-start clips, one frame per chunk, batch {args.batch}",
               per_frame["loader"], "clips/s")
    rec.figure("memcpy", f"memcpy of the same bytes, batch {args.batch}", per_frame["memcpy"], "clips/s")
    rec.figure("loader_over_memcpy", "loader (one frame per chunk) / memcpy of the same bytes",
               per_frame["ratio"], "x", target=">= 0.3")
    rec.figure("clip_chunks_over_memcpy", f"loader ({args.clip} frames per chunk) / memcpy of the same bytes",
               per_clip["ratio"], "x", target=">= 0.3")
    rec.figure("loader_over_h5py", "loader (one frame per chunk) / the same through h5py's slicing",
               per_frame["loader"] / per_frame["h5py"], "x")
    rec.figure("loader_mb_per_s", "loader (one frame per chunk), bytes delivered",
               per_frame["loader"] * clip_bytes / 1e6, "MB/s")
    rec.table("layouts", f"Any-start {args.clip}-frame clips at {size[0]}x{size[1]} from a store of every frame, "
              "in-process, 1 thread (clips/s per core)",
              [("chunk", "chunk", None), ("loader", "loader, by file offset", "clips/s"),
               ("h5py", "h5py slicing", "clips/s"), ("memcpy", "memcpy", "clips/s"),
               ("ratio", "loader / memcpy", "x"), ("overhead", "file bytes / pixel bytes", "x")], rows)
    if args.model:
        shape = (3, args.clip, args.crop, args.crop)
        from loader import train_rate  # the train step as benchmarks/loader.py times it

        train = train_rate(args.model, args.train_batch, shape, reps=1)
        print(f"train step {args.model} at batch {args.train_batch}, {args.clip}x{args.crop}x{args.crop}: "
              f"{train:.2f} clips/s")
        rec.figure("train_step", f"train step, {args.model}, batch {args.train_batch}, "
                   f"{args.clip}x{args.crop}x{args.crop}, 1 thread", train, "clips/s")
        rec.figure("loader_over_train", f"loader (one frame per chunk) / {args.model}'s train step",
                   per_frame["loader"] / train, "x", target=">= 3")
    rec.table("disk", f"UCF101 on disk by formula: {UCF101_VIDEOS:,} videos x frames per video x "
              f"{size[0]} x {size[1]} x 3 bytes (mean length about 7 s at 25 fps = {UCF101_MEAN_FRAMES} frames; "
              "not measured)",
              [("layout", "layout", None), ("frames_per_video", "frames per video", None), ("gb", "UCF101", "GB")],
              disk_rows(size, args.clip))
    rec.write(args.out)


if __name__ == "__main__":
    import torch

    torch.set_num_threads(1)
    main()
