"""The decode side of `vidrec predict`: video discovery, the clip plan, and a pool of decode workers.

Kept free of torch so worker processes start fast (they import this module and `vidrec.data.video`
only). Every frame goes through `vidrec.data.video.decode_clips`, the function the shards are
written with, so a clip decoded here is byte-identical to the shard's clip of the same video.
"""
from __future__ import annotations

import os
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from vidrec.data.video import ClipSpec, VideoError, decode_clips
from vidrec.core.workers import libraries_verbose, process_context, set_library_logging

# What a folder is searched for (explicitly named files are tried whatever their extension).
VIDEO_EXTENSIONS = frozenset({".avi", ".mp4", ".m4v", ".mkv", ".mov", ".webm", ".mpg", ".mpeg", ".wmv",
                              ".flv", ".3gp", ".ts", ".mts", ".ogv", ".vob"})


# ----------------------------------------------------------------------------- inputs
def collect_videos(inputs: Iterable[str | Path]) -> tuple[list[Path], list[tuple[str, str]], bool]:
    """Expand files and folders (recursively, by extension, sorted) into video paths.

    Returns (videos, problems, any_folder): problems are (input, reason) for inputs that are
    neither a file nor a folder holding videos; they are reported like unreadable videos.
    """
    videos: list[Path] = []
    problems: list[tuple[str, str]] = []
    any_folder = False
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            any_folder = True
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not found:
                problems.append((str(p), "folder holds no video files (" + " ".join(sorted(VIDEO_EXTENSIONS)) + ")"))
            videos.extend(found)
        elif p.is_file():
            videos.append(p)
        else:
            problems.append((str(p), "file not found"))
    return videos, problems, any_folder


# ----------------------------------------------------------------------------- clip plan
def clip_plan(spec: ClipSpec, clips: int) -> tuple[ClipSpec, list[int]]:
    """Which clip spec to decode with, and which of its clips to score, for `clips` clips per video.

    clips == 1 (the thesis protocol): the centre clip of the model's stored spec, the clip
    `vidrec evaluate` scores at clip level. A uniform spec with an odd clips_per_video samples its
    centre clip at exactly the frames of the same spec with one clip (segment centres), so only
    those frames are decoded; otherwise every stored clip is decoded and the centre one kept.
    clips == K > 1: the model's sampling with K clips per video (uniform: phase-shifted; consecutive:
    evenly spaced starts), scores averaged. K = the stored clips_per_video reproduces `evaluate`'s
    video level.
    """
    if clips < 1:
        raise ValueError(f"clips must be >= 1, got {clips}")
    spec = spec.test_clips_spec  # an any-start spec's test clips: the consecutive spec's stored clips
    if clips == 1:
        if spec.sampling == "uniform" and spec.clips_per_video % 2 == 1:
            return replace(spec, clips_per_video=1), [0]
        return spec, [spec.centre_clip]
    return replace(spec, clips_per_video=clips), list(range(clips))


# ----------------------------------------------------------------------------- one video
@dataclass
class Decoded:
    """The clips of one video that the model will score (uint8 RGB, training layout)."""

    index: int                       # position in the input list
    path: str
    clips: np.ndarray | None         # (K, T, size, size, 3) uint8, None on error
    frame_indices: np.ndarray | None  # (K, T) source frame numbers
    n_frames: int = 0
    repairs: str = ""
    backend: str = ""
    error: str | None = None


def decode_task(task: tuple[int, str, ClipSpec, tuple[int, ...], int]) -> Decoded:
    """Decode one video; any failure becomes `Decoded.error` (name and reason), never an exception."""
    index, path, spec, keep, threads = task
    try:
        d = decode_clips(path, spec, threads)
    except VideoError as err:
        return Decoded(index, path, None, None, error=err.reason)
    except Exception as err:  # noqa: BLE001 - one bad file must not stop the rest
        return Decoded(index, path, None, None, error=f"{type(err).__name__}: {err}")
    keep_idx = list(keep)
    return Decoded(index, path, np.ascontiguousarray(d.clips[keep_idx]), d.frame_indices[keep_idx],
                   d.n_frames, d.repairs[0] if d.repairs else "", d.backend)


def _init_worker(threads: int, verbose: bool) -> None:
    """One decoder thread per worker process (as the shard writer): the pool is the parallelism.
    The parent's library log level, passed on explicitly: a forkserver started earlier holds an
    older environment."""
    set_library_logging(verbose)
    import cv2

    cv2.setNumThreads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def _ping(_: int) -> int:
    return os.getpid()


# ----------------------------------------------------------------------------- the pool
class DecodePool:
    """Decode videos in `workers` processes (0: in the calling process), results in input order.

    At most `window` videos are in flight (submitted, not yet consumed), so memory stays bounded
    however long the list, while the workers keep decoding as the consumer runs the model. A
    worker that dies (a decoder crash) is replaced; the videos it may have held are retried one
    at a time, and the one that crashes again is reported as unreadable.
    """

    def __init__(self, workers: int, threads: int = 1, window: int | None = None,
                 fn: Callable[[tuple], Decoded] = decode_task):
        self.workers, self.threads, self.fn = max(0, int(workers)), threads, fn
        self.window = max(1, window or 4 * max(self.workers, 1))
        self._ex: ProcessPoolExecutor | None = None
        self._solo: ProcessPoolExecutor | None = None  # retries after a crash, one task at a time

    def _new_executor(self, workers: int | None = None) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers or self.workers, mp_context=process_context(),
                                   initializer=_init_worker, initargs=(self.threads, libraries_verbose()))

    def __enter__(self) -> "DecodePool":
        if self.workers > 0:
            self._ex = self._new_executor()
            list(self._ex.map(_ping, range(self.workers)))  # start-up paid here, not in the timing
        else:
            _init_worker(self.threads, libraries_verbose())
        return self

    def __exit__(self, *exc) -> None:
        for ex in (self._ex, self._solo):
            if ex is not None:
                ex.shutdown(wait=True, cancel_futures=True)
        self._ex = self._solo = None

    def _retry_alone(self, task: tuple) -> Decoded:
        """Run one task in a one-worker pool of its own (kept for the next retry unless it crashed)."""
        if self._solo is None:
            self._solo = self._new_executor(1)
        try:
            return self._solo.submit(self.fn, task).result()
        except BrokenProcessPool:
            self._solo.shutdown(wait=False, cancel_futures=True)
            self._solo = None
            return Decoded(task[0], str(task[1]), None, None,
                           error="the decoder crashed on this file (corrupt stream?)")

    def imap(self, tasks: Iterable[tuple]) -> Iterator[Decoded]:
        if self._ex is None:
            yield from map(self.fn, tasks)
            return
        it = iter(tasks)
        inflight: deque[tuple[tuple, Future | None]] = deque()  # None: retry alone
        while True:
            while len(inflight) < self.window:
                task = next(it, None)
                if task is None:
                    break
                inflight.append((task, self._ex.submit(self.fn, task)))
            if not inflight:
                return
            task, fut = inflight.popleft()
            if fut is None:
                yield self._retry_alone(task)
                continue
            try:
                result = fut.result()
            except BrokenProcessPool:
                # a worker died: every task on that pool failed with it. Fresh pool for the rest;
                # this task and the other casualties are retried one at a time to find the culprit.
                self._ex.shutdown(wait=False, cancel_futures=True)
                self._ex = self._new_executor()
                inflight = deque((t, f if f is not None and f.done() and f.exception() is None else None)
                                 for t, f in inflight)
                result = self._retry_alone(task)
            yield result
