"""Worker processes shared by the data stages (decode, synth, predict), and how loud the libraries
under them may be (set once by the CLI, inherited by every process it starts)."""
from __future__ import annotations

import multiprocessing as mp
import os
import sys
from multiprocessing.context import BaseContext

# Read by this module's own children and by vidrec's ffmpeg subprocesses: "1" after `vidrec -v`.
VERBOSE_ENV = "VIDREC_VERBOSE"
# What silences the libraries, as environment variables so that worker processes inherit it.
# OpenCV reads OPENCV_LOG_LEVEL when it loads (its "[ WARN:0@0.1] global cap.cpp ..." lines);
# its FFmpeg reads OPENCV_FFMPEG_LOGLEVEL (-8: AV_LOG_QUIET) at the process's first VideoCapture
# ("[mpeg4 @ 0x...] Error at MB: 244"; OpenCV 5 never reads it again, and with the variable set
# OpenCV prints FFmpeg's messages to stdout, so verbose mode removes it rather than raising it).
_QUIET_ENV = {"OPENCV_LOG_LEVEL": "SILENT", "OPENCV_FFMPEG_LOGLEVEL": "-8"}


def process_context() -> BaseContext:
    """forkserver where the platform has it, else spawn: never fork a parent that may already run
    OpenCV/torch threads (a forked child can inherit a held lock and hang)."""
    return mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")


def set_library_logging(verbose: bool) -> None:
    """Silence (the default) or let through what OpenCV and its FFmpeg write to the terminal
    themselves, in this process and every process it starts later.

    Their messages duplicate vidrec's own line for the file (its repair, or `unreadable: <path>:
    <reason>`), so they are noise except when debugging a decoder (`vidrec -v`). Call it before the
    process opens its first video: FFmpeg's level is fixed then. h5py needs nothing: it turns off
    HDF5's error stacks itself when imported. vidrec's own ffmpeg subprocesses follow
    `libraries_verbose()`.
    """
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"
    for key, quiet in _QUIET_ENV.items():
        if not verbose:
            os.environ[key] = quiet
        elif os.environ.get(key) == quiet:  # ours (e.g. inherited from a quiet vidrec); a user's own stays
            del os.environ[key]
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:  # already loaded: too late for OPENCV_LOG_LEVEL
        levels = cv2.utils.logging
        levels.setLogLevel(levels.LOG_LEVEL_WARNING if verbose else levels.LOG_LEVEL_SILENT)


def libraries_verbose() -> bool:
    """Whether the libraries may talk (`set_library_logging(True)` here or in a parent process)."""
    return os.environ.get(VERBOSE_ENV) == "1"
