"""Everything the Snakefile reads at parse time: the configuration and its schema check (config), the
architectures' facts (catalogue), a run's settings resolved once (runs), what a rehearsal cuts (rehearsal),
where every artifact lives (layout), Tran et al.'s experiments (the registry experiments/, and
experiment_runs: the runs and plans of the ones a configuration runs).

Torch-free, and free of cv2 and h5py, so parsing the workflow stays fast (tests/test_architecture.py
imports every module here in a fresh interpreter and checks). May import: `vidrec.core` only; the stages
(data, models, training, inference, evaluation, report) and the CLI import it.
"""
