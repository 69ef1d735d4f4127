"""The landscape family: its plan, sharding, per-job evaluation and figure table."""

import copy

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import ROOT

from lossland import landscape as L
from lossland.data import subset_indices
from lossland.models import create_model
from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.pipeline.families import im2016
from lossland.pipeline.families import landscape as lplan
from lossland.plots import figure_function


@pytest.mark.parametrize("rows, cols, points", [(9, 9, 45), (9, 9, 81), (9, 9, 1), (7, 3, 10), (1, 5, 2), (13, 13, 64)])
def test_shards_cover_every_grid_point_exactly_once(rows, cols, points):
    shards = lplan.shard_rows(rows, cols, points)
    covered = [r for s in shards for r in s]
    assert covered == list(range(rows))
    assert all(len(s) * cols <= max(points, cols) for s in shards)


def test_shard_axes_rebuild_the_grid():
    settings = {"x": {"start": -1, "stop": 1, "num": 7}, "y": {"start": 0, "stop": 1, "num": 3}}
    n = lplan.shard_count("p", {"p": settings}, 5)
    parts = [lplan.shard_axes(settings, i, n, 5) for i in range(n)]
    assert np.allclose(np.concatenate([xs for xs, _ in parts]), np.linspace(-1, 1, 7))
    assert all(np.allclose(ys, [0, 0.5, 1]) for _, ys in parts)
    with pytest.raises(ValueError):
        lplan.shard_axes(settings, n, n, 5)


def _default_config():
    return C.check_config(yaml.safe_load((ROOT / "config.yaml").read_text()), C.load_schema())


def test_plan_of_the_default_config():
    cfg = _default_config()
    runs = F.run_table(cfg)
    chosen = [s["run"] for s in im2016.study_runs(cfg, "optimizer_study")  # the first rate of each grid
              if s["optimizer_spec"]["lr"] == im2016.lr_grid(cfg, "optimizer_study", s["optimizer"])[0]]
    plan = lplan.plan(cfg, runs, chosen)
    wanted = set(cfg["landscape"]["optimizers"])
    assert {runs[r]["optimizer"] for r in plan["init_final"]} == wanted
    assert all(runs[r]["init_seed"] == 0 for r in plan["init_final"])
    assert len(plan["final_final"]) == len(plan["barycentric"]) == 3  # pairs of 3 optimizers
    assert list(plan["bilinear"]) == ["nin_init0"]
    corners = [runs[plan["bilinear"]["nin_init0"]["weights"][f"corner{i}"]["run"]]["optimizer"] for i in range(4)]
    assert corners == cfg["landscape"]["bilinear_optimizers"]
    pca = next(iter(plan["pca"].values()))
    assert [r["epoch"] for r in pca["trajectory"]] == [0, 1, 2, 3, 4]
    assert plan["random_plane"][next(iter(plan["random_plane"]))]["shards"] == 1  # 7 x 7 in one shard
    sw = plan["switching"]
    assert set(sw) == {"nin_sgd-adam_init0"}
    job = sw["nin_sgd-adam_init0"]
    assert len(job["lines"]) == 3 + 3  # prefix -> each of 3 variants, and the 3 variant pairs
    assert job["labels"]["nin_sgd-lr0.1_init0"] == "sgd only"
    # a kind's settings carry only what its jobs depend on
    s = lplan.settings_for(cfg, "pca")
    assert "random_plane" not in s and s["pca"] == cfg["landscape"]["pca"] and s["shard_points"] == 49


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    spec = {"arch": "mlp", "hidden": [8]}
    model = create_model(spec, (3, 4, 4), 3, seed=0)
    states = [{k: v.clone() for k, v in create_model(spec, (3, 4, 4), 3, seed=s).state_dict().items()}
              for s in range(4)]
    x, y = torch.randn(40, 3, 4, 4), torch.randint(0, 3, (40,))
    return model, states, {"train": (x, y), "test": (x[:20], y[:20])}


def _settings(kind, **extra):
    plane = {"x": {"start": -0.5, "stop": 1.5, "num": 5}, "y": {"start": 0, "stop": 1, "num": 3}}
    return {"splits": ["train", "test"], "samples": None, "bn": "stored", "shard_points": 6,
            kind: {**plane, **extra}}


