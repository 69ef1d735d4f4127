"""A walk with SGD (Xing, Arpit, Tsirigotis & Bengio 2018): the loss along every step.

From a model's current weights θ_0 (typically a checkpoint late in training),
:func:`walk` takes ``steps`` optimizer steps θ_k → θ_{k+1} and measures, for each,
the loss on the segment between them::

    L(t) = loss(θ_k + t·(θ_{k+1} − θ_k)),    t ∈ {0, 1/(m−1), …, 1}

on the step's own minibatch and on the full training set, together with the
angle between consecutive minibatch gradients. Xing et al. find that late in
training the segment losses have an interior minimum and consecutive gradients
point almost opposite (~170°): the iterate bounces between the walls of a
valley instead of descending it, most cleanly with full-batch gradient descent.

On a quadratic ``½ θᵀAθ`` a gradient step ``θ − η·Aθ`` has the segment minimum at
``t* = gᵀg / (η·gᵀAg)`` (``g = Aθ``): interior when ``η`` exceeds the inverse of the
gradient's Rayleigh quotient, e.g. near ``2/λ_max``, where the stiff component
flips sign each step.
"""

from __future__ import annotations

import itertools
import math
import sys
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import pandas as pd
import torch
from torch import nn

from .data import DeviceBatches, derive_seed
from .evaluation import (
    Batch,
    Data,
    LossFn,
    default_loss,
    eval_mode,
    inputs_channels_last,
    is_tensor_pair,
    iter_batches,
    model_device,
    prepare_inputs,
)
from .landscape.batches import _materialize
from .landscape.lines import evaluate_points
from .optim import make_optimizer
from .state import State, diff, distance, flatten, trainable_names

SPLITS = ("batch", "full")
# an interior point counts as a minimum when it is below both ends by more than this
# fraction of the larger end (float32 evaluation noise is ~1e-7 relative)
INTERIOR_RTOL = 1e-6


@dataclass
class WalkResult:
    """The tables of :func:`walk`.

    ``segments``: one row per (step, t, split) with columns ``step, epoch, method,
    batch_size, lr, t, split, loss, accuracy`` (``split``: ``"batch"``, the step's
    minibatch, or ``"full"``, ``full_data``). ``steps``: one row per step with
    ``step, epoch, method, batch_size, lr, grad_norm, grad_angle, step_length,
    loss_batch_start, loss_full_start, interior_minimum_batch, interior_minimum_full``.
    """

    segments: pd.DataFrame
    steps: pd.DataFrame

    def wide(self) -> pd.DataFrame:
        """One row per (step, t): ``segment_loss_batch``, ``segment_loss_full`` and the
        per-step columns repeated (long form)."""
        keys = ["step", "t"]
        seg = self.segments.pivot(index=keys, columns="split", values="loss")
        seg = seg.rename(columns=lambda s: f"segment_loss_{s}").reset_index()
        seg.columns.name = None
        return seg.merge(self.steps, on="step", how="left")[
            ["step", "epoch", "method", "batch_size", "lr", "t", "segment_loss_batch", "segment_loss_full",
             *[c for c in self.steps.columns if c not in ("step", "epoch", "method", "batch_size", "lr")]]]


def gradient_angle(g1: Any, g2: Any) -> float:
    """Angle in degrees between two vectors (any shapes, flattened), in float64.

    Computed as ``2·atan2(‖u − v‖, ‖u + v‖)`` for the unit vectors ``u, v``
    (accurate near 0° and 180°, where ``arccos`` of the cosine is not). NaN when
    either vector is zero or not finite.
    """
    u, v = (torch.as_tensor(g).detach().to(torch.float64).reshape(-1) for g in (g1, g2))
    nu, nv = torch.linalg.vector_norm(u), torch.linalg.vector_norm(v)
    if not (float(nu) > 0 and float(nv) > 0 and math.isfinite(float(nu)) and math.isfinite(float(nv))):
        return math.nan
    u, v = u / nu, v.to(u.device) / nv
    return math.degrees(2.0 * math.atan2(float(torch.linalg.vector_norm(u - v)),
                                         float(torch.linalg.vector_norm(u + v))))


def interior_minimum(losses: Any, rtol: float = INTERIOR_RTOL) -> bool:
    """Whether some interior value of a segment's losses ``L(t_0), …, L(t_{m−1})`` lies
    below both ends: ``min_{0<i<m−1} L(t_i) < min(L(0), L(1)) − rtol·max(|L(0)|, |L(1)|)``.
    False for fewer than three points or non-finite losses."""
    x = np.asarray(losses, dtype=np.float64).reshape(-1)
    if x.size < 3 or not np.all(np.isfinite(x)):
        return False
    return bool(x[1:-1].min() < min(x[0], x[-1]) - rtol * max(abs(x[0]), abs(x[-1])))


