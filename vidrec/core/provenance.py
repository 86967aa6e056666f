"""Where the report's numbers come from: code version, library versions, hardware, date."""
from __future__ import annotations

import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

# The checkout this code runs from (this file is <checkout>/vidrec/core/provenance.py): its git state is the code version.
REPO_ROOT = Path(__file__).resolve().parents[2]

# display name -> distribution name
PACKAGES = {"torch": "torch", "torchvision": "torchvision", "snakemake": "snakemake", "h5py": "h5py",
            "opencv": "opencv-python-headless", "numpy": "numpy", "pandas": "pandas",
            "matplotlib": "matplotlib"}


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info() -> dict:
    """Commit and dirty flag of the code; tolerates no git, no repository and no commit yet."""
    if _git("rev-parse", "--is-inside-work-tree") != "true":
        return {"commit": None, "dirty": None, "text": "unknown (not a git checkout, or git missing)"}
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain")
    dirty = bool(status) if status is not None else None
    text = commit or "no commit yet"
    if dirty:
        text += " (dirty: uncommitted changes)"
    return {"commit": commit, "dirty": dirty, "text": text}


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name, dist in PACKAGES.items():
        try:
            versions[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            try:  # other OpenCV wheels
                versions[name] = metadata.version("opencv-python") if name == "opencv" else "not installed"
            except metadata.PackageNotFoundError:
                versions[name] = "not installed"
    return versions


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def gpus() -> list[str]:
    """Names of the CUDA devices this process sees, in CUDA's order; [] without a driver.

    torch answers where the process has loaded it (a training, an evaluation); elsewhere (the
    report, the forecast: importing torch would cost them seconds) `nvidia-smi -L`, narrowed by
    CUDA_VISIBLE_DEVICES as CUDA narrows it."""
    if "torch" in sys.modules:
        try:
            import torch

            if torch.cuda.is_available():
                return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        except Exception:  # noqa: BLE001 (a broken CUDA install must not break the report)
            pass
        return []
    return visible_smi_gpus(os.environ.get("CUDA_VISIBLE_DEVICES"))


_SMI_LINE = re.compile(r"^GPU (\d+): (.+?) \(UUID: (\S+)\)")


def visible_smi_gpus(visible: str | None) -> list[str]:
    """The names `nvidia-smi -L` gives the devices `visible` (a CUDA_VISIBLE_DEVICES value: indices or
    UUIDs, comma-separated; None: all) selects; like CUDA, the list ends at the first unknown entry."""
    smi = shutil.which("nvidia-smi")
    if not smi:
        return []
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return []
    devices = [m.groups() for m in map(_SMI_LINE.match, out.stdout.splitlines()) if m] if out.returncode == 0 else []
    if visible is None:
        return [name for _, name, _ in devices]
    names = []
    for entry in (e.strip() for e in visible.split(",")):
        found = [name for index, name, uuid in devices if entry and (entry == index or uuid.startswith(entry))]
        if len(found) != 1:
            break
        names.append(found[0])
    return names


def hardware() -> dict:
    return {"cpu": cpu_model(), "logical_cores": os.cpu_count(),
            "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "memory_gb": memory_gb(), "gpus": gpus(), "platform": platform.platform()}


def collect(cfg: dict) -> dict:
    t = cfg["train"]
    return {
        "generated_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "git": git_info(),
        "versions": package_versions(),
        "hardware": hardware(),
        "settings": {k: t.get(k) for k in ("seeds", "device", "threads", "amp", "compile", "gpus", "init_from")},
    }
