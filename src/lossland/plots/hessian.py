"""Hessian figures, from ``results/tables/hessian_density.parquet`` and
``hessian_summary.parquet``: spectral density at init vs saved epochs (colour = epoch),
sharpness per optimizer (colour = optimizer, marker = init) and the negative fraction and
extreme eigenvalues over training (colour = optimizer, line style = init)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from ._common import color_entries, curve_panels, final_rows, legend_outside, panel_grid, strip_figure
from .style import epoch_colors, optimizer_order

#: the figure functions (``lossland.plots.figure_function("hessian.<name>")``)
FIGURE_FUNCTIONS = ("hessian_density", "hessian_sharpness", "hessian_negative_fraction")
__all__ = ["FIGURE_FUNCTIONS", "HESSIAN_PANELS", "NEGATIVE_FRACTION_PANELS", *FIGURE_FUNCTIONS]

HESSIAN_PANELS = (("top_eigenvalue", r"top eigenvalue $\lambda_{\max}$"), ("trace", "trace of the Hessian"),
                  ("epsilon_sharpness", "ε-sharpness (%)"))
NEGATIVE_FRACTION_PANELS = (("negative_fraction", "fraction of negative eigenvalues"),
                            ("top_eigenvalue", r"top eigenvalue $\lambda_{\max}$"),
                            ("bottom_eigenvalue", r"most negative eigenvalue $\lambda_{\min}$"))


def _when(epoch) -> str:
    return "init" if epoch == 0 else f"epoch {epoch}"


def hessian_density(density: pd.DataFrame, floor: float = 1e-7, *, optimizers: Sequence[str] | None = None):
    """Hessian spectral density (SLQ) on a log scale, one panel per run, one line per epoch:
    the initial weights against the saved epochs (the review's "spectrum during training")."""
    df = density.assign(density=density["density"].clip(lower=floor))
    runs = list(dict.fromkeys(df.sort_values(["model", "optimizer", "seed"], kind="stable")["run"]))
    colors = epoch_colors(df["epoch"])
    fig, axes = panel_grid(len(runs), width=3.6, height=2.7)
    for ax, run in zip(axes, runs):
        part = df[df["run"] == run]
        for epoch, color in colors.items():
            sub = part[part["epoch"] == epoch].sort_values("eigenvalue")
            if len(sub):
                ax.plot(sub["eigenvalue"], sub["density"], color=color, lw=1.2)
        ax.set_yscale("log")
        ax.set_title(f"{part['model'].iloc[0]}, {part['optimizer'].iloc[0]}, init {part['seed'].iloc[0]}")
        ax.set_xlabel("Hessian eigenvalue")
        ax.set_ylabel("spectral density (log scale)")
    legend_outside(axes[min(len(axes), 3) - 1],
                   [("weights at", color_entries({_when(e): c for e, c in colors.items()}))])
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
    """Fraction of negative Hessian eigenvalues (SLQ estimate) and the extreme eigenvalues
    over training, one colour per optimizer, one line style per init, one row per model."""
    return curve_panels(summary, hue="optimizer", style="seed", group="model", panels=NEGATIVE_FRACTION_PANELS,
                        optimizers=optimizers)
