"""What every dataset format hands the pipeline: one manifest, checked and numbered the same way.

A format module (vidrec/data/formats/<name>.py) reads a root folder in its own layout and returns a
`Manifest`: one row per video (path relative to the format's video folder, class name, label, and a
leakage key where the format has one) and, per split, whether each video is "train", "test" or
"unused". Everything after the manifest (shards, split indexes, training, the leakage audit, the
report) reads only these tables. Problems are collected and reported at once, each with its file and
line, as `ManifestError`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from vidrec.core.errors import VidrecError

SUBSETS = ("train", "test", "unused")
# Extensions the formats that scan folders take as videos (those with list files name their videos).
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".m4v", ".wmv", ".flv")


class ManifestError(VidrecError, ValueError):
    """The split lists or the video folder disagree; the message lists every offending line."""


@dataclass
class Problems:
    """Every problem found, each '<file:line>: <what and how to fix it>'."""

    lines: list[str] = field(default_factory=list)

    def add(self, where: str, what: str) -> None:
        self.lines.append(f"{where}: {what}")

    def raise_if_any(self, title: str) -> None:
        if self.lines:
            shown = self.lines[:200]
            more = f"\n  ... and {len(self.lines) - 200} more" if len(self.lines) > 200 else ""
            raise ManifestError(f"{title} ({len(self.lines)} problems):\n  " + "\n  ".join(shown) + more)


@dataclass(frozen=True)
class Manifest:
    """The one table set the pipeline reads, whatever the format.

    videos: video_id (0-based, in path order), path (relative to the format's video folder),
        class_name, label (0-based, index into `classes`), leak_key ("" where the format has none),
        plus any columns of the format's own (e.g. UCF101's group and clip).
    membership: video_id plus one column per split, split<N>, each "train", "test" or "unused".
    split_rule: how the splits were made, in words (the report states it).
    leakage_key: what the leakage key is, in words; None when the format has no reliable one.
    leakage_note: why the audit does not apply (when leakage_key is None).
    """

    videos: pd.DataFrame
    membership: pd.DataFrame
    classes: list[str]
    split_rule: str
    leakage_key: str | None
    leakage_note: str = ""


def assemble(records: dict[str, dict], membership: dict[str, dict[str, str]], splits: tuple[int, ...],
             classes: list[str], problems: Problems, *, split_rule: str, leakage_key: str | None,
             leakage_note: str = "") -> Manifest:
    """Number the videos (sorted by path), check that every split names every video, return the Manifest.

    records: path -> {"path", "class_name", "label", "leak_key", ...}; membership: path -> {"split<N>": subset}.
    A video a split does not name is a problem: a format that has "unused" videos says so explicitly.
    """
    for path in sorted(membership):
        for s in splits:
            if f"split{s}" not in membership[path]:
                problems.add(path, f"in some lists but not in split {s}'s; add it to split {s} or remove it "
                                   "from every list")
    problems.raise_if_any("the splits do not partition the same videos")
    if not records:
        raise ManifestError("no video found: the dataset's lists or folders name no video")
    vids = pd.DataFrame(sorted(records.values(), key=lambda r: r["path"]))
    vids.insert(0, "video_id", range(len(vids)))
    member = pd.DataFrame([{"path": p, **{f"split{s}": m[f"split{s}"] for s in splits}}
                           for p, m in membership.items()])
    member = vids[["video_id", "path"]].merge(member, on="path").drop(columns="path")
    for s in splits:
        for subset in ("train", "test"):
            if not (member[f"split{s}"] == subset).any():
                problems.add(f"split {s}", f"has no {subset} video")
    problems.raise_if_any("a split without training or test videos cannot be run")
    return Manifest(vids, member.sort_values("video_id").reset_index(drop=True), list(classes),
                    split_rule, leakage_key, leakage_note)


def check_files(videos_dir: Path, records: dict[str, dict], problems: Problems, where: dict[str, str]) -> None:
    """A problem for every video not on disk (where: path -> 'file:line' naming it)."""
    for p in sorted(records):
        if not (Path(videos_dir) / p).is_file():
            problems.add(where[p], f"{Path(videos_dir) / p} is listed but missing on disk; restore it, remove it "
                                   "from every list, or set decode.on_bad_video: skip to leave it out")


def read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of every non-blank line, CRLF or LF, trailing spaces stripped."""
    return [(n, line.strip()) for n, line in enumerate(Path(path).read_text().splitlines(), 1) if line.strip()]


def leakage_audit(videos: pd.DataFrame, membership: pd.DataFrame) -> dict:
    """Per split: train/test/unused counts, and the leakage keys found in both train and test.

    Videos with an empty leak_key (a format without one) are never counted as leaked.
    """
    df = videos[["video_id", "leak_key"]].merge(membership, on="video_id")
    df["leak_key"] = df["leak_key"].fillna("").astype(str)
    audit = {}
    for col in [c for c in membership.columns if c.startswith("split")]:
        keys = {sub: set(df.loc[(df[col] == sub) & (df["leak_key"] != ""), "leak_key"]) for sub in ("train", "test")}
        audit[col] = {
            "train_videos": int((df[col] == "train").sum()),
            "test_videos": int((df[col] == "test").sum()),
            "unused_videos": int((df[col] == "unused").sum()),
            "train_units": len(keys["train"]),
            "test_units": len(keys["test"]),
            "leaked": sorted(keys["train"] & keys["test"]),
        }
    return audit


def check_leakage(audit: dict, allow: bool, key: str | None) -> list[str]:
    """Raise unless no split leaks or leakage is explicitly allowed; return warnings."""
    leaks = {s: a["leaked"] for s, a in audit.items() if a["leaked"]}
    if not leaks:
        return []
    text = "; ".join(f"{s}: {len(g)} leakage units in both train and test ({', '.join(g[:10])}"
                     f"{', ...' if len(g) > 10 else ''})" for s, g in leaks.items())
    if not allow:
        raise ManifestError(f"leakage ({key}): {text}. Videos of one unit come from one source, so this "
                            "inflates test accuracy. Fix the split lists, or set `leakage.allow: true` in "
                            "config.yaml to run anyway (the report will flag it).")
    return [f"LEAKAGE ALLOWED BY CONFIG: {text}"]
