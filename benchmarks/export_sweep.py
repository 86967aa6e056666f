"""Export every registered architecture to TorchScript and ONNX and check each file against PyTorch.

README.md says all architectures export to both formats and reproduce the PyTorch logits; this
script is the evidence, rerun whenever a model or the exporter changes. Each architecture gets a
model.pt with random weights (BatchNorm statistics from one training-mode forward, so they are not
the identity) in the layout training writes, and goes through `vidrec.inference.export.export_model`
itself: the same tracing, the same fixed clip and the same tolerance as `vidrec export`
(max |exported - PyTorch| <= atol + rtol x max |logit|). Failures are recorded and the sweep goes on;
it exits 1 when any export failed or differed.

    python benchmarks/export_sweep.py                          # all models at 16x64x64, width 8,
                                                               # plus the thesis pair at 16x160x160
    python benchmarks/export_sweep.py --models p3d63,r3d_18 --formats onnx --no-full-size
    python benchmarks/export_sweep.py --small-clip 4x32x32 --base-width 4 --out /tmp/x.json

Export files live in a temporary directory that is deleted at the end.
"""
from __future__ import annotations

import argparse
import functools
import gc
import importlib.metadata
import inspect
import sys
import tempfile
import time
from pathlib import Path

import torch

from record import Record, add_out_argument, width_args

from vidrec.plan.config import load_config  # noqa: E402
from vidrec.inference.export import FORMATS, export_model, fixed_clip  # noqa: E402
from vidrec.models import create_model, list_models  # noqa: E402
from vidrec.models.model_file import save_model_file  # noqa: E402

THESIS_PAIR = ("convlstm_c2d63", "p3d199")
NUM_CLASSES = 101  # UCF101, as the thesis models are trained
_DEFAULTS = inspect.signature(export_model).parameters
ATOL, RTOL = _DEFAULTS["atol"].default, _DEFAULTS["rtol"].default  # what `vidrec export` checks with
CHECK_BATCH = inspect.signature(fixed_clip).parameters["batch"].default  # the clips export_model compares on


def parse_clip(text: str) -> tuple[int, int, int]:
    """'16x64x64' -> (16, 64, 64): frames x height x width of the clips a model is exported at."""
    try:
        t, h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"clip {text!r}: expected FRAMESxHEIGHTxWIDTH, e.g. 16x64x64") from None
    if min(t, h, w) < 1:
        raise argparse.ArgumentTypeError(f"clip {text!r}: sizes must be positive")
    return t, h, w


def write_model_file(path: Path, arch: str, clip: tuple[int, int, int], base_width: int | None,
                     seed: int = 0) -> Path:
    """A model.pt written as training writes it (random weights), because `export_model` exports from a file.

    base_width None keeps the architecture's default width (the full-size models).
    """
    torch.manual_seed(seed)
    frames, height, width = clip
    clip_shape = [3, frames, height, width]
    args = width_args(base_width)
    model = create_model(arch, num_classes=NUM_CLASSES, clip_shape=clip_shape, **args)
    with torch.no_grad():  # materialise lazy parameters; give BatchNorm non-trivial running statistics
        model.train()(torch.randn(2, *clip_shape))
    save_model_file(path, arch=arch, model_args=args, class_names=[f"class{i:03d}" for i in range(NUM_CLASSES)],
                    clip={"frames": frames, "crop": None, "size": height, "sampling": "uniform",
                          "clips_per_video": 1, "stride": 1},
                    clip_name=f"sweep{frames}x{height}x{width}", clip_shape=clip_shape, normalize=_normalize(),
                    augment={"crop": None, "hflip": False}, state_dict=model.state_dict(),
                    run={"dataset": "export_sweep", "model": arch, "protocol_name": "export_sweep"})
    return path


@functools.cache
def _normalize() -> dict:
    """The pipeline's normalisation, stored as metadata only; read once, not while config.yaml may change."""
    return load_config()["normalize"]


def sweep_model(arch: str, clip: tuple[int, int, int], base_width: int | None, formats: list[str],
                workdir: Path) -> list[dict]:
    """One table row per format for `arch`; every failure (build, export or check) becomes a failed row."""
    shape = "x".join(map(str, clip))
    width = "default" if base_width is None else base_width
    base = {"model": arch, "clip": shape, "base_width": width}
    folder = Path(tempfile.mkdtemp(prefix=f"{arch}_{shape}_", dir=workdir))
    rows = []
    try:
        try:
            model_file = write_model_file(folder / "model.pt", arch, clip, base_width)
        except Exception as err:  # noqa: BLE001 - the model itself cannot be built at this shape
            error = f"building the model failed: {type(err).__name__}: {str(err)[:300]}"
            return [_report(base | _failed(fmt, error, 0.0)) for fmt in formats]
        for fmt in formats:
            t0 = time.perf_counter()
            try:
                info = export_model(model_file, fmt, folder / f"model.{fmt}")
            except Exception as err:  # noqa: BLE001 - report it and go on with the next export
                rows.append(_report(base | _failed(fmt, f"{type(err).__name__}: {err}", time.perf_counter() - t0)))
                continue
            checked = info["checked"]
            rows.append(_report(base | {
                "format": fmt, "file_mb": round(info["bytes"] / 1e6, 2),  # MB as README.md gives them
                "max_abs_diff": info.get("max_abs_diff"), "max_abs_logit": info.get("max_abs_logit"),
                "tolerance": info.get("tolerance"), "passed": bool(checked),
                "seconds": round(time.perf_counter() - t0, 2),
                "error": None if checked else "written but not checked (onnxruntime is not installed)"}))
            Path(info["out"]).unlink(missing_ok=True)
    finally:
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
        gc.collect()
    return rows


