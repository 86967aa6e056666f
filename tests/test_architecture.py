"""The import graph of vidrec/ (issue 16): no cycle between modules or between packages, counting the
imports inside functions too, and the owners of shared facts import no heavy library."""
from __future__ import annotations

import ast
import subprocess
import sys
from collections import defaultdict

import pytest

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


@pytest.mark.parametrize("module, call", [
    ("vidrec.plan.layout", ""), ("vidrec.plan.catalogue", ""), ("vidrec.plan.experiment_runs", ""),
    ("vidrec.plan.config", "vidrec.plan.config.load_config(None)"),  # validation too: every snakemake call runs it
])
def test_fact_owners_import_no_torch_or_matplotlib(module, call):
    """The Snakefile asks these at parse time: torch (4 s) or matplotlib there would slow every rerun."""
    code = "; ".join([f"import sys, {module}", *([call] if call else []),
                      "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


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
