"""The synthetic dataset on disk: AVIs in UCF101's layout and its official-format split lists.

Files are written atomically (vidrec.core.io.atomic_path: a hidden temporary name ending in `.tmp.avi`
beside the file, fsync, `os.replace`); a marker `videos_root/.synth.json` with the generation
parameters is written last, and a rerun with the same parameters keeps the videos that exist (they are complete, being
written atomically) and regenerates the missing ones; with other parameters it rewrites them all and
removes videos of its own classes that the new parameters do not produce (e.g. after lowering
`classes` or `groups`), so the folders always match the lists. Same arguments -> byte-identical
files, whatever the number of worker processes.
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Iterator

import numpy as np

from vidrec.data.formats import ucf101
from vidrec.data.synth.design import CLASS_DEFS, GENERATOR_VERSION, ClassDef, class_definitions
from vidrec.data.synth.render import render_video
from vidrec.core.io import atomic_path, remove_stale_temporaries_in, write_bytes
from vidrec.core.workers import process_context

def write_avi(path: Path, frames: np.ndarray, fps: int) -> None:
    """Encode BGR frames as MPEG-4 (XviD fourcc) in AVI, atomically (vidrec.core.io.atomic_path)."""
    import cv2
    path = Path(path)
    if len(frames.shape) != 4 or frames.shape[3] != 3 or frames.shape[0] < 1:
        raise ValueError(f"frames must be (n, height, width, 3) uint8 BGR, got {frames.shape}")
    n, h, w = frames.shape[:3]
    with atomic_path(path, keep_suffix=True) as tmp:  # the encoder picks AVI from the extension
        writer = cv2.VideoWriter(str(tmp), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"XVID"),
                                 float(fps), (w, h))
        if not writer.isOpened():
            raise RuntimeError(f"cv2.VideoWriter could not open {tmp} (XVID/AVI via FFMPEG); "
                               f"is opencv built with FFMPEG? ({cv2.__version__})")
        try:
            for f in frames:
                writer.write(np.ascontiguousarray(f))
        finally:
            writer.release()
        if not tmp.exists() or tmp.stat().st_size == 0:
            raise RuntimeError(f"encoding {path} produced no data")


def _remove_stale_videos(videos_root: Path, wanted: set[str]) -> int:
    """Remove videos of this generator's classes that the current parameters do not produce
    (e.g. left by an earlier run with more classes or groups), and their emptied folders."""
    n = 0
    for cdef in CLASS_DEFS:
        folder = videos_root / cdef.name
        if not folder.is_dir():
            continue
        for p in folder.iterdir():
            if ucf101.is_video_name(p.name) and p.is_file() and f"{cdef.name}/{p.name}" not in wanted:
                p.unlink()
                n += 1
        if not any(folder.iterdir()):
            folder.rmdir()
    return n


def _write_video(job: tuple[ClassDef, int, int, Path], **render_args) -> int:
    """Render one video and write it atomically; return its number of frames (a worker's task)."""
    cdef, group, clip, path = job
    frames = render_video(cdef, group, clip, **render_args)
    write_avi(path, frames, render_args["fps"])
    return len(frames)


def _map_in_workers(fn, jobs: list, workers: int) -> Iterator:
    """fn over jobs, in order: in this process, or in `workers` processes."""
    if workers <= 1 or len(jobs) <= 1:
        yield from map(fn, jobs)
        return
    with process_context().Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap(fn, jobs, chunksize=4)


def generate_dataset(videos_root: Path, lists_dir: Path, *, classes: int = 10, groups: int = 25,
                     clips_per_group: int = 2, width: int = 320, height: int = 240, fps: int = 25,
                     min_seconds: float = 2.0, max_seconds: float = 4.0, seed: int = 0,
                     progress: bool = True, workers: int = 1) -> dict:
    """Write the synthetic dataset; return a summary (counts, class names, parameters).

    Deterministic in its arguments (byte-identical files, whatever `workers`: each video depends
    only on its class, group and clip). A rerun with the same arguments regenerates only missing
    videos (existing ones were written atomically, hence complete); with different arguments (or no
    marker from a finished run) it rewrites every video. `workers` > 1 renders and encodes videos
    in that many processes.
    """
    import time
    t0 = time.perf_counter()
    defs = class_definitions(classes)
    if groups < 1 or clips_per_group < 1:
        raise ValueError("groups and clips_per_group must be >= 1")
    if groups > 99 or clips_per_group > 99:
        raise ValueError("groups and clips_per_group are written with two digits (<= 99)")
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"width and height must be even and >= 16 (MPEG-4 drops an odd last "
                         f"row/column), got {width}x{height}")
    if fps < 1 or not (0 < min_seconds <= max_seconds):
        raise ValueError("need fps >= 1 and 0 < min_seconds <= max_seconds")
    videos_root, lists_dir = Path(videos_root), Path(lists_dir)
    videos_root.mkdir(parents=True, exist_ok=True)
    lists_dir.mkdir(parents=True, exist_ok=True)
    params = dict(classes=int(classes), groups=int(groups), clips_per_group=int(clips_per_group),
                  width=int(width), height=int(height), fps=int(fps),
                  min_seconds=float(min_seconds), max_seconds=float(max_seconds), seed=int(seed),
                  generator_version=GENERATOR_VERSION)
    marker = videos_root / ".synth.json"
    previous = None
    if marker.exists():
        try:
            previous = json.loads(marker.read_text()).get("params")
        except (OSError, ValueError):
            previous = None
    reuse = previous == params
    if marker.exists() and not reuse:
        marker.unlink()
    names = sorted((d.name for d in defs), key=str.lower)
    by_name = {d.name: d for d in defs}
    jobs = [(by_name[n], g, c) for n in names for g in range(1, groups + 1)
            for c in range(1, clips_per_group + 1)]
    bar = None
    if progress:
        try:
            from tqdm import tqdm
            bar = tqdm(total=len(jobs), desc="synth", unit="video", file=sys.stderr)
        except ImportError:
            bar = None
    written = kept = frames_total = 0
    for folder in [videos_root, lists_dir, *(videos_root / d.name for d in CLASS_DEFS)]:
        remove_stale_temporaries_in(folder)  # left by a killed run
    stale = _remove_stale_videos(videos_root, {ucf101.video_relpath(d.name, g, c) for d, g, c in jobs})
    for name in names:
        (videos_root / name).mkdir(exist_ok=True)
    todo = []
    for cdef, g, c in jobs:
        path = videos_root / ucf101.video_relpath(cdef.name, g, c)
        if reuse and path.exists():
            kept += 1
            if bar is not None:
                bar.update(1)
        else:
            todo.append((cdef, g, c, path))
    render = functools.partial(_write_video, width=width, height=height, fps=fps, min_seconds=min_seconds,
                               max_seconds=max_seconds, seed=seed)
    for n_frames in _map_in_workers(render, todo, workers):
        frames_total += n_frames
        written += 1
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    for fname, text in ucf101.list_files(names, groups, clips_per_group).items():
        write_bytes(lists_dir / fname, text.encode("ascii"))
    summary = {
        "params": params,
        "class_names": names,
        "classes": [{"label": i, "name": n, "sense": by_name[n].sense,
                     "profile": by_name[n].profile} for i, n in enumerate(names, 1)],
        "videos": len(jobs),
        "videos_written": written,
        "videos_kept": kept,
        "stale_videos_removed": stale,
        "frames_written": frames_total,
        "splits": {},
        "seconds": round(time.perf_counter() - t0, 3),
    }
    for split, test_groups in ucf101.TEST_GROUPS.items():
        n_test = sum(1 for _, g, _ in jobs if g in test_groups)
        summary["splits"][f"split{split}"] = {"train": len(jobs) - n_test, "test": n_test}
    write_bytes(marker, json.dumps({"params": params}, indent=1).encode())
    return summary
