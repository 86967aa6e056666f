"""Data stage: synthetic set, split lists and leakage audit, decoding, HDF5 shards, Dataset; the disk-space
checks of decoding and training (diskspace) and the environment checks before any job (preflight).

May import: `vidrec.plan` and `vidrec.core`.
"""
