"""Dataset formats (vidrec/data/formats/): each format's parser on generated trees in its real layout, the
named errors, the format-independent rehearsal subset, UCF101's names kept in its module, and whole
`snakemake report` runs on an HMDB51-format and a folders-format tree; `snakemake -n report` on a
full-size HMDB51 tree plans every split.
"""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from support import REPO, repo_config, snakemake_argv, snakemake_env, write_avi
from vidrec.plan.config import load_config
from vidrec.data import formats
from vidrec.data.formats import ManifestError, csv, folders, hmdb51, ucf101
from vidrec.plan import rehearsal

# HMDB51's 51 classes, as its split files name them
HMDB51_CLASSES = (
    "brush_hair cartwheel catch chew clap climb climb_stairs dive draw_sword dribble drink eat fall_floor fencing "
    "flic_flac golf handstand hit hug jump kick kick_ball kiss laugh pick pour pullup punch push pushup ride_bike "
    "ride_horse run shake_hands shoot_ball shoot_bow shoot_gun sit situp smile smoke somersault stand "
    "swing_baseball sword sword_exercise talk throw turn walk wave").split()
TAGS = ["u_nm_np1_ba_goo", "f_cm_np1_fr_med", "h_nm_np2_le_bad", "l_cm_np1_ri_goo"]


def hmdb51_name(cls: str, i: int) -> str:
    """A file name as HMDB51 writes them: source title, class, tags, clip number."""
    return f"{['April_09', 'Glory_sword_fight', 'likebeckam'][i % 3]}_{i // 3}_{cls}_{TAGS[i % 4]}_{i % 2}.avi"


def write_hmdb51(root: Path, per_class: dict[str, list[str]], subsets, crlf: bool = False) -> None:
    """Split files `<class>_test_split<N>.txt`, lines `<video>.avi <id> ` (trailing space); subsets(cls, i, split)
    gives 0 (unused), 1 (train) or 2 (test)."""
    folder = root / hmdb51.SPLITS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    end = "\r\n" if crlf else "\n"
    for split in (1, 2, 3):
        for cls, names in per_class.items():
            (folder / f"{cls}_test_split{split}.txt").write_bytes(
                "".join(f"{n} {subsets(cls, i, split)} {end}" for i, n in enumerate(names)).encode())


def _rotating(cls: str, i: int, split: int) -> int:
    """Video i of a class's 6: split s tests videos 2s-2 and 2s-1, leaves video 2s (mod 6) unused, trains on 3."""
    return 2 if i in (2 * split - 2, 2 * split - 1) else 0 if i == (2 * split) % 6 else 1


def frames(n: int, shade: int) -> list[np.ndarray]:
    return [np.full((240, 320, 3), (shade + 9 * i) % 256, np.uint8) for i in range(n)]


@pytest.fixture
def hmdb_tree(tmp_path) -> Path:
    root = tmp_path / "hmdb51"
    per_class = {c: [hmdb51_name(c, i) for i in range(6)] for c in ("ride_bike", "brush_hair", "sword_exercise")}
    for cls, names in per_class.items():
        for n in names:
            (root / cls).mkdir(parents=True, exist_ok=True)
            (root / cls / n).write_bytes(b"")
    write_hmdb51(root, per_class, _rotating, crlf=False)
    return root


def _ds(fmt: str, root: Path, **extra) -> dict:
    cfg = load_config(None, [f"datasets.demo.root={root}", "datasets.demo.synthetic=null",
                             f"datasets.demo.format={fmt}", *[f"datasets.demo.{k}={v}" for k, v in extra.items()]])
    return cfg["datasets"]["demo"]


# ----------------------------------------------------------------------------- HMDB51
def test_hmdb51_split_files_give_the_manifest(hmdb_tree):
    m = hmdb51.build(hmdb_tree, _ds("hmdb51", hmdb_tree))
    assert m.classes == ["brush_hair", "ride_bike", "sword_exercise"]  # sorted: HMDB51 has no class index
    assert len(m.videos) == 18 == hmdb51.count_videos(hmdb_tree)
    first = m.videos.iloc[0]
    assert first["path"] == f"brush_hair/{hmdb51_name('brush_hair', 0)}" and first["label"] == 0
    assert set(m.videos["leak_key"]) == {""} and m.leakage_key is None and "does not apply" in m.leakage_note
    df = m.videos.merge(m.membership, on="video_id")
    for split in (1, 2, 3):
        counts = df[f"split{split}"].value_counts().to_dict()
        assert counts == {"train": 9, "test": 6, "unused": 3}, (split, counts)
    assert "70 training and 30 test" in m.split_rule


