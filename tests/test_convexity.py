"""Li et al.'s convexity map against Hessians known in closed form."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import lossland
from lossland.curvature import convexity_ratio


class Quartic(nn.Module):
    """Outputs L(θ) = ½θᵀAθ + (c/12)·Σθᵢ⁴ for every input row: H(θ) = A + c·diag(θ²)."""

    def __init__(self, a: torch.Tensor, c: float, theta: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("a", a)
        self.c = float(c)
        self.theta = nn.Parameter(theta.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        val = 0.5 * self.theta @ self.a @ self.theta + self.c / 12.0 * (self.theta ** 4).sum()
        return val.expand(x.shape[0])


def mean_loss(out: torch.Tensor, _y: torch.Tensor) -> torch.Tensor:
    return out.mean()


DATA = (torch.zeros(5, 1, dtype=torch.float64), torch.zeros(5, dtype=torch.float64))


def indefinite(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    return (m + m.T) / 2


def dense_ratio(h: torch.Tensor) -> tuple[float, float, float]:
    ev = torch.linalg.eigvalsh(h)
    return float(ev[-1]), float(ev[0]), abs(float(ev[0]) / float(ev[-1]))


def test_ratio_of_a_quadratic_is_that_of_its_matrix():
    a = indefinite(12, seed=0)
    model = Quartic(a, 0.0, torch.randn(12, dtype=torch.float64))
    got = lossland.extreme_eigenvalues(model, DATA, mean_loss, tol=1e-12, max_iter=12)
    top, bottom, ratio = dense_ratio(a)
    assert got["top_eigenvalue"] == pytest.approx(top, rel=1e-9)
    assert got["bottom_eigenvalue"] == pytest.approx(bottom, rel=1e-9)
    assert got["convexity_ratio"] == pytest.approx(ratio, rel=1e-9)
    assert got["bottom_eigenvalue"] < 0  # an indefinite matrix: a non-convex point


def test_map_follows_the_hessian_across_the_plane():
    """H(θ) = A + c·diag(θ²) changes from point to point: each point's ratio is the dense one's."""
    n, c = 8, 3.0
    a = indefinite(n, seed=1)
    origin_theta = 0.3 * torch.randn(n, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    model = Quartic(a, c, origin_theta)
    origin = {k: v.clone() for k, v in model.state_dict().items()}
    g = torch.Generator().manual_seed(3)
    dx = {"theta": torch.randn(n, generator=g, dtype=torch.float64)}
    dy = {"theta": torch.randn(n, generator=g, dtype=torch.float64)}
    xs, ys = [-1.0, 0.0, 1.5], [-0.5, 0.75]
    table = lossland.convexity_map(model, origin, dx, dy, xs, ys, DATA, mean_loss, tol=1e-12, max_iter=n)
    assert list(zip(table["x"], table["y"])) == [(x, y) for x in xs for y in ys]
    ratios = []
    for row in table.itertuples():
        theta = origin_theta + row.x * dx["theta"] + row.y * dy["theta"]
        top, bottom, ratio = dense_ratio(a + c * torch.diag(theta ** 2))
        assert row.top_eigenvalue == pytest.approx(top, rel=1e-8)
        assert row.bottom_eigenvalue == pytest.approx(bottom, rel=1e-8, abs=1e-10)
        assert row.convexity_ratio == pytest.approx(ratio, rel=1e-7)
        ratios.append(ratio)
    assert max(ratios) / min(ratios) > 1.5  # the map is not constant: the test can tell points apart
    # the model is back at the origin
    torch.testing.assert_close(model.theta.detach(), origin_theta)


def test_a_convex_point_has_a_small_ratio_and_a_saddle_a_large_one():
    # a convex point: H = diag(1, 2, 10) -> λ_min / λ_max = 0.1 (positive, below 1)
    convex = Quartic(torch.diag(torch.tensor([1.0, 2.0, 10.0], dtype=torch.float64)), 0.0,
                     torch.zeros(3, dtype=torch.float64))
    saddle = Quartic(torch.diag(torch.tensor([-8.0, 2.0, 10.0], dtype=torch.float64)), 0.0,
                     torch.zeros(3, dtype=torch.float64))
    low = lossland.extreme_eigenvalues(convex, DATA, mean_loss, tol=1e-12, max_iter=3)["convexity_ratio"]
    high = lossland.extreme_eigenvalues(saddle, DATA, mean_loss, tol=1e-12, max_iter=3)["convexity_ratio"]
    assert low == pytest.approx(0.1, rel=1e-9) and high == pytest.approx(0.8, rel=1e-9)


def test_ratio_edge_cases():
    assert convexity_ratio(-2.0, 4.0) == 0.5
    assert convexity_ratio(1.0, 4.0) == 0.25
    assert math.isnan(convexity_ratio(1.0, 0.0))
    assert math.isnan(convexity_ratio(float("nan"), 1.0))


def test_map_on_a_batchnorm_net_keeps_the_statistics_and_matches_a_dense_hessian():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2)).double().eval()
    with torch.no_grad():
        model[1].running_mean.normal_()
        model[1].running_var.uniform_(0.5, 1.5)
    x = torch.randn(16, 3, dtype=torch.float64)
    y = torch.randint(0, 2, (16,))
    origin = {k: v.clone() for k, v in model.state_dict().items()}
    dx = lossland.random_direction(model, seed=1)
    dy = lossland.random_direction(model, seed=2)
    table = lossland.convexity_map(model, origin, dx, dy, [0.5], [-0.5], (x, y), tol=1e-12, max_iter=60)
    point = {k: (v + 0.5 * dx[k] - 0.5 * dy[k]) if k in dx else v for k, v in origin.items()}
    model.load_state_dict(point)
    top, bottom, ratio = dense_ratio(lossland.hessian(model, (x, y)))
    assert table["top_eigenvalue"].iloc[0] == pytest.approx(top, rel=1e-6)
    assert table["bottom_eigenvalue"].iloc[0] == pytest.approx(bottom, rel=1e-6, abs=1e-9)
    assert table["convexity_ratio"].iloc[0] == pytest.approx(ratio, rel=1e-5)
    model.load_state_dict(origin)


def test_map_from_the_models_own_state_dict_is_that_from_a_copy():
    """``model.state_dict()`` shares the parameters' storage: the map must not move its origin."""
    n = 6
    a = indefinite(n, seed=4)
    model = Quartic(a, 2.0, 0.5 * torch.ones(n, dtype=torch.float64))
    g = torch.Generator().manual_seed(5)
    dx = {"theta": torch.randn(n, generator=g, dtype=torch.float64)}
    dy = {"theta": torch.randn(n, generator=g, dtype=torch.float64)}
    copied = lossland.convexity_map(model, {k: v.clone() for k, v in model.state_dict().items()}, dx, dy,
                                    [0.0, 1.0], [1.0], DATA, mean_loss, tol=1e-12, max_iter=n)
    shared = lossland.convexity_map(model, model.state_dict(), dx, dy, [0.0, 1.0], [1.0], DATA, mean_loss,
                                    tol=1e-12, max_iter=n)
    cols = ["top_eigenvalue", "bottom_eigenvalue"]
    np.testing.assert_allclose(shared[cols].to_numpy(), copied[cols].to_numpy(), rtol=1e-10)
    torch.testing.assert_close(model.theta.detach(), 0.5 * torch.ones(n, dtype=torch.float64))
