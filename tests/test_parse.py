"""The Snakefile: parsing it has no side effects (issue 16: no file written, neither torch nor matplotlib
imported; jobs get the configuration as run from the environment), and its jobs find vidrec without PATH."""
from __future__ import annotations

import json
import subprocess
import sys

import yaml

from support import REPO, mini_config, repo_config, run_snakemake

# Runs Snakemake in-process, then reports which heavy modules the parse imported.
PROBE = """
import json, sys
from snakemake.cli import main
sys.argv = ["snakemake", "-s", sys.argv[1], "-d", sys.argv[2], "-n", "--cores", "1", "report"]
try:
    main()
except SystemExit as stop:
    code = stop.code
print("PROBE " + json.dumps({"code": code, "heavy": sorted(m for m in ("torch", "matplotlib") if m in sys.modules)}))
"""


def test_dry_run_writes_nothing_and_imports_no_torch_or_matplotlib(tmp_path):
    cfg = repo_config()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    before = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    done = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "Snakefile"), str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    probe = json.loads(done.stdout.split("PROBE ", 1)[1])
    assert probe == {"code": 0, "heavy": []}, done.stdout[-3000:] + done.stderr[-3000:]
    after = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")}
    assert {p for p in after - before if p.parts[0] != ".snakemake"} == set()


def test_jobs_run_vidrec_without_it_on_path(tmp_path):
    """`.venv/bin/snakemake` with a PATH that has no vidrec (no activated virtualenv): jobs still find
    vidrec, because every rule runs it with the interpreter that runs Snakemake (rules/common.smk's
    CLI; here the synth and manifest jobs)."""

    cfg = mini_config()
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    path = "/usr/bin:/bin"
    assert subprocess.run(["sh", "-c", "command -v vidrec"], env={"PATH": path}).returncode != 0
    run_snakemake(tmp_path, "results/mini/manifest/videos.csv", env={"PATH": path, "HOME": str(tmp_path)},
                  timeout=600)
    assert (tmp_path / "results/mini/manifest/videos.csv").exists()
