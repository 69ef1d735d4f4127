"""Caption numbers and caption templates of the reparam figures (dinh2017 §4-5): orders of
magnitude of sweeps whose values follow chosen power laws, small and diverged tables, and
every template rendered to reStructuredText without warnings."""

from __future__ import annotations

import inspect

import docutils.core
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from tiny import TINY

from lossland.pipeline import captions
from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.plots import caption_numbers, figure_function, reparam

IDS = ("run", "dataset", "model", "optimizer", "algorithm", "lr", "seed", "epoch")
SWEEP = (*IDS, "transform", "layers", "scaled", "split", "alpha", "max_output_diff", "rel_output_diff", "loss",
         "accuracy", "test_loss", "test_accuracy", "top_eigenvalue", "trace", "trace_stderr", "epsilon_sharpness",
         "ball_sharpness", "n_params", "n_samples", "seconds", "predicted_trace", "top_eigenvalue_bound")
INPUT = (*IDS, "transform", "alpha", "max_output_diff", "rel_output_diff", "mean_grad_norm", "median_grad_norm",
         "predicted_mean_grad_norm", "ratio_min", "ratio_max", "rank_correlation")
EXAMPLES = (*IDS, "transform", "example", "grad_norm")
ALPHAS = np.logspace(-3, 3, 7)


def _ids(model: str) -> dict:
    return dict(run=f"{model}_sgd-lr0.1_init0", dataset="cifar10-small", model=model, optimizer="sgd",
                algorithm="sgd", lr=0.1, seed=0, epoch=4)


def _sweep_rows(model, transform, layers, scaled, alphas, top, trace, eps, ball, rel=3e-7, loss=2.25):
    rows = []
    for a in alphas:
        rows.append(dict(_ids(model), transform=transform, layers=layers, scaled=scaled, split="train", alpha=a,
                         max_output_diff=0.0 if a == 1 else 10 * rel, rel_output_diff=0.0 if a == 1 else rel,
                         loss=2.3, accuracy=0.25, test_loss=loss, test_accuracy=0.24, top_eigenvalue=top(a),
                         trace=trace(a), trace_stderr=0.01 * abs(trace(a)), epsilon_sharpness=eps(a),
                         ball_sharpness=ball(a), n_params=1000, n_samples=32, seconds=0.1,
                         predicted_trace=trace(a) / 0.9, top_eigenvalue_bound=top(a) / 1.25))
    return rows


def sweep_table(alphas=ALPHAS) -> pd.DataFrame:
    """Power laws in α: log10(max/min) over 10^-3..10^3 is |power| · 6."""
    rows = (_sweep_rows("relu-mlp", "alpha_scale", "0-1", "net.1, net.3.weight", alphas, lambda a: 5 * a ** 2,
                        lambda a: 100 / a, lambda a: 40.0, lambda a: a, rel=3.3e-7)
            + _sweep_rows("relu-mlp", "alpha_scale", "1-2", "net.3, net.5.weight", alphas, lambda a: a ** 4,
                          lambda a: a ** 0.5, lambda a: a ** -0.5, lambda a: a ** 0.25, rel=2e-7)
            + _sweep_rows("nin", "bn_scale", "0", "features.0", alphas, lambda a: 7 * a ** -1.5,
                          lambda a: 3 * a ** -1, lambda a: a ** -0.25, lambda a: 2 * a ** -0.5, rel=1e-7, loss=1.9)
            + _sweep_rows("relu-mlp", "weight_norm", "all", "v", alphas, lambda a: 30 * a ** -2,
                          lambda a: -(a ** -1.5) if a < 10 else 2.0 * a ** 0.01, lambda a: 40 * a ** -1,
                          lambda a: a ** -1, rel=2.4e-7))
    return pd.DataFrame(rows, columns=SWEEP)


