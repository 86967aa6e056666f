"""benchmarks/README.md's tables, generated from the results files in benchmarks/results/.

The README's prose is written by hand; every measured number in it sits between marker comments
and comes from a results file, so a number can only change by rerunning its benchmark:

    <!-- results:loader -->  ...  <!-- /results:loader -->    the section of results/loader.json
    <!-- results:gpu-* -->   ...  <!-- /results:gpu-* -->     every file matching the pattern
    <!-- results-summary --> ...  <!-- /results-summary -->   every figure with a target, all files

A file goes to the block naming it exactly, else to the first block whose pattern matches it; a file
no block takes is an error (add a block for it). Each section says what ran (the exact command), at
which commit, when, on what machine and with which library versions, then the figures and tables.

    python benchmarks/render.py            # rewrite the blocks in benchmarks/README.md
    python benchmarks/render.py --check    # exit 1, with a diff, if the README is not what the files give
"""
from __future__ import annotations

import argparse
import difflib
import fnmatch
import math
import re
import sys
from pathlib import Path

from record import BENCH_DIR, RESULTS_DIR, load  # noqa: E402

README = BENCH_DIR / "README.md"
BLOCK = re.compile(r"(<!-- results:(?P<name>[^\s>]+) -->\n)(?P<body>.*?)(<!-- /results:(?P=name) -->)", re.S)
SUMMARY = re.compile(r"(<!-- results-summary -->\n)(?P<body>.*?)(<!-- /results-summary -->)", re.S)
SHOWN_DIR = "benchmarks/results"  # how files are named in the README, wherever --results points


# ----------------------------------------------------------------------------- numbers
def fmt(value: object, unit: str | None = None) -> str:
    """A value as the README shows it, with its unit: 3 significant digits, percentages to 2 decimals."""
    text = number(value, unit)
    if not unit or not isinstance(value, (int, float)) or isinstance(value, bool) or text == "n/a":
        return text
    return f"{text}{unit}" if unit == "x" else f"{text} {unit}"


def number(value: object, unit: str | None = None) -> str:
    """A value without its unit (table cells carry the unit in the header)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(number(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{number(k)} {number(v)}" for k, v in value.items())
    if not isinstance(value, (int, float)):
        return str(value).replace("|", "\\|").replace("\n", " ")
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if unit == "%":
        return f"{value:.2f}"
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"
    if abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:,.{max(0, 2 - math.floor(math.log10(abs(value))))}f}"


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


# ----------------------------------------------------------------------------- one file
def provenance_lines(data: dict) -> list[str]:
    """What ran, where and when: the lines above a section's tables."""
    git = data.get("git") or {}
    commit = f"`{git['commit'][:7]}`" if git.get("commit") else "an unknown commit"
    if git.get("dirty"):
        commit += " (the working tree had uncommitted changes)"
    m = data.get("machine") or {}
    gpus = ", ".join(m.get("gpus") or []) or "no GPU"
    memory = f", {fmt(m['memory_gb'])} GB" if m.get("memory_gb") else ""
    load = data.get("load_average") or {}
    lines = [f"`{data['command']}` at commit {commit}, {data['date_utc']}"
             + (f", {fmt(data['run_seconds'])} s" if data.get("run_seconds") is not None else "") + ".",
             f"Machine: {m.get('cpu', 'unknown CPU')}, {m.get('cores', '?')} cores{memory}, {gpus}"
             + (f"; load average {fmt(load.get('start'))} at start, {fmt(load.get('end'))} at end"
                if load.get("start") is not None else "") + ".",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in (data.get("versions") or {}).items()) + "."]
    params = data.get("parameters") or {}
    if params:
        lines.append("Settings: " + ", ".join(f"{k} `{fmt(v) if v not in (None, [], '') else 'none'}`"
                                              for k, v in params.items()) + ".")
    return lines


def figures_table(figures: list[dict]) -> list[str]:
    out = [row(["What", "Measured", "Target", "Met"]), row(["---", "---:", "---", "---"])]
    for f in figures:
        measured = fmt(f["value"], f["unit"]) + (f" ({fmt(f['note'])})" if f.get("note") else "")
        met = "" if "met" not in f else ("yes" if f["met"] else "**no**")
        out.append(row([fmt(f["label"]), measured, f.get("target", ""), met]))
    return out


