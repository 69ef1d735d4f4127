"""Where every artifact of the workflow lives, relative to the working directory.

One function per kind of artifact, so that a path says what it holds and the
rules, the families and the scripts build it the same way::

    results/data/<dataset>.safetensors                    prepared tensors (+ .json)
    results/init/<dataset>/<model>_init<seed>.safetensors shared initial weights
    results/runs/<run>/metrics.parquet                    per-epoch metrics of a run
    results/runs/<run>/final.safetensors                  its last weights
    results/runs/<run>/checkpoints/epochNNNN.safetensors  its saved epochs
    results/tables/<name>.parquet                         gathered tables
    results/figures/<name>.png, .pdf                      figures
    results/logs/<rule>/..., results/benchmarks/<rule>/...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

RESULTS = "results"


def prepared_data(dataset: str) -> str:
    return f"{RESULTS}/data/{dataset}.safetensors"


def prepared_meta(dataset: str) -> str:
    return f"{RESULTS}/data/{dataset}.json"


def init_weights(dataset: str, model: str, seed: int | str) -> str:
    return f"{RESULTS}/init/{dataset}/{model}_init{seed}.safetensors"


def run_dir(run: str) -> str:
    return f"{RESULTS}/runs/{run}"


def run_metrics(run: str) -> str:
    return f"{run_dir(run)}/metrics.parquet"


def run_final(run: str) -> str:
    return f"{run_dir(run)}/final.safetensors"


def run_final_meta(run: str) -> str:
    return f"{run_dir(run)}/final.json"


def run_checkpoints(run: str) -> str:
    return f"{run_dir(run)}/checkpoints"


def checkpoint_name(epoch: int) -> str:
    """The file name of a run's checkpoint at ``epoch`` inside its checkpoints folder."""
    return f"epoch{int(epoch):04d}.safetensors"


def weights(spec: Mapping[str, Any], epoch: int) -> str:
    """The file or folder that holds run ``spec``'s weights at ``epoch``: the shared initial
    weights at 0, the final weights at the last epoch, else the checkpoints folder (a
    Snakemake ``directory`` output; :func:`weights_file` finds the epoch inside it)."""
    epoch = int(epoch)
    if epoch == 0:
        return init_weights(spec["dataset"], spec["model"], spec["init_seed"])
    if epoch == int(spec["training"]["epochs"]):
        return run_final(spec["run"])
    return run_checkpoints(spec["run"])


def weights_file(path: str | Path, epoch: int) -> Path:
    """The weights file of ``epoch`` for a :func:`weights` path (a folder holds every saved epoch)."""
    path = Path(path)
    return path / checkpoint_name(epoch) if path.is_dir() else path


def table(name: str) -> str:
    return f"{RESULTS}/tables/{name}.parquet"


def figure(name: str, ext: str = "png") -> str:
    return f"{RESULTS}/figures/{name}.{ext}"


def caption(name: str) -> str:
    """A figure's caption with its numbers (reStructuredText, included by the report)."""
    return f"{RESULTS}/captions/{name}.rst"


def report_page(name: str, ext: str = "rst") -> str:
    """A generated page of the report: ``overview`` (.rst, included by the front page), ``findings`` (.html)."""
    return f"{RESULTS}/report/{name}.{ext}"


def log(rule: str, name: str) -> str:
    return f"{RESULTS}/logs/{rule}/{name}.log"


def benchmark(rule: str, name: str) -> str:
    return f"{RESULTS}/benchmarks/{rule}/{name}.tsv"
