"""Data stage: sampling, decoding, split lists, leakage audit, shards, the Dataset."""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from support import REAL_LISTS, REPO, index_video, read_index
from vidrec.data.dataset import ClipDataset, normalize_clips
from vidrec.data.shards import build_split_index, check_shard, verify_content_hash, write_shard
from vidrec.data.formats import ManifestError, check_leakage, leakage_audit, ucf101
from vidrec.data.formats.ucf101 import read_class_index
from vidrec.data.video import ClipSpec, VideoError, crop_resize, decode_clips, sample_indices


# ----------------------------------------------------------------------------- sampling
def test_uniform_sampling_spreads_over_the_whole_video():
    idx, repair = sample_indices(100, ClipSpec(frames=16, sampling="uniform"))
    assert idx.shape == (1, 16) and repair == ""
    assert idx[0].tolist() == [int((t + 0.5) * 100 / 16) for t in range(16)]
    three, _ = sample_indices(100, ClipSpec(frames=16, sampling="uniform", clips_per_video=3))
    assert (three[1] == idx[0]).all(), "the centre clip of 3 is the single-clip protocol's clip"
    assert (three[0] < three[1]).all() and (three[1] < three[2]).all()


def test_consecutive_sampling_and_short_video_rule():
    idx, repair = sample_indices(100, ClipSpec(frames=16, sampling="consecutive", clips_per_video=4, stride=2))
    assert idx[0, 0] == 0 and idx[-1, -1] == 99 and repair == ""
    assert (np.diff(idx, axis=1) == 2).all()
    short, repair = sample_indices(10, ClipSpec(frames=16, sampling="consecutive"))
    assert repair == "padded_last_frame" and short[0, -6:].tolist() == [9] * 6
    short, repair = sample_indices(5, ClipSpec(frames=16, sampling="uniform"))
    assert repair == "repeated_frames" and sorted(set(short[0])) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("spec", [
    ClipSpec(frames=16, crop=192, size=160, sampling="uniform", clips_per_video=3),
    ClipSpec(frames=16, crop=192, size=64, sampling="consecutive", clips_per_video=4, stride=2),
])
def test_decoded_frames_are_exactly_the_sampled_ones(tmp_path, spec):
    path = index_video(tmp_path / "v.avi", 137)
    decoded = decode_clips(path, spec)
    expected, _ = sample_indices(137, spec)
    got = np.array([[read_index(f) for f in clip] for clip in decoded.clips])
    assert decoded.n_frames == 137
    assert (got == expected).all()
    assert (decoded.frame_indices == expected).all()


def test_crop_resize_is_centre_crop_then_resize():
    frame = np.zeros((240, 320, 3), np.uint8)
    frame[24:216, 64:256] = 200  # exactly the centre 192x192
    out, repair = crop_resize(frame, 192, 160)
    assert out.shape == (160, 160, 3) and repair == "" and (out == 200).all()
    small, repair = crop_resize(np.zeros((144, 176, 3), np.uint8), 192, 160)
    assert small.shape == (160, 160, 3) and repair == "crop_shrunk_to_144"


# ----------------------------------------------------------------------------- bad videos
def test_unreadable_videos_name_the_file(tmp_path):
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    noise = tmp_path / "noise.avi"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    for path, reason in [(empty, "empty file"), (noise, ""), (tmp_path / "missing.avi", "not found")]:
        with pytest.raises(VideoError) as err:
            decode_clips(path, ClipSpec())
        assert str(path) in str(err.value) and reason in str(err.value)


def test_truncated_video_decodes_what_is_there_or_fails_clearly(tmp_path):
    path = index_video(tmp_path / "t.avi", 120)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    try:
        decoded = decode_clips(path, ClipSpec(frames=8, size=64))
    except VideoError as err:
        assert str(path) in str(err)
    else:  # the frames that survive are sampled over the surviving length, exactly
        got = [read_index(f) for f in decoded.clips[0]]
        assert decoded.n_frames < 120 and got == decoded.frame_indices[0].tolist()


# ----------------------------------------------------------------------------- split lists
def build_manifest(videos_dir: Path, lists: Path, check_files: bool = True, missing: str = "fail"):
    """(videos, membership) of UCF101-format lists and videos in any two folders."""
    m = ucf101.build(lists.parent, None, check_files_exist=check_files, missing=missing, lists=lists,
                     videos=videos_dir)
    return m.videos, m.membership