def test_hmdb51_reads_crlf_and_names_every_bad_line(hmdb_tree):
    per_class = {c: [hmdb51_name(c, i) for i in range(6)] for c in ("ride_bike", "brush_hair", "sword_exercise")}
    write_hmdb51(hmdb_tree, per_class, _rotating, crlf=True)
    assert len(hmdb51.build(hmdb_tree, _ds("hmdb51", hmdb_tree)).videos) == 18
    split1 = hmdb_tree / hmdb51.SPLITS_FOLDER / "ride_bike_test_split1.txt"
    lines = split1.read_bytes().decode().splitlines(keepends=True)
    lines[1] = re.sub(r" \d ", " 7 ", lines[1])
    lines.append(lines[0])
    split1.write_bytes("".join(lines).encode())
    (hmdb_tree / "brush_hair" / hmdb51_name("brush_hair", 2)).unlink()
    (hmdb_tree / hmdb51.SPLITS_FOLDER / "sword_exercise_test_split3.txt").unlink()
    with pytest.raises(ManifestError) as err:
        hmdb51.build(hmdb_tree, _ds("hmdb51", hmdb_tree))
    assert "class 'sword_exercise' has no sword_exercise_test_split3.txt" in str(err.value)
    (hmdb_tree / hmdb51.SPLITS_FOLDER / "sword_exercise_test_split3.txt").write_text(
        "".join(f"{hmdb51_name('sword_exercise', i)} {_rotating('', i, 3)} \n" for i in range(6)))
    with pytest.raises(ManifestError) as err:
        hmdb51.build(hmdb_tree, _ds("hmdb51", hmdb_tree))
    text = str(err.value)
    assert "ride_bike_test_split1.txt:2: expected '<video>.avi <0|1|2>'" in text
    assert f"ride_bike_test_split1.txt:7: duplicate entry {hmdb51_name('ride_bike', 0)}" in text
    assert f"brush_hair_test_split1.txt:3: {hmdb_tree / 'brush_hair' / hmdb51_name('brush_hair', 2)} is listed but " \
           "missing on disk" in text


# ----------------------------------------------------------------------------- folders
@pytest.fixture
def class_folders(tmp_path) -> Path:
    root = tmp_path / "mine"
    for cls, n in (("cats", 10), ("dogs", 7), ("birds", 4)):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            (root / cls / f"clip{i}.mp4").write_bytes(b"")
    (root / "cats" / "notes.txt").write_text("not a video")
    return root


def test_folders_partition_is_seeded_and_stratified(class_folders):
    ds = _ds("folders", class_folders)
    m = folders.build(class_folders, ds)
    assert m.classes == ["birds", "cats", "dogs"] and len(m.videos) == 21 == folders.count_videos(class_folders, ds)
    df = m.videos.merge(m.membership, on="video_id")
    tested = df[df["split1"] == "test"].groupby("class_name").size().to_dict()
    assert tested == {"birds": 1, "cats": 3, "dogs": 2}  # round(0.3 n), at least one
    again = folders.build(class_folders, ds)
    assert again.membership.equals(m.membership)
    other = folders.build(class_folders, _ds("folders", class_folders, **{"partition.seed": 5}))
    assert not other.membership.equals(m.membership)
    assert "seeded, stratified" in m.split_rule and "0.3" in m.split_rule


def test_folders_with_own_lists_name_file_line_and_problem(class_folders):
    lists = class_folders.parent / "lists"
    lists.mkdir()
    (lists / "train1.txt").write_text("cats/clip0.mp4\ncats/clip1.mp4\ndogs/clip0.mp4\nbirds/clip0.mp4\n")
    (lists / "test1.txt").write_text("cats/clip2.mp4\r\ndogs/clip1.mp4\r\nbirds/clip1.mp4\r\n")
    ds = _ds("folders", class_folders, **{"partition.lists": "../lists"})
    m = folders.build(class_folders, ds)
    assert (m.membership["split1"] == "unused").sum() == 21 - 7
    (lists / "test1.txt").write_text("cats/clip2.mp4\nfish/clip0.mp4\ncats/clip0.mp4\ndogs/clip99.mp4\n")
    with pytest.raises(ManifestError) as err:
        folders.build(class_folders, ds)
    text = str(err.value)
    assert "test1.txt:2: unknown class 'fish'" in text
    assert "test1.txt:3: cats/clip0.mp4 is in both the train and test list of split 1" in text
    assert "test1.txt:4:" in text and "clip99.mp4 is listed but missing on disk" in text


