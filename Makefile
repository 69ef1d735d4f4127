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

SLURM_DIR ?= /tmp/lossland-slurm

.PHONY: setup run test test-slurm lint bench report clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[workflow,test,lint]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/snakemake --profile profiles/local $(SNAKEMAKE_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The SLURM tests (tests/workflow/test_slurm.py) on a single-node cluster that this
# target starts on 127.0.0.1 and stops again (root; installs Debian's slurm-wlm if missing).
test-slurm: $(STAMP)
	rm -f $(SLURM_DIR)/report.txt
	bash .ci/slurm-cluster.sh start $(SLURM_DIR)
	SLURM_CONF=$(SLURM_DIR)/slurm.conf LOSSLAND_SLURM=1 LOSSLAND_SLURM_REPORT=$(SLURM_DIR)/report.txt \
		$(BIN)/python -m pytest -m slurm $(PYTEST_ARGS) tests/workflow/test_slurm.py; \
		status=$$?; bash .ci/slurm-cluster.sh stop $(SLURM_DIR) || status=1; \
		cat $(SLURM_DIR)/report.txt 2>/dev/null; exit $$status

# ruff (pyproject.toml [tool.ruff]), snakefmt (line length in [tool.snakefmt]) and Snakemake's own linter
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools workflow/scripts
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --cores 1

bench: $(STAMP)
	$(BIN)/python benchmarks/train_throughput.py

report: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --report report.html

clean:
	rm -rf results .snakemake report.html
