"""lossland.deep_linear (zhang2018 section IV) against Monte Carlo, against constructions that
satisfy eq. 34's assumptions exactly, and against the conservation law of gradient flow."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossland import deep_linear as dl
from lossland.ensemble import Ensemble

DT = torch.float64


def test_generalization_error_is_exact_by_monte_carlo():
    d, k, sigma = 5, 200_000, 0.4
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(d, generator=g, dtype=DT)
    students = torch.randn(3, d, generator=g, dtype=DT)
    exact = dl.generalization_error(students, teacher, sigma ** 2)
    assert exact.shape == (3,)
    x = torch.randn(k, d, generator=g, dtype=DT)
    eps = sigma * torch.randn(k, generator=g, dtype=DT)
    for i in range(3):
        err = (x @ teacher + eps - x @ students[i]) ** 2
        se = float(err.std()) / math.sqrt(k)
        assert abs(float(err.mean()) - float(exact[i])) < 4 * se, (float(err.mean()), float(exact[i]), se)
        # and the closed form itself: ‖W − w̄‖² + σ²
        assert float(exact[i]) == pytest.approx(float(((students[i] - teacher) ** 2).sum()) + sigma ** 2, rel=1e-14)
    # one student as a (D,) vector
    assert float(dl.generalization_error(students[0], teacher, sigma ** 2)[0]) == pytest.approx(float(exact[0]))


def _row_space(x: torch.Tensor) -> np.ndarray:
    """Projector onto the span of the training inputs (rows of x), from numpy's SVD."""
    _, s, vt = np.linalg.svd(x.numpy(), full_matrices=False)
    v = vt[s > 1e-10 * s.max()].T
    return v @ v.T


