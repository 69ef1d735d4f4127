"""zhang2018 figures, from ``results/tables/entropy_solutions.parquet`` and
``deep_linear_solutions.parquet``:

* :func:`entropy_by_dynamics` -- Fig 1: the entropy of the minima found by SGD, Langevin
  dynamics with matched noise and gradient descent;
* :func:`entropy_test_error` -- Fig 2: entropy against test error;
* :func:`deep_linear_balanced` / :func:`deep_linear_unbalanced` -- Figs 3 and 4: entropy,
  −log trace and ‖W2W1‖² against the exact generalisation error of deep linear students, with
  eq. 34's line;
* :func:`trace_entropy` -- Fig 5: −log trace against entropy.

The caption numbers (``CAPTION_NUMBERS``) are computed from the same tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..pipeline.families.entropy import (
    DYNAMICS,
    DYNAMICS_LABELS,
    bootstrap_correlation,
    dynamics_summary,
    linear_fit,
    paired_difference,
    pearson,
    spearman,
    usable,
)
from ._common import legend_outside, mark_no_finite_values, significant
from .style import new_figure, optimizer_colors

FIGURE_FUNCTIONS = ("entropy_by_dynamics", "entropy_test_error", "deep_linear_balanced", "deep_linear_unbalanced",
                    "trace_entropy")
__all__ = ["CAPTION_NUMBERS", "FIGURE_FUNCTIONS", *FIGURE_FUNCTIONS]

INIT_COLORS = {"balanced": "#1b9e77", "unbalanced": "#7570b3"}
INIT_LABELS = {"balanced": "balanced init", "unbalanced": "unbalanced init"}


def dynamics_colors(optimizers: Sequence[str] | None = None) -> dict[str, str]:
    """SGD in the colour of the config's ``sgd`` optimizer; Langevin and GD in colours no optimizer has."""
    return optimizer_colors(DYNAMICS, list(optimizers or []) or ["sgd"])


def _methods(solutions: pd.DataFrame) -> list[str]:
    return [m for m in DYNAMICS if m in set(solutions["method"])]


def _interval(mean, low, high) -> str:
    return f"{significant(mean)} [{significant(low)}, {significant(high)}]"


