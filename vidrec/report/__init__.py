"""Comparison report: accuracy, published claims beside measurements, curves, efficiency, data, provenance.

`build.build_report(cfg, Layout(dataset))` renders it (`vidrec report`, rule
`render_report` in rules/report.smk).
"""
