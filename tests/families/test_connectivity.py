"""The connectivity family (the review: Garipov et al., Draxler et al.; Xing et al.): its config
check, job planning, one curve job and one walk job on a tiny MLP against the definitions and
direct evaluation, the barrier and walk summaries and the findings on hand-made tables."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import TINY

import lossland
from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.pipeline import findings as FD
from lossland.pipeline.families import connectivity as cn

CURVES = {"study": "optimizer_study", "pairs": [{"start": "sgd", "end": "adam", "init_seeds": [0, 0]}]}
WALK = {"study": "optimizer_study", "optimizer": "sgd", "batch_sizes": [20], "steps": 4, "samples": 60}
OPT_STUDY = "optimizer_study's"


@pytest.fixture(scope="module")
def schema():
    return C.load_schema()


def _raw(edit=None) -> dict:
    """TINY with this file's own curves and walk sections (whatever TINY itself holds), edited."""
    cfg = copy.deepcopy(TINY)
    cfg["curves"], cfg["walk"] = copy.deepcopy(CURVES), copy.deepcopy(WALK)
    if edit is not None:
        edit(cfg)
    return cfg


@pytest.fixture(scope="module")
def config(schema):
    return C.check_config(_raw(), schema)


def _problems(edit, schema) -> list[str]:
    with pytest.raises(C.ConfigError) as info:
        C.check_config(_raw(edit), schema)
    return [line.strip() for line in str(info.value).splitlines()[1:]]


# --------------------------------------------------------------------------- the config check


def test_valid_config_passes_with_the_schemas_defaults(config):
    assert cn.check(config) == []
    assert config["curves"]["kind"] == "bezier" and config["curves"]["bn"] == "auto"
    assert config["curves"]["splits"] == ["train", "test"] and config["curves"]["plane"] == {"num": 11, "margin": 0.2}
    assert config["walk"]["init_seed"] == 0 and config["walk"]["gd"] is True and config["walk"]["lr"] is None
    assert config["walk"]["segment_points"] == 5 and config["walk"]["momentum"] == 0.0


def _pair(**kw):
    def edit(cfg):
        cfg["curves"]["pairs"][0].update(kw)
    return edit


def _walk(**kw):
    def edit(cfg):
        cfg["walk"].update(kw)
    return edit


def _study_gone(cfg):
    cfg.pop("rk2_study")
    cfg["curves"]["study"] = "rk2_study"


@pytest.mark.parametrize("edit, expected", [
    (_pair(end="heun"), "curves.pairs[0].end: 'heun' is not one of optimizer_study's optimizers; allowed: sgd, adam, "
                        "rmsprop, sgdm"),
    (_walk(optimizer="heun"), "walk.optimizer: 'heun' is not one of optimizer_study's optimizers; allowed: sgd, adam, "
                              "rmsprop, sgdm"),
    (_pair(init_seeds=[0, 3]), "curves.pairs[0].end: init seed 3 is not one of optimizer_study's init_seeds; allowed: 0"),
    (_pair(init_seeds=[2, 0]), "curves.pairs[0].start: init seed 2 is not one of optimizer_study's init_seeds; "
                               "allowed: 0"),
    (_walk(init_seed=1), "walk.optimizer: init seed 1 is not one of optimizer_study's init_seeds; allowed: 0"),
    (_pair(end="sgd"), "curves.pairs[0]: both ends are sgd from init 0; allowed: two optimizers or two init seeds"),
    (_walk(batch_sizes=[20, 61]), "walk.batch_sizes: 61 is larger than the walk's 60 training images; allowed: 1 to 60"),
    # samples null: the whole training split, datasets.tiny.train_size = 200
    (_walk(samples=None, batch_sizes=[201]), "walk.batch_sizes: 201 is larger than the walk's 200 training images; "
                                             "allowed: 1 to 200"),
    (lambda c: c["curves"].update(model="mlp-bn"), "curves.model: 'mlp-bn' is not one of optimizer_study's models; "
                                                   "allowed: mlp"),
    (_walk(model="mlp-n1"), "walk.model: 'mlp-n1' is not one of optimizer_study's models; allowed: mlp"),
], ids=["optimizer", "walk optimizer", "end seed", "start seed", "walk seed", "same ends", "batch > samples",
        "batch > train_size", "curves model", "walk model"])
