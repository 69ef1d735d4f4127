"""Caption numbers and caption templates of the hessian figures (density, sharpness, negative
fraction): the numbers are what the synthetic tables' mathematics says, small tables do not
break them, and every template renders to reStructuredText without warnings."""

from __future__ import annotations

import inspect
import math

import docutils.core
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from tiny import TINY

from lossland.pipeline import captions
from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.plots import caption_numbers, figure_function, hessian

IDS = ("run", "dataset", "model", "optimizer", "algorithm", "lr", "seed", "epoch", "split")
SUMMARY = (*IDS, "loss", "accuracy", "trace", "trace_stderr", "method", "top_eigenvalue", "bottom_eigenvalue",
           "negative_fraction", "slq_trace", "epsilon_sharpness", "n_params", "n_samples", "seconds")
DENSITY = (*IDS, "eigenvalue", "density")


def _ids(opt: str, epoch: int, model: str = "nin", seed: int = 0) -> dict:
    lr = {"sgd": 0.1, "adam": 0.001}.get(opt, 0.01)
    return dict(run=f"{model}_{opt}-lr{lr:g}_init{seed}", dataset="cifar10-small", model=model, optimizer=opt,
                algorithm=opt, lr=lr, seed=seed, epoch=epoch, split="train")


def _mixture(nodes, weights, sigma, points=400):
    """A Gaussian-broadened spectrum as the SLQ report writes it: grid from the smallest to the
    largest node ± 5σ, normalised to integrate to 1."""
    nodes, weights = np.asarray(nodes, float), np.asarray(weights, float)
    grid = np.linspace(nodes.min() - 5 * sigma, nodes.max() + 5 * sigma, points)
    dens = (weights[None] * np.exp(-0.5 * ((grid[:, None] - nodes[None]) / sigma) ** 2)).sum(1)
    return grid, dens / np.trapezoid(dens, grid)


#: (optimizer, epoch) -> (top node, weight of the top node): the rest of the mass sits at 0
SPECTRA = {("sgd", 0): (100.0, 0.1), ("sgd", 4): (40.0, 0.2), ("adam", 0): (100.0, 0.1), ("adam", 4): (60.0, 0.05)}


def density_table(spectra=SPECTRA) -> pd.DataFrame:
    rows = []
    for (opt, epoch), (top, w) in spectra.items():
        grid, dens = _mixture([0.0, top], [1 - w, w], sigma=0.5)
        rows += [dict(_ids(opt, epoch), eigenvalue=x, density=d) for x, d in zip(grid, dens)]
    return pd.DataFrame(rows, columns=DENSITY)


def summary_table(values: dict) -> pd.DataFrame:
    """``values``: {(optimizer, epoch): {column: value}} over defaults for every other column."""
    rows = []
    for (opt, epoch), v in values.items():
        row = dict(_ids(opt, epoch), loss=2.0, accuracy=0.3, trace=100.0, trace_stderr=5.0, method="deflated",
                   top_eigenvalue=10.0, bottom_eigenvalue=-1.0, negative_fraction=0.01, slq_trace=100.0,
                   epsilon_sharpness=5.0, n_params=1000, n_samples=64, seconds=1.0)
        rows.append({**row, **v})
    return pd.DataFrame(rows, columns=SUMMARY)


SUMMARY_VALUES = {
    ("sgd", 0): dict(top_eigenvalue=135.4847, trace=374.13, epsilon_sharpness=29.04, negative_fraction=0.001055,
                     bottom_eigenvalue=-22.53),
    ("sgd", 2): dict(top_eigenvalue=58.1, negative_fraction=0.0058),
    ("sgd", 4): dict(top_eigenvalue=82.168, trace=408.59, trace_stderr=80.2, epsilon_sharpness=20.48,
                     negative_fraction=0.002809, bottom_eigenvalue=-7.491),
    ("adam", 0): dict(top_eigenvalue=135.4847, trace=374.13, epsilon_sharpness=29.04, negative_fraction=0.001055,
                      bottom_eigenvalue=-22.53),
    ("adam", 4): dict(top_eigenvalue=72.0075, trace=396.75, trace_stderr=87.4, epsilon_sharpness=22.507,
                      negative_fraction=0.000475, bottom_eigenvalue=-5.245),
}


@pytest.fixture(scope="module")
def tiny_config():
    return C.check_config(TINY)


# --------------------------------------------------------------------------- the numbers


