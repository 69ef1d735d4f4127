"""lossland.plots: every figure from small synthetic tables with the workflow's columns, one
colour per optimizer across figures, labelled axes, the resolver, saving, light imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from lossland.plots import (
    batchnorm,
    connectivity,
    entropy,
    family_modules,
    figure_function,
    hessian,
    im2016,
    landscape,
    reparam,
    save_figure,
    sharpness,
    style,
)

SRC = Path(__file__).resolve().parents[1] / "src"
OPTIMIZERS = ["sgd", "sgd-x2", "sgdm", "adagrad", "rmsprop", "adadelta", "adam", "heun-sgd"]
RUN_IDS = ("run", "dataset", "model", "optimizer", "algorithm", "lr", "seed")
LR = {"sgd": 0.1, "sgd-x2": 0.2, "sgdm": 0.05, "adagrad": 0.01, "rmsprop": 0.001, "adadelta": 1.0, "adam": 0.001,
      "heun-sgd": 0.2}


# --------------------------------------------------------------------------- synthetic tables


def _ids(model, opt, seed, lr=None):
    lr = LR.get(opt, 0.1) if lr is None else lr
    return dict(run=f"{model}_{opt}-lr{lr:g}_init{seed}", dataset="cifar10-small", model=model, optimizer=opt,
                algorithm=opt, lr=lr, seed=seed)


def metrics_table(optimizers=("sgd", "adam", "adadelta"), seeds=(0, 1), models=("nin",), epochs=4,
                  diverge=(("adadelta", 1),)):
    """Per-epoch metrics as results/tables/<study>_metrics.parquet (README "Per-epoch metrics columns")."""
    rows = []
    for m, model in enumerate(models):
        for k, opt in enumerate(optimizers):
            for seed in seeds:
                bad = (opt, seed) in set(diverge)
                for e in range(epochs + 1):
                    gone = bad and e >= 2
                    loss = np.inf if gone else 2.3 / (1 + 0.4 * e * (k + 1)) + 0.05 * seed + 0.1 * m
                    acc = 0.1 if gone else min(0.1 + 0.15 * e * (1 + 0.2 * k), 0.99)
                    rows.append(dict(**_ids(model, opt, seed), data_seed=0, phase=opt, epoch=e,
                                     train_loss=loss, train_acc=acc, test_loss=loss * 1.1, test_acc=acc * 0.9,
                                     val_loss=loss * 1.05, val_acc=acc * 0.95, train_batch_loss=loss,
                                     grad_norm=1.0 / (e + 1), dist_from_init=np.nan if gone else 0.8 * e,
                                     wall_time=1.5 * e, diverged=gone))
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # rows in any order


def switch_metrics_table(pair=("sgd", "adam"), codes=("S", "A"), epochs=4, model="nin"):
    """A switch study's metrics: both optimizers' own runs and every variant <first>k-<then>(E-k) both ways."""
    df = metrics_table(optimizers=pair, seeds=(0,), models=(model,), epochs=epochs, diverge=())
    rows = []
    for (first, then), (cf, ct) in ((pair, codes), (pair[::-1], codes[::-1])):
        for k in range(1, epochs):
            name = f"{cf}{k}-{ct}{epochs - k}"
            for e in range(epochs + 1):
                rows.append(dict(**{**_ids(model, name, 0, 0.1), "algorithm": f"{first}->{then}"}, data_seed=0,
                                 phase=first if e <= k else then, epoch=e, train_loss=2.0 / (1 + e),
                                 train_acc=0.1 + 0.12 * e + 0.01 * k, test_loss=2.2 / (1 + e),
                                 test_acc=0.1 + 0.1 * e + 0.01 * k, dist_from_init=0.7 * e + 0.1 * k, diverged=False))
    return pd.concat([df, pd.DataFrame(rows)], ignore_index=True)


def hessian_tables(optimizers=("sgd", "adam"), seeds=(0,), epochs=(0, 2, 4), model="nin"):
    """results/tables/hessian_summary.parquet and hessian_density.parquet (epoch 0 repeated under every run)."""
    summary, density = [], []
    grid = np.linspace(-2, 20, 40)
    for k, opt in enumerate(optimizers):
        for seed in seeds:
            for e in epochs:
                ids = dict(**_ids(model, opt, seed), epoch=e, split="train")
                top = 5.0 + (e * (k + 1) if e else 0) + seed
                summary.append(dict(**ids, loss=2.3 / (1 + e), accuracy=0.1 + 0.1 * e, trace=10 * top,
                                    trace_stderr=0.5, method="deflated", top_eigenvalue=top,
                                    bottom_eigenvalue=-0.5 / (1 + e), negative_fraction=0.3 / (1 + e * (k + 1)),
                                    slq_trace=10 * top, epsilon_sharpness=2.0 + e * (k + 1) + seed, n_params=1000,
                                    n_samples=64, seconds=1.0))
                dens = np.exp(-0.5 * grid ** 2) / 3 + 0.02 * np.exp(-0.5 * (grid - top) ** 2)
                density += [dict(**ids, eigenvalue=x, density=d) for x, d in zip(grid, dens)]
    return pd.DataFrame(summary), pd.DataFrame(density)


def _line_rows(kind, opt, seed, alphas, start, end, model="nin", **extra):
    rows, k = [], 1 + OPTIMIZERS.index(opt) / 4 if opt in OPTIMIZERS else 1.0
    for split in ("train", "test"):
        for a in alphas:
            rows.append(dict(kind=kind, **_ids(model, opt, seed), start=start, end=end, alpha=a, split=split,
                             loss=0.3 * k + k * (a - 1) ** 2 + (0.1 if split == "test" else 0) + 0.05 * seed,
                             accuracy=0.9 - 0.3 * k * (a - 1) ** 2 - (0.05 if split == "test" else 0), **extra))
    return rows


def landscape_tables(optimizers=("sgd", "adam", "adadelta"), seeds=(0, 1), model="nin"):
    """Every results/tables/landscape_<kind>.parquet table a landscape figure reads (README columns)."""
    alphas = np.linspace(0, 2, 11)
    init_final = pd.DataFrame([r for o in optimizers for s in seeds
                               for r in _line_rows("init_final", o, s, alphas, "init", _ids(model, o, s)["run"])])
    distance = []
    for o in optimizers:
        for s in seeds:
            run = _ids(model, o, s)["run"]
            for r in _line_rows("distance", o, s, np.linspace(0, 1.5, 10), run, "init", init_distance=4.0 + s):
                distance.append({**r, "distance": r["alpha"] * r["init_distance"]})
    ff, bary = [], []
    for s in seeds:
        for i, a in enumerate(optimizers):
            for b in optimizers[i + 1:]:
                ra, rb = _ids(model, a, s)["run"], _ids(model, b, s)["run"]
                pair = dict(dataset="cifar10-small", model=model, seed=s, run_a=ra, run_b=rb, optimizer_a=a,
                            optimizer_b=b)
                for split in ("train", "test"):
                    for al in np.linspace(-0.5, 1.5, 9):
                        ff.append(dict(kind="final_final", **pair, start=ra, end=rb, alpha=al, split=split,
                                       loss=0.3 + (0.3 + 0.2 * i + 0.1 * len(b)) * np.sin(np.pi * np.clip(al, 0, 1))
                                       + 0.1 * al ** 2 + (0.1 if split == "test" else 0),
                                       accuracy=0.8 - 0.1 * np.sin(np.pi * np.clip(al, 0, 1)) * (1 + i),
                                       functional_distance=(0.3 + 0.1 * i) * np.sin(np.pi * np.clip(al, 0, 1) / 2),
                                       disagreement=(0.1 + 0.05 * i) * np.clip(al, 0, 1)))
                    for x in np.linspace(-0.25, 1.25, 7):
                        for y in np.linspace(-0.25, 1.25, 7):
                            bary.append(dict(kind="barycentric", name=f"{ra}__{rb}", **pair, x=x, y=y,
                                             w0=1 - x - y, w1=x, w2=y, split=split,
                                             loss=0.3 + (x - 1) ** 2 * y ** 2 + (1 - x - y) ** 2 + 0.1 * x,
                                             accuracy=0.5))
    sw = []
    labels = ["sgd only", "S1-A3", "S2-A2", "S3-A1"]
    lines = [(labels[0], v) for v in labels[1:]] + [(a, b) for i, a in enumerate(labels[1:]) for b in labels[i + 2:]]
    for i, (a, b) in enumerate(lines):
        for split in ("train", "test"):
            for al in np.linspace(0, 1, 7):
                bump = np.sin(np.pi * al) * (0.2 + 0.15 * i)
                sw.append(dict(kind="switching", dataset="cifar10-small", model=model, seed=0, first="sgd",
                               then="adam", start=a, end=b, start_label=a, end_label=b, alpha=al, split=split,
                               loss=0.3 + bump, accuracy=0.8 - 0.2 * bump))
    corners = ",".join((list(optimizers) + ["rmsprop", "adagrad"])[:4])
    bilinear = [dict(kind="bilinear", name=f"{model}_init{s}", dataset="cifar10-small", model=model, seed=s,
                     corners=corners, x=x, y=y, split=split, loss=0.2 + x * (1 - x) + y * (1 - y) + 0.1 * x * y,
                     accuracy=0.5)
                for s in seeds for split in ("train", "test")
                for x in np.linspace(-0.25, 1.25, 7) for y in np.linspace(-0.25, 1.25, 7)]

    def plane(kind):
        return pd.DataFrame([dict(kind=kind, name=_ids(model, o, s)["run"], **_ids(model, o, s), x=x, y=y,
                                  split=split, loss=0.2 + x * x + 2 * y * y + 0.1 * k, accuracy=0.5)
                             for k, o in enumerate(optimizers) for s in seeds[:1] for split in ("train", "test")
                             for x in np.linspace(-1, 1, 7) for y in np.linspace(-1, 1, 7)])

    traj = pd.DataFrame([dict(kind="pca", name=_ids(model, o, s)["run"], **_ids(model, o, s), step=e, epoch=e,
                              x=0.9 * (4 - e) / 4, y=0.3 * np.sin(e), explained_variance_ratio_x=0.8,
                              explained_variance_ratio_y=0.15)
                         for o in optimizers for s in seeds[:1] for e in range(5)])
    return {"init_final": init_final, "distance": pd.DataFrame(distance), "final_final": pd.DataFrame(ff),
            "barycentric": pd.DataFrame(bary), "switching": pd.DataFrame(sw), "bilinear": pd.DataFrame(bilinear),
            "random_plane": plane("random_plane"), "pca": plane("pca"), "pca_trajectory": traj}


def connectivity_tables() -> dict:
    """The connectivity family's six tables as the workflow writes them (two pairs, three walks)."""
    from families.test_connectivity_captions import tables

    return tables()


