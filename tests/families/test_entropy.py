"""The entropy family (zhang2018): its config check, job parameters, one dynamics job and one
students job on tiny data against direct computation, and the findings on hand-made tables."""

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
from families.test_entropy_captions import drift_table, solutions_table, students_table, tables
from lossland.pipeline import config as C
from lossland.pipeline import findings as FD
from lossland.pipeline.families import entropy as en

# --------------------------------------------------------------------------- the config check


def test_valid_config_passes_with_the_schemas_defaults(config):
    assert en.check(config) == []
    e, d = config["entropy"], config["deep_linear"]
    assert (e["parameters"], e["lr"], e["batch_size"], e["noise_chunks"], e["dynamics"]) == (
        1320, 0.1, 50, 10, ["sgd", "langevin", "gd"])
    assert d["inits"] == ["balanced", "unbalanced"] and d["init_scale"] == {"low": 0.1, "high": 1.5}


def test_zhang2018s_net_has_1320_parameters(config):
    assert en.count_parameters(config) == 1320


@pytest.mark.parametrize("edit, expected", [
    (lambda c: c["entropy"].update(parameters=1000),
     "entropy.parameters: models.zhang on planes's images has 1320 parameters, not 1000; allowed: 1320, or null to "
     "skip the check"),
    (lambda c: c["entropy"].update(model="mlp"),
     "entropy.model: models.mlp must be an MLP with binary: true and no BatchNorm (zhang2018's net); allowed: arch "
     "mlp, binary true, batch_norm false"),
    (lambda c: c["entropy"].update(dataset="tiny"),
     "entropy.dataset: datasets.tiny.classes must name two classes (zhang2018: [airplane, automobile]); allowed: a "
     "list of two CIFAR-10 classes"),
    (lambda c: c["entropy"].update(noise_chunks=7),
     "entropy.noise_chunks: 7 does not divide the 100 training images of planes; allowed: a divisor of 100"),
    (lambda c: c["entropy"].update(batch_size=101),
     "entropy.batch_size: 101 is larger than the 100 training images; allowed: 1 to 100"),
    (lambda c: c["deep_linear"].update(examples=12),
     "deep_linear.examples: 12 examples for 12 inputs is not underdetermined; allowed: fewer than deep_linear.inputs "
     "(12)"),
    (lambda c: c["deep_linear"].update(init_scale={"low": 2.0, "high": 1.0}),
     "deep_linear.init_scale: low 2.0 is above high 1.0; allowed: low <= high"),
], ids=["parameters", "model", "classes", "chunks", "batch", "overdetermined", "scale"])
def test_each_problem_is_one_message_naming_the_key_and_the_allowed_values(edit, expected, schema):
    assert _problems(edit, schema) == [expected]


def test_an_unknown_dynamics_is_refused_by_the_schema(schema):
    problems = _problems(lambda c: c["entropy"].update(dynamics=["sgd", "adam"]), schema)
    assert len(problems) == 1 and problems[0].startswith("entropy.dynamics[1]") and "langevin" in problems[0]


def test_an_analysis_section_cannot_study_the_entropy_section(schema):
    problems = _problems(lambda c: c["walk"].update(study="entropy"), schema)
    assert problems == ["walk.study: 'entropy' is not allowed; allowed values: 'optimizer_study', 'rk2_study', "
                        "'init_study'"]


def test_either_section_alone_is_a_complete_study(schema):
    for keep in ("entropy", "deep_linear"):
        cfg = {k: v for k, v in copy.deepcopy(TINY).items() if k in ("device", "threads", "datasets", "models",
                                                                    "optimizers", "training", keep)}
        checked = C.check_config(cfg, schema)
        assert en.tables(checked) == ([f"entropy_{t}" for t in en.DYNAMICS_TABLES] if keep == "entropy" else
                                      ["deep_linear_solutions", "deep_linear_history", "deep_linear_drift"])


def test_a_dynamics_job_depends_only_on_its_own_settings(config):
    sgd, langevin = en.dynamics_params(config, "sgd"), en.dynamics_params(config, "langevin")
    assert "sgd_epochs" in sgd and "langevin_steps" not in sgd and "gd_steps" not in sgd
    assert "langevin_steps" in langevin and "noise_chunks" in langevin and "batch_size" not in langevin
    assert sgd["model"] == config["models"]["zhang"]
    assert "drift" not in en.student_params(config, "balanced") and "epochs" not in en.drift_params(config)


def test_files_follow_the_configured_dynamics_and_inits(config):
    cfg = copy.deepcopy(dict(config))
    cfg["entropy"] = dict(cfg["entropy"], dynamics=["gd"])
    assert en.dynamics_files(cfg)["solutions"] == ["results/entropy/gd/solutions.parquet"]
    assert en.student_files(config)["drift"] == ["results/entropy/deep_linear/drift.parquet"]
    assert en.student_files(config)["history"] == ["results/entropy/deep_linear/balanced/history.parquet",
                                                   "results/entropy/deep_linear/unbalanced/history.parquet"]


