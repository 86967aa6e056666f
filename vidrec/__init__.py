"""vidrec: reproducible video action recognition on UCF101-style data.

data -> models -> training -> evaluation -> report; `vidrec.cli` exposes one verb per stage.
"""
__version__ = "0.1.0"
