"""Disk space: checked before the work (shards, checkpoints), and a full disk mid-write is a named error.

The full-disk tests mount a small tmpfs (root only: CI runs as root) and fill it to a chosen number
of free bytes with a filler file; deleting the filler is "freeing space", after which the same
command must complete. Each writer must end with exit code 2 and one line naming the file (never a
crash: libhdf5 used to segfault, exit 139, closing a shard on a full disk), remove its partial file
and leave earlier artifacts as they were.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import h5py
import pytest
import yaml

from support import TINY_VIDEOS_PER_SHARD, mini_config, run_cli, snakemake_argv, snakemake_env
from vidrec.data.shards import check_shard
from vidrec.data.video import ClipSpec
from vidrec.data.diskspace import HDF5_BYTES_PER_SHARD, Need, check_free_space, shard_bytes, training_bytes
from vidrec.core.errors import DiskSpaceError

NO_CHECK = ["--set", "disk.check=false"]


# ----------------------------------------------------------------------------- helpers
@pytest.fixture
def tmpfs(tmp_path):
    """A 16 MB tmpfs; skipped, with the reason, where mounting is not permitted."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(mount: Path, leave: int) -> Path:
    """Fill the file system of `mount` until about `leave` bytes are free; return the filler file."""
    filler = mount / "filler"
    size = shutil.disk_usage(mount).free - leave
    with open(filler, "wb") as fh:
        fh.truncate(0)
        for _ in range(size // 2**20):
            fh.write(b"\0" * 2**20)
        fh.write(b"\0" * (size % 2**20))
    assert abs(shutil.disk_usage(mount).free - leave) <= 8192
    return filler


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


def assert_named_disk_error(proc: subprocess.CompletedProcess, path: Path) -> None:
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, (proc.returncode, text[-3000:])
    assert "No space left on device (ENOSPC)" in text and str(path) in text, text[-3000:]
    assert "Traceback" not in text and "Segmentation fault" not in text, text[-3000:]


# ----------------------------------------------------------------------------- the figures
def test_shard_bytes_bound_the_shards_write_shard_wrote(tiny_run):
    """The formula is an upper bound of every real shard, by at most its fixed HDF5 allowance + 1%."""
    import pandas as pd

    cfg = yaml.safe_load(Path(tiny_run["config"]).read_text())
    spec = ClipSpec.from_config(cfg["clips"]["tiny8"])
    videos = pd.read_csv(tiny_run["work"] / "manifest" / "videos.csv")
    for shard in sorted((tiny_run["work"] / "shards").glob("b*.h5")):
        with h5py.File(shard, "r") as f:
            n_videos = int(f.attrs["n_videos"])
        assert n_videos == (videos["video_id"] // TINY_VIDEOS_PER_SHARD == int(shard.stem[1:])).sum()
        actual, planned = shard.stat().st_size, shard_bytes(spec, n_videos)
        assert actual <= planned <= 1.01 * actual + HDF5_BYTES_PER_SHARD, (shard.name, actual, planned)


def test_a_shortfall_names_needed_free_folder_and_the_fix(tmp_path, monkeypatch):
    free = 10**9
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(2 * free, free, free))
    check_free_space([Need(tmp_path / "a.h5", free // 2, "clip spec x")], "FIX")  # fits: silent
    with pytest.raises(DiskSpaceError) as err:
        check_free_space([Need(tmp_path / "a.h5", free // 2, "clip spec x"),
                          Need(tmp_path / "sub" / "b.h5", 2 * free, "clip spec y")], "FIX")
    text = str(err.value)
    assert "2.5 GB needed, 1.0 GB free in " + str(tmp_path) in text
    assert "clip spec y: 2.0 GB; clip spec x: 500.0 MB" in text and "FIX" in text
    assert "disk='{check: false}'" in text


def test_training_bytes_hold_two_checkpoints_of_weights_and_momentum():
    assert training_bytes(1000) == 2 * 2 * 1000 * 4
    assert training_bytes(1000, optimizer_states=2) == 2 * 3 * 1000 * 4


# ----------------------------------------------------------------------------- before the work
def test_snakemake_stops_before_the_first_job_when_the_shards_do_not_fit(tmpfs):

    (tmpfs / "config.yaml").write_text(yaml.safe_dump(mini_config()))
    fill(tmpfs, 64 * 1024)
    proc = subprocess.run(snakemake_argv(tmpfs, "shards"), cwd=tmpfs, capture_output=True, text=True,
                          env=snakemake_env(), timeout=300)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "not enough disk space" in text, text[-3000:]
    assert "clip spec mini8" in text and "clips.mini8" in text and "p3d63, r3d_18" in text, text[-3000:]
    assert f"free in {tmpfs}" in text and "Nothing was written" in text
    assert sorted(p.name for p in tmpfs.iterdir()) == [".snakemake", "config.yaml", "filler"]


def test_decode_checks_its_shard_before_decoding(tiny_run, tmpfs):
    out = tmpfs / "g01.h5"
    fill(tmpfs, 16 * 1024)
    proc = run_cli(*tiny_run["common"], "decode", "--manifest", str(tiny_run["work"] / "manifest/videos.csv"),
                   "--bucket", "0", "--clip", "tiny8", "--out", str(out), "--stats", str(tmpfs / "g01.json"),
                   check=False)
    assert proc.returncode == 2 and "not enough disk space" in proc.stderr and str(out) in proc.stderr, proc.stderr
    assert "clips.tiny8.clips_per_video" in proc.stderr
    assert sorted(p.name for p in tmpfs.iterdir()) == ["filler"]


# ----------------------------------------------------------------------------- a full disk mid-write
def test_decode_on_a_full_disk_is_a_named_error_and_the_rerun_completes(tiny_run, tmpfs):
    out, stats = tmpfs / "g01.h5", tmpfs / "g01.json"
    args = [*tiny_run["common"], *NO_CHECK, "decode", "--manifest", str(tiny_run["work"] / "manifest/videos.csv"),
            "--bucket", "0", "--clip", "tiny8", "--out", str(out), "--stats", str(stats)]
    filler = fill(tmpfs, 16 * 1024)
    assert_named_disk_error(run_cli(*args, check=False), out)
    assert sorted(p.name for p in tmpfs.iterdir()) == ["filler"]
    filler.unlink()
    run_cli(*args)
    assert check_shard(out)["n_videos"] == TINY_VIDEOS_PER_SHARD and stats.exists()


@pytest.mark.slow
def test_training_on_a_full_disk_keeps_the_last_checkpoint_and_resumes(tiny_run, tmpfs):
    """Room for epoch 1's checkpoint, not epoch 2's: the error names checkpoint.pt, epoch 1's stays,
    and the rerun after freeing space resumes after epoch 1 and finishes."""
    import torch

    from vidrec.models import create_model

    out = tmpfs / "run"
    cfg = yaml.safe_load(Path(tiny_run["config"]).read_text())
    run = cfg["datasets"]["tiny"]["models"]["p3d63"]
    model = create_model(run["arch"], num_classes=2, clip_shape=(3, 8, 32, 32), **run["args"])
    checkpoint = 2 * 4 * sum(p.numel() for p in model.parameters()) + 64 * 1024  # weights and momentum
    args = [*tiny_run["common"], *NO_CHECK, "train", "--model", "p3d63", "--index", str(tiny_run["index"]),
            "--classes", str(tiny_run["classes"]), "--out-dir", str(out), "--threads", "1"]
    out.mkdir()
    filler = fill(tmpfs, int(1.5 * checkpoint))
    assert_named_disk_error(run_cli(*args, check=False), out / "checkpoint.pt")
    assert leftovers(tmpfs) == [] and not (out / "model.pt").exists()
    assert torch.load(out / "checkpoint.pt", weights_only=False)["epoch"] == 0  # epoch 1's, whole
    filler.unlink()
    proc = run_cli(*args)
    assert "resumed from" in proc.stderr and "after epoch 1" in proc.stderr, proc.stderr[-2000:]
    assert (out / "model.pt").exists() and len((out / "metrics.csv").read_text().splitlines()) == 3


def test_training_checks_its_checkpoints_before_the_first_epoch(tiny_run, tmpfs):
    out = tmpfs / "run"
    fill(tmpfs, 16 * 1024)
    proc = run_cli(*tiny_run["common"], "train", "--model", "p3d63", "--index", str(tiny_run["index"]),
                   "--classes", str(tiny_run["classes"]), "--out-dir", str(out), "--threads", "1", check=False)
    assert proc.returncode == 2 and "not enough disk space" in proc.stderr and "checkpoints of p3d63" in proc.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.slow
def test_report_on_a_full_disk_is_a_named_error_and_the_rerun_completes(tmp_path, tmpfs):
    """The report of fixture results (tests/support/report_results.py: no training needed), rendered
    once on the test's disk as the reference, then on a full tmpfs, then again after space is freed."""
    from support.report_results import make_results

    cfg, _ = make_results(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))

    def report(out: Path, check: bool = True) -> subprocess.CompletedProcess:
        return run_cli("--config", str(tmp_path / "config.yaml"), "--quiet", "report", "--root", str(tmp_path),
                       "--out-dir", str(out), check=check)

    reference, out = tmp_path / "reference", tmpfs / "report"
    report(reference)
    filler = fill(tmpfs, 48 * 1024)
    proc = report(out, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "No space left on device (ENOSPC)" in text and str(out) in text, text[-3000:]
    assert "Traceback" not in text and leftovers(tmpfs) == []
    filler.unlink()
    report(out)
    assert (out / "index.html").read_text().rstrip().endswith("</html>")
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in reference.iterdir())
    for table in reference.glob("*.csv"):
        assert (out / table.name).read_bytes() == table.read_bytes(), table.name


def test_torch_save_writes_one_buffer_the_same_bytes_under_any_name(tmp_path):
    """Checkpoints are serialised in memory and written with one plain write (a full disk is then an
    OSError naming the file): the same state gives the same bytes whatever the file (and temporary)
    name, and loads back equal."""
    import torch

    from vidrec.core.io import torch_save

    state = {"w": torch.arange(10.0), "n": 3}
    torch_save(state, tmp_path / "a.pt")
    torch_save(state, tmp_path / "sub" / "model.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub" / "model.pt").read_bytes()
    loaded = torch.load(tmp_path / "a.pt", weights_only=True)
    assert torch.equal(loaded["w"], state["w"]) and loaded["n"] == 3


def test_disk_check_is_a_schema_setting():
    from vidrec.plan.config import load_config

    assert load_config()["disk"] == {"check": True}
    assert load_config(overrides=["disk.check=false"])["disk"] == {"check": False}


def test_readme_disk_table_is_the_formula_on_the_ucf101_configuration():
    """README's 'Check the disk' table: each clip spec's shards for 13,320 videos, and its runs."""
    from support import REPO
    from vidrec.plan.config import load_config
    from vidrec.core.io import format_bytes
    from vidrec.plan.runs import resolve_runs

    readme = (REPO / "README.md").read_text()
    cfg = load_config(overrides=["dataset=ucf101"])
    clip_runs: dict[str, list[str]] = {}
    for name in cfg["datasets"]["ucf101"]["models"]:
        clip_runs.setdefault(resolve_runs(cfg)[name].clip_name, []).append(name)
    for clip, runs in clip_runs.items():
        size = format_bytes(shard_bytes(ClipSpec.from_config(cfg["clips"][clip]), 13320))
        assert f"| {clip} |" in readme and f"| {', '.join(runs)} | {size} |" in readme, (clip, runs, size)
    experiments = [format_bytes(shard_bytes(ClipSpec.from_config(cfg["clips"][c]), 13320)) for c in ("xp8", "xp32")]
    assert f"| {', '.join(experiments)} |" in readme
