"""Configuration and environment errors: each names the key or path and the fix, before any job."""
from __future__ import annotations

import os

import pytest
import yaml

from support import REPO
from vidrec.plan.config import ConfigError, load_config
from vidrec.plan.runs import resolve_runs, run_settings
from vidrec.data.preflight import check_environment


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
    ("report.primary_comparison.pair=[p3d63,p3d199]", "report.primary_comparison.pair"),  # not a demo run
    ("report.primary_comparison.pair=[p3d63]", "report.primary_comparison.pair"),
    ("report.primary_comparison.level=frame", "report.primary_comparison.level"),
])
def test_bad_values_name_their_key(tmp_path, override, key):
    with pytest.raises(ConfigError) as err:
        _with(tmp_path, override)
    assert key in str(err.value)


def test_defaults_come_from_the_schema(tmp_path):
    assert "decode" not in yaml.safe_load((REPO / "config.yaml").read_text())
    cfg = load_config(REPO / "config.yaml")
    assert cfg["decode"] == {"on_bad_video": "fail", "threads": 1, "workers": 1, "videos_per_shard": 1000}
    assert cfg["datasets"]["ucf101"]["frame_size"] == [320, 240]
    assert cfg["report"] == {"primary_comparison": {"pair": None, "level": "clip"}}


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


def test_run_settings_are_frozen_and_resolved_once():
    import dataclasses

    run = run_settings(load_config(), "p3d63")
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.arch = "r3d_18"
    with pytest.raises(TypeError, match="read-only"):
        run.protocol["optimizer"]["lr"] = 1.0
    assert run.seeds == (0,) and run.initialisation == "from scratch"
    # a run's identity (rerun trigger, checkpoint match) leaves out the seed list and the note
    more = run_settings(load_config(None, ["train.seeds=[0, 1, 2]",
                                           "datasets.demo.models.p3d63.note=why"]), "p3d63")
    assert more.seeds == (0, 1, 2) and more.note == "why" and more.identity() == run.identity()
    assert run_settings(load_config(None, ["datasets.demo.models.p3d63.seeds=[4]"]), "p3d63").seeds == (4,)


def test_flips_are_switched_off_where_the_dataset_declares_them_unsafe():
    cfg = load_config(None, ["datasets.demo.models.r2plus1d_18={arch: r2plus1d_18, protocol: tran, "
                             "protocol_overrides: {augment: {crop: 48}}}"])
    run = run_settings(cfg, "r2plus1d_18")
    assert cfg["protocols"]["tran"]["augment"]["hflip"] is True and run.augment["hflip"] is False
    assert "horizontal flips off" in run.adjustments[0] and "hflip_safe: false" in run.adjustments[0]
    ucf = run_settings(load_config(None, ["dataset=ucf101"]), "r2plus1d_18")
    assert ucf.augment["hflip"] is True and not ucf.adjustments


def test_ucf101_configuration_is_the_papers_protocols():
    """The thesis pair at the epochs its training times imply, the controls, R(2+1)D-18 on Tran et al.'s clips;
    the report's protocol text states each run's epochs with the configuration's reason."""
    from vidrec.report.run_text import protocol_text

    runs = resolve_runs(load_config(None, ["dataset=ucf101"]))
    assert {n: r.epochs for n, r in runs.items() if not n.startswith("x_")} == {
        "convlstm_c2d63": 14, "p3d199": 71, "p3d63": 14, "frame_resnet50": 14, "r2plus1d_18": 45}
    assert runs["r2plus1d_18"].clip_name == "tran16" and runs["r2plus1d_18"].protocol["train_clips"] == "random"
    text = protocol_text(runs["p3d199"])
    assert "71 epochs (the thesis's 15 h 25 min at about 13 min per epoch)" in text
    assert "video level equals clip level" in text
    assert "video level equals clip level" not in protocol_text(runs["r2plus1d_18"])
    assert protocol_text(runs["r2plus1d_18"]).startswith("tran: 45 epochs (our choice")  # no override of tran


