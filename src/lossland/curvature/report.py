"""One Hessian report of a model on data: the numbers the workflow records at a
checkpoint (extreme eigenvalues, trace, spectral density, negative-eigenvalue
fraction, ε-sharpness) as long-form tables.

The maths is in the other modules of :mod:`lossland.curvature`; this module
only fixes what is computed with which settings, so that a notebook user gets
the same tables as the workflow::

    tables = lossland.curvature.hessian_report(model, (x, y), lossland.curvature.SpectrumSettings())
    tables["summary"], tables["eigenvalues"], tables["density"]
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np
import pandas as pd
from torch import nn

from ..evaluation import Data, LossFn, evaluate
from .operator import HessianOperator
from .sharpness import epsilon_sharpness


@dataclass(frozen=True)
class SpectrumSettings:
    """What a Hessian report computes (see :func:`hessian_report`)."""

    k: int = 1                        # extreme eigenvalues at each end of the spectrum
    tol: float = 1e-3                 # Lanczos: relative change of the Ritz values to stop at
    max_iter: int = 50                # Lanczos: at most this many products per end
    trace_probes: int = 20            # products of the trace estimate (the budget when trace_tol is set)
    trace_method: str = "deflated"    # deflated | hutchinson | hutch++ | exact
    trace_tol: float | None = None    # stop once stderr ≤ trace_tol·|trace| (deflated, hutchinson)
    density_probes: int = 2           # SLQ: Lanczos runs
    density_steps: int = 20           # SLQ: steps per run
    density_grid: int = 400           # points of the density curve
    sharpness_epsilon: float | None = 1e-3   # None: skip ε-sharpness
    sharpness_steps: int = 5
    negative_threshold: float = 0.01  # count eigenvalues below −threshold·(top eigenvalue)
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> "SpectrumSettings":
        return settings_from_config(cls, cfg)


def settings_from_config(cls, cfg: Mapping[str, Any] | None):
    """``cls(**cfg)`` for a settings dataclass, refusing unknown keys with the allowed ones."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(cfg or {}) - names)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}")
    return cls(**dict(cfg or {}))


def hessian_report(model: nn.Module, data: Data, settings: SpectrumSettings = SpectrumSettings(),
                   loss_fn: LossFn | None = None, *, batch_size: int | None = None) -> dict[str, pd.DataFrame]:
    """Hessian of the mean loss of ``model`` (eval mode) over ``data``, summarised.

    Returns three DataFrames:

    * ``eigenvalues``: ``index, which, eigenvalue`` — the ``k`` largest
      (``which="largest"``, index 0 = the top eigenvalue) and the ``k`` smallest
      (``"smallest"``, index 0 = the most negative) by Lanczos;
    * ``density``: ``eigenvalue, density`` — SLQ density with Gaussian broadening;
    * ``summary``: one row — ``loss, accuracy, trace, trace_stderr, method,
      top_eigenvalue, bottom_eigenvalue, negative_fraction`` (SLQ estimate of the
      fraction of eigenvalues below ``−negative_threshold × top eigenvalue``: the
      Ritz values of a short Lanczos run scatter around zero where the bulk of
      the spectrum lies, so a strict ``< 0`` count measures that noise),
      ``slq_trace, epsilon_sharpness`` (Keskar, percent; NaN when skipped),
      ``n_params, n_samples, seconds``.

    ``batch_size`` splits a tensor pair into chunks (default: one batch, whose graph every
    product reuses; :func:`lossland.memory.fitting_batch_size` picks one within a budget).
    """
    t0 = time.perf_counter()
    op = HessianOperator(model, data, loss_fn, batch_size=batch_size)
    s = settings
    top = op.eigenvalues(s.k, "largest", tol=s.tol, max_iter=s.max_iter, seed=s.seed).cpu().numpy()
    bottom = op.eigenvalues(s.k, "smallest", tol=s.tol, max_iter=s.max_iter, seed=s.seed + 1).cpu().numpy()
    trace = op.trace(s.trace_probes, s.trace_method, seed=s.seed + 2, tol=s.trace_tol)
    slq = op.slq(s.density_probes, s.density_steps, seed=s.seed + 3)
    grid, dens = slq.density(s.density_grid)
    sharp = float("nan")
    if s.sharpness_epsilon is not None:
        sharp = epsilon_sharpness(model, op, s.sharpness_epsilon, loss_fn, steps=s.sharpness_steps)
    quality = evaluate(model, op.batches, loss_fn=loss_fn)
    eig = pd.DataFrame({
        "index": np.concatenate([np.arange(len(top)), np.arange(len(bottom))]),
        "which": ["largest"] * len(top) + ["smallest"] * len(bottom),
        "eigenvalue": np.concatenate([top, bottom]).astype(float),
    })
    summary = pd.DataFrame([{
        "loss": float(quality["loss"]), "accuracy": float(quality["accuracy"]),
        "trace": float(trace.estimate), "trace_stderr": float(trace.stderr), "method": trace.method,
        "top_eigenvalue": float(top[0]), "bottom_eigenvalue": float(bottom[0]),
        "negative_fraction": float(slq.negative_fraction(s.negative_threshold * max(float(top[0]), 0.0))),
        "slq_trace": float(slq.mean() * slq.dim),
        "epsilon_sharpness": float(sharp), "n_params": int(op.dim), "n_samples": int(op.n),
        "seconds": time.perf_counter() - t0,
    }])
    density = pd.DataFrame({"eigenvalue": np.asarray(grid, float), "density": np.asarray(dens, float)})
    return {"eigenvalues": eig, "density": density, "summary": summary}
