"""Sharpness family figures (the review's batch-size and skip-connection experiments), from
``results/tables/batch_size_*.parquet`` and ``architecture_*.parquet``:

* :func:`batch_interpolation` -- Keskar et al.'s Fig 3: loss and accuracy along the line from
  the small-batch solution (α 0) to each larger batch's (α 1) and past both ends;
* :func:`batch_sharpness` -- top Hessian eigenvalue, ε-sharpness, accuracy and distance from
  the init against the batch size;
* :func:`skip_surfaces` / :func:`skip_surfaces_3d` -- Li et al.'s Fig 5: the training loss on a
  filter-normalised random plane around each ResNet with and without skip connections, one row
  per depth, as filled contours (log-spaced levels, one colour scale) and as 3-D surfaces;
* :func:`convexity_maps` -- Li et al.'s convexity maps ``|λ_min/λ_max|`` on a coarse grid of the
  same planes, and the centre's ratio and the map's mean against depth;
* :func:`width_surfaces` -- Li et al.'s Fig 6: the planes of one architecture at several widths
  side by side, and the top eigenvalue and ε-sharpness against width.

Colours: "with skips" and "without skips" have one colour each in every figure
(:data:`SKIP_COLORS`, the first two of the pair palette); the batch sizes take the following
pair-palette colours in size order (:func:`batch_colors`). Loss planes use the surface colour
map; the convexity maps :data:`CONVEXITY_CMAP` (light: locally convex). A diverged run's
values are never drawn; its panel says so (:func:`~._common.mark_no_finite_values`).

The caption numbers (``CAPTION_NUMBERS``) are computed from the same tables with the family's
measures (:mod:`lossland.pipeline.families.sharpness`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullLocator

from ..pipeline.families.sharpness import (
    batch_ends,
    mean_map_ratio,
    skip_pairs,
    surface_nonconvexity,
    surface_of,
    width_groups,
)
from ._common import (
    any_finite,
    contour,
    describe,
    finite,
    finite_log,
    finite_range,
    legend_outside,
    mark_no_finite_values,
    significant,
    surface_grid,
)
from .landscape import _alpha_ticks, _at, _extent, _line_barrier, _plain_log_ticks, _text
from .style import DIVERGED_MARKER, PAIR_PALETTE, SPLIT_STYLES, SURFACE_CMAP, blank_figure, new_figure, palette_color

FIGURE_FUNCTIONS = ("batch_interpolation", "batch_sharpness", "skip_surfaces", "skip_surfaces_3d", "convexity_maps",
                    "width_surfaces")
__all__ = ["CAPTION_NUMBERS", "CONVEXITY_CMAP", "FIGURE_FUNCTIONS", "SKIP_COLORS", "SKIP_LABELS", "batch_colors",
           *FIGURE_FUNCTIONS]

#: one colour per variant in Figs 3-5 (skip surfaces, their 3-D view, the convexity maps)
SKIP_COLORS = {True: PAIR_PALETTE[0], False: PAIR_PALETTE[1]}
SKIP_LABELS = {True: "with skip connections", False: "without skip connections"}
SKIP_SHORT = {True: "with skips", False: "without skips"}
#: the convexity maps' colour map: light where |λ_min/λ_max| is near 0 (locally convex)
CONVEXITY_CMAP = "YlOrRd"
RATIO = r"$|\lambda_{\min}/\lambda_{\max}|$"
#: filled-contour levels of the loss planes (evenly spaced in log10 loss)
LEVELS = 15
#: the loss axis of the interpolation is logarithmic when its finite losses span more than this factor
LOG_SPAN = 10.0
PLANE_X, PLANE_Y = "δ (filter-normalised direction 1)", "η (direction 2)"
NA = "n/a"
_TOL = 1e-6


def batch_colors(sizes) -> dict[int, str]:
    """``{batch size: colour}``: the pair palette from its third colour on, in size order (the
    first two are :data:`SKIP_COLORS`)."""
    order = sorted({int(s) for s in sizes})
    return {s: palette_color(PAIR_PALETTE, 2 + i) for i, s in enumerate(order)}


# --------------------------------------------------------------------------- shared pieces


def _value(value, digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
    """``value`` (×``scale``) to ``digits`` significant digits; "diverged" when not finite, "n/a" for None."""
    if value is None:
        return NA
    v = float(value)
    return f"{significant(scale * v, digits)}{unit}" if math.isfinite(v) else "diverged"


def _percent(value) -> str:
    return _value(value, 3, 100.0, " %")


def _first_split(df: pd.DataFrame) -> str:
    """The split the loss figures show: ``train`` when there, else the table's first."""
    splits = list(dict.fromkeys(df["split"])) if "split" in df and len(df) else []
    return "train" if "train" in splits or not splits else str(splits[0])


def _of_split(df: pd.DataFrame, split: str) -> pd.DataFrame:
    return df[df["split"] == split] if "split" in df else df.iloc[:0]


def _log_range(values) -> tuple[float, float]:
    """(lo, hi) of log10 of the finite ``values`` (a unit around a single value; (0, 1) when none is)."""
    logs = finite_log(values).ravel()
    logs = logs[np.isfinite(logs)]
    if not logs.size:
        return 0.0, 1.0
    lo, hi = float(logs.min()), float(logs.max())
    return (lo - 0.5, hi + 0.5) if hi - lo < 1e-9 else (lo, hi)


