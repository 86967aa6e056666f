"""Feeding the device (issue 19): shard rows read at their file offsets, batched crops, no per-step sync."""
from __future__ import annotations

import io

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from vidrec.data.dataset import ClipDataset, augment_clips, crop_draws, normalize_clips, raw_row_offsets
from vidrec.models.model_file import Preprocessing

ROW = (4, 6, 8, 3)  # (T, H, W, C)
LAYOUTS = {"one_row_chunks": dict(chunks=(1, *ROW)), "contiguous": {},
           "gzip": dict(chunks=(1, *ROW), compression="gzip"), "two_row_chunks": dict(chunks=(2, *ROW))}


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """One shard per storage layout, 5 videos x 2 clips of random pixels each, and their split index."""
    out, rng, parts, pixels = tmp_path_factory.mktemp("layouts"), np.random.default_rng(0), [], {}
    for s, (name, kw) in enumerate(LAYOUTS.items()):
        clips = rng.integers(0, 256, (10, *ROW), dtype=np.uint8)
        path = out / f"{name}.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("clips", data=clips, **kw)
        pixels[str(path)] = clips
        parts.append(pd.DataFrame({"video_id": range(10 * s, 10 * s + 5), "shard": str(path), "row": range(0, 10, 2),
                                   "n_clips": 2, "label": s, "subset": "train"}))
    return pd.concat(parts, ignore_index=True), pixels


def test_rows_stored_whole_are_read_at_their_offsets_and_equal_h5py(shards):
    index, pixels = shards
    direct = {}
    for path in pixels:
        with h5py.File(path, "r") as f:
            direct[path.rsplit("/", 1)[1][:-3]] = raw_row_offsets(f["clips"]) is not None
    assert direct == {"one_row_chunks": True, "contiguous": True, "gzip": False, "two_row_chunks": False}
    ds = ClipDataset(index, clips="all", raw=True)
    rng = np.random.default_rng(1)
    for indices in ([0], list(range(len(ds)))[::-1], rng.integers(0, len(ds), 30).tolist(), [7, 7, 3, 7]):
        expected = np.stack([pixels[ds.shards[ds.shard_of[i]]][ds.row[i]] for i in indices])
        assert (ds.read(indices) == expected).all(), indices
    assert sum(v is not None for v in ds._direct.values()) == 2, "the two raw layouts skip h5py"


def test_raw_batches_are_channels_last_views_and_floats_match(shards):
    index, _ = shards
    raw = ClipDataset(index, clips="all", raw=True).__getitems__([3, 1, 4])["clips"]
    assert raw.shape == (3, 3, *ROW[:3]) and raw.is_contiguous(memory_format=torch.channels_last_3d)
    floats = ClipDataset(index, clips="all").__getitems__([3, 1, 4])["clips"]
    reference = (raw.contiguous().float() / 255 - torch.tensor((0.43, 0.40, 0.37)).view(-1, 1, 1, 1)) \
        / torch.tensor((0.23, 0.22, 0.22)).view(-1, 1, 1, 1)
    assert floats.is_contiguous() and torch.equal(floats, reference)
    cl = normalize_clips(raw, (0.43, 0.40, 0.37), (0.23, 0.22, 0.22), torch.channels_last_3d)
    assert cl.is_contiguous(memory_format=torch.channels_last_3d) and torch.equal(cl, floats)


@pytest.mark.parametrize("crop,hflip", [(5, True), (5, False), (None, True)])
def test_batched_crops_and_flips_are_the_per_clip_ones(crop, hflip):
    x = torch.randint(0, 256, (6, 3, 2, 7, 9), dtype=torch.uint8)
    y0, x0, flip = crop_draws(6, 7, 9, crop, hflip, True, torch.Generator().manual_seed(0))
    ch, cw = (crop, crop) if crop else (7, 9)
    expect = []
    for i in range(6):
        clip = x[i, ..., int(y0[i]):int(y0[i]) + ch, int(x0[i]):int(x0[i]) + cw]
        expect.append(clip.flip(-1) if flip[i] else clip)
    got = augment_clips(x, crop, hflip, True, torch.Generator().manual_seed(0))
    assert torch.equal(got, torch.stack(expect))
    if hflip:
        assert 0 < int(flip.sum()) < 6, "both flipped and unflipped clips were drawn"


def test_preprocessing_crops_uint8_first_with_the_values_of_normalising_first():
    pre = Preprocessing((0.4, 0.5, 0.6), (0.2, 0.25, 0.3), crop=5, hflip=True)
    x = torch.randint(0, 256, (4, 2, 7, 9, 3), dtype=torch.uint8).permute(0, 4, 1, 2, 3)  # as loaded
    torch.manual_seed(0)
    got = pre(x, train=True, memory_format=torch.channels_last_3d)
    torch.manual_seed(0)
    expect = augment_clips(normalize_clips(x, pre.mean, pre.std), 5, True, True)
    assert got.is_contiguous(memory_format=torch.channels_last_3d) and torch.equal(got, expect)


@pytest.mark.parametrize("bar_refresh_s", [float("inf"), 0.0])
def test_training_and_validation_read_the_device_once_per_epoch_not_per_step(tiny_run, tmp_path, monkeypatch,
                                                                             bar_refresh_s):
    """Every host read of a tensor that vidrec's code makes (.item(), .tolist(), bool(), float(), int(),
    formatting) is counted: an epoch of training plus a validation pass make a fixed few, whatever
    their number of steps (the loop before issue 19 made three or more per step). The progress bar
    reads the totals at its own pace (`mininterval` seconds of wall time), so the pace is fixed here
    instead of left to the machine's speed: never (the epoch's own reads only), and at every step
    (one read per refresh: the count grows with the steps, which shows the counting sees them)."""
    import sys

    from tqdm import tqdm

    from vidrec.plan.config import load_config
    from vidrec.plan.runs import run_settings
    from vidrec.training.trainer import Trainer

    cfg = load_config(tiny_run["config"])
    trainer = Trainer(run_settings(cfg, "p3d63"), 0, tiny_run["index"], tiny_run["classes"].read_text().split(),
                      tmp_path, threads=1)
    monkeypatch.setattr(trainer, "_bar", lambda loader, desc: tqdm(loader, desc=desc, mininterval=bar_refresh_s,
                                                                    file=io.StringIO()))
    reads = []
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__", "__format__"):
        def counting(self, *args, _real=getattr(torch.Tensor, name), _name=name, **kwargs):
            caller = sys._getframe(1).f_code
            if "/vidrec/" in caller.co_filename:  # not torch's own reads of its CPU-side state
                reads.append(f"{_name} in {caller.co_name}")
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counting)
    train_steps, val_steps = len(trainer.train_loader), len(trainer.val_loader)
    trainer.train_epoch(0)
    trainer.validate()
    assert train_steps + val_steps >= 6, (train_steps, val_steps)
    if bar_refresh_s == float("inf"):
        assert len(reads) <= 10, reads
    else:  # a refresh per step reads the device at every step: the counter sees per-step reads
        assert len(reads) >= train_steps + 3, (train_steps, reads)
