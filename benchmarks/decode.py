"""Decode-stage throughput on 7 s 320x240 XviD AVIs (UCF101's typical clip), measured in one run.

Prints videos/s for: the decode stage (OpenCV grab()/retrieve() of the 16 sampled frames + crop +
resize, one thread per process) with 1 and 2 worker processes; a plain OpenCV loop that read()s
and converts every frame; and one ffmpeg-python subprocess per video (select + crop + scale in the
filter graph). Targets (issue 2): >= 40 videos/s per core, >= 1.7x with 2 worker processes. The
figures go to benchmarks/results/decode.json (`--out PATH` elsewhere) for benchmarks/render.py.

    python benchmarks/decode.py [--videos 40] [--seconds 7]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from record import Record, add_out_argument

from vidrec.data.shards import write_shard  # noqa: E402
from vidrec.data.video import ClipSpec, crop_resize, ffmpeg_exe  # noqa: E402


def make_videos(folder: Path, n: int, seconds: float, fps: int = 25) -> list[Path]:
    """Textured, moving content so the encoder produces a realistic bit rate."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    base = cv2.GaussianBlur(base, (0, 0), 3)
    paths = []
    for v in range(n):
        path = folder / f"v_{v:03d}.avi"
        w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"XVID"), fps, (320, 240))
        for t in range(int(seconds * fps)):
            x, y = (v * 7 + t * 2) % 300, (v * 3 + t) % 220
            frame = base[y:y + 240, x:x + 320].copy()
            cv2.circle(frame, (160 + int(60 * np.sin(t / 8)), 120), 20, (255, 255, 255), -1)
            w.write(frame)
        w.release()
        paths.append(path)
    return paths


def stage(paths: list[Path], workers: int, tmp: Path) -> float:
    videos = pd.DataFrame({"video_id": range(len(paths)), "path": [p.name for p in paths],
                           "label": 0, "group": 1})
    start = time.perf_counter()
    write_shard(videos, paths[0].parent, ClipSpec(), tmp / f"bench_{workers}.h5", workers=workers)
    return len(paths) / (time.perf_counter() - start)


def opencv_read_all(paths: list[Path]) -> float:
    spec = ClipSpec()
    start = time.perf_counter()
    for p in paths:
        cap = cv2.VideoCapture(str(p))
        frames = []
        while True:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(crop_resize(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), spec.crop, spec.size)[0])
        cap.release()
    return len(paths) / (time.perf_counter() - start)


def ffmpeg_subprocess(paths: list[Path], frames: int = 16) -> float:
    import ffmpeg

    start = time.perf_counter()
    for p in paths:
        n = int(cv2.VideoCapture(str(p)).get(cv2.CAP_PROP_FRAME_COUNT))
        picks = "+".join(f"eq(n,{int((t + 0.5) * n / frames)})" for t in range(frames))
        out, _ = (ffmpeg.input(str(p)).filter("select", picks).filter("crop", 192, 192)
                  .filter("scale", 160, 160)
                  .output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="vfr")
                  .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True))
        assert len(out) == frames * 160 * 160 * 3, f"ffmpeg returned {len(out)} bytes"
    return len(paths) / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--seconds", type=float, default=7.0)
    add_out_argument(ap, __file__)
    args = ap.parse_args()
    rec = Record("decode", parameters={"videos": args.videos, "seconds": args.seconds, "source": "320x240 XviD AVI",
                                       "clip": "16x160x160", "opencv_threads": 1})
    cv2.setNumThreads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = make_videos(tmp, args.videos, args.seconds)
        stage(paths[:4], 1, tmp)  # warm-up (page cache, imports)
        one = stage(paths, 1, tmp)
        two = stage(paths, 2, tmp)
        read_all = opencv_read_all(paths)
        ff = ffmpeg_subprocess(paths)
    rows = [("stage_1_worker", "decode stage, 1 worker (grab/retrieve 16 frames)", one),
            ("stage_2_workers", "decode stage, 2 workers", two),
            ("opencv_read_all", "OpenCV read() + convert every frame, 1 process", read_all),
            ("ffmpeg_subprocess", "ffmpeg-python subprocess per video, 1 process", ff)]
    print(f"{args.videos} XviD AVIs, {args.seconds:.0f} s, 320x240 -> 16x160x160 (cores: {os.cpu_count()})")
    for name, label, v in rows:
        print(f"  {label:<52} {v:7.1f} videos/s")
        rec.figure(name, label, v, "videos/s", target=">= 40" if name == "stage_1_worker" else None,
                   note="per core: one process, one decoder thread" if name == "stage_1_worker" else None)
    print(f"ratios: stage/read-all {one / read_all:.2f}x, stage/ffmpeg {one / ff:.2f}x, "
          f"2 workers / 1 worker {two / one:.2f}x (target >= 1.7x); per core {one:.1f} videos/s (target >= 40)")
    rec.figure("workers_2_over_1", "decode stage, 2 workers / 1 worker", two / one, "x", target=">= 1.7")
    rec.figure("stage_over_read_all", "decode stage / OpenCV read-every-frame", one / read_all, "x")
    rec.figure("stage_over_ffmpeg", "decode stage / ffmpeg subprocess per video", one / ff, "x")
    rec.write(args.out)


if __name__ == "__main__":
    main()
