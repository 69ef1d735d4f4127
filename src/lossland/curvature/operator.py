"""The Hessian operator: exact second derivatives of the mean loss of a model
over data, matrix-free or dense, and the functions of a model built on it.

Everything here is about ``L(θ) = (1/N) Σ_n ℓ(f(x_n; θ), y_n)``, the mean loss
over all of ``data`` (a tensor pair ``(inputs, targets)``, split into chunks of
``batch_size`` when given, or any iterable of such batches, read as
:func:`lossland.evaluation.iter_batches` reads it). ``loss_fn(logits, targets)``
returns a batch's *mean* loss (default :func:`lossland.default_loss`); batches
are weighted by their size, so the result is the Hessian of the full-data mean
loss however the data are batched. ``θ`` is every parameter with
``requires_grad`` (in ``model.parameters()`` order, flattened as
``torch.nn.utils.parameters_to_vector`` does); frozen parameters and buffers
are constants.

**Mode.** The model is evaluated in eval mode by default (``train=False``):
batch normalisation uses its stored running statistics and dropout is off, so
the loss is a deterministic function of ``θ`` and batches are independent.
With ``train=True`` BN uses batch statistics (the Hessian then depends on the
batching) and the running statistics are restored after each evaluation. Each
module's mode is restored afterwards either way.

**Products.** :class:`HessianOperator` computes ``H v`` for one or many vectors
``v`` at once, by double backward (``backend="autograd"``, the default) or by
forward-over-reverse differentiation with ``torch.func`` (``jvp`` of ``grad``,
batched over vectors with ``vmap``; ``backend="func"``). Double backward
measured faster on a CPU (MLP, 200k parameters, 1000 CIFAR images): 35 ms per
product through a cached graph, 65 ms recomputing the graph of 4 batches of
250, against 138 ms for forward-over-reverse. With one batch the gradient graph
is built once and reused by every product (``cache_graph``); with several,
each product rebuilds one batch's graph at a time, so memory stays that of one
batch. Products of several vectors at once (``probe_batch`` in the estimators)
are 25 % cheaper per vector for an MLP on a CPU but dearer through
convolutions (NIN, 250 images: 0.99 s per vector in fours against 0.80 s one
at a time; memory grows with the batch), so the estimators default to 8
vectors per product on a CPU (1 for models with convolutions) and 16 on a GPU.
Image batches are held in channels-last format where the model's
convolutions are, and on the CPU for conv nets whose BatchNorms are folded
(:func:`_products_channels_last`, measured): the model is not converted, its
convolutions then run oneDNN's channels-last kernels in the forward, backward
and double-backward passes alike.

Public functions: :func:`hessian` (dense, exact), :func:`hvp`,
:func:`top_eigenvalues` (Lanczos, :mod:`.lanczos`), :func:`hessian_trace`
(Hutchinson, Krylov-deflated Hutchinson, Hutch++: :mod:`.trace`),
:func:`hessian_slq`, :func:`spectral_density` and
:func:`negative_eigenvalue_fraction` (stochastic Lanczos quadrature:
:mod:`.density`); each builds one :class:`HessianOperator` (or takes one in
place of ``data``) and calls its method.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, grad, grad_and_value, jvp, vmap

from ..evaluation import (
    Data,
    LossFn,
    convs_channels_last,
    default_loss,
    eval_mode,
    inputs_channels_last,
    is_tensor_pair,
    iter_batches,
    model_device,
    prepare_inputs,
)
from ..fold import fold_batchnorm
from ..state import flatten, unflatten
from .density import SLQResult, slq
from .lanczos import lanczos_eigenvalues
from .trace import TraceEstimate, deflated_hutchinson, hutchinson, hutchpp

__all__ = [
    "HessianOperator", "hessian", "hvp", "top_eigenvalues", "hessian_trace", "TraceEstimate",
    "hessian_slq", "SLQResult", "spectral_density", "negative_eigenvalue_fraction",
]

BACKENDS = ("auto", "autograd", "func")
TRACE_METHODS = ("hutchinson", "deflated", "hutch++", "exact")


class HessianOperator:
    """Matrix-free Hessian of the mean loss of ``model`` over ``data``.

    ``op @ v`` / ``op.matvec(v)`` takes a flat vector of ``op.dim`` entries;
    ``op.matmat(V)`` takes vectors as the rows of an ``m × dim`` matrix and
    returns ``H`` applied to each row (one batched pass). ``op.dense()`` builds
    the full ``dim × dim`` matrix. See the module docstring for the data, loss
    and mode conventions.

    Parameters
    ----------
    batch_size:
        split a tensor pair into chunks of this size (default: one batch).
    train:
        evaluate the model in train mode (default: eval mode).
    backend:
        ``"autograd"`` (double backward), ``"func"`` (forward-over-reverse with
        ``torch.func``) or ``"auto"`` (``autograd``, the faster one measured).
    cache_graph:
        with the ``autograd`` backend, build the gradient graph of all batches
        once and reuse it for every product (fast; holds every batch's
        activations). Default: only when the data are one batch.
    fold_bn:
        with the ``autograd`` backend in eval mode, differentiate a traced copy
        of the forward in which each conv/linear → BatchNorm pair is one layer
        (:func:`lossland.fold.fold_batchnorm`: same function of the same
        parameters, about 1.6× faster products on a BN network). Default: on
        in eval mode where ``torch.fx`` can trace the model; ``False`` turns
        it off.

    The cached graph is built at the first product and describes the parameters
    at that moment: build a new operator after changing the model.
    """

    def __init__(self, model: nn.Module, data: Data, loss_fn: LossFn | None = None, *,
                 batch_size: int | None = None, train: bool = False, backend: str = "auto",
                 cache_graph: bool | None = None, fold_bn: bool | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.model = model
        self.loss_fn = loss_fn or default_loss
        self.train = bool(train)
        self.device = model_device(model)
        if fold_bn and self.train:
            raise ValueError("fold_bn needs train=False (BatchNorm folding uses the running statistics)")
        if backend == "auto":
            backend = "autograd"
        want_fold = (not self.train) if fold_bn is None else bool(fold_bn)
        self._forward = model
        if want_fold and backend == "autograd":
            self._forward = fold_batchnorm(model) or model
        self._channels_last = _products_channels_last(model, self._forward is not model)
        if is_tensor_pair(data):  # move once, then split
            data = (prepare_inputs(data[0], self.device, self._channels_last),
                    data[1].to(self.device))
        self.batches = list(iter_batches(data, batch_size))
        if not self.batches:
            raise ValueError("HessianOperator got no data")
        sizes = [int(y.shape[0]) for _, y in self.batches]
        self.n = sum(sizes)
        self.weights = [s / self.n for s in sizes]
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        if not named:
            raise ValueError("the model has no trainable parameters")
        self.names = [n for n, _ in named]
        self.params = [p for _, p in named]
        self._named = dict(named)
        self.dim = sum(p.numel() for p in self.params)
        self.dtype = self.params[0].dtype
        self.backend = backend
        if cache_graph is None:
            cache_graph = backend == "autograd" and len(self.batches) == 1
        self.cache_graph = bool(cache_graph) and backend == "autograd"
        self._graph: torch.Tensor | None = None

    # ------------------------------------------------------------------ helpers

    def __repr__(self) -> str:
        return (f"HessianOperator(dim={self.dim}, n={self.n}, batches={len(self.batches)}, "
                f"backend={self.backend!r}, train={self.train})")

    @property
    def folded_bn(self) -> bool:
        """Whether products go through the BatchNorm-folded forward."""
        return self._forward is not self.model

    @property
    def shape(self) -> tuple[int, int]:
        return (self.dim, self.dim)

    def theta(self) -> torch.Tensor:
        """The current parameters as one flat (detached) vector."""
        return flatten(self.params)

    def _batch(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.batches[i]
        return prepare_inputs(x, self.device, self._channels_last), y.to(self.device, non_blocking=True)

    @contextlib.contextmanager
    def _mode(self):
        saved = None
        if self.train:
            saved = [(b, b.detach().clone()) for b in self.model.buffers()]
        with eval_mode(self.model, train=self.train):
            try:
                yield
            finally:
                if saved is not None:
                    with torch.no_grad():
                        for b, s in saved:
                            b.copy_(s)

    def _flat_loss(self, flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(self.model, unflatten(flat, self._named, self.names), (x,))
        return self.loss_fn(out, y)

    def _flat_grad_graph(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = self.loss_fn(self._forward(x), y)
        gs = torch.autograd.grad(loss, self.params, create_graph=True, allow_unused=True,
                                 materialize_grads=True)
        return torch.cat([g.reshape(-1) for g in gs])

    def _backward_products(self, flat_g: torch.Tensor, vs: torch.Tensor, retain: bool) -> torch.Tensor:
        if not flat_g.requires_grad:  # loss at most linear in θ
            return torch.zeros_like(vs)
        if vs.shape[0] == 1:
            out = torch.autograd.grad(flat_g, self.params, vs[0], retain_graph=retain,
                                      allow_unused=True, materialize_grads=True)
            return torch.cat([o.reshape(-1) for o in out])[None]
        out = torch.autograd.grad(flat_g, self.params, vs, retain_graph=retain,
                                  is_grads_batched=True, allow_unused=True, materialize_grads=True)
        return torch.cat([o.reshape(vs.shape[0], -1) for o in out], dim=1)

    # ------------------------------------------------------------------ products

    def matmat(self, vs: torch.Tensor) -> torch.Tensor:
        """``H`` applied to each row of ``vs`` (``m × dim``); returns ``m × dim``."""
        squeeze = vs.dim() == 1
        if squeeze:
            vs = vs[None]
        if vs.shape[-1] != self.dim:
            raise ValueError(f"vectors must have {self.dim} entries, got {vs.shape[-1]}")
        vs = vs.to(device=self.device, dtype=self.dtype)
        with self._mode(), torch.enable_grad():
            if self.backend == "func":
                out = self._matmat_func(vs)
            elif self.cache_graph:
                if self._graph is None:
                    self._graph = self._cached_graph()
                out = self._backward_products(self._graph, vs, retain=True)
            else:
                out = torch.zeros_like(vs)
                for i, w in enumerate(self.weights):
                    x, y = self._batch(i)
                    out += w * self._backward_products(self._flat_grad_graph(x, y), vs, retain=False)
        out = out.detach()
        return out[0] if squeeze else out

    def _cached_graph(self) -> torch.Tensor:
        flat_g = None
        for i, w in enumerate(self.weights):
            x, y = self._batch(i)
            g = self._flat_grad_graph(x, y)
            g = g if w == 1.0 else g * w  # one batch: no extra node in the graph
            flat_g = g if flat_g is None else flat_g + g
        return flat_g

    def _matmat_func(self, vs: torch.Tensor) -> torch.Tensor:
        theta = self.theta()
        out = torch.zeros_like(vs)
        for i, w in enumerate(self.weights):
            x, y = self._batch(i)

            def hvp_one(v: torch.Tensor) -> torch.Tensor:
                return jvp(lambda t: grad(self._flat_loss)(t, x, y), (theta,), (v,))[1]

            out += w * (hvp_one(vs[0])[None] if vs.shape[0] == 1 else vmap(hvp_one)(vs))
        return out

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """``H v`` for a flat vector ``v``."""
        return self.matmat(v.reshape(1, -1))[0]

    def __matmul__(self, v: torch.Tensor) -> torch.Tensor:
        if v.dim() == 1:
            return self.matvec(v)
        return self.matmat(v.T).T

    def dense(self, chunk_size: int | None = None) -> torch.Tensor:
        """The full ``dim × dim`` Hessian, from products with the identity's rows
        in chunks of ``chunk_size`` (default: up to 2048 rows at a time)."""
        chunk = int(chunk_size or min(self.dim, 2048))
        out = torch.empty(self.dim, self.dim, dtype=self.dtype, device=self.device)
        for s in range(0, self.dim, chunk):
            m = min(chunk, self.dim - s)
            basis = torch.zeros(m, self.dim, dtype=self.dtype, device=self.device)
            basis[torch.arange(m), torch.arange(s, s + m)] = 1
            out[s:s + m] = self.matmat(basis)
        return out

    def loss_and_grad(self, offset: torch.Tensor | None = None) -> tuple[float, torch.Tensor]:
        """Mean loss and its gradient (flat) at ``θ + offset``."""
        theta = self.theta()
        if offset is not None:
            theta = theta + offset.to(theta)
        total = 0.0
        g = torch.zeros_like(theta)
        with self._mode():
            for i, w in enumerate(self.weights):
                x, y = self._batch(i)
                gi, li = grad_and_value(self._flat_loss)(theta, x, y)
                g += w * gi.detach()
                total += w * float(li)
        return total, g

    # ------------------------------------------------------------------ linear algebra

    def _lin_kw(self) -> dict:
        return {"dtype": self.dtype, "device": self.device}

    def eigenvalues(self, k: int = 1, which: str = "largest", *, tol: float = 1e-4,
                    max_iter: int = 200, seed: int = 0, return_info: bool = False):
        """See :func:`top_eigenvalues`."""
        return lanczos_eigenvalues(self.matmat, self.dim, k, which, tol=tol, max_iter=max_iter,
                                          seed=seed, return_info=return_info, **self._lin_kw())

    def trace(self, n_probes: int = 100, method: str = "deflated", *, seed: int = 0,
              probe_batch: int | None = None, tol: float | None = None,
              lanczos_steps: int | None = None) -> TraceEstimate:
        """See :func:`hessian_trace`."""
        if tol is not None and method not in ("hutchinson", "deflated"):
            raise ValueError(f"tol applies to the 'hutchinson' and 'deflated' trace methods, not {method!r}")
        if lanczos_steps is not None and method != "deflated":
            raise ValueError(f"lanczos_steps applies to the 'deflated' trace method, not {method!r}")
        probe_batch = probe_batch or _default_probe_batch(self)
        kw = {"seed": seed, "probe_batch": probe_batch, **self._lin_kw()}
        if method == "hutchinson":
            return hutchinson(self.matmat, self.dim, n_probes, tol=tol, **kw)
        if method == "deflated":
            return deflated_hutchinson(self.matmat, self.dim, n_probes, tol=tol,
                                              lanczos_steps=lanczos_steps, **kw)
        if method in ("hutch++", "hutchpp"):
            return hutchpp(self.matmat, self.dim, n_probes, **kw)
        if method == "exact":
            h = self.dense()
            return TraceEstimate(float(torch.diagonal(h).double().sum()), 0.0, 0, "exact", self.dim)
        raise ValueError(f"trace method must be one of {', '.join(TRACE_METHODS)}, got {method!r}")

    def slq(self, n_probes: int = 10, n_steps: int = 80, *, seed: int = 0,
            probe_batch: int | None = None) -> SLQResult:
        """See :func:`hessian_slq`."""
        return slq(self.matmat, self.dim, n_probes, n_steps, seed=seed,
                          probe_batch=probe_batch or _default_probe_batch(self), **self._lin_kw())


def _products_channels_last(model: nn.Module, folded_bn: bool) -> bool:
    """Whether the operator holds image batches channels-last: where the model's convs are
    channels-last (the user's choice), and on the CPU for a model with 2-D convolutions
    whose BatchNorms are folded into them; a contiguous model without foldable BatchNorm
    keeps contiguous inputs. Measured (``benchmarks/hessian.py``'s zoo, 2 cores, 500
    images, one product through the cached graph, channels-last against contiguous
    inputs): NIN-¼ with BatchNorm 1.85 against 2.42 s, a ResNet-8 1.09 against 1.30 s,
    but VGG-11-¼ without BatchNorm 0.48 against 0.39 s and a plain CNN 0.21 against
    0.20 s, where ReLU's double backward (``threshold_backward``) on channels-last
    activations costs twice its contiguous time. A forward-only pass gains on all four
    (:func:`lossland.evaluation.inputs_channels_last`)."""
    return convs_channels_last(model) or (folded_bn and inputs_channels_last(model))


def _default_probe_batch(op: HessianOperator) -> int:
    # Vectors per batched product. On a GPU batching fills the device. On a CPU
    # (measured, 2 cores): an MLP (200k parameters, 1000 images) costs 6.0 ms
    # per vector in batches of 8 against 8.0 ms one at a time, but batched
    # double backward through convolutions is slower per vector (NIN: 0.99 s in
    # fours against 0.80 s), so conv nets take one. Memory grows with it
    # (activations × vectors).
    if op.device.type != "cpu":
        return 16
    convs = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    return 1 if any(isinstance(m, convs) for m in op.model.modules()) else 8


def _operator(model, data, loss_fn, op_kw) -> HessianOperator:
    if isinstance(data, HessianOperator):
        return data
    return HessianOperator(model, data, loss_fn, **op_kw)


# --------------------------------------------------------------------------- public functions


def hvp(model: nn.Module, data: Data, v: torch.Tensor, loss_fn: LossFn | None = None,
        **op_kw) -> torch.Tensor:
    """Hessian-vector product ``H v`` (``v`` flat, or rows of an ``m × P`` matrix).

    ``op_kw`` go to :class:`HessianOperator` (``batch_size``, ``train``, ``backend``).
    """
    op = HessianOperator(model, data, loss_fn, **op_kw)
    return op.matvec(v) if v.dim() == 1 else op.matmat(v)


def hessian(model: nn.Module, data: Data, loss_fn: LossFn | None = None, *,
            chunk_size: int | None = None, **op_kw) -> torch.Tensor:
    """The exact dense ``P × P`` Hessian of the mean loss over ``data`` w.r.t. all
    trainable parameters (flattened in ``model.parameters()`` order).

    Built from batched Hessian-vector products with the identity's rows
    (``chunk_size`` rows at a time), so it is meant for small models (a few
    thousand parameters). ``op_kw`` go to :class:`HessianOperator`.
    """
    return HessianOperator(model, data, loss_fn, **op_kw).dense(chunk_size)


def top_eigenvalues(model: nn.Module, data: Data, k: int = 1, which: str = "largest",
                    loss_fn: LossFn | None = None, tol: float = 1e-4, max_iter: int = 200,
                    seed: int = 0, **op_kw) -> torch.Tensor:
    """The ``k`` extreme Hessian eigenvalues (float64 tensor) by Lanczos with full
    reorthogonalisation.

    ``which="largest"`` gives the largest first; ``"smallest"`` the most
    negative first; ``"magnitude"`` the largest ``|λ|``. Lanczos stops when the
    ``k`` Ritz values of interest change by less than ``tol`` (relative)
    between steps, or after ``max_iter`` products. ``seed`` fixes the start
    vector. ``op_kw`` go to :class:`HessianOperator`.
    """
    return _operator(model, data, loss_fn, op_kw).eigenvalues(k, which, tol=tol, max_iter=max_iter,
                                                              seed=seed)


def hessian_trace(model: nn.Module, data: Data, n_probes: int = 100, method: str = "deflated",
                  seed: int = 0, loss_fn: LossFn | None = None, *, tol: float | None = None,
                  probe_batch: int | None = None, lanczos_steps: int | None = None,
                  **op_kw) -> TraceEstimate:
    """Stochastic estimate of the Hessian trace, as a :class:`TraceEstimate`
    (``.estimate``, ``.stderr``, ``float(result)``).

    ``method``:

    * ``"deflated"`` (default): Krylov-deflated Hutchinson
      (:func:`lossland.curvature.trace.deflated_hutchinson`): ``lanczos_steps``
      Lanczos products (default ``min(n_probes // 2, 100)``; with ``tol``, from 10
      doubling while that pays) give the trace on a Krylov space exactly, the rest
      estimate the remainder. Network Hessians keep most of Hutchinson's variance
      in a few outlying eigenvalues, which Lanczos finds first, so it reaches a
      given standard error in several times fewer products than Hutchinson
      (``benchmarks/hessian.py``).
    * ``"hutchinson"``: the mean of ``zᵀHz`` over ``n_probes`` Rademacher
      vectors; ``stderr`` = sample std / √n (PyHessian's estimator).
    * ``"hutch++"``: Hutch++ with ``n_probes`` products in all.
    * ``"exact"``: from the dense Hessian (small models).

    ``tol`` (deflated, hutchinson): stop early once ``stderr ≤ tol·|estimate|``;
    ``n_probes`` is then the budget. A fixed number of probes gives an unbiased
    estimate; one stopped by this rule is not exactly unbiased, because the
    stopping time depends on the samples (on a test operator with a known trace
    of 33, over thousands of seeds, the tolerance-stopped mean was 0.1–0.3 %
    high). Use a fixed ``n_probes`` where that bias matters, e.g. when averaging
    many estimates. ``probe_batch`` products are computed per batched pass.
    ``op_kw`` go to :class:`HessianOperator`.
    """
    return _operator(model, data, loss_fn, op_kw).trace(n_probes, method, seed=seed, tol=tol,
                                                        probe_batch=probe_batch,
                                                        lanczos_steps=lanczos_steps)


def hessian_slq(model: nn.Module, data: Data, n_probes: int = 10, n_steps: int = 80, seed: int = 0,
                loss_fn: LossFn | None = None, *, probe_batch: int | None = None,
                **op_kw) -> SLQResult:
    """Stochastic Lanczos quadrature nodes and weights of the Hessian
    (:class:`lossland.curvature.density.SLQResult`): ``n_probes`` Lanczos runs of ``n_steps``
    steps from normalised Rademacher vectors."""
    return _operator(model, data, loss_fn, op_kw).slq(n_probes, n_steps, seed=seed,
                                                      probe_batch=probe_batch)


def spectral_density(model: nn.Module, data: Data, n_probes: int = 10, n_steps: int = 80,
                     sigma: float | None = None, grid: np.ndarray | int | None = None, seed: int = 0,
                     loss_fn: LossFn | None = None, **op_kw) -> pd.DataFrame:
    """Hessian eigenvalue density by stochastic Lanczos quadrature with Gaussian
    broadening, as a DataFrame with columns ``eigenvalue`` and ``density``
    (normalised to integrate to 1 over the grid, trapezoidal rule).

    ``sigma`` (broadening width) defaults to 1 % of the Ritz-value range;
    ``grid`` (array of eigenvalues, or a number of points, default 1000) to
    that range padded by 5 σ. ``df.attrs`` holds ``negative_fraction`` (the
    SLQ estimate of the fraction of negative eigenvalues), ``trace`` (the SLQ
    estimate of the trace), ``sigma``, ``n_probes``, ``n_steps`` and ``dim``.
    """
    res = _operator(model, data, loss_fn, op_kw).slq(n_probes, n_steps, seed=seed)
    g, d = res.density(grid, sigma)
    df = pd.DataFrame({"eigenvalue": g, "density": d})
    lo, hi = (float(np.concatenate(res.nodes).min()), float(np.concatenate(res.nodes).max()))
    df.attrs.update({
        "negative_fraction": res.negative_fraction(), "trace": res.mean() * res.dim,
        "sigma": float(sigma) if sigma is not None else (0.01 * (hi - lo) if hi > lo else None),
        "n_probes": n_probes, "n_steps": n_steps, "dim": res.dim,
    })
    return df


def negative_eigenvalue_fraction(model: nn.Module, data: Data, n_probes: int = 10, n_steps: int = 80,
                                 seed: int = 0, loss_fn: LossFn | None = None, *,
                                 threshold: float = 0.0, **op_kw) -> float:
    """SLQ estimate of the fraction of Hessian eigenvalues below ``-threshold``
    (from the quadrature nodes and weights, without broadening)."""
    res = _operator(model, data, loss_fn, op_kw).slq(n_probes, n_steps, seed=seed)
    return res.negative_fraction(threshold)
