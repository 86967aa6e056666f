"""Evaluation stage: `vidrec evaluate`."""
