"""dinh2017 figures, from ``results/tables/reparam_sweep.parquet``, ``reparam_input.parquet``
and ``reparam_input_examples.parquet``: every sharpness measure against the scale ``α`` of a
function-preserving reparametrisation, with the predicted growth, beside the change of the
outputs (which stays at float rounding)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ._common import any_finite, describe, finite, finite_range, legend_outside, mark_no_finite_values, significant
from .style import new_figure, pair_colors

#: the figure functions (``lossland.plots.figure_function("reparam.<name>")``)
FIGURE_FUNCTIONS = ("alpha_scale_sharpness", "weight_norm_and_input")
__all__ = ["CAPTION_NUMBERS", "FIGURE_FUNCTIONS", "SCALE_PANELS", "orders_of_magnitude", *FIGURE_FUNCTIONS]

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


#: where :func:`_note` puts its lines: (x in axes coordinates, horizontal alignment)
NOTE_PLACES = {"left": (0.03, "left"), "center": (0.5, "center"), "right": (0.97, "right")}
#: font size of the in-panel notes and of the legends
NOTE_SIZE = 8


def _note(ax, lines: Sequence[str | tuple[str, str]], where: str = "left") -> None:
    """Lines of text in the upper left (``where``: or centre, or right) of the panel, where the
    curves are not; a ``(text, colour)`` line in its series' colour."""
    x, ha = NOTE_PLACES[where]
    for k, line in enumerate(lines):
        text, color = line if isinstance(line, tuple) else (line, "0.15")
        ax.text(x, 0.97 - 0.07 * k, text, transform=ax.transAxes, va="top", ha=ha, fontsize=NOTE_SIZE,
                color=color, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})


def _measure_panel(ax, series, colors, column: str, label: str, predicted: str | None, title: str,
                   where: str = "left") -> None:
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
        _note(ax, notes, where)
    if diverged and not drawn:
        mark_no_finite_values(ax, x=pd.concat([p["alpha"] for _, p in diverged]))


def _identity_note(ax, what: str = "α") -> None:
    """Why the output-change curves break at ``what`` = 1: the identity changes nothing (0 on a log axis)."""
    ax.text(0.5, 0.03, f"{what} = 1 is the identity (0): not drawn", transform=ax.transAxes, ha="center",
            va="bottom", fontsize=NOTE_SIZE, color="0.3")


def _output_panel(ax, series, colors) -> None:
    notes = []
    for name, part in series:
        rel = finite(part["rel_output_diff"].where(part["rel_output_diff"] > 0))
        ax.plot(part["alpha"], rel, "o-", color=colors[name], ms=3.5, lw=1.3)
        notes.append((describe(finite_range(part["rel_output_diff"])[1], "max {:.1e}"), colors[name]))
    ax.axhline(FLOAT32_EPS, color="0.3", ls=":", lw=1.0)
    ax.text(0.98, FLOAT32_EPS, "float32 ε", transform=ax.get_yaxis_transform(), ha="right", va="top",
            fontsize=NOTE_SIZE)  # under the line: the curves lie above it
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(1e-9, 1e-3)
    ax.set_xlabel("α (scale of the reparametrisation)")
    ax.set_ylabel("max |f_α(x) − f(x)| / max |f(x)| (test set)")
    ax.set_title("change of the outputs (float rounding)", fontsize=9)
    _identity_note(ax)
    if any(any_finite(p["alpha"], p["rel_output_diff"]) for _, p in series):
        _note(ax, notes)
    else:
        mark_no_finite_values(ax, x=pd.concat([p["alpha"] for _, p in series]))


