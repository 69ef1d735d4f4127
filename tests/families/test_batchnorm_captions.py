"""Caption numbers, caption templates and figures of the batchnorm family (im2016 Table 2, Fig 8):
hand-made metrics and lines with the workflow's columns (NIN and VGG with and without BatchNorm,
an LSTM alone, two inits, three optimizers each) whose final losses, spreads and numbers of
local maxima are known, the summary from the family's own :func:`summary_table`; every template
rendered under StrictUndefined into reStructuredText that docutils parses without a warning; a
diverged run drawn and named, not a crash."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from families.test_connectivity_captions import parse_rst
from lossland.pipeline import captions
from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.pipeline.families import batchnorm as bn
from lossland.plots import batchnorm, caption_numbers, figure_function, style

OPTIMIZERS = ["sgd", "sgd-lm", "adam", "adadelta"]  # the config's order: fixes the colours
LR = {"sgd": 0.1, "sgd-lm": 1.0, "adam": 0.001, "adadelta": 1.0}
SEEDS = (0, 1)
#: architecture: (dataset, [(model, batch_norm)], optimizers, loss at the init)
ARCHS = {"nin": ("cifar10-small", [("nin", True), ("nin-nobn", False)], ("sgd", "adam", "adadelta"), 2.3),
         "vgg": ("cifar10-small", [("vgg", True), ("vgg-nobn", False)], ("sgd", "adam", "adadelta"), 2.3),
         "lstm": ("ptb-small", [("lstm", False)], ("sgd-lm", "adam", "adadelta"), 6.9)}
#: model: {optimizer: (final train loss at init 0, at init 1)}; the spreads (max − min per optimizer,
#: then the mean over optimizers): nin 0.002, nin-nobn 0.2, vgg 0.00267, vgg-nobn 0.233, lstm 0.133
FINAL = {"nin": {"sgd": (0.010, 0.012), "adam": (0.020, 0.020), "adadelta": (0.030, 0.034)},
         "nin-nobn": {"sgd": (0.01, 0.11), "adam": (0.02, 0.32), "adadelta": (0.03, 0.23)},
         "vgg": {"sgd": (0.05, 0.05), "adam": (0.04, 0.046), "adadelta": (0.06, 0.062)},
         "vgg-nobn": {"sgd": (0.05, 0.25), "adam": (0.04, 0.44), "adadelta": (0.06, 0.16)},
         "lstm": {"sgd-lm": (4.5, 4.6), "adam": (4.2, 4.2), "adadelta": (5.0, 5.3)}}
#: the LSTM's test perplexity at the last epoch per optimizer and init: means 125, 105, 310
PERPLEXITY = {"sgd-lm": (120.0, 130.0), "adam": (100.0, 110.0), "adadelta": (300.0, 320.0)}
EPOCHS = 3
INIT_FINAL = np.linspace(0.0, 1.0, 11)
FINAL_FINAL = np.linspace(0.0, 1.0, 21)
BUMP = 0.5


def run_name(model, opt, seed):
    return f"{model}_{opt}-lr{LR[opt]:g}_init{seed}"


def bumps(alpha, batch_norm: bool):
    """With BN one bump (one local maximum); without (the LSTM too), sin(πα) + 0.5 sin(5πα): three
    (at α ≈ 0.1, 0.5, 0.9)."""
    a = np.asarray(alpha, dtype=float)
    return np.sin(np.pi * a) + (0.0 if batch_norm else 0.5 * np.sin(5 * np.pi * a))


def metrics() -> pd.DataFrame:
    rows = []
    for arch, (dataset, models, opts, l0) in ARCHS.items():
        for model, flag in models:
            for opt in opts:
                for seed in SEEDS:
                    f = FINAL[model][opt][seed]
                    for epoch in range(EPOCHS + 1):
                        loss = l0 ** (1 - epoch / EPOCHS) * f ** (epoch / EPOCHS)
                        row = dict(run=run_name(model, opt, seed), architecture=arch, batch_norm=flag, model=model,
                                   dataset=dataset, optimizer=opt, algorithm=opt, seed=seed, data_seed=0, phase=opt,
                                   epoch=epoch, train_loss=loss, train_acc=1 - loss / l0, test_loss=loss + 0.8,
                                   test_acc=(0.6 if flag else 0.5) if epoch == EPOCHS else 0.1,
                                   train_batch_loss=loss, grad_norm=1.0, lr=LR[opt], dist_from_init=float(epoch),
                                   wall_time=float(epoch), diverged=False)
                        if arch == "lstm":
                            ppl = PERPLEXITY[opt][seed] if epoch == EPOCHS else 1000.0
                            row.update(test_perplexity=ppl, test_loss=math.log(ppl), train_perplexity=math.exp(loss))
                        rows.append(row)
    return pd.DataFrame(rows)


def lines(test_split: bool = True) -> pd.DataFrame:
    """Every init → final and final → final line, as ``evaluate_lines`` writes them (NIN also on
    the test split, 0.5 nats above the training loss)."""
    rows = []
    for arch, (dataset, models, opts, l0) in ARCHS.items():
        for model, flag in models:
            splits = ("train", "test") if test_split and arch == "nin" else ("train",)
            for seed in SEEDS:
                runs = [(opt, run_name(model, opt, seed), FINAL[model][opt][seed]) for opt in opts]
                todo = [("init_final", ("init", "init", l0), r, INIT_FINAL) for r in runs]
                todo += [("final_final", runs[i], runs[j], FINAL_FINAL) for i in range(3) for j in range(i + 1, 3)]
                for kind, (o1, r1, f1), (o2, r2, f2), alphas in todo:
                    if kind == "init_final":
                        loss = f1 ** (1 - alphas) * f2 ** alphas
                    else:
                        loss = f1 + (f2 - f1) * alphas + BUMP * bumps(alphas, flag)
                    for split in splits:
                        for a, v in zip(alphas, loss):
                            rows.append(dict(kind=kind, architecture=arch, dataset=dataset, model=model,
                                             batch_norm=flag, seed=seed, start=r1, end=r2, start_optimizer=o1,
                                             end_optimizer=o2, alpha=a, split=split,
                                             loss=v + (0.5 if split == "test" else 0.0), accuracy=0.5,
                                             diverged=False))
    return pd.DataFrame(rows)


def tables(diverged: bool = False) -> dict[str, pd.DataFrame]:
    m, ln = metrics(), lines()
    if diverged:
        m, ln = diverge(m, ln)
    return {"bn_study_metrics": m, "bn_study_lines": ln, "bn_study_summary": bn.summary_table(m, ln)}


BAD_RUN = run_name("nin-nobn", "adam", 1)
OVERFLOW = run_name("vgg-nobn", "sgd", 0)


def diverge(m: pd.DataFrame, ln: pd.DataFrame):
    """nin-nobn by adam from init 1 diverged at epoch 2 (its training stopped there: inf loss, NaN
    weights, so every line to or from it is NaN and flagged); and vgg-nobn's init → sgd line
    (init 0) overflows to inf from α 0.8 on (finite weights: not flagged)."""
    m = m[~((m["run"] == BAD_RUN) & (m["epoch"] > 2))].copy()
    last = (m["run"] == BAD_RUN) & (m["epoch"] == 2)
    m.loc[last, ["train_loss", "test_loss", "train_acc", "test_acc"]] = [math.inf, math.inf, 0.1, 0.1]
    m.loc[last, "diverged"] = True
    ln = ln.copy()
    bad = (ln["start"] == BAD_RUN) | (ln["end"] == BAD_RUN)
    ln.loc[bad, "loss"] = np.nan
    ln.loc[bad, "accuracy"] = np.nan
    ln.loc[bad, "diverged"] = True
    over = (ln["kind"] == "init_final") & (ln["end"] == OVERFLOW) & (ln["alpha"] >= 0.8 - 1e-9)
    ln.loc[over, "loss"] = np.inf
    return m, ln


# --------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def config():
    return C.check_config(yaml.safe_load((ROOT / "config.yaml").read_text()), C.load_schema())


def numbers(name, t=None):
    t = tables() if t is None else t
    fig = bn.FIGURES[name]
    return caption_numbers(fig.function)(*[t[x] for x in fig.tables], optimizers=OPTIMIZERS)


def draw(name, t=None):
    t = tables() if t is None else t
    fig = bn.FIGURES[name]
    return figure_function(fig.function)(*[t[x] for x in fig.tables], optimizers=OPTIMIZERS)


def test_every_figure_function_has_caption_numbers_called_like_it():
    assert set(batchnorm.CAPTION_NUMBERS) == set(batchnorm.FIGURE_FUNCTIONS) == {"bn_lines", "bn_minima"}
    assert {f.function for f in bn.FIGURES.values()} == {"batchnorm.bn_lines", "batchnorm.bn_minima"}
    for name in batchnorm.FIGURE_FUNCTIONS:
        assert figure_function(f"batchnorm.{name}") is getattr(batchnorm, name)
        fn = caption_numbers(f"batchnorm.{name}")
        assert fn is getattr(batchnorm, f"{name}_numbers")
        assert list(inspect.signature(fn).parameters) == list(
            inspect.signature(figure_function(f"batchnorm.{name}")).parameters), name
    assert {n: F.figure_section(n) for n in bn.FIGURES} == {"table2_bn_lines": "bn_study",
                                                           "fig8_bn_minima": "bn_study"}


def test_the_figures_read_the_family_s_line_kinds_and_quality_split():
    assert (batchnorm.LINE_KINDS, batchnorm.QUALITY_SPLIT) == (bn.LINE_KINDS, bn.QUALITY_SPLIT)


def test_the_summary_of_the_hand_made_tables_is_known():
    s = tables()["bn_study_summary"].set_index("model")
    assert s["final_loss_spread"].to_dict() == pytest.approx(
        {"nin": 0.002, "nin-nobn": 0.2, "vgg": 0.008 / 3, "vgg-nobn": 0.7 / 3, "lstm": 0.4 / 3})
    assert s["local_maxima_mean"].to_dict() == {"nin": 1, "nin-nobn": 3, "vgg": 1, "vgg-nobn": 3, "lstm": 3}
    assert (s["pair_lines"] == 6).all() and (s["inits"] == 2).all()


def test_line_numbers_are_per_model_and_count_the_lines():
    t = tables()
    n = numbers("table2_bn_lines", t)
    assert n["architectures"] == "NIN (nin, nin-nobn); VGG (vgg, vgg-nobn); LSTM (lstm)"
    assert (n["inits"], n["n_inits"], n["splits"]) == ("0, 1", "2", "train, test")
    # 5 models × 2 inits × (3 init → final + 3 final → final); a line's splits are one line
    assert (n["lines"], n["init_final_lines"], n["final_final_lines"]) == ("60", "30", "30")
    s = t["bn_study_summary"].set_index("model")
    assert n["models"].startswith(
        "NIN with BN (nin): spread 0.002 nats, 1 local maxima per final→final line, "
        f"barrier {s.loc['nin', 'barrier_mean']:.3g}, width {s.loc['nin', 'barrier_width_mean']:.3g}; "
        "NIN without BN (nin-nobn): spread 0.2 nats, 3 local maxima per final→final line")
    assert "VGG without BN (vgg-nobn): spread 0.233 nats" in n["models"]
    assert "LSTM (lstm): spread 0.133 nats, 3 local maxima" in n["models"]
    assert n["local_maxima"] == "NIN: 1 with BN, 3 without; VGG: 1 with BN, 3 without; LSTM: 3"
    assert n["local_maxima_gap"] == "NIN: 2; VGG: 2"
    assert n["unimodal"] == "NIN: 100 % with BN, 0 % without; VGG: 100 % with BN, 0 % without; LSTM: 0 %"
    assert n["spread"] == "NIN: 0.002 with BN, 0.2 without; VGG: 0.00267 with BN, 0.233 without; LSTM: 0.133"
    assert n["barrier_width"].startswith(f"NIN: {s.loc['nin', 'barrier_width_mean']:.3g} with BN, ")
    assert (n["n_diverged_lines"], n["diverged_lines"]) == ("0", "none")
    # the summary's mean over the LSTM's six runs: (120 + 130 + 100 + 110 + 300 + 320) / 6
    assert n["test_perplexity"] == "LSTM (lstm): 180"


def test_minima_numbers_are_the_final_losses_spreads_and_perplexities():
    n = numbers("fig8_bn_minima")
    assert (n["runs"], n["n_inits"], n["inits"]) == ("30", "2", "0, 1")
    assert n["optimizers"] == "NIN, VGG: sgd, adam, adadelta; LSTM: sgd-lm, adam, adadelta"
    assert n["final_loss"].startswith("NIN with BN (nin): mean 0.021, spread 0.002 nats (largest 0.004); "
                                      "NIN without BN (nin-nobn): mean 0.12, spread 0.2 nats (largest 0.3)")
    assert n["final_loss"].endswith("LSTM (lstm): mean 4.63, spread 0.133 nats (largest 0.3)")
    assert n["spread_gap"] == "NIN: 0.198; VGG: 0.231"
    assert n["width_gap"].startswith("NIN: ") and "n/a" not in n["width_gap"]
    assert n["local_maxima"] == "NIN: 1 with BN, 3 without; VGG: 1 with BN, 3 without; LSTM: 3"
    assert n["test_perplexity"] == "LSTM (lstm): sgd-lm 125, adam 105, adadelta 310"
    assert n["test_acc"] == ("NIN with BN (nin): 60 %; NIN without BN (nin-nobn): 50 %; VGG with BN (vgg): 60 %; "
                             "VGG without BN (vgg-nobn): 50 %; LSTM (lstm): 50 %")
    assert (n["n_diverged_runs"], n["diverged_runs"]) == ("0", "none")


def test_without_perplexity_or_a_summary_the_numbers_say_n_a():
    t = tables()
    t["bn_study_metrics"] = t["bn_study_metrics"].drop(columns=["test_perplexity", "train_perplexity"])
    assert numbers("fig8_bn_minima", t)["test_perplexity"] == "n/a"
    empty = t["bn_study_summary"].iloc[:0]
    t["bn_study_summary"] = empty
    for name in bn.FIGURES:
        n = numbers(name, t)
        assert all(isinstance(v, str) and v for v in n.values()), n
        assert "nan" not in " ".join(n.values()).lower().split()
        draw(name, t).canvas.draw()


@pytest.mark.parametrize("diverged", [False, True], ids=["finite", "diverged"])
def test_every_template_renders_into_clean_restructuredtext(config, diverged):
    t = tables(diverged)
    for name in bn.FIGURES:
        template = (ROOT / "workflow" / "report" / F.caption_template(name)).read_text()
        n = numbers(name, t)
        assert all(isinstance(v, str) and v and "nan" not in v.lower().split() for v in n.values()), n
        text = captions.render(template, n, config, F.figure_section(name))
        assert text.startswith("Regenerates **im2016 ") and "Scale: " in text and "{{" not in text, name
        assert "The paper" in text
        if not diverged:
            assert "n/a" not in text, name
        parse_rst(text)


# --------------------------------------------------------------------------- the figures


def _texts(fig) -> list[str]:
    out = [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]
    out += [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    return out


def _check_drawn(fig):
    fig.canvas.draw()  # renders: no NaN limits, no log axis without positive values
    for ax in fig.axes:
        if ax.get_visible():
            assert np.isfinite([*ax.get_xlim(), *ax.get_ylim()]).all(), ax.get_title()


@pytest.mark.parametrize("name", list(bn.FIGURES))
def test_every_axis_is_labelled(name):
    """As tests/test_plots.py asks of every figure: a title, an x and a y label on every drawn axis."""
    for ax in draw(name).axes:
        if not ax.get_visible():
            continue
        if ax.xaxis.get_visible():
            assert ax.get_xlabel().strip() and ax.get_title().strip(), ax.get_title()
        if ax.yaxis.get_visible() and (len(ax.get_yticks()) or ax.xaxis.get_visible()):
            assert ax.get_ylabel().strip(), ax.get_title()


def test_the_lines_grid_has_two_rows_per_architecture_and_one_column_per_init_and_model(tmp_path):
    fig = draw("table2_bn_lines")
    _check_drawn(fig)
    visible = [ax for ax in fig.axes if ax.axison]  # the blank cells: axes off (one holds a legend)
    # NIN and VGG: 2 rows × (2 inits × 2 models); the LSTM: 2 rows × 2 inits
    assert len(visible) == 2 * 4 + 2 * 4 + 2 * 2 and len(fig.axes) == 6 * 4
    titles = [ax.get_title() for ax in visible]
    assert "NIN with BN (nin), init 0\ninit → final" in titles
    assert "NIN without BN (nin-nobn), init 1\nfinal → final" in titles
    assert "LSTM (lstm), init 1\nfinal → final" in titles
    assert all(ax.get_yscale() == "log" for ax in visible)
    texts = _texts(fig)
    assert {"sgd", "adam", "adadelta", "sgd-lm", "sgd–adam", "adam–adadelta", "sgd-lm–adam", "test"} <= set(texts)
    assert not any("diverged" in x for x in texts)
    # the init → final lines take their optimizer's colour
    nin = next(ax for ax in visible if ax.get_title() == "NIN with BN (nin), init 0\ninit → final")
    colors = {style.optimizer_colors([o], OPTIMIZERS)[o] for o in ("sgd", "adam", "adadelta")}
    from matplotlib.colors import to_hex
    assert {to_hex(line.get_color()) for line in nin.get_lines() if len(line.get_xdata()) > 2} == colors
    style.save_figure(fig, tmp_path / "lines.png")
    assert (tmp_path / "lines.png").stat().st_size > 0


def test_the_minima_figure_shows_every_run_and_the_shape_per_model(tmp_path):
    fig = draw("fig8_bn_minima")
    _check_drawn(fig)
    left, middle, right = fig.axes[:3]
    assert [t.get_text() for t in left.get_xticklabels()] == [
        "NIN\nwith BN\n(nin)\nspread 0.002", "NIN\nwithout BN\n(nin-nobn)\nspread 0.2",
        "VGG\nwith BN\n(vgg)\nspread 0.00267", "VGG\nwithout BN\n(vgg-nobn)\nspread 0.233", "LSTM\n(lstm)\nspread 0.133"]
    assert [t.get_text() for t in middle.get_xticklabels()][:2] == ["NIN\nwith BN\n(nin)", "NIN\nwithout BN\n(nin-nobn)"]
    dots = [line for line in left.get_lines() if line.get_marker() not in ("None", None, "")]
    assert len(dots) == 30  # every run once
    assert left.get_yscale() == "log"
    heights = [round(p.get_height(), 6) for p in middle.patches]
    assert heights == [1, 3, 1, 3, 3]
    assert len(right.patches) == 5
    style.save_figure(fig, tmp_path / "minima.png")


@pytest.mark.parametrize("name", list(bn.FIGURES))
def test_a_diverged_run_draws_and_says_so(name, tmp_path):
    t = tables(diverged=True)
    fig = draw(name, t)
    _check_drawn(fig)
    texts = _texts(fig)
    assert any("diverged" in x for x in texts), name
    assert not any("nan" in x.lower().split() for x in texts), name
    n = numbers(name, t)
    assert "nan" not in " ".join(n.values()).lower().split()
    if name == "table2_bn_lines":
        assert "adam (diverged)" in texts and "sgd (diverged)" in texts  # NaN lines; the overflow
        assert "diverged: last finite point" in texts
        assert n["n_diverged_lines"] == "4"
        assert n["diverged_lines"] == ("NIN without BN (nin-nobn), init 1: init → adam; "
                                       "NIN without BN (nin-nobn), init 1: sgd–adam; "
                                       "NIN without BN (nin-nobn), init 1: adam–adadelta; "
                                       "VGG without BN (vgg-nobn), init 0: init → sgd")
        assert n["spread"].startswith("NIN: 0.002 with BN, infinite (a run diverged) without")
        assert "3 local maxima" in n["models"]  # the finite lines of nin-nobn still have three bumps
    else:
        assert "diverged (at the top edge)" in texts
        assert (n["n_diverged_runs"], n["diverged_runs"]) == ("1", "nin-nobn\\_adam-lr0.001\\_init1")
        assert n["spread_gap"] == "NIN: n/a (a run diverged without); VGG: 0.231"
        crosses = [line for line in fig.axes[0].get_lines() if line.get_marker() == "x"]
        assert len(crosses) == 1
    style.save_figure(fig, tmp_path / f"{name}.png")


def test_a_figure_with_only_diverged_values_still_draws():
    t = tables()
    t["bn_study_lines"]["loss"] = np.nan
    t["bn_study_lines"]["diverged"] = True
    m = t["bn_study_metrics"]
    m["train_loss"] = np.inf
    m["diverged"] = True
    t["bn_study_summary"] = bn.summary_table(m, t["bn_study_lines"])
    for name in bn.FIGURES:
        fig = draw(name, t)
        _check_drawn(fig)
        assert style.NO_FINITE_VALUES in _texts(fig), name
        assert numbers(name, t)


def test_an_empty_lines_table_draws_a_labelled_panel():
    t = tables()
    t["bn_study_lines"] = t["bn_study_lines"].iloc[:0]
    fig = draw("table2_bn_lines", t)
    _check_drawn(fig)
    assert "no lines in the table" in _texts(fig)
    assert numbers("table2_bn_lines", t)["lines"] == "0"
