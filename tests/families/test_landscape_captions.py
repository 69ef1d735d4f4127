"""The landscape figures' captions: the numbers each figure shows (from small tables with the
workflow's columns and losses chosen so the barrier, the basin width and the extremes are
known), inputs they must survive (one pair, one init, one split, diverged runs), and every
template rendered into reStructuredText that docutils parses without a warning."""

from __future__ import annotations

import inspect
import re
import warnings
from pathlib import Path

import docutils.core
import numpy as np
import pandas as pd
import pytest
from tiny import TINY

from lossland.pipeline import captions
from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.pipeline.families import landscape as lplan
from lossland.plots import caption_numbers, landscape

ROOT = Path(__file__).resolve().parents[2]
OPTIMIZERS = ["sgd", "adam", "adadelta", "rmsprop"]
LR = {"sgd": 0.1, "adam": 0.001, "adadelta": 1.0, "rmsprop": 0.001}


# --------------------------------------------------------------------------- tables (the real columns)


def run_ids(optimizer, seed=0, model="nin"):
    return dict(run=f"{model}_{optimizer}-lr{LR[optimizer]:g}_init{seed}", dataset="cifar10-small", model=model,
                optimizer=optimizer, algorithm=optimizer, lr=LR[optimizer], seed=seed)


def pair_ids(a, b, seed=0, model="nin"):
    ra, rb = run_ids(a, seed, model)["run"], run_ids(b, seed, model)["run"]
    return dict(dataset="cifar10-small", model=model, seed=seed, run_a=ra, run_b=rb, optimizer_a=a, optimizer_b=b)


def init_final_table(curves, splits=("train", "test"), seeds=(0,)):
    """``curves``: ``{optimizer: loss(alpha)}`` on α = 0, 0.25, ..., 2 (columns of landscape_init_final)."""
    rows = []
    for opt, loss in curves.items():
        for seed in seeds:
            ids = run_ids(opt, seed)
            for split in splits:
                for a in np.linspace(0, 2, 9):
                    rows.append(dict(kind="init_final", **ids, start="init", end=ids["run"], alpha=a, split=split,
                                     loss=loss(a) + 0.01 * seed, accuracy=0.5))
    return pd.DataFrame(rows)


def final_final_table(pairs, splits=("train", "test"), seeds=(0,)):
    """``pairs``: ``{(a, b): (loss(alpha), functional distance at 1, disagreement at 1)}`` on
    α = -0.5, -0.25, ..., 1.5 (columns of landscape_final_final)."""
    rows = []
    for (a, b), (loss, fd, dis) in pairs.items():
        for seed in seeds:
            ids = pair_ids(a, b, seed)
            for split in splits:
                extra = 0.02 if split == "test" else 0.0
                for al in np.linspace(-0.5, 1.5, 9):
                    rows.append(dict(kind="final_final", **ids, start=ids["run_a"], end=ids["run_b"], alpha=al,
                                     split=split, loss=loss(al), accuracy=0.5,
                                     functional_distance=(fd + extra) * abs(al), disagreement=(dis + extra) * abs(al)))
    return pd.DataFrame(rows)


def distance_table(paths, splits=("train", "test")):
    """``paths``: ``{optimizer: (|init - final|, loss(distance))}``, α = 0, 0.1, ..., 1.5 of it."""
    rows = []
    for opt, (norm, loss) in paths.items():
        ids = run_ids(opt)
        for split in splits:
            for a in np.linspace(0, 1.5, 16):
                rows.append(dict(kind="distance", **ids, start=ids["run"], end="init", distance=a * norm, alpha=a,
                                 split=split, loss=loss(a * norm), accuracy=0.5, init_distance=norm))
    return pd.DataFrame(rows)


def grid(lo, hi, num):
    return [(x, y) for x in np.linspace(lo, hi, num) for y in np.linspace(lo, hi, num)]


def barycentric_table(pairs, loss, splits=("train", "test")):
    return pd.DataFrame([dict(kind="barycentric", name=f"{ids['run_a']}__{ids['run_b']}", **ids, x=x, y=y,
                              w0=1 - x - y, w1=x, w2=y, split=split, loss=loss(x, y), accuracy=0.5)
                         for a, b in pairs for ids in [pair_ids(a, b)] for split in splits
                         for x, y in grid(-0.25, 1.25, 7)])


