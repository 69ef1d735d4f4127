"""Caption numbers, caption templates and figures of the connectivity family: hand-made tables
with the workflow's columns whose barriers, plane coordinates, gradient angles and interior
minima are known; every template rendered under StrictUndefined into reStructuredText that
docutils parses without a warning; every figure drawn with labelled axes."""

from __future__ import annotations

import copy
import inspect
import math
import warnings

import docutils.core
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT
from matplotlib.figure import Figure
from tiny import TINY

from lossland.pipeline import captions
from lossland.pipeline import config as C
from lossland.pipeline import families as F
from lossland.pipeline.families import connectivity as cn
from lossland.plots import caption_numbers, connectivity, figure_function

TS = np.linspace(0.0, 1.0, 5)
PAIRS = {  # pair: (start optimizer, end optimizer, seeds, line barrier, curve barrier, end distance, bend (x, y))
    "mlp_sgd-init0_adam-init0": ("sgd", "adam", (0, 0), 0.5, 0.0, 6.0, (3.0, 1.5)),
    "mlp_sgd-init0_sgd-init1": ("sgd", "sgd", (0, 1), 1.2, 0.05, 4.0, (2.0, 0.5)),
}
LOWEST_ACCURACY = {"line": 0.3, "curve": 0.7}  # on the test split (train: 0.1 higher)


def _ids(pair):
    start, end, seeds, *_ = PAIRS[pair]
    return {"pair": pair, "model": "mlp", "start_run": f"mlp_{start}-lr0.1_init{seeds[0]}",
            "end_run": f"mlp_{end}-lr0.1_init{seeds[1]}", "start_optimizer": start, "end_optimizer": end,
            "start_seed": seeds[0], "end_seed": seeds[1], "kind": "bezier"}


def _bump(t, first, second, height):
    """first -> second linearly plus ``height`` sin(πt): ``height`` above the chord at t = 0.5."""
    return (1 - t) * first + t * second + height * math.sin(math.pi * t)


def profiles_table(pairs=tuple(PAIRS), splits=("train", "test"), bn="recompute") -> pd.DataFrame:
    rows = []
    for pair in pairs:
        *_, line_b, curve_b, _, _ = PAIRS[pair]
        for split in splits:
            shift = 0.0 if split == "train" else 0.2  # test: 0.2 nats higher everywhere, the same barriers
            for path, height in (("curve", curve_b), ("line", line_b)):
                for t in TS:
                    acc = 0.9 if t in (0.0, 1.0) else LOWEST_ACCURACY[path] + (0.1 if split == "train" else 0.0)
                    rows.append({**_ids(pair), "path": path, "t": t, "split": split,
                                 "loss": _bump(t, 2.0, 1.0, height) + shift, "accuracy": acc,
                                 "functional_distance": 0.1 * t, "disagreement": 0.05 * t, "bn": bn})
    return pd.DataFrame(rows)


PLANE_LOSS = {"mlp_sgd-init0_adam-init0": (0.2, 3.0), "mlp_sgd-init0_sgd-init1": (0.5, 2.5)}


def plane_tables(pairs=tuple(PAIRS)) -> tuple[pd.DataFrame, pd.DataFrame]:
    plane, points = [], []
    for pair in pairs:
        *_, d, (bx, by) = PAIRS[pair]
        lo, hi = PLANE_LOSS[pair]
        xs, ys = np.linspace(-0.2 * d, 1.2 * d, 3), np.linspace(-0.2 * d, by + 0.2 * d, 3)
        for i, x in enumerate(xs):
            for j, y in enumerate(ys):
                loss = lo + (hi - lo) * (i + j) / 4  # lo at the first corner, hi at the last
                plane.append({**_ids(pair), "x": x, "y": y, "split": "train", "loss": loss, "accuracy": 0.5})
        for t in TS:  # θ(t) = θ0 + 2t(1-t)(θb - θ0) + t²(θ1 - θ0)
            cb, c1 = 2 * t * (1 - t), t * t
            points.append({**_ids(pair), "point": "curve", "t": t, "x": cb * bx + c1 * d, "y": cb * by})
        for point, t, x, y in (("start", 0.0, 0.0, 0.0), ("bend", np.nan, bx, by), ("end", 1.0, d, 0.0)):
            points.append({**_ids(pair), "point": point, "t": t, "x": x, "y": y})
    return pd.DataFrame(plane), pd.DataFrame(points)