def _test_loss_panel(ax, series, colors) -> None:
    for k, (name, part) in enumerate(series):  # larger markers first: equal losses stay visible
        ax.plot(part["alpha"], finite(part["test_loss"]), "o-", color=colors[name], ms=3.5 + 2 * (len(series) - 1 - k),
                lw=1.3)
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
    fig, axes = new_figure(2, 3, figsize=(12.0, 7.4))
    panels = list(axes.flat)
    for ax, panel in zip(panels, SCALE_PANELS):
        _measure_panel(ax, series, colors, *panel, where="center")  # V-shaped curves: the top centre is free
    if series:
        _output_panel(panels[4], series, colors)
        _test_loss_panel(panels[5], series, colors)
    legend_outside(panels[2], [
        ("reparametrisation (scaled blocks)", [(n, {"color": colors[n], "lw": 1.5, "marker": "o", "ms": 3.5})
                                               for n, _ in series]),
        ("", [("measured", {"color": "0.3", "marker": "o", "ms": 3.5, "lw": 1.3}),
              ("predicted from the α = 1 blocks", {"color": "0.3", "ls": "--", "lw": 1.0})]),
    ], fontsize=NOTE_SIZE)
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
    ax.set_title("input gradient: dashed = ‖∇_x f‖ / c;\nsquare: standardised, triangle: whitened input", fontsize=9)
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
    ax.set_title("per example: raw against standardised (square)\nand whitened (triangle) input", fontsize=9)
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
    fig, axes = new_figure(2, 3, figsize=(12.0, 7.4))
    a = list(axes.flat)
    for ax, panel in zip(a[:2], SCALE_PANELS[:2]):
        _measure_panel(ax, series, colors, *panel, where="right")  # falling curves: the top right is free
        ax.set_xlabel("α (v → α·v in w = g·v/‖v‖)")
        ax.set_title("weight norm: " + panel[3].replace(" (", "\n("), fontsize=9)
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
    a[2].set_title("change of the outputs (float rounding):\nsolid = weight norm, dotted = input scale", fontsize=9)
    _identity_note(a[2], "c")
    _note(a[2], notes)
    _gradient_panel(a[3], inputs, run_colors)
    _examples_panel(a[4], examples, inputs, run_colors)
    _ratio_panel(a[5], inputs, runs, run_colors)
    a[5].set_ylabel("‖∇_u g‖ / ‖∇_x f‖ over the examples (min to max)")
    a[5].set_xlabel("input reparametrisation")
    legend_outside(a[2], [("run", [(r, {"color": run_colors[r], "lw": 3}) for r in runs]),
                          ("", [("measured", {"color": "0.3", "marker": "o", "ms": 3.5, "lw": 1.3}),
                                ("predicted", {"color": "0.3", "ls": "--", "lw": 1.0})])], fontsize=NOTE_SIZE)
    fig.suptitle("Reparametrisations (Dinh et al. 2017 §5): weight normalisation and the input space change "
                 "the geometry, not the function", fontsize=10)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- caption numbers


def _num(value, sig: int = 2) -> str:
    """``value`` to ``sig`` significant digits (:func:`._common.significant`)."""
    return significant(value, sig)


def _sci(value) -> str:
    """A small number in scientific notation (``3.3e-7``), 0 as ``0``; "n/a" for NaN."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "n/a"
    if not math.isfinite(v):
        return "n/a"
    if v == 0:
        return "0"
    mantissa, exponent = f"{v:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def orders_of_magnitude(values) -> float:
    """``log10(max |v| / min |v|)`` over the finite, non-zero ``values``; NaN without any."""
    return float(np.log10(_spread(values)))


def _span(values, fmt, unit: str = "") -> str:
    """``lo to hi`` of the finite ``values`` as ``fmt`` writes them (one value when they agree);
    "n/a" without any."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return "n/a"
    lo, hi = fmt(v.min()), fmt(v.max())
    return (lo if lo == hi else f"{lo} to {hi}") + unit


def _orders_text(parts: Sequence[pd.DataFrame], column: str) -> str:
    """How many orders of magnitude ``column`` moves over each sweep, as the range over the sweeps."""
    return _span([orders_of_magnitude(p[column]) if column in p else math.nan for p in parts], lambda v: f"{v:.1f}")


