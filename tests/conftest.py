"""Shared test helpers: AVI writers, frame-index patterns, tiny UCF101-shaped datasets."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# One thread per process: tests and the jobs they start share 2 cores, and oversubscribed torch
# threads spin-wait (10x slower measured here). Subprocesses inherit this.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
# UCF101's official split lists, committed as test data (tests/data/ucfTrainTestlist/README.md).
REAL_LISTS = REPO / "tests" / "data" / "ucfTrainTestlist"
BITS = 9  # frame numbers up to 511


def write_avi(path: Path, frames: list[np.ndarray], fps: float = 25.0, fourcc: str = "XVID") -> Path:
    """Write RGB frames to an AVI (MPEG-4/XviD by default, as UCF101)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened(), f"cannot open a {fourcc} writer"
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def index_frame(i: int, width: int = 320, height: int = 240) -> np.ndarray:
    """A frame whose central 192x192 square encodes i in BITS wide black/white stripes."""
    img = np.full((height, width, 3), 128, np.uint8)
    x0, y0, side = (width - 192) // 2, (height - 192) // 2, 192
    stripe = side // BITS
    for b in range(BITS):
        value = 255 if (i >> b) & 1 else 0
        img[y0:y0 + side, x0 + b * stripe:x0 + (b + 1) * stripe] = value
    return img


