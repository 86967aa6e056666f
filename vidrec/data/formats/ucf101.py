"""UCF101 as published: `<root>/UCF-101/<Class>/v_<Class>_gGG_cCC.avi` and `<root>/ucfTrainTestlist/`.

Every fact of UCF101's layout lives here (tests/test_formats.py forbids them elsewhere in vidrec/):
the folder names; classInd.txt (`<id> <Class>`, ids 1..101) and trainlist0N.txt (`<path> <id>`) /
testlist0N.txt (`<path>`), CRLF; the name pattern; three splits; the group rule (each group is clips
cut from one long video; split N tests groups 7N-6..7N, groups 22-25 always train), which makes a
video's class and group its leakage key. The demo set (`vidrec synth`) is written in this layout.

Labels come from classInd.txt, never from sorting folder names (UCF101's class index is sorted
case-insensitively, so `sorted()` swaps ids 35/36 and 47/48). File names spell `v_HandStandPushups_*`
inside the folder `HandstandPushups`, so class names compare case-insensitively.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vidrec.data.formats.base import (Manifest, ManifestError, Problems, assemble, check_files,
                                      read_lines)

VIDEOS_FOLDER = "UCF-101"
LISTS_FOLDER = "ucfTrainTestlist"
CLASS_INDEX = "classInd.txt"
NAME_RE = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)\.avi$", re.IGNORECASE)
SPLITS = (1, 2, 3)
# the official rule: test groups per split; groups 22-25 are always train
TEST_GROUPS = {1: range(1, 8), 2: range(8, 15), 3: range(15, 22)}
SPLIT_RULE = ("UCF101's three official splits (ucfTrainTestlist): split N tests groups 7N-6..7N of every "
              "class, groups 22-25 always train")
LEAKAGE_KEY = "class and group (gGG of v_<Class>_gGG_cCC.avi: clips cut from one long video)"


def list_name(subset: str, split: int) -> str:
    return f"{subset}list{split:02d}.txt"


def videos_dir(root: Path, ds: dict | None = None) -> Path:
    """The folder the manifest's video paths are relative to."""
    return Path(root) / VIDEOS_FOLDER


def lists_dir(root: Path) -> Path:
    return Path(root) / LISTS_FOLDER


def inputs(root: Path, ds: dict | None = None) -> list[Path]:
    """What the manifest depends on: the video folder and the lists folder."""
    return [videos_dir(root), lists_dir(root)]


def missing_inputs(root: Path, ds: dict | None = None) -> list[str]:
    """One line per missing folder, naming what belongs there."""
    return [f"{p} not found; put UCF-101/ and ucfTrainTestlist/ under {root} or point root at them"
            for p in inputs(root) if not p.is_dir()]


def count_videos(root: Path, ds: dict | None = None) -> int:
    """Distinct video names in the split lists (cheap: no file is opened but the lists)."""
    names: set[str] = set()
    for s in SPLITS:
        for subset in ("train", "test"):
            path = lists_dir(root) / list_name(subset, s)
            if path.exists():
                names.update(line.split()[0] for _, line in read_lines(path))
    return len(names)


def read_class_index(lists: Path) -> list[str]:
    """Class names in label order (index 0 = label 1 of classInd.txt)."""
    path = Path(lists) / CLASS_INDEX
    if not path.exists():
        raise ManifestError(f"{path} not found: the split lists folder must hold {CLASS_INDEX} "
                            "(for the demo, run `vidrec synth`; for UCF101, unpack ucfTrainTestlist)")
    names: dict[int, str] = {}
    problems = Problems()
    for n, line in read_lines(path):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            problems.add(f"{path.name}:{n}", f"expected '<id> <ClassName>', got {line!r}")
            continue
        idx = int(parts[0])
        if idx in names:
            problems.add(f"{path.name}:{n}", f"class id {idx} listed twice")
        names[idx] = parts[1]
    if names and sorted(names) != list(range(1, len(names) + 1)):
        problems.add(path.name, "class ids must run 1..N without gaps")
    problems.raise_if_any(f"malformed {path}")
    return [names[i] for i in sorted(names)]


@dataclass
class Entry:
    path: str
    label: int | None
    source: str  # "trainlist01.txt:12"


def read_split_lists(lists: Path, splits: tuple[int, ...] = SPLITS) -> dict[int, dict[str, list[Entry]]]:
    lists = Path(lists)
    out: dict[int, dict[str, list[Entry]]] = {}
    for s in splits:
        train, test = lists / list_name("train", s), lists / list_name("test", s)
        for p in (train, test):
            if not p.exists():
                raise ManifestError(f"{p} not found: split {s} needs {train.name} and {test.name} in {lists}")
        out[s] = {}
        for subset, path in (("train", train), ("test", test)):
            entries = []
            for n, line in read_lines(path):
                parts = line.split()
                label = int(parts[1]) if subset == "train" and len(parts) > 1 and parts[1].isdigit() else None
                entries.append(Entry(parts[0], label, f"{path.name}:{n}"))
            out[s][subset] = entries
    return out