def input_tables(transforms=("standardize", "whiten")) -> tuple[pd.DataFrame, pd.DataFrame]:
    inputs, examples = [], []
    for model, base, whiten_rho in (("relu-mlp", 0.8, 0.52), ("nin", 0.6, 0.79)):
        ids = _ids(model)
        inputs.append(dict(ids, transform="identity", alpha=1.0, max_output_diff=0.0, rel_output_diff=0.0,
                           mean_grad_norm=base, median_grad_norm=base, predicted_mean_grad_norm=base,
                           ratio_min=1.0, ratio_max=1.0, rank_correlation=1.0))
        for c in ALPHAS:
            inputs.append(dict(ids, transform="scale", alpha=c, max_output_diff=0.0 if c == 1 else 2e-6,
                               rel_output_diff=0.0 if c == 1 else 2e-7, mean_grad_norm=base / c * (1 + 1e-6),
                               median_grad_norm=base / c, predicted_mean_grad_norm=base / c, ratio_min=1 / c,
                               ratio_max=1 / c, rank_correlation=1.0))
        ranges = {"standardize": (0.98, 0.997, 0.9997, 1.2e-7), "whiten": (1.5, 5.63, whiten_rho, 1.6e-6)}
        for t in transforms:
            lo, hi, rho, rel = ranges[t]
            inputs.append(dict(ids, transform=t, alpha=1.0, max_output_diff=10 * rel, rel_output_diff=rel,
                               mean_grad_norm=base * (lo + hi) / 2, median_grad_norm=base, predicted_mean_grad_norm=np.nan,
                               ratio_min=lo, ratio_max=hi, rank_correlation=rho))
        for t in ("identity", *transforms):
            examples += [dict(ids, transform=t, example=k, grad_norm=base * (1 + 0.1 * k)) for k in range(5)]
    return pd.DataFrame(inputs, columns=INPUT), pd.DataFrame(examples, columns=EXAMPLES)


@pytest.fixture(scope="module")
def tiny_config():
    return C.check_config(TINY)


# --------------------------------------------------------------------------- the numbers


def test_orders_of_magnitude_of_a_power_law():
    assert reparam.orders_of_magnitude(5 * ALPHAS ** 2) == pytest.approx(12.0)
    assert reparam.orders_of_magnitude([-1e-3, 1.0, np.nan, 0.0, 1e3]) == pytest.approx(6.0)  # |v|, finite, ≠ 0
    assert np.isnan(reparam.orders_of_magnitude([np.nan, 0.0]))


def test_alpha_scale_numbers_are_the_sweeps_orders_of_magnitude():
    n = reparam.alpha_scale_sharpness_numbers(sweep_table(), optimizers=["sgd"])
    assert (n["alpha_min"], n["alpha_max"], n["alpha_decades"], n["alpha_count"]) == ("0.001", "1000", "6", "7")
    assert n["top_orders"] == "9.0 to 24.0"  # powers 2, 4, 1.5 (the weight-norm sweep is not in this figure)
    assert n["trace_orders"] == "3.0 to 6.0"  # powers 1, 0.5, 1
    assert n["epsilon_orders"] == "0.0 to 3.0"  # constant, 0.5, 0.25
    assert n["ball_orders"] == "1.5 to 6.0"  # 1, 0.25, 0.5
    assert n["trace_vs_predicted"] == "0.900" and n["top_vs_bound"] == "1.25"
    assert n["output"] == "3.3e-7" and n["test_loss"] == "0"
    assert n["sweeps"] == "3" and n["series"].startswith("relu-mlp: α-scale (net.1, net.3.weight); ")


def test_weight_norm_and_input_numbers():
    inputs, examples = input_tables()
    n = reparam.weight_norm_and_input_numbers(sweep_table(), inputs, examples, optimizers=["sgd"])
    assert (n["alpha_min"], n["alpha_max"], n["alpha_count"]) == ("0.001", "1000", "7")
    assert n["wn_top_orders"] == "12.0" and n["wn_epsilon_orders"] == "6.0"
    # |trace|: 10^4.5 at α = 10^-3 down to 1 at α = 1, then 2·α^0.01 ≈ 2.05 for α ≥ 10
    assert n["wn_trace_orders"] == "4.5" and n["wn_trace_negative"] == "4 of 7"
    assert n["wn_output"] == "2.4e-7"
    assert (n["c_min"], n["c_max"], n["c_decades"]) == ("0.001", "1000", "6")
    assert n["grad_orders"] == "6.0" and n["grad_vs_predicted"] == "1.0e-6"
    assert n["input_output"] == "1.6e-6"  # the largest of the scale, standardize and whiten rows
    assert n["standardize_ratio"] == "relu-mlp 0.980 to 0.997, nin 0.980 to 0.997"
    assert n["whiten_ratio"] == "relu-mlp 1.50 to 5.63, nin 1.50 to 5.63"
    assert n["standardize_rho"] == "relu-mlp 1.00, nin 1.00" and n["whiten_rho"] == "relu-mlp 0.52, nin 0.79"


