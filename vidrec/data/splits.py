"""Ingest of the official UCF101 split lists: manifest tables and the leakage audit.

Labels come from classInd.txt, never from sorting folder names (UCF101's classInd is sorted
case-insensitively, so `sorted()` swaps ids 35/36 and 47/48). Files are CRLF; file names spell
`v_HandStandPushups_*` inside the folder `HandstandPushups`, so class names compare
case-insensitively. Every problem is collected and reported at once, with file and line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vidrec.errors import VidrecError

NAME_RE = re.compile(r"^v_(?P<cls>.+)_g(?P<group>\d+)_c(?P<clip>\d+)\.avi$", re.IGNORECASE)
SPLITS = (1, 2, 3)


class ManifestError(VidrecError, ValueError):
    """The split lists or the video folder disagree; the message lists every offending line."""


@dataclass
class Entry:
    path: str
    label: int | None
    source: str  # "trainlist01.txt:12"


@dataclass
class Problems:
    lines: list[str] = field(default_factory=list)

    def add(self, where: str, what: str) -> None:
        self.lines.append(f"{where}: {what}")

    def raise_if_any(self, title: str) -> None:
        if self.lines:
            shown = self.lines[:200]
            more = f"\n  ... and {len(self.lines) - 200} more" if len(self.lines) > 200 else ""
            raise ManifestError(f"{title} ({len(self.lines)} problems):\n  " + "\n  ".join(shown) + more)


def read_class_index(lists_dir: Path) -> list[str]:
    """Class names in label order (index 0 = label 1 of classInd.txt)."""
    path = Path(lists_dir) / "classInd.txt"
    if not path.exists():
        raise ManifestError(f"{path} not found: the split lists folder must hold classInd.txt "
                            "(for the demo, run `vidrec synth`; for UCF101, unpack ucfTrainTestlist)")
    names: dict[int, str] = {}
    problems = Problems()
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not parts[0].isdigit():
            problems.add(f"{path.name}:{n}", f"expected '<id> <ClassName>', got {line.strip()!r}")
            continue
        idx = int(parts[0])
        if idx in names:
            problems.add(f"{path.name}:{n}", f"class id {idx} listed twice")
        names[idx] = parts[1]
    if names and sorted(names) != list(range(1, len(names) + 1)):
        problems.add(path.name, "class ids must run 1..N without gaps")
    problems.raise_if_any(f"malformed {path}")
    return [names[i] for i in sorted(names)]


def _read_list(path: Path, with_labels: bool) -> list[Entry]:
    entries = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        label = int(parts[1]) if with_labels and len(parts) > 1 and parts[1].isdigit() else None
        entries.append(Entry(parts[0], label, f"{path.name}:{n}"))
    return entries


def read_split_lists(lists_dir: Path, splits: tuple[int, ...] = SPLITS) -> dict[int, dict[str, list[Entry]]]:
    lists_dir = Path(lists_dir)
    out: dict[int, dict[str, list[Entry]]] = {}
    for s in splits:
        train, test = lists_dir / f"trainlist{s:02d}.txt", lists_dir / f"testlist{s:02d}.txt"
        for p in (train, test):
            if not p.exists():
                raise ManifestError(f"{p} not found: split {s} needs trainlist{s:02d}.txt and "
                                    f"testlist{s:02d}.txt in {lists_dir}")
        out[s] = {"train": _read_list(train, True), "test": _read_list(test, False)}
    return out


def build_manifest(videos_dir: Path, lists_dir: Path, splits: tuple[int, ...] = SPLITS,
                   check_files: bool = True, missing: str = "fail") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (videos, split_membership); raise ManifestError listing every bad line.

    videos: video_id, path (relative to videos_dir), class_name, label (0-based), group, clip.
    split_membership: video_id plus one column per split ("train" / "test").
    missing: "fail" lists every listed video that is not on disk as a problem; "skip"
    (decode.on_bad_video: skip) keeps them, and the decode stage lists them as skipped
    ("file not found") in gGG.json and the report.
    """
    classes = read_class_index(lists_dir)
    by_lower = {c.lower(): i for i, c in enumerate(classes)}
    lists = read_split_lists(lists_dir, splits)
    problems = Problems()
    videos: dict[str, dict] = {}
    membership: dict[str, dict[str, str]] = {}
    for s, subsets in lists.items():
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
                    problems.add(e.source, f"class folder '{folder}' is not in classInd.txt; add '<id> {folder}' to "
                                            "classInd.txt or remove the line")
                    continue
                if m["cls"].lower() != folder.lower():
                    problems.add(e.source, f"file name class '{m['cls']}' does not match folder '{folder}'; "
                                           "correct the line")
                    continue
                if e.label is not None and e.label - 1 != label:
                    problems.add(e.source, f"label {e.label} but classInd.txt gives {label + 1} for {folder}; "
                                           "correct the label")
                    continue
                videos.setdefault(e.path, {"path": e.path, "class_name": classes[label], "label": label,
                                           "group": int(m["group"]), "clip": int(m["clip"])})
                other = membership.setdefault(e.path, {}).get(f"split{s}")
                if other:
                    problems.add(e.source, f"{e.path} is in both the train and test list of split {s}; "
                                           "remove it from one")
                membership[e.path][f"split{s}"] = subset
    if check_files and missing != "skip":
        for p in sorted(videos):
            if not (Path(videos_dir) / p).is_file():
                problems.add(str(Path(videos_dir) / p), "listed in the split lists but missing on disk; restore "
                             "it, remove it from every list, or set decode.on_bad_video: skip to leave it out")
    problems.raise_if_any(f"the split lists in {lists_dir} do not match the videos in {videos_dir}")
    for path, member in membership.items():
        for s in lists:
            if f"split{s}" not in member:
                problems.add(path, f"in some lists but not in split {s}'s train or test list")
    problems.raise_if_any("the splits do not partition the same videos")
    vids = pd.DataFrame(sorted(videos.values(), key=lambda r: r["path"]))
    vids.insert(0, "video_id", range(len(vids)))
    member = pd.DataFrame([{"path": p, **m} for p, m in membership.items()])
    member = vids[["video_id", "path"]].merge(member, on="path").drop(columns="path")
    return vids, member.sort_values("video_id").reset_index(drop=True)


