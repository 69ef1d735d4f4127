"""Stochastic Lanczos quadrature (SLQ): the spectral density of a symmetric mat-vec
(conventions as in :mod:`lossland.curvature.lanczos`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .lanczos import MatMat, _generator, _orthogonalise, _tridiag, rademacher

__all__ = ["SLQResult", "slq", "gaussian_density"]


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
            if not np.isfinite(t).all():  # a non-finite product (diverged weights): NaN estimates
                nodes.append(np.full(n, np.nan))
                weights.append(np.full(n, np.nan))
                continue
            theta, vecs = np.linalg.eigh(t)
            nodes.append(theta)
            weights.append(vecs[0] ** 2)
    return SLQResult(nodes, weights, dim)
