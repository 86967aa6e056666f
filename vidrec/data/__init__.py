"""Data stage: synthetic set, split lists and leakage audit, decoding, HDF5 shards, Dataset."""
