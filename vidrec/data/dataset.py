"""PyTorch Dataset over HDF5 clip shards (the per-split view): stored clips, or clips cut at load time
from an any-start spec's store of every frame (vidrec/data/video.py, ClipSpec).

Files open lazily in the process that reads them (`__init__` keeps none open: h5py handles do not
survive fork/spawn). `__getitems__` reads a whole batch at once, in-process (moving 1.2 MB clips between
worker processes is costly). Each clip is one uncompressed chunk (or a row of a contiguous dataset),
so its bytes sit at a fixed file offset: they are read with one `os.preadv` each straight into the
batch buffer (pinned when a GPU consumes it), at page-cache-to-memory speed, where h5py's read path
costs several times more per clip (benchmarks/results/loader.json, loader_over_h5py). Any-start
shards store one frame per chunk, written in order, so a clip's frames are read the same way, one
`os.preadv` per run of frames that follow each other in the file
(benchmarks/results/frames_store.json). Shards whose
layout does not allow this (compressed, other chunking) are read through h5py, as before. Never
h5py's fancy indexing with a row list: with one clip per chunk it read 8 clips in 0.8 s against
1.2 ms for 8 single-row slices.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from vidrec.data.video import clip_starts


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

    index: the split's index.csv (video_id, shard, row, n_clips, label, subset; any-start shards add
      n_frames, and `row` is then the video's first frame).
    clips: "centre" -> the centre clip of each video (clip K // 2, the thesis's protocol);
           "all" -> every test clip (video-level evaluation): the K stored clips, or the K evenly
           spaced clips of an any-start video (`clip_starts`: those a consecutive spec with the same K
           stores);
           "random" -> one clip per video, drawn afresh each epoch. Stored clips: one of the K stored at
           fixed, evenly spaced starts (jitter over K fixed offsets), drawn from (seed, epoch).
           Any-start shards: a clip of consecutive frames starting at any frame, the start uniform over
           [0, n_frames - span] (Tran et al.'s temporal jitter): floor(u x (n_frames - span + 1)), u the
           video_id-th double of the PCG64 stream seeded by SeedSequence((seed, epoch)), so a video's
           start depends on (seed, epoch, video_id) alone. Either draw is reproducible, the same on
           every DDP rank, and `set_epoch` reaches DataLoader workers that already run
           (the epoch lives in shared memory; persistent workers hold a copy of everything else).
    raw=True returns uint8 so normalisation can run on the training device (4x less to copy), as a
    (N, C, T, H, W) view of the shards' (N, T, H, W, C) bytes: channels_last_3d memory, not copied
    into another order on the host (`normalize_clips` writes the layout the device wants).
    pin=True reads batches straight into page-locked memory, for asynchronous copies to a GPU.
    An any-start index makes the dataset read its clip length and stride from the first shard's
    `clip_spec` attribute (the file is closed again).
    """

    def __init__(self, index: pd.DataFrame | str | Path, subset: str | None = None, clips: str = "centre",
                 raw: bool = False, mean: Sequence[float] = (0.43, 0.40, 0.37),
                 std: Sequence[float] = (0.23, 0.22, 0.22), seed: int = 0):
        df = pd.read_csv(index) if isinstance(index, (str, Path)) else index
        if subset is not None:
            df = df[df["subset"] == subset]
        self.any_start = "n_frames" in df.columns
        n_frames = df["n_frames"] if self.any_start else 0
        if clips in ("centre", "random"):  # random: clip_index is the draw's offset, filled per epoch
            first = df["n_clips"] // 2 if clips == "centre" else 0
            stored = first if not self.any_start else 0
            items = pd.DataFrame({"shard": df["shard"], "row": df["row"] + stored, "label": df["label"],
                                  "video_id": df["video_id"], "clip_index": first, "n_clips": df["n_clips"],
                                  "n_frames": n_frames})
            if self.any_start and clips == "random":
                items["clip_index"] = -1  # no test clip: a start drawn per epoch (drawn_starts)
        elif clips == "all":
            rep = df.loc[df.index.repeat(df["n_clips"])].copy()
            rep["clip_index"] = rep.groupby("video_id").cumcount()
            rep["n_frames"] = rep["n_frames"] if self.any_start else 0
            if not self.any_start:
                rep["row"] = rep["row"] + rep["clip_index"]
            items = rep[["shard", "row", "label", "video_id", "clip_index", "n_clips", "n_frames"]]
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
        self._data = "frames" if self.any_start else "clips"  # the shards' dataset the rows address
        if self.any_start:
            self.n_frames = items["n_frames"].to_numpy(np.int64)
            self.frames, self.stride = _clip_length(self.shards[0]) if self.shards else (1, 1)
            self.span = (self.frames - 1) * self.stride + 1
            # each test clip's first frame, as the consecutive spec with the same K stores it
            k, self.start = items["n_clips"].to_numpy(np.int64), np.zeros(len(items), np.int64)
            for c in np.unique(k):
                sel = np.flatnonzero((k == c) & (self.clip_index >= 0))
                self.start[sel] = clip_starts(self.n_frames[sel], self.span, int(c))[np.arange(len(sel)),
                                                                                      self.clip_index[sel]]
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

    def _draw(self) -> np.ndarray:
        """This epoch's draw (clips="random"): a stored clip per item, or an any-start clip's first frame."""
        key = (int(self._draw_key[0]), int(self._draw_key[1]))
        if self._drawn is None or self._drawn[0] != key:
            rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(key)))
            if not self.any_start:
                drawn = rng.integers(0, self.n_clips)
            elif len(self.video_ids):
                u = rng.random(int(self.video_ids.max()) + 1)[self.video_ids]
                drawn = (u * (self.n_frames - self.span + 1)).astype(np.int64)
            else:
                drawn = np.zeros(0, np.int64)
            self._drawn = key, drawn
        return self._drawn[1]

    def drawn_clips(self) -> np.ndarray:
        """Clip index (within its video) of every item for the current epoch; -1 for an any-start
        training clip (it starts at any frame: `drawn_starts`)."""
        if not self.random or self.any_start:
            return self.clip_index
        return self._draw()

    def drawn_starts(self) -> np.ndarray:
        """First frame (within its video) of every item's clip for the current epoch (any-start shards)."""
        if not self.any_start:
            raise ValueError("drawn_starts: stored clips have no start to draw (an any-start spec's shards do)")
        return self._draw() if self.random else self.start

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
        return self._files[shard][self._data]

    def _offsets(self, shard: int) -> tuple[int, np.ndarray] | None:
        """(fd, file offset of each row) when every row is stored raw and whole, else None."""
        data = self._file(shard)
        if shard not in self._direct:
            self._direct[shard] = None
            offsets = raw_row_offsets(data)
            if offsets is not None:
                fd = os.open(self.shards[shard], os.O_RDONLY)
                probe = np.empty(data.shape[1:], np.uint8)
                if len(offsets) and not (_pread(fd, probe, int(offsets[0])) and (probe == data[0]).all()):
                    os.close(fd)  # the library's offsets do not address this file's bytes: use h5py
                else:
                    self._direct[shard] = (fd, offsets)
        return self._direct[shard]

    def _rows(self, indices: np.ndarray) -> np.ndarray:
        """(N, rows per item) rows of the shards' dataset that make each item's clip, in clip order."""
        if self.any_start:
            first = self.row[indices] + self.drawn_starts()[indices]
            return first[:, None] + np.arange(self.frames)[None, :] * self.stride
        offset = self.drawn_clips()[indices] if self.random else 0
        return (self.row[indices] + offset)[:, None]

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 (N, T, H, W, C) for these items, in the order asked (repeats allowed)."""
        return self.read_tensor(indices).numpy()

    def read_tensor(self, indices: Sequence[int]) -> torch.Tensor:
        """`read` into a torch tensor, page-locked when `pin` is set. The batch keeps this very
        tensor, so the pinned allocator sees the asynchronous copy that uses it before reusing it."""
        indices = np.asarray(indices, np.int64)
        first = self._file(int(self.shard_of[indices[0]]))
        rows = self._rows(indices)
        shape = (len(indices), *((self.frames, *first.shape[1:]) if self.any_start else first.shape[1:]))
        # numpy's allocation asks for huge pages: a fresh 59 MB batch faults in faster than with torch's
        batch = torch.empty(shape, dtype=torch.uint8, pin_memory=True) if self.pin else \
            torch.from_numpy(np.empty(shape, np.uint8))
        out = batch.numpy()
        for shard in np.unique(self.shard_of[indices]):
            pos = np.flatnonzero(self.shard_of[indices] == shard)
            direct = self._offsets(int(shard))
            if direct is not None:
                fd, starts = direct
                for j in pos:
                    if not _pread_rows(fd, starts, rows[j], out[j]):
                        raise OSError(f"{self.shards[shard]}: rows {rows[j][[0, -1]].tolist()} are cut short; the "
                                      "shard is truncated: delete it and rerun the decode stage")
                continue
            data = self._file(int(shard))
            if self.any_start:  # through h5py: each clip's frames as one (strided) slice
                for j in pos:
                    data.read_direct(out, np.s_[rows[j][0]:rows[j][-1] + 1:self.stride], np.s_[j])
                continue
            # through h5py: per shard, runs of consecutive rows as slices
            unique, inverse = np.unique(rows[pos, 0], return_inverse=True)
            block = np.empty((len(unique), *data.shape[1:]), np.uint8)
            for run in np.split(np.arange(len(unique)), np.flatnonzero(np.diff(unique) != 1) + 1):
                a, b = int(run[0]), int(run[-1]) + 1
                data.read_direct(block, np.s_[unique[a]:unique[a] + b - a], np.s_[a:b])
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


def _clip_length(shard: str) -> tuple[int, int]:
    """(frames, stride) of the clips an any-start shard's spec cuts, from its `clip_spec` attribute."""
    with h5py.File(shard, "r") as f:
        spec = json.loads(f.attrs["clip_spec"])
    return int(spec["frames"]), int(spec["stride"])


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


def _pread_rows(fd: int, offsets: np.ndarray, rows: np.ndarray, out: np.ndarray) -> bool:
    """Fill `out` (C-contiguous, len(rows) rows) with these rows, one read per run of rows whose bytes
    follow each other in the file; False when the file ends first."""
    flat = out.reshape(len(rows), -1)
    at = offsets[rows]
    cuts = [0, *(np.flatnonzero(np.diff(at) != flat.shape[1]) + 1).tolist(), len(rows)]
    return all(_pread(fd, flat[a:b], int(at[a])) for a, b in zip(cuts[:-1], cuts[1:]))


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
