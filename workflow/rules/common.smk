# What every rules file shares: the checked config, the run table, input functions, resources.

import os
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("8.0")

# The workflow always runs the library of this checkout: scripts import
# `lossland` from src/, whatever is installed in the environment.
SRC = str(Path(workflow.basedir) / "src")
if SRC not in sys.path:
    sys.path.insert(0, SRC)
# (sets the variable for the jobs' interpreters; nothing here requires it to exist)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p))

from lossland.pipeline import config as lconfig  # noqa: E402
from lossland.pipeline import families as registry  # noqa: E402
from lossland.pipeline import paths  # noqa: E402
from lossland.pipeline import tables as ltables  # noqa: E402
from lossland.pipeline.families import im2016  # noqa: E402
from lossland.selection import chosen_runs  # noqa: E402

# One clear message naming the key and the allowed values, before any job runs.
try:
    config = lconfig.check_config(config, lconfig.load_schema(Path(workflow.basedir) / "workflow" / "schemas"))
except lconfig.ConfigError as exc:
    raise WorkflowError(str(exc)) from None

RESULTS = paths.RESULTS
DEVICE = config["device"]
THREADS = config["threads"]
FAMILIES = registry.FAMILIES
RUNS = registry.run_table(config)
TARGETS = registry.targets(config)
# {study: {(model, optimizer): [runs of its learning-rate grid]}}
SELECTION_GROUPS = im2016.all_selection_groups(config)


wildcard_constraints:
    **registry.wildcard_constraints(),
    run="[A-Za-z0-9][A-Za-z0-9._-]*",
    dataset="[A-Za-z0-9][A-Za-z0-9.-]*",
    model="[A-Za-z0-9][A-Za-z0-9.-]*",
    optimizer="[A-Za-z0-9][A-Za-z0-9.-]*",
    seed=r"\d+",
    epoch=r"\d+",


def job_resources(kind, compute=True):
    """Resources of a rule's jobs: the `runtime` and `mem_mb` that the config's
    `resources.<kind>` asks a cluster for (SLURM: -t, --mem; local runs ignore them)
    and, for a compute rule, one GPU when the config asks for CUDA (`gpu=1`, which
    the SLURM plugin turns into --gpus=1 and the local profile caps at one job)."""
    return {**config["resources"][kind], "gpu": 1 if compute and DEVICE == "cuda" else 0}


def get_dataset_sources(wildcards):
    """Local files a data set is read from, so that replacing them re-prepares it."""
    spec = config["datasets"][wildcards.dataset]
    if spec["source"] == "embedded":
        from lossland.data import embedded_archive

        return [str(embedded_archive())]
    if spec["source"] == "ptb-embedded":
        from lossland.data import embedded_ptb_files

        return [str(p) for p in embedded_ptb_files().values()]
    path = spec.get("path")
    if spec["source"] in ("imagefolder", "python-archive", "ptb") and path and os.path.exists(path):
        return [path]
    return []


def get_run_spec(wildcards):
    return RUNS[wildcards.run]


def get_weights(run, epoch):
    """The file (init or final weights) or folder (saved checkpoints) holding a run's weights at `epoch`."""
    return paths.weights(RUNS[run], epoch)


def get_train_inputs(wildcards):
    """Inputs of a run: its data and initial weights; a switch run also needs its prefix
    run (the first optimizer), whose checkpoint at the switch epoch it continues from."""
    spec = RUNS[wildcards.run]
    inputs = {"data": paths.prepared_data(spec["dataset"]), "init": paths.weights(spec, 0)}
    if spec["kind"] == "switch":
        inputs["prefix_metrics"] = paths.run_metrics(spec["prefix_run"])
        inputs["prefix_checkpoints"] = paths.run_checkpoints(spec["prefix_run"])
    return inputs


def get_study_run_names(study):
    """Every run a study trains (all learning rates of its grids; prefixes of switches)."""
    return [spec["run"] for spec in im2016.study_runs(config, study)]


def get_chosen_run_names(study):
    """The runs of a training study that feed its figures and the analysing families: for an
    optimizer with a learning-rate grid only the runs of the rate chosen on the validation
    split (read from im2016's `select_lr` checkpoint), otherwise every run."""
    names = get_study_run_names(study)
    order = list(names)
    if study not in SELECTION_GROUPS:
        return names
    chosen = []
    for (model, optimizer), group in SELECTION_GROUPS[study].items():
        table = checkpoints.select_lr.get(study=study, model=model, optimizer=optimizer).output[0]
        chosen += chosen_runs(table)
        names = [n for n in names if n not in group]
    return sorted(set(names) | set(chosen), key=order.index)


def get_chosen(section):
    """The chosen runs of the study an analysing section (`hessian`, `landscape`, ...) names."""
    return get_chosen_run_names(config[section]["study"])
