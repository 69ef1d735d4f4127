"""Matrix-free symmetric linear algebra on a generic mat-vec: Lanczos
eigenvalues, stochastic Lanczos quadrature (SLQ) and stochastic trace
estimation (Hutchinson, Hutch++, Krylov-deflated Hutchinson).

Every routine takes ``matmat(V) -> H V`` for a symmetric operator ``H`` of size
``dim``, where ``V`` holds vectors as **rows** (shape ``m × dim``), so that
several products can be computed in one batched call. Vectors live in the
operator's ``dtype``/``device``; the small tridiagonal problems are solved in
float64 on the CPU. Random draws come from a private generator seeded with
``seed`` (the global RNG is left alone), drawn on the CPU so that results do not
depend on the device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

MatMat = Callable[[torch.Tensor], torch.Tensor]

__all__ = [
    "lanczos_eigenvalues", "slq", "SLQResult", "hutchinson", "hutchpp", "deflated_hutchinson",
    "TraceEstimate",
    "rademacher", "gaussian_density",
]


def rademacher(m: int, dim: int, generator: torch.Generator, dtype: torch.dtype,
               device: torch.device | str) -> torch.Tensor:
    """An ``m × dim`` matrix of independent ±1 entries."""
    r = torch.randint(0, 2, (m, dim), generator=generator, dtype=torch.int8)
    return (r * 2 - 1).to(device=device, dtype=dtype)


def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def _orthogonalise(w: torch.Tensor, basis: torch.Tensor, passes: int = 2) -> torch.Tensor:
    """Remove from the rows of ``w`` (m × dim) their components along ``basis`` (j × m × dim).

    Classical Gram-Schmidt, repeated only where a pass removed more than
    1 − 1/√2 of a row's norm ("twice is enough", Kahan-Parlett), up to ``passes``.
    """
    flat = basis[:, 0] if basis.shape[1] == 1 else None  # one vector: matrix-vector products
    for i in range(passes):
        if flat is not None:
            new = w - ((flat @ w[0]) @ flat)[None]
        else:
            coef = torch.einsum("jmd,md->jm", basis, w)
            new = w - torch.einsum("jm,jmd->md", coef, basis)
        if i + 1 < passes and bool((new.norm(dim=1) >= w.norm(dim=1) / math.sqrt(2)).all()):
            return new
        w = new
    return w


def _tridiag(alpha: list[float], beta: list[float]) -> np.ndarray:
    n = len(alpha)
    t = np.diag(np.asarray(alpha, dtype=np.float64))
    if n > 1:
        off = np.asarray(beta[: n - 1], dtype=np.float64)
        t += np.diag(off, 1) + np.diag(off, -1)
    return t


# --------------------------------------------------------------------------- Lanczos eigenvalues


def _lanczos(matmat: MatMat, dim: int, steps: int, g: torch.Generator, dtype: torch.dtype,
             device: torch.device | str):
    """Lanczos with full reorthogonalisation from a random Gaussian start vector.

    Yields ``(j, alpha, beta, basis)`` after the product of step ``j``:
    ``alpha`` holds the ``j + 1`` diagonal entries of the tridiagonal matrix
    ``T``, ``beta`` its ``j`` off-diagonal ones, ``basis[: j + 1]`` the
    orthonormal Lanczos vectors (rows), so that ``basisᵀ H basis = T``. On an
    invariant subspace (breakdown) it goes on from a fresh random vector
    orthogonal to the basis with a zero off-diagonal entry (``T`` then has
    blocks), so repeated eigenvalues appear with their multiplicity and the
    identity above still holds. The caller stops by leaving the loop.
    """
    steps = min(int(steps), dim)
    q = torch.randn(1, dim, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
    q = q / q.norm()
    basis = torch.empty(min(steps, 32), dim, dtype=dtype, device=device)  # grows by doubling
    alpha: list[float] = []
    beta: list[float] = []
    eps = torch.finfo(dtype).eps
    scale = 0.0
    for j in range(steps):
        if j == basis.shape[0]:
            basis = torch.cat([basis, torch.empty(min(steps, 2 * j) - j, dim, dtype=dtype, device=device)])
        basis[j] = q[0]
        w = matmat(q)
        a = float((w * q).sum())
        alpha.append(a)
        scale = max(scale, abs(a) + (beta[-1] if beta else 0.0))
        w = w - a * q
        if j > 0:
            w = w - beta[j - 1] * basis[j - 1]
        w = _orthogonalise(w, basis[: j + 1, None])
        b = float(w.norm())
        yield j, alpha, beta, basis[: j + 1]
        if j + 1 == steps:
            return
        if b <= 100 * eps * max(scale, 1e-30):
            b = 0.0
            w = torch.randn(1, dim, generator=g, dtype=torch.float64).to(device=device, dtype=dtype)
            w = _orthogonalise(w, basis[: j + 1, None])
            q = w / w.norm()
        else:
            q = w / b
        beta.append(b)


def lanczos_eigenvalues(matmat: MatMat, dim: int, k: int = 1, which: str = "largest", *,
                        tol: float = 1e-4, max_iter: int = 200, seed: int = 0,
                        dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
                        return_info: bool = False):
    """The ``k`` extreme eigenvalues of a symmetric operator by Lanczos with full
    reorthogonalisation.

    ``which``: ``"largest"`` (algebraically largest, descending), ``"smallest"``
    (algebraically smallest, i.e. most negative first, ascending) or
    ``"magnitude"`` (largest ``|λ|``, descending by magnitude).

    Stops when each of the ``k`` Ritz values of interest changed by at most
    ``tol × |λ|`` since the previous step, when ``max_iter`` steps were taken, or
    when the Krylov space is the whole space (then the values are exact). On an
    invariant subspace (breakdown) the iteration restarts from a fresh random
    vector orthogonal to the basis, so repeated eigenvalues are found with their
    multiplicity. Returns a float64 tensor of ``k`` values (with
    ``return_info=True`` also a dict with ``iterations`` and ``converged``).
    """
    if which not in ("largest", "smallest", "magnitude"):
        raise ValueError(f"which must be 'largest', 'smallest' or 'magnitude', got {which!r}")
    if not 1 <= k <= dim:
        raise ValueError(f"k must be in 1..{dim}, got {k}")
    max_iter = max(min(int(max_iter), dim), k)
    prev: np.ndarray | None = None
    converged = False
    j = 0
    for j, alpha, beta, _ in _lanczos(matmat, dim, max_iter, _generator(seed), dtype, device):
        sel = _select(np.linalg.eigvalsh(_tridiag(alpha, beta)), k, which)
        if sel is not None:
            if j + 1 == dim:
                converged, prev = True, sel
                break
            if prev is not None and np.all(np.abs(sel - prev) <= tol * np.abs(sel)):
                converged, prev = True, sel
                break
        prev = sel
    if prev is None:
        prev = _select(np.linalg.eigvalsh(_tridiag(alpha, beta)), k, which)
    values = torch.as_tensor(prev, dtype=torch.float64)
    if return_info:
        return values, {"iterations": j + 1, "converged": converged}
    return values


def _select(ritz: np.ndarray, k: int, which: str) -> np.ndarray | None:
    if len(ritz) < k:
        return None
    if which == "largest":
        return np.sort(ritz)[::-1][:k].copy()
    if which == "smallest":
        return np.sort(ritz)[:k].copy()
    return ritz[np.argsort(-np.abs(ritz))][:k].copy()


# --------------------------------------------------------------------------- SLQ


def gaussian_density(nodes: np.ndarray, weights: np.ndarray, grid: np.ndarray, sigma: float) -> np.ndarray:
    """Σ w_i N(grid; node_i, sigma²), normalised to integrate to 1 over ``grid``
    (trapezoidal rule)."""
    nodes = np.asarray(nodes, dtype=np.float64).ravel()
    weights = np.asarray(weights, dtype=np.float64).ravel()
    grid = np.asarray(grid, dtype=np.float64)
    dens = np.zeros_like(grid)
    # chunk over nodes to keep memory bounded
    for s in range(0, len(nodes), 4096):
        d = (grid[:, None] - nodes[None, s:s + 4096]) / sigma
        dens += (np.exp(-0.5 * d * d) * weights[None, s:s + 4096]).sum(1)
    dens /= sigma * math.sqrt(2 * math.pi)
    area = np.trapezoid(dens, grid) if hasattr(np, "trapezoid") else np.trapz(dens, grid)
    if area > 0:
        dens /= area
    return dens


@dataclass
class SLQResult:
    """Gauss quadrature nodes and weights of stochastic Lanczos quadrature.

    ``nodes[i]`` and ``weights[i]`` belong to probe ``i`` (arrays of that
    probe's Lanczos length); each probe's weights sum to 1, and
    ``Σ_probes Σ_j w_j f(θ_j) / n_probes`` estimates ``tr f(H) / dim``.
    """

    nodes: list[np.ndarray]
    weights: list[np.ndarray]
    dim: int
    extra: dict = field(default_factory=dict)

    @property
    def n_probes(self) -> int:
        return len(self.nodes)

    def all_nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Every node and its weight divided by the number of probes (weights sum to 1)."""
        n = np.concatenate(self.nodes)
        w = np.concatenate(self.weights) / self.n_probes
        return n, w

    def expect(self, f: Callable[[np.ndarray], np.ndarray]) -> float:
        """Estimate of ``tr f(H) / dim``."""
        n, w = self.all_nodes()
        return float((w * f(n)).sum())

    def negative_fraction(self, threshold: float = 0.0) -> float:
        """Estimated fraction of eigenvalues below ``-threshold`` (``threshold ≥ 0``)."""
        return self.expect(lambda x: (x < -threshold).astype(np.float64))

    def mean(self) -> float:
        """Estimate of ``tr(H) / dim``."""
        return self.expect(lambda x: x)

    def density(self, grid: np.ndarray | int | None = None, sigma: float | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:
        """Gaussian-broadened spectral density on ``grid``.

        ``sigma`` defaults to 1 % of the node range; ``grid`` (an array, or a
        number of points, default 1000) defaults to the node range padded by
        5 σ. The density is normalised to integrate to 1 over the grid.
        """
        n, w = self.all_nodes()
        lo, hi = float(n.min()), float(n.max())
        if sigma is None:
            sigma = 0.01 * (hi - lo) if hi > lo else max(abs(hi), 1.0) * 1e-3
        if grid is None or isinstance(grid, (int, np.integer)):
            pts = 1000 if grid is None else int(grid)
            grid = np.linspace(lo - 5 * sigma, hi + 5 * sigma, pts)
        grid = np.asarray(grid, dtype=np.float64)
        return grid, gaussian_density(n, w, grid, sigma)


def slq(matmat: MatMat, dim: int, n_probes: int = 10, n_steps: int = 80, *, seed: int = 0,
        dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
        probe_batch: int | None = None) -> SLQResult:
    """Stochastic Lanczos quadrature: ``n_probes`` Lanczos runs of ``n_steps``
    steps (full reorthogonalisation) from normalised Rademacher vectors.

    Probes run side by side in groups of ``probe_batch`` (default: all), so
    each step costs one batched mat-vec. A probe that hits an invariant
    subspace stops there (its quadrature is then exact).
    """
    n_steps = max(1, min(int(n_steps), dim))
    probe_batch = int(probe_batch or n_probes)
    g = _generator(seed)
    nodes: list[np.ndarray] = []
    weights: list[np.ndarray] = []
    eps = torch.finfo(dtype).eps
    for start in range(0, n_probes, probe_batch):
        m = min(probe_batch, n_probes - start)
        q = rademacher(m, dim, g, dtype, device) / math.sqrt(dim)
        basis = torch.zeros(n_steps, m, dim, dtype=dtype, device=device)
        alphas = np.zeros((n_steps, m))
        betas = np.zeros((n_steps, m))
        length = np.full(m, n_steps)
        active = np.ones(m, dtype=bool)
        scale = np.zeros(m)
        for j in range(n_steps):
            basis[j] = q
            w = matmat(q)
            a = (w * q).sum(1)
            w = w - a[:, None] * q
            if j > 0:
                w = w - torch.as_tensor(betas[j - 1], dtype=dtype, device=device)[:, None] * basis[j - 1]
            w = _orthogonalise(w, basis[: j + 1])
            b = w.norm(dim=1)
            a_np = a.double().cpu().numpy()
            b_np = b.double().cpu().numpy()
            alphas[j] = np.where(active, a_np, 0.0)
            scale = np.maximum(scale, np.abs(alphas[j]) + (betas[j - 1] if j else 0.0))
            if j + 1 == n_steps:
                break
            broke = active & (b_np <= 100 * eps * np.maximum(scale, 1e-30))
            for i in np.nonzero(broke)[0]:
                length[i] = j + 1
            active &= ~broke
            b_np = np.where(active, b_np, 0.0)
            betas[j] = b_np
            safe = torch.as_tensor(np.where(active, b_np, 1.0), dtype=dtype, device=device)
            q = w / safe[:, None] * torch.as_tensor(active, dtype=dtype, device=device)[:, None]
        for i in range(m):
            n = int(length[i])
            t = _tridiag(list(alphas[:n, i]), list(betas[: n - 1, i]))
            theta, vecs = np.linalg.eigh(t)
            nodes.append(theta)
            weights.append(vecs[0] ** 2)
    return SLQResult(nodes, weights, dim)


# --------------------------------------------------------------------------- trace estimation


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
    ``min_probes``) until ``stderr ≤ tol·|estimate|`` or ``n_probes`` are used.
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
    removes). Pilot probes are multiplied before projection and their products
    kept, so each counts at every later size without another product (memory:
    two vectors per pilot probe).

    With ``tol``, probes are added ``max(min_probes, probe_batch)`` at a time
    until ``stderr ≤ tol·|estimate|`` or the budget is spent. Probes are
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
    k = min(10, k_max) if adaptive else (k_max if lanczos_steps is not None else min(k_max, 100))
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
        for _, alpha, beta, basis in lanczos:
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
