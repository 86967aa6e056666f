"""Configuration and environment errors: each names the key or path and the fix, before any job."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from conftest import REPO
from vidrec.config import ConfigError, load_config
from vidrec.runs import run_settings
from vidrec.preflight import check_environment


def _with(tmp_path, *overrides: str) -> dict:
    return load_config(REPO / "config.yaml", list(overrides))


@pytest.mark.parametrize("override, key", [
    ("datasets.demo.models.p3d63.arch=resnet9000", "datasets.demo.models.p3d63.arch"),
    ("datasets.demo.splits=[4]", "datasets.demo.splits[0]"),
    ("protocols.thesis.epochs=-3", "protocols.thesis.epochs"),
    ("clips.demo16.crop=300", "clips.demo16.crop"),
    ("dataset=nope", "'dataset'"),
    ("decode.on_bad_video=ignore", "decode.on_bad_video"),
    ("datasets.demo.models.p3d63.protocol=fast", "datasets.demo.models.p3d63.protocol"),
    ("train.typo=1", "train"),
])
def test_bad_values_name_their_key(tmp_path, override, key):
    with pytest.raises(ConfigError) as err:
        _with(tmp_path, override)
    assert key in str(err.value)


def test_defaults_come_from_the_schema(tmp_path):
    raw = yaml.safe_load((REPO / "config.yaml").read_text())
    raw.pop("decode")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    cfg = load_config(path)
    assert cfg["decode"] == {"on_bad_video": "fail", "threads": 1, "workers": 1}
    assert cfg["datasets"]["ucf101"]["frame_size"] == [320, 240]


def test_run_settings_merge_protocol_overrides():
    cfg = load_config(None, ["datasets.demo.protocol_overrides.thesis={epochs: 3, optimizer: {lr: 0.5}}"])
    run = run_settings(cfg, "p3d63")
    assert run.protocol["optimizer"] == {"name": "RMSprop", "lr": 0.5}  # merged, not replaced
    assert run.protocol["epochs"] == 3 and run.protocol["batch_size"] == 48
    assert run.model_args["dropout"] == 0.5 and run.clip["frames"] == 16


def test_exponent_floats_without_a_dot_are_numbers(tmp_path):
    """YAML 1.1 (PyYAML, Snakemake) reads `1e-4` as a string; the config reads it as the number users mean."""
    cfg = _with(tmp_path, "protocols.thesis.optimizer.lr=1e-4", "protocols.tran.optimizer.weight_decay=5E-4")
    assert cfg["protocols"]["thesis"]["optimizer"]["lr"] == pytest.approx(1e-4)
    assert cfg["protocols"]["tran"]["optimizer"]["weight_decay"] == pytest.approx(5e-4)
    assert cfg["datasets"]["demo"]["models"]["p3d63"]["arch"] == "p3d63"  # names stay names


def test_missing_root_unwritable_results_and_no_ffmpeg(tmp_path, monkeypatch):
    cfg = load_config(REPO / "config.yaml", ["dataset=ucf101", f"datasets.ucf101.root={tmp_path}/nowhere"])
    with pytest.raises(ConfigError, match=r"datasets.ucf101.root.*nowhere/UCF-101 not found"):
        check_environment(cfg, tmp_path)
    demo = load_config()
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as root every path is writable
    with pytest.raises(ConfigError, match="no write permission"):
        check_environment(demo, tmp_path)
    monkeypatch.undo()
    import shutil

    import imageio_ffmpeg

    from vidrec.data import video

    video.ffmpeg_exe.cache_clear()
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", lambda: (_ for _ in ()).throw(RuntimeError("none")))
    try:
        with pytest.raises(ConfigError, match="no ffmpeg found"):
            check_environment(demo, tmp_path)
    finally:
        monkeypatch.undo()
        video.ffmpeg_exe.cache_clear()


def test_validation_does_not_import_torch():
    """Every snakemake call validates the config (a no-op rerun included); torch would add ~4 s."""
    code = ("import sys; from vidrec.config import load_config; cfg = load_config(None); "
            "assert 'torch' not in sys.modules, 'config validation imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
