"""im2016 figure captions: the numbers each figure shows (lossland.plots.im2016.CAPTION_NUMBERS),
checked against synthetic metrics tables with the workflow's columns and known values, and the
caption templates (workflow/report/im2016/) rendered into valid reStructuredText."""

from __future__ import annotations

import math
import warnings

import docutils.core
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from tiny import TINY

from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.pipeline.captions import render
from lossland.pipeline.families import im2016 as family
from lossland.plots import caption_numbers, figure_function, im2016

#: the columns of results/tables/<study>[_chosen]_metrics.parquet, in their order
COLUMNS = ["run", "model", "dataset", "optimizer", "algorithm", "seed", "data_seed", "phase", "epoch", "train_loss",
           "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "train_batch_loss", "grad_norm", "lr",
           "dist_from_init", "wall_time", "diverged"]


def run_rows(model, optimizer, seed=0, *, train, test, lr=0.1, algorithm=None, epochs=4, start=0.1, phases=None,
             dist=2.0, diverge_at=None, name=None):
    """One run's rows: accuracies linear from ``start`` (epoch 0) to ``train``/``test`` (last epoch),
    the distance from the init linear to ``dist``; ``phases`` = the optimizer of each epoch (a switch
    variant); ``diverge_at``: the epoch whose loss is NaN, the run's last."""
    run = name or f"{model}_{optimizer}-lr{lr:g}_init{seed}"
    phases = phases or [optimizer] * (epochs + 1)
    rows = []
    for e in range(epochs + 1):
        f = e / epochs
        gone = diverge_at is not None and e >= diverge_at
        loss = math.nan if gone else 2.3 - f
        rows.append(dict(run=run, model=model, dataset="tiny", optimizer=optimizer, algorithm=algorithm or optimizer,
                         seed=seed, data_seed=0, phase=phases[e], epoch=e, train_loss=loss,
                         train_acc=0.1 if gone else start + f * (train - start), val_loss=loss,
                         val_acc=0.1 if gone else start + f * (test - start), test_loss=loss,
                         test_acc=0.1 if gone else start + f * (test - start),
                         train_batch_loss=math.nan if e == 0 else loss, grad_norm=math.nan if e == 0 else 1.0,
                         lr=lr, dist_from_init=math.nan if gone else f * dist, wall_time=1.5 * e, diverged=gone))
        if gone:
            break
    return rows


def table(*runs) -> pd.DataFrame:
    """A metrics table of ``runs`` (lists of rows), its rows shuffled as a gathered table may be."""
    df = pd.DataFrame([r for rows in runs for r in rows], columns=COLUMNS)
    return df.sample(frac=1.0, random_state=0).reset_index(drop=True)


def switch_rows(model, first, then, k, *, train, test, epochs=4, codes=None, dist=3.0, lr=0.001):
    codes = codes or {first: first[0].upper(), then: then[0].upper()}
    label = f"{codes[first]}{k}-{codes[then]}{epochs - k}"
    return run_rows(model, label, 0, train=train, test=test, lr=lr, algorithm=f"{first}->{then}", epochs=epochs,
                    phases=[first] * (k + 1) + [then] * (epochs - k), dist=dist, name=f"{model}_{label}_init0")


# --------------------------------------------------------------------------- every figure function


def test_every_figure_function_has_caption_numbers():
    assert set(im2016.CAPTION_NUMBERS) == set(im2016.FIGURE_FUNCTIONS)
    for name in im2016.FIGURE_FUNCTIONS:
        assert caption_numbers(f"im2016.{name}") is im2016.CAPTION_NUMBERS[name]


# --------------------------------------------------------------------------- Fig 4


def fig4_table(diverge_seed1=None):
    return table(run_rows("nin", "sgd", 0, train=0.30, test=0.20), run_rows("nin", "sgd", 1, train=0.40, test=0.30,
                                                                            diverge_at=diverge_seed1),
                 run_rows("nin", "adam", 0, train=0.50, test=0.52, lr=0.001),
                 run_rows("nin", "adam", 1, train=0.50, test=0.48, lr=0.001))


def test_fig4_numbers_are_means_over_inits():
    n = im2016.optimizer_accuracy_numbers(fig4_table(), optimizers=["sgd", "adam"])
    assert n["train"] == "sgd 35.0%, adam 50.0%"
    assert n["test"] == "sgd 25.0%, adam 50.0%"
    assert n["best"] == "adam (50.0%)" and n["worst"] == "sgd (25.0%)"
    assert n["spread"] == "25.0 points"
    assert n["seed_spread"] == "10.0 points (sgd)"  # sgd: 20% and 30%; adam: 52% and 48%
    assert n["seeds"] == "2 inits" and n["epoch"] == "4" and n["diverged"] == "none"
    # the config's order, whatever the table's
    assert im2016.optimizer_accuracy_numbers(fig4_table(), optimizers=["adam", "sgd"])["train"].startswith("adam")


