"""Caption numbers, caption templates and figures of the sharpness family (Keskar et al.'s batch
sizes, Li et al.'s skip connections and widths): hand-made tables with the workflow's columns
whose barriers, eigenvalues, convexity ratios and shares of non-convex plane points are known in
closed form; every template rendered under StrictUndefined into reStructuredText that docutils
parses without a warning; a diverged run drawn and named, not a crash."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import ROOT

from families.test_connectivity_captions import parse_rst
from lossland.pipeline import captions
from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.pipeline.families import sharpness as sh
from lossland.plots import caption_numbers, figure_function, sharpness, style

# --------------------------------------------------------------------------- batch size (Keskar et al.)

ALPHAS = np.linspace(-0.5, 1.5, 21)  # as the workflow's line axis: 0 and 1 only to rounding
#: batch size: (lr, top eigenvalue, ε-sharpness %, train acc, test acc, distance from init, bump h, outer slope s)
BATCHES = {32: (0.05, 10.0, 0.5, 0.99, 0.62, 12.0, None, None),
           128: (0.08, 25.0, 1.2, 0.98, 0.58, 8.0, 0.2, 3.0),
           500: (0.1, 60.0, 2.5, 0.97, 0.55, 5.0, 0.4, 6.0)}
L_SMALL, L_LARGE = 0.05, 0.08  # training loss at the small-batch and at every larger-batch solution


def line_loss(alpha: float, h: float, s: float) -> float:
    """Train loss along small → large: linear plus h·sin(πα) between the ends (peak at α 0.5 on the
    grid: 0.065 + h, so the barrier over the higher end 0.08 is h − 0.015), 2α² before α 0 and
    s(α − 1)² past α 1."""
    if alpha < 0:
        return L_SMALL + 2 * alpha ** 2
    if alpha > 1:
        return L_LARGE + s * (alpha - 1) ** 2
    return L_SMALL + (L_LARGE - L_SMALL) * alpha + h * math.sin(math.pi * alpha)


def batch_solutions() -> pd.DataFrame:
    rows = []
    for bs, (lr, top, eps, tr, te, dist, _, _) in BATCHES.items():
        run = f"resnet8_sgdm-lr{lr:g}-bs{bs}_init0"
        rows.append(dict(run=run, dataset="cifar10-small", model="resnet8", optimizer="sgdm", algorithm="sgdm", lr=lr,
                         seed=0, batch_size=bs, epochs=20, epoch=20, train_loss=L_SMALL if bs == 32 else L_LARGE,
                         train_acc=tr, test_loss=1.2, test_acc=te, dist_from_init=dist, diverged=False,
                         top_eigenvalue=top, bottom_eigenvalue=-0.01 * top, trace=20 * top, epsilon_sharpness=eps,
                         negative_fraction=0.05, n_params=78_000, convexity_ratio=0.01))
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1)  # rows in any order


def batch_interpolation() -> pd.DataFrame:
    rows = []
    start = "resnet8_sgdm-lr0.05-bs32_init0"
    for bs, (lr, *_, h, s) in BATCHES.items():
        if h is None:
            continue
        a0, a1 = BATCHES[32][4], BATCHES[bs][4]  # test accuracy at the two solutions
        for split in ("train", "test"):
            for a in ALPHAS:
                loss = line_loss(a, h, s)
                lin = L_SMALL + (L_LARGE - L_SMALL) * a
                acc = (BATCHES[32][3] if split == "train" else a0) + ((BATCHES[bs][3] if split == "train" else a1)
                                                                      - (BATCHES[32][3] if split == "train" else a0)) * a
                rows.append(dict(dataset="cifar10-small", model="resnet8", seed=0, start=start,
                                 end=f"resnet8_sgdm-lr{lr:g}-bs{bs}_init0", batch_size_start=32, batch_size_end=bs,
                                 alpha=a, split=split, loss=loss + (0.9 if split == "test" else 0.0),
                                 accuracy=float(np.clip(acc - 0.5 * (loss - lin), 0.0, 1.0))))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- architecture (Li et al.)

XS = np.linspace(-1.0, 1.0, 11)
CONV = np.array([-1.0, 0.0, 1.0])
#: model: (depth, width, skip, top eigenvalue, bottom eigenvalue, ε-sharpness %, test acc, convexity map a + b(|x|+|y|))
MODELS = {"resnet8": (8, 0.5, True, 20.0, -0.2, 1.0, 0.60, (0.01, 0.01)),
          "resnet8-noshort": (8, 0.5, False, 40.0, -12.0, 3.0, 0.55, (0.3, 0.1)),
          "resnet14": (14, 0.5, True, 30.0, -0.6, 1.5, 0.62, (0.02, 0.01)),
          "resnet14-noshort": (14, 0.5, False, 80.0, -40.0, 6.0, 0.50, (0.5, 0.2)),
          "resnet8-x2": (8, 1.0, True, 8.0, -0.04, 0.6, 0.66, (0.005, 0.002))}


def plane_loss(model: str, x: float, y: float) -> float:
    """With skips a bowl (every interior point convex); resnet8-noshort a saddle (none convex);
    resnet14-noshort x² + (y − 0.1)³: convex only where y > 0.1, 4 of the 9 interior rows."""
    if model == "resnet8-noshort":
        return 1.0 + x * x - 0.5 * y * y
    if model == "resnet14-noshort":
        return 2.0 + x * x + (y - 0.1) ** 3
    scale = {"resnet8": 0.5, "resnet14": 0.8, "resnet8-x2": 0.2}[model]
    return 0.05 + scale * (x * x + y * y)


def _arch_ids(model):
    depth, width, skip, *_ = MODELS[model]
    return dict(run=f"{model}_sgdm-lr0.1_init0", dataset="cifar10-small", model=model, optimizer="sgdm",
                algorithm="sgdm", lr=0.1, seed=0, arch="resnet", depth=depth, width=width, skip=skip, batch_norm=True)


def architecture_solutions() -> pd.DataFrame:
    rows = []
    for model, (*_, top, bottom, eps, test_acc, _) in MODELS.items():
        rows.append(dict(**_arch_ids(model), epoch=10, train_loss=0.05, train_acc=0.99, test_loss=1.3,
                         test_acc=test_acc, dist_from_init=9.0, diverged=False, top_eigenvalue=top,
                         bottom_eigenvalue=bottom, trace=10 * top, epsilon_sharpness=eps, negative_fraction=0.1,
                         n_params=20_000, convexity_ratio=abs(bottom / top)))
    return pd.DataFrame(rows)


def architecture_surfaces() -> pd.DataFrame:
    rows = []
    for model in MODELS:
        ids = _arch_ids(model)
        for x in XS:
            for y in XS:
                rows.append(dict(kind="random_plane", name=ids["run"], **ids, x=x, y=y, split="train",
                                 loss=plane_loss(model, x, y), accuracy=0.9))
    return pd.DataFrame(rows).sample(frac=1.0, random_state=2)


def architecture_convexity(num: int = 3) -> pd.DataFrame:
    grid = CONV if num == 3 else np.array([0.0])
    rows = []
    for model, (*_, top, bottom, _, _, (a, b)) in MODELS.items():
        for x in grid:
            for y in grid:
                ratio = a + b * (abs(x) + abs(y))
                rows.append(dict(**_arch_ids(model), split="train", x=x, y=y, top_eigenvalue=top,
                                 bottom_eigenvalue=-ratio * top, convexity_ratio=ratio, seconds=0.1))
    return pd.DataFrame(rows)


def tables() -> dict[str, pd.DataFrame]:
    return {"batch_size_solutions": batch_solutions(), "batch_size_interpolation": batch_interpolation(),
            "architecture_solutions": architecture_solutions(), "architecture_surfaces": architecture_surfaces(),
            "architecture_convexity": architecture_convexity()}


# --------------------------------------------------------------------------- the tests


@pytest.fixture(scope="module")
def config():
    return C.check_config(yaml.safe_load((ROOT / "config.yaml").read_text()), C.load_schema())


def numbers(name, t=None):
    t = tables() if t is None else t
    fig = sh.FIGURES[name]
    return caption_numbers(fig.function)(*[t[x] for x in fig.tables], optimizers=["sgdm"])


def draw(name, t=None):
    t = tables() if t is None else t
    fig = sh.FIGURES[name]
    return figure_function(fig.function)(*[t[x] for x in fig.tables], optimizers=["sgdm"])


def test_every_figure_function_has_caption_numbers_called_like_it():
    assert set(sharpness.CAPTION_NUMBERS) == set(sharpness.FIGURE_FUNCTIONS)
    assert {f.function.split(".")[1] for f in sh.FIGURES.values()} == set(sharpness.FIGURE_FUNCTIONS)
    for name in sharpness.FIGURE_FUNCTIONS:
        fn = caption_numbers(f"sharpness.{name}")
        assert list(inspect.signature(fn).parameters) == list(
            inspect.signature(figure_function(f"sharpness.{name}")).parameters), name
    assert {n: F.figure_section(n) for n in sh.FIGURES} == {
        "keskar_interpolation": "batch_size", "keskar_sharpness": "batch_size", "li_skip_surfaces": "architecture",
        "li_skip_surfaces_3d": "architecture", "li_convexity": "architecture", "li_width": "architecture"}


def test_interpolation_numbers_are_the_ends_barriers_and_peaks():
    n = numbers("keskar_interpolation")
    assert (n["small_batch"], n["large_batches"], n["alpha_range"]) == ("32", "128, 500", "-0.5 to 1.5")
    assert n["start_loss"] == "0.0500" and n["end_loss"] == "batch 128: 0.0800; batch 500: 0.0800"
    # peak at α 0.5: 0.065 + h; the barrier over the higher end (0.08): h − 0.015
    assert n["barrier"] == "batch 128: 0.185; batch 500: 0.385"
    assert n["peak"] == "batch 128: 0.265 at α 0.5; batch 500: 0.465 at α 0.5"
    # α −0.5: 0.05 + 2·0.25; α 1.5: 0.08 + s·0.25
    assert n["outer_loss"] == ("batch 128: 0.550 at α -0.5, 0.830 at α 1.5; "
                               "batch 500: 0.550 at α -0.5, 1.58 at α 1.5")
    assert n["start_test_acc"] == "62.0 %" and n["end_test_acc"] == "batch 128: 58.0 %; batch 500: 55.0 %"
    assert n["loss_scale"] == "logarithmic"  # 0.05 (train) to 2.48 (test at α 1.5)
    assert (n["model"], n["inits"], n["split"]) == ("resnet8", "0", "train")


def test_sharpness_numbers_are_per_batch_size_and_their_ratio():
    n = numbers("keskar_sharpness")
    assert n["batch_sizes"] == "32, 128, 500" and (n["small"], n["large"]) == ("32", "500")
    assert n["top_eigenvalue"] == "batch 32: 10.0; batch 128: 25.0; batch 500: 60.0"
    assert n["epsilon_sharpness"] == "batch 32: 0.500 %; batch 128: 1.20 %; batch 500: 2.50 %"
    assert n["top_ratio"] == "6.00" and n["epsilon_ratio"] == "5.00"   # 60 / 10, 2.5 / 0.5
    assert n["test_acc"] == "batch 32: 62.0 %; batch 128: 58.0 %; batch 500: 55.0 %"
    assert n["test_gap"] == "7.00 points" and n["diverged"] == "none"
    assert n["lr"] == "batch 32: 0.05; batch 128: 0.08; batch 500: 0.1" and n["epochs"] == "20"
    assert n["distance"] == "batch 32: 12.0; batch 128: 8.00; batch 500: 5.00"


def test_skip_surface_numbers_are_the_ratios_and_the_shares_of_nonconvex_points():
    for name in ("li_skip_surfaces", "li_skip_surfaces_3d"):
        n = numbers(name)
        assert n["pairs"] == ("depth 8: resnet8 and resnet8-noshort (width ×0.5); "
                              "depth 14: resnet14 and resnet14-noshort (width ×0.5)")
        assert n["unpaired"] == "resnet8-x2"  # the wider ResNet-8 has no partner without skips
        assert n["grid"] == "11 × 11 points on [-1, 1] × [-1, 1]"
        # |bottom / top|: 0.2/20, 12/40, 0.6/30, 40/80
        assert n["centre_ratio"] == "depth 8: 0.0100 with skips, 0.300 without; depth 14: 0.0200 with skips, 0.500 without"
        # bowls: no interior point non-convex; the saddle: all; x² + (y − 0.1)³: the 5 of 9 rows with y ≤ 0.1
        assert n["nonconvex"] == "depth 8: 0 % with skips, 100 % without; depth 14: 0 % with skips, 55.6 % without"
        assert n["centre_loss"] == "depth 8: 0.0500 with skips, 1.00 without; depth 14: 0.0500 with skips, 2.00 without"
        # highest: 0.05 + 2·0.5; 1 + 1 (x = ±1, y = 0); 0.05 + 2·0.8; 2 + 1 + 0.9³
        assert n["max_loss"] == "depth 8: 1.05 with skips, 2.00 without; depth 14: 1.65 with skips, 3.73 without"
        assert n["loss_range"] == "0.0500 to 3.73"


def test_convexity_numbers_are_the_centre_and_the_map_means():
    n = numbers("li_convexity")
    assert n["grid"] == "3 × 3 points on [-1, 1] × [-1, 1]" and n["split"] == "train"
    assert n["centre_ratio"] == "depth 8: 0.0100 with skips, 0.300 without; depth 14: 0.0200 with skips, 0.500 without"
    # a + b(|x| + |y|) over {-1, 0, 1}²: mean of |x| + |y| is 4/3, highest 2
    means = [0.01 + 0.01 * 4 / 3, 0.3 + 0.1 * 4 / 3, 0.02 + 0.01 * 4 / 3, 0.5 + 0.2 * 4 / 3]
    assert [round(v, 4) for v in means] == [0.0233, 0.4333, 0.0333, 0.7667]
    assert n["map_mean"] == ("depth 8: 0.0233 with skips, 0.433 without; "
                             "depth 14: 0.0333 with skips, 0.767 without")
    assert n["map_max"] == "depth 8: 0.0300 with skips, 0.500 without; depth 14: 0.0400 with skips, 0.900 without"
    assert n["diverged_points"] == "none"
    t = tables()
    t["architecture_convexity"] = architecture_convexity(num=1)  # the centre only: the map mean is the centre
    one = numbers("li_convexity", t)
    assert one["grid"] == "the centre only (a 1 × 1 grid)"
    assert one["map_mean"] == "depth 8: 0.0100 with skips, 0.300 without; depth 14: 0.0200 with skips, 0.500 without"


def test_width_numbers_are_the_top_eigenvalue_per_width():
    n = numbers("li_width")
    assert n["groups"] == "ResNet-8 (resnet8, resnet8-x2)"
    assert n["top_eigenvalue"] == "ResNet-8: ×0.5 20.0, ×1 8.00" and n["top_ratio"] == "ResNet-8: 0.400"
    assert n["epsilon_sharpness"] == "ResNet-8: ×0.5 1.00 %, ×1 0.600 %"
    assert n["test_acc"] == "ResNet-8: ×0.5 60.0 %, ×1 66.0 %" and n["nonconvex"] == "ResNet-8: ×0.5 0 %, ×1 0 %"


def test_every_template_renders_into_valid_rst(config):
    for name in sh.FIGURES:
        template = (ROOT / "workflow" / "report" / F.caption_template(name)).read_text()
        text = captions.render(template, numbers(name), config, F.figure_section(name))
        assert "{{" not in text and "Scale:" in text and "n/a" not in text, name
        parse_rst(text)


# --------------------------------------------------------------------------- diverged runs

DIVERGED_BATCH, DIVERGED_MODEL = 500, "resnet14-noshort"


def diverged_tables(model: str = DIVERGED_MODEL) -> dict[str, pd.DataFrame]:
    """The batch-500 run and ``model`` diverged: NaN measures, inf losses."""
    t = tables()
    s = t["batch_size_solutions"]
    bad = s["batch_size"] == DIVERGED_BATCH
    for col in ("train_loss", "train_acc", "test_loss", "test_acc", "dist_from_init", *sh.HESSIAN_COLUMNS,
                "convexity_ratio"):
        s.loc[bad, col] = np.nan
    s.loc[bad, "diverged"] = True
    line = t["batch_size_interpolation"]
    line.loc[line["batch_size_end"] == DIVERGED_BATCH, ["loss", "accuracy"]] = [np.inf, np.nan]
    a = t["architecture_solutions"]
    bad = a["model"] == model
    for col in ("train_loss", "train_acc", "test_loss", "test_acc", *sh.HESSIAN_COLUMNS, "convexity_ratio"):
        a.loc[bad, col] = np.nan
    a.loc[bad, "diverged"] = True
    surf = t["architecture_surfaces"]
    surf.loc[surf["model"] == model, "loss"] = np.inf
    conv = t["architecture_convexity"]
    conv.loc[conv["model"] == model, ["top_eigenvalue", "bottom_eigenvalue", "convexity_ratio"]] = np.nan
    return t


def _texts(fig) -> list[str]:
    out = [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]
    out += [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    return out


@pytest.mark.parametrize("name", list(sh.FIGURES))
def test_a_diverged_run_draws_and_says_so(name):
    t = diverged_tables("resnet8-x2" if name == "li_width" else DIVERGED_MODEL)  # li_width: a run it shows
    fig = draw(name, t)
    fig.canvas.draw()  # renders: no NaN limits, no log axis without positive values
    for ax in fig.axes:
        if ax.get_visible():
            assert np.isfinite([*ax.get_xlim(), *ax.get_ylim()]).all(), ax.get_title()
    assert any("diverged" in text for text in _texts(fig)), name
    assert not any("nan" in text.lower().split() for text in _texts(fig)), name
    n = numbers(name, t)
    assert "nan" not in " ".join(n.values()).lower().split()
    if name == "keskar_sharpness":
        assert n["diverged"] == "batch 500" and n["top_ratio"] == "diverged"
        assert n["top_eigenvalue"] == "batch 32: 10.0; batch 128: 25.0; batch 500: diverged"
    if name == "keskar_interpolation":
        assert n["barrier"] == "batch 128: 0.185; batch 500: diverged"
    if name == "li_skip_surfaces":
        assert n["nonconvex"].endswith("depth 14: 0 % with skips, diverged without")
        assert n["centre_ratio"].endswith("0.0200 with skips, diverged without")
    if name == "li_convexity":
        assert n["map_mean"].endswith("0.0333 with skips, diverged without") and n["diverged_points"] == "9 of 36"
    if name == "li_width":
        assert n["top_eigenvalue"] == "ResNet-8: ×0.5 20.0, ×1 diverged" and n["top_ratio"] == "ResNet-8: diverged"


def test_a_figure_with_only_diverged_values_still_draws():
    t = diverged_tables()
    t["batch_size_interpolation"]["loss"] = np.inf
    t["batch_size_interpolation"]["accuracy"] = np.nan
    t["architecture_surfaces"]["loss"] = np.nan
    t["architecture_convexity"]["convexity_ratio"] = np.nan
    for name in sh.FIGURES:
        fig = draw(name, t)
        fig.canvas.draw()
        if name != "keskar_sharpness":
            assert style.NO_FINITE_VALUES in _texts(fig), name


def test_without_a_pair_or_a_width_group_the_figures_say_so():
    t = tables()
    a = t["architecture_solutions"]
    t["architecture_solutions"] = a[a["skip"]]  # no ResNet without skips, one width per depth after all
    t["architecture_solutions"] = t["architecture_solutions"][t["architecture_solutions"]["model"] != "resnet8-x2"]
    for name in ("li_skip_surfaces", "li_skip_surfaces_3d", "li_convexity", "li_width"):
        fig = draw(name, t)
        fig.canvas.draw()
        assert any(text.startswith("no ") for text in _texts(fig)), name
        assert numbers(name, t)  # and the caption numbers say n/a, no error


def test_skip_colours_are_the_same_in_every_skip_figure():
    from matplotlib.colors import to_hex

    for name in ("li_skip_surfaces", "li_skip_surfaces_3d", "li_convexity"):
        fig = draw(name)
        titles = {ax.get_title().split("\n")[0]: to_hex(ax.title.get_color()) for ax in fig.axes if ax.get_title()}
        with_skips = {c for k, c in titles.items() if "with skip" in k and "without" not in k}
        without = {c for k, c in titles.items() if "without skip" in k}
        assert with_skips == {sharpness.SKIP_COLORS[True]} and without == {sharpness.SKIP_COLORS[False]}, name


def test_the_loss_planes_share_one_colour_bar():
    for name in ("li_skip_surfaces", "li_skip_surfaces_3d", "li_width", "li_convexity"):
        fig = draw(name)
        bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
        assert len(bars) == 1 and bars[0].get_ylabel(), name
    fig = draw("li_skip_surfaces")
    bar = next(ax for ax in fig.axes if ax.get_label() == "<colorbar>")
    assert np.allclose(sorted(bar.get_ylim()), np.log10([0.05, 2 + 1 + 0.9 ** 3]))


def test_a_narrower_model_with_skips_only_joins_the_width_figure_not_the_skip_pairs():
    t = tables()
    a = t["architecture_solutions"]
    a.loc[a["model"] == "resnet8-x2", "width"] = 0.25  # config.yaml's resnet8-narrow: no partner without skips
    n = numbers("li_skip_surfaces", t)
    assert n["pairs"].startswith("depth 8: resnet8 and resnet8-noshort (width ×0.5)") and n["unpaired"] == "resnet8-x2"
    w = numbers("li_width", t)
    assert w["groups"] == "ResNet-8 (resnet8-x2, resnet8)" and w["top_eigenvalue"] == "ResNet-8: ×0.25 8.00, ×0.5 20.0"
    draw("li_width", t).canvas.draw()
