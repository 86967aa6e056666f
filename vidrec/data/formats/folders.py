"""A researcher's own videos, one folder per class: `<root>/<class>/<video>` (any common video extension).

Classes are the folders holding videos, labelled in sorted order. The splits are either a seeded,
stratified partition (`datasets.<name>.partition`: each class's videos shuffled with the seed, a
`test_fraction` of them, at least one, tested; one split) or the user's own lists
(`partition.lists`: a folder, relative to root, of train<N>.txt and test<N>.txt for each configured
split N, one path `<class>/<video>` a line; a video in neither list of a split is unused there).
No leakage key: the folders say nothing of where a video came from, so the audit does not apply.
"""
from __future__ import annotations

import random
from pathlib import Path

from vidrec.data.formats.base import VIDEO_EXTENSIONS, Manifest, Problems, assemble, check_files, read_lines

LEAKAGE_NOTE = ("the leakage audit does not apply to videos in class folders: nothing tells which videos "
                "share a source, so keep clips of one source on one side of the split yourself")


def videos_dir(root: Path, ds: dict | None = None) -> Path:
    return Path(root)


def _lists(root: Path, ds: dict | None) -> Path | None:
    lists = ((ds or {}).get("partition") or {}).get("lists")
    return Path(root) / lists if lists else None


def inputs(root: Path, ds: dict | None = None) -> list[Path]:
    """The class folders (a video added or removed changes its folder) and the lists folder, if any."""
    lists = _lists(root, ds)
    classes = [Path(root) / c for c in scan(root, ds)] if Path(root).is_dir() else [Path(root)]
    return classes + ([lists] if lists else [])


def missing_inputs(root: Path, ds: dict | None = None) -> list[str]:
    lists = _lists(root, ds)
    return [f"{p} not found; put one folder of videos per class there (and your split lists, if named) "
            "or point root at them" for p in [Path(root)] + ([lists] if lists else []) if not p.is_dir()]


def scan(root: Path, ds: dict | None = None) -> dict[str, list[str]]:
    """class -> sorted paths `<class>/<video>` of the videos in its folder (folders without videos left out)."""
    root, lists = Path(root), _lists(root, ds)
    out = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if lists is not None and folder.resolve() == lists.resolve():
            continue
        files = sorted(f.name for f in folder.iterdir() if f.suffix.lower() in VIDEO_EXTENSIONS and f.is_file())
        if files:
            out[folder.name] = [f"{folder.name}/{f}" for f in files]
    return out


def count_videos(root: Path, ds: dict | None = None) -> int:
    return sum(len(v) for v in scan(root, ds).values()) if Path(root).is_dir() else 0


def build(root: Path, ds: dict | None = None, *, check_files_exist: bool = True, missing: str = "fail") -> Manifest:
    ds = ds or {}
    root = Path(root)
    problems = Problems()
    by_class = scan(root, ds)
    if not by_class:
        problems.add(str(root), "no class folder with videos (one folder per class, videos inside)")
        problems.raise_if_any("no videos")
    classes = sorted(by_class)
    label = {c: i for i, c in enumerate(classes)}
    records = {p: {"path": p, "class_name": c, "label": label[c], "leak_key": ""} for c, ps in by_class.items() for p in ps}
    splits = tuple(ds["splits"])
    lists = _lists(root, ds)
    if lists is None:
        membership, rule = _partition(by_class, splits, ds["partition"], problems)
    else:
        membership, rule = _read_lists(root, lists, records, splits, problems)
    problems.raise_if_any(f"the splits of {root} cannot be made")
    return assemble(records, membership, splits, classes, problems, split_rule=rule, leakage_key=None,
                    leakage_note=LEAKAGE_NOTE)


def _partition(by_class: dict[str, list[str]], splits: tuple[int, ...], settings: dict,
               problems: Problems) -> tuple[dict[str, dict[str, str]], str]:
    """Seeded and stratified: per class, a test_fraction of its videos (at least 1, never all) tested."""
    fraction, seed = settings["test_fraction"], settings["seed"]
    if splits != (1,):
        problems.add("config", f"a seeded partition makes split 1 only, the dataset asks for splits {list(splits)}; "
                               "set splits: [1] or give your own lists (partition.lists)")
    membership: dict[str, dict[str, str]] = {}
    for cls, paths in by_class.items():
        if len(paths) < 2:
            problems.add(cls, f"{len(paths)} video: a class needs at least 2 (one to train, one to test)")
            continue
        shuffled = sorted(paths)
        random.Random(f"{seed}/{cls}").shuffle(shuffled)
        n_test = min(len(paths) - 1, max(1, round(len(paths) * fraction)))
        for i, p in enumerate(shuffled):
            membership[p] = {"split1": "test" if i < n_test else "train"}
    rule = (f"a seeded, stratified partition of each class's videos: {fraction:g} of them (at least one) "
            f"tested, the rest trained on (partition.seed {seed}; one split)")
    return membership, rule


def _read_lists(root: Path, lists: Path, records: dict[str, dict], splits: tuple[int, ...],
                problems: Problems) -> tuple[dict[str, dict[str, str]], str]:
    """The user's train<N>.txt / test<N>.txt; a video in neither list of a split is unused there."""
    membership: dict[str, dict[str, str]] = {p: {} for p in records}
    classes = {r["class_name"] for r in records.values()}
    for s in splits:
        for subset in ("train", "test"):
            path = lists / f"{subset}{s}.txt"
            if not path.is_file():
                problems.add(str(path), f"not found: split {s} needs train{s}.txt and test{s}.txt in {lists}")
                continue
            for n, line in read_lines(path):
                where, rel = f"{path.name}:{n}", line.replace("\\", "/")
                cls = rel.partition("/")[0]
                if cls not in classes:
                    problems.add(where, f"unknown class '{cls}' ({rel}): not a class folder with videos under {root}")
                elif rel not in records:
                    problems.add(where, f"{root / rel} is listed but missing on disk; restore it or remove the line")
                elif membership[rel].get(f"split{s}"):
                    other = membership[rel][f"split{s}"]
                    problems.add(where, f"{rel} is in both the train and test list of split {s}; remove it from one"
                                 if other != subset else f"duplicate entry {rel}; delete one of the lines")
                else:
                    membership[rel][f"split{s}"] = subset
    for m in membership.values():
        for s in splits:
            m.setdefault(f"split{s}", "unused")
    return membership, f"the user's split lists in {lists} (train<N>.txt, test<N>.txt; videos in neither unused)"