def bilinear_table(corners, loss, splits=("train", "test"), seeds=(0,)):
    return pd.DataFrame([dict(kind="bilinear", name=f"nin_init{s}", dataset="cifar10-small", model="nin", seed=s,
                              corners=",".join(corners), x=x, y=y, split=split, loss=loss(x, y), accuracy=0.5)
                         for s in seeds for split in splits for x, y in grid(-0.25, 1.25, 7)])


def plane_table(kind, optimizers, loss, lo=-1.0, hi=1.0, splits=("train", "test")):
    return pd.DataFrame([dict(kind=kind, name=run_ids(o)["run"], **run_ids(o), x=x, y=y, split=split,
                              loss=loss(x, y) + k, accuracy=0.5)
                         for k, o in enumerate(optimizers) for split in splits for x, y in grid(lo, hi, 5)])


def trajectory_table(optimizers, ev=(0.8, 0.15), epochs=(0, 1, 2)):
    return pd.DataFrame([dict(kind="pca", name=run_ids(o)["run"], **run_ids(o), step=i, epoch=e, x=1.0 - i / 2,
                              y=0.1 * i, explained_variance_ratio_x=ev[0], explained_variance_ratio_y=ev[1])
                         for o in optimizers for i, e in enumerate(epochs)])


def switching_table(lines, splits=("train", "test")):
    """``lines``: ``{(start label, end label): losses at α = 0, 0.25, ..., 1}``."""
    run = {"sgd only": "nin_sgd-lr0.1_init0"}
    rows = []
    for (a, b), losses in lines.items():
        for split in splits:
            for al, loss in zip(np.linspace(0, 1, len(losses)), losses):
                rows.append(dict(kind="switching", dataset="cifar10-small", model="nin", seed=0, first="sgd",
                                 then="adam", start=run.get(a, f"nin_{a}_init0"), end=run.get(b, f"nin_{b}_init0"),
                                 start_label=a, end_label=b, alpha=al, split=split, loss=loss, accuracy=0.5))
    return pd.DataFrame(rows)


def sgd_line(a):  # 2.4 at the init, 2.0 at the final, falling in between; 2 + 10 (α - 1)² past it
    return 2.4 - 0.4 * a if a <= 1 else 2.0 + 10 * (a - 1) ** 2


def adam_line(a):  # 2.4 at the init, 1.6 at the final; 2.9 at α = 0.25: a barrier of 0.5 over the init
    return {0.0: 2.4, 0.25: 2.9, 0.5: 2.2, 0.75: 1.9, 1.0: 1.6}.get(round(a, 2), 1.6 + (a - 1))


def bump(first, second, height):
    """first -> second linearly, plus ``height`` × sin(πα) between them: a barrier of ``height``
    over the line through the ends at α = 0.5 (the highest interior point when ``height`` is large)."""
    return lambda a: (1 - a) * first + a * second + height * np.sin(np.pi * np.clip(a, 0, 1))


TABLES = {
    "init_final": init_final_table({"sgd": sgd_line, "adam": adam_line}),
    "final_final": final_final_table({("sgd", "adam"): (bump(2.0, 1.6, 0.7), 0.16, 0.08),
                                      ("sgd", "adadelta"): (bump(2.0, 2.2, 0.0), 0.20, 0.12)}),
    "distance": distance_table({"sgd": (4.0, lambda d: 1.8 + 0.2 * d), "adam": (2.0, lambda d: 1.6 + 0.5 * d),
                                "adadelta": (3.0, lambda d: 2.0 + 0.01 * d)}),
    "barycentric": barycentric_table([("sgd", "adam"), ("sgd", "adadelta")], lambda x, y: 1 + x + 2 * y),
    "bilinear": bilinear_table(OPTIMIZERS, lambda x, y: 1 + 2 * (x - 0.5) ** 2 + 2 * (y - 0.5) ** 2),
    "switching": switching_table({("sgd only", "S1-A3"): [1.9, 2.0, 2.2, 2.0, 1.85],
                                  ("sgd only", "S2-A2"): [1.9, 1.8, 1.7, 1.6, 1.5],
                                  ("S1-A3", "S2-A2"): [1.85, 1.9, 1.95, 1.7, 1.5]}),
    "random_plane": plane_table("random_plane", ["sgd", "adam"], lambda x, y: 1 + x * x + y * y),
    "pca": plane_table("pca", ["sgd", "adam"], lambda x, y: 0.5 + x * x + 2 * y * y, lo=-2.0, hi=2.0),
    "pca_trajectory": trajectory_table(["sgd", "adam"]),
}