WALKS = {  # walk: (method, batch, angles, interior on the walk's images, interior on the minibatch)
    "mlp_sgd-init0_b20": ("sgd", 20, [np.nan, 30.0, 80.0, 100.0], [True, True, False, True], [False] * 4),
    "mlp_sgd-init0_gd": ("gd", 60, [np.nan, 120.0, 170.0, 172.0], [False, False, True, True],
                         [False, False, True, True]),
}
WALK_IDS = {"run": "mlp_sgd-lr0.1_init0", "model": "mlp", "optimizer": "sgd", "seed": 0, "from_epoch": 2}


def walk_tables(walks=tuple(WALKS), points=3) -> tuple[pd.DataFrame, pd.DataFrame]:
    segments, steps = [], []
    for walk in walks:
        method, batch, angles, full, mini = WALKS[walk]
        head = {"walk": walk, **WALK_IDS}
        for k, angle in enumerate(angles):
            tags = {"step": k, "epoch": 1, "method": method, "batch_size": batch, "lr": 0.1}
            for split in ("batch", "full"):
                for t in np.linspace(0, 1, points):
                    segments.append({**head, **tags, "t": t, "split": split,
                                     "loss": 1.0 - 0.1 * k + (t - 0.5) ** 2, "accuracy": 0.5})
            steps.append({**head, **tags, "grad_norm": 1.0, "grad_angle": angle, "step_length": 0.1,
                          "loss_batch_start": 1.25 - 0.1 * k, "loss_full_start": 1.25 - 0.1 * k,
                          "interior_minimum_batch": mini[k], "interior_minimum_full": full[k]})
    return pd.DataFrame(segments), pd.DataFrame(steps)


def tables(pairs=tuple(PAIRS), walks=tuple(WALKS), splits=("train", "test")) -> dict[str, pd.DataFrame]:
    plane, points = plane_tables(pairs)
    segments, steps = walk_tables(walks)
    return {"curve_profiles": profiles_table(pairs, splits), "curve_plane": plane, "curve_points": points,
            "walk_segments": segments, "walk_steps": steps}


@pytest.fixture(scope="module")
def config():
    raw = copy.deepcopy(TINY)  # this file's own sections, whatever TINY holds
    raw["curves"] = {"study": "optimizer_study", "samples": 64,
                     "pairs": [{"start": "sgd", "end": "adam", "init_seeds": [0, 0]}]}
    raw["walk"] = {"study": "optimizer_study", "optimizer": "sgd", "batch_sizes": [20], "steps": 4, "samples": 60}
    return C.check_config(raw, C.load_schema())


def _args(name, t):
    return [t[table] for table in cn.FIGURES[name].tables]


def numbers(name, t=None, config=None):
    kwargs = {"optimizers": list((config or TINY)["optimizers"])}
    return caption_numbers(cn.FIGURES[name].function)(*_args(name, tables() if t is None else t), **kwargs)


# --------------------------------------------------------------------------- the registry


def test_every_figure_function_has_caption_numbers_called_like_it():
    assert set(connectivity.CAPTION_NUMBERS) == set(connectivity.FIGURE_FUNCTIONS) == set(cn.FIGURES)
    for name in connectivity.FIGURE_FUNCTIONS:
        fn = caption_numbers(f"connectivity.{name}")
        assert fn is connectivity.CAPTION_NUMBERS[name]
        assert list(inspect.signature(fn).parameters) == list(
            inspect.signature(figure_function(f"connectivity.{name}")).parameters), name
    assert {n: F.figure_section(n) for n in cn.FIGURES} == {"curve_profiles": "curves", "curve_plane": "curves",
                                                            "sgd_walk": "walk"}


# --------------------------------------------------------------------------- the numbers


def test_curve_profiles_numbers_are_the_barriers_above_the_chord():
    n = numbers("curve_profiles")
    assert (n["split"], n["split_styles"], n["points"], n["bn"], n["kind"]) == (
        "train", "solid: train, dashed: test", "5", "recompute", "bezier")
    # line 2 -> 1 with a bump of 0.5 (at t = 0.5 level with the higher end, 0.5 above the chord)
    assert n["pairs"] == ("sgd (init 0) → adam (init 0): line 0.500, curve 0 (lowest test accuracy along the line "
                          "30.0 %, along the curve 70.0 %); sgd (init 0) → sgd (init 1): line 1.20, curve 0.0500 "
                          "(lowest test accuracy along the line 30.0 %, along the curve 70.0 %)")
    stored = connectivity.curve_profiles_numbers(profiles_table(bn="stored").drop(columns="bn"))
    assert stored["bn"] == "stored"
    one = connectivity.curve_profiles_numbers(profiles_table(splits=("test",)))
    assert one["split"] == "test" and one["split_styles"] == "dashed: test" and one["pairs"].startswith(
        "sgd (init 0) → adam (init 0): line 0.500, curve 0 (lowest test accuracy along the line 30.0 %")


