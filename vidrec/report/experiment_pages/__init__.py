"""The pages of Tran et al.'s experiments (`vidrec experiment <name>`): one module per experiment, named as
its definition in vidrec/plan/experiments/, with `aggregate(cfg, plan, results, reader, claims) -> common.Result`
(its runs' files -> a table, a figure, its claims beside our measurements); `build` writes those and the page.

Only the aggregation job imports them (they use matplotlib and, lazily, torch); the definitions they
aggregate are torch-free and read at parse time.
"""
