"""Caption numbers, caption templates and figures of the entropy family (zhang2018): hand-made
tables with the workflow's columns whose means, paired differences and correlations are known;
every template rendered under StrictUndefined into reStructuredText that docutils parses
without a warning."""

from __future__ import annotations

import copy
import inspect

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from tiny import TINY

from families.test_connectivity_captions import parse_rst
from lossland.pipeline import captions
from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.pipeline.families import entropy as en
from lossland.plots import caption_numbers, entropy, figure_function

MEMBERS = 6
#: entropy of member k: base + step·k per dynamics (SGD above Langevin by 0.05 for every member)
BASE = {"sgd": 0.30, "langevin": 0.25, "gd": 0.20}


def solutions_table(methods=tuple(BASE), members=MEMBERS) -> pd.DataFrame:
    rows = []
    for m in methods:
        for k in range(members):
            s = BASE[m] + 0.01 * k
            rows.append({"run": f"{m}-{k}", "method": m, "member": k, "entropy": s, "neg_log_trace": 2 * s + 1,
                         "test_error": 0.4 - s / 2, "init_seed": 100 + k, "train_loss": 1e-3, "objective": 2e-3,
                         "train_error": 0.0, "grad_norm": 1e-5, "grad_max": 5e-6, "converged": k > 0,
                         "diverged": False, "train_steps": 100, "descent_steps": 10, "weight_norm": 5.0,
                         "negative_fraction": 0.1, "kept": 100 + k, "top_eigenvalue": 3.0, "min_eigenvalue": -0.01})
    return pd.DataFrame(rows)


def students_table(members=MEMBERS) -> pd.DataFrame:
    rows = []
    for init in ("balanced", "unbalanced"):
        for k in range(members):
            norm = 10.0 + k
            # balanced: entropy falls with the norm; unbalanced: entropy alternates (weaker correlation)
            s = -0.01 * norm if init == "balanced" else -0.01 * (10 + (k % 2) * 5)
            rows.append({"run": f"{init}-{k}", "method": "sgd", "init": init, "member": k, "init_scale": 0.5,
                         "test_error": 2 * norm + 3, "imbalance": 1.0, "entropy": s, "neg_log_trace": 3 * s,
                         "negative_fraction": 0.0, "kept": 6, "top_eigenvalue": 5.0, "min_eigenvalue": 0.0,
                         "weight_norm": norm, "gen_error": norm + 3.0 + (0.5 if k % 2 else -0.5),
                         "predicted_gen_error": norm + 3.0, "train_loss": 1e-20, "converged": True, "diverged": False,
                         "descent_steps": 5, "w1_norm": 1.0, "w2_norm": 1.0, "invariant_norm": 0.1 * (k + 1),
                         "invariant_change": 0.01})
    return pd.DataFrame(rows)


def drift_table() -> pd.DataFrame:
    rows = []
    for method, scale in (("gd", 1.0), ("sgd", 10.0)):
        for lr in (0.005, 0.01):
            for step in (0, 100, 200):
                rows.append({"method": method, "lr": lr, "step": step, "time": lr * step, "drift": scale * lr * step,
                             "relative_drift": scale * lr * step / 100, "loss": 1.0})
    return pd.DataFrame(rows)


def tables() -> dict[str, pd.DataFrame]:
    return {"entropy_solutions": solutions_table(), "deep_linear_solutions": students_table(),
            "deep_linear_drift": drift_table()}


@pytest.fixture(scope="module")
def config():
    return C.check_config(copy.deepcopy(TINY), C.load_schema())


def numbers(name, t=None):
    t = tables() if t is None else t
    fig = en.FIGURES[name]
    return caption_numbers(fig.function)(*[t[x] for x in fig.tables], optimizers=list(TINY["optimizers"]))