def test_each_problem_is_one_message_naming_the_key_and_the_allowed_values(edit, expected, schema):
    assert _problems(edit, schema) == [expected]


def test_a_batch_as_large_as_the_walks_images_and_two_seeds_of_one_optimizer_are_fine(schema):
    def edit(cfg):
        cfg["optimizer_study"]["init_seeds"] = [0, 1]
        cfg["curves"]["pairs"] = [{"start": "sgd", "end": "sgd", "init_seeds": [0, 1]}]
        cfg["walk"]["batch_sizes"] = [60]
    assert cn.check(C.check_config(_raw(edit), schema)) == []


def test_a_study_that_is_not_configured_is_named(schema):
    out = _problems(_study_gone, schema)
    assert len(out) == 1
    assert out[0].startswith("curves.study: 'rk2_study' is not configured; configured studies: ")
    configured = out[0].split("configured studies: ")[1].split(", ")
    assert "optimizer_study" in configured and "rk2_study" not in configured


def test_a_val_split_needs_a_validation_set(schema):
    def edit(cfg):
        cfg["datasets"]["tiny"].pop("val_size")
        cfg["curves"]["splits"] = ["val"]
        for section in ("landscape", "hessian", "reparam"):  # keep other families' checks quiet
            cfg.pop(section, None)
    out = _problems(edit, schema)
    assert "curves.splits: 'val' needs datasets.tiny.val_size; allowed: train, test" in out


def test_a_batch_larger_than_the_training_split_is_refused_even_with_more_samples(schema):
    # walk.samples 512 > train_size 200: the walk runs on 200 images, so a batch of 300 cannot be drawn
    out = _problems(_walk(samples=512, batch_sizes=[300]), schema)
    assert out == ["walk.batch_sizes: 300 is larger than the walk's 200 training images; allowed: 1 to 200"]


def test_one_point_along_the_curve_is_refused(schema):
    with pytest.raises(C.ConfigError, match=r"curves\.points"):
        C.check_config(_raw(lambda c: c["curves"].update(points=1)), schema)


# --------------------------------------------------------------------------- planning


def test_pair_and_walk_names_are_as_documented(config):
    assert cn.pair_name("mlp", {"start": "sgd", "end": "adam", "init_seeds": [0, 3]}) == "mlp_sgd-init0_adam-init3"
    assert cn.curve_pair_names(config) == ["mlp_sgd-init0_adam-init0"]
    assert cn.walk_names(config) == ["mlp_sgd-init0_b20", "mlp_sgd-init0_gd"]
    other = dict(config, walk=dict(config["walk"], batch_sizes=[16, 64], gd=False, optimizer="adam", init_seed=2,
                                   model="mlp-x"))
    assert cn.walk_names(other) == ["mlp-x_adam-init2_b16", "mlp-x_adam-init2_b64"]


def test_curve_jobs_take_the_chosen_run_of_each_end(config):
    runs = F.run_table(config)
    assert {"mlp_sgd-lr0.1_init0", "mlp_adam-lr0.01_init0", "mlp_adam-lr0.02_init0"} <= set(runs)
    chosen = ["mlp_rmsprop-lr0.001_init0", "mlp_adam-lr0.02_init0", "mlp_sgd-lr0.1_init0"]  # adam's 2nd rate chosen
    jobs = cn.curve_jobs(config, runs, chosen)
    assert jobs == {"mlp_sgd-init0_adam-init0": {"start": "mlp_sgd-lr0.1_init0", "end": "mlp_adam-lr0.02_init0"}}
    assert cn.curve_jobs(config, runs, ["mlp_adam-lr0.01_init0", "mlp_sgd-lr0.1_init0"])[
        "mlp_sgd-init0_adam-init0"]["end"] == "mlp_adam-lr0.01_init0"
    with pytest.raises(KeyError, match="adam from init 0"):
        cn.curve_jobs(config, runs, ["mlp_sgd-lr0.1_init0"])
    p = cn.curve_params(config, runs, chosen, "mlp_sgd-init0_adam-init0")
    assert p["start"]["run"] == "mlp_sgd-lr0.1_init0" and p["end"]["run"] == "mlp_adam-lr0.02_init0"
    assert p["end"]["lr"] == 0.02 and p["epochs_end"] == TINY["training"]["epochs"]
    assert p["settings"]["points"] == 21 and p["settings"]["plane"] == {"num": 11, "margin": 0.2}
    inputs = cn.curve_inputs(config, runs, chosen, "mlp_sgd-init0_adam-init0")
    assert inputs["start"] != inputs["end"] and "adam-lr0.02" in inputs["end"] and "sgd-lr0.1" in inputs["start"]


