"""A Hessian job whose data would not fit its memory budget in one batch splits into chunks
instead of failing: its peak memory (Snakemake's benchmark file) stays under the budget, far
below the one-batch job's, and its tables agree with the one-batch tables up to rounding."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import snakemake

from lossland import memory
from lossland.models import build_model

pytestmark = pytest.mark.workflow

BUDGET_MB = 1100
MEM = {  # the Hessian of a NIN at width 1/8 at its initial weights, on 512 images
    "device": "cpu", "threads": 1,
    "datasets": {"mem": {"source": "embedded", "train_size": 512, "val_size": 0, "test_size": 100}},
    "models": {"nin": {"arch": "nin", "width": 0.125}},
    "optimizers": {"sgd": {"algorithm": "sgd", "lr": 0.05}},
    "training": {"epochs": 1, "batch_size": 128},
    "optimizer_study": {"dataset": "mem", "models": ["nin"], "optimizers": ["sgd"], "init_seeds": [0]},
    "hessian": {"study": "optimizer_study", "epochs": [0], "samples": 512,
                "settings": {"max_iter": 2, "trace_method": "hutchinson", "trace_probes": 2, "density_probes": 1,
                             "density_steps": 2, "sharpness_steps": 1}},
}


def run_with_budget(workdir, mem_mb: int) -> tuple[pd.DataFrame, float, str]:
    cfg = copy.deepcopy(MEM)
    cfg["resources"] = {"hessian": {"runtime": 60, "mem_mb": mem_mb}}
    workdir.mkdir()
    # only the Hessian's table: the initial weights' job, no training
    res = snakemake(workdir, "results/tables/hessian_summary.parquet", config=cfg, cores=1)
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-4000:]
    bench = next((workdir / "results" / "benchmarks").rglob("hessian_init/**/*.tsv"))
    log = next((workdir / "results" / "logs").rglob("hessian_init/**/*.log")).read_text()
    summary = pd.read_parquet(workdir / "results" / "tables" / "hessian_summary.parquet")
    return summary, float(pd.read_csv(bench, sep="\t")["max_rss"].iloc[0]), log


def test_activation_bytes_count_every_layer_output_of_one_example():
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    assert memory.activation_bytes(model, torch.zeros(5, 4)) == (3 + 3 + 2) * 4  # float32, one example
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
    assert memory.activation_bytes(conv.double(), torch.zeros(2, 3, 5, 5, dtype=torch.float64)) == 2 * 8 * 25 * 8


def test_a_batch_that_does_not_fit_is_split_into_chunks():
    model = build_model(MEM["models"]["nin"], (3, 32, 32), 10)
    inputs = torch.zeros(1024, 3, 32, 32)
    per = memory.PASS_FACTORS["hvp"] * memory.activation_bytes(model, inputs[:1])
    assert memory.fitting_batch_size(model, inputs, int(1024 * per) + 1) is None  # fits: one batch, as asked
    assert memory.fitting_batch_size(model, inputs, int(100 * per)) == 100
    assert memory.fitting_batch_size(model, inputs, 1) == 1
    assert memory.fitting_batch_size(model, inputs, None, batch_size=64) == 64


def test_a_hessian_job_over_its_memory_budget_runs_in_chunks_within_it(tmp_path):
    one_batch, one_batch_rss, one_batch_log = run_with_budget(tmp_path / "roomy", 64000)
    chunked, chunked_rss, chunked_log = run_with_budget(tmp_path / "tight", BUDGET_MB)
    assert "chunks of" not in one_batch_log and "chunks of" in chunked_log, chunked_log
    print(f"peak RSS: one batch {one_batch_rss:.0f} MB, chunked {chunked_rss:.0f} MB (budget {BUDGET_MB} MB)")
    assert chunked_rss < BUDGET_MB < one_batch_rss
    for column in ("loss", "top_eigenvalue", "bottom_eigenvalue", "trace", "epsilon_sharpness"):
        np.testing.assert_allclose(chunked[column], one_batch[column], rtol=2e-3, err_msg=column)
