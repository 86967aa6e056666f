# Two set-up commands on a fresh machine:
#   make report   create .venv, install, run the demo pipeline up to the comparison report
#   make test     create .venv, install, run the whole test suite
VENV ?= .venv
PYTHON ?= python3
CORES ?= 2
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml envs/constraints.txt | cksum | cut -d' ' -f1)
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: report test shards lint bench lock clean-results

$(STAMP): pyproject.toml envs/constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -c envs/constraints.txt -e '.[test]'
	rm -f $(VENV)/.installed-* && touch $@

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) report

shards: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) shards

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(CORES) --dist loadfile --no-loadscope-reorder

lint: $(STAMP)
	$(BIN)/snakemake --lint

# after changing a pin in pyproject.toml: install the pins alone in a fresh virtualenv and record
# what they pulled in (the next `make test` reinstalls .venv to match)
lock:
	rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/python -m pip install -q -e '.[test]'
	$(VENV)-lock/bin/python envs/lock.py && rm -rf $(VENV)-lock

bench: $(STAMP)
	$(BIN)/python benchmarks/decode.py
	$(BIN)/python benchmarks/models.py --quick

clean-results:
	rm -rf results logs .snakemake