def args_of(name, tables=None):
    """The positional tables of figure ``name`` (landscape FIGURES order)."""
    tables = TABLES if tables is None else tables
    return [tables[t.removeprefix("landscape_")] for t in lplan.FIGURES[name].tables]


def numbers(name, tables=None, **kwargs):
    fig = lplan.FIGURES[name]
    return caption_numbers(fig.function)(*args_of(name, tables), optimizers=OPTIMIZERS, **kwargs)


# --------------------------------------------------------------------------- the registry


def test_every_figure_function_has_caption_numbers_called_like_it():
    assert set(landscape.CAPTION_NUMBERS) == set(landscape.FIGURE_FUNCTIONS)
    for name in landscape.FIGURE_FUNCTIONS:
        fn = caption_numbers(f"landscape.{name}")
        assert fn is landscape.CAPTION_NUMBERS[name]
        assert inspect.signature(fn).parameters.keys() == inspect.signature(getattr(landscape, name)).parameters.keys()


# --------------------------------------------------------------------------- the numbers


def test_init_final_numbers():
    n = numbers("fig2_init_final")
    assert n["optimizer"] == "sgd" and n["inits"] == "1 initialisation (init 0)"
    assert (n["init_loss"], n["final_loss"], n["barrier"]) == ("2.40", "2.00", "none")
    several = numbers("fig2_init_final", {"init_final": init_final_table({"sgd": sgd_line}, seeds=(0, 1))})
    assert several["inits"] == "2 initialisations (inits 0, 1)"
    assert several["final_loss"] == "init 0 2.00, init 1 2.01"  # one entry per init
    assert several["init_loss"] == "init 0 2.40, init 1 2.41"
    other = numbers("fig2_init_final", optimizer="rmsprop")  # no rmsprop runs: every optimizer, as the figure
    assert other["optimizer"].startswith("every optimizer")
    assert other["barrier"] == "sgd none, adam 0.500"


def test_beyond_final_numbers():
    n = numbers("fig10_beyond_final")
    assert n["alpha_max"] == "2"
    assert n["init_loss"] == "2.40 (every optimizer: the same init)"
    assert n["final_loss"] == "sgd 2.00, adam 1.60"
    assert n["end_loss"] == "sgd 12.0, adam 2.60"  # sgd: 2 + 10 (2 - 1)²; adam: 1.6 + 1
    assert n["beyond_max"] == "sgd 12.0, adam 2.60"


def test_interpolation_overview_numbers():
    n = numbers("fig5_interpolation")
    assert n["final_loss"] == "sgd 2.00, adam 1.60"
    # sgd -> adam: 1.8 + 0.7 at α = 0.5, 0.5 over the higher end (2.0); sgd -> adadelta: straight, no barrier
    assert n["pair_barrier"] == "sgd → adam 0.500, sgd → adadelta none"


def test_optimizer_grid_numbers():
    n = numbers("table1_optimizer_grid")
    assert n["shown"] == "nin, init 0" and n["split"] == "train"
    assert n["fd"] == "sgd → adam 0.16, sgd → adadelta 0.20"
    assert (n["fd_mean"], n["fd_range"]) == ("0.18", "0.16–0.20")
    assert n["disagreement"] == "sgd → adam 8%, sgd → adadelta 12%"
    assert (n["disagreement_mean"], n["disagreement_range"]) == ("10%", "8%–12%")
    assert n["fd_test"] == "mean 0.20, range 0.18–0.22"  # the test split's are 0.02 higher
    assert n["disagreement_test"] == "mean 12%, range 10%–14%"
    assert n["barrier"] == "sgd → adam 0.500, sgd → adadelta none"
    assert (n["plane_min"], n["plane_max"]) == ("0.250", "4.75")  # 1 + x + 2y on [-0.25, 1.25]²


