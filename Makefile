# Two commands on a fresh machine (see README.md):
#   make run    creates .venv, installs everything, runs the default study
#   make test   creates .venv, installs everything, runs the tests
#   make lint   ruff, snakefmt --check and snakemake --lint
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SNAKEMAKE_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup run test lint bench report clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[workflow,test,lint]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --profile profiles/default $(SNAKEMAKE_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# ruff (pyproject.toml [tool.ruff]), snakefmt (line length in [tool.snakefmt]) and Snakemake's own linter
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools workflow/scripts
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --cores 1

bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

report: $(STAMP)
	$(BIN)/snakemake --profile profiles/default --report report.html

clean:
	rm -rf results .snakemake report.html
