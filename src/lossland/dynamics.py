"""zhang2018's three dynamics on an :class:`~lossland.ensemble.Ensemble`, every member on its own.

* :func:`sgd`: minibatch SGD, each member with its own shuffling (an epoch is one
  pass in a random order drawn from the member's generator);
* :func:`langevin`: the full-batch gradient plus uncorrelated Gaussian noise whose
  variance for each parameter is that parameter's SGD gradient-noise variance
  (zhang2018 eqs. 19-21): at every step the training set is split at random into
  ``chunks`` minibatches, their gradients' mean is the full-batch gradient and their
  variance across the minibatches (unbiased) is the noise variance
  (:func:`gradient_noise_variance`);
* :func:`gradient_descent`: full-batch steepest descent, for a number of steps and/or
  until every gradient component is below ``tol`` (members that reach it stop).

Every function updates ``ensemble.flat`` in place and returns a :class:`Trace`
(the full-batch loss and gradient at ``log_every`` steps); member ``i`` with
generator seed ``seeds[i]`` follows exactly the path it follows alone. A member whose
loss becomes NaN or infinite stops there and is marked diverged.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Sequence

import torch

from .ensemble import Ensemble


@dataclass
class Trace:
    """What a dynamics recorded: ``rows`` of ``(step, member, loss, grad_norm, grad_max)``
    at every ``log_every`` steps and at the end; ``steps`` taken by each member;
    ``converged`` (every gradient component below ``tol``, where a tolerance applied);
    ``diverged``."""

    rows: list[tuple[int, int, float, float, float]] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    converged: list[bool] = field(default_factory=list)
    diverged: list[bool] = field(default_factory=list)

    def table(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=["step", "member", "loss", "grad_norm", "grad_max"])


def generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per member, seeded."""
    return [torch.Generator().manual_seed(int(s)) for s in seeds]


def _log(trace: Trace, step: int, loss: torch.Tensor, grad: torch.Tensor) -> None:
    norms = grad.norm(dim=1).tolist()
    maxes = grad.abs().amax(dim=1).tolist()
    for i, (value, n, m) in enumerate(zip(loss.tolist(), norms, maxes)):
        trace.rows.append((step, i, value, n, m))