def entropy_tables() -> dict:
    """The entropy family's tables as the workflow writes them (zhang2018)."""
    from families.test_entropy_captions import tables

    return tables()


def batchnorm_tables() -> dict:
    """The batchnorm captions' tables: NIN and VGG with and without BN, the LSTM, two inits."""
    from families.test_batchnorm_captions import tables

    return tables()


def sharpness_tables() -> dict:
    """The sharpness family's five tables as the workflow writes them (Keskar et al.; Li et al.)."""
    from families.test_sharpness_captions import tables

    return tables()


def reparam_tables():
    """The reparam family's sweep, input and input-example tables (dinh2017)."""
    alphas = np.logspace(-3, 3, 7)
    rows = []
    for model, transform, layers, scaled, power in (("relu-mlp", "alpha_scale", "0-1", "net.1, net.3.weight", 2),
                                                    ("relu-mlp", "weight_norm", "all", "v", -2),
                                                    ("nin", "bn_scale", "0", "features.0", -2)):
        run = f"{model}_sgd-lr0.1_init0"
        for a in alphas:
            grow = 5.0 * (a ** power + a ** -power if transform == "alpha_scale" else 1 + a ** power)
            rows.append(dict(run=run, dataset="cifar10-small", model=model, optimizer="sgd", algorithm="sgd", lr=0.1,
                             seed=0, epoch=4, transform=transform, layers=layers, scaled=scaled, split="train",
                             alpha=a, max_output_diff=0.0 if a == 1 else 2e-6,
                             rel_output_diff=0.0 if a == 1 else 3e-7, loss=2.1, accuracy=0.3, test_loss=2.2,
                             test_accuracy=0.25, top_eigenvalue=grow, trace=(-3 if transform == "weight_norm" else 10)
                             * grow, trace_stderr=0.1 * grow, epsilon_sharpness=grow / 10, ball_sharpness=grow / 50,
                             predicted_trace=9 * grow, top_eigenvalue_bound=0.9 * grow))
    sweep = pd.DataFrame(rows)
    inputs, examples = [], []
    rng = np.random.default_rng(0)
    for model in ("relu-mlp", "nin"):
        run = f"{model}_sgd-lr0.1_init0"
        base = rng.uniform(0.2, 1.5, 40)
        ids = dict(run=run, dataset="cifar10-small", model=model, optimizer="sgd", algorithm="sgd", lr=0.1, seed=0,
                   epoch=4)
        for transform, c, norms in ([("identity", 1.0, base)] + [("scale", c, base / c) for c in alphas]
                                    + [("standardize", 1.0, base * 1.01), ("whiten", 1.0, base * rng.uniform(1, 5, 40))]):
            ratio = norms / base
            inputs.append(dict(ids, transform=transform, alpha=c, max_output_diff=1e-6, rel_output_diff=2e-7,
                               mean_grad_norm=norms.mean(), median_grad_norm=np.median(norms),
                               predicted_mean_grad_norm=base.mean() / c if transform == "scale" else np.nan,
                               ratio_min=ratio.min(), ratio_max=ratio.max(),
                               rank_correlation=float(pd.Series(norms).rank().corr(pd.Series(base).rank()))))
            if transform != "scale":
                examples.append(pd.DataFrame(dict(ids, transform=transform, example=np.arange(40), grad_norm=norms)))
    return sweep, pd.DataFrame(inputs), pd.concat(examples, ignore_index=True)


