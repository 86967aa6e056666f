"""The benchmark scripts run (tiny sizes, CPU): a GPU-only table must not rot unseen between GPU loans."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from conftest import REPO


def _bench(*args: str) -> str:
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_gpu_benchmark_smoke_run_on_cpu():
    out = _bench("benchmarks/gpu.py", "--device", "cpu", "--batch", "2", "--steps", "1", "--warmup", "1",
                 "--threads", "1", "--models", "p3d63,convlstm_c2d63,p3d199", "--clip", "4", "32", "32")
    rows = [line for line in out.splitlines() if line.startswith("| p3d") or line.startswith("| convlstm")]
    assert len(rows) == 3 and all("nan" not in r.split("|")[4] for r in rows), out
    assert "convlstm_c2d63 / p3d199 inference time per clip" in out and "practical capacity" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is visible")
def test_gpu_benchmark_without_cuda_says_so():
    assert "no CUDA device" in _bench("benchmarks/gpu.py")