def data_table(table: dict) -> list[str]:
    cols = table["columns"]
    head = [fmt(c["label"]) + (f" ({c['unit']})" if c.get("unit") else "") for c in cols]

    def numeric(key: str) -> bool:
        values = [r.get(key) for r in table["rows"] if r.get(key) is not None]
        return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)

    out = [f"{fmt(table['title'])}:", "", row(head), row(["---:" if numeric(c["key"]) else "---" for c in cols])]
    out += [row([number(r.get(c["key"]), c.get("unit")) for c in cols]) for r in table["rows"]]
    return out


def section(path: Path, data: dict) -> str:
    """The README section of one results file."""
    lines = [f"**`{SHOWN_DIR}/{path.name}`**: " + "\n".join(provenance_lines(data)), ""]
    if data.get("figures"):
        lines += figures_table(data["figures"]) + [""]
    for table in (data.get("tables") or {}).values():
        lines += data_table(table) + [""]
    return "\n".join(lines).rstrip() + "\n"


def summary(files: dict[Path, dict]) -> str:
    """Every figure with a target, across all files: the first thing a reader checks."""
    out = [row(["What", "Measured", "Target", "Met", "File"]), row(["---", "---:", "---", "---", "---"])]
    for path, data in files.items():
        for f in data.get("figures", []):
            if "target" in f:
                out.append(row([fmt(f["label"]), fmt(f["value"], f["unit"]), f["target"],
                                "yes" if f["met"] else "**no**", f"`{path.name}`"]))
    if len(out) == 2:
        return "No results file has a figure with a target yet.\n"
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------- the README
def assign(names: list[str], stems: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """Block name -> the results files (stems) it shows; and the stems no block takes."""
    taken: dict[str, list[str]] = {n: [] for n in names}
    left = []
    for stem in stems:
        block = stem if stem in taken else next((n for n in names if fnmatch.fnmatchcase(stem, n)), None)
        if block is None:
            left.append(stem)
        else:
            taken[block].append(stem)
    return taken, left


def render(readme_text: str, results: Path) -> str:
    """The README with every results block regenerated from the files in `results`."""
    paths = sorted(results.glob("*.json"))
    files = {p: load(p) for p in paths}
    by_stem = {p.stem: p for p in paths}
    names = [m["name"] for m in BLOCK.finditer(readme_text)]
    taken, left = assign(names, list(by_stem))
    if left:
        raise SystemExit(f"results files with no block in the README: {', '.join(left)}; add "
                         + " ".join(f"'<!-- results:{s} -->' '<!-- /results:{s} -->'" for s in left))

    def block(m: re.Match) -> str:
        stems = taken[m["name"]]
        pattern = any(c in m["name"] for c in "*?[")
        none = (f"No {'other ' * pattern}results file {'matches' if pattern else 'named'} "
                f"`{SHOWN_DIR}/{m['name']}.json`.\n")
        body = "\n".join(section(by_stem[s], files[by_stem[s]]) for s in stems) if stems else none
        return f"{m.group(1)}{body}{m.group(4)}"

    text = BLOCK.sub(block, readme_text)
    return SUMMARY.sub(lambda m: f"{m.group(1)}{summary(files)}{m.group(3)}", text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare; exit 1 and show a diff when they differ")
    ap.add_argument("--results", type=Path, default=RESULTS_DIR, help="folder of results files")
    ap.add_argument("--readme", type=Path, default=README)
    args = ap.parse_args(argv)
    current = args.readme.read_text()
    wanted = render(current, args.results)
    if not args.check:
        if wanted != current:
            args.readme.write_text(wanted)
        print(f"{args.readme}: {'updated' if wanted != current else 'already up to date'} "
              f"from {len(list(args.results.glob('*.json')))} results files")
        return 0
    if wanted == current:
        print(f"{args.readme} matches {args.results}")
        return 0
    diff = difflib.unified_diff(current.splitlines(), wanted.splitlines(), "README.md (as is)",
                                "README.md (from the results files)", lineterm="", n=1)
    print(f"{args.readme} differs from what {args.results} gives; run `python benchmarks/render.py`:",
          *diff, sep="\n")
    return 1


if __name__ == "__main__":
    sys.exit(main())
