"""Lines and planes of a landscape: the general :func:`evaluate_points` and the
interpolations, planes and distance path built on it."""

from __future__ import annotations

import itertools
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..evaluation import Data, LossFn, default_loss
from ..state import State, copy_as, diff, direction_as, distance, float_param_names
from .batches import _materialize
from .engines import _evaluate, _loss_acc_reducer
from .points import _Points


def _loss_table(model, pts: _Points, data, loss_fn, *, engine, bn, batch_size, points_per_batch,
                fuse) -> np.ndarray:
    batches = _materialize(data, model, batch_size)
    n = sum(int(y.shape[0]) for _, y in batches)
    sums = _evaluate(model, pts, batches, _loss_acc_reducer(loss_fn or default_loss),
                     engine=engine, bn=bn, points_per_batch=points_per_batch, fuse=fuse)
    return (sums / n).numpy()


def evaluate_points(model: nn.Module, origin: State, directions: Sequence[State],
                    coeffs, data: Data, loss_fn: LossFn | None = None, *, bn: str = "stored",
                    engine: str = "auto", batch_size: int | None = None,
                    points_per_batch: int | None = None, fuse: bool = True) -> pd.DataFrame:
    """Loss and accuracy at the points ``origin + Σ_d coeffs[p, d]·directions[d]``.

    The general form of every landscape here. ``coeffs`` is (points, directions);
    returns a DataFrame with columns ``loss, accuracy`` (one row per point, in
    order). Options as in :mod:`lossland.landscape`.
    """
    like = model.state_dict()
    c = torch.as_tensor(np.asarray(coeffs, dtype=np.float64)).reshape(-1, len(directions))
    pts = _Points(copy_as(origin, like, "origin"),
                  [direction_as(d, like, f"direction {i}") for i, d in enumerate(directions)], c)
    res = _loss_table(model, pts, data, loss_fn, engine=engine, bn=bn, batch_size=batch_size,
                      points_per_batch=points_per_batch, fuse=fuse)
    return pd.DataFrame({"loss": res[:, 0], "accuracy": res[:, 1]})


