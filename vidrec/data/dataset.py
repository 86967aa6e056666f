"""PyTorch Dataset over HDF5 clip shards (the per-split view).

Files open lazily in the process that reads them (never in `__init__`: h5py handles do not survive
fork/spawn). `__getitems__` reads a whole batch at once, in-process (moving 1.2 MB clips between
worker processes is costly). Each clip is one uncompressed chunk (or a row of a contiguous dataset),
so its bytes sit at a fixed file offset: they are read with one `os.preadv` each straight into the
batch buffer (pinned when a GPU consumes it), at page-cache-to-memory speed, where h5py's read path
costs several times more per clip (benchmarks/results/loader.json, loader_over_h5py). Shards whose
layout does not allow this (compressed, other chunking) are read through h5py, as before. Never
h5py's fancy indexing with a row list: with one clip per chunk it read 8 clips in 0.8 s against
1.2 ms for 8 single-row slices.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset


def normalize_clips(x: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                    memory_format: torch.memory_format | None = None) -> torch.Tensor:
    """uint8 (N, C, T, H, W) or (C, T, H, W) -> float normalised; runs on whatever device x is on.

    memory_format (5-D only): the float output is written in that layout by the uint8 -> float
    conversion itself, so a clip batch in the shards' (N, T, H, W, C) order needs no separate
    transpose (on CUDA, channels_last_3d is that order: no reordering at all). Same values either way.
    """
    shape = (-1, 1, 1, 1)
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(shape)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(shape)
    if memory_format is None:
        out = x.to(torch.float32, copy=True)
    else:
        out = torch.empty(x.shape, dtype=torch.float32, device=x.device, memory_format=memory_format).copy_(x)
    return out.div_(255.0).sub_(m).div_(s)


def crop_draws(n: int, h: int, w: int, crop: int | None, hflip: bool, train: bool,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-clip crop corners (y0, x0) and flip flags, drawn on the CPU for the whole batch at once
    (so a run draws the same numbers on CPU and GPU, from the checkpointed CPU generator)."""
    if crop is not None and train:
        y0 = torch.randint(0, h - crop + 1, (n,), generator=generator)
        x0 = torch.randint(0, w - crop + 1, (n,), generator=generator)
    else:
        y0 = torch.full((n,), (h - crop) // 2 if crop is not None else 0, dtype=torch.int64)
        x0 = torch.full((n,), (w - crop) // 2 if crop is not None else 0, dtype=torch.int64)
    flip = torch.rand(n, generator=generator) < 0.5 if hflip and train else torch.zeros(n, dtype=torch.bool)
    return y0, x0, flip


def augment_clips(x: torch.Tensor, crop: int | None, hflip: bool, train: bool,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop + horizontal flip per clip when training; centre crop otherwise. x: (N,C,T,H,W).

    Batched: one gather per axis on x's device, whatever the batch size (no per-clip Python loop).
    Crops commute with the per-channel normalisation, so they run on the 4x smaller uint8 clips."""
    if crop is None and not (hflip and train):
        return x
    n, c, t, h, w = x.shape
    if not train:  # the centre crop: a view
        y0, x0 = (h - crop) // 2, (w - crop) // 2
        return x[..., y0:y0 + crop, x0:x0 + crop]
    ch, cw = (crop, crop) if crop is not None else (h, w)
    y0, x0, flip = crop_draws(n, h, w, crop, hflip, train, generator)
    step = torch.arange(cw)
    rows = y0[:, None] + torch.arange(ch)
    cols = x0[:, None] + torch.where(flip[:, None], cw - 1 - step, step)
    if x.is_cuda:  # pinned, so the copy queues behind the compute instead of waiting for it
        rows, cols = rows.pin_memory(), cols.pin_memory()
    rows, cols = rows.to(x.device, non_blocking=True), cols.to(x.device, non_blocking=True)
    if crop is not None:
        x = x.gather(3, rows.view(n, 1, 1, ch, 1).expand(n, c, t, ch, w))
    return x.gather(4, cols.view(n, 1, 1, 1, cw).expand(n, c, t, ch, cw))


def spatial_crop_corners(height: int, width: int, crop: int, crops: int) -> list[tuple[int, int]]:
    """Corners (y0, x0) of the test-time spatial crops (vidrec/data/views.py), left/top first.

    crops=1: the centre crop (the one `augment_clips` takes in evaluation). crops=3: both ends and the
    centre along the longer side (the width when the frame is square), the shorter side centred, as
    SlowFast's 3 spatial crops and mmaction2's ThreeCrop."""
    if crop > min(height, width):
        raise ValueError(f"a {crop}x{crop} crop does not fit {height}x{width} frames")
    yc, xc = (height - crop) // 2, (width - crop) // 2
    if crops == 1:
        return [(yc, xc)]
    if crops != 3:
        raise ValueError(f"crops must be 1 or 3, not {crops}")
    if height > width:
        return [(0, xc), (yc, xc), (height - crop, xc)]
    return [(yc, 0), (yc, xc), (yc, width - crop)]


def test_views(x: torch.Tensor, crop: int | None, crops: int = 1) -> list[torch.Tensor]:
    """The spatial test views of clips x (..., H, W), as slices (no copy), in corner order.

    crop None (the model sees the whole frame) has one view: x itself; crops=1 is the centre crop,
    the same pixels `augment_clips(train=False)` takes."""
    if crop is None:
        if crops != 1:
            raise ValueError("several spatial views need a crop smaller than the frame")
        return [x]
    h, w = x.shape[-2:]
    return [x[..., y0:y0 + crop, x0:x0 + crop] for y0, x0 in spatial_crop_corners(h, w, crop, crops)]


test_views.__test__ = False  # not a pytest test, whatever its name


class ClipDataset(Dataset):
    """Clips of one subset of a split, as uint8 (C, T, H, W) tensors or normalised floats.

    index: the split's index.csv (video_id, shard, row, n_clips, label, subset).
    clips: "centre" -> the centre clip of each video (the thesis's protocol);
           "all" -> every stored clip (video-level evaluation);
           "random" -> one stored clip per video, drawn afresh each epoch: jitter over K fixed
           offsets (the K clips stored at evenly spaced starts), not Tran et al.'s temporal jitter,
           which starts a clip at any frame. The draw of epoch e is a function of (seed, e) alone,
           so it is reproducible, the same on every DDP rank, and `set_epoch` reaches DataLoader
           workers that already run
           (the epoch lives in shared memory; persistent workers hold a copy of everything else).
    raw=True returns uint8 so normalisation can run on the training device (4x less to copy), as a
    (N, C, T, H, W) view of the shards' (N, T, H, W, C) bytes: channels_last_3d memory, not copied
    into another order on the host (`normalize_clips` writes the layout the device wants).
    pin=True reads batches straight into page-locked memory, for asynchronous copies to a GPU.
    """

    def __init__(self, index: pd.DataFrame | str | Path, subset: str | None = None, clips: str = "centre",
                 raw: bool = False, mean: Sequence[float] = (0.43, 0.40, 0.37),
                 std: Sequence[float] = (0.23, 0.22, 0.22), seed: int = 0):
        df = pd.read_csv(index) if isinstance(index, (str, Path)) else index
        if subset is not None:
            df = df[df["subset"] == subset]
        if clips in ("centre", "random"):  # random: clip_index is the draw's offset, filled per epoch
            first = df["n_clips"] // 2 if clips == "centre" else 0
            items = pd.DataFrame({"shard": df["shard"], "row": df["row"] + first, "label": df["label"],
                                  "video_id": df["video_id"], "clip_index": first, "n_clips": df["n_clips"]})
        elif clips == "all":
            rep = df.loc[df.index.repeat(df["n_clips"])].copy()
            rep["clip_index"] = rep.groupby("video_id").cumcount()
            rep["row"] = rep["row"] + rep["clip_index"]
            items = rep[["shard", "row", "label", "video_id", "clip_index"]]
        else:
            raise ValueError(f"clips must be 'centre', 'all' or 'random', not {clips!r}")
        items = items.reset_index(drop=True)
        self.shards = sorted(items["shard"].unique())
        shard_id = {s: i for i, s in enumerate(self.shards)}
        self.shard_of = items["shard"].map(shard_id).to_numpy(np.int64)
        self.row = items["row"].to_numpy(np.int64)
        self.labels = items["label"].to_numpy(np.int64)
        self.video_ids = items["video_id"].to_numpy(np.int64)
        self.clip_index = items["clip_index"].to_numpy(np.int64)
        self.random = clips == "random"
        self.n_clips = items["n_clips"].to_numpy(np.int64) if self.random else None
        # (seed, epoch) of the current draw, shared with worker processes; _drawn caches its result
        self._draw_key = torch.tensor([int(seed), 0], dtype=torch.int64).share_memory_()
        self._drawn: tuple[tuple[int, int], np.ndarray] | None = None
        self.raw, self.mean, self.std = raw, tuple(mean), tuple(std)
        self.pin = False
        self._files: dict[int, h5py.File] = {}
        self._direct: dict[int, tuple[int, np.ndarray] | None] = {}  # shard -> (fd, row offsets)
        self._pid = -1

    def __len__(self) -> int:
        return len(self.row)

    def set_epoch(self, epoch: int, seed: int | None = None) -> None:
        """Draw the clips of `epoch` (clips="random"; a no-op otherwise). Call it next to the
        sampler's set_epoch, before iterating the loader."""
        if seed is not None:
            self._draw_key[0] = int(seed)
        self._draw_key[1] = int(epoch)

    def drawn_clips(self) -> np.ndarray:
        """Clip index (within its video) of every item for the current epoch."""
        if not self.random:
            return self.clip_index
        key = (int(self._draw_key[0]), int(self._draw_key[1]))
        if self._drawn is None or self._drawn[0] != key:
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))
            self._drawn = key, rng.integers(0, self.n_clips)
        return self._drawn[1]

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_files"], state["_direct"], state["_pid"] = {}, {}, -1
        return state

    def __del__(self) -> None:
        if getattr(self, "_pid", -1) == os.getpid():
            for entry in self._direct.values():
                if entry is not None:
                    os.close(entry[0])

    def _file(self, shard: int) -> h5py.Dataset:
        if self._pid != os.getpid():  # opened lazily, per process (a fork's inherited fds are the parent's)
            self._files, self._direct, self._pid = {}, {}, os.getpid()
        if shard not in self._files:
            self._files[shard] = h5py.File(self.shards[shard], "r")
        return self._files[shard]["clips"]

    def _offsets(self, shard: int) -> tuple[int, np.ndarray] | None:
        """(fd, file offset of each row) when every row is stored raw and whole, else None."""
        clips = self._file(shard)
        if shard not in self._direct:
            self._direct[shard] = None
            offsets = raw_row_offsets(clips)
            if offsets is not None:
                fd = os.open(self.shards[shard], os.O_RDONLY)
                probe = np.empty(clips.shape[1:], np.uint8)
                if len(offsets) and not (_pread(fd, probe, int(offsets[0])) and (probe == clips[0]).all()):
                    os.close(fd)  # the library's offsets do not address this file's bytes: use h5py
                else:
                    self._direct[shard] = (fd, offsets)
        return self._direct[shard]

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 (N, T, H, W, C) for these items, in the order asked (repeats allowed)."""
        return self.read_tensor(indices).numpy()

    def read_tensor(self, indices: Sequence[int]) -> torch.Tensor:
        """`read` into a torch tensor, page-locked when `pin` is set. The batch keeps this very
        tensor, so the pinned allocator sees the asynchronous copy that uses it before reusing it."""
        indices = np.asarray(indices, np.int64)
        first = self._file(int(self.shard_of[indices[0]]))
        offset = self.drawn_clips()[indices] if self.random else np.zeros(len(indices), np.int64)
        shape = (len(indices), *first.shape[1:])
        # numpy's allocation asks for huge pages: a fresh 59 MB batch faults in faster than with torch's
        batch = torch.empty(shape, dtype=torch.uint8, pin_memory=True) if self.pin else \
            torch.from_numpy(np.empty(shape, np.uint8))
        out = batch.numpy()
        for shard in np.unique(self.shard_of[indices]):
            pos = np.flatnonzero(self.shard_of[indices] == shard)
            direct = self._offsets(int(shard))
            if direct is not None:
                fd, starts = direct
                for j, row in zip(pos, self.row[indices[pos]] + offset[pos]):
                    if not _pread(fd, out[j], int(starts[row])):
                        raise OSError(f"{self.shards[shard]}: row {row} is cut short; the shard is truncated: "
                                      "delete it and rerun the decode stage")
                continue
            clips = self._file(int(shard))  # through h5py: per shard, runs of consecutive rows as slices
            rows, inverse = np.unique(self.row[indices[pos]] + offset[pos], return_inverse=True)
            block = np.empty((len(rows), *clips.shape[1:]), np.uint8)
            for run in np.split(np.arange(len(rows)), np.flatnonzero(np.diff(rows) != 1) + 1):
                a, b = int(run[0]), int(run[-1]) + 1
                clips.read_direct(block, np.s_[rows[a]:rows[a] + b - a], np.s_[a:b])
            out[pos] = block[inverse.reshape(-1)]
        return batch

    def _to_tensor(self, batch: torch.Tensor) -> torch.Tensor:
        x = batch.permute(0, 4, 1, 2, 3)  # (N, C, T, H, W), channels_last_3d memory
        return x if self.raw else normalize_clips(x, self.mean, self.std, torch.contiguous_format)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, np.int64)
        return {"clips": self._to_tensor(self.read_tensor(idx)), "labels": torch.from_numpy(self.labels[idx]),
                "video_ids": torch.from_numpy(self.video_ids[idx]),
                "clip_index": torch.from_numpy(self.drawn_clips()[idx])}

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        batch = self.__getitems__([i])
        return batch["clips"][0], int(batch["labels"][0])


def raw_row_offsets(clips: h5py.Dataset) -> np.ndarray | None:
    """File offset of each row's bytes when rows are stored whole and unfiltered: a contiguous
    dataset, or chunks of exactly one row with no filter (how write_shard stores clips). Else None."""
    plist = clips.id.get_create_plist()
    row_bytes = int(np.prod(clips.shape[1:], dtype=np.int64)) * clips.dtype.itemsize
    if plist.get_nfilters() or clips.dtype != np.uint8:
        return None
    if plist.get_layout() == h5py.h5d.CONTIGUOUS:
        base = clips.id.get_offset()
        return None if base is None else base + row_bytes * np.arange(clips.shape[0], dtype=np.int64)
    if plist.get_layout() != h5py.h5d.CHUNKED or clips.chunks != (1, *clips.shape[1:]):
        return None
    offsets = np.full(clips.shape[0], -1, np.int64)

    def visit(info) -> None:
        if info.size == row_bytes and not info.filter_mask:
            offsets[info.chunk_offset[0]] = info.byte_offset

    clips.id.chunk_iter(visit)
    return offsets if (offsets >= 0).all() else None  # an unwritten (fill-value) row: let h5py read it


def _pread(fd: int, out: np.ndarray, offset: int) -> bool:
    """Fill `out` (C-contiguous) from the file at `offset`; False when the file ends first."""
    view, done = memoryview(out.reshape(-1)).cast("B"), 0
    while done < len(view):
        got = os.preadv(fd, [view[done:]], offset + done)
        if got == 0:
            return False
        done += got
    return True


def collate_batch(batch: dict | list) -> dict:
    """`__getitems__` already returns a batch; DataLoader passes it through this."""
    return batch
