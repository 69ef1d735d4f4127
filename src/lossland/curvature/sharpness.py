"""ε-sharpness (Keskar et al. 2017): the largest rise of the loss in a box around the weights."""

from __future__ import annotations

import torch
from torch import nn

from ..evaluation import Data, LossFn
from .operator import _operator

REGIONS = ("box", "ball")


def epsilon_sharpness(model: nn.Module, data: Data, epsilon: float = 1e-3,
                      loss_fn: LossFn | None = None, *, steps: int = 10, step_size: float = 0.25,
                      region: str = "box", **op_kw) -> float:
    """ε-sharpness of Keskar et al. (2017), in percent:
    ``(max_{z ∈ C_ε} L(θ+z) − L(θ)) / (1 + L(θ)) × 100`` with the box
    ``C_ε = {z : |z_i| ≤ ε (|θ_i| + 1)}`` over all trainable parameters.

    The maximum is approximated by projected sign-gradient ascent from ``z = 0``
    (the steepest-ascent direction for a box): ``steps`` steps of
    ``z ← clip(z + step_size · r ⊙ sign(∇L(θ+z)), −r, r)`` with
    ``r = ε(|θ|+1)``; the largest loss seen (including ``L(θ)``) is used, so the
    result is ≥ 0 and exactly 0 for ``ε = 0``. On a loss that is convex and
    quadratic along each coordinate with a diagonal Hessian, one step with
    ``step_size ≥ 1`` reaches the exact maximiser. The model is not changed.

    ``region="ball"`` is Dinh et al.'s (2017) variant: the Euclidean ball ``‖z‖₂ ≤ ε``
    (radius ``ε`` in parameter units, not relative to ``θ``), approximated by projected
    normalised-gradient ascent ``z ← Π_ball(z + step_size · ε · ∇L/‖∇L‖)``.

    ``data`` may be a :class:`HessianOperator` of ``model`` (as for the other curvature
    functions), whose batches are then reused.
    """
    if epsilon < 0:
        raise ValueError("epsilon must be ≥ 0")
    if region not in REGIONS:
        raise ValueError(f"region must be one of {', '.join(REGIONS)}, got {region!r}")
    op = _operator(model, data, loss_fn, op_kw)
    theta = op.theta()
    r = epsilon * (theta.abs() + 1)
    base, g = op.loss_and_grad()
    best = base
    z = torch.zeros_like(theta)
    if epsilon > 0:
        for t in range(steps):
            if region == "box":
                z = torch.maximum(torch.minimum(z + step_size * r * torch.sign(g), r), -r)
            else:
                z = z + step_size * epsilon * g / g.norm().clamp_min(1e-30)
                z = z * min(1.0, epsilon / max(float(z.norm()), 1e-30))
            loss, g = op.loss_and_grad(z)
            best = max(best, loss)
    return (best - base) / (1 + base) * 100
