"""Li et al.'s convexity map: the ratio |λ_min / λ_max| of the Hessian's extreme eigenvalues.

Li et al. (2018, "Visualizing the loss landscape of neural nets", §6) colour a
plane of the landscape by ``|λ_min / λ_max|``, the most negative eigenvalue over
the largest: near zero where the loss is locally convex along every direction
(the negative curvature is small next to the positive), large where it is not.
:func:`extreme_eigenvalues` gives both ends of the spectrum at a model's current
weights by Lanczos; :func:`convexity_map` does it at every point of a plane
``origin + x·dir_x + y·dir_y`` (the directions of a random or PCA plane of
:mod:`lossland.landscape`), each point with its own Hessian operator.
"""

from __future__ import annotations

import time
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..evaluation import Data, LossFn
from .operator import HessianOperator

State = Mapping[str, torch.Tensor]


def convexity_ratio(bottom: float, top: float) -> float:
    """``|λ_min / λ_max|`` (NaN when ``λ_max`` is 0 or either value is not finite).

    ``bottom`` is the algebraically smallest eigenvalue: a positive one (a locally
    convex point) gives a ratio below 1, as a negative one of smaller magnitude does.
    """
    if not (np.isfinite(bottom) and np.isfinite(top)) or top == 0:
        return float("nan")
    return float(abs(bottom / top))


def extreme_eigenvalues(model: nn.Module, data: Data, loss_fn: LossFn | None = None, *, tol: float = 1e-3,
                        max_iter: int = 50, seed: int = 0, **op_kw) -> dict[str, float]:
    """``{top_eigenvalue, bottom_eigenvalue, convexity_ratio}`` of the Hessian of the mean
    loss of ``model`` (eval mode) over ``data`` at its current weights.

    Lanczos with full reorthogonalisation for each end (start vectors from ``seed`` and
    ``seed + 1``), stopping when the Ritz value changes by less than ``tol`` (relative) or
    after ``max_iter`` products; ``op_kw`` go to :class:`HessianOperator`.
    """
    op = HessianOperator(model, data, loss_fn, **op_kw)
    top = float(op.eigenvalues(1, "largest", tol=tol, max_iter=max_iter, seed=seed)[0])
    bottom = float(op.eigenvalues(1, "smallest", tol=tol, max_iter=max_iter, seed=seed + 1)[0])
    return {"top_eigenvalue": top, "bottom_eigenvalue": bottom, "convexity_ratio": convexity_ratio(bottom, top)}


def _point(origin: State, dir_x: State, dir_y: State, x: float, y: float) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in origin.items():
        if v.is_floating_point() and (k in dir_x or k in dir_y):
            w = v.clone()
            if k in dir_x:
                w.add_(dir_x[k].to(w), alpha=float(x))
            if k in dir_y:
                w.add_(dir_y[k].to(w), alpha=float(y))
            out[k] = w
        else:
            out[k] = v
    return out


def convexity_map(model: nn.Module, origin: State, dir_x: State, dir_y: State, xs: Sequence[float],
                  ys: Sequence[float], data: Data, loss_fn: LossFn | None = None, *, tol: float = 1e-3,
                  max_iter: int = 50, seed: int = 0, progress=None, **op_kw) -> pd.DataFrame:
    """The extreme eigenvalues and ``|λ_min / λ_max|`` at every point ``origin + x·dir_x +
    y·dir_y`` of the grid ``xs × ys``: one row per point, ``x, y, top_eigenvalue,
    bottom_eigenvalue, convexity_ratio, seconds``, in grid order (x outer).

    Directions cover the parameters they name (buffers such as BatchNorm statistics stay
    at the origin's, as on :func:`lossland.surface`'s planes). ``model`` is left at
    ``origin``. ``progress`` (a tqdm bar) advances by one per point. A point whose
    Hessian is not finite (a diverged region) gets NaN, not an error.
    """
    was_training = model.training
    model.eval()
    # a copy: `origin` may be the model's own state_dict(), whose tensors each point overwrites
    origin = {k: v.detach().clone() for k, v in origin.items()}
    rows = []
    try:
        for x in xs:
            for y in ys:
                t0 = time.perf_counter()
                model.load_state_dict(_point(origin, dir_x, dir_y, x, y))
                try:
                    values = extreme_eigenvalues(model, data, loss_fn, tol=tol, max_iter=max_iter, seed=seed, **op_kw)
                except (RuntimeError, ValueError, np.linalg.LinAlgError):
                    values = {"top_eigenvalue": np.nan, "bottom_eigenvalue": np.nan, "convexity_ratio": np.nan}
                rows.append({"x": float(x), "y": float(y), **values, "seconds": time.perf_counter() - t0})
                if progress is not None:
                    progress.update(1)
    finally:
        model.load_state_dict(origin)
        model.train(was_training)
    return pd.DataFrame(rows)
