"""The two installs agree: pyproject.toml's pins and the conda environment's (envs/vidrec.yaml)."""
from __future__ import annotations

import re
import tomllib

import yaml

from support import REPO


def _pin(requirement: str) -> tuple[str, str]:
    name, version = re.split(r"==", requirement.split("#")[0].strip(), maxsplit=1)
    return re.sub(r"\[.*\]", "", name).lower(), version.strip()


def test_conda_environment_pins_what_pyproject_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = dict(_pin(r) for r in project["dependencies"])
    env = yaml.safe_load((REPO / "envs" / "vidrec.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_pins = dict(_pin(r) for r in pip if "==" in r)
    assert conda_pins == pinned
    assert f"python={project['requires-python'].removeprefix('>=')}" in env["dependencies"]


def test_readme_names_only_clip_specs_that_config_yaml_defines():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    named = set(re.findall(r"`(x[a-z]\d+(?:x\d+)?)`", (REPO / "README.md").read_text()))
    assert named and named <= set(cfg["clips"]), named - set(cfg["clips"])
