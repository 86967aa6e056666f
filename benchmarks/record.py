"""A benchmark's results file: what it measured, on what, at which commit.

Every script in benchmarks/ ends by writing one `Record` to `benchmarks/results/<script>.json`
(`--out PATH` elsewhere); `benchmarks/render.py` turns those files into benchmarks/README.md's
tables, so no measured number is ever typed in by hand. The machine, library versions, commit and
date come from `vidrec.core.provenance`, the same source as the report's provenance section.

File format (version 1):
    {"format": 1, "benchmark": "loader", "command": "python benchmarks/loader.py --videos 96",
     "date_utc": ..., "git": {"commit", "dirty", "text"}, "machine": {...}, "versions": {...},
     "load_average": {"start", "end"},         # 1-minute load: other processes slow every figure down
     "run_seconds": ...,                       # how long the benchmark ran
     "parameters": {...},                      # the settings the figures were measured at
     "figures": [{"name", "label", "value", "unit", "target"?, "met"?, "note"?}, ...],
     "tables": {"<name>": {"title", "columns": [{"key", "label", "unit"?}], "rows": [{...}]}}}
A figure with a target is a ratio or a rate checked against it; `met` is computed here, never by hand.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import operator
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
FORMAT = 1

from vidrec.core import provenance
from vidrec.core.io import write_text

_COMPARE = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


def default_out(script: str) -> Path:
    """Where a script's results go unless `--out` says otherwise: benchmarks/results/<script>.json."""
    return RESULTS_DIR / f"{Path(script).stem}.json"


def add_out_argument(parser: argparse.ArgumentParser, script: str) -> None:
    """The `--out PATH` option every benchmark has, defaulting to its own results file."""
    parser.add_argument("--out", type=Path, default=default_out(script),
                        help=f"results file (default: {default_out(script).relative_to(REPO)})")


def add_base_width_argument(parser: argparse.ArgumentParser, what: str = "the networks") -> None:
    """The `--base-width N` option of the benchmarks that build networks: narrower ones for a smoke run."""
    parser.add_argument("--base-width", type=int, default=None,
                        help=f"narrow {what} (a smoke run); default: the registry's full width")


def width_args(base_width: int | None) -> dict:
    """`create_model`'s keyword for a --base-width value: none for the registry's full width."""
    return {} if base_width is None else {"base_width": base_width}


def gpu_out(gpu_name: str) -> Path:
    """A GPU's results file, benchmarks/results/gpu-<slug of its name>.json: each machine keeps its own."""
    return RESULTS_DIR / f"gpu-{slug(gpu_name)}.json"


def slug(text: str) -> str:
    """'NVIDIA H200 NVL' -> 'nvidia-h200-nvl': a file-name and marker-safe label."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "unknown"


def load_average() -> float | None:
    """The 1-minute load average, recorded beside the figures (None where the OS has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def interleaved(fns: dict[str, Callable[[], object]], warmup: int, reps: int) -> dict[str, float]:
    """Median seconds per call of each fn, repetitions interleaved across fns, so that load from other
    processes falls on both sides of a ratio alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def target_met(value: float, target: str) -> bool:
    """'>= 3' -> value >= 3; 'between 0.75 and 1.33' -> 0.75 <= value <= 1.33. Targets are strings so the
    README shows them exactly as checked."""
    words = target.split()
    if len(words) == 4 and words[0] == "between" and words[2] == "and":
        return float(words[1]) <= value <= float(words[3])
    op, _, bound = target.partition(" ")
    if op not in _COMPARE:
        raise ValueError(f"target {target!r}: expected '<op> <number>' with op one of {sorted(_COMPARE)}")
    return bool(_COMPARE[op](value, float(bound)))


def git_info() -> dict:
    """vidrec.core.provenance's commit and dirty flag, except that results files (what benchmarks write here)
    do not make the tree dirty: a second benchmark run after a first must not look like changed code."""
    info = provenance.git_info()
    if info.get("dirty"):
        done = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", ".",
                               f":(exclude){RESULTS_DIR.relative_to(REPO)}"], capture_output=True, text=True)
        if done.returncode == 0 and not done.stdout.strip():
            info = {**info, "dirty": False, "text": info["commit"]}
    return info


def machine() -> dict:
    """CPU model, cores, memory and GPUs of the machine this process runs on."""
    hw = provenance.hardware()
    return {"cpu": hw["cpu"], "cores": hw["usable_cores"], "memory_gb": hw["memory_gb"],
            "gpus": hw["gpus"], "platform": hw["platform"]}


@dataclass
class Record:
    """Figures and tables of one benchmark run, written atomically as JSON."""

    benchmark: str
    parameters: dict = field(default_factory=dict)
    figures: list[dict] = field(default_factory=list)
    tables: dict[str, dict] = field(default_factory=dict)
    command: str | None = None  # set when the run was not `python <script> <argv>` (pipeline.sh)
    load_at_start: float | None = field(default_factory=load_average)
    started: float = field(default_factory=time.perf_counter)  # run_seconds counts from here

    def figure(self, name: str, label: str, value: float, unit: str, *, target: str | None = None,
               note: str | None = None) -> dict:
        """One measured number with its unit; with a target, whether it was met."""
        if any(f["name"] == name for f in self.figures):
            raise ValueError(f"figure {name!r} recorded twice")
        row = {"name": name, "label": label, "value": float(value), "unit": unit}
        if target is not None:
            row |= {"target": target, "met": target_met(float(value), target)}
        if note:
            row["note"] = note
        self.figures.append(row)
        return row

    def table(self, name: str, title: str, columns: list[tuple[str, str, str | None]], rows: list[dict]) -> None:
        """columns: (key, label, unit or None); rows: dicts keyed by column key."""
        self.tables[name] = {"title": title,
                             "columns": [{"key": k, "label": lab, **({"unit": u} if u else {})}
                                         for k, lab, u in columns],
                             "rows": rows}

    def to_dict(self, argv: list[str] | None = None) -> dict:
        """The file's content; machine, versions, commit and date are read now, at the end of the run."""
        command = self.command
        if command is None:
            argv = sys.argv if argv is None else argv
            script = Path(argv[0])
            try:
                script = script.resolve().relative_to(REPO)
            except ValueError:
                pass
            command = shlex.join(["python", str(script), *argv[1:]])
        return {"format": FORMAT, "benchmark": self.benchmark, "command": command,
                "date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
                "git": git_info(), "machine": machine(), "versions": provenance.package_versions(),
                "load_average": {"start": self.load_at_start, "end": load_average()},
                "run_seconds": round(time.perf_counter() - self.started, 1),
                "parameters": self.parameters, "figures": self.figures, "tables": self.tables}

    def write(self, out: Path, argv: list[str] | None = None) -> Path:
        """Write to a temporary name and rename into place, so a killed run never leaves half a file."""
        out = Path(out)
        write_text(out, json.dumps(self.to_dict(argv), indent=1) + "\n")
        print(f"results: {out}")
        return out


def load(path: Path) -> dict:
    """A results file, checked for the format this module writes."""
    data = json.loads(Path(path).read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: results format {data.get('format')!r}, expected {FORMAT}; rerun its benchmark")
    return data


@contextlib.contextmanager
def work_folder(keep: Path | None, name: str) -> Iterator[Path]:
    """A benchmark's scratch folder: `keep` (--keep DIR: created if needed, left in place) or a temporary
    folder removed afterwards, whatever happened."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix=f"vidrec-{name}-") as tmp:
        yield Path(tmp)