def test_one_alpha_one_run_missing_transforms_and_nan_do_not_raise():
    one = sweep_table(alphas=[1.0])
    n = reparam.alpha_scale_sharpness_numbers(one[one["layers"] == "0-1"])
    assert n["top_orders"] == "0.0" and n["alpha_decades"] == "0" and n["alpha_count"] == "1" and n["sweeps"] == "1"
    inputs, examples = input_tables(transforms=("standardize",))
    mlp = inputs[inputs["model"] == "relu-mlp"]
    n = reparam.weight_norm_and_input_numbers(one, mlp, examples[examples["model"] == "relu-mlp"])
    assert n["whiten_ratio"] == n["whiten_rho"] == "n/a" and n["standardize_rho"] == "relu-mlp 1.00"
    diverged = sweep_table().assign(**{c: np.nan for c in SWEEP[13:] if c not in ("n_params", "n_samples")})
    n = reparam.alpha_scale_sharpness_numbers(diverged)
    assert n["top_orders"] == n["trace_orders"] == n["test_loss"] == n["trace_vs_predicted"] == "n/a"
    nan_inputs = inputs.assign(mean_grad_norm=np.nan, ratio_min=np.nan, ratio_max=np.nan, rank_correlation=np.nan)
    n = reparam.weight_norm_and_input_numbers(diverged, nan_inputs, examples)
    assert n["grad_orders"] == n["wn_top_orders"] == n["wn_trace_negative"] == "n/a"
    assert n["standardize_ratio"] == "relu-mlp n/a, nin n/a" and "nan" not in " ".join(n.values())
    empty = reparam.weight_norm_and_input_numbers(one.iloc[:0], inputs.iloc[:0], examples.iloc[:0])
    assert empty["alpha_min"] == empty["c_max"] == empty["standardize_rho"] == "n/a"


# --------------------------------------------------------------------------- registry and templates


def test_every_figure_function_has_caption_numbers_called_like_it():
    assert set(reparam.CAPTION_NUMBERS) == set(reparam.FIGURE_FUNCTIONS)
    for name in reparam.FIGURE_FUNCTIONS:
        numbers = caption_numbers(f"reparam.{name}")
        assert numbers is reparam.CAPTION_NUMBERS[name]
        assert list(inspect.signature(numbers).parameters.values()) == list(
            inspect.signature(figure_function(f"reparam.{name}")).parameters.values()), name


def _tables(small: bool) -> dict[str, pd.DataFrame]:
    sweep = sweep_table(alphas=[1.0]) if small else sweep_table()
    inputs, examples = input_tables(("standardize",) if small else ("standardize", "whiten"))
    if small:
        inputs, examples = inputs[inputs["model"] == "nin"], examples[examples["model"] == "nin"]
    return {"reparam_sweep": sweep, "reparam_input": inputs, "reparam_input_examples": examples}


@pytest.mark.parametrize("small", [False, True], ids=["default", "one alpha, one run"])
@pytest.mark.parametrize("name", list(F.reparam.FIGURES))
def test_every_caption_renders_to_restructured_text(name, small, tiny_config):
    fig = F.reparam.FIGURES[name]
    tables = [_tables(small)[t] for t in fig.tables]
    numbers = caption_numbers(fig.function)(*tables, **F.figure_kwargs(tiny_config, name))
    assert all(isinstance(v, str) and v and "nan" not in v for v in numbers.values()), numbers
    template = (ROOT / "workflow" / "report" / F.caption_template(name)).read_text()
    text = captions.render(template, numbers, tiny_config, F.figure_section(name))
    assert "Scale:" in text and "dinh2017" in text and "{{" not in text
    html = _html(text)
    assert "<strong>" in html
    if not small:
        assert f"from {numbers['alpha_min']} to {numbers['alpha_max']}" in " ".join(text.split())


def _html(text: str) -> str:
    """The rendered caption as HTML; a docutils warning raises (halt_level 2)."""
    return docutils.core.publish_parts(text, writer="html", settings_overrides={"halt_level": 2,
                                                                                "report_level": 2})["body"]
