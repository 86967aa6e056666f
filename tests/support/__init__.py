"""The tests' one set of helpers: the repository's config and the builders of the test configs,
one Snakemake runner, the CLI runner, AVI writers with frame-index patterns, tiny UCF101-shaped trees
and model files (report_results.py: the report tests' fixture results). Test modules import from here
(never from one another); conftest.py holds fixtures."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[2]  # tests/support/__init__.py -> the checkout
BIN = Path(sys.executable).parent  # this virtualenv: snakemake, torchrun, vidrec
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


def free_port() -> int:
    """A TCP port free on this host now (the OS picks it): for daemons and rendezvous a test starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- configs
def repo_config() -> dict:
    """A fresh copy of the repository's config.yaml, to edit into a test's config."""
    return yaml.safe_load((REPO / "config.yaml").read_text())


def mini_config(**over) -> dict:
    """The miniature synthetic workflow (3 classes x 21 groups, 8x32x32 clips, two base-width-8 models,
    one epoch, 3 shards); top-level keys in `over` replace the config's."""
    cfg = repo_config()
    cfg["dataset"] = "mini"
    cfg["clips"]["mini8"] = {"frames": 8, "crop": 192, "size": 32, "sampling": "uniform", "clips_per_video": 2}
    cfg["datasets"]["mini"] = {
        "root": "data/mini",
        "synthetic": {"classes": 3, "groups": 21, "clips_per_group": 1, "min_seconds": 1.0,
                      "max_seconds": 1.4, "seed": 0},
        "splits": [1], "clip": "mini8",
        "models": {"p3d63": {"arch": "p3d63", "protocol": "thesis", "args": {"base_width": 8}},
                   "r3d_18": {"arch": "r3d_18", "protocol": "tran", "args": {"base_width": 8}}},
        "protocol_overrides": {"thesis": {"epochs": 1, "batch_size": 8},
                               "tran": {"epochs": 1, "batch_size": 8, "augment": {"crop": 28, "hflip": False}}},
    }
    cfg["decode"] = {"videos_per_shard": 21}  # 63 videos: 3 shards
    cfg["evaluate"] = {"speed_batches": 1, "end_to_end_videos": 2}  # timings on a CPU budget, every path run
    for k, v in over.items():
        cfg[k] = v
    return cfg


TINY_VIDEOS_PER_SHARD = 10  # conftest's tiny_run: 50 videos in 5 shards, so reads span several files


def tiny_config(path: Path, root: Path, models: dict | None = None, epochs: int = 2, **extra) -> Path:
    """The repository's config with a `tiny` dataset at `root` (8x32x32 clips, narrow models)."""
    cfg = repo_config()
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


# ----------------------------------------------------------------------------- Snakemake
def snakemake_argv(workdir: Path, *args: str, cores: int | None = 2) -> list[str]:
    """`snakemake -s REPO/Snakefile -d WORKDIR --cores 2 ...` from this virtualenv (cores=None: leave
    --cores to a profile)."""
    return [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
            *(["--cores", str(cores)] if cores else []), *args]


def snakemake_env(**extra: str) -> dict:
    """The environment for a snakemake subprocess: this virtualenv's bin first (rules call `vidrec`)."""
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "OMP_NUM_THREADS": "1",
            **extra}


def run_snakemake(workdir: Path, *args: str, check: bool = True, cores: int | None = 2, env: dict | None = None,
                  timeout: float = 900) -> subprocess.CompletedProcess:
    """Run Snakemake on the repository's Snakefile in `workdir` (its config.yaml), as a user would;
    with check, a failure raises with the tail of its output."""
    proc = subprocess.run(snakemake_argv(workdir, *args, cores=cores), cwd=workdir, capture_output=True, text=True,
                          env=env or snakemake_env(), timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


def workflow_run(folder: Path, cfg: dict, *targets: str) -> Path:
    """`folder` with `cfg` as its config.yaml, after a successful `snakemake TARGETS` there."""
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    run_snakemake(folder, *targets)
    return folder


def copy_run(run: Path, dst: Path) -> Path:
    """A copy of a workflow's working directory with its mtimes and Snakemake's metadata, so that
    Snakemake sees the copy as up to date as the original."""
    import shutil

    shutil.copytree(run, dst, symlinks=True)
    return dst


def reference_config() -> dict:
    """`mini_config`'s miniature workflow (3 classes, 21 groups, 8x32x32 clips, 7 shards) with one
    base-width-8 model trained for 2 epochs on all 3 splits: conftest.mini_reference's run, the
    uninterrupted reference of tests/test_kill.py and (copied) the workdir of tests/test_reruns.py and
    tests/test_workflow.py."""
    cfg = mini_config()
    mini = cfg["datasets"]["mini"]
    mini["models"] = {"p3d63": mini["models"]["p3d63"]}
    mini["splits"] = [1, 2, 3]
    mini["protocol_overrides"]["thesis"]["epochs"] = 2
    cfg.setdefault("train", {})["deterministic"] = True  # enforced, so train.json must say so
    cfg["decode"] = {"videos_per_shard": 9}  # 63 videos: 7 decode jobs to kill in the middle of
    if isinstance(cfg.get("experiments"), dict):
        cfg["experiments"]["in_report"] = False  # the comparison report only: no experiment runs
    return cfg


# ----------------------------------------------------------------------------- model files
PREDICT_CLASSES = ["Alpha", "Beta", "Gamma"]
# 8 frames, 2 phase-shifted clips (even: the centre clip is clip 1), 40 px then a centre crop of 32
# after decoding, as a model trained with augment.crop would have
PREDICT_CLIP = {"frames": 8, "crop": 192, "size": 40, "sampling": "uniform", "clips_per_video": 2, "stride": 1}
PREDICT_CROP = 32


def make_model_file(path: Path, arch: str = "p3d63", clip: dict = PREDICT_CLIP, crop: int | None = PREDICT_CROP,
                    classes=PREDICT_CLASSES, base_width: int = 4, seed: int = 0) -> Path:
    """A model.pt in the layout `Trainer.finish` writes, with random weights."""
    import torch

    from vidrec.models import create_model

    torch.manual_seed(seed)
    side = crop or clip["size"]
    clip_shape = [3, clip["frames"], side, side]
    args = {"base_width": base_width, "dropout": 0.5}
    model = create_model(arch, num_classes=len(classes), clip_shape=clip_shape, **args)
    with torch.no_grad():  # materialise lazy parameters; make BatchNorm statistics non-trivial
        model.train()(torch.randn(2, *clip_shape))
    torch.save({"arch": arch, "model_args": args, "num_classes": len(classes), "class_names": list(classes),
                "clip": dict(clip), "clip_name": "test", "clip_shape": clip_shape,
                "normalize": {"mean": [0.43, 0.40, 0.37], "std": [0.23, 0.22, 0.22]},
                "augment": {"crop": crop, "hflip": False}, "state_dict": model.state_dict(),
                "run": {"dataset": "test", "model": arch, "protocol_name": "thesis"}}, path)
    return path