def leakage_audit(videos: pd.DataFrame, membership: pd.DataFrame) -> dict:
    """Per split: which (class, group) pairs appear in both train and test."""
    df = videos.merge(membership, on="video_id")
    df["group_key"] = df["class_name"] + "/g" + df["group"].map("{:02d}".format)
    audit = {}
    for col in [c for c in membership.columns if c.startswith("split")]:
        train = set(df.loc[df[col] == "train", "group_key"])
        test = set(df.loc[df[col] == "test", "group_key"])
        groups = lambda sub: sorted(set(df.loc[df[col] == sub, "group"]))  # noqa: E731
        audit[col] = {
            "train_videos": int((df[col] == "train").sum()),
            "test_videos": int((df[col] == "test").sum()),
            "train_groups": groups("train"),
            "test_groups": groups("test"),
            "leaked_groups": sorted(train & test),
        }
    return audit


def check_leakage(audit: dict, allow: bool) -> list[str]:
    """Raise unless no split leaks or leakage is explicitly allowed; return warnings."""
    leaks = {s: a["leaked_groups"] for s, a in audit.items() if a["leaked_groups"]}
    if not leaks:
        return []
    text = "; ".join(f"{s}: {len(g)} groups in both train and test ({', '.join(g[:10])}"
                     f"{', ...' if len(g) > 10 else ''})" for s, g in leaks.items())
    if not allow:
        raise ManifestError(f"group leakage: {text}. Clips of one group come from one long video, so "
                            "this inflates test accuracy. Fix the split lists, or set "
                            "`leakage.allow: true` in config.yaml to run anyway (the report will flag it).")
    return [f"LEAKAGE ALLOWED BY CONFIG: {text}"]


def read_groups(lists_dir: Path) -> list[int]:
    """Group numbers named in the split lists (cheap: used to plan one shard job per group)."""
    groups: set[int] = set()
    for path in sorted(Path(lists_dir).glob("*list0[123].txt")):
        groups.update(int(g) for g in re.findall(r"_g(\d+)_c\d+\.avi", path.read_text(), re.IGNORECASE))
    return sorted(groups)


def count_listed_videos(lists_dir: Path) -> int:
    """Distinct video names in the split lists (cheap: the disk check's count before the manifest exists)."""
    names: set[str] = set()
    for path in sorted(Path(lists_dir).glob("*list0[123].txt")):
        names.update(line.split()[0].lower() for line in path.read_text().splitlines() if line.strip())
    return len(names)