def test_walk_params_take_the_runs_learning_rate_unless_walk_lr_is_set(config):
    runs = F.run_table(config)
    chosen = ["mlp_adam-lr0.02_init0", "mlp_sgd-lr0.1_init0"]
    b20, gd = (cn.walk_params(config, runs, chosen, w) for w in cn.walk_names(config))
    assert b20["run"]["run"] == "mlp_sgd-lr0.1_init0" and b20["lr"] == 0.1 and b20["epoch"] == 2
    assert (b20["batch_size"], b20["full_batch"]) == (20, False)
    assert (gd["batch_size"], gd["full_batch"]) == (None, True) and gd["lr"] == 0.1
    assert (b20["steps"], b20["samples"], b20["segment_points"], b20["momentum"], b20["seed"]) == (4, 60, 5, 0.0, 0)
    adam = dict(config, walk=dict(config["walk"], optimizer="adam"))
    assert cn.walk_run(adam, runs, chosen) == "mlp_adam-lr0.02_init0"
    assert cn.walk_params(adam, runs, chosen, "mlp_adam-init0_b20")["lr"] == 0.02  # the chosen rate of the grid
    fixed = dict(config, walk=dict(config["walk"], lr=0.5))
    assert all(cn.walk_params(fixed, runs, chosen, w)["lr"] == 0.5 for w in cn.walk_names(fixed))


def test_tables_and_files_only_with_their_sections(config):
    six = ["curve_profiles", "curve_plane", "curve_points", "curve_training", "walk_segments", "walk_steps"]
    assert cn.tables(config) == six
    no_walk = {k: v for k, v in config.items() if k != "walk"}
    no_curves = {k: v for k, v in config.items() if k != "curves"}
    neither = {k: v for k, v in config.items() if k not in ("curves", "walk")}
    assert cn.tables(no_walk) == six[:4] and cn.tables(no_curves) == six[4:] and cn.tables(neither) == []
    assert cn.curve_files(no_curves) == {} and cn.walk_files(no_walk) == {}
    assert cn.curve_files(config) == {t: [f"results/connectivity/curves/mlp_sgd-init0_adam-init0/{t}.parquet"]
                                      for t in ("profiles", "plane", "points", "training")}
    assert cn.walk_files(config) == {t: [f"results/connectivity/walk/mlp_sgd-init0_b20/{t}.parquet",
                                         f"results/connectivity/walk/mlp_sgd-init0_gd/{t}.parquet"]
                                     for t in ("segments", "steps")}
    drawn = set(F.drawn_figures(no_curves))
    assert "sgd_walk" in drawn and not {"curve_profiles", "curve_plane"} & drawn
    assert {"curve_profiles", "curve_plane", "sgd_walk"} <= set(F.drawn_figures(config))
    assert cn.runs(config) == []  # the family trains nothing of its own


# --------------------------------------------------------------------------- one curve job

SHAPE = (3, 4, 4)
IDS = {"pair": "mlp_sgd-init0_adam-init0", "start": {"run": "r0", "model": "mlp", "optimizer": "sgd", "seed": 0},
       "end": {"run": "r1", "model": "mlp", "optimizer": "adam", "seed": 0}}
PROFILE_COLUMNS = ["pair", "model", "start_run", "end_run", "start_optimizer", "end_optimizer", "start_seed",
                   "end_seed", "kind", "path", "t", "split", "loss", "accuracy", "functional_distance",
                   "disagreement", "bn"]


def _mlp(seed, batch_norm=False):
    return lossland.create_model({"arch": "mlp", "hidden": [8], "batch_norm": batch_norm}, SHAPE, 3, seed=seed)


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPE, generator=g), torch.randint(0, 3, (n,), generator=g)