def test_real_split_lists_counts_groups_and_quirks():
    classes = read_class_index(REAL_LISTS)
    assert len(classes) == 101
    assert classes != sorted(classes), "classInd is case-insensitively sorted, not sorted()"
    assert [i for i, (a, b) in enumerate(zip(classes, sorted(classes))) if a != b] == [34, 35, 46, 47]
    videos, membership = build_manifest(REAL_LISTS.parent / "UCF-101", REAL_LISTS, check_files=False)
    assert len(videos) == 13320
    audit = leakage_audit(videos, membership)
    expected = {"split1": (9537, 3783, range(1, 8)), "split2": (9586, 3734, range(8, 15)),
                "split3": (9624, 3696, range(15, 22))}
    for split, (n_train, n_test, groups) in expected.items():
        a = audit[split]
        assert (a["train_videos"], a["test_videos"]) == (n_train, n_test)
        test = videos.merge(membership[membership[split] == "test"], on="video_id")
        assert sorted(test["group"].unique()) == list(groups) and a["leaked"] == []
        assert a["test_units"] == 101 * 7 and a["train_units"] == 101 * 18
    hsp = videos[videos["path"].str.contains("HandStandPushups")]
    assert len(hsp) > 0 and set(hsp["class_name"]) == {"HandstandPushups"}
    assert sorted(videos["group"].unique()) == list(range(1, 26))
    assert ucf101.count_videos(REAL_LISTS.parent) == 13320  # what the Snakefile plans shards from
    assert check_leakage(audit, allow=False, key=ucf101.LEAKAGE_KEY) == []


def _copy_lists(tmp_path: Path) -> Path:
    lists = tmp_path / "ucfTrainTestlist"
    shutil.copytree(REAL_LISTS, lists)
    return lists


def test_injected_leak_stops_unless_allowed(tmp_path):
    lists = _copy_lists(tmp_path)
    test = (lists / "testlist01.txt").read_bytes().decode().splitlines(keepends=True)
    train = (lists / "trainlist01.txt").read_bytes().decode()
    # two clips of ApplyEyeMakeup g01 move to training; the rest of the group stays in test
    (lists / "testlist01.txt").write_bytes("".join(test[2:]).encode())
    (lists / "trainlist01.txt").write_bytes((train + "".join(f"{m.strip()} 1\r\n" for m in test[:2])).encode())
    videos, membership = build_manifest(tmp_path / "UCF-101", lists, check_files=False)
    audit = leakage_audit(videos, membership)
    assert audit["split1"]["leaked"] == ["ApplyEyeMakeup/g01"]
    with pytest.raises(ManifestError, match="ApplyEyeMakeup/g01"):
        check_leakage(audit, allow=False, key=ucf101.LEAKAGE_KEY)
    assert "LEAKAGE ALLOWED" in check_leakage(audit, allow=True, key=ucf101.LEAKAGE_KEY)[0]


def test_bad_lists_report_every_offending_line(tmp_path):
    lists = _copy_lists(tmp_path)
    train = (lists / "trainlist01.txt").read_bytes().decode().splitlines(keepends=True)
    train += [train[0], train[1], "NoSuchClass/v_NoSuchClass_g01_c01.avi 3\r\n"]
    (lists / "trainlist01.txt").write_bytes("".join(train).encode())
    with pytest.raises(ManifestError) as err:
        build_manifest(tmp_path / "UCF-101", lists, check_files=False)
    text = str(err.value)
    assert text.count("duplicate entry") == 2 and "NoSuchClass" in text and "trainlist01.txt:9538" in text


def test_missing_files_are_all_listed(tiny_dataset, tmp_path):
    videos, lists = tiny_dataset
    copy = tmp_path / "UCF-101"
    shutil.copytree(videos, copy)
    (copy / "Alpha/v_Alpha_g01_c01.avi").unlink()
    (copy / "Beta/v_Beta_g25_c01.avi").unlink()
    with pytest.raises(ManifestError) as err:
        build_manifest(copy, lists)
    assert "v_Alpha_g01_c01.avi" in str(err.value) and "v_Beta_g25_c01.avi" in str(err.value)


# ----------------------------------------------------------------------------- shards
@pytest.fixture(scope="module")
def tiny_shards(tiny_dataset, tmp_path_factory):
    videos_dir, lists = tiny_dataset
    videos, membership = build_manifest(videos_dir, lists)
    spec = ClipSpec(frames=8, crop=192, size=32, sampling="uniform", clips_per_video=2)
    out = tmp_path_factory.mktemp("shards")
    paths = []
    for g in sorted(videos["group"].unique()):
        p = out / f"g{g:02d}.h5"
        write_shard(videos[videos["group"] == g], videos_dir, spec, p)
        paths.append(p)
    return videos, membership, spec, paths, videos_dir


def test_shard_round_trip(tiny_shards):
    videos, _, spec, paths, videos_dir = tiny_shards
    attrs = check_shard(paths[0], spec)
    assert attrs["complete"] and attrs["n_videos"] == 2 and attrs["n_clips"] == 4
    assert verify_content_hash(paths[0])
    with h5py.File(paths[0], "r") as f:
        assert f["clips"].dtype == np.uint8 and f["clips"].chunks == (1, 8, 32, 32, 3)
        first = int(f["video_ids"][0])
        row = videos[videos["video_id"] == first].iloc[0]
        decoded = decode_clips(videos_dir / row.path, spec)
        assert (f["clips"][0:2] == decoded.clips).all()
        assert f["labels"][0] == row.label