def build(root: Path, ds: dict | None = None, *, check_files_exist: bool = True, missing: str = "fail",
          lists: Path | None = None, videos: Path | None = None) -> Manifest:
    """The manifest of a UCF101-layout root (lists/videos: other folders, for tests of the lists alone).

    missing: "fail" lists every listed video that is not on disk as a problem; "skip"
    (decode.on_bad_video: skip) keeps them, and the decode stage lists them as skipped.
    """
    lists = Path(lists) if lists else lists_dir(root)
    videos = Path(videos) if videos else videos_dir(root)
    classes = read_class_index(lists)
    by_lower = {c.lower(): i for i, c in enumerate(classes)}
    split_lists = read_split_lists(lists)
    problems = Problems()
    records: dict[str, dict] = {}
    membership: dict[str, dict[str, str]] = {}
    where: dict[str, str] = {}
    for s, subsets in split_lists.items():
        for subset, entries in subsets.items():
            seen: dict[str, str] = {}
            for e in entries:
                if e.path in seen:
                    problems.add(e.source, f"duplicate entry {e.path} (first at {seen[e.path]}); "
                                           "delete one of the lines")
                    continue
                seen[e.path] = e.source
                folder, _, fname = e.path.replace("\\", "/").rpartition("/")
                m = NAME_RE.match(fname)
                if not m or not folder:
                    problems.add(e.source, f"{e.path!r} is not '<Class>/v_<Class>_gGG_cCC.avi'; correct the line")
                    continue
                label = by_lower.get(folder.lower())
                if label is None:
                    problems.add(e.source, f"class folder '{folder}' is not in {CLASS_INDEX}; add '<id> {folder}' "
                                           f"to {CLASS_INDEX} or remove the line")
                    continue
                if m["cls"].lower() != folder.lower():
                    problems.add(e.source, f"file name class '{m['cls']}' does not match folder '{folder}'; "
                                           "correct the line")
                    continue
                if e.label is not None and e.label - 1 != label:
                    problems.add(e.source, f"label {e.label} but {CLASS_INDEX} gives {label + 1} for {folder}; "
                                           "correct the label")
                    continue
                group = int(m["group"])
                records.setdefault(e.path, {"path": e.path, "class_name": classes[label], "label": label,
                                            "leak_key": f"{classes[label]}/g{group:02d}", "group": group,
                                            "clip": int(m["clip"])})
                where.setdefault(e.path, e.source)
                if membership.setdefault(e.path, {}).get(f"split{s}"):
                    problems.add(e.source, f"{e.path} is in both the train and test list of split {s}; "
                                           "remove it from one")
                membership[e.path][f"split{s}"] = subset
    if check_files_exist and missing != "skip":
        check_files(videos, records, problems, where)
    problems.raise_if_any(f"the split lists in {lists} do not match the videos in {videos}")
    return assemble(records, membership, SPLITS, classes, problems, split_rule=SPLIT_RULE, leakage_key=LEAKAGE_KEY)


# ----------------------------------------------------------------------------- writing (vidrec synth)
def video_relpath(name: str, group: int, clip: int) -> str:
    """`<Class>/v_<Class>_gGG_cCC.avi`: a video's path under the video folder."""
    return f"{name}/v_{name}_g{group:02d}_c{clip:02d}.avi"


def is_video_name(fname: str) -> bool:
    return bool(NAME_RE.match(fname))


def list_files(names: list[str], groups: int, clips_per_group: int) -> dict[str, str]:
    """Contents of the class index and the train/test lists of every split (CRLF, official group rule)
    for `clips_per_group` clips of groups 1..groups of each class (names in label order)."""
    crlf = "\r\n"
    out = {CLASS_INDEX: "".join(f"{i} {n}{crlf}" for i, n in enumerate(names, 1))}
    for split, test_groups in TEST_GROUPS.items():
        train, test = [], []
        for label, name in enumerate(names, 1):
            for g in range(1, groups + 1):
                for c in range(1, clips_per_group + 1):
                    rel = video_relpath(name, g, c)
                    if g in test_groups:
                        test.append(f"{rel}{crlf}")
                    else:
                        train.append(f"{rel} {label}{crlf}")
        out[list_name("train", split)] = "".join(train)
        out[list_name("test", split)] = "".join(test)
    return out