# ----------------------------------------------------------------------------- csv
def test_csv_one_file_or_one_per_subset(tmp_path):
    root = tmp_path / "csvset"
    for cls in ("a", "b"):
        for i in range(3):
            (root / "v" / cls).mkdir(parents=True, exist_ok=True)
            (root / "v" / cls / f"{i}.avi").write_bytes(b"")
    rows = [f"v/{c}/{i}.avi,{c},{'test' if i == 0 else 'unused' if i == 2 else 'train'}" for c in "ab" for i in range(3)]
    (root / "videos.csv").write_text("path,label,split\n" + "\n".join(rows) + "\n")
    m = csv.build(root, _ds("csv", root))
    assert m.classes == ["a", "b"] and len(m.videos) == 6 == csv.count_videos(root)
    assert m.membership["split1"].value_counts().to_dict() == {"train": 2, "test": 2, "unused": 2}
    (root / "videos.csv").unlink()
    (root / "train.csv").write_text("path,label\nv/a/1.avi,a\nv/b/1.avi,b\n")
    (root / "test.csv").write_text("path,label\r\nv/a/0.avi,a\r\nv/b/0.avi,c\r\nv/a/1.avi,a\r\nv/b/9.avi,b\r\n")
    with pytest.raises(ManifestError) as err:
        csv.build(root, _ds("csv", root))
    text = str(err.value)
    assert "test.csv:3: unknown class 'c'" in text
    assert "test.csv:4: v/a/1.avi is in both train (train.csv:2) and test" in text
    assert "test.csv:5:" in text and "9.avi is listed but missing on disk" in text


def test_every_format_counts_what_it_lists(hmdb_tree, class_folders):
    """The Snakefile plans shards from count_videos: it must equal the manifest's size."""
    for fmt, root in (("hmdb51", hmdb_tree), ("folders", class_folders)):
        ds = _ds(fmt, root)
        assert formats.video_count(ds) == len(formats.build_manifest(ds).videos), fmt


# ----------------------------------------------------------------------------- rehearsal, any format
def test_rehearsal_subset_keeps_train_and_test_in_every_split(hmdb_tree):
    m = hmdb51.build(hmdb_tree, _ds("hmdb51", hmdb_tree))
    cfg = load_config(None, ["rehearsal=true", "rehearsal_settings.videos_per_class=3"])
    videos, membership = rehearsal.subset(m.videos, m.membership, cfg)
    assert len(videos) == 9 and set(videos["video_id"]) == set(membership["video_id"])
    df = videos.merge(membership, on="video_id")
    for split in ("split1", "split2", "split3"):
        assert df.groupby("label")[split].agg(lambda s: {"train", "test"} <= set(s)).all(), split


# ----------------------------------------------------------------------------- UCF101's names stay in its module
UCF101_NAMES = re.compile(r"UCF-101|ucfTrainTestlist|trainlist|testlist|classInd|v_<|v_\{|_gGG|_g\{|_g\(|_g\\d")


def test_ucf101_names_live_in_its_format_module_only():
    allowed = {REPO / "vidrec" / "data" / "formats" / "ucf101.py"}
    offenders = [f"{p.relative_to(REPO)}:{n}: {line.strip()}"
                 for p in sorted((REPO / "vidrec").rglob("*.py")) if p not in allowed
                 for n, line in enumerate(p.read_text().splitlines(), 1) if UCF101_NAMES.search(line)]
    assert offenders == [], "\n".join(offenders)
    assert UCF101_NAMES.search((REPO / "vidrec/data/formats/ucf101.py").read_text())  # the pattern matches there


# ----------------------------------------------------------------------------- whole workflow runs
def _tiny_config(root: Path, fmt: str, **ds_extra) -> dict:
    """The repository's config with a `tiny` dataset of format fmt: 8x32x32 whole-frame clips, one narrow model."""
    cfg = repo_config()
    cfg["clips"]["tiny8"] = {"frames": 8, "crop": None, "size": 32, "sampling": "uniform", "clips_per_video": 1}
    cfg["datasets"]["tiny"] = {
        "root": str(root), "format": fmt, "splits": [1], "clip": "tiny8",
        "models": {"p3d63": {"arch": "p3d63", "protocol": "thesis", "args": {"base_width": 8}}},
        "protocol_overrides": {"thesis": {"epochs": 1, "batch_size": 3}}, **ds_extra}  # 9 training videos
    cfg["dataset"] = "tiny"
    cfg["decode"] = {"videos_per_shard": 8}
    cfg["evaluate"] = {"speed_batches": 1, "end_to_end_videos": 0}
    return cfg


def _report(workdir: Path, cfg: dict) -> Path:
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(snakemake_argv(workdir, "report"), cwd=workdir, capture_output=True, text=True,
                          env=snakemake_env(), timeout=600)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return workdir / "results" / "tiny"


