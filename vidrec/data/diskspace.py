"""Disk space, checked before the work that fills it: shards before decoding, checkpoints before training.

Torch-free, so the workflow can ask it before its first job. A check compares the bytes the planned
files need with the free space of the file system each lands on (files on one file system are
summed) and raises one `DiskSpaceError` naming needed, free, the folder, and the settings that
change the figure. `disk.check: false` (config) skips the checks for a user who knows better, e.g.
on a file system that compresses or deduplicates.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from vidrec.data.video import ClipSpec
from vidrec.core.errors import DiskSpaceError
from vidrec.core.io import existing_folder, format_bytes

# HDF5's share of a shard beyond the pixels (vidrec/data/shards.py's layout): per clip its frame
# numbers (int32 per frame), label, video id, clip index, repair string and chunk-index entry; per
# shard the superblock, object headers and attributes. Upper bounds: tests/test_diskspace.py holds
# them against shards written by write_shard.
HDF5_BYTES_PER_CLIP = 128
HDF5_BYTES_PER_SHARD = 256 * 1024
# An any-start shard (every frame, one frame per chunk): per frame its chunk-index entry and frame
# number (int32); per video the row of labels, ids, first frame, frame count and repair string
# (HDF5_BYTES_PER_CLIP bounds that too). Upper bound, held against a written shard by tests/test_any_start.py.
HDF5_BYTES_PER_FRAME = 96
# A training folder holds at most two checkpoints at once: the last one and its replacement being
# written beside it (model.pt, weights only, replaces the last one at the end).
CHECKPOINTS_AT_ONCE = 2
SKIP_HINT = "or, if you know better, skip this check with --config disk='{check: false}'"


def shard_bytes(spec: ClipSpec, n_videos: int, frames_per_video: float | None = None) -> int:
    """Bytes of a shard of `n_videos` videos decoded at `spec` (pixels are stored uncompressed).

    An any-start spec stores every frame: `frames_per_video` when known, else the spec's assumption
    (ClipSpec.frames_per_video, vidrec/data/video.py's MEAN_FRAMES_PER_VIDEO)."""
    if spec.any_start:
        frames = n_videos * (spec.frames_per_video if frames_per_video is None else max(frames_per_video, spec.span))
        frame_bytes = spec.height * spec.width * 3
        return int(frames * (frame_bytes + HDF5_BYTES_PER_FRAME) + n_videos * HDF5_BYTES_PER_CLIP + HDF5_BYTES_PER_SHARD)
    n_clips = n_videos * spec.clips_per_video
    return n_videos * spec.bytes_per_video + n_clips * (HDF5_BYTES_PER_CLIP + 4 * spec.frames) + HDF5_BYTES_PER_SHARD


def training_bytes(n_parameters: int, optimizer_states: int = 1, bytes_per_parameter: int = 4) -> int:
    """Bytes a training's folder holds at its peak: CHECKPOINTS_AT_ONCE checkpoints, each the weights
    plus the optimizer's per-parameter states (1 for SGD with momentum, 2 for Adam)."""
    return CHECKPOINTS_AT_ONCE * (1 + optimizer_states) * n_parameters * bytes_per_parameter


@dataclass(frozen=True)
class Need:
    """`bytes` to be written at `path`, and what they are, for the message."""

    path: Path
    bytes: int
    what: str


def check_free_space(needs: list[Need], fix: str) -> None:
    """Raise DiskSpaceError when the needs of any file system exceed its free space.

    `fix` names the settings that change the figure; the message lists every need (largest first)."""
    by_device: dict[int, list[Need]] = {}
    folders: dict[int, Path] = {}
    for need in needs:
        folder = existing_folder(Path(need.path).parent)
        device = os.stat(folder).st_dev
        by_device.setdefault(device, []).append(need)
        folders.setdefault(device, folder)
    for device, group in by_device.items():
        needed, free = sum(n.bytes for n in group), shutil.disk_usage(folders[device]).free
        if needed <= free:
            continue
        parts: dict[str, int] = {}
        for n in group:
            parts[n.what] = parts.get(n.what, 0) + n.bytes
        detail = "; ".join(f"{what}: {format_bytes(b)}" for what, b in sorted(parts.items(), key=lambda p: -p[1]))
        raise DiskSpaceError(
            f"not enough disk space: {format_bytes(needed)} needed, {format_bytes(free)} free in {folders[device]} "
            f"({detail}). Nothing was written. {fix}; {SKIP_HINT}.")


def shard_fix(dataset: str, clip_runs: dict[str, list[str]], clips: dict[str, dict]) -> str:
    """What changes the shards' size: each clip spec's clips per video, and which runs use it."""
    specs = []
    for name, runs in sorted(clip_runs.items()):
        spec = ClipSpec.from_config(clips[name])
        stored = (f"every frame at {spec.height}x{spec.width}, {spec.frames_per_video:.0f} assumed, "
                  f"{format_bytes(spec.bytes_per_video)} per video; a smaller size or sampling: consecutive "
                  "with few clips_per_video stores less" if spec.any_start else
                  f"{spec.clips_per_video} clip(s) of {spec.frames}x{spec.height}x{spec.width}, "
                  f"{format_bytes(spec.bytes_per_video)} per video; clips_per_video sets it")
        specs.append(f"clips.{name} ({stored}) for {', '.join(runs) or 'experiments only'}")
    return (f"To need less: fewer clips per video, or leave out the runs of a spec under datasets.{dataset}.models "
            f"({'; '.join(specs)}); to use another disk, run from a working directory there (shards are written "
            f"to data/{dataset}/shards/ under it) or make data/ a link to it")
