"""HMDB51 as published: `<root>/<class>/<video>.avi` and `<root>/testTrainMulti_7030_splits/`.

The split files are `<class>_test_split<N>.txt`, N = 1, 2, 3, one line per video of the class:
`<video>.avi <id>` with 1 = train, 2 = test, 0 = unused (70 train and 30 test videos per class and split,
the other clips unused), lines ending in a space. The classes are the split files' class names, labelled
in sorted order (HMDB51 ships no class index). Names look like
`April_09_brush_hair_u_nm_np1_ba_goo_0.avi`: the source video's title, the class, then tags (visible
body part, camera motion, number of people, viewpoint, quality) and the clip number.

Leakage: HMDB51's splits keep the clips of one source video on one side, but a name carries the source's
title only, free text that several sources can share (a film cut into scenes of many classes) and one
source can spell differently; there is no group number to key on. No reliable key comes from the
name, so the leakage audit does not apply to this format (the report says so).
"""
from __future__ import annotations

import re
from pathlib import Path

from vidrec.data.formats.base import Manifest, Problems, assemble, check_files, read_lines

SPLITS_FOLDER = "testTrainMulti_7030_splits"
SPLIT_FILE_RE = re.compile(r"^(?P<cls>.+)_test_split(?P<split>\d+)\.txt$")
SPLITS = (1, 2, 3)
CLASSES = 51  # as published (a tree with fewer classes runs too: the report counts what it read)
SUBSET_OF_ID = {"0": "unused", "1": "train", "2": "test"}
SPLIT_RULE = ("HMDB51's three official splits (testTrainMulti_7030_splits): per class and split 70 training "
              "and 30 test videos, the rest unused")
LEAKAGE_NOTE = ("the leakage audit does not apply to HMDB51: its file names carry the source video's title "
                "only (free text, shared by several sources), no reliable key of the source video")


def videos_dir(root: Path, ds: dict | None = None) -> Path:
    return Path(root)


def splits_dir(root: Path) -> Path:
    return Path(root) / SPLITS_FOLDER


def inputs(root: Path, ds: dict | None = None) -> list[Path]:
    """The split files' folder (not root: the shards may live under it)."""
    return [splits_dir(root)]


def missing_inputs(root: Path, ds: dict | None = None) -> list[str]:
    if not splits_dir(root).is_dir():
        return [f"{splits_dir(root)} not found; unpack HMDB51's split files ({SPLITS_FOLDER}/) and its "
                f"class folders under {root}, or point root at them"]
    return []


def split_files(root: Path) -> dict[int, dict[str, Path]]:
    """split -> class -> its split file."""
    out: dict[int, dict[str, Path]] = {}
    for path in sorted(splits_dir(root).glob("*_test_split*.txt")):
        m = SPLIT_FILE_RE.match(path.name)
        if m:
            out.setdefault(int(m["split"]), {})[m["cls"]] = path
    return out


def count_videos(root: Path, ds: dict | None = None) -> int:
    """Distinct (class, video) names in the split files (cheap: only the split files are read)."""
    names = set()
    for by_class in split_files(root).values():
        for cls, path in by_class.items():
            names.update((cls, line.split()[0]) for _, line in read_lines(path))
    return len(names)


def build(root: Path, ds: dict | None = None, *, check_files_exist: bool = True, missing: str = "fail") -> Manifest:
    root = Path(root)
    problems = Problems()
    files = split_files(root)
    if not files:
        problems.add(str(splits_dir(root)), "no <class>_test_split<N>.txt file; unpack HMDB51's split files here")
        problems.raise_if_any("no HMDB51 split files")
    for s in SPLITS:
        if s not in files:
            problems.add(str(splits_dir(root)), f"no <class>_test_split{s}.txt file: split {s} is missing")
    classes = sorted(set().union(*(set(by_class) for by_class in files.values())))
    for s, by_class in sorted(files.items()):
        if s not in SPLITS:
            problems.add(str(splits_dir(root)), f"split {s} is not one of HMDB51's {list(SPLITS)}; remove its files")
            continue
        for cls in classes:
            if cls not in by_class:
                problems.add(str(splits_dir(root)), f"class '{cls}' has no {cls}_test_split{s}.txt")
    problems.raise_if_any(f"the split files in {splits_dir(root)} are incomplete")
    label = {c: i for i, c in enumerate(classes)}
    records: dict[str, dict] = {}
    membership: dict[str, dict[str, str]] = {}
    where: dict[str, str] = {}
    owner: dict[str, str] = {}  # file name -> the split file of the class it was first listed under
    for s in SPLITS:
        for cls in classes:
            path = files[s][cls]
            seen: dict[str, str] = {}
            for n, line in read_lines(path):
                source = f"{path.name}:{n}"
                parts = line.split()
                if len(parts) != 2 or parts[1] not in SUBSET_OF_ID or not parts[0].lower().endswith(".avi"):
                    problems.add(source, f"expected '<video>.avi <0|1|2>' (0 unused, 1 train, 2 test), got {line!r}")
                    continue
                name = parts[0]
                if name in seen:
                    problems.add(source, f"duplicate entry {name} (first at {seen[name]}); delete one of the lines")
                    continue
                seen[name] = source
                if owner.setdefault(name, cls) != cls:
                    problems.add(source, f"{name} is also listed under class '{owner[name]}'; a video has one class")
                    continue
                rel = f"{cls}/{name}"
                records.setdefault(rel, {"path": rel, "class_name": cls, "label": label[cls], "leak_key": ""})
                where.setdefault(rel, source)
                membership.setdefault(rel, {})[f"split{s}"] = SUBSET_OF_ID[parts[1]]
    if check_files_exist and missing != "skip":
        check_files(videos_dir(root), records, problems, where)
    problems.raise_if_any(f"the split files in {splits_dir(root)} do not match the videos in {root}")
    return assemble(records, membership, SPLITS, classes, problems, split_rule=SPLIT_RULE, leakage_key=None,
                    leakage_note=LEAKAGE_NOTE)
