"""Diagonal blocks of the Hessian: ``H_BB`` for a subset ``B`` of the parameters.

A block's top eigenvalue bounds the whole Hessian's from below (Cauchy interlacing:
``λ_max(H) ≥ λ_max(H_BB)`` for every principal submatrix) and the trace is the sum of
the blocks' traces; a reparametrisation that scales parameter groups (Dinh et al. 2017)
scales their blocks by known powers, which turns both into predictions.
"""

from __future__ import annotations

from typing import Iterable

import torch

from .lanczos import lanczos_eigenvalues
from .operator import HessianOperator, _default_probe_batch
from .trace import TraceEstimate, deflated_hutchinson, hutchinson

__all__ = ["HessianBlock", "parameter_index"]


def parameter_index(op: HessianOperator, names: Iterable[str]) -> torch.Tensor:
    """Positions in ``op``'s flat parameter vector of the parameters ``names``."""
    wanted = set(names)
    unknown = wanted - set(op.names)
    if unknown:
        raise KeyError(f"not trainable parameters of the model: {', '.join(sorted(unknown))}")
    parts, start = [], 0
    for name, p in zip(op.names, op.params):
        if name in wanted:
            parts.append(torch.arange(start, start + p.numel()))
        start += p.numel()
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


class HessianBlock:
    """The block ``H_BB`` of ``op`` for the flat positions ``index`` (see :func:`parameter_index`),
    as an operator on vectors of ``len(index)`` entries."""

    def __init__(self, op: HessianOperator, index: torch.Tensor) -> None:
        if len(index) == 0:
            raise ValueError("a Hessian block needs at least one parameter")
        self.op = op
        self.index = index.to(op.device)
        self.dim = int(len(index))

    def matmat(self, vs: torch.Tensor) -> torch.Tensor:
        full = torch.zeros(vs.shape[0], self.op.dim, dtype=self.op.dtype, device=self.op.device)
        full[:, self.index] = vs.to(full)
        return self.op.matmat(full)[:, self.index]

    def eigenvalues(self, k: int = 1, which: str = "largest", *, tol: float = 1e-4, max_iter: int = 200,
                    seed: int = 0) -> torch.Tensor:
        return lanczos_eigenvalues(self.matmat, self.dim, k, which, tol=tol, max_iter=min(max_iter, self.dim),
                                   seed=seed, dtype=self.op.dtype, device=self.op.device)

    def trace(self, n_probes: int = 20, method: str = "deflated", *, seed: int = 0,
              probe_batch: int | None = None) -> TraceEstimate:
        kw = {"seed": seed, "probe_batch": probe_batch or _default_probe_batch(self.op), "dtype": self.op.dtype,
              "device": self.op.device}
        if method == "exact" or self.dim <= n_probes:
            h = self.matmat(torch.eye(self.dim, dtype=self.op.dtype, device=self.op.device))
            return TraceEstimate(float(torch.diagonal(h).double().sum()), 0.0, 0, "exact", self.dim)
        if method == "deflated":
            return deflated_hutchinson(self.matmat, self.dim, n_probes, **kw)
        if method == "hutchinson":
            return hutchinson(self.matmat, self.dim, n_probes, **kw)
        raise ValueError(f"block trace method must be deflated, hutchinson or exact, got {method!r}")