# --------------------------------------------------------------------------- one job


@pytest.fixture(scope="module")
def planes():
    ds = lossland.prepare(lossland.read_source("embedded"), classes=["airplane", "automobile"], train_size=60,
                          test_size=40, image_size=6)
    return ds.splits["train"], ds.splits["test"]


@pytest.fixture(scope="module")
def gd_job(config, planes):
    params = dict(en.dynamics_params(config, "gd"), members=3, gd_steps=20, descent_max_steps=5)
    train, test = planes
    return params, en.run_dynamics((train.x, train.y), (test.x, test.y), params)


def test_solutions_have_the_contract_columns_and_the_direct_measures(gd_job, planes):
    params, out = gd_job
    s = out["solutions"]
    assert list(s.columns[:6]) == ["run", "method", "member", "entropy", "neg_log_trace", "test_error"]
    assert list(s["run"]) == ["gd-0", "gd-1", "gd-2"] and len(set(s["init_seed"])) == 3
    train, test = planes
    # member 1 redone by hand: the same init, 20 + 5 full-batch steps of plain autograd gradient descent
    model = lossland.create_model(params["model"], (3, 6, 6), 2, seed=int(s.loc[1, "init_seed"]))
    wd = params["weight_decay"]
    opt = torch.optim.SGD(model.parameters(), lr=params["lr"], weight_decay=wd)
    for _ in range(20 + int(s.loc[1, "descent_steps"])):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(model(train.x)[:, 0], train.y.float()).backward()
        opt.step()
    with torch.no_grad():
        test_error = float(((model(test.x)[:, 0] > 0).long() != test.y).double().mean())
    assert s.loc[1, "test_error"] == pytest.approx(test_error)
    lam = torch.linalg.eigvalsh(lossland.hessian(model, (train.x, train.y)).double()) + wd
    kept = lam[lam > -lam.min()] if lam.min() < 0 else lam[lam > 0]
    assert s.loc[1, "entropy"] == pytest.approx(float(-torch.log(kept).sum() / (2 * 1320)), rel=1e-3)
    assert s.loc[1, "neg_log_trace"] == pytest.approx(-math.log(float(lam.sum())), rel=1e-3)
    spectra = out["spectra"]
    assert len(spectra) == 3 * 1320 and set(spectra["run"]) == set(s["run"])


def test_history_records_both_phases(gd_job):
    _, out = gd_job
    h = out["history"]
    assert set(h["phase"]) == {"train", "descent"} and set(h["method"]) == {"gd"}
    assert h[h["phase"] == "descent"]["step"].min() >= 20


def test_the_same_member_starts_from_the_same_init_in_every_dynamics(config, planes):
    train, test = planes
    out = {}
    for d in ("sgd", "langevin"):
        params = dict(en.dynamics_params(config, d), members=2, sgd_epochs=1, langevin_steps=2, descent_max_steps=0,
                      batch_size=20)
        out[d] = en.run_dynamics((train.x, train.y), (test.x, test.y), params)["solutions"]
    assert list(out["sgd"]["init_seed"]) == list(out["langevin"]["init_seed"])


@pytest.fixture(scope="module")
def students(config):
    params = dict(en.student_params(config, "balanced"), members=3, epochs=500, lr=0.02, descent_max_steps=3000)
    return params, en.run_students(params)


def test_students_fit_the_data_and_their_errors_are_exact(students):
    from lossland import deep_linear as DL

    params, out = students
    s = out["solutions"]
    assert (s["train_loss"] < 1e-6).all() and (s["kept"] == params["examples"]).all()
    data, flat, scales, _ = en.student_setup(params, "balanced", 3)
    assert list(s["init_scale"]) == pytest.approx(scales.tolist())
    assert (s["gen_error"] >= data.noise_variance).all()
    assert s["test_error"].tolist() == s["gen_error"].tolist()
    # the weight norm and the prediction are consistent: predicted - |W|^2 is one intercept for all
    assert np.ptp(s["predicted_gen_error"] - s["weight_norm"]) < 1e-8
    assert (s["predicted_gen_error"] - s["weight_norm"]).iloc[0] == pytest.approx(DL.prediction_intercept(data))


