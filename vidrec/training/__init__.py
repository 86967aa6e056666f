"""Training stage: `vidrec train`.

May import: `vidrec.models`, `vidrec.data`, `vidrec.plan` and `vidrec.core`.
"""