def test_fig4_numbers_of_several_models_are_per_model():
    df = pd.concat([fig4_table(), table(run_rows("vgg", "sgd", 0, train=0.9, test=0.8))], ignore_index=True)
    n = im2016.optimizer_accuracy_numbers(df, optimizers=["sgd", "adam"])
    assert n["train"] == "nin: sgd 35.0%, adam 50.0%; vgg: sgd 90.0%"
    assert n["spread"] == "nin: 25.0 points; vgg: n/a (one optimizer)"


def test_fig4_numbers_leave_a_diverged_run_out_and_say_so():
    n = im2016.optimizer_accuracy_numbers(fig4_table(diverge_seed1=2), optimizers=["sgd", "adam"])
    assert n["train"] == "sgd 30.0% (1 of 2 inits diverged), adam 50.0%"
    assert n["diverged"] == "sgd init 1"
    assert n["seed_spread"] == "4.0 points (adam)"  # sgd has one finite init left


def test_fig4_numbers_of_one_optimizer_one_init_or_all_diverged_do_not_raise():
    n = im2016.optimizer_accuracy_numbers(table(run_rows("nin", "sgd", train=0.3, test=0.2)), optimizers=None)
    assert n["train"] == "sgd 30.0%" and n["seed_spread"] == "n/a (one init)" and n["spread"] == "n/a (one optimizer)"
    bad = table(run_rows("nin", "sgd", 0, train=0.3, test=0.2, diverge_at=1),
                run_rows("nin", "adam", 0, train=0.3, test=0.2, diverge_at=3))
    n = im2016.optimizer_accuracy_numbers(bad, optimizers=["sgd", "adam"])
    assert n["test"] == "sgd diverged, adam diverged"
    assert n["best"] == n["worst"] == "n/a (every run diverged)"
    assert n["diverged"] == "sgd init 0, adam init 0"


# --------------------------------------------------------------------------- Fig 7


def fig7_table(epochs=2):
    return table(run_rows("nin", "sgd", train=0.30, test=0.25, epochs=epochs, dist=1.0),
                 run_rows("nin", "adam", train=0.50, test=0.45, epochs=epochs, lr=0.001, dist=2.5),
                 switch_rows("nin", "sgd", "adam", 1, train=0.45, test=0.40, epochs=epochs),
                 switch_rows("nin", "adam", "sgd", 1, train=0.32, test=0.30, epochs=epochs, lr=0.1))


def test_fig7_numbers_compare_each_variant_with_the_optimizers_alone():
    n = im2016.switching_numbers(fig7_table(), [["sgd", "adam"], ["adam", "sgd"]], optimizers=["sgd", "adam"])
    assert n["own"] == "sgd 30.0%, adam 50.0%"
    assert n["train"] == "sgd → adam: S1-A1 45.0%; adam → sgd: A1-S1 32.0%"
    assert n["test"] == "sgd → adam: S1-A1 40.0%; adam → sgd: A1-S1 30.0%"
    # S1-A1 (45%) is above sgd alone (30%), A1-S1 (32%) below adam alone (50%); both nearer their second optimizer
    assert n["above_first"] == "1 of 2" and n["closer"] == "2 of 2"
    assert n["dist"] == "sgd 1.00, adam 2.50"
    assert n["seeds"] == "1 init" and n["diverged"] == "none"


def test_fig7_numbers_of_a_diverged_variant_or_a_missing_switch_do_not_raise():
    df = table(run_rows("nin", "sgd", train=0.30, test=0.25, epochs=2),
               run_rows("nin", "adam", train=0.50, test=0.45, epochs=2, lr=0.001, diverge_at=2))
    df = pd.concat([df, table([r for r in switch_rows("nin", "sgd", "adam", 1, train=0.4, test=0.4, epochs=2)
                               if r["epoch"] < 2] + [dict(switch_rows("nin", "sgd", "adam", 1, train=0.4, test=0.4,
                                                                      epochs=2)[2], train_loss=math.inf,
                                                          diverged=True)])], ignore_index=True)
    n = im2016.switching_numbers(df, [["sgd", "adam"], ["sgd", "adadelta"]], optimizers=["sgd", "adam"])
    assert n["own"] == "sgd 30.0%, adam diverged"
    assert n["train"] == "sgd → adam: S1-A1 diverged; sgd → adadelta: no switch run"
    assert n["closer"] == n["above_first"] == "n/a"
    assert set(n["diverged"].split(", ")) == {"adam init 0", "S1-A1 init 0"}