def _values(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(-1)


# --------------------------------------------------------------------------- 1-D and 2-D


def interpolate(model: nn.Module, start: State, end: State, alphas, data: Data,
                loss_fn: LossFn | None = None, **options) -> pd.DataFrame:
    """Loss and accuracy along ``start + α·(end − start)`` for each ``α`` in ``alphas``.

    ``start`` and ``end`` are state dicts of ``model``; ``α`` may lie outside
    [0, 1]. Float buffers (BN statistics) are interpolated too; integer buffers
    come from ``start``. Returns columns ``alpha, loss, accuracy``. Options:
    ``bn``, ``engine``, ``batch_size``, ``points_per_batch`` (:mod:`lossland.landscape`).
    """
    a = _values(alphas)
    df = evaluate_points(model, start, [diff(end, start)], a[:, None], data, loss_fn, **options)
    df.insert(0, "alpha", a)
    return df


def _grid(xs, ys) -> tuple[np.ndarray, np.ndarray]:
    """All ``(x, y)`` pairs, ``x`` outer and ``y`` inner (row-major over ``xs`` × ``ys``)."""
    g = np.array(list(itertools.product(_values(xs), _values(ys))), dtype=np.float64).reshape(-1, 2)
    return g[:, 0], g[:, 1]


def surface(model: nn.Module, origin: State, dir_x: State, dir_y: State, xs, ys, data: Data,
            loss_fn: LossFn | None = None, **options) -> pd.DataFrame:
    """Loss and accuracy on the plane ``origin + x·dir_x + y·dir_y`` over the grid ``xs × ys``.

    ``dir_x``/``dir_y`` are (possibly partial) state dicts, e.g. from
    :func:`random_direction` or :func:`pca_directions`. Returns columns
    ``x, y, loss, accuracy``, one row per grid point (``x`` outer, ``y`` inner).
    """
    x, y = _grid(xs, ys)
    df = evaluate_points(model, origin, [dir_x, dir_y], np.stack([x, y], 1), data, loss_fn, **options)
    df.insert(0, "y", y)
    df.insert(0, "x", x)
    return df


def bilinear_surface(model: nn.Module, corners: Sequence[State], xs, ys, data: Data,
                     loss_fn: LossFn | None = None, **options) -> pd.DataFrame:
    """im2016's bilinear plane through four states ``(θ00, θ10, θ01, θ11)``.

    The point at ``(x, y)`` is ``(1−x)(1−y)θ00 + x(1−y)θ10 + (1−x)yθ01 + xyθ11``,
    so the corners sit at (0,0), (1,0), (0,1), (1,1). Returns ``x, y, loss, accuracy``.
    """
    if len(corners) != 4:
        raise ValueError(f"bilinear_surface needs 4 corner states, got {len(corners)}")
    t00, t10, t01, t11 = corners
    d_x, d_y = diff(t10, t00), diff(t01, t00)
    d_xy = {k: t11[k] - t10[k] - t01[k] + t00[k] for k in d_x}
    x, y = _grid(xs, ys)
    df = evaluate_points(model, t00, [d_x, d_y, d_xy], np.stack([x, y, x * y], 1), data, loss_fn,
                         **options)
    df.insert(0, "y", y)
    df.insert(0, "x", x)
    return df


def barycentric_surface(model: nn.Module, theta0: State, theta1: State, theta2: State, xs, ys,
                        data: Data, loss_fn: LossFn | None = None, *, simplex_only: bool = False,
                        **options) -> pd.DataFrame:
    """im2016's plane through three states: ``θ0 + a(θ1 − θ0) + b(θ2 − θ0)``.

    ``a`` runs over ``xs`` and ``b`` over ``ys`` (θ0 at (0,0), θ1 at (1,0), θ2 at
    (0,1)); ``simplex_only`` keeps the points with ``a, b ≥ 0, a + b ≤ 1``. Returns
    ``x, y`` (= ``a, b``), the barycentric coordinates ``w0 = 1−a−b, w1 = a, w2 = b``,
    ``loss, accuracy``.
    """
    a, b = _grid(xs, ys)
    if simplex_only:
        keep = (a >= -1e-12) & (b >= -1e-12) & (a + b <= 1 + 1e-12)
        a, b = a[keep], b[keep]
    df = evaluate_points(model, theta0, [diff(theta1, theta0), diff(theta2, theta0)],
                         np.stack([a, b], 1), data, loss_fn, **options)
    for name, col in reversed((("x", a), ("y", b), ("w0", 1 - a - b), ("w1", a), ("w2", b))):
        df.insert(0, name, col)
    return df


def distance_path(model: nn.Module, final: State, init: State, distances, data: Data,
                  loss_fn: LossFn | None = None, **options) -> pd.DataFrame:
    """Loss against absolute distance: ``θ(λ) = θ1 + λ(θ0 − θ1)/‖θ0 − θ1‖`` (im2016 Fig. 6).

    ``final`` is θ1, ``init`` is θ0; ``λ`` (``distances``) is in parameter-space
    distance units (the norm is over the model's parameters), so ``λ = ‖θ0 − θ1‖``
    is the init and larger ``λ`` continue past it. Float buffers move along with
    the parameters (they reach θ0's at the init). Returns ``distance, alpha, loss,
    accuracy`` with ``alpha = λ/‖θ0 − θ1‖``.
    """
    lam = _values(distances)
    norm = distance(init, final, float_param_names(model, final))
    if norm == 0:
        raise ValueError("final and init are the same point")
    df = evaluate_points(model, final, [diff(init, final)], (lam / norm)[:, None], data, loss_fn,
                         **options)
    df.insert(0, "alpha", lam / norm)
    df.insert(0, "distance", lam)
    return df

