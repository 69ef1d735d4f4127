"""Drawing helpers shared by the figure families (once, here): the last epoch of each run,
diverged runs, the legend sections and colours of a hue, curves per run over epochs,
points per optimizer and init, legends outside the axes, panel grids, contour plots.

Non-finite values (a diverged run's NaN or inf) are never drawn, never set a limit or a
colour scale and never enter a caption: :func:`finite` (NaN for them), :func:`any_finite`,
:func:`finite_range`, :func:`describe` ("diverged" for a non-finite number), and a panel
with nothing finite to draw keeps its labelled axes and says so (:func:`mark_no_finite_values`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from .style import (
    DIVERGED_MARKER,
    DIVERGED_TEXT,
    NO_FINITE_VALUES,
    SURFACE_CMAP,
    init_linestyles,
    init_markers,
    model_colors,
    new_figure,
    optimizer_colors,
    optimizer_order,
    variant_colors,
)

#: legend titles of the hues the figures colour by
HUE_TITLES = {"optimizer": "optimizer", "label": "optimizer (lr)", "model": "model"}
#: white marks on a surface stay visible on every colour with this black outline
OUTLINE = [patheffects.withStroke(linewidth=2.2, foreground="black")]
#: legend style of a section's entries: a coloured line, a grey marker, a grey line style
Entry = tuple[str, dict]


def final_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The last epoch of every run."""
    return metrics.sort_values("epoch", kind="stable").groupby("run", sort=False).tail(1)


def diverged_runs(df: pd.DataFrame) -> set:
    return set(df.loc[df["diverged"].astype(bool), "run"]) if "diverged" in df else set()