def _curve_params(**settings):
    s = {"kind": "bezier", "epochs": 3, "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0, "batch_size": 16,
         "seed": 0, "points": 5, "splits": ["train", "test"], "samples": None, "bn": "auto",
         "plane": {"num": 3, "margin": 0.0}}
    s.update(settings)
    return {**IDS, "settings": s}


def _evaluated(model, state, data):
    m = copy.deepcopy(model)
    m.load_state_dict(state)
    return lossland.evaluate(m, data)


@pytest.fixture(scope="module")
def curve_job():
    model, start, end = _mlp(0), _state(_mlp(0)), _state(_mlp(1))
    splits = {"train": _data(40, 0), "test": _data(30, 1)}
    out = cn.run_curve(model, start, end, splits["train"], splits, _curve_params())
    return model, start, end, splits, out


def test_curve_tables_have_the_documented_columns(curve_job):
    *_, out = curve_job
    assert set(out) == {"profiles", "plane", "points", "training"}
    assert list(out["profiles"].columns) == PROFILE_COLUMNS
    ids = PROFILE_COLUMNS[:9]
    assert list(out["plane"].columns) == [*ids, "x", "y", "split", "loss", "accuracy"]
    assert list(out["points"].columns) == [*ids, "point", "t", "x", "y"]
    assert list(out["training"].columns) == [*ids, "epoch", "loss", "t_mean"]
    p = out["profiles"]
    assert set(p["bn"]) == {"stored"}  # no BatchNorm: "auto" keeps the stored (no) statistics
    assert (p["start_run"] == "r0").all() and (p["end_optimizer"] == "adam").all() and (p["kind"] == "bezier").all()
    assert len(p) == 2 * 2 * 5  # (curve, line) x (train, test) x points


def test_curve_and_line_share_their_endpoints_on_every_split(curve_job):
    model, start, end, splits, out = curve_job
    p = out["profiles"]
    for split, data in splits.items():
        for t, state in ((0.0, start), (1.0, end)):
            rows = p[(p["split"] == split) & (p["t"] == t)].set_index("path")
            direct = _evaluated(model, state, data)
            assert rows.loc["curve", "loss"] == pytest.approx(direct["loss"], rel=1e-5)
            assert rows.loc["line", "loss"] == pytest.approx(direct["loss"], rel=1e-5)
            assert rows.loc["curve", "accuracy"] == rows.loc["line", "accuracy"] == pytest.approx(direct["accuracy"])
        first = p[(p["split"] == split) & (p["t"] == 0.0)]  # the reference is the start: nothing differs there
        assert first["functional_distance"].abs().max() < 1e-6 and (first["disagreement"] == 0).all()
    # the bend was trained: inside (0, 1) the curve is not the line
    inner = p[(p["split"] == "train") & (p["t"] == 0.5)].set_index("path")
    assert inner.loc["curve", "loss"] != pytest.approx(inner.loc["line", "loss"], rel=1e-4)


def test_points_lie_where_the_bezier_definition_puts_them(curve_job):
    model, start, end, _, out = curve_job
    pts = out["points"]
    assert list(pts["point"]) == ["curve"] * 5 + ["start", "bend", "end"]
    a = pts[pts["point"] != "curve"].set_index("point")
    d = math.sqrt(sum(float(((end[n] - start[n]) ** 2).sum()) for n, _ in model.named_parameters()))
    assert (a.loc["start", "x"], a.loc["start", "y"]) == (0.0, 0.0)
    assert a.loc["end", "x"] == pytest.approx(d, rel=1e-6) and a.loc["end", "y"] == pytest.approx(0.0, abs=1e-6)
    assert a.loc["bend", "y"] > 0
    curve = pts[pts["point"] == "curve"].set_index("t")
    assert list(curve.index) == [0.0, 0.25, 0.5, 0.75, 1.0]
    # θ(t) = θ0 + 2t(1-t)(θb - θ0) + t²(θ1 - θ0): the plane coordinates are the same combination
    for t in curve.index:
        cb, c1 = 2 * t * (1 - t), t * t
        assert curve.loc[t, "x"] == pytest.approx(cb * a.loc["bend", "x"] + c1 * d, rel=1e-6, abs=1e-9)
        assert curve.loc[t, "y"] == pytest.approx(cb * a.loc["bend", "y"], rel=1e-6, abs=1e-9)


