"""Hessian engine: exact values on analytic models, agreement with autograd's
dense Hessian and eigvalsh, stochastic estimators against exact values, and
agreement with PyHessian."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import lossland
from lossland import curvature
from lossland.curvature import HessianOperator
from lossland.evaluation import eval_mode

trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz


# --------------------------------------------------------------------------- models


class Quadratic(nn.Module):
    """Outputs L(θ) = ½θᵀAθ + bᵀθ for every input row; with ``mean_loss`` the loss is L."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, theta: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("a", a)
        self.register_buffer("b", b)
        self.theta = nn.Parameter(theta.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        val = 0.5 * self.theta @ self.a @ self.theta + self.b @ self.theta
        return val.expand(x.shape[0])


def mean_loss(out: torch.Tensor, _y: torch.Tensor) -> torch.Tensor:
    return out.mean()


class Chain(nn.Module):
    """Scalar deep linear chain f(x) = w2·w1·x."""

    def __init__(self, w1: float, w2: float) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.tensor(w1, dtype=torch.float64))
        self.w2 = nn.Parameter(torch.tensor(w2, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2 * self.w1 * x


def mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out, y)  # mean over samples of (y − f)²


def random_quadratic(n: int, seed: int, psd: bool = False):
    g = torch.Generator().manual_seed(seed)
    m = torch.randn(n, n, generator=g, dtype=torch.float64)
    a = m @ m.T / n if psd else (m + m.T) / 2
    b = torch.randn(n, generator=g, dtype=torch.float64)
    theta = torch.randn(n, generator=g, dtype=torch.float64)
    return a, b, theta


def dummy_data(n: int = 7):
    return torch.zeros(n, 1, dtype=torch.float64), torch.zeros(n, dtype=torch.float64)


@pytest.fixture(scope="module")
def small_net():
    """A float64 tanh MLP (419 parameters) away from a minimum: indefinite Hessian."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(),
                          nn.Linear(16, 3)).double()
    x = torch.randn(120, 5, dtype=torch.float64)
    y = torch.randint(0, 3, (120,))
    return model, (x, y)


@pytest.fixture(scope="module")
def small_dense(small_net):
    model, data = small_net
    h = lossland.hessian(model, data)
    return h, torch.linalg.eigvalsh(h)


def flat_loss_fn(model, data, loss_fn=lossland.default_loss):
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for p in model.parameters()]
    x, y = data

    def f(theta):
        parts = theta.split([math.prod(s) for s in shapes])
        params = {n: t.view(s) for n, t, s in zip(names, parts, shapes)}
        return loss_fn(torch.func.functional_call(model, params, (x,)), y)

    return f, torch.nn.utils.parameters_to_vector(model.parameters()).detach()


# --------------------------------------------------------------------------- analytic


@pytest.mark.parametrize("backend", ["autograd", "func"])
@pytest.mark.parametrize("batch_size", [None, 3])
def test_quadratic_hessian_is_a(backend, batch_size):
    a, b, theta = random_quadratic(6, seed=1)
    model = Quadratic(a, b, theta)
    h = lossland.hessian(model, dummy_data(), mean_loss, backend=backend, batch_size=batch_size)
    torch.testing.assert_close(h, a, rtol=1e-12, atol=1e-12)
    v = torch.randn(6, dtype=torch.float64)
    torch.testing.assert_close(lossland.hvp(model, dummy_data(), v, mean_loss, backend=backend), a @ v)


def test_quadratic_eigenvalues_and_trace_exact():
    a, b, theta = random_quadratic(30, seed=2)
    model = Quadratic(a, b, theta)
    ev = torch.linalg.eigvalsh(a)
    top = lossland.top_eigenvalues(model, dummy_data(), k=3, loss_fn=mean_loss, tol=1e-12, max_iter=30)
    bottom = lossland.top_eigenvalues(model, dummy_data(), k=2, which="smallest", loss_fn=mean_loss,
                                      tol=1e-12, max_iter=30)
    torch.testing.assert_close(top, ev.flip(0)[:3], rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(bottom, ev[:2], rtol=1e-9, atol=1e-9)
    # hutch++ with ≥ 3·dim products is exact (the sketch spans the whole space)
    est = lossland.hessian_trace(model, dummy_data(), n_probes=99, method="hutch++", loss_fn=mean_loss)
    assert est.estimate == pytest.approx(float(a.trace()), rel=1e-9)


@pytest.mark.parametrize("w1,w2", [(1.5, -0.4), (0.3, 2.0)])
def test_scalar_chain_at_minimum(w1, w2):
    """loss = mean_n (y_n − w2·w1·x_n)² with y_n = w1·w2·x_n: H = 2·mean(x²)·u uᵀ,
    u = (w2, w1), so the eigenvalues are 0 and 2·mean(x²)·(w1² + w2²)."""
    x = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    y = w1 * w2 * x
    model = Chain(w1, w2)
    h = lossland.hessian(model, (x, y), mse)
    lam = 2 * float((x ** 2).mean()) * (w1 ** 2 + w2 ** 2)
    u = torch.tensor([w2, w1], dtype=torch.float64)
    torch.testing.assert_close(h, 2 * (x ** 2).mean() * torch.outer(u, u))
    ev = torch.linalg.eigvalsh(h)
    assert abs(float(ev[0])) < 1e-12
    assert float(ev[1]) == pytest.approx(lam, rel=1e-12)
    top = lossland.top_eigenvalues(model, (x, y), loss_fn=mse, tol=1e-12)
    assert float(top[0]) == pytest.approx(lam, rel=1e-10)


# --------------------------------------------------------------------------- dense and HVP


@pytest.mark.parametrize("batch_size", [None, 50])
def test_dense_matches_autograd_functional(small_net, batch_size):
    model, data = small_net
    f, theta = flat_loss_fn(model, data)
    expected = torch.autograd.functional.hessian(f, theta)
    got = lossland.hessian(model, data, batch_size=batch_size)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("backend", ["autograd", "func"])
def test_batches_weighted_by_size(small_net, small_dense, backend):
    """An iterable of unequal batches gives the Hessian of the full-data mean loss."""
    model, (x, y) = small_net
    h, _ = small_dense
    batches = [(x[:17], y[:17]), (x[17:100], y[17:100]), (x[100:], y[100:])]
    with torch.no_grad():  # works inside no_grad too
        got = lossland.hessian(model, batches, backend=backend)
    torch.testing.assert_close(got, h, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("backend", ["autograd", "func"])
def test_hvp_matches_dense(small_net, small_dense, backend):
    model, data = small_net
    h, _ = small_dense
    op = HessianOperator(model, data, backend=backend, batch_size=50)
    g = torch.Generator().manual_seed(3)
    v = torch.randn(4, op.dim, generator=g, dtype=torch.float64)
    torch.testing.assert_close(op.matmat(v), v @ h.T, rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(op @ v[0], h @ v[0], rtol=1e-9, atol=1e-11)


def test_bn_eval_mode_default_and_restored():
    torch.manual_seed(0)
    model = lossland.create_model({"arch": "mlp", "hidden": [6], "batch_norm": True}, (2, 2, 2), 3)
    x, y = torch.randn(40, 2, 2, 2), torch.randint(0, 3, (40,))
    model.train()
    with torch.no_grad():
        model(x * 3 + 1)  # nontrivial running statistics
    buffers = [b.clone() for b in model.buffers()]
    h_eval = lossland.hessian(model, (x, y))
    assert model.training
    with eval_mode(model):
        f, theta = flat_loss_fn(model, (x, y))
        expected = torch.autograd.functional.hessian(f, theta)
    torch.testing.assert_close(h_eval, expected, rtol=1e-4, atol=1e-5)
    h_train = lossland.hessian(model, (x, y), train=True)
    assert not torch.allclose(h_train, h_eval, atol=1e-3)
    for b, b0 in zip(model.buffers(), buffers):
        torch.testing.assert_close(b, b0)  # running stats restored


# --------------------------------------------------------------------------- Lanczos


def test_lanczos_matches_eigvalsh(small_net, small_dense):
    model, data = small_net
    _, ev = small_dense
    assert float(ev[0]) < 0 < float(ev[-1])  # indefinite
    op = HessianOperator(model, data)
    assert op.dim == 419
    top, info = op.eigenvalues(k=3, tol=1e-8, max_iter=200, return_info=True)
    assert info["converged"] and info["iterations"] < op.dim
    torch.testing.assert_close(top, ev.flip(0)[:3], rtol=1e-4, atol=0)
    bottom = lossland.top_eigenvalues(model, data, k=2, which="smallest", tol=1e-8, max_iter=200)
    torch.testing.assert_close(bottom, ev[:2], rtol=1e-4, atol=0)


def test_lanczos_restarts_on_invariant_subspace():
    # diag(5, 5, 5, 1, ...): Krylov space from one vector has dim 2; k=3 needs restarts
    d = torch.tensor([5.0, 5.0, 5.0] + [1.0] * 7, dtype=torch.float64)
    vals = curvature.lanczos_eigenvalues(lambda v: v * d, 10, k=3, tol=1e-12, dtype=torch.float64)
    torch.testing.assert_close(vals, torch.tensor([5.0, 5.0, 5.0], dtype=torch.float64))


# --------------------------------------------------------------------------- traces


def test_hutchinson_within_three_standard_errors(small_net, small_dense):
    model, data = small_net
    h, _ = small_dense
    exact = float(h.trace())
    est = lossland.hessian_trace(model, data, n_probes=100, method="hutchinson")
    assert est.method == "hutchinson" and est.n_probes == 100 and est.stderr > 0
    assert abs(est.estimate - exact) < 3 * est.stderr
    assert float(est) == est.estimate
    # deterministic given the seed, different for another seed
    assert lossland.hessian_trace(model, data, n_probes=100, method="hutchinson").estimate == est.estimate
    assert lossland.hessian_trace(model, data, n_probes=100, method="hutchinson", seed=1).estimate != est.estimate


def test_default_trace_is_deflated(small_net, small_dense):
    model, data = small_net
    h, _ = small_dense
    est = lossland.hessian_trace(model, data, n_probes=60)
    assert est.method == "deflated" and est.n_matvecs == 60
    assert abs(est.estimate - float(h.trace())) < 4 * est.stderr


@pytest.mark.parametrize("method, n_probes", [("hutch++", 90), ("deflated", 60)])
def test_variance_reduced_traces_on_a_network(small_net, small_dense, method, n_probes):
    model, data = small_net
    h, _ = small_dense
    exact = float(h.trace())
    est = lossland.hessian_trace(model, data, n_probes=n_probes, method=method)
    assert est.method == method and est.n_matvecs == n_probes
    assert abs(est.estimate - exact) < 4 * est.stderr
    hutch = lossland.hessian_trace(model, data, n_probes=n_probes, method="hutchinson")
    assert est.stderr < hutch.stderr  # deflation reduces the variance here


def test_exact_and_adaptive_traces_on_a_network(small_net, small_dense):
    model, data = small_net
    h, _ = small_dense
    exact = float(h.trace())
    assert lossland.hessian_trace(model, data, method="exact").estimate == pytest.approx(exact, rel=1e-12)
    # an indefinite Hessian whose trace is small next to its spread: a loose relative tolerance
    adaptive = lossland.hessian_trace(model, data, n_probes=500, method="deflated", tol=0.05)
    assert adaptive.stderr <= 0.05 * abs(adaptive.estimate) and adaptive.n_matvecs < 500
    assert abs(adaptive.estimate - exact) < 4 * adaptive.stderr
    with pytest.raises(ValueError, match="hutchinson, deflated"):
        lossland.hessian_trace(model, data, method="nope")
    with pytest.raises(ValueError, match="tol applies"):
        lossland.hessian_trace(model, data, method="hutch++", tol=0.1)
    with pytest.raises(ValueError, match="lanczos_steps applies"):
        lossland.hessian_trace(model, data, method="hutchinson", lanczos_steps=5)


def _symmetric(outliers: list[float], bulk, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``U diag(λ) Uᵀ`` with a random orthogonal ``U`` and ``λ`` = ``outliers`` followed by
    ``bulk(m, generator)`` (drawn after ``U``, from the same generator); returns it and ``λ``."""
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    lam = torch.cat([torch.tensor(outliers, dtype=torch.float64), bulk(n - len(outliers), g)])
    return (u * lam) @ u.T, lam


def _spiked_matrix(n: int = 200, seed: int = 0) -> tuple[torch.Tensor, float]:
    """A symmetric matrix with a few outlying eigenvalues over a bulk, as network Hessians have."""
    a, lam = _symmetric([90.0, 70.0, 50.0, 40.0, -25.0],
                        lambda m, g: torch.randn(m, generator=g, dtype=torch.float64), n, seed)
    return a, float(lam.sum())


def _clustered_matrix(n: int = 300, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Outliers in close pairs over a bulk (gaps of 1–3 %, as the top of a CNN's Hessian
    has): values that creep, so a rule on the change between steps stops too early."""
    a, lam = _symmetric([1.0, 0.97, 0.9, 0.89, 0.87, -0.6],
                        lambda m, g: 0.3 * torch.rand(m, generator=g, dtype=torch.float64), n, seed)
    return a, lam.sort(descending=True).values


@pytest.mark.parametrize("k", [1, 5])
@pytest.mark.parametrize("tol", [1e-3, 1e-4, 1e-6])
def test_lanczos_tolerance_bounds_the_error(k, tol):
    """``tol`` bounds the error: over seeds, every stopped value is within ``tol`` of
    its eigenvalue (with a close second eigenvalue that no Ritz value has found yet
    at the early steps, where the residual bound alone would stop too soon). Not a
    guarantee: with tol=1e-2 one seed of five stops 1.6 % off on this matrix."""
    a, lam = _clustered_matrix()
    for seed in range(5):
        vals, info = curvature.lanczos_eigenvalues(lambda v: v @ a, a.shape[0], k, tol=tol, max_iter=300,
                                                   seed=seed, dtype=torch.float64, return_info=True)
        err = ((vals - lam[:k]).abs() / lam[:k].abs()).numpy()
        assert info["converged"] and info["iterations"] < 300
        assert (err <= tol).all(), (seed, err)
        assert (np.asarray(info["error_bounds"]) <= tol).all()
    smallest = curvature.lanczos_eigenvalues(lambda v: v @ a, a.shape[0], 1, "smallest", tol=tol,
                                             max_iter=300, dtype=torch.float64)
    assert abs(float(smallest[0]) + 0.6) <= tol * 0.6


def test_deflated_trace_is_unbiased_and_beats_hutchinson():
    a, exact = _spiked_matrix()
    mm = lambda v: v @ a  # noqa: E731
    kw = {"dtype": torch.float64}
    defl = np.array([curvature.deflated_hutchinson(mm, 200, 40, lanczos_steps=15, seed=s, **kw).estimate
                     for s in range(300)])
    hutch = np.array([curvature.hutchinson(mm, 200, 40, seed=s, **kw).estimate for s in range(300)])
    # unbiased: the mean over 300 seeds within 4 standard errors of the trace
    assert abs(defl.mean() - exact) < 4 * defl.std() / np.sqrt(300)
    assert abs(hutch.mean() - exact) < 4 * hutch.std() / np.sqrt(300)
    # the outliers hold most of the variance: deflating them cuts the error several-fold
    assert defl.std() < hutch.std() / 4
    # the reported standard error matches the spread over seeds
    se = np.mean([curvature.deflated_hutchinson(mm, 200, 40, lanczos_steps=15, seed=s, **kw).stderr
                  for s in range(50)])
    assert 0.6 < se / defl.std() < 1.6


def test_deflated_trace_reuses_pilot_probes_without_bias():
    # tol far below reach: k doubles 10 → 20 → 30 (= n_probes // 2), and the 16 pilot
    # probes, multiplied before projection, are re-deflated for the final basis by formula
    a, exact = _spiked_matrix()
    mm = lambda v: v @ a  # noqa: E731
    runs = [curvature.deflated_hutchinson(mm, 200, 60, tol=1e-12, seed=s, dtype=torch.float64) for s in range(300)]
    assert all(r.n_matvecs == 60 and r.n_probes == 30 for r in runs)
    est = np.array([r.estimate for r in runs])
    assert abs(est.mean() - exact) < 4 * est.std() / np.sqrt(300)
    fixed = np.array([curvature.deflated_hutchinson(mm, 200, 60, lanczos_steps=30, seed=s, dtype=torch.float64).estimate
                      for s in range(300)])
    assert 0.7 < est.std() / fixed.std() < 1.4


def test_deflated_trace_exact_when_krylov_space_is_everything():
    a, exact = _spiked_matrix(30)
    est = curvature.deflated_hutchinson(lambda v: v @ a, 30, 80, lanczos_steps=40, dtype=torch.float64)
    assert est.estimate == pytest.approx(exact, rel=1e-10)
    assert est.stderr == 0 and est.n_matvecs == 30 and est.method == "deflated"
    # rank-2 operator: span{v, Hv, H²v} holds its range, so the residual probes see zero
    u = torch.randn(50, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    low = u @ torch.diag(torch.tensor([3.0, -1.0], dtype=torch.float64)) @ u.T
    est = curvature.deflated_hutchinson(lambda v: v @ low, 50, 10, lanczos_steps=3, dtype=torch.float64)
    assert est.estimate == pytest.approx(float(low.trace()), rel=1e-9)
    assert est.stderr < 1e-9 * abs(est.estimate)


def test_trace_tolerance_stops_early():
    a, exact = _spiked_matrix()
    mm = lambda v: v @ a  # noqa: E731
    for fn in (curvature.hutchinson, curvature.deflated_hutchinson):
        loose = fn(mm, 200, 5000, tol=0.1, seed=1, dtype=torch.float64)
        tight = fn(mm, 200, 5000, tol=0.03, seed=1, dtype=torch.float64)
        assert loose.stderr <= 0.1 * abs(loose.estimate)
        assert tight.stderr <= 0.03 * abs(tight.estimate)
        assert loose.n_matvecs <= tight.n_matvecs < 5000
        assert abs(tight.estimate - exact) < 4 * tight.stderr
    # the deflated estimator reaches the tight tolerance with far fewer products
    assert (curvature.deflated_hutchinson(mm, 200, 5000, tol=0.03, seed=1, dtype=torch.float64).n_matvecs
            < curvature.hutchinson(mm, 200, 5000, tol=0.03, seed=1, dtype=torch.float64).n_matvecs / 4)
    with pytest.raises(ValueError, match="tol"):
        curvature.hutchinson(mm, 200, 10, tol=0.0)
    with pytest.raises(ValueError, match="lanczos_steps"):
        curvature.deflated_hutchinson(mm, 200, 10, lanczos_steps=10)


# --------------------------------------------------------------------------- SLQ


def test_spectral_density(small_net, small_dense):
    model, data = small_net
    h, ev = small_dense
    p = h.shape[0]
    df = lossland.spectral_density(model, data, n_probes=20, n_steps=40)
    assert list(df.columns) == ["eigenvalue", "density"]
    x, d = df["eigenvalue"].to_numpy(), df["density"].to_numpy()
    assert (d >= 0).all()
    assert trapezoid(d, x) == pytest.approx(1.0, abs=1e-9)
    mean = trapezoid(x * d, x)
    exact_mean = float(h.trace()) / p
    hutch = lossland.hessian_trace(model, data, n_probes=20, method="hutchinson")
    assert abs(mean - exact_mean) < 3 * hutch.stderr / p + 1e-6
    assert df.attrs["trace"] == pytest.approx(mean * p, rel=1e-3)
    exact_neg = float((ev < 0).double().mean())
    assert 0 < exact_neg < 1
    # a fifth of the spectrum lies within 1 % of zero: the quadrature of the step is rough there
    assert df.attrs["negative_fraction"] == pytest.approx(exact_neg, abs=0.2)
    # the extreme Ritz values lie inside the spectrum and near its ends
    assert x[np.argmax(d > 1e-3 * d.max())] < float(ev[-1])


def test_slq_exact_with_full_lanczos():
    # n_steps = dim: Gauss quadrature is exact for the spectrum; every probe sees all eigenvalues
    d = torch.linspace(-1, 4, 12, dtype=torch.float64)
    res = curvature.slq(lambda v: v * d, 12, n_probes=5, n_steps=12, dtype=torch.float64)
    for nodes in res.nodes:
        np.testing.assert_allclose(np.sort(nodes), d.numpy(), atol=1e-8)
    frac = float((d < 0).double().mean())
    assert res.negative_fraction() == pytest.approx(frac, abs=0.2)
    assert res.mean() * 12 == pytest.approx(float(d.sum()), abs=3.0)


def test_negative_fraction_function(small_net, small_dense):
    model, data = small_net
    _, ev = small_dense
    frac = lossland.negative_eigenvalue_fraction(model, data, n_probes=30, n_steps=80)
    assert frac == pytest.approx(float((ev < 0).double().mean()), abs=0.1)


def test_negative_fraction_separated_spectrum():
    # eigenvalues in [-2, -1] ∪ [0.5, 3]: a quarter negative, with a gap around zero
    g = torch.Generator().manual_seed(5)
    ev = torch.cat([-1 - torch.rand(50, generator=g), 0.5 + 2.5 * torch.rand(150, generator=g)]).double()
    q, _ = torch.linalg.qr(torch.randn(200, 200, generator=g, dtype=torch.float64))
    a = q @ torch.diag(ev) @ q.T
    model = Quadratic(a, torch.zeros(200, dtype=torch.float64), torch.zeros(200, dtype=torch.float64))
    frac = lossland.negative_eigenvalue_fraction(model, dummy_data(), n_probes=20, n_steps=30,
                                                 loss_fn=mean_loss)
    assert frac == pytest.approx(0.25, abs=0.03)


# --------------------------------------------------------------------------- ε-sharpness


def quadratic_box_max(a_diag, b, theta, eps):
    """max over |z_i| ≤ eps(|θ_i|+1) of a separable convex quadratic: each
    coordinate at the endpoint where it is larger."""
    r = eps * (theta.abs() + 1)

    def f(t):
        return 0.5 * (a_diag * t * t).sum(-1) + (b * t).sum(-1)

    def coord(t):
        return 0.5 * a_diag * t * t + b * t

    best = torch.maximum(coord(theta + r), coord(theta - r)).sum()
    return float(best), float(f(theta))


def test_epsilon_sharpness_zero_and_closed_form():
    g = torch.Generator().manual_seed(4)
    a_diag = torch.rand(8, generator=g, dtype=torch.float64) * 3 + 0.1
    b = torch.randn(8, generator=g, dtype=torch.float64)
    theta = torch.randn(8, generator=g, dtype=torch.float64)
    model = Quadratic(torch.diag(a_diag), b, theta)
    data = dummy_data()
    assert lossland.epsilon_sharpness(model, data, 0.0, mean_loss) == 0.0
    values = []
    for eps in (1e-3, 1e-2, 1e-1, 0.5):
        got = lossland.epsilon_sharpness(model, data, eps, mean_loss)
        fmax, f0 = quadratic_box_max(a_diag, b, theta, eps)
        expected = (fmax - f0) / (1 + f0) * 100
        assert got == pytest.approx(expected, rel=1e-9)
        # one full step to the corner is enough too
        one = lossland.epsilon_sharpness(model, data, eps, mean_loss, steps=1, step_size=1.0)
        assert one == pytest.approx(expected, rel=1e-9)
        values.append(got)
    assert all(v >= 0 for v in values)
    assert values == sorted(values) and values[0] < values[-1]
    torch.testing.assert_close(model.theta.detach(), theta)  # parameters untouched


def test_epsilon_sharpness_network_monotone(small_net):
    model, data = small_net
    before = torch.nn.utils.parameters_to_vector(model.parameters()).clone()
    vals = [lossland.epsilon_sharpness(model, data, eps, steps=5) for eps in (0.0, 1e-3, 1e-2)]
    assert vals[0] == 0.0 and 0 < vals[1] < vals[2]
    torch.testing.assert_close(torch.nn.utils.parameters_to_vector(model.parameters()), before)


# --------------------------------------------------------------------------- PyHessian


def test_agrees_with_pyhessian():
    pyhessian = pytest.importorskip("pyhessian")
    torch.manual_seed(0)
    model = lossland.create_model({"arch": "mlp", "hidden": [16, 16], "batch_norm": True}, (3, 4, 4), 10)
    x, y = torch.randn(200, 3, 4, 4), torch.randint(0, 10, (200,))
    model.train()
    with torch.no_grad():
        model(x * 2 + 0.5)  # nontrivial running statistics: the mode matters
    # both in eval mode: PyHessian calls model.eval() itself, lossland defaults to it
    ours_top = lossland.top_eigenvalues(model, (x, y), tol=1e-6)
    ours_trace = lossland.hessian_trace(model, (x, y), n_probes=200)
    exact_trace = float(lossland.hessian(model, (x, y)).double().trace())
    model.zero_grad(set_to_none=True)
    comp = pyhessian.hessian(model, nn.CrossEntropyLoss(), data=(x, y), cuda=False)
    torch.manual_seed(0)
    ph_top, _ = comp.eigenvalues(maxIter=500, tol=1e-7, top_n=1)
    torch.manual_seed(0)
    ph_samples = np.asarray(comp.trace(maxIter=200, tol=-1.0))
    model.zero_grad(set_to_none=True)
    assert ph_top[0] == pytest.approx(float(ours_top[0]), rel=0.01)
    ph_se = ph_samples.std(ddof=1) / math.sqrt(len(ph_samples))
    assert abs(ph_samples.mean() - exact_trace) < 3 * ph_se
    assert abs(ours_trace.estimate - exact_trace) < 3 * ours_trace.stderr
    assert abs(ours_trace.estimate - ph_samples.mean()) < 3 * math.hypot(ph_se, ours_trace.stderr)


def test_lanczos_no_ghost_eigenvalues():
    # long runs lose orthogonality without reorthogonalisation: converged values reappear
    d = torch.cat([torch.tensor([100.0, 50.0]), torch.linspace(0, 1, 198)]).double()
    vals = curvature.lanczos_eigenvalues(lambda v: v * d, 200, k=3, tol=0.0, max_iter=120, dtype=torch.float64)
    torch.testing.assert_close(vals, torch.tensor([100.0, 50.0, 1.0], dtype=torch.float64), rtol=1e-3, atol=0)


# --------------------------------------------------------------------------- BatchNorm folding


class _ConvBNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(2, affine=False)
        self.fc = nn.Linear(2 * 16, 4)
        self.bn3 = nn.BatchNorm1d(4)
        self.out = nn.Linear(4, 3)

    def forward(self, x):
        x = torch.tanh(self.bn(self.conv(x)))
        x = torch.tanh(self.bn2(self.conv2(x)))
        return self.out(torch.tanh(self.bn3(self.fc(x.flatten(1)))))


class _Untraceable(_ConvBNNet):
    def forward(self, x):
        if float(x.sum()) > 1e9:  # data-dependent control flow: torch.fx cannot trace it
            return x
        return super().forward(x)


@pytest.mark.parametrize("cls", [_ConvBNNet, _Untraceable])
def test_batchnorm_folding_gives_the_same_hessian(cls):
    torch.manual_seed(0)
    model = cls().double()
    with torch.no_grad():  # running statistics far from (0, 1), so folding changes the numbers
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.normal_()
                m.running_var.uniform_(0.3, 3.0)
                if m.weight is not None:
                    m.weight.normal_(1.0, 0.3)
                    m.bias.normal_()
    data = (torch.randn(20, 2, 4, 4, dtype=torch.float64), torch.randint(0, 3, (20,)))
    folded = lossland.HessianOperator(model, data)
    plain = lossland.HessianOperator(model, data, fold_bn=False)
    assert folded.folded_bn is (cls is _ConvBNNet) and not plain.folded_bn
    torch.testing.assert_close(folded.dense(), plain.dense(), rtol=1e-9, atol=1e-11)
    # and equals torch.func.hessian of the eval-mode loss
    f, theta = flat_loss_fn(model.eval(), data)
    torch.testing.assert_close(folded.dense(), torch.func.hessian(f)(theta), rtol=1e-9, atol=1e-11)
    assert not lossland.HessianOperator(model, data, train=True).folded_bn
    with pytest.raises(ValueError, match="fold_bn needs train=False"):
        lossland.HessianOperator(model, data, train=True, fold_bn=True)


class _PaddedConvBNNet(nn.Module):
    """Convs whose padding ``F.conv2d`` alone cannot apply: reflect padding, ``padding="same"``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect")
        self.bn = nn.BatchNorm2d(3)
        self.conv2 = nn.Conv2d(3, 2, 3, padding="same", bias=False)
        self.bn2 = nn.BatchNorm2d(2)
        self.out = nn.Linear(2 * 16, 3)

    def forward(self, x):
        x = torch.tanh(self.bn(self.conv(x)))
        return self.out(torch.tanh(self.bn2(self.conv2(x))).flatten(1))


def test_batchnorm_folding_keeps_the_layers_padding():
    torch.manual_seed(0)
    model = _PaddedConvBNNet().double()
    with torch.no_grad():
        for m in (model.bn, model.bn2):
            m.running_mean.normal_()
            m.running_var.uniform_(0.3, 3.0)
    data = (torch.randn(12, 2, 4, 4, dtype=torch.float64), torch.randint(0, 3, (12,)))
    folded = lossland.HessianOperator(model, data)
    assert folded.folded_bn
    torch.testing.assert_close(folded.dense(), lossland.HessianOperator(model, data, fold_bn=False).dense(),
                               rtol=1e-9, atol=1e-11)


def test_both_batchnorm_folds_find_the_same_pairs():
    """The differentiable fold (curvature) and the folded copy (landscape) share one rule."""
    from lossland.fold import FoldedCopy, _FoldedPair, fold_batchnorm

    for model in (_ConvBNNet().eval(), _PaddedConvBNNet().eval()):
        names = {id(m): n for n, m in model.named_modules()}
        gm = fold_batchnorm(model)
        pairs = [(names[id(m.layer)], names[id(m.bn)]) for m in gm.modules() if isinstance(m, _FoldedPair)]
        assert pairs == FoldedCopy(model).pairs
        assert pairs == ([("conv", "bn"), ("conv2", "bn2"), ("fc", "bn3")] if isinstance(model, _ConvBNNet)
                         else [("conv", "bn"), ("conv2", "bn2")])


def test_products_layout_follows_the_measured_rule_and_gives_the_same_hessian():
    """A contiguous conv net with BatchNorm (folded) gets channels-last inputs on the CPU,
    one without keeps contiguous ones; a channels-last model always gets them. Every
    layout's products are the Hessian of the same loss."""
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(3 * 4, 3)).double()
    data = (torch.randn(20, 2, 4, 4, dtype=torch.float64), torch.randint(0, 3, (20,)))
    channels_last = copy.deepcopy(plain).to(memory_format=torch.channels_last)
    bn = _ConvBNNet().double()
    bn_data = (torch.randn(20, 2, 4, 4, dtype=torch.float64), torch.randint(0, 3, (20,)))
    for model, twin, d, expect in ((plain, plain, data, False), (channels_last, plain, data, True),
                                   (bn, bn, bn_data, True)):
        op = lossland.HessianOperator(model, d)
        assert op.batches[0][0].is_contiguous(memory_format=torch.channels_last) is expect
        f, theta = flat_loss_fn(twin.eval(), d)  # the contiguous twin: same weights
        torch.testing.assert_close(op.dense(), torch.func.hessian(f)(theta), rtol=1e-9, atol=1e-11)
    assert plain[0].weight.is_contiguous()