def test_distance_numbers():
    n = numbers("fig6_distance")
    assert n["rise"] == "0.5"
    # the loss rises linearly: 0.2 and 0.5 per unit of distance -> 0.5 above the solution at 2.5 and 1.0;
    # adadelta's rises 0.045 over the whole line
    assert n["basin_width"] == "sgd 2.50, adam 1.00, adadelta beyond the line's end"
    assert n["init_distance"] == "sgd 4.00, adam 2.00, adadelta 3.00"
    assert n["final_loss"] == "sgd 1.80, adam 1.60, adadelta 2.00"
    assert n["init_loss"] == "sgd 2.60, adam 2.60, adadelta 2.03"
    same = numbers("fig6_distance", {"distance": TABLES["distance"][TABLES["distance"]["optimizer"] != "adadelta"]})
    assert same["init_loss"] == "2.60 (every optimizer: the same init)"


def test_basin_width_interpolates_and_counts_a_diverged_point_as_exceeding():
    part = pd.DataFrame({"distance": [0.0, 1.0, 2.0, 3.0], "alpha": [0, 1 / 3, 2 / 3, 1], "loss": [1.0, 1.2, 1.8, 3]})
    assert landscape._basin_width(part) == pytest.approx(1.5)  # 1.2 -> 1.8 crosses 1.5 half way
    part["loss"] = [1.0, 1.2, np.inf, 3]
    assert landscape._basin_width(part) == pytest.approx(1.0)


def test_bilinear_numbers():
    n = numbers("fig3_bilinear")
    assert n["corners"] == "sgd, adam, adadelta, rmsprop"
    # 1 + 2(x - 0.5)² + 2(y - 0.5)²: 1 at the centre, 2 at the corners, 3.25 at (-0.25, -0.25)
    assert (n["min_loss"], n["max_loss"], n["square_max"]) == ("1.00", "3.25", "2.00")
    assert n["corner_loss"] == "sgd 2.00, adam 2.00, adadelta 2.00, rmsprop 2.00"
    two = numbers("fig3_bilinear", {"bilinear": bilinear_table(OPTIMIZERS, lambda x, y: 1 + x, seeds=(0, 1))})
    assert two["max_loss"] == "init 0 2.25, init 1 2.25"


def test_switching_numbers():
    n = numbers("fig7_switching_interpolation")
    assert n["switches"] == "sgd → adam"
    assert n["barrier"] == "S1-A3 0.300, S2-A2 none"  # 2.2 - 1.9; S2-A2's line only falls
    assert n["variant_barrier"] == "S1-A3 ↔ S2-A2 0.100"  # 1.95 - 1.85
    assert n["own_loss"] == "sgd 1.90"  # once, though it ends two lines
    assert n["variant_loss"] == "S1-A3 1.85, S2-A2 1.50"


def test_plane_numbers():
    r = numbers("random_plane")
    assert r["extent"] == "[-1, 1] × [-1, 1]"
    assert (r["centre_loss"], r["max_loss"]) == ("sgd 1.00, adam 2.00", "sgd 3.00, adam 4.00")
    p = numbers("pca_plane")
    assert (p["centre_loss"], p["max_loss"]) == ("sgd 0.500, adam 1.50", "sgd 12.5, adam 13.5")
    assert (p["pc1_variance"], p["pc2_variance"]) == ("sgd 80%, adam 80%", "sgd 15%, adam 15%")
    assert p["checkpoints"] == "3 checkpoints, epochs 0–2"


def test_several_inits_give_the_mean_and_range():
    ff = final_final_table({("sgd", "adam"): (bump(2.0, 1.6, 0.7), 0.16, 0.08)}, seeds=(0, 1))
    ff.loc[ff["seed"] == 1, "loss"] += ff.loc[ff["seed"] == 1, "alpha"].clip(0, 1).map(lambda a: 0.2 * np.sin(np.pi * a))
    n = numbers("fig5_interpolation", {"init_final": TABLES["init_final"], "final_final": ff})
    assert n["pair_barrier"] == "sgd → adam 0.600 (0.500–0.700) [mean (range) over 2 inits]"