def test_curve_plane_numbers_are_the_solutions_distance_the_bends_height_and_the_loss_range():
    n = numbers("curve_plane")
    assert (n["grid"], n["split"]) == ("3×3", "train")
    assert n["pairs"] == ("sgd (init 0) → adam (init 0): the solutions 6.00 apart, the bend 1.50 off their line; "
                          "train loss on the plane 0.200 to 3.00; sgd (init 0) → sgd (init 1): the solutions 4.00 "
                          "apart, the bend 0.500 off their line; train loss on the plane 0.500 to 2.50")
    t = tables()
    t["curve_plane"].loc[t["curve_plane"]["loss"] == 3.0, "loss"] = np.inf  # a diverged grid point is left out
    assert "train loss on the plane 0.200 to 2.30" in numbers("curve_plane", t)["pairs"]  # 0.2 + 2.8·3/4


def test_sgd_walk_numbers_are_the_late_mean_angles_and_interior_shares():
    n = numbers("sgd_walk")
    assert (n["steps"], n["late"], n["run"], n["from_epoch"], n["points"]) == ("4", "50 %", "mlp_sgd-lr0.1_init0",
                                                                              "2", "3")
    # the last 2 of 4 steps: SGD (80 + 100)/2, interior 1 of 2; GD (170 + 172)/2, 2 of 2
    assert n["walks"] == ("SGD, batch 20 (lr 0.100): 90.0°, interior minima in 50.0 % of the segments on the walk's "
                          "images and 0 % on the minibatch; gradient descent (lr 0.100): 171°, interior minima in "
                          "100 % of the segments on the walk's images and 100 % on the minibatch")
    only_gd = numbers("sgd_walk", tables(walks=("mlp_sgd-init0_gd",)))
    assert only_gd["walks"].startswith("gradient descent (lr 0.100): 171°") and ";" not in only_gd["walks"]


# --------------------------------------------------------------------------- the templates