def _ratio_text(parts: Sequence[pd.DataFrame], measured: str, predicted: str) -> str:
    """The range of ``measured / predicted`` over every sweep and α (both finite, predicted non-zero)."""
    ratios = []
    for p in parts:
        if measured in p and predicted in p:
            m, q = p[measured].to_numpy(float), p[predicted].to_numpy(float)
            ok = np.isfinite(m) & np.isfinite(q) & (q != 0)
            ratios += list(m[ok] / q[ok])
    return _span(ratios, _num3)


def _trim(text: str) -> str:
    """``0.0010`` → ``0.001``, ``1.0e-6`` → ``1e-6``, ``6.0`` → ``6``."""
    mantissa, e, exponent = text.partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return mantissa + e + exponent


def _alpha_numbers(alphas, prefix: str = "alpha") -> dict[str, str]:
    """The swept scales: smallest, largest, decades between them and how many."""
    a = np.asarray(alphas, float)
    a = a[np.isfinite(a) & (a > 0)]
    lo, hi = (a.min(), a.max()) if len(a) else (math.nan, math.nan)
    return {f"{prefix}_min": _trim(_num(lo)), f"{prefix}_max": _trim(_num(hi)),
            f"{prefix}_decades": _trim(_num(np.log10(hi / lo), 2)) if len(a) else "n/a",
            f"{prefix}_count": str(len(set(a)))}


def _max_text(values) -> str:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return _sci(v.max()) if len(v) else "n/a"


def _test_loss_change(parts: Sequence[pd.DataFrame]) -> str:
    """The largest change of the test loss over a sweep, relative to its mean magnitude."""
    changes = []
    for p in parts:
        v = p["test_loss"].to_numpy(float) if "test_loss" in p else np.array([])
        v = v[np.isfinite(v)]
        if len(v) and np.abs(v).mean() > 0:
            changes.append((v.max() - v.min()) / np.abs(v).mean())
    return _max_text(changes)


