"""The sharpness family (Keskar et al.'s batch sizes; Li et al.'s skip connections, depth and width):
its config check, runs and job parameters, one job of each kind against direct computation, the
measures on surfaces of known shape, and the findings on hand-made tables."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
from tiny import TINY
from tiny import config_problems as _problems

import lossland
from lossland import io
from lossland.data import DeviceBatches
from lossland.pipeline import config as C
from lossland.pipeline import findings as FD
from lossland.pipeline.families import sharpness as sh

# --------------------------------------------------------------------------- config and runs


def test_valid_config_passes_with_the_schemas_defaults(config, schema):
    assert sh.check(config) == []
    b, a = config["batch_size"], config["architecture"]
    assert (b["init_seed"], b["data_seed"], b["splits"], a["samples"]) == (0, 0, ["train", "test"], 50)
    cfg = copy.deepcopy(TINY)
    del cfg["batch_size"]["bn"]  # TINY asks for the stored statistics; the default recomputes them
    assert C.check_config(cfg, schema)["batch_size"]["bn"] == "recompute"
    assert a["plane"]["normalization"] == "filter" and a["plane"]["seeds"] == [1, 2] and a["splits"] == ["train"]
    assert a["convexity"]["tol"] == 1e-3 and a["hessian"]["split"] == "train"


def test_batch_runs_differ_only_in_batch_size_and_learning_rate(config):
    small, large = sh.section_specs(config, "batch_size")
    assert small["run"] == "mlp_sgd-lr0.05-bs20_init0" and large["run"] == "mlp_sgd-lr0.1-bs100_init0"
    assert (small["training"]["batch_size"], large["training"]["batch_size"]) == (20, 100)
    assert small["optimizer_spec"]["lr"] == 0.05 and large["optimizer_spec"]["lr"] == 0.1
    for key in ("dataset", "model", "model_spec", "init_seed", "data_seed", "optimizer"):
        assert small[key] == large[key], key
    rest = [{k: v for k, v in s["training"].items() if k != "batch_size"} for s in (small, large)]
    assert rest[0] == rest[1]
    assert sh.small_batch_run(config) == small["run"]
    assert sh.section_of(config, large["run"]) == "batch_size"


def test_architecture_runs_are_one_per_model_in_the_run_table(config):
    from lossland.pipeline.families import run_table

    specs = sh.section_specs(config, "architecture")
    assert [s["model"] for s in specs] == ["res", "res-noshort", "res-narrow"]
    table = run_table(config)
    assert all(s["run"] in table for s in specs + sh.section_specs(config, "batch_size"))
    ids = sh.run_columns(specs[1], "architecture")
    assert (ids["arch"], ids["depth"], ids["width"], ids["skip"], ids["batch_norm"]) == ("resnet", 8, 0.25, False, True)
    assert sh.model_ids({"arch": "nin", "width": 0.25}) == {"arch": "nin", "depth": 3, "width": 0.25, "skip": False,
                                                            "batch_norm": True}


def test_batch_runs_see_the_same_images_in_the_same_order_every_epoch():
    """What the family relies on: DeviceBatches draws an epoch's order (and augmentation) from the
    seed and the epoch only, so every batch size sees the same images, in the same order."""
    x = torch.randn(103, 3, 8, 8)
    y = torch.arange(103)
    for augment in (False, True):
        seen = []
        for bs in (7, 50, 103):
            batches = DeviceBatches(x, y, bs, seed=3, augment=augment)
            seen.append([torch.cat([b[i] for b in batches.epoch(e)]) for e in (1, 2) for i in (0, 1)])
        for other in seen[1:]:
            for a, b in zip(seen[0], other):
                torch.testing.assert_close(a, b, rtol=0, atol=0)
        assert not torch.equal(seen[0][1], seen[0][3])  # epochs differ from one another


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["batch_size"]["batches"].append({"batch_size": 20, "lr": 0.2}),
     "batch_size.batches: batch sizes [20, 100, 20] repeat; allowed: distinct batch sizes"),
    (lambda c: c["batch_size"]["batches"][1].update(batch_size=500),
     "batch_size.batches[1].batch_size: 500 is more than the 200 training images of tiny; allowed: 1..200"),
    (lambda c: c["batch_size"].update(training={"drop_last": True}),
     "batch_size.training.drop_last: true drops a different tail of every epoch at each batch size, so the runs "
     "would not see the same images; allowed: false"),
    (lambda c: c["architecture"].update(models=["res", "resnet9000"]),
     "architecture.models: model 'resnet9000' is not defined; allowed (the defined models): "),
    (lambda c: c["batch_size"].update(optimizer="lbfgs"),
     "batch_size.optimizer: optimizer 'lbfgs' is not defined; allowed (the defined optimizers): "),
    (lambda c: (c["architecture"].update(splits=["val"]), c["datasets"]["tiny"].pop("val_size")),
     "architecture.splits: 'val' needs datasets.tiny.val_size; allowed: train, test"),
    (lambda c: c["architecture"]["hessian"]["settings"].update(trace_probes=1),
     "architecture.hessian.settings.trace_probes: 1 is too few for deflated; allowed: 2 or more"),
])
def test_each_problem_is_one_message_naming_the_key_and_the_allowed_values(edit, expected, schema):
    problems = _problems(edit, schema)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_batch_list_of_one_is_refused_by_the_schema(schema):
    problems = _problems(lambda c: c["batch_size"].update(batches=[{"batch_size": 20, "lr": 0.1}]), schema)
    assert any(p.startswith("batch_size.batches:") for p in problems), problems


def test_either_section_alone_is_a_complete_study(schema):
    for keep in ("batch_size", "architecture"):
        cfg = {k: v for k, v in copy.deepcopy(TINY).items() if k in ("device", "threads", "datasets", "models",
                                                                      "optimizers", "training", keep)}
        checked = C.check_config(cfg, schema)
        assert sh.tables(checked) == list(sh.BATCH_TABLES if keep == "batch_size" else sh.ARCH_TABLES)


# --------------------------------------------------------------------------- files and parameters


def test_gather_inputs_follow_the_configured_runs_and_shards(config):
    b = sh.gather_inputs(config, "batch_size")
    assert b["lines"] == [sh.line_path("mlp_sgd-lr0.1-bs100_init0")]
    assert len(b["metrics"]) == len(b["hessian"]) == 2
    a = sh.gather_inputs(config, "architecture")
    assert sh.shards(config) == 1 and len(a["surfaces"]) == 3 and len(a["convexity"]) == 3
    cfg = copy.deepcopy(config)
    cfg["architecture"]["shard_points"] = 3  # one grid row a shard
    assert sh.shards(cfg) == 3 and len(sh.gather_inputs(cfg, "architecture")["surfaces"]) == 9


def test_a_job_depends_only_on_its_own_settings(config):
    from lossland.pipeline.families import run_table

    runs = run_table(config)
    run = sh.section_specs(config, "architecture")[0]["run"]
    before = (sh.surface_job_params(config, run, runs), sh.convexity_params(config, run, runs),
              sh.hessian_params(config, run))
    cfg = copy.deepcopy(config)
    cfg["architecture"]["convexity"]["num"] = 3
    after = (sh.surface_job_params(cfg, run, runs), sh.convexity_params(cfg, run, runs), sh.hessian_params(cfg, run))
    assert before[0] == after[0] and before[2] == after[2] and before[1] != after[1]


def test_convexity_axes_span_the_plane_or_hold_the_centre():
    plane = {"x": {"start": -1.0, "stop": 1.0, "num": 11}, "y": {"start": -0.5, "stop": 0.5, "num": 11}}
    assert sh.convexity_axes(plane, 3) == ([-1.0, 0.0, 1.0], [-0.5, 0.0, 0.5])
    assert sh.convexity_axes(plane, 1) == ([0.0], [0.0])


# --------------------------------------------------------------------------- one job of each kind


@pytest.fixture(scope="module")
def bn_net():
    torch.manual_seed(0)
    model = lossland.create_model({"arch": "resnet", "depth": 8, "width": 0.25}, (3, 8, 8), 10, seed=0)
    x, y = torch.randn(40, 3, 8, 8), torch.randint(0, 10, (40,))
    model.train()
    with torch.no_grad():
        model(x)  # BN statistics away from the identity
    model.eval()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    end = {k: (v + 0.05 * torch.randn_like(v)) if v.is_floating_point() and "running_var" not in k else v.clone()
           for k, v in start.items()}
    return model, start, end, (x, y)


def test_line_ends_are_the_two_solutions(bn_net):
    model, small, large, data = bn_net
    params = {"line": {"start": -0.5, "stop": 1.5, "num": 5}, "splits": ["train"], "bn": "stored",
              "ids": {"start": "a", "end": "b", "batch_size_start": 10, "batch_size_end": 100}}
    table = sh.evaluate_line(model, small, large, {"train": data}, params)
    assert list(table.columns[:4]) == ["start", "end", "batch_size_start", "batch_size_end"]
    assert list(table["alpha"]) == [-0.5, 0.0, 0.5, 1.0, 1.5]
    for alpha, state in ((0.0, small), (1.0, large)):
        model.load_state_dict(state)
        direct = lossland.evaluate(model, data)
        row = table[table["alpha"] == alpha].iloc[0]
        assert row["loss"] == pytest.approx(direct["loss"], rel=1e-5)
        assert row["accuracy"] == pytest.approx(direct["accuracy"])
    model.load_state_dict(small)


def test_convexity_job_at_the_centre_is_the_solutions_hessian(bn_net):
    model, origin, _, data = bn_net
    params = {"plane": {"x": {"start": -1, "stop": 1, "num": 3}, "y": {"start": -1, "stop": 1, "num": 3},
                        "normalization": "filter", "seeds": [1, 2]},
              "convexity": {"num": 1, "tol": 1e-6, "max_iter": 40}, "split": "train", "ids": {"run": "r"}}
    table = sh.evaluate_convexity(model, origin, data, params)
    assert len(table) == 1 and (table["x"].iloc[0], table["y"].iloc[0]) == (0.0, 0.0)
    direct = lossland.extreme_eigenvalues(model, data, tol=1e-6, max_iter=40)
    assert table["top_eigenvalue"].iloc[0] == pytest.approx(direct["top_eigenvalue"], rel=1e-6)
    assert table["convexity_ratio"].iloc[0] == pytest.approx(direct["convexity_ratio"], rel=1e-5)


def test_solutions_table_joins_the_last_metrics_and_the_hessian(tmp_path):
    metrics = pd.DataFrame({"epoch": [0, 2, 1], "train_loss": [2.3, 0.5, 1.0], "train_acc": [0.1, 0.9, 0.5],
                            "test_loss": [2.3, 0.8, 1.1], "test_acc": [0.1, 0.7, 0.5],
                            "dist_from_init": [0.0, 3.0, 2.0], "diverged": [False, False, False]})
    summary = pd.DataFrame([{"top_eigenvalue": 10.0, "bottom_eigenvalue": -2.0, "trace": 30.0,
                             "epsilon_sharpness": 4.0, "negative_fraction": 0.1, "n_params": 99}])
    io.write_parquet(metrics, tmp_path / "m.parquet")
    io.write_parquet(summary, tmp_path / "h.parquet")
    table = sh.solutions_table([str(tmp_path / "m.parquet")], [str(tmp_path / "h.parquet")], [{"run": "r", "depth": 8}])
    row = table.iloc[0]
    assert (row["run"], row["depth"], row["epoch"], row["train_acc"], row["dist_from_init"]) == ("r", 8, 2, 0.9, 3.0)
    assert row["convexity_ratio"] == pytest.approx(0.2) and row["n_params"] == 99


# --------------------------------------------------------------------------- measures on known surfaces


def _surface(f, n=7, run="r"):
    xs = np.linspace(-1, 1, n)
    rows = [{"run": run, "split": "train", "x": x, "y": y, "loss": f(x, y)} for x in xs for y in xs]
    return pd.DataFrame(rows)


def test_surface_nonconvexity_of_a_bowl_a_saddle_and_a_ridge():
    assert sh.surface_nonconvexity(_surface(lambda x, y: x ** 2 + 3 * y ** 2)) == 0.0
    assert sh.surface_nonconvexity(_surface(lambda x, y: x ** 2 - y ** 2)) == 1.0
    # cos(3x): convex only where |3x| > pi/2, i.e. |x| > 0.52: rows x = ±2/3 and ±1 of 7 (interior: ±2/3 of 5)
    assert sh.surface_nonconvexity(_surface(lambda x, y: np.cos(3 * x) + y ** 2)) == pytest.approx(3 / 5)
    assert math.isnan(sh.surface_nonconvexity(_surface(lambda x, y: x ** 2, n=2)))
    assert math.isnan(sh.surface_nonconvexity(_surface(lambda x, y: np.nan)))


def _arch_solutions():
    rows = []
    for depth, skip, width, top, ratio in ((8, True, 0.5, 50.0, 0.05), (8, False, 0.5, 120.0, 0.1),
                                           (14, True, 0.5, 80.0, 0.04), (14, False, 0.5, 300.0, 0.3),
                                           (8, True, 0.25, 90.0, 0.1), (8, True, 1.0, 40.0, 0.02)):
        run = f"r{depth}{'' if skip else 'n'}w{width}"
        rows.append({"run": run, "arch": "resnet", "depth": depth, "width": width, "skip": skip,
                     "batch_norm": True, "top_eigenvalue": top, "convexity_ratio": ratio, "test_acc": 0.5})
    return pd.DataFrame(rows)


def test_skip_pairs_and_width_groups():
    s = _arch_solutions()
    pairs = sh.skip_pairs(s)
    assert list(pairs) == [8, 14]
    # depth 8 has skips at widths 0.25, 0.5 and 1; only 0.5 has both variants
    assert pairs[8][True]["run"] == "r8w0.5" and pairs[8][False]["run"] == "r8nw0.5"
    groups = sh.width_groups(s)
    assert list(groups) == [("resnet", 8, True, True)]
    assert list(groups[("resnet", 8, True, True)]["width"]) == [0.25, 0.5, 1.0]


# --------------------------------------------------------------------------- findings


def _batch_solutions(top_small, top_large, eps_small, eps_large, acc_small, acc_large):
    return pd.DataFrame([
        {"run": "s", "batch_size": 32, "top_eigenvalue": top_small, "epsilon_sharpness": eps_small,
         "test_acc": acc_small, "train_acc": 0.9},
        {"run": "l", "batch_size": 512, "top_eigenvalue": top_large, "epsilon_sharpness": eps_large,
         "test_acc": acc_large, "train_acc": 0.9}])


def _finding(name):
    return next(f for f in sh.FINDINGS if f.name == name)


def test_large_batch_findings():
    sharper = _finding("large_batch_sharper").measure({"batch_size_solutions": _batch_solutions(10, 30, 2, 5, 0.8, 0.7)},
                                                     {})
    assert sharper.value == pytest.approx(3.0) and sharper.verdict == FD.REPRODUCED
    mixed = _finding("large_batch_sharper").measure({"batch_size_solutions": _batch_solutions(10, 30, 5, 2, 0.8, 0.7)},
                                                   {})
    assert mixed.verdict == FD.NOT_REPRODUCED  # the ε-sharpness disagrees
    worse = _finding("large_batch_generalises_worse").measure(
        {"batch_size_solutions": _batch_solutions(10, 30, 2, 5, 0.8, 0.7)}, {})
    assert worse.value == pytest.approx(0.1) and worse.verdict == FD.REPRODUCED


def test_architecture_findings():
    s = _arch_solutions()
    conv = pd.DataFrame([{"run": r, "convexity_ratio": v} for r, vals in
                         (("r8w0.5", [0.1, 0.2]), ("r8nw0.5", [0.3, 0.3]), ("r14w0.5", [0.1, 0.1]),
                          ("r14nw0.5", [0.5, 0.7])) for v in vals])
    convex = _finding("skips_keep_convexity").measure({"architecture_solutions": s, "architecture_convexity": conv}, {})
    assert convex.value == pytest.approx(0.3 - 0.04) and convex.verdict == FD.REPRODUCED   # the centres at depth 14
    assert "map mean 0.1 vs 0.6" in convex.detail
    flipped = s.assign(convexity_ratio=s["convexity_ratio"].where(s["run"] != "r14nw0.5", 0.01))
    assert _finding("skips_keep_convexity").measure({"architecture_solutions": flipped,
                                                     "architecture_convexity": conv}, {}).verdict == FD.NOT_REPRODUCED
    surfaces = pd.concat([_surface(lambda x, y: x ** 2 + y ** 2, run="r14w0.5"),
                          _surface(lambda x, y: x ** 2 - y ** 2, run="r14nw0.5"),
                          _surface(lambda x, y: x ** 2 + y ** 2, run="r8w0.5"),
                          _surface(lambda x, y: x ** 2 + y ** 2, run="r8nw0.5")])
    chaos = _finding("no_skip_surfaces_chaotic").measure({"architecture_solutions": s,
                                                          "architecture_surfaces": surfaces}, {})
    assert chaos.value == pytest.approx(1.0) and chaos.verdict == FD.REPRODUCED
    wider = _finding("wider_flatter").measure({"architecture_solutions": s}, {})
    assert wider.value == pytest.approx(40 / 90) and wider.verdict == FD.REPRODUCED  # 90 -> 50 -> 40 with width
    s.loc[s["run"] == "r8w1.0", "top_eigenvalue"] = 60.0
    assert _finding("wider_flatter").measure({"architecture_solutions": s}, {}).verdict == FD.NOT_REPRODUCED


def test_findings_not_run_without_the_pairs_they_compare():
    s = _arch_solutions()
    only_skips = s[s["skip"]]
    assert _finding("skips_keep_convexity").measure(
        {"architecture_solutions": only_skips, "architecture_convexity": pd.DataFrame(columns=["run"])},
        {}).verdict == FD.NOT_RUN
    assert _finding("wider_flatter").measure({"architecture_solutions": s[s["width"] == 0.5]}, {}).verdict == FD.NOT_RUN
