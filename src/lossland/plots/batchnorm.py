"""BatchNorm family figures (im2016 §4.4, Table 2 and Fig 8), from ``results/tables/bn_study_*.parquet``:

* :func:`bn_lines` -- im2016 Table 2: the 1-D lines of every model, two rows of panels per
  architecture (init → final, final → final), one column per init seed and model (with BN,
  without BN side by side); the training loss (log scale) against α, test dashed when the
  table has it;
* :func:`bn_minima` -- im2016 Fig 8 as numbers: the final training loss of every run (dots per
  optimizer, one marker per init: the spread across inits) for each model, and the shape of
  the final → final lines per model (local maxima per line, barrier width) from the summary.

Colours: init → final lines and the runs' dots take their optimizer's colour
(:func:`~.style.optimizer_colors`, the same in every figure); final → final lines one pair
colour per "A–B" (:func:`~.style.pair_colors`); with and without BN in the summary bars dark
and light grey (:data:`BN_COLORS`). A diverged run is never drawn as a value: its line stops
at its last finite point (a black cross), its legend entry and panel say "diverged", its
final loss is a cross at the top edge of the panel.

The caption numbers (``CAPTION_NUMBERS``) are computed from the same tables: per model the
spread of the final training loss across inits and the local maxima, barrier and barrier
width of the final → final lines (the family's summary,
:func:`lossland.pipeline.families.batchnorm.summary_table`), the inits, the lines, the
diverged lines and runs, the test accuracy and (text data) the test perplexity.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.transforms import blended_transform_factory

from ._common import color_entries, final_rows, legend_outside, mark_no_finite_values, marker_entries
from .landscape import _alpha_ticks, _plain_log_ticks, _text
from .style import (
    DIVERGED_MARKER,
    SPLIT_STYLES,
    blank_figure,
    init_markers,
    new_figure,
    optimizer_colors,
    optimizer_order,
    pair_colors,
)

FIGURE_FUNCTIONS = ("bn_lines", "bn_minima")
#: as :mod:`lossland.pipeline.families.batchnorm` (``LINE_KINDS``, ``QUALITY_SPLIT``; here so that
#: this module imports nothing of the pipeline): the kinds of line, and the split the quality of a
#: minimum (its final loss) is read from
LINE_KINDS = ("init_final", "final_final")
QUALITY_SPLIT = "train"
__all__ = ["BN_COLORS", "CAPTION_NUMBERS", "FIGURE_FUNCTIONS", *FIGURE_FUNCTIONS, "bn_lines_numbers",
           "bn_minima_numbers"]

KIND_TITLES = {"init_final": "init → final", "final_final": "final → final"}
XLABELS = {"init_final": "interpolation α (0 = init, 1 = final)",
           "final_final": "interpolation α (0 = A's, 1 = B's solution)"}
#: the summary bars: with BatchNorm dark, without light (and hatched)
BN_COLORS = {True: ".3", False: ".75"}
BN_HATCH = {True: "", False: "///"}
#: the keys of one line of ``bn_study_lines`` (its rows: α × split)
LINE = ("kind", "architecture", "model", "seed", "start", "end")
NA = "n/a"
LIST_LIMIT = 8


# --------------------------------------------------------------------------- shared pieces


def _g(value, inf: str | None = None) -> str:
    """``value`` as ``:.3g``; "n/a" for NaN or a non-number, ``inf`` (default "inf") for ±inf."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return NA
    if math.isnan(v):
        return NA
    if math.isinf(v):
        return inf if inf is not None else ("inf" if v > 0 else "-inf")
    return f"{v:.3g}"


def _spread(value, unit: str = " nats") -> str:
    """A spread of the final loss: infinite when a run diverged (the family counts it as infinitely worse)."""
    text = _g(value, inf="infinite (a run diverged)")
    return text if text == NA or text.startswith("infinite") else text + unit


def _percent(value) -> str:
    text = _g(100 * float(value)) if value is not None else NA
    return text if text == NA else f"{text} %"


def _arch(architecture) -> str:
    return str(architecture).upper()


