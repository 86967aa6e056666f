"""HDF5 clip shards: each video decoded once, one shard per group, splits as indexes over them.

The three official splits partition the same videos, so shards are keyed by video (one file per
group index gGG, all classes), and a split is a small table of (shard, row) pairs. A shard is
written under a temporary name, fsynced and renamed; its completion attributes are written last.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import time
from pathlib import Path
from typing import Iterable, Iterator

import h5py
import numpy as np
import pandas as pd

from vidrec.plan.config import stable_hash
from vidrec.data.video import ClipSpec, VideoError, decode_clips
from vidrec.core.errors import VidrecError
from vidrec.core.io import atomic_path, remove_stale_temporaries
from vidrec.core.workers import process_context

SHARD_FORMAT = 1


class ShardError(VidrecError):
    """A shard is missing, incomplete or decoded with another clip spec."""


def shard_config_hash(spec: ClipSpec) -> str:
    """Identity of the pixel content: clip spec plus the shard format version."""
    return stable_hash({"clip": spec.__dict__, "format": SHARD_FORMAT})


def library_versions() -> dict[str, str]:
    import cv2

    return {"python": platform.python_version(), "numpy": np.__version__, "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version, "opencv": cv2.__version__}


def _init_worker(threads: int) -> None:
    """Pin decoders to one thread per process: single-threaded decoders run ~2x faster that way."""
    import cv2

    cv2.setNumThreads(threads)
    os.environ["OMP_NUM_THREADS"] = str(threads)


def _decode_task(args: tuple) -> tuple[int, object]:
    video_id, path, spec, threads = args
    try:
        return video_id, decode_clips(path, spec, threads)
    except VideoError as err:
        return video_id, err


def _decode_all(tasks: list[tuple], workers: int, threads: int) -> Iterable[tuple[int, object]]:
    if workers <= 1:
        _init_worker(threads)
        yield from map(_decode_task, tasks)
        return
    with process_context().Pool(workers, initializer=_init_worker, initargs=(threads,)) as pool:
        yield from pool.imap(_decode_task, tasks, chunksize=2)


def write_shard(videos: pd.DataFrame, videos_dir: Path, spec: ClipSpec, out_path: Path,
                *, workers: int = 1, threads: int = 1, on_bad_video: str = "fail",
                progress: bool = False) -> dict:
    """Decode `videos` (rows of videos.csv) into one HDF5 shard; return decode statistics.

    Stored clips (uniform, consecutive) go to `clips`, one clip per row; an any-start spec's videos go
    to `frames`, every frame once, one frame per row (docs/architecture.md, "Shard layout").
    on_bad_video="fail" raises the first VideoError (naming the file); "skip" leaves the video out
    and lists it in the statistics, which are written beside the shard.
    """
    out_path = Path(out_path)
    remove_stale_temporaries(out_path)
    videos = videos.sort_values("video_id")
    tasks = [(int(r.video_id), str(Path(videos_dir) / r.path), spec, threads) for r in videos.itertuples()]
    labels = dict(zip(videos.video_id, videos.label))
    names = dict(zip(videos.video_id, videos.path))
    skipped, repairs_log, backends = [], [], {"opencv": 0, "ffmpeg": 0}
    digest = hashlib.sha256()
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(tasks), desc=out_path.name, unit="video")

    def decoded() -> Iterator[tuple[int, object]]:
        """The videos that decoded, in video_id order; the others skipped (or raised)."""
        for video_id, result in _decode_all(tasks, workers, threads):
            if bar:
                bar.update()
            if isinstance(result, VideoError):
                if on_bad_video == "fail":
                    raise result
                skipped.append({"video_id": video_id, "path": names[video_id], "reason": result.reason})
                continue
            backends[result.backend] += 1
            if result.repairs[0]:
                repairs_log.append({"video_id": video_id, "path": names[video_id], "repair": result.repairs[0]})
            yield video_id, result

    with atomic_path(out_path) as tmp:
        with _new_hdf5_file(tmp) as f:
            counts = _write_frames(f, spec, decoded(), labels, digest) if spec.any_start else \
                _write_clips(f, spec, len(tasks), decoded(), labels, digest)
            # Completion attributes last: a file without them is never treated as a shard.
            f.attrs["config_hash"] = shard_config_hash(spec)
            f.attrs["clip_spec"] = json.dumps(spec.__dict__, sort_keys=True)
            f.attrs["content_hash"] = digest.hexdigest()
            for key, value in counts.items():
                f.attrs[key] = value
            f.attrs["versions"] = json.dumps(library_versions(), sort_keys=True)
            f.attrs["complete"] = True
    if bar:
        bar.close()
    seconds = time.perf_counter() - start
    stats = {"shard": out_path.name, "videos": len(tasks) - len(skipped), "clips": int(counts["n_clips"]),
             **({"frames": int(counts["n_frames"])} if spec.any_start else {}),
             "skipped": skipped, "repairs": repairs_log, "backends": backends,
             "seconds": round(seconds, 3), "videos_per_s": round((len(tasks)) / max(seconds, 1e-9), 2),
             "workers": workers, "bytes": out_path.stat().st_size, "config_hash": shard_config_hash(spec),
             "content_hash": digest.hexdigest()}  # = the shard's attribute: same config, same hash
    return stats


def _write_clips(f: h5py.File, spec: ClipSpec, n_tasks: int, decoded: Iterable[tuple[int, object]],
                 labels: dict, digest) -> dict[str, int]:
    """Stored clips: K rows of `clips` per video (one clip per chunk); returns the count attributes."""
    K, T, H, W = spec.clips_per_video, spec.frames, spec.height, spec.width
    n_max = n_tasks * K
    clips = f.create_dataset("clips", (n_max, T, H, W, 3), np.uint8, chunks=(1, T, H, W, 3))
    frame_idx = f.create_dataset("frame_indices", (n_max, T), np.int32)
    rows = {"labels": [], "video_ids": [], "clip_index": [], "repairs": []}
    n = 0
    for video_id, result in decoded:
        clips[n:n + K] = result.clips
        frame_idx[n:n + K] = result.frame_indices
        digest.update(result.clips.tobytes())
        for k in range(K):
            rows["labels"].append(labels[video_id])
            rows["video_ids"].append(video_id)
            rows["clip_index"].append(k)
            rows["repairs"].append(result.repairs[k])
        n += K
    for name in ("clips", "frame_indices"):
        _truncate(f, name, n)
    _write_rows(f, rows, digest, {"clip_index": np.asarray(rows["clip_index"], np.int16)})
    return {"n_clips": n, "n_videos": n // K}


def _write_rows(f: h5py.File, rows: dict[str, list], digest, layout: dict[str, np.ndarray]) -> None:
    """The labels, video ids and repairs both layouts store, around the layout's own row tables (in
    this order, the files' as before); labels and ids enter the content hash."""
    f["labels"] = np.asarray(rows["labels"], np.int16)
    f["video_ids"] = np.asarray(rows["video_ids"], np.int32)
    for name, values in layout.items():
        f[name] = values
    f.create_dataset("repairs", data=np.asarray(rows["repairs"], dtype=h5py.string_dtype()))
    for key in ("labels", "video_ids"):
        digest.update(f[key][()].tobytes())


