"""Write envs/constraints.txt: the exact version of every package the project's pins pull in.

pyproject.toml pins the packages vidrec asks for by name; what those need in turn resolves to the
newest release at install time unless it is pinned too. `make lock` installs the pins alone in a fresh
virtualenv and runs this script there: it lists every distribution the pins require, directly or
through others, that pyproject.toml does not pin, at its installed version. `make` installs with
`pip install -c envs/constraints.txt`, so a fresh clone gets the environment the tests last passed in.
tests/test_packaging.py checks the file is this closure and agrees with the virtualenv.
"""
from __future__ import annotations

import importlib.metadata as md
import re
import sys
import sysconfig
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "envs" / "constraints.txt"
HEADER = """\
# Versions of everything pyproject.toml's pins pull in (pyproject.toml owns its own pins).
# `make` installs with `pip install -c envs/constraints.txt`; after changing a pin, run `make lock`.
"""


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_requirements(pyproject: Path = ROOT / "pyproject.toml", extras: bool = True) -> list[Requirement]:
    """Every requirement pyproject.toml states, those of its optional extras included unless `extras` is false."""
    project = tomllib.loads(pyproject.read_text())["project"]
    optional = project.get("optional-dependencies", {}).values() if extras else []
    return [Requirement(r) for r in [*project["dependencies"], *(r for extra in optional for r in extra)]]


def pins(requirements: list[Requirement]) -> dict[str, str]:
    """name -> version of `==` requirements."""
    return {normalise(r.name): next(iter(r.specifier)).version for r in requirements}


def project_pins(pyproject: Path = ROOT / "pyproject.toml", extras: bool = True) -> dict[str, str]:
    """name -> version of every `==` pin in pyproject.toml, those of its optional extras included unless
    `extras` is false."""
    return pins(project_requirements(pyproject, extras))


def closure(roots: list[Requirement], have: set[str] = frozenset(), environment: dict | None = None) -> set[str]:
    """The normalised names of the roots and every distribution they require, directly or through
    others, read from the installed metadata; markers evaluated in `environment` (default: this
    interpreter's), requirements in `have` (and what only they need) left out."""
    site = site_distributions()
    need: dict[str, set[str]] = {}
    stack = [(r.name, set(r.extras)) for r in roots]
    while stack:
        name, extras = stack.pop()
        n = normalise(name)
        if n in have or (n in need and extras <= need[n]):
            continue
        need[n] = need.get(n, set()) | extras
        for text in site[n].requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({**(environment or {}), "extra": e})
                                         for e in {""} | extras):
                stack.append((req.name, set(req.extras)))
    return set(need)


def read_constraints(path: Path = CONSTRAINTS) -> dict[str, str]:
    """name -> version of every line of envs/constraints.txt."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            out[normalise(name)] = version
    return out


def site_distributions() -> dict[str, md.Distribution]:
    """name -> distribution of everything pip installed into this interpreter's environment: its
    site-packages only, not other folders on sys.path (setuptools puts its vendored copies of
    packaging and platformdirs there once imported)."""
    paths = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    return {normalise(d.metadata["Name"]): d for d in md.distributions(path=paths)}


def installed() -> dict[str, str]:
    """name -> version of every distribution in this interpreter's environment."""
    return {name: d.version for name, d in site_distributions().items()}


def main() -> int:
    pinned = project_pins()
    versions = installed()
    locked = {n: versions[n] for n in sorted(closure(project_requirements()) - set(pinned))}
    CONSTRAINTS.write_text(HEADER + "".join(f"{n}=={v}\n" for n, v in locked.items()))
    print(f"{CONSTRAINTS.relative_to(ROOT)}: {len(locked)} packages", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