def test_every_figure_function_has_caption_numbers_called_like_it():
    assert set(entropy.CAPTION_NUMBERS) == set(entropy.FIGURE_FUNCTIONS)
    assert {f.function.split(".")[1] for f in en.FIGURES.values()} == set(entropy.FIGURE_FUNCTIONS)
    for name in entropy.FIGURE_FUNCTIONS:
        fn = caption_numbers(f"entropy.{name}")
        assert list(inspect.signature(fn).parameters) == list(
            inspect.signature(figure_function(f"entropy.{name}")).parameters), name
    assert {n: F.figure_section(n) for n in en.FIGURES} == {
        "zhang_fig1_entropy_by_dynamics": "entropy", "zhang_fig2_entropy_test_error": "entropy",
        "zhang_fig3_deep_linear_balanced": "deep_linear", "zhang_fig4_deep_linear_unbalanced": "deep_linear",
        "zhang_fig5_trace_entropy": "deep_linear"}


def test_dynamics_numbers_are_the_means_and_the_paired_difference():
    n = numbers("zhang_fig1_entropy_by_dynamics")
    # SGD: 0.30 + 0.01·k over k = 0..5 has mean 0.325; five of six members converged
    assert n["dynamics"].startswith("SGD: 0.325 [")
    assert "over 6 solutions (5 reached the tolerance; 10.0 % negative eigenvalues" in n["dynamics"]
    assert "Langevin (matched noise): 0.275 [" in n["dynamics"] and "gradient descent: 0.225 [" in n["dynamics"]
    # every member's SGD entropy is 0.05 above its Langevin one: the interval collapses to the point
    assert n["difference"] == "0.0500 [0.0500, 0.0500]"
    assert n["kept"] == "102"


def test_test_error_numbers_are_the_correlations():
    n = numbers("zhang_fig2_entropy_test_error")
    # test error = 0.4 - S/2 exactly: both correlations are -1
    assert n["correlations"].startswith("SGD: Spearman -1.00 [-1.00, -1.00], Pearson -1.00 over 6 solutions")
    assert n["train_error"] == "0"


def test_deep_linear_numbers_are_the_correlations_and_the_slope():
    n = numbers("zhang_fig3_deep_linear_balanced")
    assert n["students"] == "6" and n["converged"] == "6"
    bal = students_table().query("init == 'balanced'")
    rho = bal["entropy"].rank().corr(bal["gen_error"].rank())   # ties in the error: not exactly -1
    assert n["entropy"].startswith(f"Spearman {rho:.3f} [") and n["weight_norm"].startswith(f"Spearman {-rho:.3f} [")
    assert float(n["slope"]) == pytest.approx(1.0, abs=0.2)
    # |gen - predicted| = 0.5 on gen errors 12.5 ... 18.5: the median relative error
    gen = students_table().query("init == 'balanced'")["gen_error"]
    assert float(n["prediction_error"]) == pytest.approx(100 * float(np.median(0.5 / gen)), rel=1e-2)
    un = numbers("zhang_fig4_deep_linear_unbalanced")
    assert not un["entropy"].startswith("Spearman -1.00")
    assert numbers("zhang_fig5_trace_entropy")["correlations"] == ("balanced init: Pearson 1.00; "
                                                                    "unbalanced init: Pearson 1.00")


def test_every_template_renders_into_valid_rst(config):
    for name in en.FIGURES:
        template = (ROOT / "workflow" / "report" / F.caption_template(name)).read_text()
        text = captions.render(template, numbers(name), config, F.figure_section(name))
        assert "{{" not in text and "Scale:" in text
        parse_rst(text)


def test_the_scale_lines_say_what_each_section_ran(config):
    line = captions.scale(config, "entropy")
    assert line.startswith("planes (the embedded CIFAR-10 subset: airplane vs automobile, 100 training and 100 "
                           "test images at 6×6×3); zhang: MLP 10-10-10 (relu) without BatchNorm, init N(0, 0.3)")
    assert "4 solutions per dynamics; SGD 3 epochs at batch 50, Langevin 10 steps, GD 10 steps" in line
    deep = captions.scale(config, "deep_linear")
    assert deep.startswith("teacher on 12 Gaussian inputs, noise std 0.1, 6 training examples; students W2 W1 with 3 "
                           "hidden units, 4 per init")


def test_a_dynamics_without_solutions_draws_and_says_so():
    t = tables()
    t["entropy_solutions"]["entropy"] = np.nan   # every member diverged
    fig = figure_function("entropy.entropy_by_dynamics")(t["entropy_solutions"], optimizers=["sgd"])
    assert any("no finite" in tx.get_text().lower() for ax in fig.axes for tx in ax.texts)
