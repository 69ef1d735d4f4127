"""im2016 (Im et al. 2016, "An empirical analysis of the optimization of deep network loss
surfaces") optimizer-study figures, from per-epoch metrics tables
(``results/tables/<study>[_chosen]_metrics.parquet``).

Colour = optimizer (:func:`lossland.plots.style.optimizer_colors`; Fig 9's labels through
their optimizer), except Fig 11 (colour = model) and the switch variants of Fig 7 (their own
ramps); line style or marker = init seed (no line-style legend when a study has one init).
Diverged runs are drawn up to their last finite epoch and marked with a cross and
"(diverged)" in the legend. Accuracies are drawn in percent. Curves of several models
coloured by model are drawn wider underneath, so that coinciding curves (models that did
not train) stay visible.

Every figure function has a caption-numbers function in :data:`CAPTION_NUMBERS` (same
arguments, returns ``{name: formatted text}``): final accuracies are the last epoch of each
run, averaged over init seeds; a diverged run's values never enter a mean, the text says
"diverged" instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import PercentFormatter

from ._common import (
    any_finite,
    color_entries,
    diverged_runs,
    draw_runs,
    final_rows,
    hue_sections,
    legend_outside,
    linestyle_entries,
    mark_no_finite_values,
    seed_label,
    strip_figure,
    switch_variants,
)
from .style import DIVERGED_MARKER, init_linestyles, new_figure, optimizer_order

#: the figure functions (``lossland.plots.figure_function("im2016.<name>")``); the rest are helpers
FIGURE_FUNCTIONS = ("learning_curves", "optimizer_accuracy", "switching", "rk2_training", "exotic_inits")
__all__ = ["CAPTION_NUMBERS", "FIGURE_FUNCTIONS", "LEARNING_CURVE_PANELS", "RK2_PANELS", *FIGURE_FUNCTIONS,
           "with_lr_label", "final_rows", "switch_pairs"]

LEARNING_CURVE_PANELS = (
    ("train_loss", "train loss"),
    ("test_loss", "test loss"),
    ("train_acc", "train accuracy"),
    ("test_acc", "test accuracy"),
)
RK2_PANELS = (("train_acc", "train accuracy"), ("train_loss", "train loss"), ("test_acc", "test accuracy"))
#: inches right of the curve panels kept for their legend
LEGEND_WIDTH = 1.8
#: line width of a switch study's own (single-optimizer) runs, drawn under the switch variants
OWN_RUN_LW = 2.8


def _percent_axes(fig):
    """Accuracy axes (y label ``... accuracy``) in percent, with as many decimals as their tick
    step needs (``35%``; ``9.98%`` on a nearly flat curve); returns ``fig``."""
    for ax in fig.axes:
        if "accuracy" in ax.get_ylabel():
            ticks = 100 * np.asarray(ax.get_yticks(), dtype=float)
            decimals = next((d for d in range(3) if np.allclose(ticks * 10 ** d, np.round(ticks * 10 ** d),
                                                                  atol=1e-6)), 3)
            ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=decimals))
    return fig


def _curve_grid(df: pd.DataFrame, *, hue: str, style: str | None, group: str | None, panels,
                optimizers: Sequence[str] | None, x: str = "epoch", xlabel: str = "epoch"):
    """Per-epoch curves (what ``_common.curve_panels`` draws, laid out to be read at report size):
    per ``group`` value its ``panels`` in rows of at most 2 (4 panels) or 3 (up to 3 panels), one
    line per run, colour by ``hue``, line style by ``style`` (only when it has several values);
    a panel's y range is shared by every group; the legend right of the top-right panel."""
    diverged = diverged_runs(df)
    groups = sorted(df[group].unique()) if group and group in df else [None]
    panels = [(c, t) for c, t in panels if c in df]
    style = style if style and style in df and df[style].nunique() > 1 else None
    styles = init_linestyles(df[style]) if style else {}
    sections = hue_sections(df, hue, optimizers)
    colors = {v: c for _, sec in sections for v, c in sec.items()}
    hue_order = [v for _, sec in sections for v in sec]
    # coinciding curves of several models (e.g. inits that did not train) stay visible: wider underneath
    n = len(hue_order)
    widths = ({v: 1.3 + 1.9 * (n - 1 - k) / (n - 1) for k, v in enumerate(hue_order)} if hue == "model" and n > 1
              else {v: 1.3 for v in hue_order})
    cols = 2 if len(panels) == 4 else max(min(len(panels), 3), 1)
    per = math.ceil(len(panels) / cols) if panels else 1
    fig, axes = new_figure(len(groups) * per, cols, figsize=((3.4 if cols < 3 else 3.1) * cols + 2.0,
                                                              2.7 * len(groups) * per))
    for ax in axes.flat:
        ax.set_visible(False)
    by_panel: dict[int, list] = {}
    for i, g in enumerate(groups):
        part = df if g is None else df[df[group] == g]
        for j, (col, what) in enumerate(panels):
            ax = axes[i * per + j // cols][j % cols]
            ax.set_visible(True)
            for v in hue_order:
                rows = part[part[hue] == v]
                if len(rows):
                    draw_runs(ax, rows, x, col, hue=hue, colors=colors, style=style, styles=styles,
                              diverged=diverged, lw=widths[v])
            if not any_finite(part[col]):
                mark_no_finite_values(ax, x=part[x])
            ax.set_title(what if g is None else f"{group} {g}: {what}")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(what)
            by_panel.setdefault(j, []).append(ax)
    for same in by_panel.values():  # one y range per quantity, so that groups compare at a glance
        if len(same) > 1:
            lims = np.array([ax.get_ylim() for ax in same])
            if np.isfinite(lims).all():
                for ax in same:
                    ax.set_ylim(lims[:, 0].min(), lims[:, 1].max())
    flagged = set(df.loc[df["run"].isin(diverged), hue])
    legend = [(title, [(label, {**st, "lw": max(st["lw"], widths[v])})
                       for v, (label, st) in zip(sec, color_entries(sec, flagged))]) for title, sec in sections]
    if style:
        legend.append(("init" if style == "seed" else style,
                       linestyle_entries(styles, seed_label if style == "seed" else str)))
    if diverged:
        legend.append(("", [("diverged: last finite epoch", DIVERGED_MARKER)]))
    leg = legend_outside(axes[0][min(len(panels), cols) - 1], legend)
    if leg is not None:  # a long legend (a switch study's variants) runs down the right margin, not into the grid
        leg.set_in_layout(False)
    fig.tight_layout(rect=(0.0, 0.0, 1.0 - LEGEND_WIDTH / fig.get_figwidth(), 1.0))
    if leg is not None:
        leg.set_in_layout(True)  # saved with bbox_inches="tight": the PNG keeps all of it
    return _percent_axes(fig)


def _colour_by_model(metrics: pd.DataFrame, hue: str, group: str | None) -> bool:
    """Whether learning curves coloured by optimizer and grouped by model are better drawn the
    other way round: one optimizer and several models (an init study), one row instead of many."""
    return (hue == "optimizer" and group == "model" and {"optimizer", "model"} <= set(metrics)
            and metrics["optimizer"].nunique() == 1 and metrics["model"].nunique() > 1)


def learning_curves(metrics: pd.DataFrame, hue: str = "optimizer", style: str | None = "seed",
                    group: str | None = "model", panels=LEARNING_CURVE_PANELS, *,
                    optimizers: Sequence[str] | None = None, study: str | None = None):
    """Per-epoch curves: ``panels`` ((column, what it is), ...) per ``group`` value, one colour
    per ``hue`` value, one line style per ``style`` value (the init). A study with one
    optimizer and several models (the init study) is coloured by model in one group instead.
    ``study`` (the config section) only names the study in the caption."""
    if _colour_by_model(metrics, hue, group):
        hue, group = "model", "optimizer"
    return _curve_grid(metrics, hue=hue, style=style, group=group, panels=panels, optimizers=optimizers)


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
    return _percent_axes(strip_figure(last, panels, order=optimizer_order(metrics["optimizer"], optimizers),
                                      optimizers=optimizers, title="{model}: final {what}"))


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
    colours, wide lines underneath: a variant follows its first optimizer's run up to the
    switch) and of every switch between them (``phase`` says which optimizer produced each
    epoch; variant ramps, darker = later switch; a dot at the switch epoch)."""
    phases = metrics.groupby("run")["phase"].agg(lambda s: frozenset(s))
    rows = [(model, pair) for model in dict.fromkeys(metrics["model"]) for pair in switch_pairs(switches)]
    panels = [(c, t, y) for c, t, y in (("train_acc", "train accuracy", "train accuracy"),
                                        ("test_acc", "test accuracy", "test accuracy"),
                                        ("dist_from_init", "distance from init", "distance ‖θ − θ₀‖"))
              if c in metrics]
    fig, axes = new_figure(len(rows), len(panels), figsize=(3.3 * len(panels) + 1.9, 2.7 * len(rows)))
    for i, (model, pair) in enumerate(rows):
        runs = {r for r, ph in phases.items() if ph <= set(pair)}
        part = metrics[(metrics["model"] == model) & metrics["run"].isin(runs)]
        sections = hue_sections(part, "optimizer", optimizers)
        colors = {v: c for _, sec in sections for v, c in sec.items()}
        variants = switch_variants(part)
        own = part[~part["optimizer"].isin(variants)]
        switched = part[part["optimizer"].isin(variants)]
        style = "seed" if part["seed"].nunique() > 1 else None
        styles = init_linestyles(part["seed"]) if style else {}
        for j, (col, what, ylabel) in enumerate(panels):
            ax = axes[i][j]
            draw_runs(ax, own, "epoch", col, hue="optimizer", colors=colors, style=style, styles=styles,
                      lw=OWN_RUN_LW)
            draw_runs(ax, switched, "epoch", col, hue="optimizer", colors=colors, style=style, styles=styles)
            for _, run in switched.groupby("run", sort=False):
                k = variants[run["optimizer"].iloc[0]][1]
                y = pd.to_numeric(run.loc[run["epoch"] == k, col], errors="coerce").astype(float)
                if len(y) and np.isfinite(y.iloc[0]):
                    ax.plot([k], [y.iloc[0]], ls="none", marker="o", ms=4, color=colors[run["optimizer"].iloc[0]],
                            zorder=3)
            ax.set_title(f"{model}, {pair[0]} ↔ {pair[1]}: {what}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
        legend = [(title, [(label, {**st, "lw": OWN_RUN_LW if k == 0 else st["lw"]})
                           for label, st in color_entries(sec)]) for k, (title, sec) in enumerate(sections)]
        if variants:
            legend.append(("", [("switch epoch", {"marker": "o", "ms": 4, "color": ".3", "ls": "none"})]))
        if style:
            legend.append(("init", linestyle_entries(styles)))
        legend_outside(axes[i][-1], legend, fontsize=7.5)
    fig.tight_layout()
    return _percent_axes(fig)


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


# --------------------------------------------------------------------------- caption numbers

NA = "n/a"
#: a run "trained" (Fig 11) when its final train accuracy is this much above its epoch-0 accuracy
TRAINED_GAIN = 0.05
#: the studies whose learning curves a figure shows: (name, where in im2016, the figures they feed)
STUDIES = {
    "optimizer_study": ("the optimizer study", "section 4.1", "Fig 4"),
    "rk2_study": ("the RK2 study", "appendix A.4", "Fig 9"),
    "init_study": ("the initialisation study", "appendix A.5", "Fig 11"),
    "switch_study": ("the switch study", "section 4.3", "Fig 7 and 12–15"),
}
_RK2 = re.compile(r"^rk2-([^(]+)\((.+)\)$")


def _rst(name) -> str:
    """``name`` (a model, optimizer, ...) safe inside reStructuredText prose."""
    return re.sub(r"([\\*`|_])", r"\\\1", str(name))


def _pct(value) -> str:
    """``36.7%`` (a fraction as percent, one decimal); ``n/a`` when not a finite number."""
    return f"{100 * float(value):.1f}%" if value is not None and np.isfinite(float(value)) else NA


def _points(value) -> str:
    """A difference of two fractions in percentage points: ``6.6 points``."""
    return f"{100 * float(value):.1f} points" if value is not None and np.isfinite(float(value)) else NA


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _join(items, empty: str = "none") -> str:
    items = [i for i in items if i]
    return ", ".join(items) if items else empty


def _finals(metrics: pd.DataFrame) -> pd.DataFrame:
    """The last epoch of every run, ``diverged`` = the run diverged at some epoch; the metric
    values of a diverged run, and any non-finite value, are NaN."""
    last = final_rows(metrics).copy()
    bad = last["run"].isin(diverged_runs(metrics))
    last["diverged"] = bad.to_numpy()
    for col in ("train_acc", "test_acc", "val_acc", "train_loss", "test_loss", "val_loss", "dist_from_init"):
        if col in last:
            v = pd.to_numeric(last[col], errors="coerce").astype(float)
            last[col] = v.where(np.isfinite(v) & ~bad, np.nan)
    if "seed" not in last:
        last["seed"] = 0
    return last


def _mean(rows: pd.DataFrame, col: str) -> float:
    """Mean of the finite ``col`` values of ``rows`` (NaN when none is)."""
    if col not in rows:
        return math.nan
    v = rows[col].to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else math.nan


def _mean_text(rows: pd.DataFrame, col: str) -> str:
    """The mean of ``col`` over ``rows`` (the inits) as percent, saying how many diverged."""
    n, bad = len(rows), int(rows["diverged"].sum()) if "diverged" in rows else 0
    value = _mean(rows, col)
    if not np.isfinite(value):
        return "diverged" if bad else NA
    return _pct(value) + (f" ({bad} of {n} inits diverged)" if bad else "")


def _per(keys: Sequence, text: Callable[[object], str], sep: str = "; ") -> str:
    """``text(key)``, prefixed with ``key:`` and joined when there are several keys."""
    if not keys:
        return NA
    if len(keys) == 1:
        return text(keys[0])
    return sep.join(f"{_rst(k)}: {text(k)}" for k in keys)


def _listing(rows: pd.DataFrame, by: str, order: Sequence, col: str) -> str:
    """``sgd 35.1%, adam 38.0%``: the mean of ``col`` per ``by`` value, in ``order``."""
    return _join([f"{_rst(v)} {_mean_text(rows[rows[by] == v], col)}" for v in order if (rows[by] == v).any()],
                 NA)


def _ranked(rows: pd.DataFrame, by: str, col: str) -> list[tuple[float, str]]:
    """``[(mean of col, by value)]`` of the ``by`` values with a finite mean, best first."""
    means = [(_mean(r, col), v) for v, r in rows.groupby(by, sort=False)]
    return sorted(((m, v) for m, v in means if np.isfinite(m)), key=lambda t: -t[0])


def _models(df: pd.DataFrame) -> list:
    return sorted(df["model"].unique()) if "model" in df else [None]


def _of_model(df: pd.DataFrame, model) -> pd.DataFrame:
    return df if model is None else df[df["model"] == model]


def _diverged_text(finals: pd.DataFrame, label: Callable[[pd.Series], str]) -> str:
    bad = finals[finals["diverged"]]
    return _join([label(r) for _, r in bad.iterrows()])


def _seed_of(row) -> str:
    return f"init {row['seed']}"


def optimizer_accuracy_numbers(metrics: pd.DataFrame, *, optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Fig 4's numbers: ``train``/``test`` (final accuracy per optimizer, mean over inits),
    ``best``/``worst`` (by test accuracy), ``spread`` (best - worst), ``seed_spread`` (the
    largest difference between inits of one optimizer), ``seeds``, ``epoch``, ``diverged``."""
    fin = _finals(metrics)
    models = _models(fin)
    order = optimizer_order(metrics["optimizer"], optimizers)
    rank_col = "test_acc" if "test_acc" in fin else "train_acc"
    n_seeds = int(fin["seed"].nunique())

    def extreme(model, k: int) -> str:
        ranked = _ranked(_of_model(fin, model), "optimizer", rank_col)
        return f"{_rst(ranked[k][1])} ({_pct(ranked[k][0])})" if ranked else f"{NA} (every run diverged)"

    def spread(model) -> str:
        ranked = _ranked(_of_model(fin, model), "optimizer", rank_col)
        return _points(ranked[0][0] - ranked[-1][0]) if len(ranked) > 1 else f"{NA} (one optimizer)"

    def seed_spread(model) -> str:
        if n_seeds < 2:
            return f"{NA} (one init)"
        gaps = []
        for opt, rows in _of_model(fin, model).groupby("optimizer", sort=False):
            v = rows[rank_col].to_numpy(dtype=float)
            v = v[np.isfinite(v)]
            if v.size > 1:
                gaps.append((float(v.max() - v.min()), opt))
        if not gaps:
            return f"{NA} (fewer than two finite inits per optimizer)"
        gap, opt = max(gaps)
        return f"{_points(gap)} ({_rst(opt)})"

    several = len(models) > 1
    return {
        "epoch": str(int(fin["epoch"].max())) if len(fin) else NA,
        "seeds": _count(n_seeds, "init"),
        "train": _per(models, lambda m: _listing(_of_model(fin, m), "optimizer", order, "train_acc")),
        "test": _per(models, lambda m: _listing(_of_model(fin, m), "optimizer", order, "test_acc")),
        "best": _per(models, lambda m: extreme(m, 0)),
        "worst": _per(models, lambda m: extreme(m, -1)),
        "spread": _per(models, spread),
        "seed_spread": _per(models, seed_spread),
        "diverged": _diverged_text(fin, lambda r: (f"{_rst(r['model'])} " if several else "")
                                   + f"{_rst(r['optimizer'])} {_seed_of(r)}"),
    }


