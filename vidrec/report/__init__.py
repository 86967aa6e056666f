"""Comparison report: accuracy, published claims beside measurements, curves, efficiency, data, provenance.

`build.build_report(cfg, Layout(dataset))` renders it (`vidrec report`, rule
`render_report` in rules/report.smk). The forecast's torch-free arithmetic: forecast_arithmetic.py.

May import every package below it (`vidrec.evaluation`, `vidrec.training`, `vidrec.inference`,
`vidrec.models`, `vidrec.data`, `vidrec.plan`, `vidrec.core`), never the CLI.
"""
