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

from lossland import selection as lselection  # noqa: E402
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
STUDIES = lstudy.present_studies(config)
PLAIN_STUDIES = [s for s in STUDIES if s in lstudy.PLAIN_STUDIES]
# {study: {(model, optimizer): [runs of its learning-rate grid]}}
SELECTION_GROUPS = {s: lstudy.selection_groups(config, s) for s in PLAIN_STUDIES}


wildcard_constraints:
    run="[A-Za-z0-9][A-Za-z0-9._-]*",
    dataset="[A-Za-z0-9][A-Za-z0-9.-]*",
    model="[A-Za-z0-9][A-Za-z0-9.-]*",
    optimizer="[A-Za-z0-9][A-Za-z0-9.-]*",
    study="|".join(lstudy.STUDIES),
    seed=r"\d+",
    epoch=r"\d+",


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


def init_path(spec):
    return f"{RESULTS}/init/{spec['dataset']}/{spec['model']}_init{spec['init_seed']}.safetensors"


def train_inputs(wildcards):
    """Inputs of a run: its data and initial weights; a switch run also needs its prefix
    run (the first optimizer), whose checkpoint at the switch epoch it continues from."""
    spec = RUNS[wildcards.run]
    inputs = {"data": prepared_data(spec["dataset"]), "init": init_path(spec)}
    if spec["kind"] == "switch":
        prefix = run_paths(spec["prefix_run"])
        inputs["prefix_metrics"] = prefix["metrics"]
        inputs["prefix_checkpoints"] = prefix["checkpoints"]
    return inputs


def selection_table(study, model, optimizer):
    return f"{RESULTS}/selection/{study}/{model}_{optimizer}.parquet"


def study_run_names(study):
    """Every run a study trains (all learning rates of its grids; prefixes of switches)."""
    return [spec["run"] for spec in lstudy.study_runs(config, study)]


def chosen_run_names(study):
    """The runs of a study that feed its figures and downstream analyses: for an
    optimizer with a learning-rate grid only the runs of the rate chosen on the
    validation split (read from the `select_lr` checkpoint), otherwise every run."""
    names = study_run_names(study)
    if study not in SELECTION_GROUPS:
        return names
    chosen = []
    for (model, optimizer), group in SELECTION_GROUPS[study].items():
        table = checkpoints.select_lr.get(study=study, model=model, optimizer=optimizer).output[0]
        chosen += lselection.chosen_runs(table)
        names = [n for n in names if n not in group]
    return sorted(set(names) | set(chosen), key=study_run_names(study).index)


def chosen_metrics(wildcards):
    return [run_paths(r)["metrics"] for r in chosen_run_names(wildcards.study)]


def study_metrics(wildcards):
    return [run_paths(r)["metrics"] for r in study_run_names(wildcards.study)]


FIGURES = {
    "optimizer_study": ["fig4_optimizer_accuracy"],
    "rk2_study": ["fig9_rk2_training"],
    "init_study": ["fig11_exotic_inits"],
    "switch_study": ["fig7_switching"],
}


def all_targets():
    targets = [run_paths(r)["metrics"] for r in RUNS]
    for study in STUDIES:
        targets.append(f"{RESULTS}/tables/{study}_metrics.parquet")
        targets.append(f"{RESULTS}/figures/{study}_learning_curves.png")
        targets += [f"{RESULTS}/figures/{name}.png" for name in FIGURES[study]]
    if any(SELECTION_GROUPS.values()):
        targets.append(f"{RESULTS}/tables/lr_selection.parquet")
    if config.get("hessian"):
        targets += [f"{RESULTS}/tables/hessian_{t}.parquet" for t in ("eigenvalues", "density", "summary")]
        targets += [f"{RESULTS}/figures/hessian_{f}.png" for f in ("density", "sharpness", "negative_fraction")]
    if config.get("landscape"):
        targets += landscape_targets()  # workflow/rules/landscape.smk
    return targets