@pytest.fixture(scope="module")
def hmdb51_run(tmp_path_factory) -> Path:
    """3 classes x 6 short videos in HMDB51's layout (under the workdir's data/, beside the shards)."""
    work = tmp_path_factory.mktemp("hmdb51_run")
    root = work / "data" / "tiny"
    per_class = {c: [hmdb51_name(c, i) for i in range(6)] for c in ("ride_bike", "brush_hair", "sword_exercise")}
    for k, (cls, names) in enumerate(per_class.items()):
        for i, n in enumerate(names):
            write_avi(root / cls / n, frames(12, 60 * k + 5 * i))
    write_hmdb51(root, per_class, _rotating)
    return _report(work, _tiny_config(root, "hmdb51"))


@pytest.fixture(scope="module")
def folders_run(tmp_path_factory) -> Path:
    """3 class folders of 5 short videos, a seeded partition."""
    work = tmp_path_factory.mktemp("folders_run")
    root = work / "videos"
    for k, cls in enumerate(("left", "right", "still")):
        for i in range(5):
            write_avi(root / cls / f"{cls}{i}.avi", frames(12, 60 * k + 5 * i))
    return _report(work, _tiny_config(root, "folders", partition={"test_fraction": 0.4, "seed": 1}))


@pytest.mark.slow
def test_hmdb51_tree_runs_to_a_complete_report(hmdb51_run):
    res = hmdb51_run
    for name in ("index.html", "accuracy.csv", "data_audit.csv", "shards.csv", "claims.csv"):
        assert (res / "report" / name).exists(), name
    assert sorted(p.name for p in (res.parent.parent / "data/tiny/shards/tiny8").glob("b*.h5")) == [
        "b000.h5", "b001.h5", "b002.h5"]  # 18 videos in buckets of 8
    index = pd.read_csv(res / "tiny8/split1/index.csv")
    assert index["subset"].value_counts().to_dict() == {"train": 9, "test": 6, "unused": 3}
    ev = json.loads((res / "split1/p3d63/seed0/evaluation.json").read_text())
    assert ev["n_videos"] == 6
    html = (res / "report" / "index.html").read_text()
    assert "The leakage audit does not apply" in html and "testTrainMulti_7030_splits" in html
    assert "No published claim for this dataset" in html
    assert pd.read_csv(res / "report" / "claims.csv").empty
    audit = pd.read_csv(res / "report" / "data_audit.csv")
    assert set(audit["verdict"]) == {"not audited: the format has no leakage key"}


@pytest.mark.slow
def test_folders_tree_runs_to_a_complete_report(folders_run):
    res = folders_run
    assert (res / "report" / "index.html").exists() and (res / "report" / "accuracy.csv").exists()
    videos = pd.read_csv(res / "manifest/videos.csv")
    splits = pd.read_csv(res / "manifest/splits.csv")
    assert len(videos) == 15 and splits["split1"].value_counts().to_dict() == {"train": 9, "test": 6}
    html = (res / "report" / "index.html").read_text()
    assert "seeded, stratified partition" in html and "The leakage audit does not apply" in html
    ev = json.loads((res / "split1/p3d63/seed0/evaluation.json").read_text())
    assert ev["n_videos"] == 6


@pytest.mark.slow
def test_full_size_hmdb51_dry_run_plans_every_split(tmp_path):
    """51 classes x 3 split files, 6,766 names (empty files: a dry run decodes nothing), the config's
    hmdb51 entry: one shard per bucket and clip spec, every split of every run."""
    root = tmp_path / "hmdb51"
    sizes = [133] * 34 + [132] * 17  # 6,766 clips over the 51 classes
    per_class = {c: [hmdb51_name(c, i) for i in range(n)] for c, n in zip(HMDB51_CLASSES, sizes)}
    for cls, names in per_class.items():
        (root / cls).mkdir(parents=True)
        for n in names:
            (root / cls / n).touch()
    # per class and split: 70 train, 30 test, the rest unused, rotating with the split
    write_hmdb51(root, per_class, lambda cls, i, s: 1 if (i + 33 * s) % len(per_class[cls]) < 70 else
                 2 if (i + 33 * s) % len(per_class[cls]) < 100 else 0)
    assert hmdb51.count_videos(root) == 6766
    cfg = repo_config()
    cfg["dataset"] = "hmdb51"
    cfg["datasets"]["hmdb51"]["root"] = str(root)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run(snakemake_argv(tmp_path, "-n", "report"), cwd=tmp_path, capture_output=True, text=True,
                          env=snakemake_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", proc.stdout, re.M))
    runs = cfg["datasets"]["hmdb51"]["models"]
    assert jobs == {"manifest": "1", "decode": str(2 * 7), "split_index": str(2 * 3), "train": str(3 * len(runs)),
                    "evaluate": str(3 * len(runs)), "render_report": "1", "report": "1", "total": str(
                        1 + 14 + 6 + 6 * len(runs) + 2)}, proc.stdout[-2000:]
    for split in (1, 2, 3):
        for run in runs:
            assert f"results/hmdb51/split{split}/{run}/seed0/model.pt" in proc.stdout, (split, run)