def test_interpolant_fits_exactly_and_lies_in_the_row_space():
    data = dl.teacher_data(9, 4, noise_std=0.3, seed=2)
    w = dl.interpolant(data.x, data.y)
    np.testing.assert_allclose((data.x @ w).numpy(), data.y.numpy(), rtol=0, atol=1e-12)
    proj = _row_space(data.x)
    np.testing.assert_allclose(proj @ w.numpy(), w.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(w.numpy(), np.linalg.pinv(data.x.numpy()) @ data.y.numpy(), rtol=1e-10, atol=1e-12)


def _eq34_case(d: int = 8, n: int = 3, members: int = 4, seed: int = 3):
    """Training data (N < D), and students W = w* + v⊥ with w* = y X⁺ (zero training error) and
    v⊥ orthogonal both to the row space of X and to the teacher's orthogonal part w̄⊥."""
    data = dl.teacher_data(d, n, noise_std=0.2, seed=seed)
    proj = _row_space(data.x)
    orth = np.eye(d) - proj
    teacher = data.teacher.numpy()
    t_perp = orth @ teacher
    w_star = np.linalg.pinv(data.x.numpy()) @ data.y.numpy()
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((members, d)) * np.linspace(0.1, 3, members)[:, None]
    v_perp = v @ orth
    v_perp -= np.outer(v_perp @ t_perp / (t_perp @ t_perp), t_perp)
    return data, proj, t_perp, w_star, v_perp


def test_eq34_is_exact_when_its_assumptions_hold():
    data, proj, t_perp, w_star, v_perp = _eq34_case()
    students = torch.from_numpy(w_star[None] + v_perp)
    np.testing.assert_allclose(v_perp @ t_perp, 0, atol=1e-12)
    np.testing.assert_allclose(v_perp @ proj, 0, atol=1e-12)
    # zero training error
    np.testing.assert_allclose((students @ data.x.T).numpy(), np.tile(data.y.numpy(), (4, 1)), atol=1e-10)
    truth = dl.generalization_error(students, data.teacher, data.noise_variance)
    predicted = dl.predicted_generalization_error(students, data)
    np.testing.assert_allclose(predicted.numpy(), truth.numpy(), rtol=0, atol=1e-10)
    # slope 1 in ‖W‖²: the students differ only in ‖v⊥‖²
    norms = (students ** 2).sum(1)
    np.testing.assert_allclose((truth - norms).numpy(), float(truth[0] - norms[0]), atol=1e-10)
    # the intercept written out: ‖w* − w̄∥‖² − ‖w*‖² + ‖w̄⊥‖² + σ²
    teacher = data.teacher.numpy()
    c = ((w_star - proj @ teacher) ** 2).sum() - (w_star ** 2).sum() + (t_perp ** 2).sum() + data.noise_variance
    assert dl.prediction_intercept(data) == pytest.approx(c, rel=1e-10)


def test_eq34_leaves_out_only_the_cross_term():
    # a student with an orthogonal part along the teacher's: E_g − prediction = −2 W⊥·w̄⊥
    data, _, t_perp, w_star, v_perp = _eq34_case()
    w = w_star + v_perp[0] + 0.7 * t_perp
    student = torch.from_numpy(w)
    gap = dl.generalization_error(student, data.teacher, data.noise_variance) - \
        dl.predicted_generalization_error(student, data)
    w_perp = v_perp[0] + 0.7 * t_perp
    assert float(gap[0]) == pytest.approx(-2 * float(w_perp @ t_perp), rel=1e-9)
    assert abs(float(gap[0])) > 0.1


def test_eq34_expected_uses_d_minus_n_for_the_teachers_orthogonal_part():
    data, _, t_perp, w_star, v_perp = _eq34_case(d=10, n=4)
    students = torch.from_numpy(w_star[None] + v_perp)
    realised = dl.predicted_generalization_error(students, data, expected=False)
    expected = dl.predicted_generalization_error(students, data, expected=True)
    np.testing.assert_allclose((realised - expected).numpy(), (t_perp ** 2).sum() - (10 - 4), atol=1e-10)
    assert dl.prediction_intercept(data) - dl.prediction_intercept(data, expected=True) == pytest.approx(
        (t_perp ** 2).sum() - 6, abs=1e-10)


# --------------------------------------------------------------------------- the invariant


def test_one_gd_step_changes_the_invariant_by_lr_squared_terms_only():
    # W1' = W1 − η G1, W2' = W2 − η G2: the O(η) terms of W1W1ᵀ − W2ᵀW2 cancel for the product
    # loss, leaving η² (G1 G1ᵀ − G2ᵀ G2) exactly
    h, d = 4, 6
    data = dl.teacher_data(d, 5, noise_std=0.1, seed=1)
    flat = dl.student_init(1, d, h, torch.tensor([0.8]), seed=4)
    ens = Ensemble([(h, d, False), (1, h, False)], "linear", flat.clone())
    (w1, _), (w2, _) = ens.layers()
    before = dl.invariant(w1[0], w2[0]).clone()
    _, grad = ens.loss_and_grad(data.x, data.y, "mse")
    (g1, _), (g2, _) = ens.layers(grad)
    lr = 0.3
    expected = before + lr ** 2 * (g1[0] @ g1[0].T - g2[0].T @ g2[0])
    ens.flat.sub_(grad, alpha=lr)
    (w1, _), (w2, _) = ens.layers()
    torch.testing.assert_close(dl.invariant(w1[0], w2[0]), expected, rtol=1e-12, atol=1e-13)
    assert float((expected - before).norm()) > 1e-6
    # batched over members
    both = dl.invariant(torch.stack([w1[0], w1[0]]), torch.stack([w2[0], w2[0]]))
    assert both.shape == (2, h, h)


def _drift_problem():
    d, n, h = 20, 10, 5
    data = dl.teacher_data(d, n, noise_std=0.1, seed=7)
    flat = dl.student_init(1, d, h, torch.tensor([0.5]), seed=8)
    return data, flat, (h, d)


def test_gd_invariant_drift_shrinks_with_the_learning_rate():
    data, flat, shape = _drift_problem()
    time = 5.0
    drifts = {}
    for lr in (0.02, 0.01):
        table = dl.invariant_drift(flat, shape, data, lr=lr, steps=round(time / lr), records=10)
        assert table["time"].iloc[-1] == pytest.approx(time)
        assert table["drift"].iloc[0] == 0.0
        assert table["loss"].iloc[-1] < table["loss"].iloc[0]          # it trains
        drifts[lr] = float(table["relative_drift"].iloc[-1])
    # GD departs from gradient flow at O(lr) over a fixed time: halving lr about halves the drift
    assert drifts[0.02] / drifts[0.01] >= 1.5, drifts
    assert drifts[0.01] < 0.05, drifts
    assert drifts[0.01] > 0, drifts


def test_sgd_drifts_more_than_gd_at_the_same_lr():
    data, flat, shape = _drift_problem()
    lr, steps = 0.01, 500
    gd = dl.invariant_drift(flat, shape, data, lr=lr, steps=steps, records=5)
    sgd = dl.invariant_drift(flat, shape, data, lr=lr, steps=steps, records=5, batch_size=2, seed=1)
    # SGD also cancels the O(lr) terms at each step, but its minibatch gradients are larger, and
    # so are their O(lr²) terms (here about 5 times GD's drift)
    assert float(sgd["relative_drift"].iloc[-1]) > 2 * float(gd["relative_drift"].iloc[-1])
    # the flat given is not modified
    torch.testing.assert_close(flat, dl.student_init(1, 20, 5, torch.tensor([0.5]), seed=8), rtol=0, atol=0)


# --------------------------------------------------------------------------- initialisation


def test_student_init_balanced_norms():
    m, d, h = 4000, 20, 5
    scales = torch.linspace(0.2, 2.0, m, dtype=DT)
    flat = dl.student_init(m, d, h, scales, seed=0)
    assert flat.shape == (m, h * d + h)
    w1, w2 = flat[:, :h * d], flat[:, h * d:]
    # ‖W1‖_F²/s² ~ χ²_{HD}/D: mean H, variance 2H/D; ‖W2‖²/s² ~ χ²_H: mean H, variance 2H
    r1 = (w1 ** 2).sum(1) / scales ** 2
    r2 = (w2 ** 2).sum(1) / scales ** 2
    assert abs(float(r1.mean()) - h) < 5 * math.sqrt(2 * h / d / m)
    assert abs(float(r2.mean()) - h) < 5 * math.sqrt(2 * h / m)
    assert float(r1.var()) == pytest.approx(2 * h / d, rel=0.2)
    assert float(r2.var()) == pytest.approx(2 * h, rel=0.2)


def test_student_init_imbalance_rescales_the_balanced_draw():
    m, d, h = 6, 7, 3
    scales = torch.tensor([0.5, 1, 1, 2, 3, 0.1], dtype=DT)
    a = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0, 10.0], dtype=DT)
    balanced = dl.student_init(m, d, h, scales, seed=5)
    tilted = dl.student_init(m, d, h, scales, imbalance=a, seed=5)
    torch.testing.assert_close(tilted[:, :h * d], balanced[:, :h * d] * a[:, None], rtol=1e-14, atol=0)
    torch.testing.assert_close(tilted[:, h * d:], balanced[:, h * d:] / a[:, None], rtol=1e-14, atol=0)
    # the same function: W2 W1 unchanged by the imbalance
    shapes = [(h, d, False), (1, h, False)]
    torch.testing.assert_close(Ensemble(shapes, "linear", tilted).weight_products(),
                               Ensemble(shapes, "linear", balanced).weight_products(), rtol=1e-12, atol=1e-14)
    # and the invariant is what the imbalance makes it: W1W1ᵀ scales by a², W2ᵀW2 by 1/a²
    (w1, _), (w2, _) = Ensemble(shapes, "linear", balanced).layers()
    (t1, _), (t2, _) = Ensemble(shapes, "linear", tilted).layers()
    expected = (a ** 2)[:, None, None] * (w1 @ w1.transpose(1, 2)) - (a ** -2)[:, None, None] * (w2.transpose(1, 2) @ w2)
    torch.testing.assert_close(dl.invariant(t1, t2), expected, rtol=1e-12, atol=1e-13)


def test_student_model_computes_w2_w1_x_with_the_squared_loss():
    h, d = 3, 4
    model = dl.student_model(d, h)
    x = torch.randn(6, d, dtype=DT)
    y = torch.randn(6, dtype=DT)
    with torch.no_grad():
        w1, w2 = model[0].weight, model[1].weight
        out = model(x)
        torch.testing.assert_close(out[:, 0], (x @ (w2 @ w1).T)[:, 0])
        value = dl.squared_loss(out, y)
    assert float(value) == pytest.approx(0.5 * float(((out[:, 0] - y) ** 2).mean()), rel=1e-14)
    ens = Ensemble.from_models([model])
    assert float(ens.losses(x, y, "mse")[0]) == pytest.approx(float(value), rel=1e-12)