def read_index(frame: np.ndarray) -> int:
    """Inverse of index_frame after centre crop 192 and any resize (stripe centres sampled)."""
    size = frame.shape[1]
    stripe = size / BITS
    value = 0
    for b in range(BITS):
        x = int((b + 0.5) * stripe)
        if frame[size // 4:3 * size // 4, x].mean() > 128:
            value |= 1 << b
    return value


def index_video(path: Path, n: int, **kw) -> Path:
    return write_avi(path, [index_frame(i) for i in range(n)], **kw)


def make_dataset(root: Path, classes: list[str], groups: int = 25, clips: int = 1, frames: int = 30,
                 size: tuple[int, int] = (320, 240)) -> tuple[Path, Path]:
    """Tiny dataset in the UCF101 layout with the official group rule; frames encode their index."""
    videos, lists = root / "UCF-101", root / "ucfTrainTestlist"
    lists.mkdir(parents=True, exist_ok=True)
    (lists / "classInd.txt").write_bytes("".join(f"{i + 1} {c}\r\n" for i, c in enumerate(classes)).encode())
    names = []
    w, h = size
    for ci, c in enumerate(classes):
        for g in range(1, groups + 1):
            for k in range(1, clips + 1):
                rel = f"{c}/v_{c}_g{g:02d}_c{k:02d}.avi"
                frames_ = [np.clip(index_frame(i, w, h).astype(int) + (ci * 7 + g) % 40, 0, 255).astype(np.uint8)
                           for i in range(frames)]
                write_avi(videos / rel, frames_)
                names.append((rel, ci, g))
    for s, (lo, hi) in enumerate([(1, 7), (8, 14), (15, 21)], 1):
        train = [f"{r} {ci + 1}\r\n" for r, ci, g in names if not lo <= g <= hi]
        test = [f"{r}\r\n" for r, ci, g in names if lo <= g <= hi]
        (lists / f"trainlist{s:02d}.txt").write_bytes("".join(train).encode())
        (lists / f"testlist{s:02d}.txt").write_bytes("".join(test).encode())
    return videos, lists


def run_cli(*args: str, cwd: Path | None = None, check: bool = True, env: dict | None = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
    """Run `python -m vidrec.cli ...` in a subprocess (the CLI as a user runs it)."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "vidrec.cli", *args], cwd=cwd or REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"vidrec {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("tiny_ucf")
    return make_dataset(root, ["Alpha", "Beta"], groups=25, clips=1, frames=24)


def tiny_config(path: Path, root: Path, models: dict | None = None, epochs: int = 2, **extra) -> Path:
    """The repository's config with a `tiny` dataset at `root` (8x32x32 clips, narrow models)."""
    import yaml

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["clips"]["tiny8"] = {"frames": 8, "crop": 192, "size": 32, "sampling": "uniform", "clips_per_video": 2}
    cfg["datasets"]["tiny"] = {
        "root": str(root), "splits": [1], "clip": "tiny8",
        "models": models or {"p3d63": {"arch": "p3d63", "protocol": "thesis", "args": {"base_width": 8}}},
        "protocol_overrides": {"thesis": {"epochs": epochs, "batch_size": 4, "train_clips": "all"}},
    }
    cfg["dataset"] = "tiny"
    for key, value in extra.items():
        cfg[key] = value
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def tiny_run(tiny_dataset, tmp_path_factory) -> dict:
    """Manifest, shards and the split-1 index of the tiny dataset, built through the CLI."""
    videos, lists = tiny_dataset
    work = tmp_path_factory.mktemp("tiny_run")
    cfg = tiny_config(work / "config.yaml", videos.parent)
    common = ["--config", str(cfg), "--quiet", "--set", "decode.videos_per_shard=2"]  # 50 videos: 25 shards
    run_cli(*common, "manifest", "--out-dir", str(work / "manifest"))
    shards = []
    for b in range(25):
        out = work / "shards" / f"b{b:03d}.h5"
        run_cli(*common, "decode", "--manifest", str(work / "manifest/videos.csv"), "--bucket", str(b),
                "--clip", "tiny8", "--out", str(out), "--stats", str(out.with_suffix(".json")))
        shards.append(str(out))
    index = work / "split1" / "index.csv"
    run_cli(*common, "index", "--splits", str(work / "manifest/splits.csv"), "--split", "1",
            "--shards", *shards, "--out", str(index))
    return {"work": work, "config": cfg, "index": index, "classes": work / "manifest/classes.txt",
            "common": common}


# ----------------------------------------------------------------------------- miniature workflow runs
def snakemake_argv(workdir: Path, *args: str) -> list[str]:
    """`snakemake -s REPO/Snakefile -d WORKDIR --cores 2 ...` from this virtualenv."""
    return [str(Path(sys.executable).parent / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
            "--cores", "2", *args]


def snakemake_env() -> dict:
    """The environment for a snakemake subprocess: this virtualenv's bin first (rules call `vidrec`)."""
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "OMP_NUM_THREADS": "1"}


def kill_test_config() -> dict:
    """tests/test_workflow.py's miniature workflow (3 classes, 21 groups, 8x32x32 clips, 21 shards) with one
    base-width-8 model trained for 2 epochs: the uninterrupted reference of tests/test_kill.py."""
    from test_workflow import mini_config

    cfg = mini_config()
    mini = cfg["datasets"]["mini"]
    mini["models"] = {"p3d63": mini["models"]["p3d63"]}
    mini["protocol_overrides"]["thesis"]["epochs"] = 2
    cfg["evaluate"]["speed_batches"] = 1
    cfg.setdefault("train", {})["deterministic"] = True  # enforced, so train.json must say so
    cfg["decode"]["videos_per_shard"] = 3  # 63 videos: 21 decode jobs to kill in the middle of
    if isinstance(cfg.get("experiments"), dict):
        cfg["experiments"]["in_report"] = False  # the comparison report only: no experiment runs
    return cfg


@pytest.fixture(scope="session")
def mini_reference(tmp_path_factory) -> Path:
    """One uninterrupted `snakemake report` of kill_test_config(), shared by the kill and
    determinism tests (copy it with shutil.copytree before changing anything)."""
    import yaml

    wd = tmp_path_factory.mktemp("mini_reference")
    (wd / "config.yaml").write_text(yaml.safe_dump(kill_test_config()))
    proc = subprocess.run(snakemake_argv(wd, "report"), cwd=wd, capture_output=True, text=True,
                          env=snakemake_env(), timeout=900)
    assert proc.returncode == 0, f"reference run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return wd
