"""dinh2017 figures, from ``results/tables/reparam_sweep.parquet``, ``reparam_input.parquet``
and ``reparam_input_examples.parquet``: every sharpness measure against the scale ``α`` of a
function-preserving reparametrisation, with the predicted growth, beside the change of the
outputs (which stays at float rounding)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ._common import any_finite, describe, finite, finite_range, legend_outside, mark_no_finite_values
from .style import new_figure, pair_colors

#: the figure functions (``lossland.plots.figure_function("reparam.<name>")``)
FIGURE_FUNCTIONS = ("alpha_scale_sharpness", "weight_norm_and_input")
__all__ = ["FIGURE_FUNCTIONS", "SCALE_PANELS", *FIGURE_FUNCTIONS]

TRANSFORM_LABELS = {"alpha_scale": "α-scale", "bn_scale": "BN scale", "weight_norm": "weight norm, v → αv"}
#: (column, axis label, prediction column or None, title) of the sharpness panels
SCALE_PANELS = (("top_eigenvalue", r"top Hessian eigenvalue $\lambda_{\max}$", "top_eigenvalue_bound",
                 "spectral norm (dashed: interlacing bound)"),
                ("trace", "Hessian trace", "predicted_trace", "trace (dashed: sum of the scaled blocks)"),
                ("epsilon_sharpness", "Keskar ε-sharpness (%, box)", None, "Keskar et al.'s ε-sharpness"),
                ("ball_sharpness", "Dinh ε-ball sharpness (%)", None, "Dinh et al.'s Euclidean-ball sharpness"))
#: float32's machine epsilon: the relative rounding of one operation
FLOAT32_EPS = float(np.finfo(np.float32).eps)


def _series_label(row) -> str:
    return f"{row['model']}: {TRANSFORM_LABELS.get(row['transform'], row['transform'])} ({row['scaled']})"


def _series(sweep: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    keys = ["run", "transform", "layers"]
    out = []
    for _, part in sweep.groupby(keys, sort=False):
        out.append((_series_label(part.iloc[0]), part.sort_values("alpha")))
    return out


def _spread(values) -> float:
    """Largest over smallest magnitude (as the ``reparam_spread`` table)."""
    v = np.abs(np.asarray(values, float))
    v = v[np.isfinite(v) & (v > 0)]
    return float(v.max() / v.min()) if len(v) else float("nan")


def _diverged(part: pd.DataFrame) -> bool:
    """Whether a series' model has no finite loss (a diverged run's weights)."""
    return "loss" in part and not any_finite(part["loss"])


def _log_curve(ax, x, y, color, style: str = "o-", **kw) -> bool:
    """``|y|`` on a log axis (non-finite values left out); negative values as open markers.
    Returns whether any was negative."""
    x, y = np.asarray(x, float), finite(y)
    ax.plot(x, np.where(y != 0, np.abs(y), np.nan), style, color=color, **kw)
    neg = y < 0
    if neg.any() and "o" in style:
        ax.plot(x[neg], -y[neg], "o", ms=7, mfc="white", mec=color, mew=1.3, ls="none")
    return bool(neg.any())


def _note(ax, lines: Sequence[str | tuple[str, str]]) -> None:
    """Lines of text in the upper left corner; a ``(text, colour)`` line in its series' colour."""
    for k, line in enumerate(lines):
        text, color = line if isinstance(line, tuple) else (line, "0.15")
        ax.text(0.03, 0.97 - 0.065 * k, text, transform=ax.transAxes, va="top", ha="left", fontsize=7,
                color=color, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})


