"""Lanczos on a generic symmetric mat-vec: the iteration with full
reorthogonalisation that the eigenvalue, trace and density estimators share, and
the extreme eigenvalues it gives.

Every routine of :mod:`lossland.curvature` on a mat-vec takes ``matmat(V) -> H V``
for a symmetric operator ``H`` of size ``dim``, where ``V`` holds vectors as
**rows** (shape ``m × dim``), so that several products can be computed in one
batched call. Vectors live in the operator's ``dtype``/``device``; the small
tridiagonal problems are solved in float64 on the CPU. Random draws come from a
private generator seeded with ``seed`` (the global RNG is left alone), drawn on
the CPU so that results do not depend on the device.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

MatMat = Callable[[torch.Tensor], torch.Tensor]

__all__ = ["lanczos_eigenvalues", "rademacher"]


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
    ``return_info=True`` also a dict with ``iterations`` and ``converged``). A product that
    is not finite (weights of a diverged run) stops the iteration: the values are NaN.
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
        t = _tridiag(alpha, beta)
        if not np.isfinite(t).all():  # a product was NaN or infinite (e.g. diverged weights)
            prev = np.full(k, np.nan)
            break
        sel = _select(np.linalg.eigvalsh(t), k, which)
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