def _write_frames(f: h5py.File, spec: ClipSpec, decoded: Iterable[tuple[int, object]], labels: dict,
                  digest) -> dict[str, int]:
    """Every frame of each video in `frames` (one frame per chunk, appended in video order, so the
    frames of a video follow each other in the file), and per video its first row and frame count;
    returns the count attributes (n_clips: the K test clips of each video)."""
    H, W = spec.height, spec.width
    frames = f.create_dataset("frames", (0, H, W, 3), np.uint8, chunks=(1, H, W, 3), maxshape=(None, H, W, 3))
    frame_idx = f.create_dataset("frame_indices", (0,), np.int32, chunks=(4096,), maxshape=(None,))
    rows = {"labels": [], "video_ids": [], "first_frame": [], "n_frames": [], "repairs": []}
    n = 0
    for video_id, result in decoded:
        pixels, count = result.clips[0], result.clips.shape[1]
        frames.resize(n + count, axis=0)
        frames[n:n + count] = pixels
        frame_idx.resize(n + count, axis=0)
        frame_idx[n:n + count] = result.frame_indices[0]
        digest.update(pixels.tobytes())
        rows["labels"].append(labels[video_id])
        rows["video_ids"].append(video_id)
        rows["first_frame"].append(n)
        rows["n_frames"].append(count)
        rows["repairs"].append(result.repairs[0])
        n += count
    _write_rows(f, rows, digest, {"first_frame": np.asarray(rows["first_frame"], np.int64),
                                  "n_frames": np.asarray(rows["n_frames"], np.int32)})
    n_videos = len(rows["video_ids"])
    return {"n_clips": n_videos * spec.clips_per_video, "n_videos": n_videos, "n_frames": n}