def _flag(value) -> bool:
    return bool(value) if value is not None and not (isinstance(value, float) and math.isnan(value)) else False


def _models(*tables: pd.DataFrame) -> dict:
    """``{architecture: [(model, batch_norm)]}`` of the tables, architectures in order of
    appearance, with BN before without."""
    found: dict = {}
    for t in tables:
        if t is None or not len(t) or not {"architecture", "model"} <= set(t.columns):
            continue
        bn = t["batch_norm"] if "batch_norm" in t else pd.Series(False, index=t.index)
        for arch, model, flag in zip(t["architecture"], t["model"], bn):
            found.setdefault(arch, {}).setdefault(model, _flag(flag))
    return {a: sorted(ms.items(), key=lambda mb: not mb[1]) for a, ms in found.items()}


def _paired(models: dict, arch) -> bool:
    return len({bn for _, bn in models.get(arch, [])}) == 2


def _model_label(arch, model, batch_norm: bool, paired: bool, name: bool = True) -> str:
    """``NIN with BN (nin)``, ``NIN without BN (nin-nobn)``; ``LSTM (lstm)`` for a lone model without BN."""
    what = f"{_arch(arch)} {'with' if batch_norm else 'without'} BN" if paired or batch_norm else _arch(arch)
    return f"{what} ({model})" if name else what