def test_split_index_and_dataset(tiny_shards):
    videos, membership, spec, paths, _ = tiny_shards
    index = build_split_index(membership, paths, 1, videos)
    assert len(index) == len(videos) and set(index["subset"]) == {"train", "test"}
    test_groups = set(videos.merge(index[index.subset == "test"], on="video_id")["group"])
    assert test_groups == set(range(1, 8))
    ds = ClipDataset(index, "test", clips="all", raw=True)
    assert len(ds) == 2 * (index["subset"] == "test").sum()
    batch = ds.__getitems__([3, 0, 5])
    assert batch["clips"].shape == (3, 3, 8, 32, 32) and batch["clips"].dtype == torch.uint8
    single = ClipDataset(index, "test", clips="centre")
    x, y = single[0]
    assert x.dtype == torch.float32 and x.shape == (3, 8, 32, 32)
    raw = ClipDataset(index, "test", clips="centre", raw=True)[0][0]
    assert torch.allclose(normalize_clips(raw, single.mean, single.std), x)
    assert single.clip_index.tolist() == [1] * len(single), "centre of 2 clips is clip 1"


def test_batched_read_returns_each_item_in_the_order_asked(tiny_shards):
    """Runs of consecutive rows are read as slices: any order, repeats, and several shards at once
    give exactly what one-row reads give."""
    videos, membership, _, paths, _ = tiny_shards
    ds = ClipDataset(build_split_index(membership, paths, 1, videos), clips="all", raw=True)
    assert len(ds.shards) > 1
    rng = np.random.default_rng(0)
    for indices in ([0], [1, 0], list(range(len(ds)))[::-1], rng.integers(0, len(ds), 12).tolist(),
                    [2, 2, 3, 1, 2]):
        expected = []
        for i in indices:
            with h5py.File(ds.shards[ds.shard_of[i]], "r") as f:
                expected.append(f["clips"][ds.row[i]])
        assert (ds.read(indices) == np.stack(expected)).all(), indices


_WRITER = """
import sys, pandas as pd
from vidrec.data.shards import write_shard
from vidrec.data.video import ClipSpec
videos = pd.read_csv(sys.argv[1])
write_shard(videos, sys.argv[2], ClipSpec(frames=16, size=96, clips_per_video=3), sys.argv[3])
"""


def test_killed_writer_leaves_no_complete_looking_shard(tiny_shards, tmp_path):
    videos, _, _, _, videos_dir = tiny_shards
    many = pd.concat([videos] * 6, ignore_index=True)  # enough work to be killed mid-shard
    many["video_id"] = range(len(many))
    many.to_csv(tmp_path / "videos.csv", index=False)
    out = tmp_path / "g01.h5"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path / "videos.csv"), str(videos_dir), str(out)],
                            cwd=REPO)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".g01.h5.*.tmp")):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "a killed writer must not leave the final shard"
    proc = subprocess.run([sys.executable, "-c", _WRITER, str(tmp_path / "videos.csv"), str(videos_dir), str(out)],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert check_shard(out)["n_videos"] == len(many) and verify_content_hash(out)


def test_skip_mode_lists_bad_videos_and_fail_mode_names_them(tiny_dataset, tmp_path):
    videos_dir, lists = tiny_dataset
    videos, _ = build_manifest(videos_dir, lists)
    group = videos[videos["group"] == 3].copy()
    bad = tmp_path / "UCF-101"
    shutil.copytree(videos_dir, bad)
    (bad / group.iloc[0].path).write_bytes(b"")
    spec = ClipSpec(frames=8, size=32)
    with pytest.raises(VideoError, match=group.iloc[0].path.split("/")[-1]):
        write_shard(group, bad, spec, tmp_path / "fail.h5", on_bad_video="fail")
    assert not (tmp_path / "fail.h5").exists()
    stats = write_shard(group, bad, spec, tmp_path / "skip.h5", on_bad_video="skip")
    assert [s["path"] for s in stats["skipped"]] == [group.iloc[0].path]
    assert check_shard(tmp_path / "skip.h5")["n_videos"] == len(group) - 1
    assert verify_content_hash(tmp_path / "skip.h5")


def test_parallel_decode_matches_serial(tiny_dataset, tmp_path):
    videos_dir, lists = tiny_dataset
    videos, _ = build_manifest(videos_dir, lists)
    spec = ClipSpec(frames=8, size=32)
    a = write_shard(videos[videos.group <= 2], videos_dir, spec, tmp_path / "a.h5", workers=1)
    b = write_shard(videos[videos.group <= 2], videos_dir, spec, tmp_path / "b.h5", workers=2)
    with h5py.File(tmp_path / "a.h5") as fa, h5py.File(tmp_path / "b.h5") as fb:
        assert fa.attrs["content_hash"] == fb.attrs["content_hash"]
    assert a["videos"] == b["videos"] == 4
