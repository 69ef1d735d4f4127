"""lossland.curvature.entropy: zhang2018's spectral entropy on hand-made spectra and on Hessians
known in closed form (linear regression; the scalar chain y = w2·w1·x of zhang2018 section IV)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lossland import deep_linear
from lossland.curvature.entropy import clean_spectrum, exact_spectrum, spectral_entropy, spectrum_summary

SPECTRUM = [0.4, -0.1, 3.0, 0.2, -0.5, 0.5]   # unsorted on purpose


# --------------------------------------------------------------------------- cleaning and entropy


def test_cleaning_drops_everything_up_to_the_most_negative_magnitude():
    # most negative: −0.5, so only eigenvalues > 0.5 stay (0.5 itself is dropped)
    assert clean_spectrum(SPECTRUM).tolist() == [3.0]
    assert clean_spectrum([-0.5, 0.5, 0.50001, 2.0]).tolist() == [2.0, 0.50001]


def test_cleaning_without_negatives_keeps_the_positive_ones_in_descending_order():
    assert clean_spectrum([0.0, 1.0, 0.2, 4.0, 0.0]).tolist() == [4.0, 1.0, 0.2]


def test_cleaning_top_k_keeps_the_k_largest_positive():
    assert clean_spectrum(SPECTRUM, top=2).tolist() == [3.0, 0.5]
    assert clean_spectrum(SPECTRUM, top=1).tolist() == [3.0]
    # of the five largest, −0.1 is not positive
    assert clean_spectrum(SPECTRUM, top=5).tolist() == [3.0, 0.5, 0.4, 0.2]


def test_entropy_hand_computed():
    # S = −(1/2P) Σ log λ_kept, P = 6 eigenvalues by default
    assert spectral_entropy(SPECTRUM) == pytest.approx(-math.log(3.0) / 12, rel=1e-14)
    assert spectral_entropy(SPECTRUM, num_parameters=10) == pytest.approx(-math.log(3.0) / 20, rel=1e-14)
    # top=2: −(log 3 + log 0.5)/12 = −log 1.5 / 12
    assert spectral_entropy(SPECTRUM, top=2) == pytest.approx(-math.log(1.5) / 12, rel=1e-14)
    # no negatives: −(log 4 + log 1 + log 0.2)/(2·5) = −log 0.8 / 10 (> 0)
    s = spectral_entropy([0.0, 1.0, 0.2, 4.0, 0.0])
    assert s == pytest.approx(-math.log(0.8) / 10, rel=1e-14) and s > 0
    # larger curvature, lower entropy
    assert spectral_entropy([1.0, 2.0]) > spectral_entropy([1.0, 20.0])


@pytest.mark.parametrize("spectrum", [[-1.0, -2.0], [-1.0, 0.5, 1.0], [0.0, 0.0], []])
def test_entropy_is_nan_when_nothing_is_kept(spectrum):
    assert clean_spectrum(spectrum).numel() == 0
    assert math.isnan(spectral_entropy(spectrum))


def test_entropy_top_with_nothing_positive_is_nan():
    assert math.isnan(spectral_entropy([-1.0, 0.0, -3.0], top=2))


def test_spectrum_summary():
    s = spectrum_summary(SPECTRUM)
    assert s["neg_log_trace"] == pytest.approx(-math.log(3.5), rel=1e-14)   # Σ λ = 3.5
    assert s["negative_fraction"] == pytest.approx(2 / 6)
    assert s["kept"] == 1
    assert s["top_eigenvalue"] == 3.0 and s["min_eigenvalue"] == -0.5
    assert s["entropy"] == pytest.approx(-math.log(3.0) / 12, rel=1e-14)
    s = spectrum_summary(SPECTRUM, num_parameters=10, top=2)
    assert s["entropy"] == pytest.approx(-math.log(1.5) / 20, rel=1e-14) and s["kept"] == 2
    # no positive trace: no logarithm
    assert math.isnan(spectrum_summary([-1.0, 0.5])["neg_log_trace"])


# --------------------------------------------------------------------------- exact Hessians


def _regression(n: int = 12, d: int = 4, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(n, generator=g, dtype=torch.float64)
    return x, y


@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_exact_spectrum_of_linear_regression_is_that_of_xtx_over_n(weight_decay):
    x, y = _regression()
    model = nn.Linear(4, 1, bias=False).to(torch.float64)
    lam = exact_spectrum(model, (x, y), deep_linear.squared_loss, weight_decay=weight_decay)
    # ½ mean (xw − y)²: Hessian XᵀX/N, independent of w; L2 (wd/2)‖w‖² adds wd·I
    expected = np.linalg.eigvalsh(x.numpy().T @ x.numpy() / len(y)) + weight_decay
    assert lam.dtype == torch.float64
    np.testing.assert_allclose(lam.numpy(), expected, rtol=1e-10, atol=1e-12)
    assert (lam[1:] >= lam[:-1]).all()                         # ascending


def test_exact_spectrum_of_linear_regression_with_bias():
    x, y = _regression(n=15, d=3, seed=1)
    model = nn.Linear(3, 1).to(torch.float64)
    lam = exact_spectrum(model, (x, y), deep_linear.squared_loss)
    a = np.concatenate([x.numpy(), np.ones((15, 1))], 1)        # [X 1]: the bias is a constant input
    np.testing.assert_allclose(lam.numpy(), np.linalg.eigvalsh(a.T @ a / 15), rtol=1e-10, atol=1e-12)


def _chain(w1: float, w2: float) -> nn.Module:
    model = deep_linear.student_model(1, 1)
    with torch.no_grad():
        model[0].weight.fill_(w1)
        model[1].weight.fill_(w2)
    return model


X1 = torch.ones(1, 1, dtype=torch.float64)


def _target(c: float) -> torch.Tensor:
    return torch.tensor([c], dtype=torch.float64)


def test_scalar_chain_hessian_on_the_solution_manifold():
    # ½(c − w2 w1)² at w1 w2 = c: Hessian [[w2², w1w2], [w1w2, w1²]], eigenvalues 0 and w1² + w2²
    w1, w2, c = 2.0, 1.5, 3.0
    lam = exact_spectrum(_chain(w1, w2), (X1, _target(c)), deep_linear.squared_loss)
    assert lam.numel() == 2
    assert float(lam[0]) == pytest.approx(0.0, abs=1e-12)
    assert float(lam[1]) == pytest.approx(w1 ** 2 + w2 ** 2, rel=1e-12)          # 6.25
    # P = 2 parameters, one nonzero eigenvalue kept: S = −(1/4) log(w1² + w2²)
    assert spectral_entropy(lam, top=1) == pytest.approx(-0.25 * math.log(w1 ** 2 + w2 ** 2), rel=1e-12)


def test_scalar_chain_hessian_off_the_manifold_has_the_residual_term():
    # off the manifold the mixed derivative is 2 w1 w2 − c (the Gauss-Newton part w1 w2 plus the
    # residual w1 w2 − c): eigenvalues of [[w2², 2w1w2 − c], [2w1w2 − c, w1²]]
    w1, w2, c = 0.7, -1.2, 2.0
    lam = exact_spectrum(_chain(w1, w2), (X1, _target(c)), deep_linear.squared_loss)
    a, b, m = w2 ** 2, w1 ** 2, 2 * w1 * w2 - c
    half = math.sqrt(((a - b) / 2) ** 2 + m ** 2)
    np.testing.assert_allclose(lam.numpy(), [(a + b) / 2 - half, (a + b) / 2 + half], rtol=1e-12)
    assert float(lam[0]) < 0                                   # a saddle direction


def test_scalar_chain_entropy_is_not_invariant_along_the_manifold():
    # zhang2018 section IV: (1, 3) and (√3, √3) compute the same function y = 3x, but the nonzero
    # eigenvalue w1² + w2² is 10 at one and 6 at the other, so the entropy differs
    c = 3.0
    points = [(1.0, 3.0), (math.sqrt(3.0), math.sqrt(3.0))]
    xs = torch.linspace(-2, 2, 5, dtype=torch.float64)[:, None]
    outs, entropies = [], []
    for w1, w2 in points:
        model = _chain(w1, w2)
        outs.append(model(xs).detach())
        lam = exact_spectrum(model, (X1, _target(c)), deep_linear.squared_loss)
        assert float(lam[-1]) == pytest.approx(w1 ** 2 + w2 ** 2, rel=1e-12)
        entropies.append(spectral_entropy(lam, top=1))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=1e-12)
    assert entropies[0] == pytest.approx(-0.25 * math.log(10.0), rel=1e-12)
    assert entropies[1] == pytest.approx(-0.25 * math.log(6.0), rel=1e-12)
    assert entropies[1] - entropies[0] == pytest.approx(0.25 * math.log(10 / 6), rel=1e-10)
    # the balanced point w1 = w2 has the lowest curvature, hence the highest entropy, on the manifold
    assert entropies[1] > entropies[0]