def figure_args():
    """``{"<module>.<function>": (positional tables, extra kwargs)}`` for every public figure."""
    summary, density = hessian_tables(seeds=(0, 1))
    lt = landscape_tables()
    rk2 = metrics_table(optimizers=("sgd", "sgd-x2", "heun-sgd", "adam"), seeds=(0,), diverge=())
    inits = metrics_table(optimizers=("sgd",), seeds=(0,), diverge=(), models=("nin", "nin-nobn", "nin-n10"))
    rp = reparam_tables()
    cn = connectivity_tables()
    en = entropy_tables()
    sh = sharpness_tables()
    bt = batchnorm_tables()
    return {
        "im2016.learning_curves": ((metrics_table(),), {}),
        "im2016.optimizer_accuracy": ((metrics_table(models=("nin", "nin-nobn")),), {}),
        "im2016.switching": ((switch_metrics_table(), [["sgd", "adam"], ["adam", "sgd"]]), {}),
        "im2016.rk2_training": ((rk2,), {}),
        "im2016.exotic_inits": ((inits,), {}),
        "hessian.hessian_density": ((density,), {}),
        "hessian.hessian_sharpness": ((summary,), {}),
        "hessian.hessian_negative_fraction": ((summary,), {}),
        "landscape.init_final_two_inits": ((lt["init_final"],), {}),
        "landscape.beyond_final": ((lt["init_final"],), {}),
        "landscape.interpolation_overview": ((lt["init_final"], lt["final_final"]), {}),
        "landscape.distance_paths": ((lt["distance"],), {}),
        "landscape.bilinear_planes": ((lt["bilinear"],), {}),
        "landscape.optimizer_grid": ((lt["barycentric"], lt["final_final"]), {}),
        "landscape.switching_interpolation": ((lt["switching"],), {}),
        "landscape.random_planes": ((lt["random_plane"],), {}),
        "landscape.pca_planes": ((lt["pca"], lt["pca_trajectory"]), {}),
        "reparam.alpha_scale_sharpness": ((rp[0],), {}),
        "reparam.weight_norm_and_input": (rp, {}),
        "connectivity.curve_profiles": ((cn["curve_profiles"],), {}),
        "connectivity.curve_plane": ((cn["curve_plane"], cn["curve_points"]), {}),
        "connectivity.sgd_walk": ((cn["walk_segments"], cn["walk_steps"]), {}),
        **{f"entropy.{f}": ((en["entropy_solutions"],), {}) for f in ("entropy_by_dynamics", "entropy_test_error")},
        **{f"entropy.{f}": ((en["deep_linear_solutions"],), {}) for f in ("deep_linear_balanced",
                                                                          "deep_linear_unbalanced", "trace_entropy")},
        "sharpness.batch_interpolation": ((sh["batch_size_interpolation"],), {}),
        "sharpness.batch_sharpness": ((sh["batch_size_solutions"],), {}),
        **{f"sharpness.{f}": ((sh["architecture_surfaces"], sh["architecture_solutions"]), {})
           for f in ("skip_surfaces", "skip_surfaces_3d", "width_surfaces")},
        "sharpness.convexity_maps": ((sh["architecture_convexity"], sh["architecture_solutions"]), {}),
        "batchnorm.bn_lines": ((bt["bn_study_lines"], bt["bn_study_summary"]), {}),
        "batchnorm.bn_minima": ((bt["bn_study_summary"], bt["bn_study_metrics"]), {}),
    }