def _nice_log_ticks(lo: float, hi: float) -> list[float]:
    """log10 positions of the 1, 2, 5 × 10^k values within [lo, hi] (every power of ten when too many)."""
    ticks = [math.log10(m * 10.0 ** k) for k in range(math.floor(lo) - 1, math.ceil(hi) + 1) for m in (1, 2, 5)]
    ticks = [t for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]
    if len(ticks) > 8:
        ticks = [t for t in ticks if abs(t - round(t)) < 1e-9]
    return ticks if len(ticks) >= 2 else list(np.linspace(lo, hi, 4))


def _loss_colorbar(fig, axes, lo: float, hi: float, split: str, what: str = "log-spaced contour levels"):
    """One colour bar for ``axes`` on the log10 loss scale [lo, hi], ticked in loss values."""
    bar = fig.colorbar(ScalarMappable(Normalize(lo, hi), cmap=SURFACE_CMAP), ax=list(axes), shrink=0.9,
                       label=f"{split} loss ({what})")
    bar.set_ticks(_nice_log_ticks(lo, hi))
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{10 ** v:.3g}"))
    bar.ax.yaxis.set_minor_locator(NullLocator())
    return bar


def _constrained(figsize, wspace: float = 0.02) -> object:
    """A figure with constrained layout (room for the shared colour bars); ``wspace`` between columns."""
    fig = blank_figure(figsize)
    fig.set_layout_engine("constrained", wspace=wspace)
    return fig


def _message_figure(text: str, title: str):
    """A one-panel figure saying why nothing could be drawn (labelled like any other panel)."""
    fig, axes = new_figure(1, 1, figsize=(7.0, 3.0))
    ax = axes[0, 0]
    mark_no_finite_values(ax, text)
    ax.set_title(title)
    ax.set_xlabel(PLANE_X)
    ax.set_ylabel(PLANE_Y)
    fig.tight_layout()
    return fig


def _no_pairs_figure(title: str):
    return _message_figure("no depth has a ResNet both with and without skip connections", title)


def _model_title(row, depth, skip) -> str:
    return f"{row['model']}: depth {depth}, {SKIP_SHORT[skip]}" + (" (diverged)" if _diverged(row) else "")


def _diverged(row) -> bool:
    return bool(row.get("diverged", False)) if hasattr(row, "get") else False


def _frame(ax, color) -> None:
    for spine in ax.spines.values():
        spine.set_edgecolor(color)
        spine.set_linewidth(1.8)


def _centre_mark(ax, skip: bool, z=None) -> None:
    style = {"marker": "*", "color": SKIP_COLORS[skip], "mec": "black", "mew": 0.7, "ms": 13, "ls": "none",
             "zorder": 5}
    if z is None:
        ax.plot([0.0], [0.0], **style)
    elif np.isfinite(z):
        ax.plot([0.0], [0.0], [z], **style)


def _plane(ax, part: pd.DataFrame, levels, lo: float, hi: float) -> None:
    """Filled contours of ``part``'s loss on the shared log scale (or why there are none)."""
    if not len(part):
        ax.grid(False)
        mark_no_finite_values(ax, "no plane in the table for this run", x=[-1, 1], y=[-1, 1])
    else:
        contour(ax, part, levels=levels, vmin=lo, vmax=hi)
    ax.set_xlabel(PLANE_X)
    ax.set_ylabel(PLANE_Y)


def _centre_loss(part: pd.DataFrame):
    """The loss at the plane's origin (the solution); None when the grid lacks it."""
    return _at(part[np.abs(part["y"].to_numpy(float)) <= _TOL], "x", 0.0) if len(part) else None


def _pair_runs(pairs: Mapping) -> list[str]:
    return [p[s]["run"] for p in pairs.values() for s in (True, False)]


# --------------------------------------------------------------------------- batch size (Keskar et al.)


def _batch_lines(df: pd.DataFrame) -> list[tuple]:
    """``[((model, seed), rows)]``: one panel per model and init (one for a table without them)."""
    keys = [k for k in ("model", "seed") if k in df]
    if not keys or not len(df):
        return [((None, None), df)]
    return [(tuple(k) if isinstance(k, tuple) else (k,), rows) for k, rows in df.groupby(keys, sort=False)]


def _log_loss(values) -> bool:
    lo, hi = finite_range(values, positive=True)
    return bool(np.isfinite([lo, hi]).all() and hi > LOG_SPAN * lo)


