"""The installs agree: pyproject.toml's pins, envs/constraints.txt (what they pull in), the conda
environment (envs/vidrec.yaml) and this virtualenv."""
from __future__ import annotations

import re
import tomllib

import yaml
from packaging.requirements import Requirement

from lock import closure, installed, pins, project_pins, project_requirements, read_constraints  # envs/lock.py
from support import REPO


def test_conda_environment_pins_what_pyproject_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((REPO / "envs" / "vidrec.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pins([Requirement(r) for r in pip if "==" in r]) == project_pins(extras=False)
    assert "-c constraints.txt" in pip and (REPO / "envs" / "constraints.txt").exists()
    assert f"python={project['requires-python'].removeprefix('>=')}" in env["dependencies"]


def test_constraints_pin_exactly_what_the_pins_pull_in_at_the_installed_versions():
    """envs/constraints.txt is the closure of pyproject.toml's requirements less its own pins, and this
    virtualenv (installed with it) has each at the locked version: `make lock` after changing a pin."""
    pinned, locked, versions = project_pins(), read_constraints(), installed()
    assert not set(pinned) & set(locked), "pinned twice: pyproject.toml owns these"
    needed = closure(project_requirements()) - set(pinned)
    assert set(locked) == needed, f"missing: {sorted(needed - set(locked))}, unneeded: {sorted(set(locked) - needed)}"
    drift = {n: (v, versions[n]) for n, v in {**pinned, **locked}.items() if versions[n] != v}
    assert not drift, f"(pinned, installed): {drift}; reinstall with `make test` or run `make lock`"


def test_readme_names_only_clip_specs_that_config_yaml_defines():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    named = set(re.findall(r"`(x[a-z]\d+(?:x\d+)?)`", (REPO / "README.md").read_text()))
    assert named and named <= set(cfg["clips"]), named - set(cfg["clips"])


def test_an_installed_wheel_validates_without_the_checkout(tmp_path):
    """The schema and the default config ship as package data (vidrec/resources/: links in the checkout,
    copies in the wheel): vidrec installed from its wheel, run outside the checkout, loads and validates
    the default configuration with the same bytes the checkout has."""
    import shutil
    import subprocess
    import sys

    src = tmp_path / "src"  # a copy to build from, so the checkout gets no build/ folder
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "config.yaml"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "workflow" / "schemas", src / "workflow" / "schemas")
    shutil.copytree(REPO / "vidrec", src / "vidrec", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("vidrec-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(tmp_path / "site"), str(wheel)], check=True, capture_output=True, timeout=600)
    site = tmp_path / "site" / "vidrec" / "resources"
    for name, checkout in (("config.yaml", REPO / "config.yaml"),
                           ("config.schema.yaml", REPO / "workflow" / "schemas" / "config.schema.yaml")):
        assert not (site / name).is_symlink() and (site / name).read_bytes() == checkout.read_bytes(), name
    code = ("import vidrec.plan.config as c; cfg = c.load_config(None); "
            "print(c.SCHEMA_PATH.parent.parent.parent.name, cfg['dataset'], cfg['train']['threads'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(tmp_path / "site")})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["site", "demo", "1"], out.stdout