def late_mean_angle(steps: pd.DataFrame | WalkResult, fraction: float = 0.5) -> float:
    """Mean ``grad_angle`` (degrees) over the last ``⌈fraction·n⌉`` of the ``n`` steps
    (NaN angles, the first step's, skipped). Accepts ``WalkResult.steps`` or the result."""
    df = steps.steps if isinstance(steps, WalkResult) else steps
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    angles = df.sort_values("step")["grad_angle"].to_numpy(dtype=np.float64)
    late = angles[len(angles) - math.ceil(fraction * len(angles)):]
    late = late[np.isfinite(late)]
    return float(late.mean()) if late.size else math.nan


def _tensors(data: Data, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(inputs, targets)`` on ``device`` from a tensor pair or a split (``as_tuple()``)."""
    if hasattr(data, "as_tuple"):
        data = data.as_tuple()
    if not is_tensor_pair(data):
        raise TypeError("walk() needs the training data as an (inputs, targets) tensor pair")
    return data[0].to(device), data[1].to(device)


def _sgd_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, seed: int,
                 channels_last: bool) -> Iterator[tuple[int, list[Batch]]]:
    """``(epoch, [minibatch])`` forever: :class:`DeviceBatches`' seeded order, reshuffled
    every pass (epoch 1, 2, …), the last incomplete batch of a pass dropped."""
    batches = DeviceBatches(x, y, batch_size, seed, drop_last=True, channels_last=channels_last)
    if len(batches) == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the data ({batches.n} samples)")
    for epoch in itertools.count(1):
        for batch in batches.epoch(epoch):
            yield epoch, [batch]


def _gd_batches(x: torch.Tensor, y: torch.Tensor, chunk_size: int | None,
                channels_last: bool) -> Iterator[tuple[int, list[Batch]]]:
    """``(epoch, chunks of the whole data)`` forever: every step sees all of it."""
    chunks = list(iter_batches((prepare_inputs(x, x.device, channels_last), y), chunk_size))
    for epoch in itertools.count(1):
        yield epoch, chunks


def _step(model: nn.Module, optimizer: torch.optim.Optimizer, params: list[nn.Parameter],
          chunks: list[Batch], loss_fn: LossFn) -> torch.Tensor:
    """One optimizer step (train mode) on the mean loss over ``chunks``,
    ``Σ_b (n_b/n)·loss_b``; returns that loss's gradient at the start, flattened in
    float64 (before the optimizer adds weight decay and momentum)."""
    n = sum(int(yb.shape[0]) for _, yb in chunks)
    optimizer.zero_grad(set_to_none=True)
    with eval_mode(model, train=True):
        for xb, yb in chunks:
            (loss_fn(model(xb), yb) * (yb.shape[0] / n)).backward()
    grad = flatten(p.grad if p.grad is not None else torch.zeros_like(p) for p in params).double()
    optimizer.step()
    return grad


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _segment(model: nn.Module, before: State, direction: State, ts: np.ndarray, data: Data,
             loss_fn: LossFn, batch_size: int | None) -> pd.DataFrame:
    """Loss and accuracy at ``before + t·direction`` (eval mode, stored BN statistics)."""
    return evaluate_points(model, before, [direction], ts[:, None], data, loss_fn, bn="stored",
                           batch_size=batch_size)


def walk(model: nn.Module, data: Data, *, steps: int, batch_size: int, lr: float, momentum: float = 0.0,
         weight_decay: float = 0.0, full_batch: bool = False, segment_points: int = 5,
         full_data: Data | None = None, seed: int = 0, loss_fn: LossFn | None = None,
         progress: bool = False, eval_batch_size: int | None = None,
         gd_chunk_size: int | None = None) -> WalkResult:
    """Take ``steps`` optimizer steps from ``model``'s weights and measure each step's segment.

    Steps: SGD (:func:`lossland.make_optimizer`, ``{"algorithm": "sgd", lr, momentum,
    weight_decay}``, momentum buffer starting empty) on minibatches of ``batch_size``
    drawn from ``data`` (an ``(inputs, targets)`` pair) in a seeded order
    (:class:`lossland.DeviceBatches` with ``seed``: the same order as
    :func:`lossland.train` with ``data_seed=seed``), reshuffled every pass, the last
    incomplete batch dropped. ``full_batch=True``: gradient descent, the same
    optimizer on the gradient of the mean loss over all of ``data`` at every step
    (``batch_size`` is then ignored and recorded as ``len(data)``; ``gd_chunk_size``
    splits the forward into chunks whose losses are weighted by size — with
    BatchNorm that changes the batch statistics of the step). Each step runs in
    train mode (dropout on, BatchNorm on batch statistics and updating its running
    ones; dropout masks drawn from a generator seeded with ``seed``, the global RNG
    left as it was).

    Measurements, for step ``k`` (θ_k → θ_{k+1}, ``k = 0 … steps−1``), at the
    ``segment_points`` values ``t`` of ``linspace(0, 1)`` (both ends included):

    * the loss at ``θ_k + t·(θ_{k+1} − θ_k)`` on the step's minibatch (split
      ``"batch"``; for GD the whole data) and on ``full_data`` (split ``"full"``,
      default ``data``), one :func:`lossland.evaluate_points` call each, in **eval
      mode**: dropout off, BatchNorm with stored running statistics, which move
      linearly along the segment with the weights (so ``t = 1`` of step ``k`` is
      ``t = 0`` of step ``k+1``). For GD on ``data`` the batch split is the full one
      (evaluated once);
    * ``grad_norm`` ``‖g_k‖`` and ``grad_angle`` ``∠(g_{k−1}, g_k)`` in degrees (NaN at
      ``k = 0``), where ``g_k`` is the gradient of the step's minibatch loss at θ_k
      (train mode, before weight decay and momentum); ``step_length`` ``‖θ_{k+1} − θ_k‖``;
      these over the trainable float parameters (:func:`lossland.state.trainable_names`);
    * ``loss_batch_start``, ``loss_full_start``: the segment losses at ``t = 0``;
      ``interior_minimum_batch``/``_full``: :func:`interior_minimum` of the segment.

    Returns a :class:`WalkResult` (``segments``, ``steps``; :meth:`WalkResult.wide` for
    one long table). The model is left at θ_steps, its train/eval modes restored.
    """
    if steps < 1 or segment_points < 2:
        raise ValueError(f"walk needs steps >= 1 and segment_points >= 2, got {steps}, {segment_points}")
    loss_fn = loss_fn or default_loss
    device = model_device(model)
    channels_last = inputs_channels_last(model)
    x, y = _tensors(data, device)
    n = int(y.shape[0])
    names = trainable_names(model)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(params, {"algorithm": "sgd", "lr": lr, "momentum": momentum,
                                        "weight_decay": weight_decay})
    full = _materialize(full_data if full_data is not None else (x, y), model, eval_batch_size)
    batches = _gd_batches(x, y, gd_chunk_size, channels_last) if full_batch else \
        _sgd_batches(x, y, batch_size, seed, channels_last)
    ts = np.linspace(0.0, 1.0, segment_points)
    tags = {"method": "gd" if full_batch else "sgd", "batch_size": n if full_batch else int(batch_size),
            "lr": float(lr)}
    seg_rows: list[dict] = []
    step_rows: list[dict] = []
    previous: torch.Tensor | None = None

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"walk ({tags['method']})", unit="step", file=sys.stderr,
                   mininterval=0.5 if sys.stderr.isatty() else 30.0, dynamic_ncols=True)
    forked = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=forked):
            torch.manual_seed(derive_seed("walk-dropout", seed))
            for k in range(steps):
                epoch, chunks = next(batches)
                before = _snapshot(model)
                grad = _step(model, optimizer, params, chunks, loss_fn)
                direction = diff(model.state_dict(), before)
                curves = {"full": _segment(model, before, direction, ts, full, loss_fn, eval_batch_size)}
                curves["batch"] = curves["full"] if full_batch and full_data is None else \
                    _segment(model, before, direction, ts, chunks, loss_fn, eval_batch_size)
                head = {"step": k, "epoch": epoch, **tags}
                for split in SPLITS:
                    for t, loss, acc in zip(ts, curves[split]["loss"], curves[split]["accuracy"]):
                        seg_rows.append({**head, "t": float(t), "split": split, "loss": float(loss),
                                         "accuracy": float(acc)})
                step_rows.append({
                    **head,
                    "grad_norm": float(torch.linalg.vector_norm(grad)),
                    "grad_angle": math.nan if previous is None else gradient_angle(previous, grad),
                    "step_length": distance(model.state_dict(), before, names),
                    "loss_batch_start": float(curves["batch"]["loss"].iloc[0]),
                    "loss_full_start": float(curves["full"]["loss"].iloc[0]),
                    "interior_minimum_batch": interior_minimum(curves["batch"]["loss"]),
                    "interior_minimum_full": interior_minimum(curves["full"]["loss"]),
                })
                previous = grad
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{step_rows[-1]['loss_full_start']:.3g}",
                                    angle=f"{step_rows[-1]['grad_angle']:.0f}", refresh=False)
    finally:
        optimizer.zero_grad(set_to_none=True)
        if bar is not None:
            bar.close()
    return WalkResult(pd.DataFrame(seg_rows), pd.DataFrame(step_rows))