def alpha_scale_sharpness_numbers(sweep: pd.DataFrame, *, optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """The α-scale figure's numbers over its sweeps (α-scale and BatchNorm scale): the α range
    (``alpha_min``, ``alpha_max``, ``alpha_decades``, ``alpha_count``), how many orders of
    magnitude each measure moves over a sweep (``top_orders``, ``trace_orders``,
    ``epsilon_orders``, ``ball_orders``: the range over the sweeps), the measured trace over its
    prediction (``trace_vs_predicted``) and λ_max over its interlacing bound (``top_vs_bound``),
    the largest relative output change (``output``) and test-loss change (``test_loss``),
    ``sweeps`` (how many) and ``series`` (their names, as in the legend)."""
    part = sweep[sweep["transform"].isin(["alpha_scale", "bn_scale"])]
    series = _series(part)
    parts = [p for _, p in series]
    return {**_alpha_numbers(part["alpha"]),
            "top_orders": _orders_text(parts, "top_eigenvalue"), "trace_orders": _orders_text(parts, "trace"),
            "epsilon_orders": _orders_text(parts, "epsilon_sharpness"),
            "ball_orders": _orders_text(parts, "ball_sharpness"),
            "trace_vs_predicted": _ratio_text(parts, "trace", "predicted_trace"),
            "top_vs_bound": _ratio_text(parts, "top_eigenvalue", "top_eigenvalue_bound"),
            "output": _max_text(part["rel_output_diff"]) if "rel_output_diff" in part else "n/a",
            "test_loss": _test_loss_change(parts),
            "sweeps": str(len(series)), "series": "; ".join(name for name, _ in series) or "none"}


def _run_label(df: pd.DataFrame) -> dict[str, str]:
    """``{run: its model}``, or the run's name where a model has several runs."""
    firsts = df.groupby("run", sort=False)["model"].first()
    return (firsts.astype(str).to_dict() if firsts.nunique() == len(firsts)
            else {r: str(r) for r in firsts.index})


def _per_run(inputs: pd.DataFrame, transform: str, text) -> str:
    """``relu-mlp 0.98 to 1.00, nin ...`` of the rows of ``transform``; "n/a" without any."""
    rows = inputs[inputs["transform"] == transform]
    if not len(rows):
        return "n/a"
    labels = _run_label(inputs)
    return ", ".join(f"{labels[run]} {text(r.iloc[0])}" for run, r in rows.groupby("run", sort=False))


def weight_norm_and_input_numbers(sweep: pd.DataFrame, inputs: pd.DataFrame, examples: pd.DataFrame, *,
                                  optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """The reparametrisation figure's numbers. Weight norm (``v → αv``): the α range
    (``alpha_min``, ``alpha_max``, ``alpha_decades``, ``alpha_count``), the orders of magnitude
    of λ_max, |trace| and ε-sharpness (``wn_top_orders``, ``wn_trace_orders``,
    ``wn_epsilon_orders``), at how many α the trace is negative (``wn_trace_negative``, e.g.
    "3 of 5") and the largest relative output change (``wn_output``). Inputs: the input scale
    range (``c_min``, ``c_max``, ``c_decades``, ``c_count``), the orders of magnitude of the mean
    input-gradient norm over it (``grad_orders``) and its largest relative deviation from
    ‖∇_x f‖/c (``grad_vs_predicted``), the largest relative output change of any input
    transform (``input_output``), and per run the range of the per-example gradient ratio and
    the Spearman rank correlation of standardisation and whitening (``standardize_ratio``,
    ``standardize_rho``, ``whiten_ratio``, ``whiten_rho``; "n/a" when not run)."""
    wn = sweep[sweep["transform"] == "weight_norm"]
    parts = [p for _, p in _series(wn)]
    trace = wn["trace"].to_numpy(float) if "trace" in wn else np.array([])
    finite_trace = trace[np.isfinite(trace)]
    scale = inputs[inputs["transform"] == "scale"]
    deviation = []
    for _, p in scale.groupby("run", sort=False):
        m, q = p["mean_grad_norm"].to_numpy(float), p["predicted_mean_grad_norm"].to_numpy(float)
        ok = np.isfinite(m) & np.isfinite(q) & (q != 0)
        deviation += list(np.abs(m[ok] / q[ok] - 1))
    moved = inputs.loc[inputs["transform"] != "identity", "rel_output_diff"]
    out = {**_alpha_numbers(wn["alpha"]),
           "wn_top_orders": _orders_text(parts, "top_eigenvalue"), "wn_trace_orders": _orders_text(parts, "trace"),
           "wn_epsilon_orders": _orders_text(parts, "epsilon_sharpness"),
           "wn_trace_negative": f"{int((finite_trace < 0).sum())} of {len(finite_trace)}" if len(finite_trace)
           else "n/a",
           "wn_output": _max_text(wn["rel_output_diff"]),
           **_alpha_numbers(scale["alpha"], "c"),
           "grad_orders": _orders_text([p for _, p in scale.groupby("run", sort=False)], "mean_grad_norm"),
           "grad_vs_predicted": _max_text(deviation), "input_output": _max_text(moved)}
    for transform in ("standardize", "whiten"):
        out[f"{transform}_ratio"] = _per_run(inputs, transform,
                                             lambda r: _span([r["ratio_min"], r["ratio_max"]], _num3))
        out[f"{transform}_rho"] = _per_run(inputs, transform, lambda r: _fixed2(r["rank_correlation"]))
    return out


def _num3(value) -> str:
    return _num(value, 3)


def _fixed2(value) -> str:
    return describe(value, "{:.2f}", none="n/a")


#: ``{figure function: caption-numbers function}`` (:func:`lossland.plots.caption_numbers`)
CAPTION_NUMBERS = {"alpha_scale_sharpness": alpha_scale_sharpness_numbers,
                   "weight_norm_and_input": weight_norm_and_input_numbers}