def entropy_by_dynamics(solutions: pd.DataFrame, optimizers: Sequence[str] | None = None):
    """Left: every solution's entropy per dynamics (dots) with the mean and its 95 % bootstrap
    interval; right: the entropies' histograms."""
    colors = dynamics_colors(optimizers)
    methods = _methods(solutions)
    summary = dynamics_summary(solutions).set_index("method")
    fig, axes = new_figure(1, 2, figsize=(11.5, 4.4))
    ax, hist = axes[0, 0], axes[0, 1]
    rng = np.random.default_rng(0)
    good = usable(solutions)
    for i, m in enumerate(methods):
        values = good.loc[good["method"] == m, "entropy"].to_numpy(float)
        ax.plot(i + rng.uniform(-0.18, 0.18, values.size), values, "o", color=colors[m], ms=4, alpha=0.6)
        r = summary.loc[m]
        if np.isfinite(r["low"]):
            ax.errorbar([i + 0.3], [r["mean_entropy"]], yerr=[[r["mean_entropy"] - r["low"]],
                                                              [r["high"] - r["mean_entropy"]]],
                        fmt="D", color="black", ms=6, capsize=4, lw=1.4)
        if values.size:
            hist.hist(values, bins=min(20, max(5, values.size // 2)), histtype="step", lw=1.8, color=colors[m],
                      label=DYNAMICS_LABELS[m])
    ax.set_xticks(range(len(methods)))
    ax.set_xticklabels([DYNAMICS_LABELS[m].replace(" (", "\n(") for m in methods])
    ax.set_xlim(-0.6, len(methods) - 0.4)
    ax.set_xlabel("dynamics (then steepest descent to the tolerance)")
    ax.set_ylabel("entropy S = −(1/2P) Σ log λ (cleaned spectrum)")
    ax.set_title("every solution (dots); mean and 95 % bootstrap interval (black)", fontsize=9)
    hist.set_xlabel("entropy S")
    hist.set_ylabel("solutions")
    hist.set_title("histogram per dynamics", fontsize=9)
    if good.empty:
        mark_no_finite_values(ax)
    legend_outside(hist, [("dynamics", [(DYNAMICS_LABELS[m], {"color": colors[m], "lw": 1.8}) for m in methods])],
                   fontsize=8)
    diff = paired_difference(solutions)
    fig.suptitle("zhang2018 Fig 1: the entropy of the minima found by each dynamics"
                 + (f" (SGD − Langevin: {_interval(*diff)})" if np.isfinite(diff[0]) else ""), fontsize=10)
    fig.tight_layout()
    return fig


def entropy_by_dynamics_numbers(solutions: pd.DataFrame, optimizers: Sequence[str] | None = None) -> dict[str, str]:
    summary = dynamics_summary(solutions)
    parts = [f"{DYNAMICS_LABELS[r.method]}: {_interval(r.mean_entropy, r.low, r.high)} over {r.solutions} solutions "
             f"({r.converged} reached the tolerance; {significant(100 * r.mean_negative_fraction)} % negative "
             f"eigenvalues on average, mean test error {significant(100 * r.mean_test_error)} %)"
             for r in summary.itertuples()]
    diff = paired_difference(solutions)
    return {"dynamics": "; ".join(parts), "difference": _interval(*diff),
            "kept": significant(usable(solutions)["kept"].mean())}


def _scatter_fit(ax, x, y, color, label=None, fit: bool = True, **kw) -> None:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ax.xaxis.set_major_locator(MaxNLocator(6))
    ax.plot(x, y, "o", color=color, ms=4.5, alpha=0.75, label=label, **kw)
    if fit:
        slope, intercept = linear_fit(x, y)
        if np.isfinite(slope):
            xs = np.linspace(np.nanmin(x), np.nanmax(x), 2)
            ax.plot(xs, slope * xs + intercept, color=color, lw=1.2, ls="--")


def _correlation_text(x, y) -> str:
    return f"Pearson {significant(pearson(x, y), 2)}, Spearman {significant(spearman(x, y), 2)}"


def _grouped_scatter(good: pd.DataFrame, by: str, groups: Sequence[tuple[str, str, str]], x: str, y: str, *,
                     y_scale: float, labels: tuple[str, str], title: str, legend: str, suptitle: str):
    """One panel: ``y`` (×``y_scale``) against ``x``, one colour per group ``(value of by, label, colour)``,
    each with its least-squares line (dashed) and its correlations in the legend."""
    fig, axes = new_figure(1, 1, figsize=(8.6, 4.8))
    ax = axes[0, 0]
    entries = []
    for value, label, color in groups:
        part = good[good[by] == value]
        _scatter_fit(ax, part[x], y_scale * part[y], color)
        entries.append((f"{label}: {_correlation_text(part[x], part[y])}",
                        {"color": color, "marker": "o", "ls": "--", "lw": 1.2}))
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title, fontsize=9)
    if good.empty:
        mark_no_finite_values(ax)
    legend_outside(ax, [(legend, entries)], fontsize=8)
    fig.suptitle(suptitle, fontsize=10)
    fig.tight_layout()
    return fig


def entropy_test_error(solutions: pd.DataFrame, optimizers: Sequence[str] | None = None):
    """Every solution's test error against its entropy, one colour per dynamics, with each
    dynamics' least-squares line (dashed); the correlations in the legend."""
    colors = dynamics_colors(optimizers)
    good = usable(solutions)
    groups = [(m, DYNAMICS_LABELS[m], colors[m]) for m in _methods(good)]
    inits = int(good["member"].nunique()) if len(good) else 0
    return _grouped_scatter(good, "method", groups, "entropy", "test_error", y_scale=100.0,
                            labels=("entropy S = −(1/2P) Σ log λ", "test error (%)"),
                            title=f"{len(good)} solutions on {inits} inits", legend="dynamics (dashed: least squares)",
                            suptitle="zhang2018 Fig 2: entropy against test error (wider minima, lower error?)")


def entropy_test_error_numbers(solutions: pd.DataFrame, optimizers: Sequence[str] | None = None) -> dict[str, str]:
    good = usable(solutions)
    parts = []
    for m in _methods(good):
        part = good[good["method"] == m]
        rho, low, high = bootstrap_correlation(part["entropy"], part["test_error"])
        parts.append(f"{DYNAMICS_LABELS[m]}: Spearman {_interval(rho, low, high)}, Pearson "
                     f"{significant(pearson(part['entropy'], part['test_error']))} over {len(part)} solutions "
                     f"(test error {significant(100 * part['test_error'].min())} to "
                     f"{significant(100 * part['test_error'].max())} %)")
    return {"correlations": "; ".join(parts), "train_error": significant(100 * good["train_error"].max())
            if len(good) else "n/a"}


#: the panels of Figs 3 and 4: (column, axis label)
DEEP_LINEAR_PANELS = (("entropy", "entropy S (top N eigenvalues)"), ("neg_log_trace", "−log trace of the Hessian"),
                      ("weight_norm", "‖W2 W1‖²"))


def _deep_linear(solutions: pd.DataFrame, init: str, number: int):
    part = usable(solutions[solutions["init"] == init])
    fig, axes = new_figure(1, 3, figsize=(13.5, 4.3))
    color = INIT_COLORS[init]
    for ax, (column, label) in zip(axes[0], DEEP_LINEAR_PANELS):
        if part.empty:
            mark_no_finite_values(ax)
            continue
        line = column == "weight_norm"
        _scatter_fit(ax, part[column], part["gen_error"], color, fit=not line)
        if line:  # eq. 34: E_g = |W|² + c, slope 1
            intercept = float((part["predicted_gen_error"] - part["weight_norm"]).mean())
            xs = np.linspace(part[column].min(), part[column].max(), 2)
            ax.plot(xs, xs + intercept, color="black", lw=1.4, label="eq. 34: ‖W2W1‖² + c")
            ax.legend(fontsize=8, loc="upper left")
        ax.set_xlabel(label)
        ax.set_ylabel("exact generalisation error ‖W2W1 − w̄‖² + σ²")
        ax.set_title(_correlation_text(part[column], part["gen_error"]), fontsize=9)
    fig.suptitle(f"zhang2018 Fig {number}: deep linear students from {INIT_LABELS[init]}s "
                 f"({len(part)} students; dashed: least squares)", fontsize=10)
    fig.tight_layout()
    return fig


def deep_linear_balanced(solutions: pd.DataFrame, optimizers: Sequence[str] | None = None):
    """Fig 3: entropy, −log trace and ‖W2W1‖² against the exact generalisation error, balanced
    inits; eq. 34's line (slope 1) on the norm panel."""
    return _deep_linear(solutions, "balanced", 3)


def deep_linear_unbalanced(solutions: pd.DataFrame, optimizers: Sequence[str] | None = None):
    """Fig 4: the same from unbalanced inits (``W1 ×a``, ``W2 ÷a``)."""
    return _deep_linear(solutions, "unbalanced", 4)


def _deep_linear_numbers(solutions: pd.DataFrame, init: str) -> dict[str, str]:
    part = usable(solutions[solutions["init"] == init])
    out = {"students": str(len(part)), "converged": str(int(part["converged"].sum())) if len(part) else "0"}
    for column, _ in DEEP_LINEAR_PANELS:
        rho, low, high = bootstrap_correlation(part[column], part["gen_error"]) if len(part) else (np.nan,) * 3
        out[column] = (f"Spearman {_interval(rho, low, high)}, Pearson "
                       f"{significant(pearson(part[column], part['gen_error']))}")
    slope, _ = linear_fit(part["weight_norm"], part["gen_error"]) if len(part) else (np.nan, np.nan)
    error = ((part["gen_error"] - part["predicted_gen_error"]).abs() / part["gen_error"]) if len(part) else pd.Series()
    out["slope"] = significant(slope)
    out["prediction_error"] = significant(100 * error.median()) if len(error) else "n/a"
    out["imbalance"] = significant(part["invariant_norm"].median()) if len(part) else "n/a"
    return out


def deep_linear_balanced_numbers(solutions: pd.DataFrame, optimizers: Sequence[str] | None = None):
    return _deep_linear_numbers(solutions, "balanced")


def deep_linear_unbalanced_numbers(solutions: pd.DataFrame, optimizers: Sequence[str] | None = None):
    return _deep_linear_numbers(solutions, "unbalanced")


def trace_entropy(solutions: pd.DataFrame, optimizers: Sequence[str] | None = None):
    """Fig 5: −log trace against entropy for every student, one colour per kind of init."""
    good = usable(solutions)
    groups = [(i, INIT_LABELS[i], INIT_COLORS[i]) for i in INIT_COLORS if i in set(good["init"])]
    return _grouped_scatter(good, "init", groups, "entropy", "neg_log_trace", y_scale=1.0,
                            labels=("entropy S (top N eigenvalues)", "−log trace of the Hessian"),
                            title=f"{len(good)} deep linear students", legend="students (dashed: least squares)",
                            suptitle="zhang2018 Fig 5: −log trace tracks the entropy")


def trace_entropy_numbers(solutions: pd.DataFrame, optimizers: Sequence[str] | None = None) -> dict[str, str]:
    good = usable(solutions)
    parts = [f"{INIT_LABELS[i]}: Pearson {significant(pearson(g['entropy'], g['neg_log_trace']))}"
             for i, g in good.groupby("init", sort=False)]
    return {"correlations": "; ".join(parts) or "n/a"}


CAPTION_NUMBERS = {"entropy_by_dynamics": entropy_by_dynamics_numbers,
                   "entropy_test_error": entropy_test_error_numbers,
                   "deep_linear_balanced": deep_linear_balanced_numbers,
                   "deep_linear_unbalanced": deep_linear_unbalanced_numbers,
                   "trace_entropy": trace_entropy_numbers}