FAMILIES = {"im2016": im2016, "hessian": hessian, "landscape": landscape, "reparam": reparam,
            "connectivity": connectivity, "entropy": entropy, "sharpness": sharpness, "batchnorm": batchnorm}
ALL_FIGURES = [f"{name}.{f}" for name, module in FAMILIES.items() for f in module.FIGURE_FUNCTIONS]


def _draw(name, optimizers=OPTIMIZERS):
    args, kwargs = figure_args()[name]
    return figure_function(name)(*args, **kwargs, optimizers=optimizers)


def _legend_colors(fig) -> dict[str, str]:
    out = {}
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            for handle, text in zip(leg.legend_handles, leg.get_texts()):
                if handle is not None and hasattr(handle, "get_color") and handle.get_visible():
                    out[text.get_text()] = to_hex(handle.get_color())
    return out


def _line_colors(fig) -> set[str]:
    return {to_hex(line.get_color()) for ax in fig.axes for line in ax.get_lines() if len(line.get_xdata()) > 1}


# --------------------------------------------------------------------------- today's helpers


def _metrics():
    rows = []
    for run, opt, lr, seed in [("b", "sgd", 0.1, 0), ("a", "adam", 0.001, 0), ("c", "sgd", 0.1, 1)]:
        for e in range(3):
            rows.append(dict(run=run, model="m", optimizer=opt, lr=lr, seed=seed, epoch=e, phase=opt,
                             train_loss=1.0 / (e + 1), train_acc=0.1 * e, test_loss=1.0, test_acc=0.1 * e,
                             dist_from_init=float(e), diverged=False))
    return pd.DataFrame(rows).sample(frac=1.0, random_state=0)  # rows in any order


