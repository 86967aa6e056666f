"""PyTorch Dataset over HDF5 clip shards (the per-split view).

Files open lazily in the process that reads them (never in `__init__`: h5py handles do not survive
fork/spawn). `__getitems__` reads a whole batch at once, each shard's rows sorted and read as slices
of consecutive rows, which is what makes in-process loading fast (moving 1.2 MB clips between worker
processes is costly). Never h5py's fancy indexing with a row list: with one clip per chunk it read 8
clips in 0.8 s against 1.2 ms for 8 single-row slices (h5py 3.16, HDF5 2.0; benchmarks/loader.py).
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


def normalize_clips(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (N, C, T, H, W) or (C, T, H, W) -> float normalised; runs on whatever device x is on."""
    shape = (-1, 1, 1, 1)
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(shape)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(shape)
    return (x.float().div_(255.0) - m) / s


def augment_clips(x: torch.Tensor, crop: int | None, hflip: bool, train: bool,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop + horizontal flip per clip when training; centre crop otherwise. x: (N,C,T,H,W)."""
    if crop is None and not (hflip and train):
        return x
    n, _, _, h, w = x.shape
    out = []
    for i in range(n):
        clip = x[i]
        if crop is not None:
            if train:
                y0 = int(torch.randint(0, h - crop + 1, (1,), generator=generator))
                x0 = int(torch.randint(0, w - crop + 1, (1,), generator=generator))
            else:
                y0, x0 = (h - crop) // 2, (w - crop) // 2
            clip = clip[..., y0:y0 + crop, x0:x0 + crop]
        if hflip and train and bool(torch.rand((), generator=generator) < 0.5):
            clip = clip.flip(-1)
        out.append(clip)
    return torch.stack(out)


class ClipDataset(Dataset):
    """Clips of one subset of a split, as uint8 (C, T, H, W) tensors or normalised floats.

    index: the split's index.csv (video_id, shard, row, n_clips, label, subset).
    clips: "centre" -> the centre clip of each video (the thesis's protocol);
           "all" -> every stored clip (video-level evaluation);
           "random" -> one stored clip per video, drawn afresh each epoch (Tran et al.'s temporal
           jitter): the draw of epoch e is a function of (seed, e) alone, so it is reproducible,
           the same on every DDP rank, and `set_epoch` reaches DataLoader workers that already run
           (the epoch lives in shared memory; persistent workers hold a copy of everything else).
    raw=True returns uint8 so normalisation can run on the training device (4x less to copy).
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
        self._files: dict[int, h5py.File] = {}
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
        state["_files"], state["_pid"] = {}, -1
        return state

    def _file(self, shard: int) -> h5py.Dataset:
        if self._pid != os.getpid():  # opened lazily, per process
            self._files, self._pid = {}, os.getpid()
        if shard not in self._files:
            self._files[shard] = h5py.File(self.shards[shard], "r")
        return self._files[shard]["clips"]

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """uint8 (N, T, H, W, C) for these items: per shard, runs of consecutive rows as slice reads."""
        indices = np.asarray(indices, np.int64)
        first = self._file(int(self.shard_of[indices[0]]))
        offset = self.drawn_clips()[indices] if self.random else np.zeros(len(indices), np.int64)
        out = np.empty((len(indices), *first.shape[1:]), np.uint8)
        for shard in np.unique(self.shard_of[indices]):
            pos = np.flatnonzero(self.shard_of[indices] == shard)
            clips = self._file(int(shard))
            rows, inverse = np.unique(self.row[indices[pos]] + offset[pos], return_inverse=True)
            block = np.empty((len(rows), *clips.shape[1:]), np.uint8)
            for run in np.split(np.arange(len(rows)), np.flatnonzero(np.diff(rows) != 1) + 1):
                a, b = int(run[0]), int(run[-1]) + 1
                clips.read_direct(block, np.s_[rows[a]:rows[a] + b - a], np.s_[a:b])
            out[pos] = block[inverse.reshape(-1)]
        return out

    def _to_tensor(self, arr: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(arr).permute(0, 4, 1, 2, 3)  # (N, C, T, H, W)
        return x.contiguous() if self.raw else normalize_clips(x, self.mean, self.std)

    def __getitems__(self, indices: Sequence[int]) -> dict[str, torch.Tensor]:
        idx = np.asarray(indices, np.int64)
        return {"clips": self._to_tensor(self.read(idx)), "labels": torch.from_numpy(self.labels[idx]),
                "video_ids": torch.from_numpy(self.video_ids[idx]),
                "clip_index": torch.from_numpy(self.drawn_clips()[idx])}

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        batch = self.__getitems__([i])
        return batch["clips"][0], int(batch["labels"][0])


def collate_batch(batch: dict | list) -> dict:
    """`__getitems__` already returns a batch; DataLoader passes it through this."""
    return batch
