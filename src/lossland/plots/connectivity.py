"""Figures of mode connectivity and of a walk with SGD (the review; Garipov et al., Xing et al.).

* :func:`curve_profiles` -- loss and accuracy along the trained curve and along the straight
  line between two solutions, per pair and split;
* :func:`curve_plane` -- the loss on the plane through both solutions and the bend, with the
  curve and the line drawn on it (Garipov et al.'s figure);
* :func:`sgd_walk` -- the loss along every step's segment, on the walk's images and on the
  step's minibatch, and the angle between consecutive gradients, per walk (Xing et al.'s figure).

The caption numbers (``CAPTION_NUMBERS``) are computed from the same tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..pipeline.families.connectivity import LATE_FRACTION, pair_barriers, walk_summary
from ._common import OUTLINE, contour_panel, finite, legend_outside, significant
from .style import SPLIT_STYLES, new_figure, optimizer_colors

FIGURE_FUNCTIONS = ("curve_profiles", "curve_plane", "sgd_walk")
__all__ = ["CAPTION_NUMBERS", "FIGURE_FUNCTIONS", *FIGURE_FUNCTIONS]

#: the trained curve and the straight line, in every figure
PATH_STYLES = {"curve": {"color": "#1b9e77", "lw": 2.0}, "line": {"color": "0.35", "lw": 1.4}}
PATH_LABELS = {"curve": "trained curve", "line": "straight line"}
#: reference angles of the walk's angle panel: orthogonal, and the review's ~170°
ANGLE_REFERENCES = ((90.0, "90°"), (170.0, "170° (the review)"))


def pair_label(row) -> str:
    """``sgd (init 0) → adam (init 0)``."""
    return (f"{row['start_optimizer']} (init {int(row['start_seed'])}) → "
            f"{row['end_optimizer']} (init {int(row['end_seed'])})")


def _pairs(df: pd.DataFrame) -> list[tuple[str, str]]:
    first = df.drop_duplicates("pair")
    return [(r["pair"], pair_label(r)) for _, r in first.iterrows()]


def curve_profiles(profiles: pd.DataFrame, optimizers: Sequence[str] | None = None):
    """Loss (top) and accuracy (bottom) against t along the trained curve and the straight line,
    one column per pair, one line style per split."""
    pairs = _pairs(profiles)
    splits = list(dict.fromkeys(profiles["split"]))
    fig, axes = new_figure(2, len(pairs), figsize=(4.2 * len(pairs) + 1.6, 6.6))
    barriers = pair_barriers(profiles, split=splits[0]).set_index("pair")
    for j, (pair, label) in enumerate(pairs):
        part = profiles[profiles["pair"] == pair]
        for path in ("line", "curve"):
            for split in splits:
                rows = part[(part["path"] == path) & (part["split"] == split)].sort_values("t")
                t = rows["t"].to_numpy()
                axes[0, j].plot(t, finite(rows["loss"]), ls=SPLIT_STYLES.get(split, "-"), **PATH_STYLES[path])
                axes[1, j].plot(t, 100 * finite(rows["accuracy"]), ls=SPLIT_STYLES.get(split, "-"),
                                **PATH_STYLES[path])
        b = barriers.loc[pair]
        axes[0, j].set_title(f"loss: {label}\n{splits[0]} barrier: line {significant(b['line_barrier'])}, "
                             f"curve {significant(b['curve_barrier'])}", fontsize=9)
        axes[1, j].set_title(f"accuracy: {label}", fontsize=9)
        axes[0, j].set_ylabel("loss")
        axes[1, j].set_ylabel("accuracy (%)")
        for ax in axes[:, j]:
            ax.set_xlabel("t (0: first solution, 1: second)")
    legend_outside(axes[0, -1], [("path", [(PATH_LABELS[p], PATH_STYLES[p]) for p in ("curve", "line")]),
                                 ("split", [(s, {"color": ".3", "ls": SPLIT_STYLES.get(s, "-"), "lw": 1.3})
                                            for s in splits])], fontsize=8)
    fig.subplots_adjust(hspace=0.45)
    fig.suptitle("Mode connectivity: a trained curve against the straight line between two solutions")
    return fig


def curve_profiles_numbers(profiles: pd.DataFrame, optimizers: Sequence[str] | None = None) -> dict[str, str]:
    splits = list(dict.fromkeys(profiles["split"]))
    b = pair_barriers(profiles, split=splits[0])
    last = pair_barriers(profiles, split=splits[-1])
    labels = dict(_pairs(profiles))
    per_pair = "; ".join(
        f"{labels[r.pair]}: line {significant(r.line_barrier)}, curve {significant(r.curve_barrier)} "
        f"(lowest {splits[-1]} accuracy along the line {significant(100 * lr.line_min_accuracy)} %, along the "
        f"curve {significant(100 * lr.curve_min_accuracy)} %)"
        for r, lr in zip(b.itertuples(), last.itertuples()))
    styles = {"-": "solid", "--": "dashed", "-.": "dash-dotted"}
    lines = ", ".join(f"{styles.get(SPLIT_STYLES.get(s, '-'), 'solid')}: {s}" for s in splits)
    return {"split": splits[0], "pairs": per_pair, "split_styles": lines,
            "points": str(profiles.groupby(["pair", "path", "split"]).size().max()),
            "bn": str(profiles["bn"].iloc[0]) if "bn" in profiles else "stored",
            "kind": str(profiles["kind"].iloc[0])}


def _plane_marks(ax, pts: pd.DataFrame, colors: dict, first) -> None:
    curve = pts[pts["point"] == "curve"].sort_values("t")
    anchors = pts[pts["point"] != "curve"].set_index("point")
    ax.plot(curve["x"], curve["y"], color="white", lw=2.0, path_effects=OUTLINE, zorder=3)
    ax.plot(anchors.loc[["start", "end"], "x"], anchors.loc[["start", "end"], "y"], color="white", lw=1.2,
            ls="--", path_effects=OUTLINE, zorder=3)
    for point, optimizer in (("start", first["start_optimizer"]), ("end", first["end_optimizer"])):
        ax.plot(anchors.loc[point, "x"], anchors.loc[point, "y"], "o", ms=8, color=colors[optimizer],
                mec="white", mew=1.2, zorder=4)
    ax.plot(anchors.loc["bend", "x"], anchors.loc["bend", "y"], "X", ms=8, color="white", mec="black", zorder=4)


def curve_plane(plane: pd.DataFrame, points: pd.DataFrame, optimizers: Sequence[str] | None = None):
    """log10 loss on the plane through both solutions and the bend, one panel per pair: the
    trained curve (white), the straight line (dashed), the solutions (their optimizers' colours)
    and the bend (cross)."""
    pairs = _pairs(points)
    fig, axes = new_figure(1, len(pairs), figsize=(4.6 * len(pairs) + 1.4, 4.2))
    colors = optimizer_colors(pd.concat([points["start_optimizer"], points["end_optimizer"]]), optimizers)
    split = str(plane["split"].iloc[0])
    for j, (pair, label) in enumerate(pairs):
        ax = axes[0, j]
        pts = points[points["pair"] == pair]
        contour_panel(fig, ax, plane[plane["pair"] == pair], f"log10 {split} loss")
        _plane_marks(ax, pts, colors, pts.iloc[0])
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("x: along θ₁ − θ₀ (weight distance)")
        ax.set_ylabel("y: toward the bend (weight distance)")
    entries = [(f"{o} solution", {"marker": "o", "color": c, "ls": "none", "ms": 7}) for o, c in colors.items()]
    entries += [("bend", {"marker": "X", "color": "white", "mec": "black", "ls": "none", "ms": 7}),
                ("trained curve", {"color": "black", "lw": 2.0}), ("straight line", {"color": "black", "ls": "--"})]
    legend_outside(axes[0, -1], [("", entries)], fontsize=8)
    axes[0, -1].get_legend().set_bbox_to_anchor((1.32, 1.0))
    fig.suptitle("The plane through two solutions and the bend of the curve joining them")
    return fig


def curve_plane_numbers(plane: pd.DataFrame, points: pd.DataFrame,
                        optimizers: Sequence[str] | None = None) -> dict[str, str]:
    parts = []
    for pair, label in _pairs(points):
        a = points[(points["pair"] == pair) & (points["point"] != "curve")].set_index("point")
        p = plane[plane["pair"] == pair]
        loss = finite(p["loss"])
        parts.append(f"{label}: the solutions {significant(a.loc['end', 'x'])} apart, the bend "
                     f"{significant(a.loc['bend', 'y'])} off their line; {p['split'].iloc[0]} loss on the plane "
                     f"{significant(np.nanmin(loss))} to {significant(np.nanmax(loss))}")
    n = plane.groupby("pair").size()
    side = int(round(np.sqrt(n.max())))
    return {"pairs": "; ".join(parts), "grid": f"{side}×{side}", "split": str(plane["split"].iloc[0])}


# --------------------------------------------------------------------------- the walk


def walk_label(row) -> str:
    return "gradient descent" if row["method"] == "gd" else f"SGD, batch {int(row['batch_size'])}"


def walk_colors(steps: pd.DataFrame) -> dict[str, str]:
    """Gradient descent black; SGD from light (small batch) to dark (large batch)."""
    import matplotlib

    walks = steps.drop_duplicates("walk").sort_values(["method", "batch_size"], ascending=[False, True])
    sgd = walks[walks["method"] == "sgd"]["walk"].tolist()
    ramp = matplotlib.colormaps["Oranges"](np.linspace(0.45, 0.9, max(len(sgd), 1)))
    out = {w: matplotlib.colors.to_hex(c) for w, c in zip(sgd, ramp)}
    out.update({w: "black" for w in walks[walks["method"] == "gd"]["walk"]})
    return out


def sgd_walk(segments: pd.DataFrame, steps: pd.DataFrame, optimizers: Sequence[str] | None = None):
    """Top: the loss along every step's segment on the walk's images (x = step + t); middle:
    on the step's own minibatch; bottom: the angle between consecutive gradients."""
    fig, axes = new_figure(3, 1, figsize=(10.0, 9.6))
    colors = walk_colors(steps)
    labels = {r["walk"]: walk_label(r) for _, r in steps.drop_duplicates("walk").iterrows()}
    for walk, color in colors.items():
        seg = segments[segments["walk"] == walk]
        for ax, split in ((axes[0, 0], "full"), (axes[1, 0], "batch")):
            rows = seg[seg["split"] == split].sort_values(["step", "t"])
            for _, s in rows.groupby("step", sort=False):
                ax.plot(s["step"] + s["t"], finite(s["loss"]), color=color, lw=1.1)
        st = steps[steps["walk"] == walk].sort_values("step")
        axes[2, 0].plot(st["step"], finite(st["grad_angle"]), color=color, lw=1.3, marker=".", ms=4)
    for angle, text in ANGLE_REFERENCES:
        axes[2, 0].axhline(angle, color="0.5", lw=0.8, ls=":")
        axes[2, 0].text(0.0, angle, text, fontsize=7, color="0.35", va="bottom")
    n = int(steps["step"].max()) + 1
    late = n - max(1, int(np.ceil(LATE_FRACTION * n)))
    for ax in axes[:, 0]:
        ax.axvspan(late, n, color="0.92", zorder=0)
    titles = ("the loss along every step's segment, on the walk's images",
              "the loss along every step's segment, on the step's own minibatch",
              "the angle between the gradients of consecutive steps")
    for ax, title in zip(axes[:, 0], titles):
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step k (segment θ_k → θ_k+1 drawn over [k, k+1]; shaded: the late steps)", fontsize=8)
    axes[0, 0].set_ylabel("loss on the walk's images")
    axes[1, 0].set_ylabel("loss on the step's minibatch")
    axes[2, 0].set_ylabel("angle between consecutive\ngradients (degrees)")
    axes[2, 0].set_ylim(0, 180)
    axes[2, 0].set_yticks([0, 45, 90, 135, 180])
    legend_outside(axes[0, 0], [("walk", [(labels[w], {"color": c, "lw": 1.8}) for w, c in colors.items()])],
                   fontsize=8)
    fig.subplots_adjust(hspace=0.5, top=0.92)
    fig.suptitle("A walk with SGD: the loss between consecutive iterates and the angle between their gradients")
    return fig


def sgd_walk_numbers(segments: pd.DataFrame, steps: pd.DataFrame,
                     optimizers: Sequence[str] | None = None) -> dict[str, str]:
    summary = walk_summary(steps)
    first = steps.iloc[0]
    parts = [f"{walk_label(r)} (lr {significant(r['lr'])}): {significant(r['mean_angle'])}°, interior minima in "
             f"{significant(100 * r['interior_full'])} % of the segments on the walk's images and "
             f"{significant(100 * r['interior_batch'])} % on the minibatch"
             for _, r in summary.iterrows()]
    return {"walks": "; ".join(parts), "steps": str(int(steps["step"].max()) + 1),
            "late": f"{LATE_FRACTION:.0%}".replace("%", " %"), "run": str(first["run"]),
            "from_epoch": str(int(first["from_epoch"])),
            "points": str(int(segments.groupby(["walk", "step", "split"]).size().max()))}


CAPTION_NUMBERS = {"curve_profiles": curve_profiles_numbers, "curve_plane": curve_plane_numbers,
                   "sgd_walk": sgd_walk_numbers}