@pytest.mark.parametrize("kind", ["barycentric", "random_plane", "bilinear"])
def test_shards_gather_to_the_whole_plane(kind, tiny):
    model, states, data = tiny
    settings = _settings(kind)
    roles = {"barycentric": ["theta0", "theta1", "theta2"], "random_plane": ["origin"],
             "bilinear": [f"corner{i}" for i in range(4)]}[kind]
    job = {"name": "p", "ids": {"model": "m", "seed": 0}}
    st = dict(zip(roles, states))
    n = lplan.shard_count(kind, settings, settings["shard_points"])
    assert n == 3  # 5 rows of 3 points, 2 rows per shard
    parts = [lplan.evaluate_job(kind, model, st, data, job, settings, shard=i, shards=n) for i in range(n)]
    whole = lplan.gather_shards(pd.concat(parts, ignore_index=True), settings, kind)
    assert len(whole) == 2 * 15 and set(whole["split"]) == {"train", "test"}
    assert {"kind", "x", "y", "split", "loss", "accuracy"} <= set(whole.columns)
    xs, ys = lplan.plane_axes(settings[kind])
    train = whole[whole["split"] == "train"]
    if kind == "barycentric":
        ref = L.barycentric_surface(model, *states[:3], xs, ys, data["train"])
    elif kind == "bilinear":
        ref = L.bilinear_surface(model, states, xs, ys, data["train"])
    else:
        d = [L.random_direction(model, "filter", seed=s, weights=states[0]) for s in (1, 2)]
        ref = L.surface(model, states[0], d[0], d[1], xs, ys, data["train"])
    ref = ref.sort_values(["x", "y"]).reset_index(drop=True)
    assert np.allclose(train["loss"].to_numpy(), ref["loss"].to_numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="overlap"):
        lplan.gather_shards(pd.concat(parts + parts[:1]), settings, kind)
    with pytest.raises(ValueError, match="points per split"):
        lplan.gather_shards(pd.concat(parts[:-1]), settings, kind)


def test_line_jobs_have_the_contract_columns_and_endpoints(tiny):
    model, states, data = tiny
    ids = {"run": "r", "model": "m", "optimizer": "sgd", "seed": 0}
    labels = {"start": "init", "end": "r"}
    line = {"start": 0.0, "stop": 2.0, "num": 5}
    out = lplan.evaluate_job("init_final", model, {"start": states[0], "end": states[1]}, data,
                             {"name": "r", "ids": ids, "labels": labels}, {"splits": ["train"], "init_final": line})
    assert {"start", "end", "alpha", "split", "loss", "accuracy"} <= set(out.columns)
    assert list(out["alpha"]) == [0.0, 0.5, 1.0, 1.5, 2.0]
    model.load_state_dict(states[1])
    with torch.no_grad():
        loss = torch.nn.functional.cross_entropy(model(data["train"][0]), data["train"][1]).item()
    assert out.loc[out["alpha"] == 1.0, "loss"].item() == pytest.approx(loss, rel=1e-5)
    ff = lplan.evaluate_job("final_final", model, {"start": states[1], "end": states[2]}, data,
                            {"name": "p", "ids": ids, "labels": {"start": "a", "end": "b"}},
                            {"splits": ["train", "test"], "final_final": line})
    assert ff.loc[ff["alpha"] == 0.0, "functional_distance"].abs().max() < 1e-6
    assert (ff["disagreement"].between(0, 1)).all() and len(ff) == 10
    dist = lplan.evaluate_job("distance", model, {"start": states[1], "end": states[0]}, data,
                              {"name": "r", "ids": ids, "labels": {"start": "r", "end": "init"}},
                              {"splits": ["train"], "distance": {"start": 0, "stop": 1.5, "num": 4}})
    norm = dist["init_distance"].iloc[0]
    assert np.allclose(dist["distance"], np.array([0, 0.5, 1.0, 1.5]) * norm)
    assert dist.loc[2, "loss"] == pytest.approx(out.loc[0, "loss"], rel=1e-5)  # the init


