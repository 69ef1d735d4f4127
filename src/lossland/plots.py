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


def switch_pairs(switches) -> list[tuple[str, str]]:
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
    rows = [(model, pair) for model in dict.fromkeys(metrics["model"]) for pair in switch_pairs(switches)]
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


# --------------------------------------------------------------------------- loss landscapes

import numpy as np  # noqa: E402

SPLIT_STYLES = {"train": "-", "val": "-.", "test": "--"}


def _finite_log(values):
    v = np.asarray(values, dtype=float)
    return np.log10(np.clip(np.where(np.isfinite(v), v, np.nan), 1e-8, None))


def _line_panels(df: pd.DataFrame, x: str, hue: str, title: str, *, log_loss: bool = False,
                 axes=None, xlabel: str | None = None, vlines=(0.0, 1.0)):
    """Loss and accuracy against ``x``, one colour per ``hue``, solid train / dashed test."""
    own = axes is None
    if own:
        fig, axes = plt.subplots(1, 2, figsize=(8.5, 3.0), squeeze=False)
        axes = axes[0]
    labels = list(dict.fromkeys(df[hue]))
    palette = dict(zip(labels, sns.color_palette("tab10", len(labels))))
    for (h, split, *_), part in df.groupby([hue, "split", "start", "end"], sort=False):
        part = part.sort_values(x)
        for ax, col in zip(axes, ("loss", "accuracy")):
            ax.plot(part[x], part[col], SPLIT_STYLES.get(split, ":"), color=palette[h], lw=1.3,
                    label=f"{h} ({split})")
    for ax, col in zip(axes, ("loss", "accuracy")):
        for v in vlines:
            ax.axvline(v, color="grey", lw=0.6, ls=":")
        ax.set_xlabel(xlabel or x)
        ax.set_title(f"{title}: {col}")
        if col == "loss" and log_loss:
            ax.set_yscale("log")
    axes[-1].legend(frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    if own:
        fig.tight_layout()
        return fig
    return None


def init_final_two_inits(lines: pd.DataFrame, optimizer: str = "sgd"):
    """im2016 Fig 2: loss and accuracy along init -> final (α ∈ [0, 1]) of one optimizer's
    runs from each initialisation (every optimizer when ``optimizer`` has no runs)."""
    sns.set_theme(style="whitegrid", context="paper")
    df = lines[(lines["alpha"] >= 0) & (lines["alpha"] <= 1 + 1e-9)].copy()
    if optimizer in set(df["optimizer"]):
        df = df[df["optimizer"] == optimizer]
    df["init"] = [f"{m}, {o}, init {s}" for m, o, s in zip(df["model"], df["optimizer"], df["seed"])]
    return _line_panels(df, "alpha", "init", "init → final", xlabel="α (0 = init, 1 = final)")


def beyond_final(lines: pd.DataFrame):
    """im2016 Fig 10: init -> final continued past the final weights (α up to 2), per optimizer."""
    sns.set_theme(style="whitegrid", context="paper")
    df = lines.copy()
    df["label"] = [f"{o}, init {s}" for o, s in zip(df["optimizer"], df["seed"])]
    return _line_panels(df, "alpha", "label", "init → final → beyond", log_loss=True,
                        xlabel="α (0 = init, 1 = final)")


def interpolation_overview(init_final: pd.DataFrame, final_final: pd.DataFrame):
    """im2016 Fig 5: init -> final per optimizer (top) and final -> final between every two
    optimizers' solutions from the same init (bottom)."""
    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(2, 2, figsize=(8.5, 6.0))
    a = init_final[(init_final["alpha"] >= 0) & (init_final["alpha"] <= 1 + 1e-9)].copy()
    a["label"] = [f"{o}, init {s}" for o, s in zip(a["optimizer"], a["seed"])]
    _line_panels(a, "alpha", "label", "init → final", axes=axes[0], xlabel="α (0 = init, 1 = final)")
    b = final_final.copy()
    b["label"] = [f"{x} → {y}, init {s}" for x, y, s in zip(b["optimizer_a"], b["optimizer_b"], b["seed"])]
    _line_panels(b, "alpha", "label", "final → final", axes=axes[1], xlabel="α (0 = first, 1 = second solution)")
    fig.tight_layout()
    return fig


def distance_paths(lines: pd.DataFrame):
    """im2016 Fig 6: loss and accuracy against the absolute distance from each optimizer's
    solution towards (and past) the initial weights; a dot marks the init."""
    sns.set_theme(style="whitegrid", context="paper")
    df = lines.copy()
    df["label"] = [f"{o}, init {s}" for o, s in zip(df["optimizer"], df["seed"])]
    fig = _line_panels(df, "distance", "label", "final → init → beyond", vlines=(0.0,),
                       xlabel="distance from the solution ‖θ − θ_final‖")
    labels = list(dict.fromkeys(df["label"]))
    palette = dict(zip(labels, sns.color_palette("tab10", len(labels))))
    for ax, col in zip(fig.axes, ("loss", "accuracy")):
        for label, part in df[df["split"] == df["split"].iloc[0]].groupby("label"):
            at = part.iloc[(part["alpha"] - 1).abs().argmin()]
            ax.plot(at["init_distance"], at[col], "o", color=palette[label], ms=4)
    return fig


def _contour(ax, part: pd.DataFrame, value: str = "loss", levels: int = 15, log: bool = True, cmap="viridis"):
    grid = part.pivot_table(index="y", columns="x", values=value, aggfunc="first")
    z = _finite_log(grid.to_numpy()) if log else grid.to_numpy(dtype=float)
    finite = z[np.isfinite(z)]
    if finite.size == 0 or np.ptp(finite) == 0:
        return ax.imshow(np.nan_to_num(z), origin="lower", aspect="auto",
                         extent=(grid.columns.min(), grid.columns.max(), grid.index.min(), grid.index.max()))
    cs = ax.contourf(grid.columns.to_numpy(), grid.index.to_numpy(), z, levels=levels, cmap=cmap)
    ax.contour(grid.columns.to_numpy(), grid.index.to_numpy(), z, levels=levels, colors="k",
               linewidths=0.3, alpha=0.5)
    return cs


def bilinear_planes(surfaces: pd.DataFrame, split: str = "train"):
    """im2016 Fig 3: log10 loss on the bilinear plane through four optimizers' solutions
    (corners marked), one panel per model and init."""
    sns.set_theme(style="white", context="paper")
    df = surfaces[surfaces["split"] == split]
    names = list(dict.fromkeys(df["name"]))
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        part = df[df["name"] == name]
        cs = _contour(ax, part)
        fig.colorbar(cs, ax=ax, label=f"log10 {split} loss")
        for (cx, cy), label in zip(((0, 0), (1, 0), (0, 1), (1, 1)), part["corners"].iloc[0].split(",")):
            ax.plot(cx, cy, "o", color="white", mec="black")
            ax.annotate(label, (cx, cy), textcoords="offset points", xytext=(-4 if cx else 4, 4), color="white",
                        fontsize=8, weight="bold", ha="right" if cx else "left")
        ax.set_title(f"{part['model'].iloc[0]}, init {part['seed'].iloc[0]}: bilinear plane")
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    fig.tight_layout()
    return fig


def optimizer_grid(barycentric: pd.DataFrame, final_final: pd.DataFrame, split: str = "train"):
    """im2016 Table 1 as a figure: an optimizer × optimizer grid for one model and init.
    Lower triangle: log10 loss on the barycentric plane through the init (origin) and the two
    solutions (row optimizer at (1, 0), column optimizer at (0, 1)); upper triangle:
    functional distance and label disagreement along final(row) -> final(column)."""
    sns.set_theme(style="white", context="paper")
    bary = barycentric[barycentric["split"] == split]
    ff = final_final[final_final["split"] == split]
    key = (ff["model"].iloc[0], ff["seed"].iloc[0]) if len(ff) else (bary["model"].iloc[0], bary["seed"].iloc[0])
    bary = bary[(bary["model"] == key[0]) & (bary["seed"] == key[1])]
    ff = ff[(ff["model"] == key[0]) & (ff["seed"] == key[1])]
    opts = list(dict.fromkeys([*bary["optimizer_a"], *bary["optimizer_b"], *ff["optimizer_a"], *ff["optimizer_b"]]))
    n = len(opts)
    fig, axes = plt.subplots(n, n, figsize=(2.3 * n + 0.5, 2.1 * n), squeeze=False)
    pos = {o: i for i, o in enumerate(opts)}
    vmax = float(np.nanmax(_finite_log(bary["loss"]))) if len(bary) else 1.0
    vmin = float(np.nanmin(_finite_log(bary["loss"]))) if len(bary) else 0.0
    for i in range(n):
        for j in range(n):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            if i == j:
                ax.text(0.5, 0.5, opts[i], ha="center", va="center", fontsize=11, weight="bold",
                        transform=ax.transAxes)
                continue
            a, b = opts[min(i, j)], opts[max(i, j)]
            if i > j:  # lower triangle: barycentric plane of (row, column)
                part = bary[((bary["optimizer_a"] == opts[i]) & (bary["optimizer_b"] == opts[j]))
                            | ((bary["optimizer_a"] == opts[j]) & (bary["optimizer_b"] == opts[i]))]
                if not len(part):
                    ax.set_visible(False)
                    continue
                if part["optimizer_a"].iloc[0] != opts[i]:
                    part = part.rename(columns={"x": "y", "y": "x"})
                grid = part.pivot_table(index="y", columns="x", values="loss", aggfunc="first")
                ax.contourf(grid.columns, grid.index, _finite_log(grid.to_numpy()), levels=12, cmap="viridis",
                            vmin=vmin, vmax=vmax)
                for (px, py), label in (((0, 0), "init"), ((1, 0), opts[i]), ((0, 1), opts[j])):
                    ax.plot(px, py, "o", color="white", mec="black", ms=4)
                ax.set_xlabel(opts[i], fontsize=7)
                ax.set_ylabel(opts[j], fontsize=7)
            else:  # upper triangle: functional distance and disagreement along final(a) -> final(b)
                part = ff[((ff["optimizer_a"] == a) & (ff["optimizer_b"] == b))
                          | ((ff["optimizer_a"] == b) & (ff["optimizer_b"] == a))].sort_values("alpha")
                if not len(part):
                    ax.set_visible(False)
                    continue
                ax.plot(part["alpha"], part["functional_distance"], color="C0", lw=1.2)
                ax2 = ax.twinx()
                ax2.plot(part["alpha"], part["disagreement"], color="C3", lw=1.0, ls="--")
                ax2.set_yticks([])
                end = part.iloc[(part["alpha"] - 1).abs().argmin()]
                ax.set_title(f"{part['optimizer_a'].iloc[0]} → {part['optimizer_b'].iloc[0]}: FD "
                             f"{end['functional_distance']:.2f}, disagree {100 * end['disagreement']:.0f}%",
                             fontsize=7)
                ax.tick_params(labelsize=6)
                ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(3))
                ax.axvline(0, color="grey", lw=0.5, ls=":")
                ax.axvline(1, color="grey", lw=0.5, ls=":")
    fig.suptitle(f"{key[0]}, init {key[1]} ({split}): lower = barycentric planes (log10 loss), "
                 "upper = functional distance (blue) / disagreement (red) along final → final", fontsize=8)
    fig.tight_layout()
    return fig


