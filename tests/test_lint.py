"""The workflow passes Snakemake's own linter (issue 15): thin rules, no hard-coded path prefixes."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO

SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(SNAKEMAKE is None, reason="snakemake is not installed beside this Python")
def test_snakemake_lint_is_clean():
    done = subprocess.run([SNAKEMAKE, "--lint"], cwd=REPO, capture_output=True, text=True, timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "Lints for" not in out, out[-4000:]