def test_lr_labels_follow_their_runs_whatever_the_row_order():
    df = im2016.with_lr_label(_metrics())
    assert set(df.loc[df["run"] == "a", "label"]) == {"adam (lr 0.001)"}
    assert set(df.loc[df["run"] == "b", "label"]) == {"sgd (lr 0.1)"}


def test_final_rows_are_the_last_epoch_of_each_run():
    last = im2016.final_rows(_metrics())
    assert sorted(last["run"]) == ["a", "b", "c"] and (last["epoch"] == 2).all()


def test_switch_pairs_are_unordered_and_unique():
    assert im2016.switch_pairs([["sgd", "adam"], ["adam", "sgd"], ["sgd", "adadelta"]]) == [
        ("adam", "sgd"), ("adadelta", "sgd")]


def test_figures_draw_every_run():
    df = _metrics()
    for fig in (im2016.optimizer_accuracy(df), im2016.rk2_training(df), im2016.exotic_inits(df)):
        lines = [ln for ax in fig.axes for ln in ax.get_lines() if len(ln.get_xdata())]
        collections = [c for ax in fig.axes for c in ax.collections if len(c.get_offsets())]
        assert lines or collections
    fig = im2016.rk2_training(df)
    assert np.allclose(sorted({tuple(ln.get_ydata()) for ln in fig.axes[0].get_lines()
                               if len(ln.get_ydata()) == 3})[0], [0.0, 0.1, 0.2])


# --------------------------------------------------------------------------- every figure


@pytest.mark.parametrize("name", ALL_FIGURES)
def test_every_figure_draws_from_workflow_tables(name):
    fig = _draw(name)
    drawn = [a for ax in fig.axes for a in (*ax.get_lines(), *ax.collections, *ax.images)]
    assert fig.axes and drawn, name
    fig.canvas.draw()  # renders without error (text, 3-D, colour bars)
    assert _draw(name, optimizers=None).axes  # and without the config's optimizer list


@pytest.mark.parametrize("name", ALL_FIGURES)
def test_every_axis_is_labelled(name):
    fig = _draw(name)
    for ax in fig.axes:
        if not ax.get_visible() or ax.get_label() == style.TEXT_ONLY:
            continue
        where = f"{name}: axes {ax.get_title()!r}"
        if ax.get_label() == "<colorbar>" or getattr(ax, "_colorbar", None) is not None:
            assert ax.get_ylabel() or ax.get_xlabel(), f"{where}: colour bar without a label"
            continue
        if ax.xaxis.get_visible():  # a twinx axis has no x axis of its own
            assert ax.get_xlabel().strip(), f"{where}: no x label"
            assert ax.get_title().strip(), f"{where}: no title"
        if ax.yaxis.get_visible() and (len(ax.get_yticks()) or ax.xaxis.get_visible()):
            assert ax.get_ylabel().strip(), f"{where}: no y label"
        if hasattr(ax, "get_zlabel"):
            assert ax.get_zlabel().strip(), f"{where}: no z label"


def test_diverged_runs_end_in_a_cross_and_say_so():
    fig = im2016.learning_curves(metrics_table(), optimizers=OPTIMIZERS)
    assert "adadelta (diverged)" in _legend_colors(fig)
    crosses = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_marker() == "x"]
    assert crosses and all(np.isfinite(ln.get_ydata()).all() for ln in crosses)
    acc = im2016.optimizer_accuracy(metrics_table(), optimizers=OPTIMIZERS)
    assert any(ln.get_marker() == "x" and np.allclose(ln.get_ydata(), 0) for ax in acc.axes for ln in ax.get_lines())


# --------------------------------------------------------------------------- colours


def test_optimizer_colors_follow_the_config_order_then_sorted_names():
    got = style.optimizer_colors(["zeta", "adam", "sgd", "alpha"], ["sgd", "sgdm", "adam"])
    pal = style.OPTIMIZER_PALETTE
    assert got == {"zeta": pal[4], "adam": pal[2], "sgd": pal[0], "alpha": pal[3]}
    assert list(got) == ["zeta", "adam", "sgd", "alpha"]
    assert style.optimizer_colors(["b", "a"]) == {"b": pal[1], "a": pal[0]}
    many = [f"opt{i:02d}" for i in range(30)]
    colors = style.optimizer_colors(many, many)
    assert len(set(colors.values())) == 30 and colors == style.optimizer_colors(many[::-1], many)


def test_other_palettes_never_reuse_optimizer_colors():
    taken = set(style.OPTIMIZER_PALETTE)
    names = [f"x{i}" for i in range(8)]
    order = names[:6]
    others = [style.model_colors(names), style.pair_colors(names), style.epoch_colors(range(6)),
              style.variant_colors(order, {v: v[:2] for v in order})]
    for colors in others:
        assert not set(colors.values()) & taken, colors


