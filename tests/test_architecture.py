"""The import graph of vidrec/ (issue 16): no cycle between modules or between packages, counting the
imports inside functions too; packages import only the levels below them; the package the Snakefile
reads at parse time (vidrec.plan) imports no heavy library."""
from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict

from support import REPO


def _imports() -> dict[str, set[str]]:
    """module -> the vidrec modules it imports (anywhere in the file)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for path in (REPO / "vidrec").rglob("*.py"):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("vidrec"):
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names if a.name.startswith("vidrec")]
            else:
                continue
            graph[module] |= {n for n in names if (REPO / (n.replace(".", "/") + ".py")).exists()
                              or (REPO / n.replace(".", "/") / "__init__.py").exists()}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_import_cycle_between_modules_or_packages():
    modules = {m: {t for t in ts if t != m and not m.startswith(t + ".")} for m, ts in _imports().items()}
    assert _cycles(modules) == []
    packages: dict[str, set[str]] = defaultdict(set)
    for m, ts in modules.items():
        packages[_package(m)] |= {_package(t) for t in ts if _package(t) != _package(m) and _package(t) != "vidrec"}
    assert _cycles(packages) == []


def test_cycle_detection_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


# Packages by kind, lowest first: each may import only itself and those before it (one level may hold
# several packages that do not import each other); the package __init__ docstrings say the same.
LEVELS = [{"vidrec.core"}, {"vidrec.plan"}, {"vidrec.data"}, {"vidrec.models"},
          {"vidrec.training", "vidrec.inference"}, {"vidrec.evaluation"}, {"vidrec.report"}, {"vidrec.cli"}]


def test_packages_import_only_the_levels_below_them():
    level = {package: i for i, packages in enumerate(LEVELS) for package in packages}
    modules = _imports()
    assert {_package(m) for m in modules} - {"vidrec"} <= set(level)  # a new package gets its level here
    upward = sorted(f"{m} -> {t}" for m, ts in modules.items() for t in ts
                    if _package(m) in level and _package(t) in level
                    and _package(t) != _package(m) and level[_package(t)] >= level[_package(m)])
    assert upward == []


HEAVY = ("torch", "torchvision", "cv2", "h5py", "matplotlib")


def _loaded_after_importing(package: str, also: tuple[str, ...] = (), then: str = "") -> tuple[int, list[str]]:
    """Import every module of `package` (found by walking it) and the modules `also` in a fresh
    interpreter, then run the statement `then`: how many modules the walk found and which of HEAVY
    were loaded."""
    code = (f"import importlib, pkgutil, sys, {package}\n"
            f"names = [info.name for info in pkgutil.walk_packages({package}.__path__, '{package}.')]\n"
            f"for name in names + {list(also)!r}:\n"
            "    importlib.import_module(name)\n"
            f"{then}\n"
            f"print(len(names), *[m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stderr
    found, *heavy = out.stdout.split()
    return int(found), heavy


def test_the_parse_time_package_imports_no_heavy_library():
    """The Snakefile reads vidrec.plan at parse time (and validates the configuration at every snakemake
    call): torch (4 s), torchvision, cv2, h5py or matplotlib there would slow every rerun."""
    found, heavy = _loaded_after_importing("vidrec.plan", then="importlib.import_module('vidrec.plan.config')"
                                                               ".load_config(None)")
    assert found + 1 == len(list((REPO / "vidrec" / "plan").rglob("*.py")))  # + 1: vidrec/plan/__init__.py
    assert heavy == []


def test_the_report_package_imports_no_torch():
    """The report and experiment-page jobs read results files: importing any module of vidrec.report (and
    the accuracy functions they share with `vidrec evaluate`) loads no torch, whose import is seconds
    of every such job. A page that needs a network (the sweep's full-width parameter count) imports
    torch inside that function."""
    found, heavy = _loaded_after_importing("vidrec.report", also=("vidrec.evaluation.accuracy",))
    assert found > 10 and "torch" not in heavy, heavy


def test_test_modules_import_no_other_test_module():
    """Tests share their helpers through tests/support/ (fixtures: conftest.py, which pytest loads):
    no test module imports another test module or conftest."""
    offenders = []
    for path in sorted((REPO / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            offenders += [f"{path.name}: {n}" for n in names if n == "conftest" or n.startswith("test_")]
    assert offenders == []
