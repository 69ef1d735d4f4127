"""A learning rate that makes the loss non-finite: the run is recorded as diverged and stops,
learning-rate selection passes it over, every family downstream shows it as diverged (NaN
measurements, "diverged" panels) and the DAG finishes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from diverging import DIVERGING, DIVERGING_RUN
from tiny import planned_jobs, snakemake

from lossland.pipeline import families as registry
from lossland.pipeline.config import check_config

pytestmark = pytest.mark.workflow

GRID_RUN = "mlp_sgd-lr1000_init0"  # sgd's grid: 0.1 and 1000
GOOD_RUN = "mlp_sgd-lr0.1_init0"


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("diverging")
    res = snakemake(workdir, config=DIVERGING)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]
    return workdir


def table(results, name: str) -> pd.DataFrame:
    return pd.read_parquet(results / "tables" / f"{name}.parquet")


def test_the_dag_finishes_with_every_output(diverged):
    res = snakemake(diverged, "--dry-run", config=DIVERGING)
    assert res.returncode == 0 and planned_jobs(res.stdout) == {}, res.stdout
    wanted = registry.targets(check_config(DIVERGING))
    assert all((diverged / path).exists() for path in wanted)
    assert sum(p.endswith(".png") for p in wanted) >= 15 and (diverged / "results" / "tables").is_dir()


def test_diverged_runs_are_recorded_and_stop(diverged):
    results = diverged / "results"
    metrics = table(results, "optimizer_study_metrics")
    flags = metrics.groupby("run")["diverged"].any()
    assert flags[DIVERGING_RUN] and flags[GRID_RUN] and not flags[GOOD_RUN]
    for run in (DIVERGING_RUN, GRID_RUN):
        rows = metrics[metrics["run"] == run]
        last = rows.iloc[-1]
        assert last["diverged"] and not np.isfinite(last["train_loss"])  # the epoch that diverged is its last row
        assert (rows["epoch"] <= DIVERGING["training"]["epochs"]).all()


def test_learning_rate_selection_never_picks_a_diverged_rate(diverged):
    results = diverged / "results"
    selection = table(results, "lr_selection").set_index("lr")
    assert selection.loc[0.1, "selected"] and not selection.loc[1000.0, "selected"]
    assert selection.loc[1000.0, "diverged"] and np.isnan(selection.loc[1000.0, "val_acc"])
    chosen = set(table(results, "optimizer_study_chosen_metrics")["run"])
    assert GOOD_RUN in chosen and GRID_RUN not in chosen and DIVERGING_RUN in chosen


def test_analyses_of_the_diverged_run_are_nan_and_the_others_finite(diverged):
    results = diverged / "results"
    hessian = table(results, "hessian_summary").set_index(["run", "epoch"])
    last = DIVERGING["training"]["epochs"]
    assert np.isnan(hessian.loc[(DIVERGING_RUN, last), ["top_eigenvalue", "trace", "negative_fraction"]]).all()
    assert np.isfinite(hessian.loc[(GOOD_RUN, last), ["top_eigenvalue", "trace", "negative_fraction"]]).all()
    assert np.isfinite(hessian.xs(0, level="epoch")["top_eigenvalue"]).all()  # the shared init is fine
    for kind in ("random_plane", "pca", "init_final"):
        rows = table(results, f"landscape_{kind}")
        finite = rows.groupby("run")["loss"].apply(lambda v: np.isfinite(v).all())
        assert finite[GOOD_RUN] and not finite[DIVERGING_RUN], kind
    sweep = table(results, "reparam_sweep")
    assert set(sweep["run"]) == {DIVERGING_RUN} and not np.isfinite(sweep["top_eigenvalue"]).any()


def test_diverged_ensemble_members_are_recorded_and_the_figures_say_so(diverged):
    results = diverged / "results"
    solutions = table(results, "entropy_solutions")
    assert solutions["diverged"].all() and solutions["entropy"].isna().all() and (solutions["kept"] == 0).all()
    assert len(table(results, "entropy_spectra")) == 0
    findings = table(results, "findings").set_index("finding")
    assert findings.loc["sgd_wider_than_langevin", "verdict"] == "not run at this scale"
    assert (results / "figures" / "zhang_fig1_entropy_by_dynamics.png").stat().st_size > 10_000



def test_diverged_sharpness_runs_are_recorded_and_their_findings_not_run(diverged):
    results = diverged / "results"
    batches = table(results, "batch_size_solutions").set_index("batch_size")
    assert not batches.loc[20, "diverged"] and np.isfinite(batches.loc[20, "top_eigenvalue"])
    assert batches.loc[50, "diverged"] and np.isnan(batches.loc[50, "top_eigenvalue"])
    line = table(results, "batch_size_interpolation")
    assert np.isfinite(line.loc[line["alpha"] == 0.0, "loss"]).all() and line["loss"].isna().any()
    arch = table(results, "architecture_solutions")
    assert arch["diverged"].all() and arch["top_eigenvalue"].isna().all()
    assert table(results, "architecture_convexity")["convexity_ratio"].isna().all()
    findings = table(results, "findings").set_index("finding")
    for name in ("large_batch_sharper", "large_batch_generalises_worse", "skips_keep_convexity", "wider_flatter"):
        assert findings.loc[name, "verdict"] == "not run at this scale", name
    for figure in ("keskar_interpolation", "keskar_sharpness", "li_convexity"):
        assert (results / "figures" / f"{figure}.png").stat().st_size > 10_000, figure


def test_diverged_bn_study_lines_are_flagged_and_the_figures_drawn(diverged):
    results = diverged / "results"
    lines = table(results, "bn_study_lines")
    flagged = lines.groupby(["kind", "end"])["diverged"].all()
    assert flagged.loc[("init_final", "mlp_sgd-huge-lr10000_init0")]
    assert not flagged.loc[("init_final", "mlp_sgd-lr0.1_init0")]
    assert lines.loc[lines["kind"] == "final_final", "diverged"].all()
    summary = table(results, "bn_study_summary").set_index("model")
    assert summary["diverged_runs"].gt(0).all() and summary["local_maxima_mean"].isna().all()
    assert np.isinf(summary["final_loss_spread"]).all()
    findings = table(results, "findings").set_index("finding")
    assert findings.loc["bn_final_final_unimodal", "verdict"] != "reproduced"
    for figure in ("table2_bn_lines", "fig8_bn_minima"):
        assert (results / "figures" / f"{figure}.png").stat().st_size > 10_000, figure
