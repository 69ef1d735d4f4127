# Two commands on a fresh machine (see README.md):
#   make run    creates .venv, installs everything, runs the default study
#   make test   creates .venv, installs everything, runs the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup run test bench report clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[workflow,test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --profile profiles/default $(SNAKEMAKE_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

report: $(STAMP)
	$(BIN)/snakemake --profile profiles/default --report report.html

clean:
	rm -rf results .snakemake report.html
