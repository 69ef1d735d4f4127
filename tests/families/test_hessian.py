"""The hessian family: its points, files, tables and the epoch-0 rows of every run."""

import pandas as pd
import pytest
import yaml
from conftest import ROOT

from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.pipeline.families import hessian, im2016


@pytest.fixture(scope="module")
def default_config():
    return C.check_config(yaml.safe_load((ROOT / "config.yaml").read_text()), C.load_schema())


def test_points_share_the_initial_weights(default_config):
    runs = F.run_table(default_config)
    chosen = [s["run"] for s in im2016.study_runs(default_config, "optimizer_study")]
    points = hessian.points(default_config, runs, chosen)
    inits = [key for kind, key in points if kind == "init"]
    # sgd (two rates in the grid, both "chosen" here) and adam of init 0 share one initial point
    assert inits == [{"dataset": "cifar10-small", "model": "nin", "seed": 0}]
    epochs = sorted({key["epoch"] for kind, key in points if kind == "checkpoint"})
    assert epochs == [4]
    files = hessian.point_files(default_config, runs, chosen)
    assert set(files) == set(hessian.POINT_TABLES)
    assert files["summary"][0] == "results/hessian/init/cifar10-small/nin_init0/summary.parquet"
    assert all(len(v) == len(points) for v in files.values())


def test_tables_only_with_a_hessian_section(default_config):
    assert hessian.tables(default_config) == ["hessian_eigenvalues", "hessian_density", "hessian_summary"]
    assert hessian.tables({k: v for k, v in default_config.items() if k != "hessian"}) == []


def test_init_rows_are_copied_to_every_run_of_that_init():
    frame = pd.DataFrame([
        dict(run="", dataset="d", model="m", optimizer="", seed=0, epoch=0, trace=5.0),
        dict(run="", dataset="d", model="m", optimizer="", seed=1, epoch=0, trace=6.0),
        dict(run="a", dataset="d", model="m", optimizer="sgd", seed=0, epoch=2, trace=1.0),
        dict(run="b", dataset="d", model="m", optimizer="adam", seed=0, epoch=2, trace=2.0),
    ])
    runs = [dict(run="a", dataset="d", model="m", optimizer="sgd", seed=0),
            dict(run="b", dataset="d", model="m", optimizer="adam", seed=0)]
    out = hessian.expand_init_rows(frame, runs)
    assert out[["run", "epoch", "trace"]].values.tolist() == [["a", 0, 5.0], ["a", 2, 1.0], ["b", 0, 5.0], ["b", 2, 2.0]]
    assert set(out.loc[out["run"] == "b", "optimizer"]) == {"adam"}


def test_gather_writes_every_point_table(tmp_path):
    inputs, outputs = {}, {}
    for t in hessian.POINT_TABLES:
        parts = []
        for i, ids in enumerate([hessian.init_ids("d", "m", 0), dict(run="a", dataset="d", model="m",
                                                                      optimizer="sgd", algorithm="sgd",
                                                                      lr=0.1, seed=0, epoch=2)]):
            path = tmp_path / f"{t}{i}.parquet"
            pd.DataFrame([dict(ids, value=float(i))]).to_parquet(path)
            parts.append(str(path))
        inputs[t], outputs[t] = parts, str(tmp_path / f"hessian_{t}.parquet")
    runs = [dict(run="a", dataset="d", model="m", optimizer="sgd", algorithm="sgd", lr=0.1, seed=0)]
    hessian.gather_tables(inputs, outputs, runs, log=str(tmp_path / "gather.log"))
    for t in hessian.POINT_TABLES:
        out = pd.read_parquet(outputs[t])
        assert out[["run", "epoch", "value"]].values.tolist() == [["a", 0, 0.0], ["a", 2, 1.0]]
    assert len((tmp_path / "gather.log").read_text().splitlines()) == 3