def test_spectrum_stats_find_the_top_node_the_mean_and_the_mass_near_zero():
    grid, dens = _mixture([0.0, 3.0, 100.0], [0.7, 0.2, 0.1], sigma=0.5)
    top, mean, near = hessian.spectrum_stats(grid, dens)
    assert top == pytest.approx(100.0, rel=1e-4)  # the vertex of the log parabola: exact for a Gaussian
    assert mean == pytest.approx(0.2 * 3.0 + 0.1 * 100.0, rel=1e-3)  # ∫λρ: the weights' mean node
    assert near == pytest.approx(0.7 + 0.2, abs=1e-3)  # |λ| ≤ 5 (5 % of 100): the nodes at 0 and 3
    # |λ| ≤ 2: the node at 0 and the tail of the node at 3 beyond 2σ (0.2 · 2.3 %), on a grid of step 0.26
    assert hessian.spectrum_stats(grid, dens, near_zero=0.02)[2] == pytest.approx(0.7 + 0.2 * 0.0228, abs=0.005)
    assert all(math.isnan(v) for v in hessian.spectrum_stats(grid, np.full_like(grid, np.nan)))
    assert all(math.isnan(v) for v in hessian.spectrum_stats([], []))


def test_density_numbers_per_optimizer_from_the_initial_weights_to_the_last_epoch():
    n = hessian.hessian_density_numbers(density_table(), optimizers=["sgd", "adam"])
    assert n["top"] == "sgd 100 → 40.0, adam 100 → 60.0"  # config order: sgd first
    assert n["mean"] == "sgd 10 → 8.0, adam 10 → 3.0"  # w · top
    assert n["near_zero"] == "sgd 90.0 % → 80.0 %, adam 90.0 % → 95.0 %"  # 1 - w
    assert n["near_zero_def"] == "5 %"
    assert (n["first_epoch"], n["last_epoch"], n["epochs"]) == ("the initial weights", "epoch 4", "0, 4")


def test_density_numbers_of_one_optimizer_at_one_epoch_and_of_a_diverged_run():
    one = density_table({("sgd", 2): (50.0, 0.1)})
    n = hessian.hessian_density_numbers(one, optimizers=["sgd"])
    assert n["top"] == "sgd 50.0" and n["near_zero"] == "sgd 90.0 %"  # one epoch: no arrow
    assert n["first_epoch"] == n["last_epoch"] == "epoch 2"
    bad = density_table().assign(density=np.nan)
    n = hessian.hessian_density_numbers(bad, optimizers=["sgd", "adam"])
    assert n["top"] == "sgd n/a → n/a, adam n/a → n/a" and "nan" not in " ".join(n.values())
    empty = hessian.hessian_density_numbers(density_table().iloc[:0])
    assert empty["top"] == empty["near_zero"] == empty["last_epoch"] == "n/a"


def test_sharpness_numbers_at_the_last_epoch_and_of_the_initial_weights():
    n = hessian.hessian_sharpness_numbers(summary_table(SUMMARY_VALUES), optimizers=["sgd", "adam"])
    assert n["epoch"] == "4"
    assert n["top"] == "sgd 82.2, adam 72.0"
    assert n["trace"] == "sgd 409 ± 80, adam 397 ± 87"
    assert n["epsilon"] == "sgd 20.5 %, adam 22.5 %"
    assert (n["top_init"], n["trace_init"], n["epsilon_init"]) == ("135", "374", "29.0 %")


def test_sharpness_numbers_of_one_optimizer_without_the_initial_weights_and_with_nan():
    n = hessian.hessian_sharpness_numbers(summary_table({("sgd", 3): dict(trace_stderr=np.nan)}))
    assert n["epoch"] == "3" and n["top"] == "sgd 10.0" and n["trace"] == "sgd 100"  # no ± without a stderr
    assert n["top_init"] == n["trace_init"] == n["epsilon_init"] == "n/a"  # no epoch 0 analysed
    nan = summary_table({("sgd", 0): {}, ("sgd", 4): dict(top_eigenvalue=np.nan, trace=np.inf,
                                                          epsilon_sharpness=np.nan)})
    n = hessian.hessian_sharpness_numbers(nan)
    assert (n["top"], n["trace"], n["epsilon"]) == ("sgd n/a", "sgd n/a", "sgd n/a")


