"""Clips from any start frame (issue 28, part 1): an any-start spec stores every frame of each video once;
training cuts a clip of consecutive frames at a start drawn from (seed, epoch, video), testing cuts the K
evenly spaced clips a consecutive spec with the same K stores."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest
from torch.utils.data import DataLoader

from support import index_video, read_index, run_cli, tiny_config
from vidrec.data.dataset import ClipDataset, collate_batch
from vidrec.data.shards import build_split_index, check_shard, verify_content_hash, write_shard
from vidrec.data.video import ClipSpec, VideoError
from vidrec.data.diskspace import shard_bytes

ANY = ClipSpec(frames=16, crop=192, size=32, sampling="any_start", clips_per_video=3)
LENGTHS = [40, 23, 10]  # the last is shorter than a clip: padded with its last frame


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("any_start")
    for v, n in enumerate(LENGTHS):
        index_video(folder / "v" / f"v{v}.avi", n)
    table = pd.DataFrame({"video_id": range(len(LENGTHS)), "path": [f"v{v}.avi" for v in range(len(LENGTHS))],
                          "label": [0, 1, 0]})
    return folder, table


def _index(folder, table, spec: ClipSpec, name: str) -> pd.DataFrame:
    shard = folder / f"{name}.h5"
    if not shard.exists():
        write_shard(table, folder / "v", spec, shard)
    membership = pd.DataFrame({"video_id": table["video_id"], "split1": "train"})
    return build_split_index(membership, [shard], 1)


def _starts(clips: np.ndarray) -> list[list[int]]:
    """The source frame numbers each clip holds (the frames encode their index)."""
    return [[read_index(frame) for frame in clip] for clip in clips]


def test_training_starts_cover_every_valid_start_and_repeat_from_the_seed(videos):
    folder, table = videos
    index = _index(folder, table, ANY, "any")
    assert index["n_frames"].tolist() == [40, 23, 16] and index["n_clips"].tolist() == [3, 3, 3]
    ds = ClipDataset(index, clips="random", raw=True, seed=7)
    seen, sequence = set(), []
    for epoch in range(300):
        ds.set_epoch(epoch)
        sequence.append(ds.drawn_starts().copy())
        seen.add(int(sequence[-1][0]))
    assert seen == set(range(40 - 16 + 1)), "every valid start of the 40-frame video, not K of them"
    assert {int(s[2]) for s in sequence} == {0}, "a padded 16-frame video has one start"
    assert (ds.drawn_clips() == -1).all()
    again = ClipDataset(index, clips="random", raw=True, seed=7)
    for epoch in (0, 13, 299):
        again.set_epoch(epoch)
        assert np.array_equal(again.drawn_starts(), sequence[epoch]), "repeats from the seed"
    other = ClipDataset(index, clips="random", raw=True, seed=8)
    draws = []
    for epoch in range(20):
        other.set_epoch(epoch)
        draws.append(other.drawn_starts()[0])
    assert draws != [s[0] for s in sequence[:20]], "another seed draws other starts"
    alone = ClipDataset(index[index["video_id"] == 1], clips="random", raw=True, seed=7)
    alone.set_epoch(13)
    assert alone.drawn_starts()[0] == sequence[13][1], "a video's start depends on (seed, epoch, video) only"
    # the pixels read are the drawn clips, in this process and in a persistent DataLoader worker
    loader = DataLoader(ds, batch_size=3, collate_fn=collate_batch, num_workers=1, persistent_workers=True)
    for epoch in (2, 5):
        ds.set_epoch(epoch)
        (batch,) = list(loader)
        got = _starts(batch["clips"].permute(0, 2, 3, 4, 1).numpy())
        expected = [[min(s + t, n - 1) for t in range(16)] for s, n in zip(ds.drawn_starts(), LENGTHS)]
        assert got == expected == _starts(ds.read(range(3))), epoch


def test_test_clips_are_the_consecutive_specs_stored_clips_byte_for_byte(videos, monkeypatch):
    folder, table = videos
    anystart = _index(folder, table, ANY, "any")
    consecutive = _index(folder, table, ClipSpec(16, 192, 32, "consecutive", 3), "consecutive")
    for clips in ("all", "centre"):
        a = ClipDataset(anystart, clips=clips, raw=True)
        c = ClipDataset(consecutive, clips=clips, raw=True)
        assert len(a) == len(c) and np.array_equal(a.clip_index, c.clip_index)
        assert np.array_equal(a.video_ids, c.video_ids)
        assert a._offsets(0) is not None, "read by file offsets"
        assert np.array_equal(a.read(range(len(a))), c.read(range(len(c)))), clips
    stored = ClipDataset(consecutive, clips="all", raw=True).read(range(9))
    monkeypatch.setattr("vidrec.data.dataset.raw_row_offsets", lambda data: None)  # the h5py path
    assert np.array_equal(ClipDataset(anystart, clips="all", raw=True).read(range(9)), stored)
    starts = ClipDataset(anystart, clips="all").drawn_starts().tolist()
    assert starts == [0, 12, 24, 0, 4, 7, 0, 0, 0]
    from vidrec.inference.decode import clip_plan  # `vidrec predict` decodes the same test clips

    assert clip_plan(ANY, 3) == (ClipSpec(16, 192, 32, "consecutive", 3), [0, 1, 2])
    assert clip_plan(ANY, 1) == (ClipSpec(16, 192, 32, "consecutive", 3), [1])


def test_a_short_video_is_padded_with_its_last_frame_and_says_so(videos):
    folder, table = videos
    _index(folder, table, ANY, "any")
    with h5py.File(folder / "any.h5", "r") as f:
        first, count = int(f["first_frame"][2]), int(f["n_frames"][2])
        stored = f["frames"][first:first + count]
        assert f["repairs"][2].decode() == "padded_last_frame(10_frames)" and f["repairs"][0].decode() == ""
        assert f["frame_indices"][first:first + count].tolist() == [*range(10), *[9] * 6]
        assert f["frames"].chunks == (1, 32, 32, 3) and f.attrs["n_frames"] == 40 + 23 + 16
    assert [read_index(x) for x in stored] == [*range(10), *[9] * 6]


def test_the_shard_is_written_atomically_complete_and_within_the_disk_formula(videos, tmp_path):
    folder, table = videos
    _index(folder, table, ANY, "any")
    attrs = check_shard(folder / "any.h5", ANY)
    assert attrs["n_videos"] == 3 and attrs["n_clips"] == 9 and verify_content_hash(folder / "any.h5")
    frames = (40 + 23 + 16) / 3
    assert (folder / "any.h5").stat().st_size <= shard_bytes(ANY, 3, frames_per_video=frames)
    assert shard_bytes(ANY, 3) > shard_bytes(ANY, 3, frames_per_video=frames), "the 175-frame assumption"
    broken = pd.concat([table, pd.DataFrame({"video_id": [3], "path": ["missing.avi"], "label": [1]})])
    out = tmp_path / "b000.h5"
    with pytest.raises(VideoError, match="missing.avi"):
        write_shard(broken, folder / "v", ANY, out)
    assert list(tmp_path.iterdir()) == [], "a failed write leaves neither the shard nor a temporary"
    stats = write_shard(broken, folder / "v", ANY, out, on_bad_video="skip")
    assert stats["videos"] == 3 and stats["clips"] == 9 and stats["frames"] == 79 and len(stats["skipped"]) == 1


@pytest.mark.slow
def test_train_and_evaluate_an_any_start_spec_through_the_cli(tiny_dataset, tmp_path):
    videos, _ = tiny_dataset
    cfg = tiny_config(tmp_path / "config.yaml", videos.parent, epochs=1)
    common = ["--config", str(cfg), "--quiet", "--set", "decode.videos_per_shard=50",
              "--set", "clips.tiny8.sampling=any_start",
              "--set", "datasets.tiny.protocol_overrides.thesis.train_clips=random"]
    run_cli(*common, "manifest", "--out-dir", str(tmp_path / "manifest"))
    shard = tmp_path / "shards" / "b000.h5"
    run_cli(*common, "decode", "--manifest", str(tmp_path / "manifest/videos.csv"), "--bucket", "0",
            "--clip", "tiny8", "--out", str(shard), "--stats", str(shard.with_suffix(".json")))
    index = tmp_path / "split1" / "index.csv"
    run_cli(*common, "index", "--splits", str(tmp_path / "manifest/splits.csv"), "--split", "1",
            "--shards", str(shard), "--out", str(index))
    assert set(pd.read_csv(index)["n_frames"]) == {24}
    out = tmp_path / "p3d63"
    run_cli(*common, "train", "--model", "p3d63", "--index", str(index), "--classes",
            str(tmp_path / "manifest/classes.txt"), "--out-dir", str(out))
    run_cli(*common, "evaluate", "--model-file", str(out / "model.pt"), "--index", str(index), "--out-dir", str(out))
    ev = json.loads((out / "evaluation.json").read_text())
    assert ev["n_videos"] == 14 and ev["n_clips"] == 28 and ev["end_to_end_videos"] == 14
    assert json.loads((out / "train.json").read_text())["train_clip_sampling"] == "random"


@pytest.mark.parametrize("sampling, words", [("any_start", "training clips: random (any start)"),
                                             ("consecutive", "training clips: random (jitter over K fixed offsets)")])
def test_the_protocol_label_says_which_random_clips_ran(sampling, words):
    from vidrec.plan.config import load_config
    from vidrec.report.run_text import protocol_text
    from vidrec.plan.runs import resolve_runs

    cfg = load_config(overrides=["dataset=ucf101", f"clips.tran16.sampling={sampling}"])
    assert cfg["clips"]["tran16"]["clips_per_video"] == 10
    text = protocol_text(resolve_runs(cfg)["r2plus1d_18"])
    assert words in text and f"{sampling}, 10 per video" in text