def parse_rst(text):
    """``text`` through docutils; a warning (level 2) or worse raises."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return docutils.core.publish_parts(text, writer_name="html",
                                           settings_overrides={"halt_level": 2, "report_level": 2})["body"]


def render(name, n, config):
    template = (ROOT / "workflow" / "report" / F.caption_template(name)).read_text()
    return captions.render(template, n, config, F.figure_section(name))


@pytest.mark.parametrize("name", list(cn.FIGURES))
@pytest.mark.parametrize("small", [False, True], ids=["two of each", "one pair, one walk, one split"])
def test_every_template_renders_into_clean_restructuredtext(name, small, config):
    t = tables(pairs=tuple(PAIRS)[:1], walks=("mlp_sgd-init0_gd",), splits=("train",)) if small else tables()
    n = numbers(name, t, config)
    assert all(isinstance(v, str) and v and "nan" not in v for v in n.values()), n
    text = render(name, n, config)
    assert text.startswith("**Regenerates ") and "Scale: " in text and "{{" not in text and "}}" not in text
    flat = " ".join(text.split())
    for key, value in n.items():
        if key != "bn":
            assert " ".join(value.split()) in flat, key  # every number reaches the caption
    template = (ROOT / "workflow" / "report" / F.caption_template(name)).read_text()
    assert all(f"n.{key}" in template for key in n)
    assert "<strong>" in parse_rst(text)


def test_the_scale_line_names_the_sections_images(config):
    curves = render("curve_profiles", numbers("curve_profiles", config=config), config)
    walk = render("sgd_walk", numbers("sgd_walk", config=config), config)
    assert "curves on 64 train/test images of optimizer_study's runs" in " ".join(curves.split())
    assert "walk on 60 train images of optimizer_study's runs" in " ".join(walk.split())
    assert "re-estimated at every point" in curves
    stored = render("curve_profiles", connectivity.curve_profiles_numbers(profiles_table(bn="stored")), config)
    assert "as stored (interpolated)" in stored and "re-estimated" not in stored


def test_a_missing_number_fails_the_caption(config):
    n = numbers("sgd_walk")
    n.pop("walks")
    with pytest.raises(Exception, match="walks"):
        render("sgd_walk", n, config)


def test_the_split_the_caption_calls_solid_is_drawn_solid():
    profiles = profiles_table(splits=("test", "train"))  # curves.splits: [test, train]
    n = connectivity.curve_profiles_numbers(profiles)
    assert n["split_styles"] == "dashed: test, solid: train"
    fig = connectivity.curve_profiles(profiles)
    shown = profiles[(profiles["pair"] == "mlp_sgd-init0_adam-init0") & (profiles["split"] == "test")]
    line = shown[shown["path"] == "line"].sort_values("t")["loss"].to_numpy()  # test: 0.2 above train everywhere
    styles = [ln.get_linestyle() for ln in fig.axes[0].get_lines() if np.allclose(ln.get_ydata(), line)]
    assert styles == ["--"]


# --------------------------------------------------------------------------- the figures


def _unlabelled(fig) -> list[str]:
    out = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        if not (ax.get_xlabel().strip() or ax.get_ylabel().strip()):
            out.append(ax.get_title() or ax.get_label())
    return out


CASES = [pytest.param("curve_profiles", True, id="curve_profiles, one pair"),
         pytest.param("curve_profiles", False, id="curve_profiles, two pairs"),
         pytest.param("curve_plane", False, id="curve_plane"), pytest.param("sgd_walk", False, id="sgd_walk")]


@pytest.mark.parametrize("name, one", CASES)
def test_every_figure_draws_with_labelled_axes(name, one, config):
    t = tables(pairs=tuple(PAIRS)[:1]) if one else tables()
    fig = figure_function(cn.FIGURES[name].function)(*_args(name, t), **F.figure_kwargs(config, name))
    assert isinstance(fig, Figure) and fig.axes
    fig.canvas.draw()
    assert _unlabelled(fig) == []


def test_curve_profiles_draws_each_path_and_states_the_barriers():
    fig = connectivity.curve_profiles(profiles_table(), optimizers=["sgd", "adam"])
    loss = fig.axes[0]  # first pair, loss panel
    assert loss.get_title() == "loss: sgd (init 0) → adam (init 0)\ntrain barrier: line 0.500, curve 0"
    drawn = [ln.get_ydata() for ln in loss.get_lines()]
    line = [_bump(t, 2.0, 1.0, 0.5) for t in TS]
    assert len(drawn) == 4 and any(np.allclose(y, line) for y in drawn)  # (line, curve) x (train, test)
    accuracy = [ln.get_ydata() for ln in fig.axes[2].get_lines()]  # 2 x 2 axes: row-major
    assert any(np.allclose(y, [90.0, 30.0, 30.0, 30.0, 90.0]) for y in accuracy)  # percent


def test_curve_plane_marks_the_solutions_and_the_bend_at_their_coordinates():
    plane, points = plane_tables()
    fig = connectivity.curve_plane(plane, points, optimizers=["sgd", "adam"])
    panel = next(ax for ax in fig.axes if ax.get_title() == "sgd (init 0) → adam (init 0)")
    marks = {ln.get_marker(): [] for ln in panel.get_lines()}
    for ln in panel.get_lines():
        marks[ln.get_marker()].append((float(np.ravel(ln.get_xdata())[0]), float(np.ravel(ln.get_ydata())[0])))
    assert sorted(marks["o"]) == [(0.0, 0.0), (6.0, 0.0)] and marks["X"] == [(3.0, 1.5)]
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 2 and all(ax.get_ylabel() == "log10 train loss" for ax in colorbars)


def test_sgd_walk_draws_every_angle_and_shades_the_late_steps():
    segments, steps = walk_tables()
    fig = connectivity.sgd_walk(segments, steps, optimizers=["sgd"])
    angles = fig.axes[2]
    drawn = [ln.get_ydata() for ln in angles.get_lines() if ln.get_marker() == "."]
    assert len(drawn) == 2
    assert any(np.allclose(y[1:], [120.0, 170.0, 172.0]) for y in drawn)
    spans = [p.get_x() for p in angles.patches]
    assert spans and all(x == pytest.approx(2.0) for x in spans)  # steps 2 and 3 of 4: the late half
    assert len(fig.axes[0].get_lines()) == 2 * 4  # one segment per step and walk
