"""`vidrec export`: TorchScript and ONNX files give the PyTorch model's outputs on a fixed clip."""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from support import PREDICT_CLASSES, make_model_file
from vidrec.cli import main
from vidrec.inference import export as ex
from vidrec.inference.export import ExportError, export_model, exported_metadata, fixed_clip, load_exported
from vidrec.models.convlstm import ConvLSTM
from vidrec.models.model_file import build_model_from_file

# short clips keep the unrolled ConvLSTM small; the two thesis families, peepholes included
CLIP = {"frames": 4, "crop": 192, "size": 32, "sampling": "uniform", "clips_per_video": 1, "stride": 1}
ARCHS = ["p3d63", "convlstm_c2d63"]


@pytest.fixture(scope="module", params=ARCHS)
def model_file(request, tmp_path_factory):
    torch.set_num_threads(1)
    return make_model_file(tmp_path_factory.mktemp(request.param) / "model.pt", arch=request.param,
                           clip=CLIP, crop=None, base_width=4)


def _inputs(model_file) -> tuple[list[np.ndarray], torch.nn.Module]:
    """A fixed random clip (batch 1), and a decoded, normalised clip of a generated video as
    `vidrec predict` feeds the model (batch 3): batch sizes other than the traced one."""
    from support import index_video
    from vidrec.data.video import decode_clips
    from vidrec.inference.predict import Predictor

    p = Predictor(model_file, device="cpu")
    video = index_video(model_file.parent / "v.avi", 30)
    real = p.to_input(decode_clips(video, p.spec).clips).numpy()
    return [fixed_clip(p.clip_shape, batch=1, seed=5).numpy(), np.concatenate([real] * 3)], p.model


def _check_equal(model_file, out, fmt):
    run = load_exported(out, fmt)
    inputs, model = _inputs(model_file)
    for x in inputs:
        with torch.no_grad():
            ref = model(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(run(x), ref, atol=1e-4, rtol=1e-4)
    meta = exported_metadata(out)
    assert meta["class_names"] == PREDICT_CLASSES and meta["clip_shape"] == [3, 4, 32, 32]
    assert meta["clip"]["sampling"] == "uniform" and meta["format"] == fmt


def test_torchscript_equals_pytorch(model_file, tmp_path):
    info = export_model(model_file, "torchscript", tmp_path / "m.ts.pt")
    assert info["checked"] and info["max_abs_diff"] <= info["tolerance"] <= 1e-3
    _check_equal(model_file, tmp_path / "m.ts.pt", "torchscript")


def test_onnx_equals_onnxruntime(model_file, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    info = export_model(model_file, "onnx", tmp_path / "m.onnx")
    assert info["checked"] and info["max_abs_diff"] <= info["tolerance"] <= 1e-3
    _check_equal(model_file, tmp_path / "m.onnx", "onnx")
    # the out-of-place ConvLSTM was only swapped in for the export
    model, _ = build_model_from_file(model_file)
    with ex.onnx_friendly(model):
        pass
    assert not any("forward" in vars(m) for m in model.modules() if isinstance(m, ConvLSTM))


def test_functional_convlstm_matches_the_fast_path():
    torch.manual_seed(0)
    for peephole in (False, True):
        layer = ConvLSTM(3, 5, peephole=peephole, spatial_size=(6, 7)).eval()
        if peephole:
            torch.nn.init.normal_(layer.cell.peephole_weight, std=0.5)
        x = torch.randn(2, 3, 5, 6, 7)
        with torch.no_grad():
            fast = layer(x)
            slow = ex.functional_convlstm(layer, x)
        torch.testing.assert_close(slow, fast, atol=1e-6, rtol=1e-5)


def test_a_wrong_export_is_caught(tmp_path, monkeypatch):
    model_file = make_model_file(tmp_path / "model.pt", arch="p3d63", clip=CLIP, crop=None, base_width=4)
    real = ex.load_exported
    monkeypatch.setattr(ex, "load_exported", lambda path, fmt=None: (lambda x: real(path, fmt)(x) + 1e-3))
    with pytest.raises(ExportError, match="differs from PyTorch"):
        export_model(model_file, "torchscript", tmp_path / "m.ts.pt")


def test_cli_export(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    model_file = make_model_file(tmp_path / "model.pt", arch="p3d63", clip=CLIP, crop=None, base_width=4)
    assert main(["export", "--model", str(model_file), "--format", "torchscript"]) == 0
    assert (tmp_path / "model.ts.pt").exists() and "max |exported - PyTorch|" in caplog.text
    assert main(["export", "--model", str(tmp_path / "absent.pt"), "--format", "torchscript"]) == 2


# ----------------------------------------------------------------------------- benchmarks/export_sweep.py
SWEEP = Path(__file__).resolve().parent.parent / "benchmarks" / "export_sweep.py"
TINY = ["--small-clip", "4x32x32", "--base-width", "4", "--no-full-size"]


def _sweep_module():
    spec = importlib.util.spec_from_file_location("export_sweep", SWEEP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_export_sweep_script(tmp_path):
    """The script as run from a checkout: one results file, every export checked and within tolerance.
    One model (torchvision's family); P3D-63 and ConvLSTM-C2D-63 go through the same export_model in
    this module's other tests."""
    pytest.importorskip("onnxruntime")
    out = tmp_path / "x.json"
    env = os.environ | {"OMP_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, str(SWEEP), "--models", "r3d_18", *TINY,
                           "--out", str(out)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    rows = data["tables"]["exports"]["rows"]
    assert {(r["model"], r["format"]) for r in rows} == {("r3d_18", f) for f in ex.FORMATS}
    for r in rows:
        assert r["passed"] and r["error"] is None and r["clip"] == "4x32x32" and r["file_mb"] > 0
        assert 0 <= r["max_abs_diff"] <= r["tolerance"] == pytest.approx(1e-4 + 1e-5 * r["max_abs_logit"])
    figures = {f["name"]: f for f in data["figures"]}
    assert figures["exports_passed"]["value"] == len(ex.FORMATS) and figures["exports_passed"]["met"]
    assert figures["models_passed"]["met"] and figures["worst_diff_over_tolerance"]["met"]
    assert data["git"]["commit"] and data["machine"]["cores"] >= 1 and data["machine"]["cpu"]
    assert data["parameters"]["atol"] == 1e-4 and data["parameters"]["full_size_models"] == []


def test_export_sweep_reports_a_difference_and_goes_on(tmp_path, monkeypatch, capsys):
    """A wrong export fails its row and the exit status, and the other exports are still tried."""
    pytest.importorskip("onnxruntime")
    sweep = _sweep_module()
    real = ex.load_exported

    def off_for_onnx(path, fmt=None):
        run = real(path, fmt)
        return (lambda x: run(x) + 1e-2) if fmt == "onnx" else run

    monkeypatch.setattr(ex, "load_exported", off_for_onnx)
    out = tmp_path / "x.json"
    assert sweep.main(["--models", "p3d63,r2d_18", *TINY, "--out", str(out)]) == 1
    rows = json.loads(out.read_text())["tables"]["exports"]["rows"]
    assert [(r["model"], r["format"], r["passed"]) for r in rows] == [
        ("p3d63", "torchscript", True), ("p3d63", "onnx", False),
        ("r2d_18", "torchscript", True), ("r2d_18", "onnx", False)]
    assert all("differs from PyTorch" in r["error"] for r in rows if not r["passed"])
    assert "failed: p3d63 4x32x32 onnx" in capsys.readouterr().err
