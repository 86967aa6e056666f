"""Checks of the environment before any job runs: each failure is one line naming the path and the fix."""
from __future__ import annotations

import os
from pathlib import Path

from vidrec.plan.config import ConfigError, dataset_config


def check_environment(cfg: dict, workdir: Path = Path(".")) -> None:
    """Raise ConfigError for a missing dataset root, an unwritable results/ or no ffmpeg."""
    problems = []
    ds = dataset_config(cfg)
    from vidrec.data.formats import missing_inputs

    problems += [f"config key 'datasets.{cfg['dataset']}.root': {line}" for line in missing_inputs(ds)]
    for folder in ("results", "data", "logs"):
        target = workdir / folder
        probe = target if target.exists() else workdir
        if not os.access(probe, os.W_OK):
            problems.append(f"{probe.resolve()}: no write permission; vidrec writes {folder}/ here "
                            "(fix the permissions or run from a writable copy)")
    try:
        from vidrec.data.video import ffmpeg_exe

        ffmpeg_exe()
    except Exception as err:  # noqa: BLE001 - any failure means no usable ffmpeg
        problems.append(str(err))
    if problems:
        raise ConfigError("cannot start:\n  " + "\n  ".join(problems))