def _failed(fmt: str, error: str, seconds: float) -> dict:
    return {"format": fmt, "file_mb": None, "max_abs_diff": None, "max_abs_logit": None, "tolerance": None,
            "passed": False, "seconds": round(seconds, 2), "error": error}


def _report(row: dict) -> dict:
    """Print one line per export as it finishes: a full sweep takes many minutes."""
    if row["passed"]:
        text = (f"ok    {row['file_mb']:8.2f} MB  max|diff| {row['max_abs_diff']:.2e} "
                f"<= {row['tolerance']:.2e}")
    else:
        text = f"FAIL  {row['error']}"
    print(f"{row['model']:16s} {row['clip']:>10s} w={row['base_width']!s:7s} {row['format']:11s} "
          f"{row['seconds']:7.1f} s  {text}", flush=True)
    return row


def build_record(rows: list[dict], parameters: dict, wall_seconds: float) -> Record:
    """The results file: one row per export, and pass counts checked against 'all of them'."""
    rec = Record("export_sweep", parameters=parameters)
    rec.table("exports", f"Every export checked against PyTorch on a fixed clip (batch {CHECK_BATCH})",
              [("model", "model", None), ("clip", "clip (TxHxW)", None), ("base_width", "base width", None),
               ("format", "format", None), ("file_mb", "file", "MB"),
               ("max_abs_diff", "max |exported - PyTorch|", None), ("max_abs_logit", "max |logit|", None),
               ("tolerance", "tolerance", None),
               ("passed", "passed", None), ("seconds", "export + check", "s"), ("error", "error", None)],
              rows)
    exports = len(rows)
    passed = sum(r["passed"] for r in rows)
    groups: dict[tuple[str, str], list[bool]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["clip"]), []).append(r["passed"])
    rec.figure("exports_passed", "exports that reproduce PyTorch (model x clip x format)", passed, "exports",
               target=f">= {exports}", note=f"of {exports}")
    rec.figure("models_passed", "models (at a clip shape) passing in every format",
               sum(all(v) for v in groups.values()), "models", target=f">= {len(groups)}", note=f"of {len(groups)}")
    ratios = [r["max_abs_diff"] / r["tolerance"] for r in rows if r["max_abs_diff"] is not None]
    if ratios:
        worst = max((r for r in rows if r["max_abs_diff"] is not None), key=lambda r: r["max_abs_diff"])
        rec.figure("worst_max_abs_diff", "largest max |exported - PyTorch|", worst["max_abs_diff"], "",
                   note=f"{worst['model']} {worst['clip']} {worst['format']}, tolerance {worst['tolerance']:.3g}")
        rec.figure("worst_diff_over_tolerance", "largest max |difference| / its tolerance", max(ratios), "x",
                   target="<= 1")
    rec.figure("export_seconds", "time of all exports and checks", sum(r["seconds"] for r in rows), "s")
    rec.figure("wall_seconds", "whole sweep, building the models included", wall_seconds, "s")
    return rec


def _onnx_versions() -> dict[str, str | None]:
    """The ONNX packages are not in the record's version list but decide what the ONNX rows mean."""
    out = {}
    for name in ("onnx", "onnxruntime"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the sweep; 0 when every export reproduced PyTorch, 1 otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", help="comma-separated registered names (default: all of `vidrec models`)")
    parser.add_argument("--full-size", default=",".join(THESIS_PAIR),
                        help="comma-separated models also exported at --full-clip and default width "
                             f"(default: {','.join(THESIS_PAIR)})")
    parser.add_argument("--no-full-size", action="store_true", help="skip the full-size exports")
    parser.add_argument("--formats", default=",".join(FORMATS), help=f"comma-separated (default: {','.join(FORMATS)})")
    parser.add_argument("--small-clip", type=parse_clip, default=(16, 64, 64), metavar="TxHxW",
                        help="clip of the sweep over all models (default: 16x64x64)")
    parser.add_argument("--base-width", type=int, default=8,
                        help="base width of the sweep over all models (default: 8)")
    parser.add_argument("--full-clip", type=parse_clip, default=(16, 160, 160), metavar="TxHxW",
                        help="clip of the full-size exports (default: 16x160x160)")
    add_out_argument(parser, __file__)
    args = parser.parse_args(argv)

    known = list_models()
    models = args.models.split(",") if args.models else known
    full = [] if args.no_full_size else [m for m in args.full_size.split(",") if m]
    formats = args.formats.split(",")
    for name in [*models, *full]:
        if name not in known:
            parser.error(f"unknown model {name!r}; known: {', '.join(known)}")
    for fmt in formats:
        if fmt not in FORMATS:
            parser.error(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")

    _normalize()
    rows: list[dict] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="export_sweep_") as work:
        for arch in models:
            rows += sweep_model(arch, args.small_clip, args.base_width, formats, Path(work))
        for arch in full:
            rows += sweep_model(arch, args.full_clip, None, formats, Path(work))
    parameters = {"models": models, "formats": formats, "small_clip": "x".join(map(str, args.small_clip)),
                  "base_width": args.base_width, "full_size_models": full,
                  "full_clip": "x".join(map(str, args.full_clip)), "num_classes": NUM_CLASSES,
                  "check_batch": CHECK_BATCH, "atol": ATOL, "rtol": RTOL, "torch_threads": torch.get_num_threads(),
                  "onnx_versions": _onnx_versions()}
    rec = build_record(rows, parameters, time.perf_counter() - t0)
    rec.write(args.out, [__file__, *(sys.argv[1:] if argv is None else argv)])
    failed = [r for r in rows if not r["passed"]]
    print(f"{len(rows) - len(failed)}/{len(rows)} exports passed", flush=True)
    for r in failed:
        print(f"failed: {r['model']} {r['clip']} {r['format']}: {r['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