def test_an_optimizer_has_one_colour_in_every_figure():
    adam = style.optimizer_colors(["adam"], OPTIMIZERS)["adam"]
    assert adam == style.OPTIMIZER_PALETTE[OPTIMIZERS.index("adam")]
    summary, _ = hessian_tables(optimizers=("adam", "sgd"))
    figs = {
        "learning_curves": im2016.learning_curves(metrics_table(optimizers=("sgd", "sgdm", "adam")),
                                                  optimizers=OPTIMIZERS),
        "negative_fraction": hessian.hessian_negative_fraction(summary, optimizers=OPTIMIZERS),
        "beyond_final": landscape.beyond_final(landscape_tables(optimizers=("adam", "adadelta"))["init_final"],
                                               optimizers=OPTIMIZERS),
        "switching": im2016.switching(switch_metrics_table(), [["sgd", "adam"]], optimizers=OPTIMIZERS),
    }
    for name, fig in figs.items():
        assert _legend_colors(fig)["adam"] == adam, name
        assert adam in _line_colors(fig), name
    rk2 = im2016.rk2_training(metrics_table(optimizers=("sgd", "adam"), diverge=()), optimizers=OPTIMIZERS)
    assert _legend_colors(rk2)["adam (lr 0.001)"] == adam
    sharp = hessian.hessian_sharpness(summary, optimizers=OPTIMIZERS)
    assert adam in {to_hex(ln.get_color()) for ax in sharp.axes for ln in ax.get_lines()}


def test_switch_variants_and_models_get_their_own_palettes():
    fig = im2016.switching(switch_metrics_table(), [["sgd", "adam"]], optimizers=OPTIMIZERS)
    legend = _legend_colors(fig)
    variants = {k: v for k, v in legend.items() if "-" in k and k[0] in "SA"}
    assert len(variants) == 6 and not set(variants.values()) & set(style.OPTIMIZER_PALETTE)
    fig = im2016.exotic_inits(metrics_table(optimizers=("sgd",), models=("nin", "nin-nobn"), diverge=()),
                              optimizers=OPTIMIZERS)
    assert {"nin", "nin-nobn"} <= set(_legend_colors(fig))
    assert not _line_colors(fig) & set(style.OPTIMIZER_PALETTE)


def test_figure_functions_leave_the_theme_alone(monkeypatch):
    monkeypatch.setattr(style, "apply_theme", lambda: pytest.fail("a figure function re-applied the theme"))
    import matplotlib

    before = dict(matplotlib.rcParams)
    _draw("im2016.learning_curves")
    assert dict(matplotlib.rcParams) == before
    assert matplotlib.rcParams["axes.grid"] and matplotlib.rcParams["pdf.fonttype"] == 42


# --------------------------------------------------------------------------- resolver, saving, imports


def test_figure_function_resolves_every_public_figure():
    assert family_modules() == tuple(sorted(FAMILIES))
    assert len(ALL_FIGURES) == 35 and set(figure_args()) == set(ALL_FIGURES)  # each is drawn by the tests above
    for name in ALL_FIGURES:
        module, function = name.split(".")
        fn = figure_function(name)
        assert callable(fn) and fn.__name__ == function and fn.__module__ == f"lossland.plots.{module}"
    assert figure_function("landscape.pca_planes") is landscape.pca_planes
    assert figure_function("hessian.hessian_density") is hessian.hessian_density


@pytest.mark.parametrize("bad, says", [
    ("im2016.nope", "im2016.optimizer_accuracy"),
    ("nope.optimizer_accuracy", "hessian, im2016, landscape"),
    ("optimizer_accuracy", "allowed modules"),
    ("im2016.with_lr_label", "im2016.learning_curves"),
    ("style.save_figure", "allowed modules"),
])
def test_figure_function_rejects_a_bad_name_helpfully(bad, says):
    with pytest.raises(ValueError, match=says):
        figure_function(bad)


def test_save_figure_writes_png_and_pdf(tmp_path):
    fig = _draw("landscape.random_planes")
    png, pdf = tmp_path / "out" / "fig.png", tmp_path / "out" / "fig.pdf"
    save_figure(fig, png, pdf)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and pdf.read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in png.parent.iterdir()) == ["fig.pdf", "fig.png"]  # no temporary left
    save_figure(_draw("im2016.learning_curves"), tmp_path / "only.png")
    assert (tmp_path / "only.png").stat().st_size > 0 and not (tmp_path / "only.pdf").exists()


