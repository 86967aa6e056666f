"""Tran et al.'s clips (issue 17, part 1): whole frames resized to a non-square size, K stored clips per
video, one drawn per video per epoch (jitter over K fixed offsets) with a random crop in training, the centre crop
and the mean over every clip in testing."""
from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from support import index_video, repo_config
from vidrec.data.dataset import ClipDataset, augment_clips, collate_batch
from vidrec.data.shards import check_shard, shard_config_hash, write_shard
from vidrec.data.video import ClipSpec, crop_resize, decode_clips

TRAN = ClipSpec(frames=16, crop=None, size=(128, 171), sampling="consecutive", clips_per_video=10)


def test_whole_frame_resized_to_a_non_square_size():
    frame = np.full((240, 320, 3), 200, np.uint8)
    frame[:, :64] = 50  # a border that a centre crop of 192 would cut away
    out, repair = crop_resize(frame, None, (128, 171))
    assert out.shape == (128, 171, 3) and repair == ""
    assert (out[:, :32] == 50).all() and (out[:, 36:] == 200).all()  # 64 * 171 / 320 = 34.2
    assert crop_resize(frame, None, [128, 171])[0].shape == (128, 171, 3)
    assert (TRAN.height, TRAN.width) == (128, 171) and TRAN.text() == "16x128x171 consecutive"


def test_square_specs_keep_their_shard_identity():
    """The identity of the existing (square, cropped) shards does not move with the new fields."""
    assert shard_config_hash(ClipSpec(frames=16, crop=192, size=64, sampling="uniform", clips_per_video=3)) \
        == shard_config_hash(ClipSpec.from_config({"frames": 16, "crop": 192, "size": 64, "sampling": "uniform",
                                                   "clips_per_video": 3}))
    assert ClipSpec.from_config({"frames": 16, "crop": None, "size": [128, 171], "sampling": "consecutive"}) \
        == ClipSpec(16, None, (128, 171), "consecutive")
    assert TRAN.bytes_per_video == 10 * 16 * 128 * 171 * 3


def test_tran_shard_stores_k_consecutive_whole_frame_clips(tmp_path):
    spec = ClipSpec(frames=4, crop=None, size=(24, 32), sampling="consecutive", clips_per_video=3)
    index_video(tmp_path / "v" / "a.avi", 20)
    videos = pd.DataFrame({"video_id": [0], "path": ["a.avi"], "label": [1]})
    write_shard(videos, tmp_path / "v", spec, tmp_path / "g01.h5")
    assert check_shard(tmp_path / "g01.h5", spec)["n_clips"] == 3
    decoded = decode_clips(tmp_path / "v" / "a.avi", spec)
    with h5py.File(tmp_path / "g01.h5", "r") as f:
        assert f["clips"].shape == (3, 4, 24, 32, 3) and (f["clips"][()] == decoded.clips).all()
        starts = f["frame_indices"][:, 0].tolist()
    assert starts == [0, 8, 16] and (np.diff(decoded.frame_indices, axis=1) == 1).all()


def _index(tmp_path, n_clips: list[int]) -> pd.DataFrame:
    """A shard whose clip k of video v is filled with 10 v + k (no decoding needed)."""
    rows, clips, start = [], [], 0
    for v, k in enumerate(n_clips):
        rows.append({"video_id": v, "shard": str(tmp_path / "g.h5"), "row": start, "n_clips": k, "label": v % 3,
                     "subset": "train"})
        clips += [np.full((2, 4, 6, 3), 10 * v + c, np.uint8) for c in range(k)]
        start += k
    with h5py.File(tmp_path / "g.h5", "w") as f:
        f["clips"] = np.stack(clips)
    return pd.DataFrame(rows)


