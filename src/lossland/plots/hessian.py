"""Hessian figures, from ``results/tables/hessian_density.parquet`` and
``hessian_summary.parquet``: spectral density at init vs saved epochs (colour = epoch),
sharpness per optimizer (colour = optimizer, marker = init) and the negative fraction and
extreme eigenvalues over training (colour = optimizer, line style = init).

Each figure's caption numbers (``CAPTION_NUMBERS``) come from the same table: per run (its
optimizer, with the model and the init when there are several) the values at the first
analysed epoch (the initial weights) and at the last one, as formatted text."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import PercentFormatter

from ._common import (
    any_finite,
    color_entries,
    curve_panels,
    final_rows,
    finite_range,
    legend_outside,
    mark_no_finite_values,
    panel_grid,
    strip_figure,
)
from ._common import significant as _num
from .style import epoch_colors, optimizer_order

#: the figure functions (``lossland.plots.figure_function("hessian.<name>")``)
FIGURE_FUNCTIONS = ("hessian_density", "hessian_sharpness", "hessian_negative_fraction")
__all__ = ["CAPTION_NUMBERS", "FIGURE_FUNCTIONS", "HESSIAN_PANELS", "NEAR_ZERO", "NEGATIVE_FRACTION_PANELS",
           "spectrum_stats", *FIGURE_FUNCTIONS]

HESSIAN_PANELS = (("top_eigenvalue", r"top eigenvalue $\lambda_{\max}$"), ("trace", "trace of the Hessian"),
                  ("epsilon_sharpness", "ε-sharpness (%)"))
NEGATIVE_FRACTION_PANELS = (("negative_fraction", "negative eigenvalues (% of all)"),
                            ("top_eigenvalue", r"top eigenvalue $\lambda_{\max}$"),
                            ("bottom_eigenvalue", r"most negative eigenvalue $\lambda_{\min}$"))
#: "near zero" in the density's caption: |λ| at most this share of the spectrum's top eigenvalue
NEAR_ZERO = 0.05
#: the marker of each epoch's top eigenvalue on the density panels
TOP_MARKER = {"marker": "v", "ms": 6, "ls": "none", "mec": "white", "mew": 0.5}


def _when(epoch) -> str:
    return "init" if epoch == 0 else f"epoch {epoch}"


def _run_order(df: pd.DataFrame, optimizers: Sequence[str] | None) -> list[str]:
    """The runs by model, then optimizer in config order, then init."""
    rank = {o: i for i, o in enumerate(optimizer_order(df["optimizer"], optimizers))}
    firsts = df.groupby("run", sort=False)[["model", "optimizer", "seed"]].first()
    return sorted(firsts.index, key=lambda r: (str(firsts.loc[r, "model"]), rank[firsts.loc[r, "optimizer"]],
                                               firsts.loc[r, "seed"], str(r)))


def spectrum_stats(eigenvalue, density, near_zero: float = NEAR_ZERO) -> tuple[float, float, float]:
    """``(top, mean, share near zero)`` of one spectral density on its grid: ``top`` is its
    rightmost peak (the largest Ritz value of SLQ, the centre of its Gaussian: a parabola
    through the log density at the peak), ``mean`` ``∫λρ / ∫ρ`` (the trace over the number
    of parameters), the share the mass within ``|λ| ≤ near_zero·top``. NaN where the density
    has no finite, positive values (a diverged run)."""
    x, y = np.asarray(eigenvalue, float), np.asarray(density, float)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], np.clip(y[ok], 0.0, None)
    area = float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2)) if len(x) > 1 else 0.0
    if not area > 0:
        return math.nan, math.nan, math.nan
    up = np.r_[True, y[1:] > y[:-1]]          # above the left neighbour (the first point: always)
    down = np.r_[y[:-1] >= y[1:], True]        # not below the right neighbour (the last: always)
    k = int(np.flatnonzero(up & down & (y > 0))[-1])
    top = float(x[k])
    if 0 < k < len(x) - 1 and (y[k - 1:k + 2] > 0).all():
        ly = np.log(y[k - 1:k + 2])
        curve = ly[0] - 2 * ly[1] + ly[2]
        if curve < 0:  # a proper maximum: the vertex of the parabola (exact for an isolated Gaussian)
            step = (x[k + 1] - x[k - 1]) / 2
            top += float(np.clip(0.5 * (ly[0] - ly[2]) / curve, -1, 1)) * step
    mean = float(np.sum(np.diff(x) * (x[1:] * y[1:] + x[:-1] * y[:-1]) / 2)) / area
    inside = np.abs(x) <= near_zero * abs(top)
    near = float(np.sum(np.diff(x) * (np.where(inside, y, 0)[1:] + np.where(inside, y, 0)[:-1]) / 2)) / area
    return top, mean, min(max(near, 0.0), 1.0)


def hessian_density(density: pd.DataFrame, floor: float = 1e-7, *, optimizers: Sequence[str] | None = None):
    """Hessian spectral density (SLQ) on a log scale, one panel per run, one line per epoch:
    the initial weights against the saved epochs (the review's "spectrum during training");
    a triangle above each epoch's top eigenvalue (the rightmost peak), values below ``floor``
    not drawn."""
    df = density.assign(density=density["density"].where(density["density"] >= floor))
    runs = _run_order(df, optimizers)
    colors = epoch_colors(df["epoch"])
    fig, axes = panel_grid(len(runs), width=3.6, height=2.7)
    for ax, run in zip(axes, runs):
        part = density[density["run"] == run]
        for epoch, color in colors.items():
            sub = part[part["epoch"] == epoch].sort_values("eigenvalue")
            if len(sub):
                ax.plot(sub["eigenvalue"], sub["density"].where(sub["density"] >= floor), color=color, lw=1.2)
                top = spectrum_stats(sub["eigenvalue"], sub["density"])[0]
                if np.isfinite(top):
                    ax.plot([top], [0.95], color=color, transform=ax.get_xaxis_transform(), zorder=5,
                            **TOP_MARKER)
        ax.set_yscale("log")
        ax.set_ylim(bottom=floor)
        lo, hi = finite_range(part["eigenvalue"])
        if np.isfinite(lo) and hi > lo:  # the whole grid, also where the density is below the floor
            ax.set_xlim(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))
        ax.set_title(f"{part['model'].iloc[0]}, {part['optimizer'].iloc[0]}, init {part['seed'].iloc[0]}")
        ax.set_xlabel("Hessian eigenvalue")
        ax.set_ylabel("spectral density (log scale)")
        if not any_finite(part["eigenvalue"], part["density"]):
            mark_no_finite_values(ax, x=part["eigenvalue"])
    legend_outside(axes[min(len(axes), 3) - 1],
                   [("weights at", color_entries({_when(e): c for e, c in colors.items()})),
                    ("", [(r"top eigenvalue $\lambda_{\max}$", {**TOP_MARKER, "color": "0.3"})])])
    fig.tight_layout()
    return fig


def hessian_sharpness(summary: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """Top eigenvalue, trace and ε-sharpness per optimizer (colour) and init (marker) at the
    last analysed epoch, one row per model; the shared initial weights as a dashed line."""
    last = final_rows(summary)
    panels = [(c, t) for c, t in HESSIAN_PANELS if c in summary and summary[c].notna().any()]
    fig = strip_figure(last, panels, order=optimizer_order(last["optimizer"], optimizers), optimizers=optimizers,
                       title="{model}: {what}", refs=summary[summary["epoch"] == 0],
                       ref_label="the initial weights")
    fig.suptitle(f"at epoch {int(last['epoch'].max())} (the last analysed); dashed: the initial weights",
                 fontsize=9)
    fig.tight_layout()
    return fig


def hessian_negative_fraction(summary: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """Fraction of negative Hessian eigenvalues (SLQ estimate, in percent) and the extreme
    eigenvalues over training, one colour per optimizer, one line style per init, one row
    per model; a dot at every analysed epoch."""
    fig = curve_panels(summary, hue="optimizer", style="seed", group="model", panels=NEGATIVE_FRACTION_PANELS,
                       optimizers=optimizers)
    fraction = NEGATIVE_FRACTION_PANELS[0][1]
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_marker() in (None, "", "None", "none"):
                line.set_marker("o")
                line.set_markersize(3.5)
        if ax.get_ylabel() == fraction:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    return fig


# --------------------------------------------------------------------------- caption numbers


def _percent(share) -> str:
    """A share (0.0123) as a percentage (``1.23 %``): 2 significant digits below 1 %, the
    distance to 100 % kept above 99 %, else one decimal; "n/a" for NaN."""
    try:
        p = 100 * float(share)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(p):
        return "n/a"
    if p == 0 or p == 100:
        return f"{p:.0f} %"
    if abs(p) < 1:
        return f"{_num(p, 2)} %"
    if 99 < p < 100:
        decimals = max(-math.floor(math.log10(100 - p)), 1)
        return f"{p:.{decimals}f} %"
    return f"{p:.1f} %"


def _pct(value) -> str:
    """A value already in percent (ε-sharpness): ``20.5 %``."""
    text = _num(value)
    return text if text == "n/a" else f"{text} %"


def _labels(df: pd.DataFrame, runs: Sequence[str]) -> dict[str, str]:
    """``{run: label}``: its optimizer, prefixed by the model when there are several, with
    ``init <seed>`` when there are several inits; the run's name where that is not unique."""
    firsts = df.groupby("run", sort=False)[["model", "optimizer", "seed"]].first()
    many_models, many_seeds = firsts["model"].nunique() > 1, firsts["seed"].nunique() > 1
    out = {}
    for run in runs:
        row = firsts.loc[run]
        out[run] = ((f"{row['model']} " if many_models else "") + str(row["optimizer"])
                    + (f" init {row['seed']}" if many_seeds else ""))
    if len(set(out.values())) < len(out):
        out = {r: str(r) for r in runs}
    return out


def _listing(items: Sequence[tuple[str, str]]) -> str:
    """``sgd 82.2, adam 72.0``; "n/a" when there is nothing."""
    return ", ".join(f"{label} {text}" for label, text in items) or "n/a"


def _change(first: str, last: str, same: bool) -> str:
    return first if same else f"{first} → {last}"


def _epoch_text(epoch) -> str:
    return "n/a" if epoch is None or not np.isfinite(epoch) else ("the initial weights" if epoch == 0
                                                                    else f"epoch {int(epoch)}")


def _epoch_span(df: pd.DataFrame) -> dict[str, str]:
    epochs = pd.to_numeric(df["epoch"], errors="coerce").dropna() if "epoch" in df else pd.Series(dtype=float)
    first, last = (epochs.min(), epochs.max()) if len(epochs) else (math.nan, math.nan)
    return {"first_epoch": _epoch_text(first), "last_epoch": _epoch_text(last),
            "epochs": ", ".join(str(int(e)) for e in sorted(epochs.unique())) or "n/a"}


def _first_last(df: pd.DataFrame, column: str, fmt, optimizers: Sequence[str] | None) -> str:
    """Per run: ``column`` at its first analysed epoch → at its last (one value for one epoch)."""
    if column not in df or not len(df):
        return "n/a"
    runs = _run_order(df, optimizers)
    labels = _labels(df, runs)
    items = []
    for run in runs:
        rows = df[df["run"] == run].sort_values("epoch", kind="stable")
        items.append((labels[run], _change(fmt(rows[column].iloc[0]), fmt(rows[column].iloc[-1]),
                                           rows["epoch"].iloc[0] == rows["epoch"].iloc[-1])))
    return _listing(items)


def hessian_density_numbers(density: pd.DataFrame, floor: float = 1e-7, *,
                            optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """The density figure's numbers, per run from its first to its last analysed epoch
    (:func:`spectrum_stats`): ``top`` (the rightmost peak, λ_max), ``mean`` (the mean
    eigenvalue, trace / parameters), ``near_zero`` (the share of the mass within
    ``|λ| ≤ near_zero_def`` of that λ_max); and ``first_epoch``, ``last_epoch``, ``epochs``."""
    rows = []
    for (run, epoch), part in density.groupby(["run", "epoch"], sort=False):
        top, mean, near = spectrum_stats(part["eigenvalue"], part["density"])
        first = part.iloc[0]
        rows.append({"run": run, "model": first["model"], "optimizer": first["optimizer"], "seed": first["seed"],
                     "epoch": epoch, "top": top, "mean": mean, "near": near})
    stats = pd.DataFrame(rows, columns=["run", "model", "optimizer", "seed", "epoch", "top", "mean", "near"])
    return {"top": _first_last(stats, "top", _num, optimizers),
            "mean": _first_last(stats, "mean", lambda v: _num(v, 2), optimizers),
            "near_zero": _first_last(stats, "near", _percent, optimizers),
            "near_zero_def": f"{NEAR_ZERO * 100:g} %", **_epoch_span(density)}


def _init_values(summary: pd.DataFrame, column: str, fmt) -> str:
    """The initial weights' ``column`` (epoch 0), once per model and init; "n/a" without epoch 0."""
    init = summary[summary["epoch"] == 0] if column in summary else summary.iloc[:0]
    groups = init.groupby(["model", "seed"], sort=True)[column].first() if len(init) else pd.Series(dtype=float)
    if not len(groups):
        return "n/a"
    if len(groups) == 1:
        return fmt(groups.iloc[0])
    many_models = init["model"].nunique() > 1
    return _listing([((f"{m} " if many_models else "") + f"init {s}", fmt(v)) for (m, s), v in groups.items()])


def _last_values(summary: pd.DataFrame, column: str, fmt, optimizers, stderr: str | None = None) -> str:
    if column not in summary or not len(summary):
        return "n/a"
    last = final_rows(summary)
    runs = _run_order(last, optimizers)
    labels = _labels(last, runs)
    items = []
    for run in runs:
        row = last[last["run"] == run].iloc[0]
        text = fmt(row[column])
        if stderr and stderr in row and np.isfinite(float(row[stderr])) and text != "n/a":
            text += f" ± {_num(row[stderr], 2)}"
        items.append((labels[run], text))
    return _listing(items)


def hessian_sharpness_numbers(summary: pd.DataFrame, *, optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """The sharpness figure's numbers at each run's last analysed epoch (``epoch``): ``top``,
    ``trace`` (± its standard error), ``epsilon`` (ε-sharpness in %), and the same of the
    initial weights (``top_init``, ``trace_init``, ``epsilon_init``; "n/a" without epoch 0)."""
    last = final_rows(summary) if len(summary) else summary
    epochs = pd.to_numeric(last["epoch"], errors="coerce").dropna() if "epoch" in last else pd.Series(dtype=float)
    lo, hi = (int(epochs.min()), int(epochs.max())) if len(epochs) else (None, None)
    epoch = "n/a" if lo is None else (str(hi) if lo == hi else f"{lo} to {hi}")
    return {"epoch": epoch,
            "top": _last_values(summary, "top_eigenvalue", _num, optimizers),
            "trace": _last_values(summary, "trace", _num, optimizers, stderr="trace_stderr"),
            "epsilon": _last_values(summary, "epsilon_sharpness", _pct, optimizers),
            "top_init": _init_values(summary, "top_eigenvalue", _num),
            "trace_init": _init_values(summary, "trace", _num),
            "epsilon_init": _init_values(summary, "epsilon_sharpness", _pct)}


def hessian_negative_fraction_numbers(summary: pd.DataFrame, *,
                                      optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """The negative-fraction figure's numbers, per run from its first analysed epoch to its
    last: ``negative`` (the share of negative eigenvalues, %), ``bottom`` (λ_min), ``top``
    (λ_max); and ``first_epoch``, ``last_epoch``, ``epochs``."""
    return {"negative": _first_last(summary, "negative_fraction", _percent, optimizers),
            "bottom": _first_last(summary, "bottom_eigenvalue", _num, optimizers),
            "top": _first_last(summary, "top_eigenvalue", _num, optimizers), **_epoch_span(summary)}


#: ``{figure function: caption-numbers function}`` (:func:`lossland.plots.caption_numbers`)
CAPTION_NUMBERS = {"hessian_density": hessian_density_numbers, "hessian_sharpness": hessian_sharpness_numbers,
                   "hessian_negative_fraction": hessian_negative_fraction_numbers}
