"""Loss-landscape figures (im2016 Fig 2, 3, 5, 6, 7 right, 10, Table 1; Li et al. random and
PCA planes), from the ``results/tables/landscape_<kind>.parquet`` tables.

Lines: colour = the run's optimizer (:func:`lossland.plots.style.optimizer_colors`), line
style = split (solid train, dashed test, dash-dot val), marker = init seed when there are
several; final -> final pairs and the lines between switch variants use the pair palette
(:func:`lossland.plots.style.pair_colors`, ColorBrewer Dark2). Surfaces: log10 loss
(viridis) with a labelled colour bar; marks on them are optimizer-coloured (solutions,
corners) or white with a black outline (trajectories).
"""

from __future__ import annotations

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
__all__ = ["FIGURE_FUNCTIONS", "SPLIT_STYLES", *FIGURE_FUNCTIONS]

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
        ax.set_xlabel(xlabel)
        ax.set_title(f"{model}{title}: {col}")
        if col == "loss" and log_loss:
            ax.set_yscale("log")
        ax.set_ylabel("loss (log scale)" if col == "loss" and log_loss else col)
        if len(df) and not any_finite(df[x], df[col]):
            mark_no_finite_values(ax, x=df[x] if x in df else None)


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


def _corner_mark(ax, x, y, color, label=None, **text):
    ax.plot(x, y, "o", color=color, mec="black", ms=7)
    if label is not None:
        ax.annotate(label, (x, y), textcoords="offset points", color="white", fontsize=8, weight="bold",
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
            ax.tick_params(labelsize=6)
            if i > j:  # lower triangle: barycentric plane of (row, column)
                part = _pair(bary, opts[i], opts[j])
                if not len(part):
                    ax.set_visible(False)
                    continue
                if part["optimizer_a"].iloc[0] != opts[i]:
                    part = part.rename(columns={"x": "y", "y": "x"})
                contour(ax, part, levels=levels)
                for (px, py), label in (((0, 0), "init"), ((1, 0), opts[i]), ((0, 1), opts[j])):
                    _corner_mark(ax, px, py, "white" if label == "init" else colors[label])
                ax.set_title(f"plane: init, {opts[i]}, {opts[j]}", fontsize=7)
                ax.set_xlabel(f"x: init → {opts[i]}", fontsize=7)
                ax.set_ylabel(f"y: init → {opts[j]}", fontsize=7)
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
                ax2.tick_params(labelsize=6, colors="dimgrey")
                ax2.set_ylabel("disagreement (%)", fontsize=7, color="dimgrey")
                end = part.iloc[(part["alpha"] - 1).abs().argmin()]
                ax.set_title(f"{first} → {second}: FD {describe(end['functional_distance'], '{:.2f}')}, "
                             f"disagree {describe(100 * end['disagreement'], '{:.0f}%')}", fontsize=7)
                ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(3))
                ax.axvline(0, color="grey", lw=0.5, ls=":")
                ax.axvline(1, color="grey", lw=0.5, ls=":")
                ax.set_xlabel(f"α (0 = {first}, 1 = {second})", fontsize=7)
                ax.set_ylabel("functional distance", fontsize=7)
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
                            fontsize=6, color="white", path_effects=OUTLINE)
        r = traj[["explained_variance_ratio_x", "explained_variance_ratio_y"]].iloc[0] if len(traj) else None
        ax.set_xlabel(f"PC1 ({describe(100 * r.iloc[0], '{:.0f}% of the variance')})" if r is not None else "PC1")
        ax.set_ylabel(f"PC2 ({describe(100 * r.iloc[1], '{:.0f}% of the variance')})" if r is not None else "PC2")
        ax.set_title(f"{_run_title(part)}: PCA plane")
    fig.tight_layout()
    return fig

