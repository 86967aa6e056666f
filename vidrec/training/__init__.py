"""Training stage: `vidrec train`."""