def _measure_panel(ax, series, colors, column: str, label: str, predicted: str | None, title: str) -> None:
    notes, negative, drawn, diverged = [], False, False, []
    for name, part in series:
        if column not in part:
            continue
        if not any_finite(part["alpha"], part[column]):
            if part[column].notna().any() or _diverged(part):  # all NaN but converged: not measured
                diverged.append((name, part))
            continue
        negative |= _log_curve(ax, part["alpha"], part[column], colors[name], ms=3.5, lw=1.3)
        if predicted and predicted in part:
            _log_curve(ax, part["alpha"], part[predicted], colors[name], "--", lw=1.0)
        notes.append((f"max/min ×{describe(_spread(part[column]))}", colors[name]))
        drawn = True
    if drawn:
        notes += [("diverged: no finite values", colors[name]) for name, _ in diverged]
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("α (scale of the reparametrisation)")
    ax.set_ylabel(f"|{label}|" if negative else label)
    ax.set_title(title, fontsize=9)
    if negative:
        notes.append("open circles: negative values")
    if notes:
        _note(ax, notes)
    if diverged and not drawn:
        mark_no_finite_values(ax, x=pd.concat([p["alpha"] for _, p in diverged]))


def _output_panel(ax, series, colors) -> None:
    notes = []
    for name, part in series:
        rel = finite(part["rel_output_diff"].where(part["rel_output_diff"] > 0))
        ax.plot(part["alpha"], rel, "o-", color=colors[name], ms=3.5, lw=1.3)
        notes.append((describe(finite_range(part["rel_output_diff"])[1], "max {:.1e}"), colors[name]))
    ax.axhline(FLOAT32_EPS, color="0.3", ls=":", lw=1.0)
    ax.text(0.98, FLOAT32_EPS, "float32 ε", transform=ax.get_yaxis_transform(), ha="right", va="bottom", fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-9, 1e-3)
    ax.set_xlabel("α (scale of the reparametrisation)")
    ax.set_ylabel("max |f_α(x) − f(x)| / max |f(x)| (test set)")
    ax.set_title("change of the outputs (float rounding)", fontsize=9)
    if any(any_finite(p["alpha"], p["rel_output_diff"]) for _, p in series):
        _note(ax, notes)
    else:
        mark_no_finite_values(ax, x=pd.concat([p["alpha"] for _, p in series]))


