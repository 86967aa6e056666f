"""Evaluation stage: `vidrec evaluate`.

May import: `vidrec.inference`, `vidrec.models`, `vidrec.data`, `vidrec.plan` and `vidrec.core`.
"""