def batch_interpolation(interpolation: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """Keskar et al.'s Fig 3: loss (left axis; log scale when it spans more than a decade) and
    accuracy (right axis) along ``small + α(large − small)``, one colour per larger batch,
    train solid, test dashed; α 0 and 1 marked with their batch sizes."""
    df = interpolation
    groups = _batch_lines(df)
    colors = batch_colors([*df.get("batch_size_start", []), *df.get("batch_size_end", [])])
    fig, axes = new_figure(len(groups), 1, figsize=(9.6, 4.6 * len(groups)))
    for ax, (key, part) in zip(axes[:, 0], groups):
        acc = ax.twinx()
        acc.grid(False)
        for (end, split), line in part.groupby(["batch_size_end", "split"], sort=True):
            line = line.sort_values("alpha")
            ls = SPLIT_STYLES.get(split, ":")
            ax.plot(line["alpha"], finite(line["loss"]), color=colors[int(end)], ls=ls, lw=2.0)
            acc.plot(line["alpha"], 100 * finite(line["accuracy"]), color=colors[int(end)], ls=ls, lw=0.9,
                     marker="o", ms=3.0, mfc="white", mew=0.8)
        if _log_loss(part["loss"]):
            ax.set_yscale("log")
            _plain_log_ticks(ax)
        small = sorted({int(b) for b in part["batch_size_start"]}) if len(part) else []
        large = sorted({int(b) for b in part["batch_size_end"]}) if len(part) else []
        for at, sizes in ((0.0, small), (1.0, large)):
            ax.axvline(at, color="grey", lw=0.8, ls=":")
            if sizes:
                ax.text(at, 1.01, "batch " + ", ".join(map(str, sizes)), transform=ax.get_xaxis_transform(),
                        ha="center", va="bottom", fontsize=8, weight="bold",
                        color=colors[sizes[0]] if len(sizes) == 1 else ".15")
        ax.xaxis.set_major_locator(_alpha_ticks())
        ax.set_xlabel("α (0 = the small-batch solution, 1 = the larger batch's)")
        ax.set_ylabel("cross-entropy loss" + (" (log scale)" if ax.get_yscale() == "log" else "")
                      + " — thick lines")
        acc.set_ylabel("accuracy (%) — thin lines with dots")
        model, seed = (list(key) + [None, None])[:2]
        where = f"{model}, init {seed}: " if model is not None else ""
        ax.set_title(f"{where}loss and accuracy along the line between two batch sizes' solutions", pad=16)
        if not len(part) or not any_finite(part["alpha"], part["loss"]):
            mark_no_finite_values(ax, x=part["alpha"] if len(part) else None)
        if len(part) and not any_finite(part["alpha"], part["accuracy"]):
            acc.set_ylim(0, 100)
        handles = [Line2D([], [], color=colors[b], lw=2.0) for b in large]
        labels = [f"{', '.join(map(str, small))} → {b}" + (" (diverged)" if _line_diverged(part, b) else "")
                  for b in large]
        for split in dict.fromkeys(part["split"]) if len(part) else []:
            handles.append(Line2D([], [], color=".3", ls=SPLIT_STYLES.get(split, ":"), lw=1.4))
            labels.append(split)
        handles += [Line2D([], [], color=".3", lw=2.0), Line2D([], [], color=".3", lw=0.9, marker="o", ms=3.0,
                                                               mfc="white")]
        labels += ["loss (left axis)", "accuracy (right axis)"]
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=min(len(labels), 4),
                  frameon=False, fontsize=8, title="batch sizes (small → large), splits, measures",
                  title_fontsize=8)
    fig.tight_layout()
    return fig


def _line_diverged(part: pd.DataFrame, end: int) -> bool:
    rows = part[part["batch_size_end"] == end]
    return len(rows) > 0 and not any_finite(rows["alpha"], rows["loss"])


#: the panels against batch size: (columns, title, y label, scale)
BATCH_PANELS = ((("top_eigenvalue",), "top Hessian eigenvalue", r"$\lambda_{\max}$", 1.0),
                (("epsilon_sharpness",), "ε-sharpness (Keskar et al.)", "ε-sharpness (%)", 1.0),
                (("train_acc", "test_acc"), "accuracy", "accuracy (%)", 100.0),
                (("dist_from_init",), "distance travelled from the init", r"$\|\theta - \theta_{\mathrm{init}}\|$",
                 1.0))
_ACC_STYLE = {"train_acc": ("train", "o", "-"), "test_acc": ("test", "s", "--")}