def test_the_plane_is_a_num_by_num_grid_through_the_solutions(curve_job):
    model, start, end, splits, out = curve_job
    plane, a = out["plane"], out["points"][out["points"]["point"] != "curve"].set_index("point")
    assert len(plane) == 3 * 3 and set(plane["split"]) == {"train"}  # the plane is on the first split
    # margin 0: the grid spans exactly the box around start, bend and end
    assert sorted(set(plane["x"])) == pytest.approx(np.linspace(a["x"].min(), a["x"].max(), 3))
    assert sorted(set(plane["y"])) == pytest.approx(np.linspace(0.0, a["y"].max(), 3))
    corner = plane.set_index(["x", "y"]).sort_index()
    assert corner["loss"].iloc[0] == pytest.approx(_evaluated(model, start, splits["train"])["loss"], rel=1e-5)
    at_end = plane[(np.isclose(plane["x"], a.loc["end", "x"])) & (plane["y"] == 0.0)]
    assert len(at_end) == 1
    assert at_end["loss"].iloc[0] == pytest.approx(_evaluated(model, end, splits["train"])["loss"], rel=1e-4)


def test_plane_grid_grows_the_box_by_the_margin_of_its_larger_side():
    coords = pd.DataFrame({"point": ["curve", "start", "bend", "end"], "t": [0.5, 0.0, np.nan, 1.0],
                           "x": [9.0, 0.0, 2.0, 4.0], "y": [9.0, 0.0, 1.0, 0.0]})  # curve rows do not count
    xs, ys = cn._plane_grid(coords, {"num": 5, "margin": 0.25})  # side 4: grown by 1 on every side
    assert xs == pytest.approx([-1.0, 0.5, 2.0, 3.5, 5.0]) and ys == pytest.approx(np.linspace(-1.0, 2.0, 5))


def test_the_training_table_has_one_row_per_epoch(curve_job):
    *_, out = curve_job
    tr = out["training"]
    assert list(tr["epoch"]) == [1, 2, 3]
    assert np.isfinite(tr["loss"]).all() and ((tr["t_mean"] > 0) & (tr["t_mean"] < 1)).all()


def test_a_batchnorm_model_recomputes_its_statistics_under_auto():
    model, start, end = _mlp(0, True), _state(_mlp(0, True)), _state(_mlp(1, True))
    splits = {"train": _data(32, 0)}
    out = cn.run_curve(model, start, end, splits["train"], splits, _curve_params(epochs=1, points=3,
                                                                                 splits=["train"]))
    assert set(out["profiles"]["bn"]) == {"recompute"}
    assert len(out["profiles"]) == 2 * 3 and len(out["plane"]) == 9


# --------------------------------------------------------------------------- one walk job

RUN = {"run": "mlp_sgd-lr0.1_init0", "dataset": "tiny", "model": "mlp", "optimizer": "sgd", "algorithm": "sgd",
       "lr": 0.1, "seed": 0}


def _walk_params(walk, full_batch, batch_size, steps=4, points=3):
    return {"walk": walk, "run": RUN, "epoch": 2, "full_batch": full_batch, "batch_size": batch_size, "lr": 0.5,
            "momentum": 0.0, "steps": steps, "samples": 60, "segment_points": points, "seed": 0}


