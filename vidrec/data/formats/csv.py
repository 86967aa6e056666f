"""A researcher's own videos listed in CSV: `<root>/videos.csv` (columns path, label, split) or one
file per subset, `<root>/train.csv` and `<root>/test.csv` (columns path, label).

path is relative to root; label is a class name; split is train, test or unused. An optional
`<root>/classes.txt` (one class name a line) fixes the classes and their label order; without it the
classes are the training rows' labels, sorted, and any other label is an unknown class. One split.
Problems name the file and line (line 1 is the header). No leakage key: the audit does not apply.
"""
from __future__ import annotations

import csv as _csv
from pathlib import Path

from vidrec.data.formats.base import Manifest, Problems, assemble, check_files, read_lines

ONE_FILE = "videos.csv"
PER_SUBSET = {"train": "train.csv", "test": "test.csv"}
CLASSES_FILE = "classes.txt"
SUBSETS = ("train", "test", "unused")
LEAKAGE_NOTE = ("the leakage audit does not apply to CSV lists: they say nothing of which videos share a "
                "source, so keep clips of one source on one side of the split yourself")


def videos_dir(root: Path, ds: dict | None = None) -> Path:
    return Path(root)


def _files(root: Path) -> list[tuple[Path, str | None]]:
    """(file, its subset or None when a split column gives it) of the lists present."""
    root = Path(root)
    if (root / ONE_FILE).is_file():
        return [(root / ONE_FILE, None)]
    return [(root / name, subset) for subset, name in PER_SUBSET.items() if (root / name).is_file()]


def inputs(root: Path, ds: dict | None = None) -> list[Path]:
    """The CSV files (and classes.txt when present)."""
    extra = [Path(root) / CLASSES_FILE] if (Path(root) / CLASSES_FILE).is_file() else []
    return [f for f, _ in _files(root)] + extra or [Path(root)]


def missing_inputs(root: Path, ds: dict | None = None) -> list[str]:
    if not Path(root).is_dir() or not _files(root):
        return [f"{root}: needs {ONE_FILE} (path,label,split) or {' and '.join(PER_SUBSET.values())} (path,label)"]
    return []


def _rows(path: Path, columns: tuple[str, ...], problems: Problems) -> list[tuple[str, dict]]:
    with open(path, newline="") as f:
        reader = _csv.DictReader(f)
        header = [c.strip() for c in reader.fieldnames or []]
        lacking = [c for c in columns if c not in header]
        if lacking:
            problems.add(f"{path.name}:1", f"header {header} lacks column(s) {lacking}; expected {', '.join(columns)}")
            return []
        reader.fieldnames = header
        return [(f"{path.name}:{reader.line_num}", {k: (v or "").strip() for k, v in row.items() if k})
                for row in reader if any((v or "").strip() for v in row.values() if isinstance(v, str))]


def count_videos(root: Path, ds: dict | None = None) -> int:
    paths = set()
    for path, subset in _files(root):
        with open(path, newline="") as f:
            paths.update((row.get("path") or "").strip() for row in _csv.DictReader(f))
    paths.discard("")
    return len(paths)


def build(root: Path, ds: dict | None = None, *, check_files_exist: bool = True, missing: str = "fail") -> Manifest:
    root = Path(root)
    problems = Problems()
    files = _files(root)
    if not files:
        problems.add(str(root), f"no {ONE_FILE} and no {PER_SUBSET['train']}/{PER_SUBSET['test']}")
        problems.raise_if_any("no CSV list")
    rows = []
    for path, subset in files:
        for where, row in _rows(path, ("path", "label") + (("split",) if subset is None else ()), problems):
            rows.append((where, row["path"].replace("\\", "/"), row["label"], subset or row["split"].lower()))
    if (root / CLASSES_FILE).is_file():
        classes = [line for _, line in read_lines(root / CLASSES_FILE)]
        origin = f"{CLASSES_FILE}"
    else:
        classes = sorted({label for _, _, label, subset in rows if subset == "train"})
        origin = "the training rows' labels"
    label_of = {c: i for i, c in enumerate(classes)}
    records: dict[str, dict] = {}
    membership: dict[str, dict[str, str]] = {}
    where_of: dict[str, str] = {}
    for where, rel, label, subset in rows:
        if subset not in SUBSETS:
            problems.add(where, f"split '{subset}' is not one of {', '.join(SUBSETS)}")
            continue
        if label not in label_of:
            problems.add(where, f"unknown class '{label}' (not in {origin}); correct the label or add the class")
            continue
        if rel in records:
            if records[rel]["class_name"] != label:
                problems.add(where, f"{rel} is labelled '{label}' here and '{records[rel]['class_name']}' at "
                                    f"{where_of[rel]}")
            elif membership[rel]["split1"] != subset:
                problems.add(where, f"{rel} is in both {membership[rel]['split1']} ({where_of[rel]}) and {subset}; "
                                    "remove it from one")
            else:
                problems.add(where, f"duplicate entry {rel} (first at {where_of[rel]}); delete one of the rows")
            continue
        records[rel] = {"path": rel, "class_name": label, "label": label_of[label], "leak_key": ""}
        membership[rel] = {"split1": subset}
        where_of[rel] = where
    if (ds or {}).get("splits") and tuple(ds["splits"]) != (1,):
        problems.add("config", f"a CSV list makes split 1 only, the dataset asks for splits {list(ds['splits'])}")
    if check_files_exist and missing != "skip":
        check_files(videos_dir(root), records, problems, where_of)
    problems.raise_if_any(f"the CSV lists in {root} do not match the videos")
    rule = (f"the user's CSV list {files[0][0].name} (split column)" if files[0][1] is None else
            f"the user's CSV lists {', '.join(p.name for p, _ in files)} (one file per subset)")
    return assemble(records, membership, (1,), classes, problems, split_rule=rule, leakage_key=None,
                    leakage_note=LEAKAGE_NOTE)
