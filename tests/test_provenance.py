"""Provenance reads the machine without loading torch where the process has not: the report's job
asks for the GPUs through `nvidia-smi -L`, narrowed by CUDA_VISIBLE_DEVICES as CUDA narrows it."""
from __future__ import annotations

import subprocess
import sys

import pytest

from support import REPO
from vidrec.core.provenance import visible_smi_gpus

SMI = """#!/bin/sh
[ "$1" = "-L" ] || exit 9
echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa1111-0000-0000-0000-000000000000)"
echo "GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-bbbb2222-0000-0000-0000-000000000000)"
"""


@pytest.fixture
def fake_smi(tmp_path, monkeypatch):
    tool = tmp_path / "nvidia-smi"
    tool.write_text(SMI)
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))


@pytest.mark.parametrize("visible, names", [
    (None, ["NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB"]),
    ("1", ["NVIDIA A100-SXM4-40GB"]),
    ("1,0", ["NVIDIA A100-SXM4-40GB", "NVIDIA H100 80GB HBM3"]),
    ("GPU-bbbb2222", ["NVIDIA A100-SXM4-40GB"]),  # a UUID or its unique prefix
    ("0,7,1", ["NVIDIA H100 80GB HBM3"]),  # CUDA stops at the first unknown device
    ("GPU-", []),  # ambiguous
    ("", []),
])
def test_visible_gpus_follow_cuda_visible_devices(fake_smi, visible, names):
    assert visible_smi_gpus(visible) == names


def test_no_driver_no_gpus(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi
    assert visible_smi_gpus(None) == []


def test_the_report_reads_the_machine_without_torch():
    code = ("import sys, vidrec.cli, vidrec.report.build; from vidrec.core.provenance import collect; from vidrec.plan.config import load_config; "
            "collect(load_config()); print(sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]", out.stderr
