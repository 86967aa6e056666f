"""`vidrec export`: a trained model as TorchScript or ONNX, checked against PyTorch on a fixed clip.

Both formats are traced at the model's stored clip shape (C, T, H, W) with a free batch dimension:
the exported graph takes float clips already normalised (as `Predictor.to_input` makes them) and
returns logits. Python loops over time are unrolled while tracing, so an exported model accepts
only the clip length (and, for ConvLSTM peepholes, the plane size) it was exported at.

TorchScript traces the model as it runs (`torch.jit.trace`). ONNX uses the TorchScript-based
exporter (`torch.onnx.export(dynamo=False)`, seconds per model; the dynamo exporter took minutes
for the unrolled ConvLSTM here). The ConvLSTM layer's fast path writes into preallocated buffers
in place, which that exporter mis-translates, so for ONNX every ConvLSTM runs the same recurrence
out of place (`functional_convlstm`, equal to the fast path to float rounding) while exporting.
The metadata needed to use the file (class names, clip spec, normalisation, crop) travels inside
it: TorchScript `_extra_files["vidrec.json"]`, ONNX `metadata_props["vidrec"]`.
"""
from __future__ import annotations

import contextlib
import json
import logging
import types
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from vidrec.core.errors import VidrecError
from vidrec.core.io import atomic_path
from vidrec.models.convlstm import ConvLSTM
from vidrec.models.model_file import build_model_from_file

log = logging.getLogger("vidrec.export")

FORMATS = ("torchscript", "onnx")
SUFFIX = {"torchscript": ".ts.pt", "onnx": ".onnx"}
ONNX_OPSET = 17


class ExportError(VidrecError):
    """The model cannot be exported, or the export does not reproduce the PyTorch outputs."""


# ----------------------------------------------------------------------------- ConvLSTM, out of place
def functional_convlstm(self: ConvLSTM, x: torch.Tensor) -> torch.Tensor:
    """ConvLSTM.forward without in-place writes: the equations of `vidrec.models.convlstm`, step by step."""
    n, cin, t, h, w = x.shape
    cell = self.cell
    peep = cell.peephole_for(x)
    ch = cell.hidden_channels
    xf = x.permute(0, 2, 1, 3, 4).reshape(n * t, cin, h, w)
    gx = F.conv2d(xf, cell.conv_x.weight, cell.conv_x.bias, padding=cell.padding).view(n, t, 4 * ch, h, w)
    hs: list[torch.Tensor] = []
    h_prev = c_prev = None
    for s in range(t):
        a = gx[:, s]
        if h_prev is not None:
            a = a + F.conv2d(h_prev, cell.conv_h.weight, padding=cell.padding)
        i, f, o, g = a.chunk(4, dim=1)  # gate order (i, f, o, g)
        if peep is not None and c_prev is not None:
            i = i + peep[0] * c_prev
            f = f + peep[1] * c_prev
        c = torch.sigmoid(i) * torch.tanh(g)
        if c_prev is not None:
            c = c + torch.sigmoid(f) * c_prev
        if peep is not None:
            o = o + peep[2] * c
        h_prev, c_prev = torch.sigmoid(o) * torch.tanh(c), c
        hs.append(h_prev)
    return torch.stack(hs, dim=2)


@contextlib.contextmanager
def onnx_friendly(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Run every ConvLSTM of `model` out of place for the duration (instance attribute, restored after)."""
    layers = [m for m in model.modules() if isinstance(m, ConvLSTM)]
    for m in layers:
        m.forward = types.MethodType(functional_convlstm, m)
    try:
        yield model
    finally:
        for m in layers:
            del m.forward


# ----------------------------------------------------------------------------- export
def fixed_clip(clip_shape, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A deterministic normalised-looking input (batch, C, T, H, W)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, *clip_shape, generator=g)


def metadata(blob: dict, fmt: str) -> dict:
    clip = blob.get("clip") or {}
    return {"format": fmt, "arch": blob["arch"], "model_args": blob.get("model_args"),
            "num_classes": blob["num_classes"], "class_names": blob.get("class_names"),
            "clip": clip, "clip_shape": list(blob["clip_shape"]), "normalize": blob.get("normalize"),
            "crop_after_decode": (blob.get("augment") or {}).get("crop"),
            "input": "float32 (N, 3, T, H, W), normalised: (uint8 / 255 - mean) / std, centre-cropped "
                     "to crop_after_decode when set; output: logits (N, num_classes)"}


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    """Tracing is exact at the traced clip shape: its shape-branch warnings and torch.jit's own
    deprecation notices (torch.jit is what `--format torchscript` asks for) say nothing new here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=r".*torch\.jit.*deprecated", category=FutureWarning)
        yield