@pytest.mark.parametrize("full_batch, batch_size", [(False, 20), (True, None)], ids=["sgd", "gd"])
def test_walk_tables_and_the_first_segment_starts_at_the_runs_loss(full_batch, batch_size):
    model, data = _mlp(0), _data(60, 2)
    before = lossland.evaluate(model, data)  # eval mode, before the walk moves the model
    name = "mlp_sgd-init0_gd" if full_batch else "mlp_sgd-init0_b20"
    out = cn.run_walk(model, data, _walk_params(name, full_batch, batch_size))
    steps, seg = out["steps"], out["segments"]
    assert len(steps) == 4 and list(steps["step"]) == [0, 1, 2, 3]
    assert len(seg) == 4 * 3 * 2 and set(seg["split"]) == {"batch", "full"}
    ids = ["walk", "run", "model", "optimizer", "seed", "from_epoch"]
    assert list(steps.columns[:6]) == ids and list(seg.columns[:6]) == ids
    assert (steps["walk"] == name).all() and (seg["from_epoch"] == 2).all() and (seg["run"] == RUN["run"]).all()
    assert set(steps["method"]) == {"gd" if full_batch else "sgd"}
    assert set(steps["batch_size"]) == {60 if full_batch else 20}
    first = seg[(seg["step"] == 0) & (seg["split"] == "full") & (seg["t"] == 0.0)]
    assert first["loss"].iloc[0] == pytest.approx(before["loss"], rel=1e-5)
    assert first["accuracy"].iloc[0] == pytest.approx(before["accuracy"])
    assert steps["loss_full_start"].iloc[0] == pytest.approx(before["loss"], rel=1e-5)
    # consecutive segments join: t = 1 of step k is t = 0 of step k + 1 on the walk's images
    full = seg[seg["split"] == "full"]
    ends = full[full["t"] == 1.0].set_index("step")["loss"].to_numpy()[:-1]
    starts = full[full["t"] == 0.0].set_index("step")["loss"].to_numpy()[1:]
    assert ends == pytest.approx(starts, rel=1e-5)
    # plain SGD (no momentum, no weight decay): the step is lr times the gradient
    assert steps["step_length"].to_numpy() == pytest.approx(0.5 * steps["grad_norm"].to_numpy(), rel=1e-5)
    assert math.isnan(steps["grad_angle"].iloc[0]) and ((steps["grad_angle"].iloc[1:] >= 0)
                                                        & (steps["grad_angle"].iloc[1:] <= 180)).all()
    if full_batch:  # gradient descent: the minibatch is the walk's images
        pivot = seg.pivot_table(index=["step", "t"], columns="split", values="loss")
        assert pivot["batch"].to_numpy() == pytest.approx(pivot["full"].to_numpy())


# --------------------------------------------------------------------------- barriers and walk summaries

PAIR = {"model": "mlp", "start_run": "r0", "end_run": "r1", "kind": "bezier"}
TS = np.linspace(0.0, 1.0, 5)


def _profile(pair, line, curve, splits=("train", "test"), line_acc=0.4, curve_acc=0.8, start="sgd", end="adam",
             seeds=(0, 0)):
    """Rows of one pair: ``line``/``curve`` are losses at TS (the train split; test adds 1 nat)."""
    rows = []
    for split in splits:
        extra = 0.0 if split == "train" else 1.0
        for path, losses, low in (("curve", curve, curve_acc), ("line", line, line_acc)):
            for t, loss in zip(TS, losses):
                acc = low if 0 < t < 1 else 0.9
                rows.append({"pair": pair, **PAIR, "start_optimizer": start, "end_optimizer": end,
                             "start_seed": seeds[0], "end_seed": seeds[1], "path": path, "t": t, "split": split,
                             "loss": loss + extra * (t == 0.5) * 3, "accuracy": acc - 0.1 * extra,
                             "functional_distance": t, "disagreement": t / 2, "bn": "recompute"})
    return rows


def bump(first, second, height):
    """first -> second linearly plus ``height`` sin(πt): ``height`` above the chord at t = 0.5."""
    return [(1 - t) * first + t * second + height * math.sin(math.pi * t) for t in TS]


def test_pair_barriers_are_heights_above_the_chord():
    # the line goes 2 -> 1 with a bump of 0.5: at t = 0.5 it is 2.0, the higher end, but 0.5 above the chord
    rows = _profile("a", bump(2.0, 1.0, 0.5), bump(2.0, 1.0, -0.2))
    rows += _profile("b", [1.0] * 5, bump(1.0, 1.0, 0.3), start="sgd", end="sgd", seeds=(0, 1), line_acc=0.7)
    b = cn.pair_barriers(pd.DataFrame(rows)).set_index("pair")
    assert list(b.index) == ["a", "b"]
    assert b.loc["a", "line_barrier"] == pytest.approx(0.5) and b.loc["a", "curve_barrier"] == 0.0
    assert b.loc["b", "line_barrier"] == 0.0 and b.loc["b", "curve_barrier"] == pytest.approx(0.3)
    assert b.loc["a", "line_min_accuracy"] == pytest.approx(0.4) and b.loc["a", "curve_min_accuracy"] == 0.8
    assert (b.loc["b", "start_optimizer"], b.loc["b", "end_seed"]) == ("sgd", 1)
    test = cn.pair_barriers(pd.DataFrame(rows), split="test").set_index("pair")  # +3 nats at t = 0.5 on test
    assert test.loc["a", "line_barrier"] == pytest.approx(3.5) and test.loc["b", "curve_barrier"] == pytest.approx(3.3)
    assert test.loc["a", "line_min_accuracy"] == pytest.approx(0.3)


