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


def learning_curves(metrics: pd.DataFrame, hue: str = "optimizer", style: str | None = "seed",
                    group: str | None = "model", panels=LEARNING_CURVE_PANELS):
    """Per-epoch curves: one row of ``panels`` (column, title) per ``group`` value, one colour per ``hue``."""
    sns.set_theme(style="whitegrid", context="paper")
    df = metrics.copy()
    diverged = _diverged_runs(df)
    if diverged:
        df[hue] = [f"{h} (diverged)" if r in diverged else h for h, r in zip(df[hue], df["run"])]
    groups = sorted(df[group].unique()) if group and group in df else [None]
    panels = [(c, t) for c, t in panels if c in df]
    fig, axes = plt.subplots(len(groups), len(panels), figsize=(3.2 * len(panels), 2.6 * len(groups)),
                             squeeze=False, sharex=True)
    palette = dict(zip(sorted(df[hue].unique()), sns.color_palette("tab10", df[hue].nunique())))
    for i, g in enumerate(groups):
        part = df if g is None else df[df[group] == g]
        for j, (col, title) in enumerate(panels):
            ax = axes[i][j]
            sns.lineplot(data=part, x="epoch", y=col, hue=hue, style=style if style and style in part else None,
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


def with_lr_label(metrics: pd.DataFrame, column: str = "label") -> pd.DataFrame:
    """A copy with ``column`` = "<optimizer> (lr <first lr of the run>)" for legends."""
    df = metrics.copy()
    first_lr = df["run"].map(df.sort_values("epoch").groupby("run")["lr"].first())
    df[column] = [f"{o} (lr {lr:g})" for o, lr in zip(df["optimizer"], first_lr)]
    return df


def final_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The last epoch of every run."""
    return metrics.sort_values("epoch").groupby("run", sort=False).tail(1)


def optimizer_accuracy(metrics: pd.DataFrame):
    """im2016 Fig 4: final train and test accuracy per optimizer, one colour per initialisation.

    One row of two panels per model; diverged runs are drawn as crosses at accuracy 0."""
    sns.set_theme(style="whitegrid", context="paper")
    last = final_rows(metrics).copy()
    last["init"] = [f"init {s}" for s in last["seed"]]
    order = list(dict.fromkeys(metrics["optimizer"]))
    models = list(dict.fromkeys(last["model"]))
    panels = [(c, t) for c, t in (("train_acc", "train accuracy"), ("test_acc", "test accuracy")) if c in last]
    fig, axes = plt.subplots(len(models), len(panels), figsize=(0.55 * len(order) * len(panels) + 2.5,
                                                              2.8 * len(models)), squeeze=False)
    for i, model in enumerate(models):
        part = last[last["model"] == model]
        for j, (col, title) in enumerate(panels):
            ax = axes[i][j]
            ok = part[~part["diverged"].astype(bool)]
            sns.stripplot(data=ok, x="optimizer", y=col, hue="init", order=order, ax=ax, size=7,
                          hue_order=sorted(last["init"].unique(), key=lambda s: int(s.split()[-1])),
                          jitter=0.15, legend=(i == 0 and j == len(panels) - 1))
            bad = part[part["diverged"].astype(bool)]
            for _, row in bad.iterrows():
                ax.plot(order.index(row["optimizer"]), 0.0, "x", color="black")
            ax.set_title(f"{model}: {title}")
            ax.set_xlabel("")
            ax.set_ylabel("")
            ax.tick_params(axis="x", rotation=45)
    if axes[0][-1].get_legend() is not None:
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def switch_pairs(metrics: pd.DataFrame, switches) -> list[tuple[str, str]]:
    """Unordered optimizer pairs of a switch study, in the order the config names them."""
    pairs: list[tuple[str, str]] = []
    for first, then in switches:
        key = tuple(sorted((first, then)))
        if key not in pairs:
            pairs.append(key)
    return pairs


def switching(metrics: pd.DataFrame, switches):
    """im2016 Fig 7, 12-15: for each model and optimizer pair, train and test accuracy and the
    distance from the initial weights per epoch, of the two optimizers' own runs and of
    every switch between them (``phase`` says which optimizer produced each epoch)."""
    sns.set_theme(style="whitegrid", context="paper")
    phases = metrics.groupby("run")["phase"].agg(lambda s: frozenset(s))
    rows = [(model, pair) for model in dict.fromkeys(metrics["model"]) for pair in switch_pairs(metrics, switches)]
    panels = [(c, t) for c, t in (("train_acc", "train accuracy"), ("test_acc", "test accuracy"),
                                  ("dist_from_init", "distance from init")) if c in metrics]
    fig, axes = plt.subplots(len(rows), len(panels), figsize=(3.4 * len(panels) + 1.8, 2.7 * len(rows)),
                             squeeze=False)
    for i, (model, pair) in enumerate(rows):
        runs = {r for r, ph in phases.items() if ph <= set(pair)}
        part = metrics[(metrics["model"] == model) & metrics["run"].isin(runs)]
        labels = list(dict.fromkeys(part.sort_values(["optimizer"])["optimizer"]))
        palette = dict(zip(labels, sns.color_palette("tab10", len(labels))))
        for j, (col, title) in enumerate(panels):
            ax = axes[i][j]
            sns.lineplot(data=part, x="epoch", y=col, hue="optimizer", hue_order=labels, palette=palette,
                         style="seed" if part["seed"].nunique() > 1 else None, units="run", estimator=None,
                         ax=ax, legend=(j == len(panels) - 1))
            ax.set_title(f"{model}, {pair[0]} <-> {pair[1]}: {title}")
            ax.set_xlabel("epoch")
            ax.set_ylabel("")
        if axes[i][-1].get_legend() is not None:
            sns.move_legend(axes[i][-1], "upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


RK2_PANELS = (("train_acc", "train accuracy"), ("train_loss", "train loss"), ("test_acc", "test accuracy"))


def rk2_training(metrics: pd.DataFrame):
    """im2016 Fig 9: training curves of RK2 optimizers beside SGD, "SGD x2" and Adam."""
    return learning_curves(with_lr_label(metrics), hue="label", style="seed", group="model", panels=RK2_PANELS)


def exotic_inits(metrics: pd.DataFrame):
    """im2016 Fig 11: learning curves of models from exotic initialisations (one colour per
    model, i.e. init and BN on/off), one row per optimizer."""
    return learning_curves(metrics, hue="model", style="seed", group="optimizer", panels=RK2_PANELS)


def _epoch_label(df: pd.DataFrame) -> pd.Series:
    return pd.Series([("init" if e == 0 else f"epoch {e}") for e in df["epoch"]], index=df.index)


def hessian_density(density: pd.DataFrame, floor: float = 1e-7):
    """Hessian spectral density (SLQ) on a log scale, one panel per run, one line per epoch:
    the initial weights against the saved epochs (the review's "spectrum during training")."""
    sns.set_theme(style="whitegrid", context="paper")
    df = density.copy()
    df["when"] = _epoch_label(df)
    df["density"] = df["density"].clip(lower=floor)
    runs = list(dict.fromkeys(df.sort_values(["model", "optimizer", "seed"])["run"]))
    cols = min(3, len(runs))
    rows = (len(runs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.7 * rows), squeeze=False)
    order = sorted(df["when"].unique(), key=lambda w: -1 if w == "init" else int(w.split()[-1]))
    palette = dict(zip(order, sns.color_palette("viridis", len(order))))
    for ax, run in zip(axes.flat, runs):
        part = df[df["run"] == run]
        for when in order:
            sub = part[part["when"] == when].sort_values("eigenvalue")
            if len(sub):
                ax.plot(sub["eigenvalue"], sub["density"], color=palette[when], label=when, lw=1.2)
        ax.set_yscale("log")
        ax.set_title(f"{part['model'].iloc[0]}, {part['optimizer'].iloc[0]}, init {part['seed'].iloc[0]}")
        ax.set_xlabel("eigenvalue")
    for ax in list(axes.flat)[len(runs):]:
        ax.set_visible(False)
    axes.flat[0].set_ylabel("density")
    axes.flat[0].legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


HESSIAN_PANELS = (("top_eigenvalue", "top eigenvalue"), ("trace", "trace"),
                  ("epsilon_sharpness", "ε-sharpness (%)"))


def hessian_sharpness(summary: pd.DataFrame):
    """Top eigenvalue, trace and ε-sharpness per optimizer at the last analysed epoch,
    one colour per initialisation; the shared initial weights as a dashed line."""
    sns.set_theme(style="whitegrid", context="paper")
    df = summary.copy()
    last = df[df["epoch"] == df.groupby("run")["epoch"].transform("max")].copy()
    last["init"] = [f"init {s}" for s in last["seed"]]
    inits = df[df["epoch"] == 0]
    panels = [(c, t) for c, t in HESSIAN_PANELS if c in df and df[c].notna().any()]
    order = list(dict.fromkeys(last["optimizer"]))
    width = max(3.0, 0.55 * len(order) + 1.2)
    fig, axes = plt.subplots(1, len(panels), figsize=(width * len(panels) + 1.5, 3.2), squeeze=False)
    for ax, (col, title) in zip(axes[0], panels):
        sns.stripplot(data=last, x="optimizer", y=col, hue="init", order=order, ax=ax, size=7, jitter=0.15,
                      legend=(col == panels[-1][0]))
        for v in inits.groupby("seed")[col].first():
            ax.axhline(v, ls="--", lw=0.8, color="grey")
        ax.set_title(title)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(axis="x", rotation=45)
    if axes[0][-1].get_legend() is not None:
        sns.move_legend(axes[0][-1], "upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.suptitle(f"epoch {int(last['epoch'].max())}; dashed: the initial weights", fontsize=9)
    fig.tight_layout()
    return fig


def hessian_negative_fraction(summary: pd.DataFrame):
    """Fraction of negative Hessian eigenvalues (SLQ estimate) and the top eigenvalue
    over training, one colour per optimizer, one line style per init."""
    sns.set_theme(style="whitegrid", context="paper")
    panels = (("negative_fraction", "fraction of negative eigenvalues"), ("top_eigenvalue", "top eigenvalue"),
              ("bottom_eigenvalue", "most negative eigenvalue"))
    return learning_curves(summary, hue="optimizer", style="seed", group="model", panels=panels)
