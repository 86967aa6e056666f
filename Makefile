# Two set-up commands on a fresh machine:
#   make report   create .venv, install, run the demo pipeline up to the comparison report
#   make test     create .venv, install, run the whole test suite
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: report test shards lint bench clean-results

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) report

shards: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) shards

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(CORES) --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	$(BIN)/snakemake --lint

bench: $(STAMP)
	$(BIN)/python benchmarks/decode.py
	$(BIN)/python benchmarks/models.py --quick

clean-results:
	rm -rf results logs .snakemake