def test_random_clips_one_per_video_drawn_per_epoch_from_the_seed(tmp_path):
    n_clips = [10, 10, 10, 10, 10, 10, 10, 3]
    index = _index(tmp_path, n_clips)
    ds = ClipDataset(index, "train", clips="random", raw=True, seed=0)
    assert len(ds) == len(n_clips)
    draws = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        batch = ds.__getitems__(list(range(len(ds))))
        drawn = batch["clip_index"].numpy()
        assert ((drawn >= 0) & (drawn < n_clips)).all()
        # the pixels are those of the drawn clip of each video
        assert (batch["clips"][:, 0, 0, 0, 0].numpy() == 10 * np.arange(len(n_clips)) + drawn).all()
        draws.append(drawn)
    assert all(not np.array_equal(draws[0], d) for d in draws[1:]), "each epoch draws afresh"
    again = ClipDataset(index, "train", clips="random", raw=True, seed=0)
    again.set_epoch(2)
    assert np.array_equal(again.drawn_clips(), draws[2]), "reproducible from (seed, epoch)"
    other = ClipDataset(index, "train", clips="random", raw=True)
    other.set_epoch(2, seed=1)
    assert not np.array_equal(other.drawn_clips(), draws[2]), "another seed draws other clips"
    assert ClipDataset(index, "train", clips="centre").clip_index.tolist() == [k // 2 for k in n_clips]


def test_random_clips_follow_set_epoch_in_persistent_workers(tmp_path):
    """A persistent DataLoader worker holds its own copy of the dataset: the epoch must still reach it."""
    ds = ClipDataset(_index(tmp_path, [10] * 6), "train", clips="random", raw=True, seed=3)
    loader = DataLoader(ds, batch_size=6, collate_fn=collate_batch, num_workers=1, persistent_workers=True)
    for epoch in (0, 1, 5):
        ds.set_epoch(epoch)
        (batch,) = list(loader)
        assert np.array_equal(batch["clip_index"].numpy(), ds.drawn_clips()), epoch


def test_tran_crop_random_in_training_centre_in_test():
    h, w = 128, 171
    pos = (torch.arange(h)[:, None] * 1000 + torch.arange(w)[None, :]).float()
    x = pos.expand(3, 2, 3, h, w).clone()  # (N, C, T, H, W): each pixel holds its own position
    centre = augment_clips(x, crop=112, hflip=False, train=False)
    assert centre.shape == (3, 2, 3, 112, 112)
    assert torch.equal(centre, x[..., 8:120, 29:141])  # (128 - 112) // 2, (171 - 112) // 2
    torch.manual_seed(0)
    first = augment_clips(x, crop=112, hflip=False, train=True)
    torch.manual_seed(0)
    assert torch.equal(first, augment_clips(x, crop=112, hflip=False, train=True)), "drawn from torch's RNG"
    corners = set()
    for i in range(3):
        y0, x0 = divmod(int(first[i, 0, 0, 0, 0]), 1000)
        assert 0 <= y0 <= h - 112 and 0 <= x0 <= w - 112
        assert torch.equal(first[i], x[i, ..., y0:y0 + 112, x0:x0 + 112])
        corners.add((y0, x0))
    assert len(corners) > 1, "each clip gets its own crop"


@pytest.mark.parametrize("clips", ["centre", "all", "random"])
def test_clip_modes_read_every_item(tmp_path, clips):
    ds = ClipDataset(_index(tmp_path, [2, 3]), "train", clips=clips, raw=True)
    batch = ds.__getitems__(list(range(len(ds))))
    assert batch["clips"].shape[1:] == (3, 2, 4, 6) and len(batch["labels"]) == {"centre": 2, "all": 5, "random": 2}[clips]


# ----------------------------------------------------------------------------- configuration
def _config(**overrides):
    from vidrec.plan.config import apply_override, validate_config

    cfg = repo_config()
    for key, value in overrides.items():
        apply_override(cfg, key.split("."), value)
    return validate_config(cfg)


def test_the_tran_protocol_and_clip_spec_as_configured():
    from vidrec.plan.config import model_input_shape

    cfg = _config()
    tran, clip = cfg["protocols"]["tran"], cfg["clips"]["tran16"]
    assert tran["train_clips"] == "random" and tran["augment"] == {"crop": 112, "hflip": True}
    assert ClipSpec.from_config(clip) == ClipSpec(16, None, (128, 171), "any_start", 10, 1)
    assert model_input_shape(clip, tran["augment"]) == (3, 16, 112, 112)
    assert model_input_shape(clip, {"crop": None}) == (3, 16, 128, 171)
    assert cfg["datasets"]["ucf101"]["models"]["r2plus1d_18"]["clip"] == "tran16"
    assert cfg["datasets"]["demo"]["hflip_safe"] is False and cfg["datasets"]["ucf101"]["hflip_safe"] is True


def test_a_crop_larger_than_a_runs_clip_names_the_run():
    from vidrec.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"datasets.ucf101.models.r2plus1d_18': protocol 'tran' crops 130x130 .*"
                                          r"'tran16' stores 128x171"):
        _config(**{"protocols.tran.augment": {"crop": 130, "hflip": True}})
    with pytest.raises(ConfigError, match=r"config key 'clips.tran16.size'"):
        _config(**{"clips.tran16.size": [128, 171, 3]})


def test_the_readme_disk_table_is_the_spec_formula():
    """README's disk cost per K: K x 16 x 128 x 171 x 3 bytes per video, times UCF101's 13,320 videos
    (the official lists: every video is in split 1's train or test list)."""
    import re

    from support import REAL_LISTS, REPO

    videos = sum(len(f.read_text().split()) // (2 if f.name.startswith("train") else 1)
                 for f in (REAL_LISTS / "trainlist01.txt", REAL_LISTS / "testlist01.txt"))
    assert videos == 13320
    rows = re.findall(r"^\| (\d+) \| ([\d.]+) \| ([\d.]+) \|$", (REPO / "README.md").read_text(), re.M)
    assert [int(k) for k, _, _ in rows] == [1, 5, 10, 20]
    for k, per_video, total in rows:
        spec = ClipSpec(16, None, (128, 171), "consecutive", int(k))
        assert (per_video, total) == (f"{spec.bytes_per_video / 1e6:.1f}", f"{spec.bytes_per_video * videos / 1e9:.1f}")


def test_the_trainer_draws_each_epochs_clips_from_its_seed(tiny_run, tmp_path, monkeypatch):
    """train_clips: random in the training loop: epoch e reads the clips drawn from (the run's seed, e)."""
    from vidrec.plan.config import load_config
    from vidrec.plan.runs import run_settings
    from vidrec.training.trainer import Trainer

    cfg = load_config(tiny_run["config"], ["datasets.tiny.protocol_overrides.thesis.train_clips=random",
                                           "datasets.tiny.models.p3d63.args.base_width=4"])
    trainer = Trainer(run_settings(cfg, "p3d63"), 5, tiny_run["index"], tiny_run["classes"].read_text().split(),
                      tmp_path, threads=1)
    read, seen = trainer.train_set.__getitems__, []
    monkeypatch.setattr(trainer.train_set, "__getitems__",
                        lambda idx: seen.append(dict(zip(idx, (b := read(idx))["clip_index"].tolist()))) or b)
    reference = ClipDataset(tiny_run["index"], "train", clips="random", seed=5)
    draws = []
    for epoch in (0, 1):
        seen.clear()
        trainer.train_epoch(epoch)
        got = {i: k for batch in seen for i, k in batch.items()}
        assert sorted(got) == list(range(len(reference))), "one clip of every training video"
        reference.set_epoch(epoch)
        assert [got[i] for i in sorted(got)] == reference.drawn_clips().tolist()
        draws.append(got)
    assert draws[0] != draws[1]