def _steps(walk, method, batch, angles, interior_full, interior_batch=None, lr=0.1):
    n = len(angles)
    interior_batch = interior_batch if interior_batch is not None else [not v for v in interior_full]
    return [{"walk": walk, "run": "mlp_sgd-lr0.1_init0", "model": "mlp", "optimizer": "sgd", "seed": 0,
             "from_epoch": 2, "step": k, "epoch": 1, "method": method, "batch_size": batch, "lr": lr,
             "grad_norm": 1.0, "grad_angle": angles[k], "step_length": 0.1 * (k + 1), "loss_batch_start": 1.0,
             "loss_full_start": 1.0, "interior_minimum_batch": interior_batch[k],
             "interior_minimum_full": interior_full[k]} for k in range(n)]


def test_walk_summary_averages_the_last_half_of_each_walk():
    gd = _steps("w_gd", "gd", 60, [np.nan, 10.0, 100.0, 160.0, 170.0], [True, False, False, True, True])
    sgd = _steps("w_b20", "sgd", 20, [np.nan, 30.0, 50.0, 70.0], [True, True, False, False])
    steps = pd.DataFrame(sgd[::-1] + gd[::-1])  # out of step order: the last steps are found by step
    late = cn.late_steps(steps)
    assert sorted(late.loc[late["walk"] == "w_gd", "step"]) == [2, 3, 4]  # ⌈0.5 · 5⌉ = 3
    assert sorted(late.loc[late["walk"] == "w_b20", "step"]) == [2, 3]
    s = cn.walk_summary(steps).set_index("walk")
    assert list(s.index) == ["w_b20", "w_gd"]
    assert s.loc["w_gd", "mean_angle"] == pytest.approx((100 + 160 + 170) / 3)
    assert s.loc["w_gd", "interior_full"] == pytest.approx(2 / 3) and s.loc["w_gd", "interior_batch"] == pytest.approx(1 / 3)
    assert s.loc["w_b20", "mean_angle"] == pytest.approx(60.0)
    assert (s.loc["w_b20", "interior_full"], s.loc["w_b20", "interior_batch"]) == (0.0, 1.0)
    assert s.loc["w_gd", "steps"] == 3 and s.loc["w_gd", "method"] == "gd" and s.loc["w_gd", "batch_size"] == 60
    assert s.loc["w_gd", "mean_step_length"] == pytest.approx(0.4)  # 0.3, 0.4, 0.5
    tail = cn.walk_summary(steps, fraction=0.1).set_index("walk")  # at least one step: the last
    assert tail.loc["w_gd", "mean_angle"] == 170.0 and tail.loc["w_b20", "steps"] == 1


# --------------------------------------------------------------------------- findings


def _finding(name):
    return next(f for f in cn.FINDINGS if f.name == name)


def test_every_finding_reads_its_sections_tables():
    assert [f.name for f in cn.FINDINGS] == ["curve_removes_barrier", "gd_gradients_opposite",
                                             "segments_valley_floor"]
    assert {f.name: (f.tables, f.section) for f in cn.FINDINGS} == {
        "curve_removes_barrier": (("curve_profiles",), "curves"),
        "gd_gradients_opposite": (("walk_steps",), "walk"), "segments_valley_floor": (("walk_steps",), "walk")}


@pytest.mark.parametrize("curve_height, verdict", [(0.3, FD.REPRODUCED), (0.5, FD.REPRODUCED),
                                                   (0.8, FD.NOT_REPRODUCED)])
def test_curve_removes_barrier_is_the_largest_ratio_over_pairs_with_a_line_barrier(curve_height, verdict, config):
    rows = _profile("a", bump(1.0, 1.0, 1.0), bump(1.0, 1.0, curve_height))
    rows += _profile("c", bump(1.0, 1.2, 2.0), bump(1.0, 1.2, 0.2))  # ratio 0.1
    rows += _profile("flat", bump(1.0, 1.0, 0.04), bump(1.0, 1.0, 0.04))  # line barrier under the floor: ignored
    result = _finding("curve_removes_barrier").measure({"curve_profiles": pd.DataFrame(rows)}, config)
    assert result.value == pytest.approx(curve_height) and result.verdict == verdict
    assert "a: line 1, curve" in result.detail and "flat" not in result.detail