def finite(values) -> np.ndarray:
    """``values`` as floats, NaN where they are not finite (matplotlib leaves NaN out)."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isfinite(v), v, np.nan)


def finite_log(values) -> np.ndarray:
    return np.log10(np.clip(finite(values), 1e-8, None))


def any_finite(*columns) -> bool:
    """Whether some point has a finite value in every one of ``columns`` (same length)."""
    ok = np.ones(np.shape(np.asarray(columns[0], dtype=float)), dtype=bool)
    for c in columns:
        ok &= np.isfinite(np.asarray(c, dtype=float))
    return bool(ok.any())


def finite_range(values, positive: bool = False) -> tuple[float, float]:
    """(min, max) of the finite (and, with ``positive``, > 0) ``values``; (NaN, NaN) when none is."""
    v = finite(values).ravel()
    v = v[np.isfinite(v) & (v > 0)] if positive else v[np.isfinite(v)]
    return (float(v.min()), float(v.max())) if v.size else (math.nan, math.nan)


def describe(value, template: str = "{:.2g}", none: str = "diverged") -> str:
    """``template.format(value)``; ``none`` ("diverged") when ``value`` is not a finite number."""
    return template.format(float(value)) if value is not None and np.isfinite(float(value)) else none


def no_finite_groups(df: pd.DataFrame, by: str, columns: Sequence[str]) -> set:
    """The ``by`` values of ``df`` none of whose rows has all of ``columns`` finite."""
    return {k for k, rows in df.groupby(by, sort=False) if not any_finite(*(rows[c] for c in columns))}


def mark_no_finite_values(ax, text: str = NO_FINITE_VALUES, *, x=None, y=None) -> None:
    """Say on ``ax`` that it has no finite value to draw: :data:`~.style.NO_FINITE_VALUES`
    centred in the :data:`~.style.DIVERGED_TEXT` style. An axis that no finite data and no
    ``set_*lim`` limited gets the finite range of ``x`` / ``y`` (e.g. a plane's grid; positive
    values on a log axis) or a default one, so the panel keeps its ticks and labels."""
    for name, values in (("x", x), ("y", y)):
        axis = getattr(ax, f"{name}axis")
        if not getattr(ax, f"get_autoscale{name}_on")():
            continue
        log = axis.get_scale() == "log"
        lo, hi = getattr(ax.dataLim, f"interval{name}")
        if np.isfinite([lo, hi]).all() and lo <= hi and (not log or lo > 0):
            continue
        lo, hi = finite_range([] if values is None else values, positive=log)
        if not np.isfinite([lo, hi]).all():
            lo, hi = (1.0, 10.0) if log else (0.0, 1.0)
        if lo == hi:
            lo, hi = (lo / 10, hi * 10) if log else (lo - 1, hi + 1)
        getattr(ax, f"set_{name}lim")(lo, hi)
    put = getattr(ax, "text2D", ax.text)  # a 3-D axes' text() wants a z
    put(0.5, 0.5, text, transform=ax.transAxes, zorder=10, **DIVERGED_TEXT)


def seed_label(seed) -> str:
    return f"init {seed}"


# --------------------------------------------------------------------------- colours of a hue


def switch_variants(df: pd.DataFrame) -> dict:
    """``{name: (first optimizer, switch epoch)}`` of the switch variants among ``df``'s
    ``optimizer`` values: runs whose rows' ``phase`` (the optimizer that produced them)
    is not only their own ``optimizer``."""
    if "phase" not in df or "optimizer" not in df:
        return {}
    out = {}
    for (_, name), rows in df.groupby(["run", "optimizer"], sort=False):
        rows = rows.sort_values("epoch", kind="stable")
        if set(rows["phase"]) <= {name}:
            continue
        trained = rows[rows["epoch"] > 0] if (rows["epoch"] > 0).any() else rows
        first = trained["phase"].iloc[0]
        out[name] = (first, int((trained["phase"] == first).sum()))
    return out


def hue_sections(df: pd.DataFrame, hue: str, optimizers: Sequence[str] | None) -> list[tuple[str, dict]]:
    """``[(legend section title, {hue value: colour})]`` of ``df[hue]``.

    ``model``: the model palette. Otherwise each value's colour is its runs' optimizer's
    (``optimizer_colors``; e.g. Fig 9's "<optimizer> (lr ...)" labels), except switch
    variants, which get the variant ramps in a section of their own."""
    values = list(dict.fromkeys(df[hue]))
    if hue == "model":
        return [(HUE_TITLES["model"], model_colors(values))]
    of = ({v: v for v in values} if hue == "optimizer" or "optimizer" not in df
          else df.groupby(hue, sort=False)["optimizer"].first().to_dict())
    variants = switch_variants(df)
    own = [v for v in values if of[v] not in variants]
    colors = optimizer_colors([of[v] for v in own], optimizers)
    rank = {o: i for i, o in enumerate(optimizer_order(colors, optimizers))}
    sections = [(HUE_TITLES.get(hue, hue), {v: colors[of[v]] for v in sorted(own, key=lambda v: rank[of[v]])})]
    var = sorted((v for v in values if of[v] in variants), key=lambda v: (str(variants[of[v]][0]),
                                                                          variants[of[v]][1], str(v)))
    if var:
        sections.append(("switch variant", variant_colors(var, {v: variants[of[v]][0] for v in var})))
    return sections


# --------------------------------------------------------------------------- legends and grids


def color_entries(colors: Mapping, flagged: Iterable = (), suffix: str = " (diverged)") -> list[Entry]:
    flagged = set(flagged)
    return [(f"{v}{suffix}" if v in flagged else str(v), {"color": c, "lw": 1.8}) for v, c in colors.items()]


def marker_entries(markers: Mapping) -> list[Entry]:
    return [(seed_label(s), {"marker": m, "color": ".3", "ls": "none", "ms": 6}) for s, m in markers.items()]


def linestyle_entries(styles: Mapping, label=seed_label) -> list[Entry]:
    return [(label(s), {"color": ".3", "ls": ls, "lw": 1.3}) for s, ls in styles.items()]


def legend_outside(ax, sections: Sequence[tuple[str, Sequence[Entry]]], fontsize: float | None = None):
    """A legend right of ``ax`` with one bold-titled block per non-empty section."""
    handles, labels, heads = [], [], []
    for title, entries in sections:
        if not entries:
            continue
        if title:
            heads.append(len(labels))
            handles.append(Line2D([], [], ls="none"))
            labels.append(title)
        for label, style in entries:
            handles.append(Line2D([], [], **style))
            labels.append(label)
    if not handles:
        return None
    leg = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                    frameon=False, handlelength=2.4, fontsize=fontsize)
    for i in heads:
        leg.get_texts()[i].set_fontweight("bold")
    return leg


def panel_grid(n: int, *, width: float, height: float, cols: int = 3):
    """A figure of ``n`` panels, at most ``cols`` a row; the unused cells hidden."""
    n = max(n, 1)
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig, axes = new_figure(rows, cols, figsize=(width * cols, height * rows))
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


# --------------------------------------------------------------------------- curves over epochs


def mark_diverged(ax, xs, ys) -> None:
    """A cross at the last finite point of a diverged run's curve (at 0 when none is)."""
    xs, ys = np.asarray(xs), np.asarray(ys, dtype=float)
    ok = np.flatnonzero(np.isfinite(ys))
    if len(ok):
        ax.plot(xs[ok[-1]], ys[ok[-1]], **DIVERGED_MARKER)
    elif len(xs):
        ax.plot(xs[-1], 0.0, **DIVERGED_MARKER)


def draw_runs(ax, part: pd.DataFrame, x: str, y: str, *, hue: str, colors: Mapping, style: str | None = None,
              styles: Mapping | None = None, diverged: set = frozenset(), lw: float = 1.3) -> None:
    """One line per run of ``y`` against ``x`` (non-finite values left out), colour from
    ``colors[run's hue]``, line style from ``styles[run's style]``; diverged runs end in a cross."""
    for run, rows in part.groupby("run", sort=False):
        rows = rows.sort_values(x, kind="stable")
        ys = finite(rows[y])
        ls = (styles or {}).get(rows[style].iloc[0], "-") if style else "-"
        ax.plot(rows[x].to_numpy(), ys, color=colors[rows[hue].iloc[0]], ls=ls, lw=lw)
        if run in diverged:
            mark_diverged(ax, rows[x].to_numpy(), ys)


def curve_panels(df: pd.DataFrame, *, hue: str, style: str | None, group: str | None, panels,
                 optimizers: Sequence[str] | None, x: str = "epoch", xlabel: str = "epoch"):
    """Per-epoch curves: one row of ``panels`` ((column, what it is), ...) per ``group``
    value, one line per run, colour by ``hue`` (:func:`hue_sections`), line style by
    ``style`` (the init seed); the legend right of the top row."""
    diverged = diverged_runs(df)
    groups = sorted(df[group].unique()) if group and group in df else [None]
    panels = [(c, t) for c, t in panels if c in df]
    style = style if style and style in df else None
    styles = init_linestyles(df[style]) if style else {}
    sections = hue_sections(df, hue, optimizers)
    colors = {v: c for _, sec in sections for v, c in sec.items()}
    fig, axes = new_figure(len(groups), len(panels), figsize=(3.2 * len(panels) + 1.8, 2.6 * len(groups)),
                           sharex=True)
    for i, g in enumerate(groups):
        part = df if g is None else df[df[group] == g]
        for j, (col, what) in enumerate(panels):
            ax = axes[i][j]
            draw_runs(ax, part, x, col, hue=hue, colors=colors, style=style, styles=styles, diverged=diverged)
            ax.set_title(what if g is None else f"{group} {g}: {what}")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(what)
    flagged = set(df.loc[df["run"].isin(diverged), hue])
    legend = [(title, color_entries(sec, flagged)) for title, sec in sections]
    if style:
        legend.append(("init" if style == "seed" else style,
                       linestyle_entries(styles, seed_label if style == "seed" else str)))
    if diverged:
        legend.append(("", [("diverged: last finite epoch", DIVERGED_MARKER)]))
    legend_outside(axes[0][-1], legend)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- points per optimizer


def strip_figure(rows: pd.DataFrame, panels, *, order: Sequence[str], optimizers: Sequence[str] | None,
                 title: str = "{model}: {what}", refs: pd.DataFrame | None = None, ref_label: str = ""):
    """One point per run at its optimizer (colour) offset by its init (marker), one row of
    ``panels`` per model; diverged runs as crosses at 0; ``refs`` (rows with ``model``,
    ``seed`` and the panel columns) as dashed grey lines."""
    models = sorted(rows["model"].unique()) if "model" in rows else [None]
    colors = optimizer_colors(order, optimizers)
    seeds = sorted(rows["seed"].unique())
    markers = init_markers(seeds)
    step = min(0.15, 0.6 / max(len(seeds), 1))
    offset = {s: (k - (len(seeds) - 1) / 2) * step for k, s in enumerate(seeds)}
    at = {o: i for i, o in enumerate(order)}
    width = max(3.0, 0.55 * len(order) + 1.2)
    fig, axes = new_figure(len(models), len(panels), figsize=(width * len(panels) + 1.8, 3.0 * len(models)))
    bad = rows["diverged"].astype(bool) if "diverged" in rows else pd.Series(False, index=rows.index)
    for i, model in enumerate(models):
        in_model = (rows["model"] == model) if model is not None else pd.Series(True, index=rows.index)
        for j, (col, what) in enumerate(panels):
            ax = axes[i][j]
            for (opt, seed), r in rows[in_model & ~bad].groupby(["optimizer", "seed"], sort=False):
                ax.plot(np.full(len(r), at[opt] + offset[seed]), r[col], ls="none", marker=markers[seed],
                        color=colors[opt], ms=7, mec="white", mew=0.6)
            for _, r in rows[in_model & bad].iterrows():
                ax.plot(at[r["optimizer"]] + offset[r["seed"]], 0.0, **DIVERGED_MARKER)
            if refs is not None and col in refs:
                mine = refs if model is None or "model" not in refs else refs[refs["model"] == model]
                for v in mine.groupby("seed")[col].first().dropna():
                    ax.axhline(v, ls="--", lw=0.8, color="grey")
            ax.set_xticks(range(len(order)))
            ax.set_xticklabels(order, rotation=45, ha="right", rotation_mode="anchor")
            ax.set_xlim(-0.6, len(order) - 0.4)
            ax.set_title(title.format(model=model, what=what) if model is not None else what)
            ax.set_xlabel("optimizer")
            ax.set_ylabel(what)
    legend = [("init", marker_entries(markers))]
    if bad.any():
        legend.append(("", [("diverged (drawn at 0)", DIVERGED_MARKER)]))
    if refs is not None and ref_label:
        legend.append(("", [(ref_label, {"ls": "--", "lw": 0.8, "color": "grey"})]))
    legend_outside(axes[0][-1], legend)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- surfaces


def surface_grid(part: pd.DataFrame, value: str = "loss") -> pd.DataFrame:
    """``value`` over the whole (x, y) grid of ``part`` (rows y, columns x), non-finite cells kept."""
    return part.pivot_table(index="y", columns="x", values=value, aggfunc="first", dropna=False)


def contour(ax, part: pd.DataFrame, value: str = "loss", levels=15, log: bool = True, cmap=SURFACE_CMAP,
            vmin: float | None = None, vmax: float | None = None):
    """Filled contours of ``value`` over the (x, y) grid of ``part`` (log10 by default);
    returns the mappable for a colour bar, None when no value is finite (the panel says so)."""
    grid = surface_grid(part, value)
    z = finite_log(grid.to_numpy()) if log else finite(grid.to_numpy())
    ax.grid(False)
    good = z[np.isfinite(z)]
    if good.size == 0:
        mark_no_finite_values(ax, x=grid.columns, y=grid.index)
        return None
    if np.ptp(good) == 0 or min(z.shape) < 2:
        return ax.imshow(z, origin="lower", aspect="auto", cmap=cmap,
                         extent=(grid.columns.min(), grid.columns.max(), grid.index.min(), grid.index.max()))
    xs, ys = grid.columns.to_numpy(), grid.index.to_numpy()
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_locator(MaxNLocator(5))
    cs = ax.contourf(xs, ys, z, levels=levels, cmap=cmap, vmin=vmin, vmax=vmax)
    ax.contour(xs, ys, z, levels=cs.levels, colors="k", linewidths=0.3, alpha=0.5)
    if good.size < z.size:  # a diverged part: its cells blank, the finite grid points as dots in their colour
        gx, gy = np.meshgrid(xs, ys)
        ok = np.isfinite(z)
        ax.scatter(gx[ok], gy[ok], c=z[ok], cmap=cs.cmap, norm=cs.norm, s=22, edgecolors="black", linewidths=0.5,
                   zorder=1.5, clip_on=False)  # under the marks drawn on the plane
        ax.text(0.5, 0.02, "blank: no finite value (diverged)", transform=ax.transAxes, ha="center", va="bottom",
                fontsize=6, color="black", bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none",
                                                 "alpha": 0.8}, zorder=10)
    return cs


def contour_panel(fig, ax, part: pd.DataFrame, label: str, **kw):
    """:func:`contour` with a colour bar labelled ``label`` (none without a finite value)."""
    cs = contour(ax, part, **kw)
    if cs is not None:
        fig.colorbar(cs, ax=ax, label=label)
    return cs


def significant(value, sig: int = 3) -> str:
    """``value`` to ``sig`` significant digits, for captions: plain from 0.001 to 10⁵, else
    ``1.86e7``; "n/a" for NaN, inf or a non-number."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    a = abs(v)
    if 1e-3 <= a < 1e5:
        decimals = max(sig - 1 - math.floor(math.log10(a)), 0)
        text = f"{v:.{decimals}f}"
        return "0" if float(text) == 0 else text
    mantissa, exponent = f"{v:.{sig - 1}e}".split("e")
    return f"{mantissa}e{int(exponent)}"