def test_the_demo_protocol_labels_show_their_overrides():
    """The demo tunes the thesis protocol (dataset: epochs, batch, lr; runs: width, zero_init_residual):
    the label says so instead of naming the thesis's protocol alone (issue 28, part 5)."""
    from vidrec.report.run_text import protocol_text

    cfg = load_config(None, ["dataset=demo"])
    runs = resolve_runs(cfg)
    assert protocol_text(runs["convlstm_c2d63"]).startswith(
        "thesis, overridden: epochs 6, batch 16, lr 0.001, base_width 16, zero_init_residual on: 6 epochs")
    assert protocol_text(runs["frame_resnet50"]).startswith(  # the run's epochs over the dataset's
        "thesis, overridden: epochs 4, batch 16, lr 0.001, base_width 8, zero_init_residual on: 4 epochs")
    cfg["datasets"]["demo"]["protocol_overrides"] = {}
    cfg["datasets"]["demo"]["models"]["p3d63"]["args"] = {}
    assert protocol_text(resolve_runs(cfg)["p3d63"]).startswith("thesis: 15 epochs")
    assert "overrides" not in runs["p3d63"].identity()  # a label: the protocol itself holds the values


# ----------------------------------------------------------------------------- one owner per default
def _schema_defaults() -> dict[str, list]:
    """Every property name of the schema that has a default -> the defaults it has (a name can recur)."""
    from vidrec.plan.config import SCHEMA_PATH

    found: dict[str, list] = {}

    def walk(node) -> None:
        if isinstance(node, dict):
            for name, sub in (node.get("properties") or {}).items():
                if isinstance(sub, dict) and "default" in sub:
                    found.setdefault(name, []).append(sub["default"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(yaml.safe_load(SCHEMA_PATH.read_text()))
    return found


def test_config_yaml_restates_no_schema_default():
    """config.yaml holds what differs from the schema's defaults (the schema owns each default once)."""
    from vidrec.plan.config import SCHEMA_PATH

    schema = yaml.safe_load(SCHEMA_PATH.read_text())
    restated = []

    def walk(node, sch, path) -> None:
        if not isinstance(node, dict) or not isinstance(sch, dict):
            return
        if "$ref" in sch:
            sch = schema["definitions"][sch["$ref"].rsplit("/", 1)[-1]]
        for key, value in node.items():
            sub = (sch.get("properties") or {}).get(key, sch.get("additionalProperties"))
            if isinstance(sub, dict) and "default" in sub and sub["default"] == value:
                restated.append(f"{'.'.join([*path, key])}: {value!r}")
            walk(value, sub, [*path, key])

    walk(yaml.safe_load((REPO / "config.yaml").read_text()), schema, [])
    assert restated == [], "config.yaml restates the schema's defaults: " + "; ".join(restated)


def test_code_restates_no_schema_default():
    """No `settings.get("key", <the schema's default>)` in the library or rules: a validated config has
    every default filled in, so such a fallback is a second, silently diverging owner of the default."""
    import ast

    defaults = _schema_defaults()
    restated = []
    files = [*sorted((REPO / "vidrec").rglob("*.py")), *sorted((REPO / "rules").glob("*.smk"))]
    for path in files:
        if path.suffix == ".smk":
            continue  # Snakemake syntax; rules only call library code
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                    and len(node.args) == 2 and isinstance(node.args[0], ast.Constant)
                    and node.args[0].value in defaults):
                try:
                    fallback = ast.literal_eval(node.args[1])
                except ValueError:
                    continue  # not a literal: not a restated default
                if fallback in defaults[node.args[0].value]:
                    restated.append(f"{path.relative_to(REPO)}:{node.lineno} .get({node.args[0].value!r}, {fallback!r})")
    assert restated == [], "code restates the schema's defaults: " + "; ".join(restated)