def test_pca_job_uses_the_trajectory_extent(tiny):
    model, states, data = tiny
    job = {"name": "r", "ids": {"run": "r", "model": "m", "optimizer": "sgd", "seed": 0}}
    pca, traj = lplan.trajectory_pca(job, states[:3], [0, 1, 2])
    assert list(traj["epoch"]) == [0, 1, 2] and np.allclose(traj.iloc[-1][["x", "y"]].astype(float), 0)
    tensors = lplan.direction_tensors(pca)
    ext = (float(traj["x"].abs().max()), float(traj["y"].abs().max()))
    dirs = {"dir_x": {k[2:]: v for k, v in tensors.items() if k.startswith("x.")},
            "dir_y": {k[2:]: v for k, v in tensors.items() if k.startswith("y.")}, "extent": ext}
    settings = _settings("pca")
    out = lplan.evaluate_job("pca", model, {"origin": states[2]}, data, job, settings, shard=0, shards=3,
                             directions=dirs)
    assert np.allclose(sorted(set(out["x"])), np.array([-0.5, 0.0]) * ext[0])


def _line_table(kind, **cols):
    rows = []
    for opt, run in (("sgd", "a"), ("adam", "b")):
        for split in ("train", "test"):
            for alpha in np.linspace(0, 2, 5):
                rows.append(dict(kind=kind, run=run, model="m", optimizer=opt, seed=0, start="init", end=run,
                                 alpha=alpha, split=split, loss=1 + (alpha - 1) ** 2, accuracy=0.5,
                                 distance=3 * alpha, init_distance=3.0, **cols))
    return pd.DataFrame(rows)


def _plane_table(kind, names=("a", "b"), **cols):
    rows = []
    for name, opt in zip(names, ("sgd", "adam")):
        for split in ("train", "test"):
            for x in np.linspace(-0.25, 1.25, 4):
                for y in np.linspace(-0.25, 1.25, 4):
                    rows.append(dict(kind=kind, name=name, run=name, model="m", optimizer=opt, seed=0, x=x, y=y,
                                     split=split, loss=1 + x * x + y * y, accuracy=0.5, **cols))
    return pd.DataFrame(rows)


def test_every_landscape_figure_draws_from_tables():
    init_final = _line_table("init_final")
    ff = init_final.assign(optimizer_a="sgd", optimizer_b="adam", run_a="a", run_b="b",
                           functional_distance=0.1, disagreement=0.05)
    ff = ff[ff["run"] == "a"]
    bary = _plane_table("barycentric", names=("p",)).assign(optimizer_a="sgd", optimizer_b="adam")
    sw = init_final.assign(first="sgd", then="adam", start_label="S4", end_label="S2-A2")
    traj = pd.DataFrame({"run": ["a"] * 3 + ["b"] * 3, "epoch": [0, 1, 2] * 2, "x": [1, 0.5, 0] * 2,
                         "y": [0.2, -0.3, 0] * 2, "explained_variance_ratio_x": 0.8,
                         "explained_variance_ratio_y": 0.15})
    tables = {
        "fig2_init_final": [init_final], "fig10_beyond_final": [init_final],
        "fig5_interpolation": [init_final, ff], "fig6_distance": [init_final],
        "fig3_bilinear": [_plane_table("bilinear", names=("m_init0",)).assign(corners="sgd,adam,rmsprop,sgdm")],
        "table1_optimizer_grid": [bary, ff], "fig7_switching_interpolation": [sw],
        "random_plane": [_plane_table("random_plane")], "pca_plane": [_plane_table("pca"), traj],
    }
    assert set(tables) == set(lplan.FIGURES)
    for name, args in tables.items():
        assert len(args) == len(lplan.FIGURES[name].tables), name
        fig = figure_function(lplan.FIGURES[name].function)(*[copy.deepcopy(t) for t in args],
                                                           optimizers=["sgd", "adam"])
        assert fig.axes, name
        plt.close(fig)


def test_subsets_are_fixed_random_draws_not_the_first_images():
    idx = subset_indices(1000, 128)
    assert len(idx) == 128 and len(set(idx.tolist())) == 128 and idx.max() > 500
    assert idx.tolist() == sorted(idx.tolist()) == subset_indices(1000, 128).tolist()
    assert subset_indices(50, None).tolist() == list(range(50)) == subset_indices(50, 80).tolist()