def _onnx_modules():
    try:
        import onnx
    except ImportError as err:
        raise ExportError("ONNX export needs the onnx package: pip install -e '.[onnx]'") from err
    return onnx


def export_model(model_path: str | Path, fmt: str, out: str | Path | None = None, check: bool = True,
                 atol: float = 1e-4, rtol: float = 1e-5) -> dict:
    """Export model.pt to `fmt`; with check, compare with PyTorch on a fixed clip. Returns a summary.

    The check passes when max |exported - PyTorch| <= atol + rtol * max |PyTorch| over the logits
    (deep random-init networks reach logits of ~1e3, where fp32 reordering alone moves ~1e-4).
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r} (choose from {', '.join(FORMATS)})")
    model_path = Path(model_path)
    model, blob = build_model_from_file(model_path)
    model.eval().requires_grad_(False)
    out = Path(out) if out else model_path.with_name(model_path.stem + SUFFIX[fmt])
    out.parent.mkdir(parents=True, exist_ok=True)
    x = fixed_clip(blob["clip_shape"])
    meta = metadata(blob, fmt)
    with torch.no_grad():
        ref = model(x)
    try:
        with atomic_path(out) as tmp:
            if fmt == "torchscript":
                with _quiet_jit(), torch.no_grad():
                    traced = torch.jit.trace(model, x, check_trace=False)
                    torch.jit.save(traced, str(tmp), _extra_files={"vidrec.json": json.dumps(meta)})
            else:
                onnx = _onnx_modules()
                with onnx_friendly(model), torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.onnx.export(model, (x,), str(tmp), dynamo=False, opset_version=ONNX_OPSET,
                                      input_names=["clips"], output_names=["logits"],
                                      dynamic_axes={"clips": {0: "batch"}, "logits": {0: "batch"}})
                proto = onnx.load(str(tmp))
                entry = proto.metadata_props.add()
                entry.key, entry.value = "vidrec", json.dumps(meta)
                onnx.save(proto, str(tmp))
    except VidrecError:  # ExportError, or a full disk naming the file
        raise
    except Exception as err:  # noqa: BLE001 - name the model and the stage
        raise ExportError(f"{model_path}: {blob['arch']} could not be exported to {fmt}: "
                          f"{type(err).__name__}: {str(err)[:300]}") from err
    summary = {"model": str(model_path), "arch": blob["arch"], "format": fmt, "out": str(out),
               "bytes": out.stat().st_size, "clip_shape": list(blob["clip_shape"]), "checked": False}
    if check:
        runner = load_exported(out, fmt)
        if runner is None:
            log.warning("onnxruntime is not installed: %s was written but not checked", out)
        else:
            diff = float(np.abs(runner(x) - ref.numpy()).max())
            scale = float(ref.abs().max())
            tol = atol + rtol * scale
            summary |= {"checked": True, "max_abs_diff": diff, "max_abs_logit": scale, "tolerance": tol}
            if not diff <= tol:
                raise ExportError(f"{out}: the exported model differs from PyTorch by {diff:.3g} on a fixed "
                                  f"clip (tolerance {atol:g} + {rtol:g} x max |logit| {scale:.3g} = {tol:.3g})")
    return summary


def load_exported(path: str | Path, fmt: str | None = None):
    """A callable float32 (N, C, T, H, W) numpy/tensor -> logits numpy, for an exported file.

    None for ONNX when onnxruntime is not installed.
    """
    path = Path(path)
    fmt = fmt or ("onnx" if path.suffix == ".onnx" else "torchscript")
    if fmt == "torchscript":
        with _quiet_jit():
            module = torch.jit.load(str(path), map_location="cpu").eval()

        def run_ts(x):
            with torch.no_grad():
                return module(torch.as_tensor(np.asarray(x), dtype=torch.float32)).numpy()
        return run_ts
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def run_onnx(x):
        arr = x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x, np.float32)
        return session.run(["logits"], {"clips": arr.astype(np.float32)})[0]
    return run_onnx


def exported_metadata(path: str | Path) -> dict:
    """The vidrec metadata stored inside an exported file."""
    path = Path(path)
    if path.suffix == ".onnx":
        proto = _onnx_modules().load(str(path), load_external_data=False)
        return json.loads({p.key: p.value for p in proto.metadata_props}["vidrec"])
    files = {"vidrec.json": ""}
    with _quiet_jit():
        torch.jit.load(str(path), map_location="cpu", _extra_files=files)
    return json.loads(files["vidrec.json"])
