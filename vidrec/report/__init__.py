"""Comparison report: accuracy, published claims beside measurements, curves, efficiency, data, provenance.

`build.build_report(cfg, results_dir=..., out_dir=...)` renders it (`vidrec report`, rule
`render_report` in rules/report.smk).
"""
