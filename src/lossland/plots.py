"""Figures from tables (never from models): one function per kind of figure.

Every function takes long-form DataFrames as written by the workflow and
returns a :class:`matplotlib.figure.Figure`; :func:`save_figure` writes it
atomically. Diverged runs are drawn up to their last finite epoch and marked
with a cross and "(diverged)" in the legend.
"""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .io import atomic_path  # noqa: E402

LEARNING_CURVE_PANELS = (
    ("train_loss", "train loss"),
    ("test_loss", "test loss"),
    ("train_acc", "train accuracy"),
    ("test_acc", "test accuracy"),
)


def save_figure(fig, path: str | os.PathLike, dpi: int = 130) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight", format=os.path.splitext(str(path))[1][1:] or "png")
    plt.close(fig)


def _diverged_runs(df: pd.DataFrame) -> set[str]:
    return set(df.loc[df["diverged"].astype(bool), "run"]) if "diverged" in df else set()


def learning_curves(metrics: pd.DataFrame, hue: str = "optimizer", style: str = "seed",
                    group: str | None = "model"):
    """Loss and accuracy per epoch: one row of panels per ``group`` value, one colour per ``hue``."""
    sns.set_theme(style="whitegrid", context="paper")
    df = metrics.copy()
    diverged = _diverged_runs(df)
    if diverged:
        df[hue] = [f"{h} (diverged)" if r in diverged else h for h, r in zip(df[hue], df["run"])]
    groups = sorted(df[group].unique()) if group and group in df else [None]
    panels = [(c, t) for c, t in LEARNING_CURVE_PANELS if c in df]
    fig, axes = plt.subplots(len(groups), len(panels), figsize=(3.2 * len(panels), 2.6 * len(groups)),
                             squeeze=False, sharex=True)
    palette = dict(zip(sorted(df[hue].unique()), sns.color_palette("tab10", df[hue].nunique())))
    for i, g in enumerate(groups):
        part = df if g is None else df[df[group] == g]
        for j, (col, title) in enumerate(panels):
            ax = axes[i][j]
            sns.lineplot(data=part, x="epoch", y=col, hue=hue, style=style if style in part else None,
                         palette=palette, ax=ax, legend=(i == 0 and j == len(panels) - 1),
                         estimator=None, units="run")
            for run in diverged & set(part["run"]):
                last = part[part["run"] == run].iloc[-1]
                ax.plot(last["epoch"], 0 if pd.isna(last[col]) else last[col], "x", color="black")
            ax.set_title(title if g is None else f"{g}: {title}")
            ax.set_xlabel("epoch")
            ax.set_ylabel("")
    handles = axes[0][-1].get_legend()
    if handles is not None:
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    return fig