def _positive(values) -> np.ndarray:
    """``values`` as floats, NaN where not finite or not positive (a log axis's points)."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isfinite(v) & (v > 0), v, np.nan)


def _log_limits(values) -> tuple[float, float] | None:
    v = _positive(values)
    v = v[np.isfinite(v)]
    if not v.size:
        return None
    lo, hi = float(v.min()), float(v.max())
    return (lo / 2.0, hi * 2.0) if hi <= lo * 1.0001 else (lo / 1.4, hi * 1.4)


def _listing(items: Sequence[str], limit: int = LIST_LIMIT) -> str:
    items = list(items)
    if not items:
        return "none"
    return "; ".join(items[:limit]) + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _summary_rows(summary: pd.DataFrame, models: dict):
    """``(architecture, model, batch_norm, paired, row)`` for every summary row, in ``models`` order."""
    if summary is None or not len(summary) or "model" not in summary:
        return []
    by_model = {r["model"]: r for _, r in summary.iterrows()}
    out = []
    for arch, ms in models.items():
        for model, bn in ms:
            if model in by_model:
                out.append((arch, model, bn, _paired(models, arch), by_model[model]))
    return out


def _per_architecture(summary: pd.DataFrame, column: str, fmt=_g) -> str:
    """``NIN: 1 with BN, 3 without; LSTM: 2`` of summary ``column`` ("n/a" without the column)."""
    if summary is None or column not in summary or not len(summary):
        return NA
    models = _models(summary)
    parts = []
    for arch, ms in models.items():
        rows = {m: summary.loc[summary["model"] == m, column].iloc[0] for m, _ in ms}
        if _paired(models, arch):
            parts.append(f"{_arch(arch)}: " + ", ".join(
                f"{fmt(rows[m])} {'with BN' if bn else 'without'}" for m, bn in ms))
        else:
            parts.append(f"{_arch(arch)}: " + ", ".join(f"{fmt(rows[m])}" + (" (with BN)" if bn else "")
                                                        for m, bn in ms))
    return "; ".join(parts) if parts else NA


def _gap(summary: pd.DataFrame, column: str) -> str:
    """``NIN: 0.198; VGG: 0.05``: without BN minus with BN of ``column`` per architecture with both."""
    if summary is None or column not in summary or not len(summary):
        return NA
    models = _models(summary)
    parts = []
    for arch, ms in models.items():
        if not _paired(models, arch):
            continue
        v = {bn: float(summary.loc[summary["model"] == m, column].iloc[0]) for m, bn in ms}
        if math.isinf(v[True]) or math.isinf(v[False]):
            which = " and ".join(w for w, bn in (("with BN", True), ("without", False)) if math.isinf(v[bn]))
            text = f"n/a (a run diverged {which})"
        else:
            text = _g(v[False] - v[True])
        parts.append(f"{_arch(arch)}: {text}")
    return "; ".join(parts) if parts else NA


def _inits(*tables: pd.DataFrame) -> list:
    seeds = {s for t in tables if t is not None and "seed" in t for s in t["seed"]}
    return sorted(seeds, key=lambda s: (str(type(s)), s))


# --------------------------------------------------------------------------- Table 2: the lines


def _line_ids(lines: pd.DataFrame) -> pd.DataFrame:
    """One row per line: its keys, optimizers and whether it diverged (flagged, or a non-finite loss)."""
    keys = [k for k in LINE if k in lines]
    if not len(lines) or not keys:
        return pd.DataFrame(columns=[*LINE, "start_optimizer", "end_optimizer", "diverged"])
    bad = ~np.isfinite(lines["loss"].to_numpy(dtype=float))
    if "diverged" in lines:
        bad |= lines["diverged"].astype(bool).to_numpy()
    df = lines.assign(_bad=bad)
    agg = {c: "first" for c in ("start_optimizer", "end_optimizer", "batch_norm", "dataset") if c in df}
    out = df.groupby(keys, sort=False).agg({**agg, "_bad": "any"}).reset_index()
    return out.rename(columns={"_bad": "diverged"})


def _pair_label(a, b) -> str:
    return f"{a}–{b}"


def _hue(kind: str, rows: pd.DataFrame) -> str:
    first = rows.iloc[0]
    return (str(first["end_optimizer"]) if kind == "init_final"
            else _pair_label(first["start_optimizer"], first["end_optimizer"]))


def _cells(lines: pd.DataFrame, models: dict) -> dict:
    """``{architecture: [(seed, model, batch_norm)]}``: per init, the model with BN then without."""
    out = {}
    for arch, ms in models.items():
        mine = lines[lines["architecture"] == arch]
        seeds = _inits(mine)
        out[arch] = [(s, m, bn) for s in seeds for m, bn in ms
                     if ((mine["seed"] == s) & (mine["model"] == m)).any()]
    return out


def _draw_line(ax, rows: pd.DataFrame, color: str, ls, diverged: bool) -> bool:
    """One line (non-finite and non-positive losses left out); a cross at the last finite point
    of a diverged one. Returns whether the cross was drawn."""
    rows = rows.sort_values("alpha", kind="stable")
    x = rows["alpha"].to_numpy(dtype=float)
    y = _positive(rows["loss"])
    ax.plot(x, y, color=color, ls=ls, lw=1.4)
    ok = np.flatnonzero(np.isfinite(y))
    if diverged and len(ok):
        ax.plot(x[ok[-1]], y[ok[-1]], **DIVERGED_MARKER, zorder=5)
        return True
    return False


def _shape_note(summary: pd.DataFrame, model) -> str | None:
    if summary is None or not len(summary) or "model" not in summary:
        return None
    rows = summary[summary["model"] == model]
    if not len(rows):
        return None
    r = rows.iloc[0]
    return (f"{_g(r.get('local_maxima_mean'))} local max./line\nwidth {_g(r.get('barrier_width_mean'))}"
            " (model mean)")


def _splits(part: pd.DataFrame) -> list[str]:
    """The splits of ``part``, the training split first (:data:`QUALITY_SPLIT` when there is none)."""
    splits = list(dict.fromkeys(part["split"])) if "split" in part and len(part) else [QUALITY_SPLIT]
    return sorted(splits, key=lambda s: (s != QUALITY_SPLIT, s))


def _legend_in(ax, sections) -> None:
    """``sections`` as the legend of the blank cell ``ax``, at its upper left."""
    leg = legend_outside(ax, sections, fontsize=7)
    if leg is not None:
        leg.set_bbox_to_anchor((0.0, 1.0), transform=ax.transAxes)


def bn_lines(lines: pd.DataFrame, summary: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """im2016 Table 2: two rows of panels per architecture (init → final: one line per run in its
    optimizer's colour; final → final: one line per pair of optimizers' solutions, "A–B" from A at
    α 0 to B at α 1), one column per init seed and model (with BN, then without, side by side; a
    lone model, e.g. the LSTM, one column per init). The loss on a log axis, train solid, test
    dashed; a diverged line stops at its last finite point (a cross) and is named in the legend.
    The final → final panels give the model's mean local maxima per line and barrier width from
    ``summary``."""
    df = lines
    models = _models(df)
    if not len(df) or not models:
        fig, axes = new_figure(1, 1, figsize=(6.0, 3.0))
        mark_no_finite_values(axes[0, 0], "no lines in the table")
        axes[0, 0].set_title("im2016 Table 2: 1-D lines with and without BatchNorm")
        axes[0, 0].set_xlabel("interpolation α")
        axes[0, 0].set_ylabel(f"{QUALITY_SPLIT} loss (nats)")
        fig.tight_layout()
        return fig
    cells = _cells(df, models)
    ncols = max(max((len(c) for c in cells.values()), default=1), 1)
    rows_of = [(arch, kind) for arch in models for kind in LINE_KINDS]
    ids = _line_ids(df)
    init_final = df[df["kind"] == "init_final"]
    final_final = df[df["kind"] == "final_final"]
    opt_colors = optimizer_colors(optimizer_order(init_final["end_optimizer"], optimizers), optimizers)
    pairs = pair_colors(_pair_label(a, b) for a, b in zip(final_final["start_optimizer"], final_final["end_optimizer"]))
    fig, axes = new_figure(len(rows_of), ncols, figsize=(3.15 * ncols + 2.3, 2.75 * len(rows_of)))
    for r, (arch, kind) in enumerate(rows_of):
        part = df[(df["architecture"] == arch) & (df["kind"] == kind)]
        splits = _splits(part)
        paired = _paired(models, arch)
        limits = _log_limits(part["loss"]) if len(part) else None
        ylabel = (f"{splits[0]} loss" if len(splits) == 1 else "loss") + (" (nats, log)" if limits else " (nats)")
        colors = opt_colors if kind == "init_final" else pairs
        shown, flagged, crossed = {}, set(), False
        row_cells = cells[arch]
        for c in range(ncols):
            ax = axes[r][c]
            if c >= len(row_cells):
                ax.set_axis_off()  # blank: the first such cell holds the row's legend
                ax.xaxis.set_visible(False)
                ax.yaxis.set_visible(False)
                continue
            seed, model, bn = row_cells[c]
            panel = part[(part["seed"] == seed) & (part["model"] == model)]
            bad_here = []
            if len(panel):
                for key, rows in panel.groupby(["start", "end", "split"], sort=False):
                    hue = _hue(kind, rows)
                    line = ids[(ids["kind"] == kind) & (ids["architecture"] == arch) & (ids["model"] == model)
                               & (ids["seed"] == seed) & (ids["start"] == key[0]) & (ids["end"] == key[1])]
                    bad = bool(line["diverged"].any())
                    color = colors.get(hue, ".3")
                    shown.setdefault(hue, color)
                    crossed |= _draw_line(ax, rows, color, SPLIT_STYLES.get(key[2], ":"), bad)
                    if bad:
                        flagged.add(hue)
                        if hue not in bad_here:
                            bad_here.append(hue)
            if limits is not None:
                ax.set_yscale("log")
                ax.set_ylim(*limits)
                _plain_log_ticks(ax)
            alphas = panel["alpha"] if len(panel) else part["alpha"]
            if not len(panel) or not np.isfinite(_positive(panel["loss"])).any():
                mark_no_finite_values(ax, "no lines in the table" if not len(panel) else
                                      "diverged: no finite values", x=alphas if len(alphas) else [0.0, 1.0])
            elif bad_here:
                ax.text(0.02, 0.03, "diverged: " + ", ".join(bad_here), transform=ax.transAxes, fontsize=7,
                        ha="left", va="bottom", color="black",
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "black", "lw": 0.6, "alpha": 0.9},
                        zorder=6)
            for v in (0.0, 1.0):
                ax.axvline(v, color="grey", lw=0.6, ls=":")
            ax.xaxis.set_major_locator(_alpha_ticks())
            ax.set_title(f"{_model_label(arch, model, bn, paired)}, init {seed}\n{KIND_TITLES[kind]}")
            ax.set_xlabel(XLABELS[kind])
            ax.set_ylabel(ylabel)
            note = _shape_note(summary, model) if kind == "final_final" else None
            if note and len(panel) and np.isfinite(_positive(panel["loss"])).any() and not bad_here:
                ax.text(0.5, 0.03, note, transform=ax.transAxes, fontsize=6.5, ha="center", va="bottom", color=".15",
                        bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8},
                        zorder=6)
        title = "run's optimizer" if kind == "init_final" else "pair A–B (α 0 at A)"
        order = (optimizer_order(shown, optimizers) if kind == "init_final" else sorted(shown))
        sections = [(title, color_entries({h: shown[h] for h in order}, flagged))]
        if len(splits) > 1:
            sections.append(("split", [(s, {"color": ".3", "ls": SPLIT_STYLES.get(s, ":"), "lw": 1.3})
                                       for s in splits]))
        if crossed:
            sections.append(("", [("diverged: last finite point", DIVERGED_MARKER)]))
        if len(row_cells) < ncols:  # in the first blank cell, not past the grid's right edge
            _legend_in(axes[r][len(row_cells)], sections)
        else:
            legend_outside(axes[r][ncols - 1], sections, fontsize=7)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- Fig 8: the minima


def _finals(metrics: pd.DataFrame) -> pd.DataFrame:
    """The last epoch of every run with ``quality`` (the final training loss, NaN when not
    finite) and ``bad`` (diverged: flagged, or a non-finite final loss)."""
    if metrics is None or not len(metrics) or "run" not in metrics:
        return pd.DataFrame(columns=["run", "architecture", "model", "optimizer", "seed", "quality", "bad"])
    last = final_rows(metrics)
    col = f"{QUALITY_SPLIT}_loss"
    loss = last[col].to_numpy(dtype=float) if col in last else np.full(len(last), np.nan)
    bad = ~np.isfinite(loss)
    if "diverged" in last:
        bad |= last["diverged"].astype(bool).to_numpy()
    return last.assign(quality=np.where(np.isfinite(loss), loss, np.nan), bad=bad)


def _categories(models: dict) -> list[tuple]:
    """``[(x, architecture, model, batch_norm, paired)]``: one slot per model, a gap between architectures."""
    out, x = [], 0.0
    for arch, ms in models.items():
        for model, bn in ms:
            out.append((x, arch, model, bn, _paired(models, arch)))
            x += 1.0
        x += 0.5
    return out


def _category_axis(ax, cats, extra: dict | None = None) -> None:
    """One tick per model: ``NIN\\nwith BN\\n(nin)``, and ``extra[model]`` on a line of its own."""
    ax.set_xticks([c[0] for c in cats])
    ax.set_xticklabels([_model_label(a, m, bn, p, name=False).replace(" ", "\n", 1) + f"\n({m})"
                        + (f"\n{extra[m]}" if extra and m in extra else "") for _, a, m, bn, p in cats], fontsize=7.5)
    if cats:
        ax.set_xlim(cats[0][0] - 0.6, cats[-1][0] + 0.6)
    ax.grid(False, axis="x")
    ax.set_xlabel("model (architecture, with or without BatchNorm)")


def _bars(ax, cats, summary: pd.DataFrame, column: str, *, label: str, note=None, ref: float | None = None) -> None:
    """One bar per model of summary ``column`` (with BN dark, without light and hatched); "n/a"
    where the value is undefined (a diverged end on every line, or no line)."""
    rows = {r["model"]: r for _, r in summary.iterrows()} if summary is not None and "model" in summary else {}
    tops = []
    for x, _, model, bn, _ in cats:
        r = rows.get(model)
        v = float(r[column]) if r is not None and column in r and r[column] is not None else math.nan
        if math.isfinite(v):
            ax.bar(x, v, width=0.7, color=BN_COLORS[bn], hatch=BN_HATCH[bn], edgecolor=".15", lw=0.8)
            text = _g(v) + (f"\n{note(r)}" if note is not None else "")  # value, then e.g. "100 % unimodal"
            ax.annotate(text, (x, v), textcoords="offset points", xytext=(0, 2), ha="center", va="bottom",
                        fontsize=6.5)
            tops.append(v)
        else:
            why = "n/a" if r is None else "n/a\n(diverged)" if _flag(r.get("diverged_runs")) else "n/a"
            ax.text(x, 0.0, why, ha="center", va="bottom", fontsize=6.5, color="black",
                    transform=blended_transform_factory(ax.transData, ax.transAxes))
    if ref is not None:
        ax.axhline(ref, color="grey", lw=0.8, ls="--")
    top = max([*tops, ref or 0.0]) or 1.0  # nothing finite: a unit axis
    ax.set_ylim(0.0, top * 1.35)
    _category_axis(ax, cats)
    ax.set_ylabel(label)


def _unimodal_note(row) -> str:
    share = row.get("unimodal_share") if hasattr(row, "get") else None
    return NA if share is None else f"{_percent(share)} unimodal"


def bn_minima(summary: pd.DataFrame, metrics: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """im2016 Fig 8 as numbers: left, the final training loss of every run (log axis) per model,
    with BN and without side by side, one colour per optimizer and one marker per init (a thin
    line spans an optimizer's inits: the spread the paper compares); a diverged run is a cross at
    the top edge. Middle, the mean number of local maxima per final → final line per model (the
    dashed line: one, a unimodal jump; the share of unimodal lines on the bars); right, the mean
    barrier width (the share of the line above half the barrier)."""
    finals = _finals(metrics)
    models = _models(finals, summary)
    cats = _categories(models)
    seeds = _inits(finals)
    markers = init_markers(seeds)
    colors = optimizer_colors(optimizer_order(finals["optimizer"], optimizers), optimizers)
    width = max(3.6, 0.95 * len(cats) + 1.2)
    fig = blank_figure((2 * width + 1.8, 7.6))
    grid = fig.add_gridspec(2, 2)
    ax = fig.add_subplot(grid[0, :])
    bumps, widths = fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    at = {m: (x, a) for x, a, m, _, _ in cats}
    crossed = False
    top = blended_transform_factory(ax.transData, ax.transAxes)
    jitter = {seed: (k - (len(seeds) - 1) / 2) * min(0.06, 0.18 / max(len(seeds), 1)) for k, seed in enumerate(seeds)}
    for model, runs in finals.groupby("model", sort=False):
        if model not in at:
            continue
        x0, _ = at[model]
        opts = optimizer_order(runs["optimizer"], optimizers)
        step = 0.7 / max(len(opts), 1)
        for k, opt in enumerate(opts):
            x = x0 + (k - (len(opts) - 1) / 2) * step
            mine = runs[runs["optimizer"] == opt]
            good = mine[~mine["bad"] & np.isfinite(_positive(mine["quality"]))]
            if len(good) > 1:
                ax.plot([x, x], [good["quality"].min(), good["quality"].max()], color=colors[opt], lw=1.0, zorder=2)
            for _, run in good.iterrows():  # the inits side by side, so that equal losses stay visible
                ax.plot(x + jitter.get(run["seed"], 0.0), run["quality"], ls="none", marker=markers.get(run["seed"]),
                        color=colors[opt], ms=6, mec="white", mew=0.5, zorder=3)
            for _ in range(int(mine["bad"].sum())):
                ax.plot(x, 0.97, transform=top, clip_on=False, zorder=4, **DIVERGED_MARKER)
                crossed = True
    limits = _log_limits(finals["quality"][~finals["bad"]]) if len(finals) else None
    if limits is not None:
        ax.set_yscale("log")
        ax.set_ylim(limits[0], limits[1] * 1.6)  # room for the crosses at the top edge
    else:
        mark_no_finite_values(ax, "diverged: no finite values" if len(finals) else "no runs in the table",
                              x=[c[0] for c in cats] or [0.0, 1.0])
    spreads = ({r["model"]: "spread " + _g(r.get("final_loss_spread"), inf="inf") for _, r in summary.iterrows()}
               if summary is not None and len(summary) and "model" in summary else {})
    _category_axis(ax, cats, spreads)
    ax.set_ylabel(f"final {QUALITY_SPLIT} loss (nats{', log' if limits is not None else ''})")
    ax.set_title("the minimum found: the final training loss of every run (dots of one colour: one optimizer's "
                 "inits; spread: max − min over the inits, mean over the optimizers)")
    _bars(bumps, cats, summary, "local_maxima_mean", label="local maxima per line (mean)", note=_unimodal_note,
          ref=1.0)
    bumps.set_title("final → final: local maxima per line (dashed: 1, a unimodal jump)")
    _bars(widths, cats, summary, "barrier_width_mean", label="barrier width (share of the line)")
    widths.set_title("final → final: barrier width (share of the line above half the barrier)")
    present = optimizer_order(finals["optimizer"], optimizers)
    flagged = set(finals.loc[finals["bad"].astype(bool), "optimizer"])
    sections = [("optimizer", color_entries({o: colors[o] for o in present}, flagged)),
                ("init", marker_entries(markers))]
    if crossed:
        sections.append(("", [("diverged (at the top edge)", DIVERGED_MARKER)]))
    legend_outside(ax, sections, fontsize=7)
    legend_outside(widths, [("bars", [("with BN", {"marker": "s", "ls": "none", "color": BN_COLORS[True], "ms": 8}),
                                      ("without BN", {"marker": "s", "ls": "none", "color": BN_COLORS[False],
                                                      "ms": 8, "mec": ".15"})])], fontsize=7)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- caption numbers


def _architectures(models: dict) -> str:
    return "; ".join(f"{_arch(a)} ({', '.join(_text(m) for m, _ in ms)})" for a, ms in models.items()) or NA


def _per_model(summary: pd.DataFrame, models: dict, describe) -> str:
    """``<model label>: describe(row)`` for every summary row (``models`` order) where ``describe``
    gives text, joined by "; " ("n/a" when none does)."""
    parts = [f"{_text(_model_label(a, m, bn, p))}: {text}" for a, m, bn, p, r in _summary_rows(summary, models)
             if (text := describe(r)) is not None]
    return "; ".join(parts) or NA


def _shape_text(r) -> str:
    """Spread, local maxima per line, barrier and width of one summary row."""
    return (f"spread {_spread(r.get('final_loss_spread'))}, "
            f"{_g(r.get('local_maxima_mean'))} local maxima per final→final line, "
            f"barrier {_g(r.get('barrier_mean'))}, width {_g(r.get('barrier_width_mean'))}")


def _known(text: str) -> str | None:
    return None if text == NA else text


def bn_lines_numbers(lines: pd.DataFrame, summary: pd.DataFrame, *,
                     optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """The numbers of :func:`bn_lines` (see the module docstring), each formatted text."""
    models = _models(lines, summary)
    ids = _line_ids(lines)
    inits = _inits(lines)
    bad = []
    for _, r in ids[ids["diverged"].astype(bool)].iterrows():
        what = (f"init → {r['end_optimizer']}" if r["kind"] == "init_final"
                else f"{_pair_label(r['start_optimizer'], r['end_optimizer'])}")
        bn = _flag(r.get("batch_norm"))
        bad.append(f"{_text(_model_label(r['architecture'], r['model'], bn, _paired(models, r['architecture'])))}, "
                   f"init {r['seed']}: {_text(what)}")
    splits = list(dict.fromkeys(lines["split"])) if "split" in lines and len(lines) else []
    return {
        "architectures": _architectures(models),
        "inits": ", ".join(str(s) for s in inits) or NA,
        "n_inits": str(len(inits)),
        "splits": ", ".join(_text(s) for s in splits) or NA,
        "lines": str(len(ids)),
        "init_final_lines": str(int((ids["kind"] == "init_final").sum())),
        "final_final_lines": str(int((ids["kind"] == "final_final").sum())),
        "models": _per_model(summary, models, _shape_text),
        "spread": _per_architecture(summary, "final_loss_spread", lambda v: _spread(v, unit="")),
        "local_maxima": _per_architecture(summary, "local_maxima_mean"),
        "unimodal": _per_architecture(summary, "unimodal_share", _percent),
        "barrier": _per_architecture(summary, "barrier_mean"),
        "barrier_width": _per_architecture(summary, "barrier_width_mean"),
        "local_maxima_gap": _gap(summary, "local_maxima_mean"),
        "n_diverged_lines": str(len(bad)),
        "diverged_lines": _listing(bad),
        "test_perplexity": _per_model(summary, models, lambda r: _known(_g(r.get("final_test_perplexity_mean")))),
    }


def _optimizer_lists(finals: pd.DataFrame, models: dict, optimizers) -> str:
    """``NIN, VGG: sgd, adam, adadelta; LSTM: sgd-lm, adam, adadelta`` (architectures with the same list joined)."""
    groups: dict = {}
    for arch in models:
        opts = optimizer_order(finals.loc[finals["architecture"] == arch, "optimizer"], optimizers) \
            if "architecture" in finals else []
        if opts:
            groups.setdefault(", ".join(_text(o) for o in opts), []).append(_arch(arch))
    return "; ".join(f"{', '.join(a)}: {o}" for o, a in groups.items()) or NA


def _loss_text(r) -> str:
    """Mean final training loss, mean and largest spread across inits of one summary row."""
    return (f"mean {_g(r.get('final_loss_mean'))}, spread {_spread(r.get('final_loss_spread'))} "
            f"(largest {_spread(r.get('final_loss_spread_max'), unit='')})")


def _perplexity(finals: pd.DataFrame, models: dict, optimizers) -> str:
    """Per model with a finite ``test_perplexity`` at its runs' last epoch: the mean over inits per optimizer."""
    if "test_perplexity" not in finals or not len(finals):
        return NA
    parts = []
    for arch, ms in models.items():
        for model, bn in ms:
            runs = finals[(finals["model"] == model) & ~finals["bad"].astype(bool)]
            ppl = runs.assign(p=pd.to_numeric(runs["test_perplexity"], errors="coerce"))
            ppl = ppl[np.isfinite(ppl["p"].to_numpy(dtype=float))]
            if not len(ppl):
                continue
            means = ppl.groupby("optimizer", sort=False)["p"].mean()
            text = ", ".join(f"{_text(o)} {_g(means[o])}" for o in optimizer_order(means.index, optimizers))
            parts.append(f"{_text(_model_label(arch, model, bn, _paired(models, arch)))}: {text}")
    return "; ".join(parts) or NA


def bn_minima_numbers(summary: pd.DataFrame, metrics: pd.DataFrame, *,
                      optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """The numbers of :func:`bn_minima` (see the module docstring), each formatted text."""
    finals = _finals(metrics)
    models = _models(finals, summary)
    inits = _inits(finals)
    bad = [_text(r) for r in finals.loc[finals["bad"].astype(bool), "run"]]
    return {
        "architectures": _architectures(models),
        "inits": ", ".join(str(s) for s in inits) or NA,
        "n_inits": str(len(inits)),
        "runs": str(int(finals["run"].nunique())),
        "optimizers": _optimizer_lists(finals, models, optimizers),
        "final_loss": _per_model(summary, models, _loss_text),
        "spread": _per_architecture(summary, "final_loss_spread", lambda v: _spread(v, unit="")),
        "spread_gap": _gap(summary, "final_loss_spread"),
        "local_maxima": _per_architecture(summary, "local_maxima_mean"),
        "unimodal": _per_architecture(summary, "unimodal_share", _percent),
        "barrier_width": _per_architecture(summary, "barrier_width_mean"),
        "width_gap": _gap(summary, "barrier_width_mean"),
        "test_acc": _per_model(summary, models, lambda r: _known(_percent(r.get("final_test_acc_mean")))),
        "test_perplexity": _perplexity(finals, models, optimizers),
        "n_diverged_runs": str(len(bad)),
        "diverged_runs": _listing(bad),
    }


CAPTION_NUMBERS = {name: globals()[f"{name}_numbers"] for name in FIGURE_FUNCTIONS}