def _imports_in_subprocess(code: str, *, stub_parent: bool) -> set[str]:
    """The modules ``code`` leaves in sys.modules of a fresh interpreter; with ``stub_parent``
    the ``lossland`` package is an empty stand-in (its ``__init__`` is not run)."""
    stub = ("import sys, types; m = types.ModuleType('lossland'); m.__path__ = [%r]; sys.modules['lossland'] = m; "
            % str(SRC / "lossland")) if stub_parent else "import sys; "
    out = subprocess.run([sys.executable, "-c", stub + code + "; print('\\n'.join(sorted(sys.modules)))"],
                         capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    return set(out.stdout.split())


ALL_MODULES = ("import lossland.plots.style, lossland.plots.im2016, lossland.plots.hessian, lossland.plots.landscape, "
               "lossland.plots.batchnorm")


def test_the_plots_package_imports_no_torch_and_no_other_lossland_module():
    mods = _imports_in_subprocess(ALL_MODULES, stub_parent=True)
    assert "torch" not in mods and "seaborn" not in mods and "matplotlib.pyplot" not in mods
    assert {m for m in mods if m.startswith("lossland.") and not m.startswith("lossland.plots")} == set()
    light = _imports_in_subprocess("import lossland.plots", stub_parent=True)
    assert not {"lossland.plots.im2016", "lossland.plots.hessian", "lossland.plots.landscape"} & light


def test_importing_lossland_plots_does_not_import_torch():
    mods = _imports_in_subprocess(ALL_MODULES, stub_parent=False)
    assert "torch" not in mods and "seaborn" not in mods


# --------------------------------------------------------------------------- diverged runs: all-NaN tables

DIVERGED_RUN = _ids("nin", "adadelta", 0)["run"]
MEASURES = ("loss", "accuracy", "distance", "alpha", "init_distance", "functional_distance", "disagreement",
            "top_eigenvalue", "trace", "epsilon_sharpness", "ball_sharpness", "predicted_trace",
            "top_eigenvalue_bound", "rel_output_diff", "max_output_diff", "test_loss", "mean_grad_norm",
            "median_grad_norm", "predicted_mean_grad_norm", "ratio_min", "ratio_max", "rank_correlation",
            "grad_norm", "x", "y", "explained_variance_ratio_x", "explained_variance_ratio_y")


def _diverge(df: pd.DataFrame, rows, keep=()) -> pd.DataFrame:
    """``df`` with every measured column of ``rows`` NaN (inf in ``loss``), but the columns in ``keep``."""
    df = df.copy()
    for col in (c for c in MEASURES if c in df and c not in keep):
        df.loc[rows, col] = np.inf if col == "loss" else np.nan
    return df


def _says_diverged(ax) -> bool:
    texts = [t.get_text() for t in ax.texts]
    if ax.get_legend() is not None:
        texts += [t.get_text() for t in ax.get_legend().get_texts()]
    return any("diverged" in t for t in [*texts, ax.get_title(), ax.get_xlabel(), ax.get_ylabel()])


def _assert_finite_limits(fig) -> None:
    fig.canvas.draw()  # renders: no NaN limits, no log axis without positive values
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        lims = [ax.get_xlim(), ax.get_ylim(), *([ax.get_zlim()] if hasattr(ax, "get_zlim") else [])]
        assert np.isfinite(lims).all(), (ax.get_title(), lims)
        for lim, scale in ((ax.get_xlim(), ax.get_xscale()), (ax.get_ylim(), ax.get_yscale())):
            assert scale != "log" or min(lim) > 0, (ax.get_title(), lim)


def _panels_of(fig, word: str):
    return [ax for ax in fig.axes if ax.get_visible() and word in ax.get_title()]


def test_a_diverged_run_is_shown_as_diverged_on_the_distance_paths():
    lines = landscape_tables(seeds=(0,))["distance"]  # adadelta's one run diverged
    lines = _diverge(lines, lines["run"] == DIVERGED_RUN, keep=("accuracy",))
    fig = landscape.distance_paths(lines, optimizers=OPTIMIZERS)
    _assert_finite_limits(fig)
    assert "adadelta (diverged)" in _legend_colors(fig) and "sgd" in _legend_colors(fig)
    stars = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_marker() == "*"]
    assert stars and all(np.isfinite(np.asarray(ln.get_xydata(), float)).all() for ln in stars)
    alone = landscape.distance_paths(lines[lines["run"] == DIVERGED_RUN], optimizers=OPTIMIZERS)
    _assert_finite_limits(alone)
    panels = [ax for ax in alone.axes if ax.get_title()]
    assert len(panels) == 2 and all(style.NO_FINITE_VALUES in [t.get_text() for t in ax.texts] for ax in panels)
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in panels)


