"""vidrec: reproducible video action recognition on UCF101-style data.

Packages by kind, each importing only those below it: core (plumbing) <- plan (torch-free, read at
parse time) <- data <- models <- training, inference <- evaluation <- report; `vidrec.cli` exposes
one verb per stage (docs/architecture.md).
"""
__version__ = "0.1.0"