def _test_loss_panel(ax, series, colors) -> None:
    for name, part in series:
        ax.plot(part["alpha"], finite(part["test_loss"]), "o-", color=colors[name], ms=3.5, lw=1.3)
    lo, hi = finite_range(pd.concat([p["test_loss"] for _, p in series]))
    if np.isfinite(lo):
        pad = max(0.05 * abs(hi), hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xscale("log")
    ax.set_xlabel("α (scale of the reparametrisation)")
    ax.set_ylabel("test loss")
    ax.set_title("test loss: unchanged", fontsize=9)
    ax.ticklabel_format(axis="y", useOffset=False)
    if not np.isfinite(lo):
        mark_no_finite_values(ax, x=pd.concat([p["alpha"] for _, p in series]))


def alpha_scale_sharpness(sweep: pd.DataFrame, *, optimizers: Sequence[str] | None = None):
    """dinh2017 §4: the top eigenvalue, trace, Keskar and ball sharpness of α-scaled
    (ReLU pairs) and BatchNorm-scaled models against α, with the predictions (dashed:
    the interlacing lower bound of λ_max and the exact trace from the α = 1 blocks), beside
    the relative change of the outputs and the test loss, which do not move."""
    part = sweep[sweep["transform"].isin(["alpha_scale", "bn_scale"])]
    series = _series(part)
    colors = pair_colors([name for name, _ in series])
    fig, axes = new_figure(2, 3, figsize=(13.5, 7.4))
    panels = list(axes.flat)
    for ax, panel in zip(panels, SCALE_PANELS):
        _measure_panel(ax, series, colors, *panel)
    if series:
        _output_panel(panels[4], series, colors)
        _test_loss_panel(panels[5], series, colors)
    legend_outside(panels[2], [
        ("reparametrisation (scaled blocks)", [(n, {"color": colors[n], "lw": 1.5, "marker": "o", "ms": 3.5})
                                               for n, _ in series]),
        ("", [("measured", {"color": "0.3", "marker": "o", "ms": 3.5, "lw": 1.3}),
              ("predicted from the α = 1 blocks", {"color": "0.3", "ls": "--", "lw": 1.0})]),
    ], fontsize=7)
    fig.suptitle("Sharp minima can generalize (Dinh et al. 2017 §4): the same function at every α, "
                 "its sharpness without bound", fontsize=10)
    fig.tight_layout()
    return fig


def _gradient_panel(ax, inputs: pd.DataFrame, colors) -> None:
    for run, part in inputs.groupby("run", sort=False):
        scale = part[part["transform"] == "scale"].sort_values("alpha")
        ax.plot(scale["alpha"], finite(scale["mean_grad_norm"]), "o-", color=colors[run], ms=3.5, lw=1.3)
        ax.plot(scale["alpha"], finite(scale["predicted_mean_grad_norm"]), "--", color=colors[run], lw=1.0)
        for transform, marker in (("standardize", "s"), ("whiten", "^")):
            row = part[part["transform"] == transform]
            if len(row):
                ax.plot([1.0], finite(row["mean_grad_norm"]), marker, color=colors[run], ms=7, mfc="none", mew=1.5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("c in u = c·x (input scale)")
    ax.set_ylabel("mean ‖∇_u g(u)‖ over the test set")
    ax.set_title("input gradient: dashed = ‖∇_x f‖ / c;\nsquare: standardised, triangle: whitened input", fontsize=8)
    if not any_finite(inputs["mean_grad_norm"]):
        mark_no_finite_values(ax, x=inputs.loc[inputs["transform"] == "scale", "alpha"])


def _examples_panel(ax, examples: pd.DataFrame, inputs: pd.DataFrame, colors) -> None:
    notes, drawn = [], False
    for run, part in examples.groupby("run", sort=False):
        base = part[part["transform"] == "identity"].set_index("example")["grad_norm"]
        for transform, marker in (("standardize", "s"), ("whiten", "^")):
            other = part[part["transform"] == transform].set_index("example")["grad_norm"]
            if len(other):
                bx, oy = finite(base.loc[other.index]), finite(other)
                ok = (bx > 0) & (oy > 0)  # finite and positive: log axes
                ax.scatter(bx[ok], oy[ok], s=6, marker=marker, color=colors[run], alpha=0.5, linewidths=0)
                drawn |= bool(ok.any())
                rho = inputs[(inputs["run"] == run) & (inputs["transform"] == transform)]["rank_correlation"]
                notes.append((f"{part['model'].iloc[0]} {transform}: Spearman {describe(rho.iloc[0], '{:.2f}')}",
                              colors[run]))
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        _plain_log_ticks(axis)
    ax.set_xlabel("‖∇_x f(x)‖ per test example (raw input)")
    ax.set_ylabel("‖∇_u g(u)‖, same example")
    ax.set_title("per example: raw against standardised (square)\nand whitened (triangle) input", fontsize=8)
    if notes:
        _note(ax, notes)
    if not drawn:
        mark_no_finite_values(ax)


def _plain_log_ticks(axis) -> None:
    """Ticks at 1, 2 and 5 per decade, labelled as plain numbers (short log ranges)."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _ratio_panel(ax, inputs: pd.DataFrame, runs: list[str], colors) -> None:
    names = [t for t in ("standardize", "whiten") if t in set(inputs["transform"])]
    width = 0.5 / max(len(runs), 1)
    for k, run in enumerate(runs):
        part = inputs[inputs["run"] == run].set_index("transform")
        for i, t in enumerate(names):
            if t in part.index:
                x = i + (k - (len(runs) - 1) / 2) * width
                ax.plot([x, x], finite([part.loc[t, "ratio_min"], part.loc[t, "ratio_max"]]), "-_",
                        color=colors[run], lw=3, ms=10, mew=2)
    ax.axhline(1.0, color="0.3", ls=":", lw=1.0)
    ax.set_xticks(range(len(names)), names)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_yscale("log")
    _plain_log_ticks(ax.yaxis)
    ax.set_title("input-gradient ratio over the examples", fontsize=9)
    shown = inputs[inputs["transform"].isin(names)]
    if not any_finite(shown["ratio_min"]) and not any_finite(shown["ratio_max"]):
        mark_no_finite_values(ax)


def weight_norm_and_input(sweep: pd.DataFrame, inputs: pd.DataFrame, examples: pd.DataFrame, *,
                          optimizers: Sequence[str] | None = None):
    """dinh2017 §5: a weight-normalised model with ``v`` scaled by α (top eigenvalue and trace
    against α with the predictions) and the same prediction function on reparametrised
    inputs (the input-gradient norm moves with the input scale and changes its ranking of
    the examples under whitening), beside the relative change of the outputs."""
    wn = sweep[sweep["transform"] == "weight_norm"]
    series = _series(wn)
    runs = list(dict.fromkeys([*wn["run"], *inputs["run"]]))
    run_colors = pair_colors(runs)
    colors = {name: run_colors[part["run"].iloc[0]] for name, part in series}
    fig, axes = new_figure(2, 3, figsize=(13.5, 7.4))
    a = list(axes.flat)
    for ax, panel in zip(a[:2], SCALE_PANELS[:2]):
        _measure_panel(ax, series, colors, *panel)
        ax.set_xlabel("α (v → α·v in w = g·v/‖v‖)")
        ax.set_title(f"weight norm: {panel[3]}", fontsize=9)
    notes = []
    for name, part in series:
        a[2].plot(part["alpha"], finite(part["rel_output_diff"].where(part["rel_output_diff"] > 0)), "o-",
                  color=colors[name], ms=3.5, lw=1.3)
        notes.append((f"{part['model'].iloc[0]} weight norm: "
                      + describe(finite_range(part["rel_output_diff"])[1], "max {:.1e}"), colors[name]))
    for run, part in inputs.groupby("run", sort=False):
        scale = part[part["transform"] == "scale"].sort_values("alpha")
        a[2].plot(scale["alpha"], finite(scale["rel_output_diff"].where(scale["rel_output_diff"] > 0)), "s:",
                  color=run_colors[run], ms=3.5)
        moved = part.loc[part["transform"] != "identity", "rel_output_diff"]  # the identity's is 0 by definition
        notes.append((f"{part['model'].iloc[0]} inputs (all): " + describe(finite_range(moved)[1], "max {:.1e}"),
                      run_colors[run]))
    if not any(any_finite(p["alpha"], p["rel_output_diff"]) for p in [*(p for _, p in series),
                                                                       inputs[inputs["transform"] == "scale"]]):
        mark_no_finite_values(a[2], x=pd.concat([wn["alpha"], inputs["alpha"]]))
    a[2].axhline(FLOAT32_EPS, color="0.3", ls=":", lw=1.0)
    a[2].set_xscale("log")
    a[2].set_yscale("log")
    a[2].set_ylim(1e-9, 1e-2)
    a[2].set_xlabel("α (weights) or c (inputs)")
    a[2].set_ylabel("max |Δf| / max |f| (test set)")
    a[2].set_title("output change: solid = weight norm, dotted = input scale", fontsize=8)
    _note(a[2], notes)
    _gradient_panel(a[3], inputs, run_colors)
    _examples_panel(a[4], examples, inputs, run_colors)
    _ratio_panel(a[5], inputs, runs, run_colors)
    a[5].set_ylabel("‖∇_u g‖ / ‖∇_x f‖ over the examples (min to max)")
    a[5].set_xlabel("input reparametrisation")
    legend_outside(a[2], [("run", [(r, {"color": run_colors[r], "lw": 3}) for r in runs]),
                          ("", [("measured", {"color": "0.3", "marker": "o", "ms": 3.5, "lw": 1.3}),
                                ("predicted", {"color": "0.3", "ls": "--", "lw": 1.0})])], fontsize=7)
    fig.suptitle("Reparametrisations (Dinh et al. 2017 §5): weight normalisation and the input space change "
                 "the geometry, not the function", fontsize=10)
    fig.tight_layout()
    return fig