# --------------------------------------------------------------------------- Fig 9


def fig9_table():
    rk2 = {"heun-sgd": ("rk2-heun(sgd)", 0.50), "midpoint-sgd": ("rk2-midpoint(sgd)", 0.20),
           "ralston-sgd": ("rk2-ralston(sgd)", 0.35), "heun-adam": ("rk2-heun(adam)", 0.55)}
    return table(run_rows("nin", "sgd", train=0.30, test=0.3), run_rows("nin", "sgd-x2", train=0.40, test=0.3, lr=0.2,
                                                                        algorithm="sgd"),
                 run_rows("nin", "adam", train=0.60, test=0.5, lr=0.001),
                 *(run_rows("nin", o, train=acc, test=0.3, lr=0.2, algorithm=a) for o, (a, acc) in rk2.items()))


def test_fig9_numbers_put_each_rk2_optimizer_beside_its_base():
    order = ["sgd", "sgd-x2", "adam", "midpoint-sgd", "heun-sgd", "ralston-sgd", "heun-adam"]
    n = im2016.rk2_training_numbers(fig9_table(), optimizers=order)
    assert n["comparison"] == ("around sgd (sgd 30.0%, sgd-x2 40.0%): midpoint-sgd 20.0%, heun-sgd 50.0%, "
                               "ralston-sgd 35.0%; around adam (adam 60.0%): heun-adam 55.0%")
    assert n["above"] == "heun-sgd" and n["between"] == "ralston-sgd" and n["below"] == "midpoint-sgd, heun-adam"
    assert n["train"].startswith("sgd 30.0%, sgd-x2 40.0%, adam 60.0%")


def test_fig9_numbers_without_a_base_or_an_rk2_optimizer_do_not_raise():
    n = im2016.rk2_training_numbers(table(run_rows("nin", "heun", train=0.4, test=0.3, algorithm="rk2-heun(adam)")))
    assert n["comparison"] == "around adam (no plain adam run): heun 40.0%"
    assert n["above"] == n["between"] == n["below"] == "none"
    n = im2016.rk2_training_numbers(table(run_rows("nin", "sgd", train=0.4, test=0.3, diverge_at=1)))
    assert n["comparison"] == "n/a (no RK2 optimizer in the study)" and n["train"] == "sgd diverged"


# --------------------------------------------------------------------------- Fig 11


def test_fig11_numbers_say_which_inits_trained():
    df = table(run_rows("nin", "sgd", 0, train=0.40, test=0.35, start=0.10),
               run_rows("nin", "sgd", 1, train=0.30, test=0.25, start=0.08),
               run_rows("nin-n1", "sgd", train=0.12, test=0.11, start=0.09),
               run_rows("nin-nobn", "sgd", train=0.1, test=0.1, diverge_at=2))
    n = im2016.exotic_inits_numbers(df, optimizers=["sgd"])
    assert n["train"] == "nin 35.0%, nin-n1 12.0%, nin-nobn diverged"
    assert n["start"] == "8.0–10.0%"
    assert n["trained"] == "nin" and n["untrained"] == "nin-n1" and n["diverged"] == "nin-nobn"
    assert n["gain"] == "5.0 points" and n["seeds"] == "2 inits"


def test_fig11_numbers_of_several_optimizers_are_per_optimizer():
    df = table(run_rows("nin", "sgd", train=0.4, test=0.3), run_rows("nin", "adam", train=0.12, test=0.1, lr=0.001))
    n = im2016.exotic_inits_numbers(df, optimizers=["sgd", "adam"])
    assert n["trained"] == "sgd: nin; adam: none" and n["untrained"] == "sgd: none; adam: nin"


# --------------------------------------------------------------------------- learning curves


def test_learning_curve_numbers_name_the_study_and_the_extremes():
    n = im2016.learning_curves_numbers(fig4_table(), optimizers=["sgd", "adam"])
    assert (n["study_key"], n["figure"]) == ("optimizer_study", "Fig 4")
    assert n["best"] == "52.0% (adam, lr 0.001, init 0)" and n["worst"] == "20.0% (sgd, lr 0.1, init 0)"
    assert n["runs"] == "4 runs" and n["epochs"] == "4 epochs" and n["seeds"] == "2 inits" and n["grids"] == "none"
    grid = pd.concat([fig4_table(), table(run_rows("nin", "sgd", 0, train=0.2, test=0.1, lr=0.05))])
    assert im2016.learning_curves_numbers(grid, optimizers=["sgd", "adam"])["grids"] == "sgd 0.1, 0.05"
    assert im2016.learning_curves_numbers(fig7_table())["study_key"] == "switch_study"
    assert im2016.learning_curves_numbers(fig9_table())["study_key"] == "rk2_study"
    inits = table(run_rows("nin", "sgd", train=0.4, test=0.3), run_rows("nin-n1", "sgd", train=0.1, test=0.1))
    n = im2016.learning_curves_numbers(inits)
    assert (n["study_key"], n["colour"]) == ("init_study", "model")
    assert n["worst"] == "10.0% (nin-n1, sgd, lr 0.1, init 0)"
    assert im2016.learning_curves_numbers(inits, study="optimizer_study")["study"] == "the optimizer study"
    unsure = im2016.learning_curves_numbers(table(run_rows("m", "sgd", train=0.4, test=0.3, diverge_at=1)))
    assert (unsure["figure"], unsure["best"], unsure["diverged"]) == ("n/a", "n/a", "sgd (lr 0.1, init 0)")