def test_unbalanced_students_share_the_balanced_scales_and_differ_in_balance(config):
    params = en.student_params(config, "unbalanced")
    _, flat_b, scales_b, a_b = en.student_setup(params, "balanced", 4)
    _, flat_u, scales_u, a_u = en.student_setup(params, "unbalanced", 4)
    assert torch.equal(scales_b, scales_u) and torch.equal(a_b, torch.ones(4))
    d, h = params["inputs"], params["hidden"]
    assert torch.allclose(flat_u[:, :h * d], flat_b[:, :h * d] * a_u[:, None])
    assert torch.allclose(flat_u[:, h * d:], flat_b[:, h * d:] / a_u[:, None])
    assert (a_u != 1).all() and (a_u.log10().abs() <= math.log10(params["imbalance"]) + 1e-12).all()


def test_the_drift_table_has_every_method_and_learning_rate(config):
    drift = en.run_drift(en.drift_params(config))
    assert set(zip(drift["method"], drift["lr"])) == {(m, lr) for m in ("gd", "sgd") for lr in (0.005, 0.01)}
    first = drift[drift["step"] == 0]
    assert (first["drift"] == 0).all()
    last = drift.sort_values("step").groupby(["method", "lr"]).tail(1)
    assert last["time"].tolist() == pytest.approx([1.0] * 4, rel=0.01)


# --------------------------------------------------------------------------- measures and findings


def test_correlations_and_fits_on_known_data():
    x = np.arange(10.0)
    assert en.pearson(x, 3 * x + 1) == 1.0 and en.spearman(x, np.exp(x)) == 1.0
    assert en.pearson(x, -x) == -1.0 and math.isnan(en.pearson(x[:2], x[:2]))
    assert en.linear_fit(x, 2 * x + 5) == pytest.approx((2.0, 5.0))
    value, low, high = en.bootstrap_correlation(x, -x ** 3)
    assert value == -1.0 and high == -1.0


def test_paired_difference_pairs_members():
    s = solutions_table()
    assert en.paired_difference(s) == pytest.approx((0.05, 0.05, 0.05))
    shuffled = s.sample(frac=1.0, random_state=0)
    assert en.paired_difference(shuffled) == pytest.approx((0.05, 0.05, 0.05))


def _finding(name):
    return next(f for f in en.FINDINGS if f.name == name)


def test_sgd_wider_than_langevin_is_the_paired_difference(config):
    m = _finding("sgd_wider_than_langevin").measure(tables(), config)
    assert (m.value, m.verdict) == (pytest.approx(0.05), FD.REPRODUCED)
    flipped = solutions_table()
    flipped.loc[flipped["method"] == "sgd", "entropy"] -= 0.1
    m = _finding("sgd_wider_than_langevin").measure({"entropy_solutions": flipped}, config)
    assert (m.value, m.verdict) == (pytest.approx(-0.05), FD.NOT_REPRODUCED)
    only = solutions_table(methods=("sgd", "gd"))
    assert _finding("sgd_wider_than_langevin").measure({"entropy_solutions": only}, config).verdict == FD.NOT_RUN


def test_entropy_test_error_reads_the_sgd_solutions(config):
    m = _finding("entropy_test_error_negative").measure(tables(), config)
    assert (m.value, m.verdict) == (-1.0, FD.REPRODUCED)
    s = solutions_table()
    s["test_error"] = 0.1 + s["entropy"]
    assert _finding("entropy_test_error_negative").measure({"entropy_solutions": s}, config).verdict == \
        FD.NOT_REPRODUCED


def test_deep_linear_findings(config):
    t = tables()
    m = _finding("deep_linear_entropy_generalisation").measure(t, config)
    assert m.verdict == FD.REPRODUCED and m.value < -0.9 and "unbalanced" in m.detail
    m = _finding("deep_linear_norm_line").measure(t, config)
    assert m.verdict == FD.REPRODUCED and m.value == pytest.approx(en.linear_fit(
        t["deep_linear_solutions"]["weight_norm"], t["deep_linear_solutions"]["gen_error"])[0])
    m = _finding("gd_conserves_invariant").measure(t, config)
    # GD's drift: lr·step/100 at step 200: 0.01 at lr 0.005, 0.02 at lr 0.01 (ratio 2 = the lr ratio)
    assert (m.value, m.verdict) == (pytest.approx(0.01), FD.REPRODUCED)
    flat = drift_table()
    flat.loc[flat["method"] == "gd", "relative_drift"] = 0.3
    assert _finding("gd_conserves_invariant").measure({"deep_linear_drift": flat}, config).verdict == \
        FD.NOT_REPRODUCED


def test_findings_are_evaluated_from_the_registry(config):
    frame = FD.evaluate(config, tables())
    ours = frame[frame["family"] == "entropy"]
    assert list(ours["finding"]) == [f.name for f in en.FINDINGS]
    assert set(ours["verdict"]) == {FD.REPRODUCED}


def test_students_table_is_what_the_figures_read():
    s = students_table()
    assert {"entropy", "neg_log_trace", "weight_norm", "gen_error", "predicted_gen_error", "init"} <= set(s.columns)
    assert isinstance(s, pd.DataFrame)
