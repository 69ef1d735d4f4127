"""Stochastic trace estimators of a symmetric mat-vec: Hutchinson, Hutch++ and
Krylov-deflated Hutchinson (conventions as in :mod:`lossland.curvature.lanczos`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .lanczos import MatMat, _generator, _lanczos, _tridiag, rademacher

__all__ = ["TraceEstimate", "hutchinson", "hutchpp", "deflated_hutchinson"]

_FIRST_STEPS = 10  # the first Lanczos basis of the adaptive deflated estimator


@dataclass(frozen=True)
class TraceEstimate:
    """A stochastic trace estimate with its standard error.

    ``float(est)`` gives ``estimate``. ``stderr`` is the sample standard error of
    the stochastic part (Hutchinson: of the mean of the ``n_probes`` quadratic
    forms; Hutch++: of the residual Hutchinson term, 0 when the low-rank part is
    exact). ``n_matvecs`` counts operator products used.
    """

    estimate: float
    stderr: float
    n_probes: int
    method: str
    n_matvecs: int

    def __float__(self) -> float:
        return float(self.estimate)


def _chunks(n: int, size: int | None):
    size = int(size or n) or 1
    for s in range(0, n, size):
        yield s, min(size, n - s)


def _apply(matmat: MatMat, v: torch.Tensor, probe_batch: int | None) -> torch.Tensor:
    """``matmat`` over the rows of ``v``, ``probe_batch`` rows per call."""
    return torch.cat([matmat(v[a:a + m]) for a, m in _chunks(v.shape[0], probe_batch)])


def _stderr(samples: torch.Tensor) -> float:
    n = samples.numel()
    return float(samples.std(unbiased=True)) / math.sqrt(n) if n > 1 else float("nan")


def _within(samples: torch.Tensor, offset: float, tol: float | None, min_probes: int) -> bool:
    """The stopping rule of the trace estimators: ``stderr ≤ tol·|offset + mean|``."""
    return (tol is not None and samples.numel() >= max(min_probes, 2)
            and _stderr(samples) <= tol * abs(offset + float(samples.mean())))


def hutchinson(matmat: MatMat, dim: int, n_probes: int = 100, *, seed: int = 0,
               dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
               probe_batch: int | None = None, tol: float | None = None,
               min_probes: int = 8) -> TraceEstimate:
    """Hutchinson's estimator: the mean of ``zᵀHz`` over Rademacher ``z``.

    With ``tol``, probes are drawn ``probe_batch`` at a time (at least
    ``min_probes``) until ``stderr ≤ tol·|estimate|`` or ``n_probes`` are used;
    the stopped estimate is then slightly biased (see :func:`deflated_hutchinson`).
    """
    if n_probes < 1:
        raise ValueError("n_probes must be ≥ 1")
    if tol is not None and tol <= 0:
        raise ValueError("tol must be > 0")
    g = _generator(seed)
    step = int(probe_batch or (n_probes if tol is None else min_probes))
    s = torch.empty(0, dtype=torch.float64)
    while s.numel() < n_probes:
        z = rademacher(min(step, n_probes - s.numel()), dim, g, dtype, device)
        s = torch.cat([s, (matmat(z) * z).sum(1).double().cpu()])
        if _within(s, 0.0, tol, min_probes):
            break
    return TraceEstimate(float(s.mean()), _stderr(s), s.numel(), "hutchinson", s.numel())


def hutchpp(matmat: MatMat, dim: int, n_probes: int = 100, *, seed: int = 0,
            dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
            probe_batch: int | None = None) -> TraceEstimate:
    """Hutch++ (Meyer, Musco, Musco & Woodruff 2021) with ``n_probes`` mat-vecs in all.

    A third sketches the range (``Q = orth(H S)``), a third gives the exact
    trace on it, ``tr(Qᵀ H Q)``, and the last third estimates the trace of the
    deflated remainder ``(I−QQᵀ) H (I−QQᵀ)`` with Hutchinson.
    """
    if n_probes < 3:
        raise ValueError("hutch++ needs n_probes ≥ 3")
    g = _generator(seed)
    r = n_probes // 3
    n_g = n_probes - 2 * r
    s = rademacher(r, dim, g, dtype, device)
    gz = rademacher(n_g, dim, g, dtype, device)

    hs = _apply(matmat, s, probe_batch)
    q, _ = torch.linalg.qr(hs.double().T)  # dim × r, orthonormal columns
    q = q.T.to(dtype)  # r × dim rows
    hq = _apply(matmat, q, probe_batch)
    low = float((hq.double() * q.double()).sum())
    gz = gz - (gz.double() @ q.double().T @ q.double()).to(dtype)
    samples = (_apply(matmat, gz, probe_batch).double() * gz.double()).sum(1).cpu()
    return TraceEstimate(low + float(samples.mean()), _stderr(samples), n_probes, "hutch++", 2 * r + n_g)


def deflated_hutchinson(matmat: MatMat, dim: int, n_probes: int = 100, *, lanczos_steps: int | None = None,
                        tol: float | None = None, min_probes: int = 8, seed: int = 0,
                        dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                        probe_batch: int | None = None) -> TraceEstimate:
    """Krylov-deflated Hutchinson with at most ``n_probes`` mat-vecs in all.

    ``k`` Lanczos steps from a random start build an orthonormal basis ``Q``
    of a Krylov space; Lanczos reaches the extreme eigen-directions first,
    which carry most of a network Hessian's Frobenius norm and so most of
    Hutchinson's variance. The trace on that space is exact and free,
    ``tr(QᵀHQ) = tr(T) = Σ αⱼ``; the remaining products estimate
    ``tr((I−QQᵀ) H (I−QQᵀ))`` with Hutchinson on Rademacher vectors projected
    off ``Q``. The sum is unbiased (``Q`` does not depend on the probes);
    ``stderr`` is that of the residual term. It is the Hutch++ idea (Meyer et
    al. 2021) with a Krylov space in place of the one-shot sketch
    ``range(HS)``, which captures the outliers better and spends no products
    on ``tr(QᵀHQ)`` (cf. Chen & Hallman 2023, Krylov-aware trace estimation).

    ``k = lanczos_steps`` when given. Otherwise, without ``tol``,
    ``k = min(n_probes // 2, 100)``; with ``tol``, ``k`` starts at 10 and
    doubles (up to ``n_probes // 2``) while the residual probes that the
    pilot probes so far (``min_probes`` more at each size) say are still
    needed exceed ``2k`` (a bigger space then costs less than the variance it
    removes). At loose tolerances (a few %) the first 10 steps do not always
    pay: measured against the standard error of PyHessian's 34-probe
    Hutchinson on ``benchmarks/hessian.py``'s zoo (250 images, one seed each),
    18 products on NIN with BatchNorm and 26 on a plain CNN, but 42 on VGG-11
    and 64 on a ResNet-8 at initialisation, whose top eigenvalues hold less
    of the variance; a start from plain Hutchinson, tried, needed more
    products in all (48, 8, 52 and 34 on NIN, VGG, the CNN and the MLP).
    Pilot probes are multiplied before projection and their products
    kept, so each counts at every later size without another product (memory:
    two vectors per pilot probe).

    With ``tol``, probes are added ``max(min_probes, probe_batch)`` at a time
    until ``stderr ≤ tol·|estimate|`` or the budget is spent (such a stopped
    estimate is slightly biased, as its stopping time depends on the samples:
    0.1–0.3 % high on a test operator of known trace over thousands of seeds,
    where fixed budgets were unbiased). Probes are
    projected in blocks (one pass over ``Q`` per block) and multiplied
    ``probe_batch`` at a time. Memory: ``Q`` holds ``k × dim`` numbers.
    In the result ``n_probes`` counts the residual probes of the estimate,
    ``n_matvecs`` every product. When the Krylov space is the whole space the
    trace is exact.
    """
    if n_probes < 2:
        raise ValueError("deflated_hutchinson needs n_probes ≥ 2")
    if tol is not None and tol <= 0:
        raise ValueError("tol must be > 0")
    if lanczos_steps is not None and not 1 <= int(lanczos_steps) < n_probes:
        raise ValueError(f"lanczos_steps must be in 1..{n_probes - 1}, got {lanczos_steps}")
    adaptive = tol is not None and lanczos_steps is None
    k_max = int(lanczos_steps) if lanczos_steps is not None else max(1, n_probes // 2)
    k = min(_FIRST_STEPS, k_max) if adaptive else (k_max if lanczos_steps is not None else min(k_max, 100))
    g = _generator(seed)
    lanczos = _lanczos(matmat, dim, k_max, g, dtype, device)
    alpha: list[float] = []
    beta: list[float] = []
    basis = torch.empty(0, dim, dtype=dtype, device=device)

    def draw(m: int) -> torch.Tensor:
        # project m probes at once (one pass over the basis), multiply probe_batch at a time
        z = rademacher(m, dim, g, dtype, device)
        z = z - (z @ basis.T) @ basis
        return (_apply(matmat, z, probe_batch) * z).sum(1).double().cpu()

    # Pilot probes (adaptive k) are multiplied unprojected and kept with their
    # products, so that they serve every later basis without new products:
    # (Pz)ᵀH(Pz) = zᵀHz − 2 (Qᵀz)·(QᵀHz) + (Qᵀz)ᵀ T (Qᵀz), as QᵀHQ = T.
    pilot_z = torch.empty(0, dim, dtype=dtype, device=device)
    pilot_hz = torch.empty(0, dim, dtype=dtype, device=device)

    def pilot_forms() -> torch.Tensor:
        t = torch.as_tensor(_tridiag(alpha, beta[: len(alpha) - 1]))
        a = (pilot_z @ basis.T).double().cpu()
        b = (pilot_hz @ basis.T).double().cpu()
        return ((pilot_z * pilot_hz).sum(1).double().cpu() - 2 * (a * b).sum(1) + ((a @ t) * a).sum(1))

    while True:
        for _, alpha, beta, basis, _ in lanczos:
            if len(alpha) >= k:
                break
        if len(alpha) >= dim:  # the Krylov space is the whole space: tr(T) is the trace
            return TraceEstimate(float(sum(alpha)), 0.0, 0, "deflated", len(alpha) + pilot_z.shape[0])
        samples = pilot_forms() if pilot_z.shape[0] else torch.empty(0, dtype=torch.float64)
        if not adaptive or k >= k_max:
            break
        m = min(min_probes, n_probes - k - pilot_z.shape[0])
        z = rademacher(m, dim, g, dtype, device)
        pilot_z, pilot_hz = torch.cat([pilot_z, z]), torch.cat([pilot_hz, _apply(matmat, z, probe_batch)])
        samples = pilot_forms()
        est = float(sum(alpha)) + float(samples.mean())
        need = (float(samples.std(unbiased=True)) / (tol * abs(est) + 1e-300)) ** 2
        if need <= 2 * k or 2 * k + samples.numel() > n_probes:
            break
        k = min(2 * k, k_max)
    low = float(sum(alpha))
    budget = n_probes - len(alpha)
    step = max(min_probes, int(probe_batch or 1)) if tol is not None else 64
    while samples.numel() < budget and not _within(samples, low, tol, min_probes):
        samples = torch.cat([samples, draw(min(step, budget - samples.numel()))])
    p = samples.numel()
    return TraceEstimate(low + float(samples.mean()), _stderr(samples), p, "deflated", len(alpha) + p)