def _batch_axis(ax, sizes) -> None:
    ax.set_xscale("log")
    if len(sizes):
        ax.set_xlim(min(sizes) / 1.7, max(sizes) * 1.7)
        ax.xaxis.set_major_locator(FixedLocator(sorted(sizes)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("batch size (log scale)")


def batch_sharpness(solutions: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """Top eigenvalue, ε-sharpness, train and test accuracy and distance from the init of each
    batch size's solution (one colour per batch size; log batch axis). A diverged run is a
    cross at 0."""
    s = solutions.sort_values("batch_size", kind="stable")
    sizes = [int(b) for b in s["batch_size"]]
    colors = batch_colors(sizes)
    fig, axes = new_figure(1, len(BATCH_PANELS), figsize=(3.5 * len(BATCH_PANELS) + 1.6, 3.8))
    crossed = False
    for ax, (columns, title, ylabel, scale) in zip(axes[0], BATCH_PANELS):
        for col in columns:
            y = scale * finite(s[col]) if col in s else np.full(len(s), np.nan)
            name, marker, ls = _ACC_STYLE.get(col, (None, "o", "-"))
            ax.plot(sizes, y, color=".55", lw=1.0, ls=ls, zorder=1)
            for b, v in zip(sizes, y):
                if np.isfinite(v):
                    ax.plot(b, v, marker=marker, color=colors[b], mec="black", mew=0.6, ms=8, ls="none", zorder=3)
                    ax.annotate(significant(v), (b, v), textcoords="offset points", xytext=(7, 4), fontsize=7.5)
                else:
                    ax.plot(b, 0.0, **DIVERGED_MARKER)
                    crossed = True
        _batch_axis(ax, sizes)
        ax.margins(y=0.2)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        if not any_finite(*[s[c] for c in columns if c in s] or [[np.nan]]):
            mark_no_finite_values(ax)
    gone = {int(r["batch_size"]) for _, r in s.iterrows()
            if _diverged(r) or not any_finite([r.get(c, np.nan) for c in ("top_eigenvalue", "test_acc")])}
    legend = [("batch size", [(f"{b} (diverged)" if b in gone else str(b),
                               {"color": c, "marker": "o", "ls": "none", "ms": 7, "mec": "black"})
                              for b, c in colors.items()]),
              ("accuracy", [(name, {"color": ".3", "marker": m, "ls": ls, "lw": 1.0})
                            for name, m, ls in _ACC_STYLE.values()])]
    if crossed:
        legend.append(("", [("diverged (drawn at 0)", DIVERGED_MARKER)]))
    legend_outside(axes[0, -1], legend, fontsize=8)
    model = f"{s['model'].iloc[0]}, init {s['seed'].iloc[0]}: " if len(s) and "model" in s else ""
    fig.suptitle(f"{model}sharpness and generalisation of the solution against the batch size (Keskar et al.)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def _batch_pairs(df: pd.DataFrame) -> list[tuple[int, int, pd.DataFrame]]:
    if not len(df):
        return []
    return [(int(a), int(b), rows) for (a, b), rows in df.groupby(["batch_size_start", "batch_size_end"])]


def _peak(rows: pd.DataFrame):
    """(highest loss, its α) on 0 ≤ α ≤ 1; (NaN, None) when a point there diverged, None without points."""
    inside = rows[(rows["alpha"] >= -_TOL) & (rows["alpha"] <= 1 + _TOL)]
    if not len(inside):
        return None
    loss = inside["loss"].to_numpy(float)
    if not np.isfinite(loss).all():
        return math.nan, None
    i = int(np.argmax(loss))
    return float(loss[i]), float(inside["alpha"].iloc[i])


def _barrier_text(value) -> str:
    if value is None:
        return NA
    v = float(value)
    if math.isnan(v):
        return "diverged"
    if v == math.inf:
        return "diverged between the ends"
    return "none" if v <= 0 else significant(v)


def _per_line(pairs, value) -> str:
    return "; ".join(f"batch {b}: {value(rows)}" for _, b, rows in pairs) or NA


def batch_interpolation_numbers(interpolation: pd.DataFrame, *,
                                optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Keskar Fig 3: the batch sizes, the α range, per larger batch the training loss at both ends,
    the barrier (highest loss strictly between α 0 and 1 minus the higher end's) and the peak,
    the loss at the outermost α, and the test accuracy at both ends."""
    df = interpolation
    split = _first_split(df)
    train = _of_split(df, split)
    test = _of_split(df, "test")
    lines, tests = _batch_pairs(train), {b: rows for _, b, rows in _batch_pairs(test)}
    alphas = finite(df["alpha"]) if len(df) else np.array([])
    lo, hi = (float(np.nanmin(alphas)), float(np.nanmax(alphas))) if np.isfinite(alphas).any() else (None, None)

    def peak(rows):
        p = _peak(rows)
        if p is None:
            return NA
        return "diverged" if p[1] is None else f"{significant(p[0])} at α {p[1]:.2g}"

    def outer(rows):
        return (f"{_value(_at(rows, 'alpha', lo))} at α {lo:g}, {_value(_at(rows, 'alpha', hi))} at α {hi:g}"
                if lo is not None else NA)

    def test_acc(b, at):
        rows = tests.get(b)
        return NA if rows is None else _percent(_at(rows, "alpha", at, "accuracy"))

    first = lines[0][2] if lines else train.iloc[:0]
    models = sorted({str(m) for m in df["model"]}) if "model" in df and len(df) else []
    seeds = sorted({str(s) for s in df["seed"]}) if "seed" in df and len(df) else []
    return {"split": split,
            "model": ", ".join(map(_text, models)) or NA,
            "inits": ", ".join(seeds) or NA,
            "small_batch": ", ".join(str(a) for a in dict.fromkeys(a for a, _, _ in lines)) or NA,
            "large_batches": ", ".join(str(b) for _, b, _ in lines) or NA,
            "alpha_range": NA if lo is None else f"{lo:g} to {hi:g}",
            "loss_scale": "logarithmic" if _log_loss(df["loss"] if len(df) else []) else "linear",
            "start_loss": _value(_at(first, "alpha", 0.0)),
            "end_loss": _per_line(lines, lambda r: _value(_at(r, "alpha", 1.0))),
            "barrier": _per_line(lines, lambda r: _barrier_text(_line_barrier(r))),
            "peak": _per_line(lines, peak),
            "outer_loss": _per_line(lines, outer),
            "start_test_acc": test_acc(lines[0][1], 0.0) if lines else NA,
            "end_test_acc": "; ".join(f"batch {b}: {test_acc(b, 1.0)}" for _, b, _ in lines) or NA}


def _per_batch(s: pd.DataFrame, col: str, fmt) -> str:
    return "; ".join(f"batch {int(r['batch_size'])}: {fmt(r[col])}" for _, r in s.iterrows()) or NA


def _ratio(a, b) -> str:
    a, b = float(a), float(b)
    return "diverged" if not (math.isfinite(a) and math.isfinite(b)) or b == 0 else significant(a / b)


def batch_sharpness_numbers(solutions: pd.DataFrame, *, optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Keskar's sharpness claim: per batch size the top eigenvalue, ε-sharpness, accuracies and
    distance from the init; the largest batch's top eigenvalue and ε-sharpness over the smallest's."""
    s = solutions.sort_values("batch_size", kind="stable")
    two = len(s) >= 2
    small, large = batch_ends(s) if len(s) else (None, None)
    diverged = [str(int(r["batch_size"])) for _, r in s.iterrows()
                if bool(r.get("diverged", False)) or not math.isfinite(float(r["top_eigenvalue"]))]
    return {"model": ", ".join(map(_text, dict.fromkeys(s["model"]))) if len(s) else NA,
            "batch_sizes": ", ".join(str(int(b)) for b in s["batch_size"]) or NA,
            "lr": _per_batch(s, "lr", lambda v: f"{float(v):g}"),
            "epochs": ", ".join(str(int(e)) for e in dict.fromkeys(s["epochs"])) if "epochs" in s and len(s) else NA,
            "small": str(int(small["batch_size"])) if small is not None else NA,
            "large": str(int(large["batch_size"])) if large is not None else NA,
            "top_eigenvalue": _per_batch(s, "top_eigenvalue", _value),
            "epsilon_sharpness": _per_batch(s, "epsilon_sharpness", lambda v: _value(v, unit=" %")),
            "top_ratio": _ratio(large["top_eigenvalue"], small["top_eigenvalue"]) if two else NA,
            "epsilon_ratio": _ratio(large["epsilon_sharpness"], small["epsilon_sharpness"]) if two else NA,
            "train_acc": _per_batch(s, "train_acc", _percent),
            "test_acc": _per_batch(s, "test_acc", _percent),
            "test_gap": (_value(float(small["test_acc"]) - float(large["test_acc"]), 3, 100.0, " points")
                         if two else NA),
            "distance": _per_batch(s, "dist_from_init", _value),
            "diverged": ", ".join(f"batch {b}" for b in diverged) or "none"}


# --------------------------------------------------------------------------- skip connections (Li et al.)


def _skip_setup(surfaces: pd.DataFrame, solutions: pd.DataFrame):
    split = _first_split(surfaces)
    df = _of_split(surfaces, split)
    pairs = skip_pairs(solutions)
    lo, hi = _log_range(df.loc[df["run"].isin(_pair_runs(pairs)), "loss"] if len(df) else [])
    return split, df, pairs, lo, hi


def _ratio_title(row) -> str:
    return f"centre {RATIO} = {describe(row['convexity_ratio'], '{:.3g}')}"


def skip_surfaces(surfaces: pd.DataFrame, solutions: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """Li et al.'s Fig 5: filled contours of the training loss on each solution's random plane,
    one row per depth that has both variants (its narrowest width), with skips left, without
    right; one log colour scale for every panel; the solution (the centre) a star in the
    variant's colour; each title with the centre's |λ_min/λ_max|."""
    split, df, pairs, lo, hi = _skip_setup(surfaces, solutions)
    if not pairs:
        return _no_pairs_figure("Li et al. Fig 5: skip connections")
    levels = np.linspace(lo, hi, LEVELS)
    fig = _constrained((10.4, 3.9 * len(pairs) + 0.5))
    axes = fig.subplots(len(pairs), 2, squeeze=False)
    for row, (depth, pair) in zip(axes, pairs.items()):
        for ax, skip in zip(row, (True, False)):
            r = pair[skip]
            _plane(ax, surface_of(df, r["run"]), levels, lo, hi)
            _centre_mark(ax, skip)
            _frame(ax, SKIP_COLORS[skip])
            ax.set_title(f"{_model_title(r, depth, skip)}\n{_ratio_title(r)}", color=SKIP_COLORS[skip], fontsize=9)
    _loss_colorbar(fig, axes.ravel(), lo, hi, split)
    fig.suptitle(f"Li et al. Fig 5: {split} loss on a random plane around each solution, with (left) and without "
                 "(right) skip connections", fontsize=10)
    return fig


def skip_surfaces_3d(surfaces: pd.DataFrame, solutions: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """The panels of :func:`skip_surfaces` as 3-D surfaces: z the loss (one z range for every
    panel), colour log10 loss on the shared scale; the solution a star in the variant's colour."""
    split, df, pairs, lo, hi = _skip_setup(surfaces, solutions)
    if not pairs:
        return _no_pairs_figure("Li et al. Fig 5 (3-D): skip connections")
    zlo, zhi = finite_range(df.loc[df["run"].isin(_pair_runs(pairs)), "loss"] if len(df) else [])
    if not np.isfinite([zlo, zhi]).all():
        zlo, zhi = 0.0, 1.0
    norm = Normalize(lo, hi)
    fig = _constrained((10.4, 4.3 * len(pairs) + 0.5))
    axes = []
    for i, (depth, pair) in enumerate(pairs.items()):
        for j, skip in enumerate((True, False)):
            ax = fig.add_subplot(len(pairs), 2, 2 * i + j + 1, projection="3d")
            axes.append(ax)
            r = pair[skip]
            part = surface_of(df, r["run"])
            grid = surface_grid(part) if len(part) else pd.DataFrame()
            z = finite(grid.to_numpy()) if len(part) else np.empty((0, 0))
            if np.isfinite(z).any():
                gx, gy = np.meshgrid(grid.columns.to_numpy(float), grid.index.to_numpy(float))
                colors = matplotlib.colormaps[SURFACE_CMAP](norm(finite_log(z)))
                ax.plot_surface(gx, gy, z, facecolors=colors, linewidth=0.2, edgecolor=(0, 0, 0, 0.15),
                                antialiased=True, shade=False)
                _centre_mark(ax, skip, _centre_loss(part))
            else:
                mark_no_finite_values(ax, "no plane in the table for this run" if not len(part) else
                                      "diverged: no finite values",
                                      x=grid.columns if len(part) else [-1, 1], y=grid.index if len(part) else [-1, 1])
            ax.set_zlim(zlo, zhi if zhi > zlo else zlo + 1.0)
            ax.xaxis.set_major_locator(MaxNLocator(5))
            ax.yaxis.set_major_locator(MaxNLocator(5))
            ax.set_xlabel("δ", labelpad=-2)
            ax.set_ylabel("η", labelpad=-2)
            ax.set_zlabel(f"{split} loss", labelpad=2)
            ax.tick_params(labelsize=7, pad=0)
            ax.set_title(f"{_model_title(r, depth, skip)}\n{_ratio_title(r)}", color=SKIP_COLORS[skip], fontsize=9)
    _loss_colorbar(fig, axes, lo, hi, split, what="surface colour, log scale")
    fig.suptitle(f"Li et al. Fig 5 in 3-D: {split} loss around each solution, with (left) and without (right) "
                 "skip connections (one z range)", fontsize=10)
    return fig


def _edges(centres: np.ndarray) -> np.ndarray:
    """Cell edges around sorted grid ``centres`` (a unit cell around a single point)."""
    c = np.sort(np.asarray(centres, float))
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = (c[1:] + c[:-1]) / 2
    return np.concatenate([[2 * c[0] - mid[0]], mid, [2 * c[-1] - mid[-1]]])


def _heat_map(ax, part: pd.DataFrame, norm) -> None:
    """|λ_min/λ_max| over ``part``'s grid, each cell (of a grid of at most 7 × 7) with its value."""
    ax.grid(False)
    ax.set_xlabel(PLANE_X)
    ax.set_ylabel(PLANE_Y)
    if not len(part):
        mark_no_finite_values(ax, "no convexity map in the table for this run", x=[-1, 1], y=[-1, 1])
        return
    grid = surface_grid(part, "convexity_ratio")
    xs, ys = grid.columns.to_numpy(float), grid.index.to_numpy(float)
    z = finite(grid.to_numpy())
    ax.pcolormesh(_edges(xs), _edges(ys), np.ma.masked_invalid(z), cmap=CONVEXITY_CMAP, norm=norm, shading="flat",
                  edgecolors="white", linewidth=0.8)
    if z.size <= 49 and np.isfinite(z).any():
        for (i, j), v in np.ndenumerate(z):
            dark = np.isfinite(v) and norm(v) > 0.6
            ax.text(xs[j], ys[i], significant(v, 2) if np.isfinite(v) else "diverged", ha="center", va="center",
                    fontsize=7.5 if z.size > 9 else 9, color="white" if dark else "black")
    for axis, values in ((ax.xaxis, xs), (ax.yaxis, ys)):
        axis.set_major_locator(FixedLocator(values) if len(values) <= 7 else MaxNLocator(5))
    if xs.size == 1 and ys.size == 1:
        ax.set_xlabel(f"{PLANE_X}: the centre only")
    if not np.isfinite(z).any():
        mark_no_finite_values(ax)


def convexity_maps(convexity: pd.DataFrame, solutions: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """Li et al.'s convexity maps: |λ_min/λ_max| over the coarse grid of each solution's random
    plane (rows: depths with both variants; with skips left, without right; one colour scale),
    and right the ratio at the centre (the solution's Hessian report) and the map's mean
    against depth for both variants."""
    pairs = skip_pairs(solutions)
    if not pairs:
        return _no_pairs_figure("Li et al.: convexity maps")
    n = len(pairs)
    fig = _constrained((13.6, max(3.5 * n, 4.2) + 0.5), wspace=0.05)
    gs = fig.add_gridspec(n, 3, width_ratios=(1.0, 1.0, 1.2))
    maps = convexity[convexity["run"].isin(_pair_runs(pairs))] if len(convexity) else convexity
    lo, hi = finite_range(maps["convexity_ratio"] if len(maps) else [])
    norm = Normalize(0.0, hi if np.isfinite(hi) and hi > 0 else 1.0)
    heat = []
    for i, (depth, pair) in enumerate(pairs.items()):
        for j, skip in enumerate((True, False)):
            ax = fig.add_subplot(gs[i, j])
            heat.append(ax)
            r = pair[skip]
            _heat_map(ax, convexity[convexity["run"] == r["run"]] if len(convexity) else convexity, norm)
            _frame(ax, SKIP_COLORS[skip])
            ax.set_title(f"{_model_title(r, depth, skip)}\nmap mean {RATIO} = "
                         f"{describe(mean_map_ratio(convexity, r['run']), '{:.3g}')}", color=SKIP_COLORS[skip],
                         fontsize=9)
    fig.colorbar(ScalarMappable(norm, cmap=CONVEXITY_CMAP), ax=heat, shrink=0.9,
                 label=f"{RATIO} (0: locally convex)")
    side = fig.add_subplot(gs[:, 2])
    depths = list(pairs)
    values = []
    for skip in (True, False):
        centre = finite([pairs[d][skip]["convexity_ratio"] for d in depths])
        mean = finite([mean_map_ratio(convexity, pairs[d][skip]["run"]) for d in depths])
        values += [*centre, *mean]
        side.plot(depths, centre, "-o", color=SKIP_COLORS[skip], ms=7, mec="black", mew=0.6,
                  label=f"centre, {SKIP_SHORT[skip]}")
        side.plot(depths, mean, "--s", color=SKIP_COLORS[skip], ms=6, mec="black", mew=0.6,
                  label=f"map mean, {SKIP_SHORT[skip]}")
    lo, hi = finite_range(values, positive=True)
    if np.isfinite([lo, hi]).all() and hi > 10 * lo and not (np.asarray(values)[np.isfinite(values)] <= 0).any():
        side.set_yscale("log")
        _plain_log_ticks(side)
    side.xaxis.set_major_locator(FixedLocator(depths))
    side.set_xlim(min(depths) - 2, max(depths) + 2)
    side.set_xlabel("depth (layers)")
    side.set_ylabel(RATIO + (" (log scale)" if side.get_yscale() == "log" else ""))
    side.set_title(f"{RATIO} against depth\n(centre: the solution's Hessian; mean: over the map)", fontsize=9)
    side.legend(fontsize=8, loc="best")
    if not np.isfinite(values).any():
        mark_no_finite_values(side)
    fig.suptitle(f"Li et al.: convexity maps {RATIO} on each solution's random plane, with (left) and without "
                 "(middle) skip connections", fontsize=10)
    return fig


def _group_label(key) -> str:
    arch, depth, skip, bn = key
    name = f"ResNet-{int(depth)}" + ("" if skip else "-noshort") if arch == "resnet" else f"{str(arch).upper()}-{depth}"
    return name + ("" if bn else " without BatchNorm")


#: the bars of the width panel: (column, y label, colour, offset from the width's position)
WIDTH_BARS = (("top_eigenvalue", "top Hessian eigenvalue (left bars)", PAIR_PALETTE[2], -0.19),
              ("epsilon_sharpness", "ε-sharpness (%) (right bars)", PAIR_PALETTE[3], 0.19))


def _width_bars(side, rows: pd.DataFrame, key) -> None:
    """Top eigenvalue (left axis) and ε-sharpness (right axis) per width as paired bars, each
    with its value; a diverged value is a cross at 0."""
    at = np.arange(len(rows))
    twin = side.twinx()
    twin.grid(False)
    for axis, (col, label, color, offset) in zip((side, twin), WIDTH_BARS):
        values = finite(rows[col])
        axis.bar(at + offset, np.nan_to_num(values), width=0.36, color=color, edgecolor="black", linewidth=0.6)
        for x, v in zip(at + offset, values):
            if np.isfinite(v):
                axis.annotate(significant(v), (x, v), textcoords="offset points", xytext=(0, 2), ha="center",
                              va="bottom", fontsize=7.5)
            else:
                axis.plot(x, 0.0, clip_on=False, zorder=5, **DIVERGED_MARKER)
        axis.set_ylabel(label, color=color)
        axis.margins(y=0.18)
        finite_values = values[np.isfinite(values)]
        axis.set_ylim(0, 1.2 * finite_values.max() if finite_values.size and finite_values.max() > 0 else 1.0)
        if not finite_values.size:
            mark_no_finite_values(axis)
    side.set_xticks(at)
    side.set_xticklabels([f"×{float(w):g}" + (" (diverged)" if bool(d) else "")
                          for w, d in zip(rows["width"], rows.get("diverged", [False] * len(rows)))])
    side.set_xlim(-0.6, len(rows) - 0.4)
    side.set_xlabel("width multiplier")
    side.set_title(f"{_group_label(key)}: sharpness against width", fontsize=9)


def width_surfaces(surfaces: pd.DataFrame, solutions: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """Li et al.'s Fig 6: for each architecture run at several widths, filled contours of the
    training loss per width (narrow to wide; one log colour scale for every panel) and the top
    eigenvalue and ε-sharpness against width."""
    groups = width_groups(solutions)
    if not groups:
        return _message_figure("no architecture was run at two or more widths", "Li et al. Fig 6: width")
    split = _first_split(surfaces)
    df = _of_split(surfaces, split)
    runs = [r for rows in groups.values() for r in rows["run"]]
    lo, hi = _log_range(df.loc[df["run"].isin(runs), "loss"] if len(df) else [])
    levels = np.linspace(lo, hi, LEVELS)
    cols = max(len(rows) for rows in groups.values()) + 1
    fig = _constrained((3.7 * cols + 1.6, 3.6 * len(groups) + 0.5), wspace=0.05)
    axes = fig.subplots(len(groups), cols, squeeze=False)
    planes = []
    for row_axes, (key, rows) in zip(axes, groups.items()):
        for ax, (_, r) in zip(row_axes, rows.iterrows()):
            _plane(ax, surface_of(df, r["run"]), levels, lo, hi)
            ax.plot([0.0], [0.0], marker="*", color="white", mec="black", ms=12, ls="none", zorder=5)
            ax.set_title(f"{r['model']}: width ×{float(r['width']):g}" + (" (diverged)" if _diverged(r) else "")
                         + f"\ntop eigenvalue {describe(r['top_eigenvalue'], '{:.3g}')}", fontsize=9)
            planes.append(ax)
        for ax in row_axes[len(rows):-1]:
            ax.set_visible(False)
        _width_bars(row_axes[-1], rows, key)
    _loss_colorbar(fig, planes, lo, hi, split)
    fig.suptitle(f"Li et al. Fig 6: {split} loss on a random plane around each solution, by width "
                 "(one colour scale; the star: the solution)", fontsize=10)
    return fig


# --------------------------------------------------------------------------- caption numbers (architecture)


def _per_depth(pairs: Mapping, value, fmt=_value) -> str:
    """``depth 8: x with skips, y without; depth 14: ...``."""
    return "; ".join(f"depth {d}: {fmt(value(p[True]))} with skips, {fmt(value(p[False]))} without"
                     for d, p in pairs.items()) or NA


def _grid_text(df: pd.DataFrame) -> str:
    if not len(df):
        return NA
    nx, ny = df["x"].nunique(), df["y"].nunique()
    if nx == 1 and ny == 1:
        return "the centre only (a 1 × 1 grid)"
    return f"{nx} × {ny} points on {_extent(df)}"


def _unpaired(solutions: pd.DataFrame, pairs: Mapping) -> str:
    shown = set(_pair_runs(pairs))
    res = solutions[solutions["arch"] == "resnet"] if "arch" in solutions else solutions.iloc[:0]
    left = [str(m) for m, run in zip(res["model"], res["run"]) if run not in shown]
    return ", ".join(map(_text, left)) or "none"


def skip_surfaces_numbers(surfaces: pd.DataFrame, solutions: pd.DataFrame, *,
                          optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Li Fig 5: the pairs shown, the plane's grid, per depth and variant the centre's
    |λ_min/λ_max|, the share of the plane's interior points whose 2-D loss Hessian is not
    positive definite, the loss at the centre and the highest; the shared colour scale."""
    split, df, pairs, lo, hi = _skip_setup(surfaces, solutions)
    shown = df[df["run"].isin(_pair_runs(pairs))] if len(df) else df

    def highest(row):
        loss = finite(surface_of(df, row["run"])["loss"])
        return float(np.nanmax(loss)) if np.isfinite(loss).any() else (math.nan if loss.size else None)

    logs = finite_log(shown["loss"]) if len(shown) else np.array([])
    return {"split": split,
            "pairs": "; ".join(f"depth {d}: {_text(p[True]['model'])} and {_text(p[False]['model'])} "
                               f"(width ×{float(p[True]['width']):g})" for d, p in pairs.items()) or NA,
            "unpaired": _unpaired(solutions, pairs),
            "grid": _grid_text(shown),
            "centre_ratio": _per_depth(pairs, lambda r: r["convexity_ratio"]),
            "nonconvex": _per_depth(pairs, lambda r: surface_nonconvexity(surface_of(df, r["run"]), split), _percent),
            "centre_loss": _per_depth(pairs, lambda r: _centre_loss(surface_of(df, r["run"]))),
            "max_loss": _per_depth(pairs, highest),
            "loss_range": (f"{significant(10 ** lo)} to {significant(10 ** hi)}" if np.isfinite(logs).any()
                           else "diverged")}


def skip_surfaces_3d_numbers(surfaces: pd.DataFrame, solutions: pd.DataFrame, *,
                             optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """The numbers of :func:`skip_surfaces_numbers` (the same panels)."""
    return skip_surfaces_numbers(surfaces, solutions, optimizers=optimizers)


def convexity_maps_numbers(convexity: pd.DataFrame, solutions: pd.DataFrame, *,
                           optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Li's convexity maps: the grid and split, per depth and variant |λ_min/λ_max| at the centre
    (the solution's Hessian report), the map's mean and highest value, and the points whose
    eigenvalues did not come out finite."""
    pairs = skip_pairs(solutions)
    maps = convexity[convexity["run"].isin(_pair_runs(pairs))] if len(convexity) else convexity

    def highest(row):
        v = finite(convexity.loc[convexity["run"] == row["run"], "convexity_ratio"])
        return float(np.nanmax(v)) if np.isfinite(v).any() else (math.nan if v.size else None)

    bad = int((~np.isfinite(maps["convexity_ratio"].to_numpy(float))).sum()) if len(maps) else 0
    splits = list(dict.fromkeys(maps["split"])) if "split" in maps and len(maps) else []
    return {"split": ", ".join(map(str, splits)) or NA,
            "grid": _grid_text(maps),
            "pairs": "; ".join(f"depth {d}: {_text(p[True]['model'])} and {_text(p[False]['model'])}"
                               for d, p in pairs.items()) or NA,
            "centre_ratio": _per_depth(pairs, lambda r: r["convexity_ratio"]),
            "map_mean": _per_depth(pairs, lambda r: mean_map_ratio(convexity, r["run"])),
            "map_max": _per_depth(pairs, highest),
            "diverged_points": "none" if not bad else f"{bad} of {len(maps)}"}


def width_surfaces_numbers(surfaces: pd.DataFrame, solutions: pd.DataFrame, *,
                           optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Li Fig 6: per architecture run at several widths, per width its top eigenvalue,
    ε-sharpness, test accuracy and the plane's share of non-convex points; the widest's top
    eigenvalue over the narrowest's."""
    groups = width_groups(solutions)
    split = _first_split(surfaces)
    df = _of_split(surfaces, split)

    def per_group(value):
        return "; ".join(f"{_group_label(k)}: " + ", ".join(f"×{float(r['width']):g} {value(r)}"
                                                           for _, r in rows.iterrows())
                         for k, rows in groups.items()) or NA

    return {"split": split,
            "groups": "; ".join(f"{_group_label(k)} ({', '.join(map(_text, rows['model']))})"
                                for k, rows in groups.items()) or NA,
            "top_eigenvalue": per_group(lambda r: _value(r["top_eigenvalue"])),
            "epsilon_sharpness": per_group(lambda r: _value(r["epsilon_sharpness"], unit=" %")),
            "test_acc": per_group(lambda r: _percent(r["test_acc"])),
            "nonconvex": per_group(lambda r: _percent(surface_nonconvexity(surface_of(df, r["run"]), split))),
            "top_ratio": "; ".join(f"{_group_label(k)}: "
                                   f"{_ratio(rows['top_eigenvalue'].iloc[-1], rows['top_eigenvalue'].iloc[0])}"
                                   for k, rows in groups.items()) or NA}


CAPTION_NUMBERS = {name: globals()[f"{name}_numbers"] for name in FIGURE_FUNCTIONS}
