"""Plumbing every layer uses: error types (errors), atomic artifact writes (io), worker processes (workers),
the recursive dict merge (merge), where the report's numbers come from (provenance).

Torch-free. May import: the standard library and third-party packages only, nothing of vidrec outside
`vidrec.core`; every other package may import it.
"""