def test_negative_fraction_numbers_from_epoch_0_to_the_last():
    n = hessian.hessian_negative_fraction_numbers(summary_table(SUMMARY_VALUES), optimizers=["sgd", "adam"])
    assert n["negative"] == "sgd 0.11 % → 0.28 %, adam 0.11 % → 0.048 %"
    assert n["bottom"] == "sgd -22.5 → -7.49, adam -22.5 → -5.25"
    assert n["top"] == "sgd 135 → 82.2, adam 135 → 72.0"
    assert (n["first_epoch"], n["last_epoch"], n["epochs"]) == ("the initial weights", "epoch 4", "0, 2, 4")
    one = hessian.hessian_negative_fraction_numbers(summary_table({("adam", 0): dict(negative_fraction=np.nan)}))
    assert one["negative"] == "adam n/a" and one["last_epoch"] == "the initial weights"


def test_several_models_and_inits_are_named():
    rows = [{**r, "run": r["run"] + "x", "model": "vgg", "seed": 1} for r in summary_table(SUMMARY_VALUES)
            .to_dict("records")]
    both = pd.concat([summary_table(SUMMARY_VALUES), pd.DataFrame(rows)], ignore_index=True)
    n = hessian.hessian_sharpness_numbers(both, optimizers=["sgd", "adam"])
    assert n["top"] == "nin sgd init 0 82.2, nin adam init 0 72.0, vgg sgd init 1 82.2, vgg adam init 1 72.0"
    assert n["top_init"] == "nin init 0 135, vgg init 1 135"


@pytest.mark.parametrize(("value", "text"), [(0.99929, "99.93 %"), (0.001055, "0.11 %"), (0.3, "30.0 %"),
                                             (1.0, "100 %"), (0.0, "0 %"), (np.nan, "n/a")])
def test_shares_are_written_as_percentages(value, text):
    assert hessian._percent(value) == text


@pytest.mark.parametrize(("value", "text"), [(135.4847, "135"), (82.168, "82.2"), (0.0039477, "0.00395"),
                                             (1.8552e7, "1.86e7"), (-3.2e-7, "-3.20e-7"), (np.inf, "n/a")])
def test_numbers_keep_three_significant_digits(value, text):
    assert hessian._num(value) == text


# --------------------------------------------------------------------------- registry and templates


def test_every_figure_function_has_caption_numbers_called_like_it():
    assert set(hessian.CAPTION_NUMBERS) == set(hessian.FIGURE_FUNCTIONS)
    for name in hessian.FIGURE_FUNCTIONS:
        numbers = caption_numbers(f"hessian.{name}")
        figure = figure_function(f"hessian.{name}")
        assert numbers is hessian.CAPTION_NUMBERS[name]
        assert list(inspect.signature(numbers).parameters.values()) == list(
            inspect.signature(figure).parameters.values()), name


def _tables(one: bool) -> dict[str, pd.DataFrame]:
    if one:
        return {"hessian_density": density_table({("sgd", 0): (20.0, 0.1)}),
                "hessian_summary": summary_table({("sgd", 0): {}})}
    return {"hessian_density": density_table(), "hessian_summary": summary_table(SUMMARY_VALUES)}


def _parse(text: str) -> str:
    """The rendered caption as HTML; a docutils warning raises (halt_level 2)."""
    return docutils.core.publish_parts(text, writer="html",
                                       settings_overrides={"halt_level": 2, "report_level": 2})["body"]


@pytest.mark.parametrize("one", [False, True], ids=["two optimizers", "one optimizer, one epoch"])
@pytest.mark.parametrize("name", list(F.hessian.FIGURES))
def test_every_caption_renders_to_restructured_text(name, one, tiny_config):
    fig = F.hessian.FIGURES[name]
    tables = [_tables(one)[t] for t in fig.tables]
    kwargs = F.figure_kwargs(tiny_config, name)
    numbers = caption_numbers(fig.function)(*tables, **kwargs)
    assert all(isinstance(v, str) and v and "nan" not in v for v in numbers.values()), numbers
    template = (ROOT / "workflow" / "report" / F.caption_template(name)).read_text()
    text = captions.render(template, numbers, tiny_config, F.figure_section(name))
    assert "Scale:" in text and "Regenerates" in text and "{{" not in text
    html = _parse(text)
    assert "<strong>" in html  # what it regenerates, in bold
    if not one:
        assert numbers["top"].split(",")[0] in text
