# Validation, the run table, input functions and resources shared by every rules file.

import os
import sys
from pathlib import Path

from snakemake.utils import min_version, validate

min_version("8.0")

# The workflow always runs the library of this checkout: scripts import
# `lossland` from src/, whatever is installed in the environment.
SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)

from lossland import study as lstudy  # noqa: E402

SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "config.schema.yaml"

# One clear message naming the key and the allowed values, before any job runs.
try:
    config = lstudy.check_config(config, lstudy.load_schema(SCHEMA))
except lstudy.ConfigError as exc:
    raise WorkflowError(str(exc)) from None
validate(config, str(SCHEMA))  # Snakemake's own check (passes here); fills the same defaults

RESULTS = "results"
DEVICE = config["device"]
THREADS = config["threads"]
RUNS = lstudy.runs(config)
INITS = lstudy.inits(RUNS)


wildcard_constraints:
    run="[A-Za-z0-9][A-Za-z0-9._-]*",
    dataset="[A-Za-z0-9][A-Za-z0-9.-]*",
    model="[A-Za-z0-9][A-Za-z0-9.-]*",
    seed=r"\d+",


def compute_resources():
    """Resources of a compute rule: one GPU when the config asks for CUDA."""
    return {"gpu": 1 if DEVICE == "cuda" else 0}


def run_spec(wildcards):
    return RUNS[wildcards.run]


def prepared_data(dataset):
    return f"{RESULTS}/data/{dataset}.safetensors"


def run_paths(run):
    base = f"{RESULTS}/runs/{run}"
    return {
        "metrics": f"{base}/metrics.parquet",
        "final": f"{base}/final.safetensors",
        "checkpoints": f"{base}/checkpoints",
    }


def all_targets():
    targets = [run_paths(r)["metrics"] for r in RUNS]
    targets += [f"{RESULTS}/tables/optimizer_study_metrics.parquet",
                f"{RESULTS}/figures/learning_curves.png"]
    return targets
