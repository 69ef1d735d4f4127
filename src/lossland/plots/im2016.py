"""im2016 (Im et al. 2016, "An empirical analysis of the optimization of deep network loss
surfaces") optimizer-study figures, from per-epoch metrics tables
(``results/tables/<study>[_chosen]_metrics.parquet``).

Colour = optimizer (:func:`lossland.plots.style.optimizer_colors`; Fig 9's labels through
their optimizer), except Fig 11 (colour = model) and the switch variants of Fig 7 (their own
ramps); line style or marker = init seed. Diverged runs are drawn up to their last finite
epoch and marked with a cross and "(diverged)" in the legend.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ._common import (
    color_entries,
    curve_panels,
    draw_runs,
    final_rows,
    hue_sections,
    legend_outside,
    linestyle_entries,
    strip_figure,
)
from .style import init_linestyles, new_figure, optimizer_order

#: the figure functions (``lossland.plots.figure_function("im2016.<name>")``); the rest are helpers
FIGURE_FUNCTIONS = ("learning_curves", "optimizer_accuracy", "switching", "rk2_training", "exotic_inits")
__all__ = ["FIGURE_FUNCTIONS", "LEARNING_CURVE_PANELS", "RK2_PANELS", *FIGURE_FUNCTIONS, "with_lr_label",
           "final_rows", "switch_pairs"]

LEARNING_CURVE_PANELS = (
    ("train_loss", "train loss"),
    ("test_loss", "test loss"),
    ("train_acc", "train accuracy"),
    ("test_acc", "test accuracy"),
)
RK2_PANELS = (("train_acc", "train accuracy"), ("train_loss", "train loss"), ("test_acc", "test accuracy"))


def learning_curves(metrics: pd.DataFrame, hue: str = "optimizer", style: str | None = "seed",
                    group: str | None = "model", panels=LEARNING_CURVE_PANELS, *,
                    optimizers: Sequence[str] | None = None):
    """Per-epoch curves: one row of ``panels`` ((column, what it is), ...) per ``group``
    value, one colour per ``hue`` value, one line style per ``style`` value (the init)."""
    return curve_panels(metrics, hue=hue, style=style, group=group, panels=panels, optimizers=optimizers)


def with_lr_label(metrics: pd.DataFrame, column: str = "label") -> pd.DataFrame:
    """A copy with ``column`` = "<optimizer> (lr <first lr of the run>)" for legends."""
    df = metrics.copy()
    first_lr = df["run"].map(df.sort_values("epoch").groupby("run")["lr"].first())
    df[column] = [f"{o} (lr {lr:g})" for o, lr in zip(df["optimizer"], first_lr)]
    return df


def optimizer_accuracy(metrics: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """im2016 Fig 4: final train and test accuracy per optimizer (colour) and init (marker).

    One row of two panels per model; diverged runs are drawn as crosses at accuracy 0."""
    last = final_rows(metrics)
    panels = [(c, t) for c, t in (("train_acc", "train accuracy"), ("test_acc", "test accuracy")) if c in last]
    return strip_figure(last, panels, order=optimizer_order(metrics["optimizer"], optimizers),
                        optimizers=optimizers, title="{model}: final {what}")


def switch_pairs(switches) -> list[tuple[str, str]]:
    """Unordered optimizer pairs of a switch study, in the order the config names them."""
    pairs: list[tuple[str, str]] = []
    for first, then in switches:
        key = tuple(sorted((first, then)))
        if key not in pairs:
            pairs.append(key)
    return pairs


def switching(metrics: pd.DataFrame, switches, *, optimizers: Sequence[str] | None = None):
    """im2016 Fig 7, 12-15: for each model and optimizer pair, train and test accuracy and the
    distance from the initial weights per epoch, of the two optimizers' own runs (optimizer
    colours) and of every switch between them (``phase`` says which optimizer produced each
    epoch; variant ramps, darker = later switch)."""
    phases = metrics.groupby("run")["phase"].agg(lambda s: frozenset(s))
    rows = [(model, pair) for model in dict.fromkeys(metrics["model"]) for pair in switch_pairs(switches)]
    panels = [(c, t) for c, t in (("train_acc", "train accuracy"), ("test_acc", "test accuracy"),
                                  ("dist_from_init", "distance from init ‖θ − θ₀‖")) if c in metrics]
    fig, axes = new_figure(len(rows), len(panels), figsize=(3.4 * len(panels) + 1.8, 2.7 * len(rows)))
    for i, (model, pair) in enumerate(rows):
        runs = {r for r, ph in phases.items() if ph <= set(pair)}
        part = metrics[(metrics["model"] == model) & metrics["run"].isin(runs)]
        sections = hue_sections(part, "optimizer", optimizers)
        colors = {v: c for _, sec in sections for v, c in sec.items()}
        style = "seed" if part["seed"].nunique() > 1 else None
        styles = init_linestyles(part["seed"]) if style else {}
        for j, (col, what) in enumerate(panels):
            ax = axes[i][j]
            draw_runs(ax, part, "epoch", col, hue="optimizer", colors=colors, style=style, styles=styles)
            ax.set_title(f"{model}, {pair[0]} ↔ {pair[1]}: {what}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(what)
        legend = [(title, color_entries(sec)) for title, sec in sections]
        if style:
            legend.append(("init", linestyle_entries(styles)))
        legend_outside(axes[i][-1], legend, fontsize=7)
    fig.tight_layout()
    return fig


def rk2_training(metrics: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """im2016 Fig 9: training curves of RK2 optimizers beside SGD, "SGD x2" and Adam
    (colour = the optimizer of each "<optimizer> (lr ...)" label)."""
    return learning_curves(with_lr_label(metrics), hue="label", style="seed", group="model", panels=RK2_PANELS,
                           optimizers=optimizers)


def exotic_inits(metrics: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """im2016 Fig 11: learning curves of models from exotic initialisations (one colour per
    model, i.e. init and BN on/off: the model palette), one row per optimizer."""
    return learning_curves(metrics, hue="model", style="seed", group="optimizer", panels=RK2_PANELS,
                           optimizers=optimizers)