@contextlib.contextmanager
def _new_hdf5_file(path: Path) -> Iterator[h5py.File]:
    """A new HDF5 file whose failed write (a full disk) raises, and never crashes the process.

    libhdf5 crashes the interpreter (SIGSEGV, when the file object is released) once the close of a
    file has failed to flush. So every chunk is written straight through (no chunk cache: chunks are
    whole clips, written once), the metadata is flushed inside the `with` block, and on any error the
    file's blocks are released (truncated to 0 bytes) before the close, which then has room to
    finish. The caller removes the file."""
    f = h5py.File(path, "w", rdcc_nbytes=0)
    try:
        yield f
        f.flush()
    except BaseException:
        with contextlib.suppress(OSError):
            os.truncate(path, 0)
        with contextlib.suppress(Exception):
            f.close()
        raise
    f.close()


def _truncate(f: h5py.File, name: str, n: int) -> None:
    """Shrink a preallocated dataset to n rows (only when videos were skipped)."""
    ds = f[name]
    if ds.shape[0] == n:
        return
    data = ds[:n]
    attrs = dict(chunks=ds.chunks) if n else {}  # every video skipped: an empty, unchunked dataset
    del f[name]
    f.create_dataset(name, data=data, **attrs)


def check_shard(path: Path, spec: ClipSpec | None = None) -> dict:
    """Open a shard and verify it is complete (and matches `spec`); return its attributes."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            attrs = dict(f.attrs)
    except OSError as err:
        raise ShardError(f"{path}: not a readable HDF5 shard ({err}); delete it and rerun the decode stage") from err
    if not attrs.get("complete"):
        raise ShardError(f"{path}: incomplete shard (no completion attributes); delete it and rerun")
    if spec is not None and attrs["config_hash"] != shard_config_hash(spec):
        raise ShardError(f"{path}: decoded with another clip spec ({attrs.get('clip_spec')}); "
                           "rerun the decode stage")
    return attrs


def verify_content_hash(path: Path) -> bool:
    """Recompute the content hash from the stored pixels and labels."""
    digest = hashlib.sha256()
    with h5py.File(path, "r") as f:
        if "frames" in f:  # an any-start shard: each video's frames
            for first, count in zip(f["first_frame"][()], f["n_frames"][()]):
                digest.update(f["frames"][first:first + count].tobytes())
        else:
            K = json.loads(f.attrs["clip_spec"])["clips_per_video"]
            clips = f["clips"]
            for i in range(0, clips.shape[0], K):
                digest.update(clips[i:i + K].tobytes())
        for key in ("labels", "video_ids"):
            digest.update(f[key][()].tobytes())
        return digest.hexdigest() == f.attrs["content_hash"]


def build_split_index(membership: pd.DataFrame, shard_paths: list[Path], split: int,
                      videos: pd.DataFrame | None = None) -> pd.DataFrame:
    """The per-split view: one row per stored video with its shard, first row and subset.

    Stored clips: `row` is the video's first clip in `clips`, `n_clips` its clip count. Any-start
    shards: `row` is the video's first frame in `frames`, `n_frames` (only in their index) its frame
    count, `n_clips` the spec's K test clips. With `videos` (videos.csv) the path and class name of each
    video are attached too.
    """
    col = f"split{split}"
    if col not in membership.columns:
        raise ShardError(f"split {split} is not in the manifest (has {list(membership.columns[1:])})")
    parts = []
    for p in shard_paths:
        check_shard(p)
        with h5py.File(p, "r") as f:
            vids = f["video_ids"][()]
            labels = f["labels"][()]
            if "frames" in f:  # any-start: one row per video already
                k = json.loads(f.attrs["clip_spec"])["clips_per_video"]
                parts.append(pd.DataFrame({"video_id": vids, "shard": str(p), "row": f["first_frame"][()],
                                           "n_frames": f["n_frames"][()], "n_clips": k, "label": labels}))
                continue
        if len(vids) == 0:
            continue
        starts = np.flatnonzero(np.r_[True, vids[1:] != vids[:-1]])
        counts = np.diff(np.r_[starts, len(vids)])
        parts.append(pd.DataFrame({"video_id": vids[starts], "shard": str(p), "row": starts,
                                   "n_clips": counts, "label": labels[starts]}))
    index = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["video_id", "shard", "row", "n_clips", "label"])
    index = index.merge(membership[["video_id", col]], on="video_id", how="left")
    index = index.rename(columns={col: "subset"})
    if index["subset"].isna().any():
        bad = index.loc[index["subset"].isna(), "video_id"].tolist()[:5]
        raise ShardError(f"videos {bad} are in the shards but not in split {split}")
    if videos is not None:
        index = index.merge(videos[["video_id", "path", "class_name"]], on="video_id", how="left")
    return index.sort_values("video_id").reset_index(drop=True)
