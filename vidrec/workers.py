"""Worker processes shared by the data stages (decode, synth, predict)."""
from __future__ import annotations

import multiprocessing as mp
from multiprocessing.context import BaseContext


def process_context() -> BaseContext:
    """forkserver where the platform has it, else spawn: never fork a parent that may already run
    OpenCV/torch threads (a forked child can inherit a held lock and hang)."""
    return mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
