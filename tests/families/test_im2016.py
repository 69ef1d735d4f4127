"""The im2016 family: the studies' run table, names, switches and learning-rate grids."""

import copy

import pytest
import yaml
from conftest import ROOT

from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.pipeline import runs as R
from lossland.pipeline.families import im2016


def _config(path="config.yaml"):
    return yaml.safe_load((ROOT / path).read_text())


@pytest.fixture(scope="module")
def schema():
    return C.load_schema()


def test_run_table_shares_inits_and_batches(schema):
    cfg = C.check_config(_config(), schema)
    members = im2016.study_runs(cfg, "optimizer_study")
    names = [r["run"] for r in members]
    assert "nin_sgd-lr0.1_init0" in names and "nin_adam-lr0.001_init1" in names
    opt = cfg["optimizer_study"]
    n_lrs = sum(len(opt["lr_grids"].get(o, [0])) for o in opt["optimizers"])
    assert len(names) == n_lrs * len(opt["models"]) * len(opt["init_seeds"])
    assert opt["models"] == ["nin", "vgg"] and "vgg_adam-lr0.001_init1" in names
    runs = F.run_table(cfg)
    assert {r["data_seed"] for r in runs.values()} == {0}
    assert {("cifar10-small", "nin", 0), ("cifar10-small", "nin", 1)} <= R.inits(runs)
    sgd = runs["nin_sgd-lr0.05_init0"]
    assert sgd["optimizer_spec"] == {"algorithm": "sgd", "lr": 0.05}
    assert sgd["training"]["checkpoint_epochs"] == [1, 2, 3, 4]


def test_a_run_asked_for_by_several_studies_is_one_run(schema):
    cfg = C.check_config(_config(), schema)
    runs = F.run_table(cfg)
    # SGD at lr 0.1 from init 0: a grid point of the optimizer study, the SGD of the RK2
    # and init studies and the prefix of the SGD->X switches
    shared = "nin_sgd-lr0.1_init0"
    for name in ("optimizer_study", "rk2_study", "init_study", "switch_study"):
        assert shared in [r["run"] for r in im2016.study_runs(cfg, name)], name
    assert len([n for n in runs if n == shared]) == 1


def test_switch_variants_reuse_the_first_optimizers_run(schema):
    cfg = C.check_config(_config(), schema)
    runs = F.run_table(cfg)
    s = runs["nin_S1-A3_init0"]
    assert s["kind"] == "switch" and s["switch_epoch"] == 1
    assert s["prefix_run"] == "nin_sgd-lr0.1_init0"
    assert s["first"] == "sgd" and s["then"] == "adam"
    assert s["optimizer_spec"] == {"algorithm": "adam", "lr": 0.001}
    assert {1, 2, 3} <= set(runs[s["prefix_run"]]["training"]["checkpoint_epochs"])
    assert runs["nin_ADE2-S2_init0"]["prefix_run"] == "nin_adadelta-lr1_init0"
    assert im2016.switch_label(cfg, "sgd", "adam", 50, 200) == "S50-A150"
    assert im2016.switch_epochs([0.25, 0.5, 0.75], 200) == [50, 100, 150]


def _runs_before_after(schema, edit):
    """The run tables of the default config and of a copy changed by ``edit`` (and that copy)."""
    cfg = _config()
    before = F.run_table(C.check_config(cfg, schema))
    edited = copy.deepcopy(cfg)
    edit(edited)
    return before, F.run_table(C.check_config(edited, schema)), edited


def test_changing_the_second_optimizer_changes_no_prefix(schema):
    before, after, _ = _runs_before_after(schema, lambda c: c["optimizers"]["adadelta"].update(rho=0.95))
    changed = {n for n in after if before[n] != after[n]}
    # every run that uses adadelta, and only those: S->ADE variants change, their SGD prefix does not
    assert changed == {n for n in before if "ADE" in n or "adadelta" in n}
    assert "nin_S2-ADE2_init0" in changed
    assert before["nin_S2-ADE2_init0"]["prefix_run"] == "nin_sgd-lr0.1_init0" not in changed


def test_changing_one_learning_rate_changes_only_that_optimizers_runs(schema):
    before, after, _ = _runs_before_after(schema, lambda c: c["optimizers"]["rmsprop"].update(lr=0.005))
    # RMSprop is in the optimizer study only, for NIN and VGG
    assert set(before) - set(after) == {f"{m}_rmsprop-lr0.001_init{s}" for m in ("nin", "vgg") for s in (0, 1)}
    assert set(after) - set(before) == {f"{m}_rmsprop-lr0.005_init{s}" for m in ("nin", "vgg") for s in (0, 1)}
    assert all(before[n] == after[n] for n in set(before) & set(after))


def test_changing_a_grid_adds_only_the_new_rates(schema):
    before, after, cfg = _runs_before_after(
        schema, lambda c: c["optimizer_study"]["lr_grids"].update(sgd=[0.1, 0.05, 0.01]))
    assert set(after) - set(before) == {f"{m}_sgd-lr0.01_init{s}" for m in ("nin", "vgg") for s in (0, 1)}
    assert all(before[n] == after[n] for n in before)
    groups = im2016.selection_groups(cfg, "optimizer_study")
    assert set(groups) == {("nin", "sgd"), ("vgg", "sgd")} and len(groups[("nin", "sgd")]) == 6