def test_curve_removes_barrier_is_not_run_without_a_line_barrier(config):
    rows = _profile("a", bump(1.0, 1.0, 0.04), bump(1.0, 1.0, 0.0)) + _profile("b", [1.0] * 5, [1.0] * 5)
    assert cn.BARRIER_FLOOR == 0.05
    result = _finding("curve_removes_barrier").measure({"curve_profiles": pd.DataFrame(rows)}, config)
    assert result.verdict == FD.NOT_RUN and "0.04" in result.detail


def _walk_tables(gd_angles=None, gd_interior=None, n=10):
    sgd = _steps("w_b20", "sgd", 20, [np.nan] + [170.0] * (n - 1), [True] * n)  # the opposite of every gd value
    gd = [] if gd_angles is None else _steps("w_gd", "gd", 60, gd_angles, gd_interior)
    return {"walk_steps": pd.DataFrame(sgd + gd)}


@pytest.mark.parametrize("late_angle, verdict", [(165.0, FD.REPRODUCED), (150.0, FD.REPRODUCED),
                                                 (100.0, FD.NOT_REPRODUCED)])
def test_gd_gradients_opposite_is_the_late_mean_angle_of_gradient_descent(late_angle, verdict, config):
    angles = [np.nan] + [20.0] * 4 + [late_angle] * 5  # the early steps are left out
    result = _finding("gd_gradients_opposite").measure(_walk_tables(angles, [False] * 10), config)
    assert result.value == pytest.approx(late_angle) and result.verdict == verdict
    assert "SGD batch 20: 170°" in result.detail
    spread = [np.nan] * 5 + [140.0, 150.0, 160.0, 170.0, 180.0]
    r = _finding("gd_gradients_opposite").measure(_walk_tables(spread, [False] * 10), config)
    assert r.value == pytest.approx(160.0) and r.low < 160.0 < r.high  # a bootstrap interval around the mean


@pytest.mark.parametrize("late_interior, share, verdict", [(4, 0.8, FD.REPRODUCED), (1, 0.2, FD.NOT_REPRODUCED)])
def test_segments_valley_floor_is_the_late_share_of_interior_minima(late_interior, share, verdict, config):
    interior = [False] * 5 + [True] * late_interior + [False] * (5 - late_interior)
    interior = [True] * 5 + interior[5:]  # the early steps' minima do not count
    result = _finding("segments_valley_floor").measure(_walk_tables([np.nan] + [90.0] * 9, interior), config)
    assert result.value == pytest.approx(share) and result.verdict == verdict


@pytest.mark.parametrize("name", ["gd_gradients_opposite", "segments_valley_floor"])
def test_walk_findings_are_not_run_without_a_gradient_descent_walk(name, config):
    result = _finding(name).measure(_walk_tables(), config)
    assert result.verdict == FD.NOT_RUN and math.isnan(result.value) and "walk.gd" in result.detail


def test_segments_valley_floor_states_the_walks_own_step_count(config):
    tables = _walk_tables([np.nan, 90.0, 90.0, 90.0, 90.0], [True] * 5)
    result = _finding("segments_valley_floor").measure(tables, config)
    assert result.detail.startswith("3 late steps")   # the last ⌈0.5·5⌉ of the walk


def test_findings_are_evaluated_from_the_registry(config):
    rows = _profile("a", bump(1.0, 1.0, 1.0), bump(1.0, 1.0, 0.1))
    tables = {"curve_profiles": pd.DataFrame(rows), **_walk_tables([np.nan] + [175.0] * 9, [True] * 10)}
    frame = FD.evaluate(config, tables).set_index("finding")
    for name in ("curve_removes_barrier", "gd_gradients_opposite", "segments_valley_floor"):
        assert frame.loc[name, "family"] == "connectivity" and frame.loc[name, "verdict"] == FD.REPRODUCED, name
    assert frame.loc["curve_removes_barrier", "measured"] == pytest.approx(0.1)