def test_a_diverged_run_is_shown_as_diverged_on_the_optimizer_grid():
    lt = landscape_tables()
    bary, ff = lt["barycentric"], lt["final_final"]
    bary = _diverge(bary, (bary["optimizer_a"] == "adadelta") | (bary["optimizer_b"] == "adadelta"))
    ff = _diverge(ff, (ff["optimizer_a"] == "adadelta") | (ff["optimizer_b"] == "adadelta"), keep=("alpha",))
    fig = landscape.optimizer_grid(bary, ff, optimizers=OPTIMIZERS)
    _assert_finite_limits(fig)
    planes = [ax for ax in _panels_of(fig, "plane: init") if "adadelta" in ax.get_title()]
    lines = [ax for ax in _panels_of(fig, "FD ") if "adadelta" in ax.get_title()]
    assert len(planes) == 2 and all(style.NO_FINITE_VALUES in [t.get_text() for t in ax.texts] for ax in planes)
    assert len(lines) == 2 and all("FD diverged" in ax.get_title() for ax in lines)
    fine = [ax for ax in _panels_of(fig, "plane: init") if "adadelta" not in ax.get_title()]
    assert fine and not any(_says_diverged(ax) for ax in fine)
    cbar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")
    loss = bary.loc[(bary["split"] == "train") & (bary["seed"] == 0), "loss"]
    logs = np.log10(loss[np.isfinite(loss)])
    assert np.allclose(sorted(cbar.get_ylim()), [logs.min(), logs.max()])  # the finite planes' colour scale


@pytest.mark.parametrize("kind", ["random_plane", "pca"])
def test_a_diverged_run_is_shown_as_diverged_on_its_plane(kind):
    lt = landscape_tables()
    plane = lt[kind]
    plane = _diverge(plane, plane["run"] == DIVERGED_RUN, keep=("x", "y"))
    if kind == "pca":
        traj = lt["pca_trajectory"]
        fig = landscape.pca_planes(plane, _diverge(traj, traj["run"] == DIVERGED_RUN), optimizers=OPTIMIZERS)
    else:
        fig = landscape.random_planes(plane, optimizers=OPTIMIZERS)
    _assert_finite_limits(fig)
    mine = _panels_of(fig, "adadelta")
    assert mine and all(style.NO_FINITE_VALUES in [t.get_text() for t in ax.texts] for ax in mine)
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in mine)
    others = [ax for ax in fig.axes if ax.get_visible() and ax.get_title() and ax not in mine]
    assert others and not any(_says_diverged(ax) for ax in others)
    if kind == "pca":
        assert all("diverged" in ax.get_xlabel() for ax in mine)  # no explained variance to state


def test_a_diverged_run_is_shown_as_diverged_on_the_alpha_scale_sweep():
    sweep = reparam_tables()[0]
    sweep = _diverge(sweep, sweep["model"] == "nin", keep=("alpha",))  # the BN-scale series
    fig = reparam.alpha_scale_sharpness(sweep, optimizers=OPTIMIZERS)
    _assert_finite_limits(fig)
    measures = [ax for ax in fig.axes if ax.get_title() in {p[3] for p in reparam.SCALE_PANELS}]
    assert len(measures) == 4 and all("diverged: no finite values" in [t.get_text() for t in ax.texts]
                                      for ax in measures)
    loss = next(ax for ax in fig.axes if ax.get_title().startswith("test loss"))
    assert min(loss.get_ylim()) < 2.2 < max(loss.get_ylim()) and max(loss.get_ylim()) < 3  # from the finite losses
    alone = reparam.alpha_scale_sharpness(sweep[sweep["model"] == "nin"], optimizers=OPTIMIZERS)
    _assert_finite_limits(alone)
    panels = [ax for ax in alone.axes if ax.get_visible() and ax.get_title()]
    assert len(panels) == 6 and all(style.NO_FINITE_VALUES in [t.get_text() for t in ax.texts] for ax in panels)
    assert not any("nan" in t.get_text() for ax in alone.axes for t in ax.texts)


def test_a_diverged_run_is_shown_as_diverged_on_the_weight_norm_and_input_figure():
    sweep, inputs, examples = reparam_tables()
    run = "relu-mlp_sgd-lr0.1_init0"  # the only weight-norm series, and one of the two input runs
    sweep = _diverge(sweep, sweep["run"] == run, keep=("alpha",))
    inputs = _diverge(inputs, inputs["run"] == run, keep=("alpha",))
    examples = _diverge(examples, examples["run"] == run)
    fig = reparam.weight_norm_and_input(sweep, inputs, examples, optimizers=OPTIMIZERS)
    _assert_finite_limits(fig)
    weight_norm = _panels_of(fig, "weight norm: ")
    assert len(weight_norm) == 2 and all(style.NO_FINITE_VALUES in [t.get_text() for t in ax.texts]
                                         for ax in weight_norm)
    notes = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "relu-mlp weight norm: diverged" in notes and "relu-mlp standardize: Spearman diverged" in notes
    assert any(t.startswith("nin standardize: Spearman 1.00") for t in notes)  # the finite run as before
    assert not any("nan" in t for t in notes)