def _switch_runs(metrics: pd.DataFrame) -> pd.DataFrame:
    """The final row of every run of a switch study with ``first`` and ``then`` (the optimizers of
    its first and last trained epochs; the same for an optimizer's own run) and ``switch_epoch``
    (the last epoch of ``first``; 0 for an own run)."""
    fin = _finals(metrics)
    first, then, k = {}, {}, {}
    for run, rows in metrics.groupby("run", sort=False):
        rows = rows.sort_values("epoch", kind="stable")
        trained = rows[rows["epoch"] > 0] if (rows["epoch"] > 0).any() else rows
        ph = list(trained["phase"]) if "phase" in trained else [trained["optimizer"].iloc[0]] * len(trained)
        first[run], then[run] = ph[0], ph[-1]
        k[run] = int(trained.loc[trained["phase"] == ph[0], "epoch"].max()) if ph[0] != ph[-1] else 0
    fin["first"] = fin["run"].map(first)
    fin["then"] = fin["run"].map(then)
    fin["switch_epoch"] = fin["run"].map(k)
    return fin


def switching_numbers(metrics: pd.DataFrame, switches, *, optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Fig 7's numbers: ``own``/``own_test`` (final train/test accuracy of each optimizer's own
    run), ``train``/``test`` (per switch "first → then": the final accuracy of every variant), all
    means over inits; ``above_first`` ("k of n": the variants whose final train accuracy is above
    their first optimizer's own run), ``closer`` ("k of n": those nearer the second optimizer's
    own run than the first's), ``dist`` (final distance from the init of every own run),
    ``seeds``, ``diverged``."""
    fin = _switch_runs(metrics)
    own = fin[fin["switch_epoch"] == 0]
    variants = fin[fin["switch_epoch"] > 0]
    models = list(dict.fromkeys(fin["model"])) if "model" in fin else [None]
    pairs = [tuple(p) for p in switches]
    order = optimizer_order(own["optimizer"], optimizers)
    counts = {"above": 0, "closer": 0, "of": 0}

    def switch_text(model, col: str, count: bool) -> str:
        texts = []
        mine, theirs = _of_model(own, model), _of_model(variants, model)
        for first, then in pairs:
            var = theirs[(theirs["first"] == first) & (theirs["then"] == then)].sort_values("switch_epoch",
                                                                                            kind="stable")
            names = list(dict.fromkeys(var["optimizer"]))
            texts.append(f"{_rst(first)} → {_rst(then)}: " + _join(
                [f"{_rst(v)} {_mean_text(var[var['optimizer'] == v], col)}" for v in names], "no switch run"))
            a, b = (_mean(mine[mine["optimizer"] == o], col) for o in (first, then))
            for v in names if count else ():
                x = _mean(var[var["optimizer"] == v], col)
                if np.isfinite([a, b, x]).all():
                    counts["of"] += 1
                    counts["above"] += x > a
                    counts["closer"] += abs(x - b) < abs(x - a)
        return "; ".join(texts) if texts else NA

    def own_text(col: str) -> Callable[[object], str]:
        return lambda model: _listing(_of_model(own, model), "optimizer", order, col)

    def dist(model) -> str:
        mine = _of_model(own, model)
        return _join([f"{_rst(o)} {_distance(mine[mine['optimizer'] == o])}" for o in order
                      if (mine["optimizer"] == o).any()], NA)

    several = len(models) > 1
    numbers = {
        "own": _per(models, own_text("train_acc")),
        "own_test": _per(models, own_text("test_acc")),
        "train": _per(models, lambda m: switch_text(m, "train_acc", True), sep=". "),
        "test": _per(models, lambda m: switch_text(m, "test_acc", False), sep=". "),
        "dist": _per(models, dist),
        "seeds": _count(int(fin["seed"].nunique()), "init"),
        "diverged": _diverged_text(fin, lambda r: (f"{_rst(r['model'])} " if several else "")
                                   + f"{_rst(r['optimizer'])} {_seed_of(r)}"),
    }
    of = counts["of"]
    numbers["above_first"] = f"{counts['above']} of {of}" if of else NA
    numbers["closer"] = f"{counts['closer']} of {of}" if of else NA
    return numbers


def _distance(rows: pd.DataFrame) -> str:
    value = _mean(rows, "dist_from_init")
    if not np.isfinite(value):
        return "diverged" if rows["diverged"].any() else NA
    return f"{value:.2f}"


def _rk2_base(algorithm) -> str | None:
    """The base algorithm of an RK2 algorithm name (``rk2-heun(adam)`` -> ``adam``), else None."""
    m = _RK2.match(str(algorithm))
    return m.group(2) if m else None


def rk2_training_numbers(metrics: pd.DataFrame, *, optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Fig 9's numbers: ``train``/``test`` (final accuracy per optimizer, mean over inits),
    ``comparison`` (per base algorithm: its plain runs, then the RK2 optimizers around it, by
    final train accuracy), ``above``/``between``/``below`` (the RK2 optimizers above every plain
    run of their base, between them, below every one), ``seeds``, ``diverged``."""
    fin = _finals(metrics)
    models = _models(fin)
    order = optimizer_order(metrics["optimizer"], optimizers)
    algo = (fin.groupby("optimizer", sort=False)["algorithm"].first().to_dict() if "algorithm" in fin
            else {o: o for o in order})
    base = {o: _rk2_base(a) for o, a in algo.items()}
    rk2 = [o for o in order if base.get(o)]
    verdict: dict[str, list[str]] = {"above": [], "between": [], "below": []}

    def comparison(model) -> str:
        rows = _of_model(fin, model)
        present = [o for o in order if (rows["optimizer"] == o).any()]
        texts = []
        for b in dict.fromkeys(base[o] for o in rk2 if o in present):
            plain = [o for o in present if not base.get(o) and algo.get(o) == b]
            mine = [o for o in rk2 if base[o] == b and o in present]
            around = (f"around {_rst(b)} ({_listing(rows, 'optimizer', plain, 'train_acc')})" if plain
                      else f"around {_rst(b)} (no plain {_rst(b)} run)")
            texts.append(f"{around}: {_listing(rows, 'optimizer', mine, 'train_acc')}")
            refs = [v for v in (_mean(rows[rows["optimizer"] == o], "train_acc") for o in plain) if np.isfinite(v)]
            for o in mine:
                v = _mean(rows[rows["optimizer"] == o], "train_acc")
                if refs and np.isfinite(v):
                    where = "above" if v > max(refs) else "below" if v < min(refs) else "between"
                    verdict[where].append(f"{_rst(model)} {_rst(o)}" if len(models) > 1 else _rst(o))
        return "; ".join(texts) if texts else f"{NA} (no RK2 optimizer in the study)"

    numbers = {
        "train": _per(models, lambda m: _listing(_of_model(fin, m), "optimizer", order, "train_acc")),
        "test": _per(models, lambda m: _listing(_of_model(fin, m), "optimizer", order, "test_acc")),
        "comparison": _per(models, comparison),
        "seeds": _count(int(fin["seed"].nunique()), "init"),
        "diverged": _diverged_text(fin, lambda r: (f"{_rst(r['model'])} " if len(models) > 1 else "")
                                   + f"{_rst(r['optimizer'])} {_seed_of(r)}"),
    }
    numbers.update({k: _join(v) for k, v in verdict.items()})
    return numbers


def exotic_inits_numbers(metrics: pd.DataFrame, *, optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Fig 11's numbers: ``train``/``test`` (final accuracy per model, mean over inits), ``start``
    (the range of epoch-0 train accuracy), ``trained`` (models whose final train accuracy is at
    least :data:`TRAINED_GAIN` above their epoch-0 accuracy), ``untrained`` (the others that did
    not diverge), ``diverged``, ``gain`` (the criterion); per optimizer when there are several."""
    fin = _finals(metrics)
    first = metrics.sort_values("epoch", kind="stable").groupby("run", sort=False).head(1)
    start = dict(zip(first["run"], pd.to_numeric(first["train_acc"], errors="coerce").astype(float)))
    fin["start_acc"] = fin["run"].map(start)
    opts = optimizer_order(fin["optimizer"], optimizers) if "optimizer" in fin else [None]
    models = _models(fin)

    def rows_of(opt):
        return fin if opt is None else fin[fin["optimizer"] == opt]

    def status(opt, want: str) -> str:
        out = []
        rows = rows_of(opt)
        for m in models:
            r = _of_model(rows, m)
            if not len(r):
                continue
            final, begin = _mean(r, "train_acc"), _mean(r, "start_acc")
            if r["diverged"].all() or (want == "diverged" and r["diverged"].any()):
                got = "diverged"
            elif np.isfinite([final, begin]).all():
                got = "trained" if final - begin >= TRAINED_GAIN else "untrained"
            else:
                got = NA
            if got == want:
                out.append(_rst(m))
        return _join(out)

    start_vals = fin["start_acc"].to_numpy(dtype=float)
    start_vals = start_vals[np.isfinite(start_vals)]
    lo, hi = (start_vals.min(), start_vals.max()) if start_vals.size else (math.nan, math.nan)
    return {
        "train": _per(opts, lambda o: _listing(rows_of(o), "model", models, "train_acc")),
        "test": _per(opts, lambda o: _listing(rows_of(o), "model", models, "test_acc")),
        "start": (_pct(lo) if lo == hi else f"{_pct(lo)[:-1]}–{_pct(hi)}") if start_vals.size else NA,
        "trained": _per(opts, lambda o: status(o, "trained")),
        "untrained": _per(opts, lambda o: status(o, "untrained")),
        "diverged": _per(opts, lambda o: status(o, "diverged")),
        "gain": _points(TRAINED_GAIN),
        "seeds": _count(int(fin["seed"].nunique()), "init"),
    }


def _study_of(metrics: pd.DataFrame, hue: str, group: str | None, study: str | None) -> str | None:
    """The study a learning-curves table comes from: ``study`` when given, else guessed from the
    table (switch variants: the switch study; one optimizer, several models: the init study; an
    RK2 optimizer: the RK2 study; several optimizers: the optimizer study); None if unsure."""
    if study:
        return study
    if switch_variants(metrics):
        return "switch_study"
    if _colour_by_model(metrics, hue, group) or hue == "model":
        return "init_study"
    if "algorithm" in metrics and metrics["algorithm"].map(lambda a: _rk2_base(a) is not None).any():
        return "rk2_study"
    if "optimizer" in metrics and metrics["optimizer"].nunique() > 1:
        return "optimizer_study"
    return None


def learning_curves_numbers(metrics: pd.DataFrame, hue: str = "optimizer", style: str | None = "seed",
                            group: str | None = "model", panels=LEARNING_CURVE_PANELS, *,
                            optimizers: Sequence[str] | None = None, study: str | None = None) -> dict[str, str]:
    """The learning curves' numbers: ``study``/``where``/``figure`` (which study, where in im2016,
    which figures it feeds; "one study" and ``n/a`` when the table does not say) and
    ``study_key`` (its config section), ``grids`` (the learning rates of every optimizer trained
    at several), ``colour`` (what a colour is), ``runs``, ``seeds``, ``epoch``,
    ``best``/``worst`` (the runs with the highest and lowest final test accuracy), ``diverged``."""
    name = _study_of(metrics, hue, group, study)
    what, where, figure = STUDIES.get(name, ("one study", NA, NA))
    colour = "model" if _colour_by_model(metrics, hue, group) else hue
    fin = _finals(metrics)
    several = "model" in fin and fin["model"].nunique() > 1
    first_lr = (metrics.sort_values("epoch", kind="stable").groupby("run", sort=False)["lr"].first()
                if "lr" in metrics else pd.Series(dtype=float))
    variants = switch_variants(metrics)

    def parts(r) -> tuple[str, str]:
        """(``adam``, ``lr 0.001, init 0``); (``nin-n1``, ``sgd, lr 0.1, init 0``) with several models."""
        lr = first_lr.get(r["run"], math.nan)
        rest = (f"lr {lr:g}, " if np.isfinite(lr) and r["optimizer"] not in variants else "") + f"init {r['seed']}"
        return (_rst(r["model"]), f"{_rst(r['optimizer'])}, {rest}") if several else (_rst(r["optimizer"]), rest)

    def label(r) -> str:
        return "{} ({})".format(*parts(r))

    def value(r) -> str:
        return "{} ({}, {})".format(_pct(r[col]), *parts(r))

    col = "test_acc" if "test_acc" in fin else "train_acc"
    ok = fin[np.isfinite(fin[col].to_numpy(dtype=float))].sort_values(col, ascending=False, kind="stable")
    plain = fin[~fin["optimizer"].isin(variants)]
    rates = {}
    for o in optimizer_order(plain["optimizer"], optimizers):
        lrs = (first_lr.get(r, math.nan) for r in plain.loc[plain["optimizer"] == o, "run"])
        rates[o] = sorted({float(lr) for lr in lrs if np.isfinite(lr)}, reverse=True)
    grids = [f"{_rst(o)} {', '.join(f'{lr:g}' for lr in lrs)}" for o, lrs in rates.items() if len(lrs) > 1]
    return {
        "study": what,
        "study_key": name or NA,
        "grids": "; ".join(grids) if grids else "none",
        "where": where,
        "figure": figure,
        "colour": {"label": "optimizer"}.get(colour, colour),
        "runs": _count(len(fin), "run"),
        "seeds": _count(int(fin["seed"].nunique()), "init"),
        "epochs": _count(int(fin["epoch"].max()), "epoch") if len(fin) else NA,
        "best": value(ok.iloc[0]) if len(ok) else NA,
        "worst": value(ok.iloc[-1]) if len(ok) else NA,
        "diverged": _diverged_text(fin, label),
    }


#: ``{figure function: caption-numbers function}`` (:func:`lossland.plots.caption_numbers`)
CAPTION_NUMBERS = {
    "learning_curves": learning_curves_numbers,
    "optimizer_accuracy": optimizer_accuracy_numbers,
    "switching": switching_numbers,
    "rk2_training": rk2_training_numbers,
    "exotic_inits": exotic_inits_numbers,
}
