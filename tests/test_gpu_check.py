"""benchmarks/gpu_check.sh works on a bare lent GPU machine: its wheels and its CPU dry run (issue 29).

The lent machine has its image's packages (benchmarks/lent_image_packages.txt) and reaches no registry,
so what the check imports and the image lacks must travel as wheels (benchmarks/gpu_wheels.txt,
fetched by benchmarks/fetch_wheels.sh). Checked here against this environment's installed metadata:
the wheel list is exactly the closure of the project's pins the image lacks, and every module the
check's code imports comes from the image or a wheel. Then the script's CPU dry run runs every step.
"""
from __future__ import annotations

import ast
import importlib.metadata as md
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lock import closure, normalise, project_pins, project_requirements, read_constraints  # envs/lock.py
from support import REPO

BENCH = REPO / "benchmarks"
# The lent image's interpreter (device README: Python 3.12 on Linux x86-64), for dependency markers.
LENT = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
        "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
        "platform_python_implementation": "CPython", "os_name": "posix"}
# Pins the check does not need on one lent machine: the SLURM executor and its job step.
NOT_ON_ONE_MACHINE = {"snakemake-executor-plugin-slurm", "snakemake-executor-plugin-slurm-jobstep"}
# What the check runs: its scripts, the library, the CUDA tests.
CHECK_CODE = [*(REPO / "vidrec").rglob("*.py"), *(BENCH / f"{n}.py" for n in ("gpu", "feed", "rehearsal", "record",
                                                                             "datascale", "dag")),
              REPO / "tests" / "test_training.py", REPO / "tests" / "conftest.py"]


def names(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


def image() -> set[str]:
    return {normalise(n) for n in names(BENCH / "lent_image_packages.txt")}


def wheels() -> dict[str, tuple[str, bool]]:
    """name -> (version, pinned apart from this environment on purpose: a comment says why)."""
    out = {}
    for line in (BENCH / "gpu_wheels.txt").read_text().splitlines():
        req = line.split("#")[0].strip()
        if req:
            name, version = req.split("==")
            out[normalise(name)] = (version, "#" in line and "source only" not in line)
    return out


def test_the_wheel_list_is_exactly_what_the_image_lacks():
    roots = [r for r in project_requirements(extras=False) if normalise(r.name) not in NOT_ON_ONE_MACHINE]
    listed = wheels()
    assert set(listed) == closure(roots, image(), LENT), "benchmarks/gpu_wheels.txt is not the closure the image lacks"
    pinned = {**project_pins(), **read_constraints()}  # the versions a fresh clone installs
    for name, (version, apart) in listed.items():
        if not apart:
            assert version == pinned[name], f"{name}: listed {version}, pinned {pinned[name]}"
    assert not set(listed) & image()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_every_module_the_check_imports_is_in_the_image_or_the_wheels():
    local = {"vidrec"} | {p.stem for p in [*BENCH.glob("*.py"), *(REPO / "tests").glob("*.py")]} \
        | {p.name for p in (REPO / "tests").iterdir() if (p / "__init__.py").exists()}  # tests/support/
    modules = set().union(*(_imports(p) for p in CHECK_CODE)) - set(sys.stdlib_module_names) - local
    modules.add("snakemake")  # the rehearsal runs it (python -m snakemake)
    where = md.packages_distributions()
    have = image() | set(wheels())
    missing = {m: where.get(m) for m in modules if not where.get(m) or not {normalise(d) for d in where[m]} & have}
    assert not missing, f"imported by the GPU check, in neither the image nor the wheel list: {missing}"


@pytest.mark.slow
def test_dry_run_exercises_every_step_on_the_cpu(tmp_path):
    env = {**os.environ, "LOG_DIR": str(tmp_path), "PYTHON": sys.executable, "BUDGET": "1500",
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(["bash", str(BENCH / "gpu_check.sh"), "--dry-run"], capture_output=True, text=True,
                          env=env, timeout=1600, cwd=REPO)
    log = (tmp_path / "check.txt").read_text()
    assert proc.returncode == 0, proc.stdout + log[-6000:]
    for step in ("1. throughput table", "2. feed", "3. CUDA tests", "4. rehearsal"):
        assert f"OK {step}" in log, step
    assert "2 tests collected" in log  # the CUDA tests, collected only on the CPU
    for name in ("gpu-dry-run.json", "feed-dry-run.json", "gpu-dry-run-rehearsal.json"):
        assert (tmp_path / name).exists(), name
    assert not list((REPO / "benchmarks" / "results").glob("*dry-run*"))