def switching_interpolation(lines: pd.DataFrame, split: str = "train"):
    """im2016 Fig 7, right column: loss along the lines between the first optimizer's own
    solution and each switch variant, and between the variants; one panel per switch pair."""
    sns.set_theme(style="whitegrid", context="paper")
    df = lines[lines["split"] == split].copy()
    groups = list(dict.fromkeys(zip(df["model"], df["first"], df["then"], df["seed"])))
    fig, axes = plt.subplots(len(groups), 2, figsize=(9.0, 2.9 * len(groups)), squeeze=False)
    for row, (model, first, then, seed) in zip(axes, groups):
        part = df[(df["model"] == model) & (df["first"] == first) & (df["then"] == then) & (df["seed"] == seed)]
        part = part.assign(label=[f"{a} ↔ {b}" for a, b in zip(part["start_label"], part["end_label"])])
        labels = list(dict.fromkeys(part["label"]))
        palette = dict(zip(labels, sns.color_palette("tab10", len(labels))))
        for ax, col in zip(row, ("loss", "accuracy")):
            for label, line in part.groupby("label", sort=False):
                line = line.sort_values("alpha")
                ax.plot(line["alpha"], line[col], color=palette[label], label=label, lw=1.2)
            ax.set_title(f"{model}, {first} → {then}, init {seed}: {split} {col}")
            ax.set_xlabel("α")
        row[-1].legend(frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


def random_planes(surfaces: pd.DataFrame, split: str = "train"):
    """Li et al.: log10 loss on a filter-normalised random plane around each solution, as a
    contour plot and a 3-D surface (one row per run)."""
    sns.set_theme(style="white", context="paper")
    df = surfaces[surfaces["split"] == split]
    runs = list(dict.fromkeys(df["run"]))
    fig = plt.figure(figsize=(8.0, 3.4 * len(runs)))
    for i, run in enumerate(runs):
        part = df[df["run"] == run]
        title = f"{part['model'].iloc[0]}, {part['optimizer'].iloc[0]}, init {part['seed'].iloc[0]}"
        ax = fig.add_subplot(len(runs), 2, 2 * i + 1)
        cs = _contour(ax, part)
        fig.colorbar(cs, ax=ax, label=f"log10 {split} loss")
        ax.plot(0, 0, "*", color="white", mec="black", ms=9)
        ax.set_title(f"{title}: random plane")
        ax.set_xlabel("δ")
        ax.set_ylabel("η")
        ax3 = fig.add_subplot(len(runs), 2, 2 * i + 2, projection="3d")
        grid = part.pivot_table(index="y", columns="x", values="loss", aggfunc="first")
        gx, gy = np.meshgrid(grid.columns.to_numpy(), grid.index.to_numpy())
        ax3.plot_surface(gx, gy, _finite_log(grid.to_numpy()), cmap="viridis", linewidth=0, antialiased=True)
        ax3.set_xlabel("δ")
        ax3.set_ylabel("η")
        ax3.set_zlabel("log10 loss")
        ax3.set_title(f"{title}: 3-D")
    fig.tight_layout()
    return fig


def pca_planes(surfaces: pd.DataFrame, trajectories: pd.DataFrame, split: str = "train"):
    """Li et al.: log10 loss on the plane of the top-2 PCA directions of each run's trajectory
    around its solution, with the saved checkpoints projected on it (labelled by epoch)."""
    sns.set_theme(style="white", context="paper")
    df = surfaces[surfaces["split"] == split]
    runs = list(dict.fromkeys(df["run"]))
    cols = min(3, len(runs))
    rows = (len(runs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.7 * rows), squeeze=False)
    for ax, run in zip(axes.flat, runs):
        part = df[df["run"] == run]
        cs = _contour(ax, part)
        fig.colorbar(cs, ax=ax, label=f"log10 {split} loss")
        traj = trajectories[trajectories["run"] == run].sort_values("epoch")
        ax.plot(traj["x"], traj["y"], "-o", color="red", ms=3, lw=1.2)
        for _, p in traj.iterrows():
            ax.annotate(str(int(p["epoch"])), (p["x"], p["y"]), textcoords="offset points", xytext=(3, 3),
                        fontsize=6, color="red")
        r = traj[["explained_variance_ratio_x", "explained_variance_ratio_y"]].iloc[0] if len(traj) else (0, 0)
        ax.set_xlabel(f"PC1 ({100 * r.iloc[0]:.0f}%)" if len(traj) else "PC1")
        ax.set_ylabel(f"PC2 ({100 * r.iloc[1]:.0f}%)" if len(traj) else "PC2")
        ax.set_title(f"{part['model'].iloc[0]}, {part['optimizer'].iloc[0]}, init {part['seed'].iloc[0]}")
    for ax in list(axes.flat)[len(runs):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


#: the landscape figures of the workflow: rule ``plot_<name>`` calls these with its tables in order
LANDSCAPE_FIGURES = {
    "fig2_init_final": init_final_two_inits,
    "fig3_bilinear": bilinear_planes,
    "fig5_interpolation": interpolation_overview,
    "fig6_distance": distance_paths,
    "fig10_beyond_final": beyond_final,
    "table1_optimizer_grid": optimizer_grid,
    "fig7_switching_interpolation": switching_interpolation,
    "random_plane": random_planes,
    "pca_plane": pca_planes,
}
