"""Dataset formats: each module turns a root folder in its layout into the one manifest the pipeline reads.

`datasets.<name>.format` (workflow/schemas/config.schema.yaml) chooses the module. A format module
provides, torch-free and cheap enough for the Snakefile's parse:

    SPLITS (optional)                   the splits it defines (fixed by the format; else the config's)
    videos_dir(root, ds) -> Path        the folder the manifest's video paths are relative to
    inputs(root, ds) -> [Path]          what the manifest rule depends on
    missing_inputs(root, ds) -> [str]   one line per missing input, with the fix
    count_videos(root, ds) -> int       the manifest's video count, without decoding (plans the shards)
    build(root, ds, missing=...)        the Manifest (vidrec/data/formats/base.py), or ManifestError

A new format is its module, a line in FORMATS, its name in the schema's `format` enum, a test of its
parser (tests/test_formats.py) and a config entry.
"""
from __future__ import annotations

from pathlib import Path
from types import ModuleType

from vidrec.data.formats import csv, folders, hmdb51, ucf101
from vidrec.data.formats.base import Manifest, ManifestError, check_leakage, leakage_audit  # noqa: F401

FORMATS: dict[str, ModuleType] = {"ucf101": ucf101, "hmdb51": hmdb51, "folders": folders, "csv": csv}


def dataset(cfg: dict, name: str | None = None) -> dict:
    """The settings of the active dataset (or of `name`)."""
    return cfg["datasets"][name or cfg["dataset"]]


def format_of(ds: dict) -> ModuleType:
    return FORMATS[ds["format"]]


def root(ds: dict) -> Path:
    return Path(ds["root"])


def videos_dir(ds: dict) -> Path:
    """The folder every manifest path is relative to (decode, predict and evaluation read videos there)."""
    return format_of(ds).videos_dir(root(ds), ds)


def inputs(ds: dict) -> list[Path]:
    return format_of(ds).inputs(root(ds), ds)


def missing_inputs(ds: dict) -> list[str]:
    """What is missing for the manifest (nothing for a synthetic set: `vidrec synth` writes it)."""
    return [] if ds.get("synthetic") else format_of(ds).missing_inputs(root(ds), ds)


def synthetic_video_count(synthetic: dict) -> int:
    """Videos `vidrec synth` writes: classes x groups x clips per group (vidrec/data/synth/)."""
    return synthetic["classes"] * synthetic["groups"] * synthetic["clips_per_group"]


def video_count(ds: dict) -> int:
    """The manifest's video count before it exists (the Snakefile plans one shard per bucket of videos):
    from the generator's settings for a synthetic set, else from the format's lists, decoding nothing."""
    if ds.get("synthetic"):
        return synthetic_video_count(ds["synthetic"])
    return format_of(ds).count_videos(root(ds), ds) if root(ds).exists() else 0


def split_problems(name: str, ds: dict) -> list[str]:
    """Configured splits the format does not define."""
    offered = getattr(format_of(ds), "SPLITS", None)
    bad = [s for s in ds["splits"] if offered is not None and s not in offered]
    return [f"config key 'datasets.{name}.splits': {bad} not among format {ds['format']}'s "
            f"splits {list(offered)}"] if bad else []


def build_manifest(ds: dict, missing: str = "fail") -> Manifest:
    """The active dataset's manifest (raises ManifestError naming every bad line)."""
    return format_of(ds).build(root(ds), ds, missing=missing)
