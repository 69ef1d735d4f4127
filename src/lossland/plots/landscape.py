"""Loss-landscape figures (im2016 Fig 2, 3, 5, 6, 7 right, 10, Table 1; Li et al. random and
PCA planes), from the ``results/tables/landscape_<kind>.parquet`` tables.

Lines: colour = the run's optimizer (:func:`lossland.plots.style.optimizer_colors`), line
style = split (solid train, dashed test, dash-dot val), marker = init seed when there are
several; final -> final pairs and the lines between switch variants use the pair palette
(:func:`lossland.plots.style.pair_colors`, ColorBrewer Dark2). Surfaces: log10 loss
(viridis) with a labelled colour bar; marks on them are optimizer-coloured (solutions,
corners) or white with a black outline (trajectories).

Every figure function has a caption-numbers function, ``<figure>_numbers`` in
``CAPTION_NUMBERS``: called like it, it returns the numbers the figure shows as formatted
text (losses at the ends of the lines, barriers, Fig 6's basin widths, Table 1's functional
distance and disagreement, the extremes of the planes) for its caption template
(``workflow/report/landscape/<figure>.rst``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize

from ._common import (
    OUTLINE,
    any_finite,
    color_entries,
    contour,
    contour_panel,
    describe,
    finite,
    finite_log,
    legend_outside,
    mark_no_finite_values,
    marker_entries,
    no_finite_groups,
    panel_grid,
    surface_grid,
)
from .style import (
    SPLIT_STYLES,
    SURFACE_CMAP,
    TEXT_ONLY,
    blank_figure,
    init_markers,
    new_figure,
    optimizer_colors,
    optimizer_order,
    pair_colors,
)

#: the figure functions (``lossland.plots.figure_function("landscape.<name>")``)
FIGURE_FUNCTIONS = ("init_final_two_inits", "beyond_final", "interpolation_overview", "distance_paths",
                    "bilinear_planes", "optimizer_grid", "switching_interpolation", "random_planes", "pca_planes")
__all__ = ["CAPTION_NUMBERS", "FIGURE_FUNCTIONS", "SPLIT_STYLES", *FIGURE_FUNCTIONS]

ALPHA_INIT_FINAL = "α (0 = init, 1 = final)"
DISTANCE = r"distance from the solution $\|\theta - \theta_{\mathrm{final}}\|$"
LINE_KEYS = ("model", "seed", "run", "run_a", "run_b", "split", "start", "end")


def _split_entries(df: pd.DataFrame):
    return [(s, {"color": ".3", "ls": SPLIT_STYLES.get(s, ":"), "lw": 1.3}) for s in dict.fromkeys(df["split"])]


def _line_panels(axes, df: pd.DataFrame, x: str, *, color: str, colors, title: str, xlabel: str,
                 markers=None, log_loss: bool = False, vlines=(0.0, 1.0)) -> None:
    """Loss and accuracy against ``x`` on ``axes`` (two), one line per (``color`` value,
    init, run, split, start, end): colour ``colors[value]``, line style by split, marker by
    init (``markers``); non-finite points left out, a panel without any says so."""
    keys = [color] + [k for k in LINE_KEYS if k in df and k != color]
    for key, part in df.groupby(keys, sort=False):
        row = dict(zip(keys, key))
        part = part.sort_values(x)
        for ax, col in zip(axes, ("loss", "accuracy")):
            ax.plot(finite(part[x]), finite(part[col]), ls=SPLIT_STYLES.get(row.get("split"), ":"),
                    color=colors[row[color]], lw=1.3, marker=(markers or {}).get(row.get("seed")), ms=3.5,
                    markevery=max(len(part) // 6, 1))
    model = f"{df['model'].iloc[0]}: " if "model" in df and df["model"].nunique() == 1 else ""
    for ax, col in zip(axes, ("loss", "accuracy")):
        for v in vlines:
            ax.axvline(v, color="grey", lw=0.6, ls=":")
        if x == "alpha":
            ax.xaxis.set_major_locator(_alpha_ticks())
        ax.set_xlabel(xlabel)
        ax.set_title(f"{model}{title}: {col}")
        if col == "loss" and log_loss:
            ax.set_yscale("log")
            _plain_log_ticks(ax)
        ax.set_ylabel("loss (log scale)" if col == "loss" and log_loss else col)
        if len(df) and not any_finite(df[x], df[col]):
            mark_no_finite_values(ax, x=df[x] if x in df else None)


def _alpha_ticks():
    """α ticks: at most 7, at 1, 2, 2.5 or 5 x 10^k, so 0, 0.5 and 1 stay ticked and labels
    such as -0.50 and -0.25 no longer run into each other."""
    return matplotlib.ticker.MaxNLocator(6, steps=[1, 2, 2.5, 5, 10])


def _plain_log_ticks(ax) -> None:
    """A log y axis spanning at most three decades ticked at 1, 2, 5 x 10^k as plain numbers
    (the default labels only the powers of ten, which may leave the low losses unlabelled)."""
    lo, hi = ax.dataLim.intervaly
    if not (np.isfinite([lo, hi]).all() and 0 < lo < hi and np.log10(hi / lo) <= 3):
        return
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _models(df: pd.DataFrame) -> list:
    return list(dict.fromkeys(df["model"])) if "model" in df and len(df) else [None]


def _of_model(df: pd.DataFrame, model) -> pd.DataFrame:
    return df if model is None else df[df["model"] == model]


def _seed_markers(*tables: pd.DataFrame) -> dict:
    seeds = {s for t in tables if "seed" in t for s in t["seed"]}
    return init_markers(seeds) if len(seeds) > 1 else {}


def _legend(ax, title: str, colors, df: pd.DataFrame, markers, extra=(), flagged=()):
    """The colours (``flagged`` ones "(diverged)"), the splits' line styles and the inits' markers."""
    sections = [(title, color_entries(colors, flagged)), ("split", _split_entries(df)),
                ("init", marker_entries(markers))]
    legend_outside(ax, [*sections, *extra], fontsize=7)


def _optimizer_lines(df: pd.DataFrame, x: str, *, title: str, xlabel: str, optimizers, log_loss: bool = False,
                     vlines=(0.0, 1.0), extra=()):
    """One row of (loss, accuracy) panels per model, one colour per optimizer."""
    models = _models(df)
    colors = optimizer_colors(optimizer_order(df["optimizer"], optimizers), optimizers)
    markers = _seed_markers(df)
    fig, axes = new_figure(len(models), 2, figsize=(10.0, 3.0 * len(models)))
    for row, model in zip(axes, models):
        _line_panels(row, _of_model(df, model), x, color="optimizer", colors=colors, markers=markers, title=title,
                     xlabel=xlabel, log_loss=log_loss, vlines=vlines)
    _legend(axes[0][-1], "optimizer", colors, df, markers, extra, no_finite_groups(df, "optimizer", (x, "loss")))
    return fig, axes, models, colors


def init_final_two_inits(lines: pd.DataFrame, optimizer: str = "sgd", *, optimizers: Sequence[str] | None = None):
    """im2016 Fig 2: loss and accuracy along init -> final (α ∈ [0, 1]) of one optimizer's
    runs from each initialisation (every optimizer when ``optimizer`` has no runs)."""
    df = lines[(lines["alpha"] >= 0) & (lines["alpha"] <= 1 + 1e-9)]
    if optimizer in set(df["optimizer"]):
        df = df[df["optimizer"] == optimizer]
    fig, *_ = _optimizer_lines(df, "alpha", title="init → final", xlabel=ALPHA_INIT_FINAL, optimizers=optimizers)
    fig.tight_layout()
    return fig


def beyond_final(lines: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """im2016 Fig 10: init -> final continued past the final weights (α up to 2), per optimizer."""
    fig, *_ = _optimizer_lines(lines, "alpha", title="init → final → beyond", xlabel=ALPHA_INIT_FINAL,
                               optimizers=optimizers, log_loss=True)
    fig.tight_layout()
    return fig


def interpolation_overview(init_final: pd.DataFrame, final_final: pd.DataFrame, *,
                           optimizers: Sequence[str] | None = None):
    """im2016 Fig 5: init -> final per optimizer (top, optimizer colours) and final -> final
    between every two optimizers' solutions from the same init (bottom, pair colours); two
    rows per model."""
    a = init_final[(init_final["alpha"] >= 0) & (init_final["alpha"] <= 1 + 1e-9)]
    b = final_final.assign(pair=[f"{x} → {y}" for x, y in zip(final_final["optimizer_a"], final_final["optimizer_b"])])
    models = list(dict.fromkeys([*_models(a), *_models(b)]))
    colors = optimizer_colors(optimizer_order(a["optimizer"], optimizers), optimizers)
    pairs = pair_colors(b["pair"])
    markers = _seed_markers(a, b)
    fig, axes = new_figure(2 * len(models), 2, figsize=(10.0, 3.0 * 2 * len(models)))
    for i, model in enumerate(models):
        _line_panels(axes[2 * i], _of_model(a, model), "alpha", color="optimizer", colors=colors, markers=markers,
                     title="init → final", xlabel=ALPHA_INIT_FINAL)
        _line_panels(axes[2 * i + 1], _of_model(b, model), "alpha", color="pair", colors=pairs, markers=markers,
                     title="final → final", xlabel="α (0 = first, 1 = second solution)")
        _legend(axes[2 * i][-1], "optimizer", colors, a, markers, flagged=no_finite_groups(a, "optimizer",
                                                                                             ("alpha", "loss")))
        _legend(axes[2 * i + 1][-1], "pair (first → second)", pairs, b, markers,
                flagged=no_finite_groups(b, "pair", ("alpha", "loss")))
    fig.tight_layout()
    return fig


def distance_paths(lines: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """im2016 Fig 6: loss and accuracy against the absolute distance from each optimizer's
    solution towards (and past) the initial weights; a star marks the init on each line."""
    init_mark = {"marker": "*", "ms": 9, "mec": "black", "mew": 0.6, "ls": "none"}
    fig, axes, models, colors = _optimizer_lines(
        lines, "distance", title="final → init → beyond", xlabel=DISTANCE,
        optimizers=optimizers, vlines=(0.0,), extra=[("", [("the init (α = 1)", {**init_mark, "color": ".6"})])])
    for row, model in zip(axes, models):
        keys = [k for k in ("optimizer", "seed", "run", "split") if k in lines]
        for key, part in _of_model(lines, model).groupby(keys, sort=False):
            if not any_finite(part["alpha"], part["init_distance"]):
                continue  # a diverged run: no init to mark (its legend entry says so)
            at = part.iloc[(part["alpha"] - 1).abs().argmin()]
            for ax, col in zip(row, ("loss", "accuracy")):
                ax.plot(finite(at["init_distance"]), finite(at[col]), color=colors[key[0]], **init_mark)
    fig.tight_layout()
    return fig


def _corner_mark(ax, x, y, color, label=None, fontsize: float = 8, **text):
    ax.plot(x, y, "o", color=color, mec="black", ms=7)
    if label is not None:
        ax.annotate(label, (x, y), textcoords="offset points", color="white", fontsize=fontsize, weight="bold",
                    path_effects=OUTLINE, **text)


def bilinear_planes(surfaces: pd.DataFrame, split: str = "train", *, optimizers: Sequence[str] | None = None):
    """im2016 Fig 3: log10 loss on the bilinear plane through four optimizers' solutions
    (corners marked in their colours), one panel per model and init."""
    df = surfaces[surfaces["split"] == split]
    names = list(dict.fromkeys(df["name"]))
    corners_all = [c for n in names for c in df.loc[df["name"] == n, "corners"].iloc[0].split(",")]
    colors = optimizer_colors(optimizer_order(corners_all, optimizers), optimizers)
    fig, axes = new_figure(1, len(names), figsize=(4.4 * len(names), 3.7))
    for ax, name in zip(axes[0], names):
        part = df[df["name"] == name]
        contour_panel(fig, ax, part, f"log10 {split} loss")
        corners = part["corners"].iloc[0].split(",")
        for (cx, cy), label in zip(((0, 0), (1, 0), (0, 1), (1, 1)), corners):
            _corner_mark(ax, cx, cy, colors[label], label, xytext=(-5 if cx else 5, 5), ha="right" if cx else "left")
        ax.set_title(f"{part['model'].iloc[0]}, init {part['seed'].iloc[0]}: bilinear plane ({split})")
        ax.set_xlabel(f"x (0 = {corners[0]}, 1 = {corners[1]})")
        ax.set_ylabel(f"y (0 = {corners[0]}, 1 = {corners[2]})")
    fig.tight_layout()
    return fig


def _pair(df: pd.DataFrame, a: str, b: str) -> pd.DataFrame:
    first, second = df["optimizer_a"], df["optimizer_b"]
    return df[((first == a) & (second == b)) | ((first == b) & (second == a))]


def optimizer_grid(barycentric: pd.DataFrame, final_final: pd.DataFrame, split: str = "train", *,
                   optimizers: Sequence[str] | None = None):
    """im2016 Table 1 as a figure: an optimizer × optimizer grid for one model and init.
    Lower triangle: log10 loss on the barycentric plane through the init (origin) and the two
    solutions (row optimizer at (1, 0), column optimizer at (0, 1)); upper triangle:
    functional distance and label disagreement along final(row) -> final(column);
    diagonal: the optimizers, in their colours."""
    bary = barycentric[barycentric["split"] == split]
    ff = final_final[final_final["split"] == split]
    key = (ff["model"].iloc[0], ff["seed"].iloc[0]) if len(ff) else (bary["model"].iloc[0], bary["seed"].iloc[0])
    bary = bary[(bary["model"] == key[0]) & (bary["seed"] == key[1])]
    ff = ff[(ff["model"] == key[0]) & (ff["seed"] == key[1])]
    opts = optimizer_order([*bary["optimizer_a"], *bary["optimizer_b"], *ff["optimizer_a"], *ff["optimizer_b"]],
                           optimizers)
    colors = optimizer_colors(opts, optimizers)
    n = len(opts)
    logs = finite_log(bary["loss"])
    vmin, vmax = (float(np.nanmin(logs)), float(np.nanmax(logs))) if np.isfinite(logs).any() else (0.0, 1.0)
    levels = np.linspace(vmin, vmax if vmax > vmin else vmin + 1.0, 13)
    fig, axes = new_figure(n, n, figsize=(2.6 * n + 1.2, 2.3 * n + 0.4))
    for i in range(n):
        for j in range(n):
            ax = axes[i][j]
            if i == j:
                ax.set_label(TEXT_ONLY)
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                ax.text(0.5, 0.5, opts[i], ha="center", va="center", fontsize=11, weight="bold",
                        color=colors[opts[i]], transform=ax.transAxes)
                continue
            a, b = opts[min(i, j)], opts[max(i, j)]
            ax.tick_params(labelsize=7)
            if i > j:  # lower triangle: barycentric plane of (row, column)
                part = _pair(bary, opts[i], opts[j])
                if not len(part):
                    ax.set_visible(False)
                    continue
                if part["optimizer_a"].iloc[0] != opts[i]:
                    part = part.rename(columns={"x": "y", "y": "x"})
                contour(ax, part, levels=levels)
                for (px, py), label in (((0, 0), "init"), ((1, 0), opts[i]), ((0, 1), opts[j])):
                    _corner_mark(ax, px, py, "white" if label == "init" else colors[label], label, fontsize=7,
                                 xytext=(-5 if px else 5, 5), ha="right" if px else "left")
                ax.set_title(f"plane: init, {opts[i]}, {opts[j]}", fontsize=8)
                ax.set_xlabel(f"x: init → {opts[i]}", fontsize=8)
                ax.set_ylabel(f"y: init → {opts[j]}", fontsize=8)
            else:  # upper triangle: functional distance and disagreement along final(a) -> final(b)
                part = _pair(ff, a, b).sort_values("alpha")
                if not len(part):
                    ax.set_visible(False)
                    continue
                first, second = part["optimizer_a"].iloc[0], part["optimizer_b"].iloc[0]
                ax.plot(part["alpha"], finite(part["functional_distance"]), color="black", lw=1.2)
                ax2 = ax.twinx()
                ax2.grid(False)
                ax2.plot(part["alpha"], 100 * finite(part["disagreement"]), color="grey", lw=1.0, ls="--")
                ax2.tick_params(labelsize=7, colors="dimgrey")
                ax2.set_ylabel("disagreement (%)", fontsize=8, color="dimgrey")
                end = part.iloc[(part["alpha"] - 1).abs().argmin()]
                ax.set_title(f"{first} → {second}: FD {describe(end['functional_distance'], '{:.2f}')}, "
                             f"disagree {describe(100 * end['disagreement'], '{:.0f}%')}", fontsize=8)
                ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(3))
                ax.axvline(0, color="grey", lw=0.5, ls=":")
                ax.axvline(1, color="grey", lw=0.5, ls=":")
                ax.set_xlabel(f"α (0 = {first}, 1 = {second})", fontsize=8)
                ax.set_ylabel("functional distance", fontsize=8)
                for axis, col in ((ax, "functional_distance"), (ax2, "disagreement")):
                    if not any_finite(part["alpha"], part[col]):
                        mark_no_finite_values(axis, x=part["alpha"])
    fig.suptitle(f"{key[0]}, init {key[1]} ({split}): lower = barycentric planes (log10 loss), upper = "
                 "functional distance (black) / disagreement (grey, dashed) along final → final", fontsize=8)
    fig.tight_layout(rect=(0.0, 0.0, 0.92, 0.97))
    cax = fig.add_axes((0.935, 0.15, 0.015, 0.7), label="<colorbar>")
    fig.colorbar(ScalarMappable(Normalize(levels[0], levels[-1]), cmap=SURFACE_CMAP), cax=cax,
                 label=f"log10 {split} loss (lower triangle)")
    return fig


def switching_interpolation(lines: pd.DataFrame, split: str = "train", *, optimizers: Sequence[str] | None = None):
    """im2016 Fig 7, right column: loss along the lines between the first optimizer's own
    solution and each switch variant, and between the variants; one row per switch pair
    (pair colours: one per line's two endpoints)."""
    df = lines[lines["split"] == split]
    df = df.assign(label=[f"{a} ↔ {b}" for a, b in zip(df["start_label"], df["end_label"])])
    groups = list(dict.fromkeys(zip(df["model"], df["first"], df["then"], df["seed"])))
    fig, axes = new_figure(len(groups), 2, figsize=(10.0, 2.9 * len(groups)))
    for row, (model, first, then, seed) in zip(axes, groups):
        part = df[(df["model"] == model) & (df["first"] == first) & (df["then"] == then) & (df["seed"] == seed)]
        colors = pair_colors(part["label"])
        for ax, col in zip(row, ("loss", "accuracy")):
            for label, line in part.groupby("label", sort=False):
                line = line.sort_values("alpha")
                ax.plot(line["alpha"], finite(line[col]), color=colors[label], lw=1.2)
            ax.xaxis.set_major_locator(_alpha_ticks())
            ax.set_title(f"{model}, {first} → {then}, init {seed}: {split} {col}")
            ax.set_xlabel("α (0 = first, 1 = second end of the line)")
            ax.set_ylabel(f"{split} {col}")
            if not any_finite(part["alpha"], part[col]):
                mark_no_finite_values(ax, x=part["alpha"])
        legend_outside(row[-1], [("line between", color_entries(colors))], fontsize=7)
    fig.tight_layout()
    return fig


def _run_title(part: pd.DataFrame) -> str:
    return f"{part['model'].iloc[0]}, {part['optimizer'].iloc[0]}, init {part['seed'].iloc[0]}"


def random_planes(surfaces: pd.DataFrame, split: str = "train", *, optimizers: Sequence[str] | None = None):
    """Li et al.: log10 loss on a filter-normalised random plane around each solution (a star
    in the optimizer's colour), as a contour plot and a 3-D surface (one row per run)."""
    df = surfaces[surfaces["split"] == split]
    runs = list(dict.fromkeys(df["run"]))
    colors = optimizer_colors(optimizer_order(df["optimizer"], optimizers), optimizers)
    fig = blank_figure((8.6, 3.5 * len(runs)))
    for i, run in enumerate(runs):
        part = df[df["run"] == run]
        ax = fig.add_subplot(len(runs), 2, 2 * i + 1)
        contour_panel(fig, ax, part, f"log10 {split} loss")
        ax.plot(0, 0, "*", color=colors[part["optimizer"].iloc[0]], mec="black", ms=11)
        ax.set_title(f"{_run_title(part)}: random plane")
        ax.set_xlabel("δ (random direction 1)")
        ax.set_ylabel("η (random direction 2)")
        ax3 = fig.add_subplot(len(runs), 2, 2 * i + 2, projection="3d")
        grid = surface_grid(part)
        gx, gy = np.meshgrid(grid.columns.to_numpy(), grid.index.to_numpy())
        gz = finite_log(grid.to_numpy())
        if np.isfinite(gz).any():
            ax3.plot_surface(gx, gy, gz, cmap=SURFACE_CMAP, linewidth=0, antialiased=True)
        else:
            mark_no_finite_values(ax3, x=grid.columns, y=grid.index)
        ax3.set_xlabel("δ")
        ax3.set_ylabel("η")
        ax3.set_zlabel(f"log10 {split} loss")
        ax3.set_title(f"{_run_title(part)}: 3-D")
    fig.tight_layout()
    return fig


def pca_planes(surfaces: pd.DataFrame, trajectories: pd.DataFrame, split: str = "train", *,
               optimizers: Sequence[str] | None = None):
    """Li et al.: log10 loss on the plane of the top-2 PCA directions of each run's trajectory
    around its solution (a star in the optimizer's colour), with the saved checkpoints
    projected on it (white, labelled by epoch)."""
    df = surfaces[surfaces["split"] == split]
    runs = list(dict.fromkeys(df["run"]))
    colors = optimizer_colors(optimizer_order(df["optimizer"], optimizers), optimizers)
    fig, axes = panel_grid(len(runs), width=4.4, height=3.7)
    for ax, run in zip(axes, runs):
        part = df[df["run"] == run]
        contour_panel(fig, ax, part, f"log10 {split} loss")
        traj = trajectories[trajectories["run"] == run].sort_values("epoch")
        ax.plot(finite(traj["x"]), finite(traj["y"]), "-o", color="white", mec="black", ms=3.5, lw=1.2,
                path_effects=OUTLINE)
        ax.plot(0, 0, "*", color=colors[part["optimizer"].iloc[0]], mec="black", ms=11)
        for _, p in traj.iterrows():
            if any_finite([p["x"]], [p["y"]]):
                ax.annotate(str(int(p["epoch"])), (p["x"], p["y"]), textcoords="offset points", xytext=(3, 3),
                            fontsize=7.5, color="white", path_effects=OUTLINE)
        r = traj[["explained_variance_ratio_x", "explained_variance_ratio_y"]].iloc[0] if len(traj) else None
        ax.set_xlabel(f"PC1 ({describe(100 * r.iloc[0], '{:.0f}% of the variance')})" if r is not None else "PC1")
        ax.set_ylabel(f"PC2 ({describe(100 * r.iloc[1], '{:.0f}% of the variance')})" if r is not None else "PC2")
        ax.set_title(f"{_run_title(part)}: PCA plane")
    fig.tight_layout()
    return fig



# --------------------------------------------------------------------------- caption numbers
#
# One numbers function per figure, called like it (``CAPTION_NUMBERS``): the numbers the figure
# shows as ``{name: text}`` for its caption template. Losses are of the figure's split (the
# training split for the figures that draw every split); every value is per optimizer (per pair,
# per plane), in config order, as the mean over the inits with their range when there are
# several, prefixed "<model>:" when there are several models. A value is "n/a" when the table
# holds no such point (e.g. no train split), "diverged" when it is not finite.

#: Fig 6's basin width: the distance from the solution at which the training loss first exceeds
#: the solution's own by this much (linear between the line's points)
#: a listing longer than this names only its lowest and highest entries
LIST_LIMIT = 8
#: a basin's width (Fig 6): the distance at which the loss first exceeds the solution's by this much
#: (nats); the caption and the ``adam_wider_basins`` finding share it
BASIN_RISE = 0.5
NA = "n/a"
_TOL = 1e-6
_LINE_SPLIT = "train"


def _text(name) -> str:
    """``name`` as reStructuredText without inline markup."""
    out = str(name)
    for ch in "\\*`|_":
        out = out.replace(ch, "\\" + ch)
    return out


def _num(value, digits: int = 3) -> str:
    """``digits`` significant digits (trailing zeros kept), whole numbers from 10**digits,
    powers of ten from 1e5."""
    v = float(value)
    if not np.isfinite(v):
        return "diverged"
    if v == 0:
        return "0"
    if abs(v) >= 1e5:
        return f"{v:.2e}"
    if abs(float(f"{v:.{digits}g}")) >= 10 ** digits:
        return f"{v:.0f}"
    return f"{v:#.{digits}g}".rstrip(".")  # 1.70, not 1.7; 386, not 386.


def _num2(value) -> str:
    return _num(value, 2)


def _percent(value) -> str:
    v = 100 * float(value)
    if not np.isfinite(v):
        return "diverged"
    return f"{v:.0f}%" if v == 0 or abs(v) >= 1 else f"{v:.1g}%"


def _barrier(value) -> str:
    """A loss barrier; "none" when the line never rises above its higher end."""
    v = float(value)
    return "none" if np.isfinite(v) and v <= 0 else _num(v)


def _width(value) -> str:
    """A basin width; infinite: the loss never rose that much along the line."""
    return "beyond the line's end" if float(value) == math.inf else _num(value)


def _ok(values) -> list[float]:
    return [float(v) for v in values if v is not None and not math.isnan(float(v))]


def _summary(values, fmt) -> tuple[str, int]:
    """One entry's value over its runs (``None``: no such point; NaN: diverged) and over how
    many inits it is a mean: the value, or the mean and its range "(lo–hi)" (just the value
    when every init gives the same text)."""
    given = [v for v in values if v is not None]
    ok = _ok(given)
    if not given:
        return NA, 0
    if not ok:
        return "diverged", 0
    lost = len(given) - len(ok)
    note = f"{lost} of {len(given)} inits diverged" if lost else ""
    lo, hi = fmt(min(ok)), fmt(max(ok))
    if len(ok) == 1 or lo == hi:
        return fmt(ok[0]) + (f" ({note})" if note else ""), 0
    return f"{fmt(float(np.mean(ok)))} ({lo}–{hi}{'; ' + note if note else ''})", len(ok)


def _mean(values) -> float:
    ok = _ok(values)
    return float(np.mean(ok)) if ok else math.nan


def _listing(entries, fmt, *, same: str | None = None, limit: int = LIST_LIMIT) -> str:
    """``entries`` ``[(model, label, value)]`` as "label value, label value": the values of
    one label (its inits) as their mean and range, with "[mean (range) over 2 inits]" once at
    the end; "model: ..." per model when there are several; one value followed by ``same``
    when every label has the same text; past ``limit`` labels only the lowest and highest."""
    if not entries:
        return NA
    models = list(dict.fromkeys(m for m, _, _ in entries))
    parts, inits = [], set()
    for model in models:
        groups: dict = {}
        for m, label, value in entries:
            if m == model:
                groups.setdefault(label, []).append(value)
        items = []
        for label, vs in groups.items():
            text, k = _summary(vs, fmt)
            items.append((label, text, _mean(vs)))
            inits |= {k} if k else set()
        if same and len(items) > 1 and len({s for _, s, _ in items}) == 1:
            text = f"{items[0][1]} ({same})"
        elif len(items) > limit:
            ranked = sorted((it for it in items if np.isfinite(it[2])), key=lambda it: it[2]) or items
            lo, hi = ranked[0], ranked[-1]
            text = f"lowest {_text(lo[0])} {lo[1]}, highest {_text(hi[0])} {hi[1]} ({len(items)} in all)"
        else:
            text = ", ".join(f"{_text(label)} {s}" if label != "" else s for label, s, _ in items)
        parts.append(text if len(models) == 1 else f"{_text(model)}: {text}")
    over = "" if not inits else f"{next(iter(inits))} inits" if len(inits) == 1 else "the inits"
    return "; ".join(parts) + (f" [mean (range) over {over}]" if over else "")


def _mean_range(values, fmt) -> tuple[str, str]:
    """(mean, range) of ``values`` over the entries (pairs, runs)."""
    given = [v for v in values if v is not None]
    ok = _ok(given)
    if not given:
        return NA, NA
    if not ok:
        return "diverged", "diverged"
    lost = f", {len(given) - len(ok)} diverged" if len(ok) < len(given) else ""
    if len(ok) == 1:
        return fmt(ok[0]), f"{fmt(ok[0])} (one only{lost})"
    return fmt(float(np.mean(ok))), f"{fmt(min(ok))}–{fmt(max(ok))}" + (f" ({lost[2:]})" if lost else "")


def _at(part: pd.DataFrame, x: str, at: float, col: str = "loss"):
    """``col`` at the point ``x == at`` of ``part`` (NaN when not finite); None without one."""
    if not len(part) or x not in part or col not in part:
        return None
    xs = part[x].to_numpy(dtype=float)
    near = np.abs(xs - at) <= _TOL * max(1.0, abs(at))
    if not near.any():
        return None
    return float(finite(part.loc[near, col].to_numpy())[0])


def _line_barrier(part: pd.DataFrame, x: str = "alpha"):
    """max loss strictly between α = 0 and 1 minus the larger of the two ends' losses (NaN: an
    end diverged, inf: a point between diverged; None: no such ends or points)."""
    a, b = _at(part, x, 0.0), _at(part, x, 1.0)
    xs = part[x].to_numpy(dtype=float) if len(part) else np.array([])
    inner = (xs > _TOL) & (xs < 1 - _TOL)
    if a is None or b is None or not inner.any():
        return None
    if not (np.isfinite(a) and np.isfinite(b)):
        return math.nan
    losses = part["loss"].to_numpy(dtype=float)[inner]
    return float(losses.max() - max(a, b)) if np.isfinite(losses).all() else math.inf


def _basin_width(part: pd.DataFrame, rise: float = BASIN_RISE):
    """The distance from the solution at which the loss first exceeds the solution's by ``rise``
    (linear between points; a point that diverged exceeds it), inf when it never does."""
    start = _at(part, "distance", 0.0)
    if start is None or not np.isfinite(start):
        return start
    part = part[np.isfinite(part["distance"].to_numpy(dtype=float))].sort_values("distance")
    d = part["distance"].to_numpy(dtype=float)
    loss = np.nan_to_num(finite(part["loss"]), nan=math.inf)
    limit = start + rise
    above = np.flatnonzero(loss > limit)
    if not above.size:
        return math.inf
    i = int(above[0])
    if i == 0:
        return float(d[0])
    step = (loss[i] - loss[i - 1])
    return float(d[i - 1] + (limit - loss[i - 1]) * (d[i] - d[i - 1]) / step)


def _of_split(df: pd.DataFrame, split: str) -> pd.DataFrame:
    return df[df["split"] == split] if "split" in df else df.iloc[:0]


def _groups(df: pd.DataFrame, keys: Sequence[str], optimizers, rank_by: Sequence[str] = ("optimizer",)):
    """``[(ids, rows)]`` of ``df`` by the ``keys`` it has, ordered by model (first seen), the
    optimizers of ``rank_by`` (config order) and the init."""
    keys = [k for k in keys if k in df]
    if not len(df) or not keys:
        return []
    names = [n for c in rank_by if c in df for n in df[c]]
    rank = {o: i for i, o in enumerate(optimizer_order(names, optimizers))}
    models = {m: i for i, m in enumerate(dict.fromkeys(df["model"]))} if "model" in df else {}
    out = [(dict(zip(keys, key)), rows) for key, rows in df.groupby(keys, sort=False)]
    return sorted(out, key=lambda g: (models.get(g[0].get("model"), 0),
                                      *(rank.get(g[0].get(c), len(rank)) for c in rank_by if c in g[0]),
                                      str(g[0].get("seed", ""))))


_RUN = ("model", "optimizer", "seed", "run")
_PAIR = ("model", "seed", "optimizer_a", "optimizer_b")


def _runs(df: pd.DataFrame, optimizers, value, label=lambda ids: ids.get("optimizer", "")):
    """``[(model, label, value(rows))]`` per run of ``df``."""
    return [(ids.get("model"), label(ids), value(rows)) for ids, rows in _groups(df, _RUN, optimizers)]


def _pairs(df: pd.DataFrame, optimizers, value):
    """``[(model, "a → b", value(rows))]`` per pair (and init) of ``df``."""
    return [(ids.get("model"), f"{ids['optimizer_a']} → {ids['optimizer_b']}", value(rows))
            for ids, rows in _groups(df, _PAIR, optimizers, rank_by=("optimizer_a", "optimizer_b"))]


def _inits(df: pd.DataFrame) -> str:
    seeds = sorted(dict.fromkeys(df["seed"]), key=str) if "seed" in df and len(df) else []
    if not seeds:
        return NA
    listed = ", ".join(map(str, seeds))
    return f"1 initialisation (init {listed})" if len(seeds) == 1 else f"{len(seeds)} initialisations (inits {listed})"


def init_final_two_inits_numbers(lines: pd.DataFrame, optimizer: str = "sgd", *,
                                 optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Fig 2: the optimizer shown, its inits, and per run the training loss at the init and at
    the final weights and the barrier along the line."""
    df = lines[(lines["alpha"] >= -_TOL) & (lines["alpha"] <= 1 + 1e-9)] if len(lines) else lines
    shown = optimizer in set(df["optimizer"]) if "optimizer" in df else False
    if shown:
        df = df[df["optimizer"] == optimizer]
    train = _of_split(df, _LINE_SPLIT)
    one_optimizer = "optimizer" in df and df["optimizer"].nunique() == 1
    several = "seed" in df and df["seed"].nunique() > 1

    def label(ids):
        parts = ([] if one_optimizer else [str(ids.get("optimizer", ""))]) + ([f"init {ids.get('seed')}"]
                                                                               if several else [])
        return ", ".join(parts)

    def run(value, fmt, same=None):
        return _listing(_runs(train, optimizers, value, label), fmt, same=same)

    return {"split": _LINE_SPLIT,
            "optimizer": _text(optimizer) if shown else f"every optimizer ({_text(optimizer)} has no runs here)",
            "inits": _inits(df),
            "init_loss": run(lambda r: _at(r, "alpha", 0.0), _num, same="every run: the same init"),
            "final_loss": run(lambda r: _at(r, "alpha", 1.0), _num),
            "barrier": run(_line_barrier, _barrier, same="every run")}


def _alpha_max(df: pd.DataFrame):
    alphas = finite(df["alpha"]) if len(df) else np.array([])
    return float(np.nanmax(alphas)) if np.isfinite(alphas).any() else None


def _past_final(rows: pd.DataFrame):
    past = rows[rows["alpha"] > 1 + _TOL]
    if not len(past):
        return None
    loss = past["loss"].to_numpy(dtype=float)
    return float(loss.max()) if np.isfinite(loss).all() else math.nan


def beyond_final_numbers(lines: pd.DataFrame, *, optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Fig 10: per optimizer the training loss at the init, at the final weights, at the
    largest α of the line and the highest past the final."""
    train = _of_split(lines, _LINE_SPLIT)
    top = _alpha_max(train)
    beyond = top is not None and top > 1 + _TOL
    return {"split": _LINE_SPLIT,
            "alpha_max": NA if top is None else f"{top:g}",
            "init_loss": _listing(_runs(train, optimizers, lambda r: _at(r, "alpha", 0.0)), _num,
                                  same="every optimizer: the same init"),
            "final_loss": _listing(_runs(train, optimizers, lambda r: _at(r, "alpha", 1.0)), _num),
            "end_loss": _listing(_runs(train, optimizers, lambda r: _at(r, "alpha", top)), _num) if beyond else NA,
            "beyond_max": _listing(_runs(train, optimizers, _past_final), _num) if beyond else NA}


def interpolation_overview_numbers(init_final: pd.DataFrame, final_final: pd.DataFrame, *,
                                   optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Fig 5: per optimizer the training loss at the init and at the final weights; per pair
    the barrier along final → final and the loss at the two solutions."""
    a, b = _of_split(init_final, _LINE_SPLIT), _of_split(final_final, _LINE_SPLIT)
    return {"split": _LINE_SPLIT,
            "init_loss": _listing(_runs(a, optimizers, lambda r: _at(r, "alpha", 0.0)), _num,
                                  same="every optimizer: the same init"),
            "final_loss": _listing(_runs(a, optimizers, lambda r: _at(r, "alpha", 1.0)), _num),
            "pair_barrier": _listing(_pairs(b, optimizers, _line_barrier), _barrier, same="every pair")}


def distance_paths_numbers(lines: pd.DataFrame, *, optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Fig 6: per optimizer the basin width (distance at which the training loss exceeds the
    solution's by :data:`BASIN_RISE`), the distance to the init and the loss there."""
    train = _of_split(lines, _LINE_SPLIT)

    def init_distance(rows):
        return float(finite(rows["init_distance"])[0]) if "init_distance" in rows and len(rows) else None

    return {"split": _LINE_SPLIT, "rise": f"{BASIN_RISE:g}",
            "final_loss": _listing(_runs(train, optimizers, lambda r: _at(r, "distance", 0.0)), _num),
            "basin_width": _listing(_runs(train, optimizers, _basin_width), _width, same="every optimizer"),
            "init_distance": _listing(_runs(train, optimizers, init_distance), _num),
            "init_loss": _listing(_runs(train, optimizers, lambda r: _at(r, "alpha", 1.0)), _num,
                                  same="every optimizer: the same init")}


def _plane_extreme(rows: pd.DataFrame, how: str = "max", where=None):
    """The lowest or highest finite loss of ``rows`` (optionally only those ``where(rows)``)."""
    if where is not None and len(rows):
        rows = rows[where(rows)]
    if not len(rows):
        return None
    loss = finite(rows["loss"])
    if not np.isfinite(loss).any():
        return math.nan
    return float(np.nanmax(loss) if how == "max" else np.nanmin(loss))


def _centre(rows: pd.DataFrame):
    """The loss at the plane's origin (x = y = 0: the solution), None when the grid lacks it."""
    if not len(rows):
        return None
    at = (np.abs(rows["x"].to_numpy(dtype=float)) <= _TOL) & (np.abs(rows["y"].to_numpy(dtype=float)) <= _TOL)
    return float(finite(rows.loc[at, "loss"].to_numpy())[0]) if at.any() else None


def _inside_square(rows: pd.DataFrame):
    x, y = rows["x"].to_numpy(dtype=float), rows["y"].to_numpy(dtype=float)
    return (x >= -_TOL) & (x <= 1 + _TOL) & (y >= -_TOL) & (y <= 1 + _TOL)


def bilinear_planes_numbers(surfaces: pd.DataFrame, split: str = "train", *,
                            optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Fig 3: per plane the lowest and highest loss on the plane and the highest inside the
    square of the four solutions; the loss at each corner solution."""
    df = _of_split(surfaces, split)
    planes = _groups(df, ("model", "seed"), optimizers)
    several = "seed" in df and df["seed"].nunique() > 1

    def per_plane(value):
        return [(ids.get("model"), f"init {ids.get('seed')}" if several else "", value(rows)) for ids, rows in planes]

    corners, names = [], []
    for ids, rows in planes:
        order = str(rows["corners"].iloc[0]).split(",")
        names += order
        for name, (cx, cy) in zip(order, ((0, 0), (1, 0), (0, 1), (1, 1))):
            at = (np.abs(rows["x"] - cx) <= _TOL) & (np.abs(rows["y"] - cy) <= _TOL)
            corners.append((ids.get("model"), name, float(finite(rows.loc[at, "loss"])[0]) if at.any() else None))
    rank = {o: i for i, o in enumerate(optimizer_order(names, optimizers))}
    corners.sort(key=lambda c: rank.get(c[1], len(rank)))  # stable: models keep their order
    return {"split": split,
            "corners": ", ".join(map(_text, dict.fromkeys(names))) or NA,
            "min_loss": _listing(per_plane(lambda r: _plane_extreme(r, "min")), _num),
            "max_loss": _listing(per_plane(_plane_extreme), _num),
            "square_max": _listing(per_plane(lambda r: _plane_extreme(r, "max", _inside_square)), _num),
            "corner_loss": _listing(corners, _num)}


def _grid_key(barycentric: pd.DataFrame, final_final: pd.DataFrame):
    """The (model, init) the optimizer grid shows (as :func:`optimizer_grid` picks it), None without one."""
    for t in (final_final, barycentric):
        if len(t):
            return t["model"].iloc[0], t["seed"].iloc[0]
    return None


def optimizer_grid_numbers(barycentric: pd.DataFrame, final_final: pd.DataFrame, split: str = "train", *,
                           optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Table 1: for the model and init the grid shows, per pair the functional distance and
    label disagreement at the second solution (and their mean and range over the pairs, on
    ``split`` and on the test split) and the barrier along final → final; the lowest and
    highest loss on the barycentric planes."""
    bary, ff = _of_split(barycentric, split), _of_split(final_final, split)
    key = _grid_key(bary, ff)
    combos = {(m, s) for t in (barycentric, final_final) if len(t) for m, s in zip(t["model"], t["seed"])}

    def of_key(t):
        return t[(t["model"] == key[0]) & (t["seed"] == key[1])] if key is not None and len(t) else t.iloc[:0]

    bary, ff, test = of_key(bary), of_key(ff), of_key(_of_split(final_final, "test"))
    out = {"split": split, "shown": NA if key is None else f"{_text(key[0])}, init {key[1]}"}
    if key is not None and len(combos) > 1:
        out["shown"] += f" (the first of {len(combos)} model and init combinations)"
    for name, col, fmt in (("fd", "functional_distance", _num2), ("disagreement", "disagreement", _percent)):
        pairs = _pairs(ff, optimizers, lambda r, c=col: _at(r, "alpha", 1.0, c))
        out[name] = _listing(pairs, fmt)
        out[f"{name}_mean"], out[f"{name}_range"] = _mean_range([v for _, _, v in pairs], fmt)
        held_out = _pairs(test, optimizers, lambda r, c=col: _at(r, "alpha", 1.0, c))
        mean, spread = _mean_range([v for _, _, v in held_out], fmt)
        out[f"{name}_test"] = mean if mean in (NA, "diverged") else f"mean {mean}, range {spread}"
    out["barrier"] = _listing(_pairs(ff, optimizers, _line_barrier), _barrier, same="every pair")
    out["plane_min"] = _num(_plane_extreme(bary, "min")) if len(bary) else NA
    out["plane_max"] = _num(_plane_extreme(bary)) if len(bary) else NA
    return out


def _is_own(label) -> bool:
    return str(label).endswith(" only")


def switching_interpolation_numbers(lines: pd.DataFrame, split: str = "train", *,
                                    optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Fig 7 right: the barrier along the line from the first optimizer's own solution to
    each switch variant and between the variants; the loss at each solution."""
    df = _of_split(lines, split)
    own, variants, ends = [], [], {}
    for ids, rows in _groups(df, ("model", "first", "then", "seed", "start_label", "end_label"), optimizers,
                             rank_by=("first", "then")):
        a, b = ids["start_label"], ids["end_label"]
        if _is_own(b):
            a, b = b, a
            rows = rows.assign(alpha=1 - rows["alpha"])
        barrier = _line_barrier(rows)
        if _is_own(a):
            own.append((ids.get("model"), b, barrier))
        else:
            variants.append((ids.get("model"), f"{a} ↔ {b}", barrier))
        for label, at in ((a, 0.0), (b, 1.0)):  # each solution once per init
            ends.setdefault((ids.get("model"), label, ids.get("seed")), _at(rows, "alpha", at))
    pairs = [f"{f} → {t}" for f, t in dict.fromkeys(zip(df["first"], df["then"]))] if len(df) else []
    return {"split": split, "switches": ", ".join(map(_text, pairs)) or NA,
            "barrier": _listing(own, _barrier, same="every variant"),
            "variant_barrier": _listing(variants, _barrier, same="every pair of variants"),
            "own_loss": _listing([(m, label.removesuffix(" only"), v) for (m, label, _), v in ends.items()
                                  if _is_own(label)], _num),
            "variant_loss": _listing([(m, label, v) for (m, label, _), v in ends.items() if not _is_own(label)],
                                     _num)}


def _extent(df: pd.DataFrame) -> str:
    if not len(df):
        return NA
    spans = [(float(df[c].min()), float(df[c].max())) for c in ("x", "y")]
    def g(v):
        return f"{float(f'{v:.3g}'):g}"

    return f"[{g(spans[0][0])}, {g(spans[0][1])}] × [{g(spans[1][0])}, {g(spans[1][1])}]"


def random_planes_numbers(surfaces: pd.DataFrame, split: str = "train", *,
                          optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Li et al.'s random planes: per optimizer the loss at the solution (the centre) and the
    highest loss on the plane, and the plane's extent in (δ, η)."""
    df = _of_split(surfaces, split)
    return {"split": split, "extent": _extent(df),
            "centre_loss": _listing(_runs(df, optimizers, _centre), _num),
            "max_loss": _listing(_runs(df, optimizers, _plane_extreme), _num)}


def pca_planes_numbers(surfaces: pd.DataFrame, trajectories: pd.DataFrame, split: str = "train", *,
                       optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """Li et al.'s PCA planes: per optimizer the loss at the solution (the centre), the highest
    loss on the plane and the share of the trajectory's variance of each of the two axes."""
    df = _of_split(surfaces, split)

    def ratio(col):
        return lambda r: float(finite(r[col])[0]) if col in r and len(r) else None

    epochs = sorted({int(e) for e in trajectories["epoch"]}) if "epoch" in trajectories and len(trajectories) else []
    return {"split": split,
            "checkpoints": NA if not epochs else f"{len(epochs)} checkpoints, epochs {epochs[0]}–{epochs[-1]}",
            "centre_loss": _listing(_runs(df, optimizers, _centre), _num),
            "max_loss": _listing(_runs(df, optimizers, _plane_extreme), _num),
            "pc1_variance": _listing(_runs(trajectories, optimizers, ratio("explained_variance_ratio_x")), _percent),
            "pc2_variance": _listing(_runs(trajectories, optimizers, ratio("explained_variance_ratio_y")), _percent)}


#: the caption-numbers function of every figure function (:func:`lossland.plots.caption_numbers`)
CAPTION_NUMBERS = {name: globals()[f"{name}_numbers"] for name in FIGURE_FUNCTIONS}