def test_diverged_runs_say_so():
    lines = TABLES["init_final"].copy()
    lines.loc[lines["optimizer"] == "adam", "loss"] = np.inf
    n = numbers("fig10_beyond_final", {"init_final": lines})
    assert n["final_loss"] == "sgd 2.00, adam diverged"
    ff = TABLES["final_final"].copy()
    ff.loc[ff["optimizer_b"] == "adadelta", ["functional_distance", "disagreement", "loss"]] = np.nan
    g = numbers("table1_optimizer_grid", {"barycentric": TABLES["barycentric"], "final_final": ff})
    assert g["fd"] == "sgd → adam 0.16, sgd → adadelta diverged"
    assert (g["fd_mean"], g["fd_range"]) == ("0.16", "0.16 (one only, 1 diverged)")
    assert g["barrier"] == "sgd → adam 0.500, sgd → adadelta diverged"


def one_split_tables(split="test"):
    out = {k: (t[t["split"] == split] if "split" in t else t) for k, t in TABLES.items()}
    out["final_final"] = out["final_final"][out["final_final"]["optimizer_b"] == "adam"]  # one pair
    out["barycentric"] = out["barycentric"][out["barycentric"]["optimizer_b"] == "adam"]
    return out


@pytest.mark.parametrize("name", list(lplan.FIGURES))
def test_one_split_one_pair_or_nothing_does_not_raise(name):
    n = numbers(name, one_split_tables("test"))  # no train split: its numbers are n/a
    assert all(isinstance(v, str) and v for v in n.values())
    assert landscape.NA in n.values()
    empty = {k: t.iloc[:0] for k, t in TABLES.items()}
    assert all(v == landscape.NA or isinstance(v, str) for v in numbers(name, empty).values())
    if name == "table1_optimizer_grid":
        one = numbers(name, one_split_tables("train"))
        assert (one["fd"], one["fd_range"]) == ("sgd → adam 0.16", "0.16 (one only)")
        assert one["fd_test"] == landscape.NA


# --------------------------------------------------------------------------- the templates


def render(name, n):
    text = (ROOT / "workflow" / "report" / F.caption_template(name)).read_text()
    return captions.render(text, n, C.check_config(TINY), F.figure_section(name))


def parse_rst(text):
    """``text`` through docutils; a warning (level 2) or worse raises."""
    with warnings.catch_warnings():  # docutils 0.22 plans to rename writer_name
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return docutils.core.publish_parts(text, writer_name="html",
                                           settings_overrides={"halt_level": 2, "report_level": 2})


@pytest.mark.parametrize("name", list(lplan.FIGURES))
def test_every_template_renders_into_clean_restructuredtext(name):
    for tables in (TABLES, one_split_tables("test")):
        text = render(name, numbers(name, tables))
        assert "Scale:" in text and re.match(r"Regenerates (the )?\*\*[^*]+\*\*", text)
        assert "{{" not in text and "}}" not in text
        parse_rst(text)  # a warning (level 2) raises
    template = (ROOT / "workflow" / "report" / F.caption_template(name)).read_text()
    assert all(f"n.{key}" in template for key in numbers(name))  # every number reaches the caption


def test_names_with_markup_characters_stay_plain_text():
    lines = init_final_table({"sgd": sgd_line})
    lines["optimizer"] = "my_sgd*"
    n = landscape.beyond_final_numbers(lines, optimizers=None)
    assert n["final_loss"] == r"my\_sgd\* 2.00"
    parse_rst(render("fig10_beyond_final", n))
    pairs = TABLES["final_final"].assign(optimizer_a="a_", optimizer_b="*b")
    g = landscape.optimizer_grid_numbers(TABLES["barycentric"], pairs, optimizers=None)
    parse_rst(render("table1_optimizer_grid", g))
    assert r"a\_ → \*b" in g["fd"]