def test_names_are_escaped_for_restructuredtext():
    n = im2016.optimizer_accuracy_numbers(table(run_rows("nin", "my_opt_", train=0.3, test=0.2)))
    assert n["train"] == r"my\_opt\_ 30.0%"


# --------------------------------------------------------------------------- templates


def tiny_tables(diverged: bool = False) -> dict[str, pd.DataFrame]:
    """Metrics tables of TINY's studies (every run diverged at epoch 1 with ``diverged``)."""
    at = 1 if diverged else None
    opt = table(*(run_rows("mlp", o, train=0.3 + 0.05 * k, test=0.25 + 0.05 * k, epochs=2, diverge_at=at)
                  for k, o in enumerate(["sgd", "adam", "rmsprop", "sgdm"])))
    rk2 = table(run_rows("mlp", "sgd", train=0.3, test=0.2, epochs=2, diverge_at=at),
                run_rows("mlp", "heun", train=0.4, test=0.3, lr=0.2, algorithm="rk2-heun(sgd)", epochs=2, diverge_at=at))
    init = table(run_rows("mlp-n1", "sgd", train=0.1, test=0.1, epochs=2, diverge_at=at))
    switch = table(run_rows("mlp", "sgd", train=0.3, test=0.25, epochs=2, diverge_at=at),
                   run_rows("mlp", "adam", train=0.5, test=0.45, epochs=2, lr=0.01, diverge_at=at),
                   switch_rows("mlp", "sgd", "adam", 1, train=0.45, test=0.4, epochs=2),
                   switch_rows("mlp", "adam", "sgd", 1, train=0.32, test=0.3, epochs=2, lr=0.1))
    out = {"optimizer_study_metrics": opt, "optimizer_study_chosen_metrics": opt, "rk2_study_metrics": rk2,
           "rk2_study_chosen_metrics": rk2, "init_study_metrics": init, "init_study_chosen_metrics": init,
           "switch_study_metrics": switch}
    return out


@pytest.fixture(scope="module")
def tiny_config():
    return C.check_config(TINY)


@pytest.mark.parametrize("diverged", [False, True], ids=["trained", "diverged"])
@pytest.mark.parametrize("name", list(family.FIGURES))
def test_every_caption_renders_to_valid_restructuredtext(name, diverged, tiny_config):
    fig = family.FIGURES[name]
    tables = [tiny_tables(diverged)[t] for t in fig.tables]
    kwargs = F.figure_kwargs(tiny_config, name)
    numbers = caption_numbers(fig.function)(*tables, **kwargs)
    assert numbers and all(isinstance(k, str) and isinstance(v, str) for k, v in numbers.items()), numbers
    assert figure_function(fig.function)(*tables, **kwargs).axes  # the figure takes the same arguments
    template = (ROOT / "workflow" / "report" / F.caption_template(name)).read_text()
    text = render(template, numbers, tiny_config, F.figure_section(name))
    assert "Scale:" in text and "im2016" in text and "**im2016" in text, text
    assert "{{" not in text and "{%" not in text
    with warnings.catch_warnings():  # docutils >= 0.22 deprecates writer_name; older ones need it
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        docutils.core.publish_parts(text, writer_name="html", settings_overrides={"halt_level": 2, "report_level": 2})


def test_a_diverged_run_is_never_a_number_in_a_caption(tiny_config):
    tables = tiny_tables(diverged=True)
    n = im2016.optimizer_accuracy_numbers(tables["optimizer_study_chosen_metrics"], optimizers=list(TINY["optimizers"]))
    assert n["train"] == "sgd diverged, adam diverged, rmsprop diverged, sgdm diverged"
    assert not any(ch.isdigit() for ch in n["train"] + n["test"])
    assert np.all(tables["optimizer_study_chosen_metrics"].groupby("run")["diverged"].any())