def _bar(total: int, desc: str, progress: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", file=sys.stderr, mininterval=5.0, disable=None)


def _stop_diverged(ensemble: Ensemble, loss: torch.Tensor, active: torch.Tensor, diverged: torch.Tensor) -> None:
    bad = ~torch.isfinite(loss) | ~torch.isfinite(ensemble.flat).all(1)
    diverged |= bad & active
    active &= ~bad


def sgd(ensemble: Ensemble, x: torch.Tensor, y: torch.Tensor, *, lr: float, epochs: int, batch_size: int,
        seeds: Sequence[int], loss: str = "bce", weight_decay: float = 0.0, log_every: int | None = None,
        progress: bool = False) -> Trace:
    """``epochs`` passes of minibatch SGD (``θ ← θ − lr ∇L_B``); member ``i`` shuffles with ``seeds[i]``.
    ``log_every``: epochs between full-batch records (default: only the end)."""
    n, m = int(y.shape[0]), ensemble.members
    gens = generators(seeds)
    active = torch.ones(m, dtype=torch.bool)
    diverged = torch.zeros(m, dtype=torch.bool)
    trace = Trace()
    starts = range(0, n, batch_size)
    bar = _bar(epochs * len(starts), "sgd ensemble", progress)
    for epoch in range(epochs):
        order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(y.device)
        for s in starts:
            idx = order[:, s:s + batch_size]
            value, grad = ensemble.loss_and_grad(x[idx], y[idx], loss, weight_decay)
            _stop_diverged(ensemble, value, active, diverged)
            ensemble.flat.sub_(grad.mul_(lr * active[:, None].to(grad.dtype)))
        if bar is not None:
            bar.update(len(starts))
        if log_every and (epoch + 1) % log_every == 0 and epoch + 1 < epochs:
            _log(trace, epoch + 1, *ensemble.loss_and_grad(x, y, loss, weight_decay))
    if bar is not None:
        bar.close()
    _log(trace, epochs, *ensemble.loss_and_grad(x, y, loss, weight_decay))
    trace.steps = [epochs * len(starts)] * m
    trace.converged = [False] * m
    trace.diverged = diverged.tolist()
    return trace


def gradient_noise_variance(ensemble: Ensemble, x: torch.Tensor, y: torch.Tensor, *, chunks: int = 10,
                            generator_seeds: Sequence[int] | None = None, loss: str = "bce",
                            weight_decay: float = 0.0, gens: Sequence[torch.Generator] | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """zhang2018 eq. 21: split the ``N`` training examples at random into ``chunks`` minibatches of
    ``N / chunks``, take each member's gradient on each; returns their mean (the full-batch
    gradient) and their unbiased variance across the minibatches, both ``(M, P)``."""
    n, m = int(y.shape[0]), ensemble.members
    if n % chunks:
        raise ValueError(f"{n} examples do not split into {chunks} equal minibatches")
    gens = gens or generators(generator_seeds or range(m))
    order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(y.device)
    grads = ensemble.chunk_grads(x, y, order, chunks, loss, weight_decay)
    mean = grads.mean(1)
    # the unbiased variance across the minibatches, written out: Tensor.var over the middle axis of
    # (M, C, P) is ~50x slower on the CPU
    var = (grads - mean.unsqueeze(1)).square_().sum(1).div_(chunks - 1)
    return mean, var


def langevin(ensemble: Ensemble, x: torch.Tensor, y: torch.Tensor, *, lr: float, steps: int, seeds: Sequence[int],
             chunks: int = 10, loss: str = "bce", weight_decay: float = 0.0, log_every: int | None = None,
             progress: bool = False) -> Trace:
    """``steps`` of ``θ ← θ − lr (∇L + η)``, ``η_i ~ N(0, σ_i²)`` with ``σ_i²`` the SGD gradient-noise
    variance of parameter ``i`` at the current ``θ`` (:func:`gradient_noise_variance`, minibatches of
    ``N / chunks``: 10 of 50 in zhang2018). Member ``i`` draws splits and noise from ``seeds[i]``."""
    m = ensemble.members
    gens = generators(seeds)
    active = torch.ones(m, dtype=torch.bool)
    diverged = torch.zeros(m, dtype=torch.bool)
    trace = Trace()
    p = ensemble.num_parameters
    bar = _bar(steps, "langevin ensemble", progress)
    for step in range(steps):
        mean, var = gradient_noise_variance(ensemble, x, y, chunks=chunks, loss=loss, weight_decay=weight_decay,
                                            gens=gens)
        noise = torch.stack([torch.randn(p, generator=g) for g in gens]).to(mean)
        if log_every and step % log_every == 0 and step:
            value = ensemble.losses(x, y, loss, weight_decay)
            _log(trace, step, value, mean)
        update = mean.add_(noise.mul_(var.sqrt_()))
        _stop_diverged(ensemble, update.sum(1), active, diverged)
        ensemble.flat.sub_(update.mul_(lr * active[:, None].to(update.dtype)))
        if bar is not None and (step + 1) % 1000 == 0:
            bar.update(1000)
    if bar is not None:
        bar.close()
    _log(trace, steps, *ensemble.loss_and_grad(x, y, loss, weight_decay))
    trace.steps = [steps] * m
    trace.converged = [False] * m
    trace.diverged = diverged.tolist()
    return trace


def gradient_descent(ensemble: Ensemble, x: torch.Tensor, y: torch.Tensor, *, lr: float, steps: int | None = None,
                     tol: float | None = None, max_steps: int | None = None, loss: str = "bce",
                     weight_decay: float = 0.0, log_every: int | None = None, progress: bool = False,
                     desc: str = "gradient descent") -> Trace:
    """Full-batch steepest descent ``θ ← θ − lr ∇L``: ``steps`` steps, then (with ``tol``) on until
    every component of a member's gradient is below ``tol`` in magnitude or ``max_steps`` steps in
    all; a member that reaches the tolerance stops moving. ``Trace.converged`` says which reached it."""
    if steps is None and tol is None:
        raise ValueError("gradient_descent needs steps, tol or both")
    m = ensemble.members
    total = (steps or 0) if tol is None else max(int(max_steps or 0), steps or 0)
    active = torch.ones(m, dtype=torch.bool)
    diverged = torch.zeros(m, dtype=torch.bool)
    converged = torch.zeros(m, dtype=torch.bool)
    taken = torch.zeros(m, dtype=torch.long)
    trace = Trace()
    bar = _bar(total, desc, progress)
    step = 0
    while step < total:
        value, grad = ensemble.loss_and_grad(x, y, loss, weight_decay)
        if log_every and step % log_every == 0 and step:
            _log(trace, step, value, grad)
        _stop_diverged(ensemble, value, active, diverged)
        if tol is not None and step >= (steps or 0):
            done = grad.abs().amax(1) < tol
            converged |= done & active
            active &= ~done
            if not bool(active.any()):
                break
        ensemble.flat.sub_(grad.mul_(lr * active[:, None].to(grad.dtype)))
        taken += active.long()
        step += 1
        if bar is not None and step % 1000 == 0:
            bar.update(1000)
    if bar is not None:
        bar.close()
    value, grad = ensemble.loss_and_grad(x, y, loss, weight_decay)
    if tol is not None:
        converged |= (grad.abs().amax(1) < tol) & ~diverged
    _log(trace, step, value, grad)
    trace.steps = taken.tolist()
    trace.converged = converged.tolist()
    trace.diverged = diverged.tolist()
    return trace


def converged_fraction(trace: Trace) -> float:
    return sum(trace.converged) / max(1, len(trace.converged)) if trace.converged else math.nan
