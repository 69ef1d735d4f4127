"""Mode-connectivity curves (Garipov et al. 2018): the curve's algebra against its definitions,
its evaluation against direct evaluation, and training that removes a known barrier."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from test_landscape import _perturb_stats  # non-trivial BN statistics and batch counters

import lossland
from lossland.evaluation import evaluate
from lossland.landscape import (
    Curve,
    barrier,
    curve_table,
    evaluate_curve,
    plane_basis,
    plane_coordinates,
    recompute_bn,
    train_curve,
)

KINDS = ["bezier", "polychain"]


def _mlp(seed=0, batch_norm=False, shape=(3, 4, 4)):
    return lossland.create_model({"arch": "mlp", "hidden": [8, 8], "batch_norm": batch_norm}, shape, 10, seed=seed)


def _nin(seed=0, dropout=0.0):
    return lossland.create_model({"arch": "nin", "width": 0.1, "depth": 2, "batch_norm": True, "dropout": dropout},
                                 (3, 8, 8), 10, seed=seed)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _three(make, **kw):
    """A model and three distinct states (start, bend, end) of it."""
    models = [_perturb_stats(make(seed=s, **kw), s) for s in range(3)]
    return models[0], *(_state(m) for m in models)


def _data(n=96, shape=(3, 4, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g), torch.randint(0, 10, (n,), generator=g)


def _lerp(a, b, t):
    return {k: a[k] + t * (b[k] - a[k]) if a[k].is_floating_point() else a[k] for k in a}


def _close(a, b, keys=None, **tol):
    for k in keys or a:
        assert torch.allclose(a[k], b[k], **tol), k


def _norm(state, names):
    return math.sqrt(sum(float(state[k].double().pow(2).sum()) for k in names))


# --------------------------------------------------------------------------- the curve's algebra


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_norm", [False, True])
def test_curve_passes_exactly_through_its_endpoints(kind, batch_norm):
    model, a, b, e = _three(_mlp, batch_norm=batch_norm)
    curve = Curve(kind, a, b, e)
    p0, p1 = curve.point(0.0), curve.point(1.0)
    assert set(p0) == set(p1) == set(a)
    for k in a:
        assert torch.equal(p0[k], a[k]), k
        # float entries (parameters, running statistics) reach the end bitwise;
        # non-float buffers (num_batches_tracked) are the start's everywhere
        assert torch.equal(p1[k], e[k] if e[k].is_floating_point() else a[k]), k
    if batch_norm:
        assert any(not v.is_floating_point() and not torch.equal(v, e[k]) for k, v in a.items())
    if kind == "polychain":  # the chain's corner is the bend itself
        assert all(torch.equal(v, b[k]) for k, v in curve.point(0.5).items() if v.is_floating_point())
    for bad in (-0.1, 1.1, float("nan")):
        with pytest.raises(ValueError, match="t must lie in"):
            curve.point(bad)
        with pytest.raises(ValueError, match="t must lie in"):
            curve.coefficients([0.5, bad])


def test_curve_checks_kind_and_names():
    _, a, b, e = _three(_mlp)
    with pytest.raises(ValueError, match="kind"):
        Curve("spline", a, b, e)
    with pytest.raises(KeyError):
        Curve("bezier", a, {k: v for k, v in b.items() if k != "net.1.weight"}, e)


@pytest.mark.parametrize("kind", KINDS)
def test_points_follow_the_definitions_and_the_coefficients(kind):
    _, a, b, e = _three(_mlp, batch_norm=True)
    curve = Curve(kind, a, b, e)
    d_b = {k: b[k] - a[k] for k in a if a[k].is_floating_point()}
    d_1 = {k: e[k] - a[k] for k in d_b}
    for t in (0.0, 0.2, 0.25, 0.5, 0.7, 0.75, 1.0):
        p = curve.point(t)
        if kind == "bezier":  # de Casteljau: the lerp of two lerps
            expected = _lerp(_lerp(a, b, t), _lerp(b, e, t), t)
        else:
            expected = _lerp(a, b, 2 * t) if t <= 0.5 else _lerp(b, e, 2 * t - 1)
        _close(p, expected, d_b, atol=1e-6)
        (c_b, c_1), = curve.coefficients(t)
        _close(p, {k: a[k] + c_b * d_b[k] + c_1 * d_1[k] for k in d_b}, d_b, atol=1e-6)
    if kind == "polychain":  # a quarter of the way: halfway to the bend
        _close(curve.point(0.25), _lerp(a, b, 0.5), d_b, atol=1e-6)
        _close(curve.point(0.75), _lerp(b, e, 0.5), d_b, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_midpoint_bend_is_the_straight_line(kind):
    _, a, _, e = _three(_mlp, batch_norm=True)
    curve = Curve.line(a, e, kind)
    floats = [k for k in a if a[k].is_floating_point()]
    for t in (0.1, 0.3, 0.5, 0.8):
        _close(curve.point(t), _lerp(a, e, t), floats, atol=1e-6)


@pytest.mark.parametrize("batch_norm,bn", [(False, "stored"), (True, "stored"), (True, "recompute")])
def test_evaluate_curve_with_midpoint_bend_is_interpolate(batch_norm, bn):
    model, a, _, e = _three(_mlp, batch_norm=batch_norm)
    data = _data()
    ts = [0.0, 0.3, 0.5, 0.9, 1.0]
    got = evaluate_curve(model, Curve.line(a, e), ts, data, bn=bn, batch_size=32)
    ref = lossland.interpolate(model, a, e, ts, data, bn=bn, batch_size=32)
    assert list(got.columns) == ["t", "loss", "accuracy"]
    np.testing.assert_allclose(got["t"], ts)
    np.testing.assert_allclose(got["loss"], ref["loss"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["accuracy"], ref["accuracy"])


def test_plane_coordinates_are_an_isometry_of_the_curve():
    model, a, b, e = _three(_mlp, batch_norm=True)
    names = lossland.state.float_param_names(model, a)
    floats = [k for k in a if a[k].is_floating_point()]
    for kind in KINDS:
        curve = Curve(kind, a, b, e)
        u, v = plane_basis(model, curve)
        assert _norm(u, names) == pytest.approx(1.0) and _norm(v, names) == pytest.approx(1.0)
        assert sum(float((u[k].double() * v[k].double()).sum()) for k in names) == pytest.approx(0.0, abs=1e-6)
        ts = np.linspace(0, 1, 7)
        df = plane_coordinates(model, curve, ts)
        assert list(df.columns) == ["point", "t", "x", "y"]
        anchors = df.set_index("point").loc[["start", "bend", "end"], ["x", "y"]].to_numpy()
        d01 = _norm({k: e[k] - a[k] for k in names}, names)
        np.testing.assert_allclose(anchors[0], [0, 0], atol=1e-12)
        np.testing.assert_allclose(anchors[2], [d01, 0], rtol=1e-9)
        assert anchors[1, 1] > 0
        bend_xy = anchors[1]
        # the bend and every curve point keep their distances to θ0 and to θb
        assert math.hypot(*bend_xy) == pytest.approx(_norm({k: b[k] - a[k] for k in names}, names), rel=1e-5)
        for t, x, y in df[df.point == "curve"][["t", "x", "y"]].to_numpy():
            p = curve.point(t)
            assert math.hypot(x, y) == pytest.approx(_norm({k: p[k] - a[k] for k in names}, names), rel=1e-5, abs=1e-6)
            assert math.hypot(x - bend_xy[0], y - bend_xy[1]) == pytest.approx(
                _norm({k: p[k] - b[k] for k in names}, names), rel=1e-5)
            assert y >= 0
            # θ0 + x·u + y·v is the point, in every float entry (BN statistics too)
            _close(p, {k: a[k] + x * u[k] + y * v[k] for k in floats}, floats, atol=1e-5)
    # a bend on the line spans no plane: every point at y = 0
    flat = plane_coordinates(model, Curve.line(a, e), np.linspace(0, 1, 5))
    np.testing.assert_allclose(flat["y"].dropna(), 0.0, atol=1e-12)


# --------------------------------------------------------------------------- evaluation


def _direct(model, state, data, bn, batch_size):
    m = copy.deepcopy(model)
    m.load_state_dict(state)
    if bn == "recompute":
        recompute_bn(m, data, batch_size=batch_size)
    return evaluate(m, data, batch_size=batch_size)


@pytest.mark.parametrize("make,shape,bn", [(_mlp, (3, 4, 4), "stored"), (_nin, (3, 8, 8), "recompute")])
@pytest.mark.parametrize("kind", KINDS)
def test_evaluate_curve_is_direct_evaluation_of_the_points(make, shape, bn, kind):
    model, a, b, e = _three(make)
    data = _data(64, shape)
    ts = [0.0, 0.35, 0.5, 0.8, 1.0]
    got = evaluate_curve(model, Curve(kind, a, b, e), ts, data, bn=bn, batch_size=32)
    for t, row in zip(ts, got.itertuples()):
        ref = _direct(model, Curve(kind, a, b, e).point(t), data, bn, 32)
        assert row.loss == pytest.approx(ref["loss"], rel=1e-4, abs=1e-5), t
        assert row.accuracy == pytest.approx(ref["accuracy"]), t
    if bn == "recompute":  # the default for a BN model
        auto = evaluate_curve(model, Curve(kind, a, b, e), ts, data, batch_size=32)
        np.testing.assert_allclose(auto["loss"], got["loss"], rtol=1e-6)


def test_curve_table_sets_curve_against_line_on_every_split():
    model, a, b, e = _three(_mlp)
    splits = {"train": _data(64, seed=1), "test": _data(48, seed=2)}
    ts = [0.0, 0.5, 1.0]
    curve = Curve("bezier", a, b, e)
    table = curve_table(model, curve, ts, splits)
    assert list(table.columns) == ["path", "t", "split", "loss", "accuracy", "functional_distance", "disagreement"]
    assert len(table) == 2 * 2 * len(ts)
    for split, data in splits.items():
        c = table[(table.path == "curve") & (table.split == split)]
        line = table[(table.path == "line") & (table.split == split)]
        np.testing.assert_allclose(c["loss"], evaluate_curve(model, curve, ts, data)["loss"], rtol=1e-6)
        np.testing.assert_allclose(line["loss"], lossland.interpolate(model, a, e, ts, data)["loss"], rtol=1e-6)
        # im2016's functional distance and disagreement to θ0, from the outputs themselves
        x, _ = data
        with torch.no_grad():
            m0 = copy.deepcopy(model)
            m0.load_state_dict(a)
            p0 = F.softmax(m0(x), 1)
            for rows, point in ((c, curve.point), (line, lambda t: _lerp(a, e, t))):
                for t, fd, dis in rows[["t", "functional_distance", "disagreement"]].to_numpy():
                    m0.load_state_dict(point(t))
                    pt = F.softmax(m0(x), 1)
                    assert fd == pytest.approx(float((p0 - pt).pow(2).sum(1).mean().sqrt()), rel=1e-4, abs=1e-6)
                    assert dis == pytest.approx(float((p0.argmax(1) != pt.argmax(1)).double().mean()))
        assert c["functional_distance"].iloc[0] == pytest.approx(0.0, abs=1e-6)
        assert c["functional_distance"].iloc[1] > 0.01  # the bend is a different network
    # the reference may be the end
    to_end = curve_table(model, curve, [1.0], {"train": splits["train"]}, reference="end")
    np.testing.assert_allclose(to_end["functional_distance"], 0.0, atol=1e-6)


def test_barrier_on_hand_made_paths():
    # chord from 1 to 2: 1.5 at the middle, where the loss is 3
    assert barrier([1.0, 3.0, 2.0]) == pytest.approx(1.5)
    # a convex path lies below its chord: no barrier
    assert barrier([2.0, 1.0, 0.5, 0.0]) == pytest.approx(0.0)
    # unevenly spaced, unsorted t in a DataFrame; chord 1 − t from L(0)=1 to L(1)=0
    df = pd.DataFrame({"t": [1.0, 0.0, 0.25, 0.9], "loss": [0.0, 1.0, 1.25, 0.3]})
    assert barrier(df) == pytest.approx(max(1.25 - 0.75, 0.3 - 0.1))
    assert barrier(df.rename(columns={"t": "alpha"})) == barrier(df)
    assert barrier([0.0, 2.0, 1.0], ts=[0.0, 0.2, 1.0]) == pytest.approx(2.0 - 0.2)
    with pytest.raises(ValueError, match="repeated t"):
        barrier(pd.concat([df, df]))


# --------------------------------------------------------------------------- training


@pytest.fixture(scope="module")
def permuted_pair():
    """A tiny MLP fit to XOR quadrants and the same network with its hidden units permuted:
    the same function, but the straight line between them mixes unrelated units."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 2, generator=g)
    y = (x[:, 0] * x[:, 1] > 0).long()
    model = lossland.create_model({"arch": "mlp", "hidden": [16]}, (2,), 2, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(200):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    a = _state(model)
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    b = {**a, "net.1.weight": a["net.1.weight"][perm], "net.1.bias": a["net.1.bias"][perm],
         "net.3.weight": a["net.3.weight"][:, perm]}
    return model, a, b, (x, y)


@pytest.mark.parametrize("kind", KINDS)
def test_trained_curve_removes_the_barrier_of_the_line(permuted_pair, kind):
    model, a, b, data = permuted_pair
    ts = np.linspace(0, 1, 11)
    line = lossland.interpolate(model, a, b, ts, data)
    assert line["loss"].iloc[-1] == pytest.approx(line["loss"].iloc[0], rel=1e-4)  # the same function
    assert barrier(line) > 0.5
    curve, history = train_curve(model, a, b, data, kind=kind, epochs=40, lr=0.05, batch_size=50, seed=0)
    on_curve = evaluate_curve(model, curve, ts, data)
    assert on_curve["loss"].max() < line["loss"].max()
    assert barrier(on_curve) < 0.2 * barrier(line)
    assert list(history.columns) == ["epoch", "loss", "t_mean"] and history["epoch"].tolist() == list(range(1, 41))
    assert history["t_mean"].between(0, 1).all() and history["loss"].iloc[-5:].mean() < history["loss"].iloc[:5].mean()


def test_train_curve_is_reproducible_and_leaves_endpoints_and_model_alone():
    model, a, _, e = _three(_nin, dropout=0.5)
    model.train()
    data = _data(64, (3, 8, 8))
    before = (_state(model), {k: v.clone() for k, v in a.items()}, {k: v.clone() for k, v in e.items()})
    runs = []
    for global_seed, seed in ((0, 0), (123, 0), (0, 1)):
        torch.manual_seed(global_seed)  # dropout is off: the global RNG does not matter
        runs.append(train_curve(model, a, e, data, epochs=2, lr=0.05, batch_size=24, seed=seed))
    (c0, h0), (c1, h1), (c2, _) = runs
    assert all(torch.equal(c0.bend[k], c1.bend[k]) for k in a) and h0.equals(h1)
    assert not all(torch.equal(c0.bend[k], c2.bend[k]) for k in a)
    names = lossland.state.float_param_names(model, a)
    mid = Curve.line(a, e).bend
    assert not all(torch.equal(c0.bend[k], mid[k]) for k in names)  # the bend was trained
    # the running statistics are not trained: the bend keeps the midpoint's
    assert all(torch.equal(c0.bend[k], mid[k]) for k in a if k not in names)
    for saved, now in zip(before, (model.state_dict(), a, e)):
        assert all(torch.equal(saved[k], now[k]) for k in saved)
    assert all(torch.equal(c0.start[k], a[k]) and torch.equal(c0.end[k], e[k]) for k in a)
    assert model.training and all(m.training for m in model.modules())
    assert len(h0) == 2 and np.isfinite(h0["loss"]).all()
    with pytest.raises(ValueError, match="kind"):
        train_curve(model, a, e, data, kind="spline", epochs=1, lr=0.1)
