"""Mode connectivity: low-loss curves between two solutions (Garipov et al. 2018).

A :class:`Curve` joins two states ``θ0`` (``start``) and ``θ1`` (``end``) through a
*bend* ``θb``, as a quadratic Bezier curve or a polygonal chain with one bend::

    bezier     θ(t) = (1−t)²·θ0 + 2t(1−t)·θb + t²·θ1
    polychain  θ(t) = θ0 + 2t·(θb − θ0)               t ≤ ½
                      θb + (2t−1)·(θ1 − θb)           t ≥ ½

:func:`train_curve` fits the bend by SGD on ``E_{t~U(0,1)} L(θ(t))`` with the
endpoints fixed. Both kinds are linear combinations ``θ0 + c_b·(θb − θ0) +
c_1·(θ1 − θ0)`` (:meth:`Curve.coefficients`), so a curve lies in the plane
through ``θ0, θb, θ1`` (:func:`plane_basis`, :func:`plane_coordinates`) and is
evaluated with one batched :func:`lossland.landscape.evaluate_points` call
(:func:`evaluate_curve`, :func:`curve_table`). :func:`barrier` is the height of a
path's loss above the chord between its ends.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..evaluation import Data, LossFn, default_loss, eval_mode, inputs_channels_last, model_device, prepare_inputs
from ..state import State, copy_as, diff, direction_as, float_param_names, trainable_names
from .batches import _materialize
from .batchnorm import _bn_modules
from .functional import _functional_table, functional_distance
from .lines import _values, evaluate_points, interpolate
from .points import _Points

KINDS = ("bezier", "polychain")
# a bend this close (relative to ‖θb − θ0‖) to the line θ0→θ1 spans no plane: v = 0
_COLLINEAR = 1e-5


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def _check_t(t: float) -> float:
    t = float(t)
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must lie in [0, 1], got {t}")
    return t


def _weights(kind: str, t: float) -> tuple[float, float, float]:
    """The weights ``(w0, wb, w1)`` of ``θ0, θb, θ1`` in ``θ(t)`` (they sum to 1)."""
    if kind == "bezier":
        return (1.0 - t) ** 2, 2.0 * t * (1.0 - t), t * t
    if t <= 0.5:
        return 1.0 - 2.0 * t, 2.0 * t, 0.0
    return 0.0, 2.0 - 2.0 * t, 2.0 * t - 1.0


def _combine(weights: Sequence[float], tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """``Σ w_i·x_i`` over the non-zero weights (differentiable): a weight-1 term alone is
    that tensor bitwise, so the curve passes exactly through its endpoints."""
    terms = [(w, x) for w, x in zip(weights, tensors) if w != 0.0]
    out = terms[0][1] * terms[0][0]
    for w, x in terms[1:]:
        out = out + w * x
    return out


def midpoint(start: State, end: State) -> dict[str, torch.Tensor]:
    """``(θ0 + θ1)/2`` over the float entries; other entries from ``start``: the default bend."""
    return {k: 0.5 * (v + end[k]) if v.is_floating_point() else v.clone() for k, v in start.items()}


@dataclass(frozen=True, eq=False)
class Curve:
    """A Bezier curve or one-bend polygonal chain ``θ(t)``, ``t ∈ [0, 1]``, through three states.

    ``start`` (θ0), ``bend`` (θb) and ``end`` (θ1) are state dicts with the same
    names. Float entries (parameters and BN statistics) follow the curve;
    non-float buffers come from ``start``.
    """

    kind: str
    start: dict[str, torch.Tensor]
    bend: dict[str, torch.Tensor]
    end: dict[str, torch.Tensor]

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        if set(self.bend) != set(self.start) or set(self.end) != set(self.start):
            raise KeyError("start, bend and end must have the same names")

    @classmethod
    def line(cls, start: State, end: State, kind: str = "bezier") -> "Curve":
        """The curve with its bend at the midpoint ``(θ0 + θ1)/2``: the straight line
        ``θ0 + t(θ1 − θ0)`` for both kinds (Bezier: ``(1−t)²θ0 + t(1−t)(θ0+θ1) + t²θ1``)."""
        return cls(kind, dict(start), midpoint(start, end), dict(end))

    def weights(self, t: float) -> tuple[float, float, float]:
        """``(w0, wb, w1)`` with ``θ(t) = w0·θ0 + wb·θb + w1·θ1``."""
        return _weights(self.kind, _check_t(t))

    def point(self, t: float) -> dict[str, torch.Tensor]:
        """The state ``θ(t)``: exactly ``start`` at ``t = 0`` and ``end`` at ``t = 1`` (float
        entries; non-float entries are ``start``'s everywhere), the bend at ``t = ½`` for a
        polychain. ``t`` outside [0, 1] is a ``ValueError``."""
        w = self.weights(t)
        return {k: _combine(w, (v, self.bend[k], self.end[k])).detach() if v.is_floating_point() else v.clone()
                for k, v in self.start.items()}

    def coefficients(self, ts) -> np.ndarray:
        """``(len(ts), 2)`` coefficients ``(c_b, c_1)`` with ``θ(t) = θ0 + c_b(θb − θ0) + c_1(θ1 − θ0)``.

        Bezier: ``(2t(1−t), t²)``; polychain: ``(2t, 0)`` for ``t ≤ ½``, ``(2 − 2t, 2t − 1)`` after.
        """
        return np.array([self.weights(t)[1:] for t in _values(ts)], dtype=np.float64).reshape(-1, 2)

    def directions(self) -> list[dict[str, torch.Tensor]]:
        """``[θb − θ0, θ1 − θ0]`` over the float entries: the directions of :meth:`coefficients`."""
        return [diff(self.bend, self.start), diff(self.end, self.start)]


# --------------------------------------------------------------------------- the plane


def _dot(a: State, b: State, names: Sequence[str]) -> float:
    return float(sum((a[k].detach().double() * b[k].detach().double()).sum() for k in names))


def _plane(model: nn.Module, curve: Curve):
    """``(u, v, M)``: the orthonormal basis of the curve's plane and the 2×2 matrix taking
    :meth:`Curve.coefficients` ``(c_b, c_1)`` to plane coordinates ``(x, y)``."""
    names = float_param_names(model, curve.start)
    d_b, d_1 = curve.directions()
    n1 = _dot(d_1, d_1, names) ** 0.5
    if n1 == 0:
        raise ValueError("start and end are the same point: the curve spans no plane")
    a = _dot(d_b, d_1, names) / n1  # θb's x: the component of θb − θ0 along u
    u = {k: d / n1 for k, d in d_1.items()}
    r = {k: d_b[k] - a * u[k] for k in d_b}  # θb − θ0 less its component along u
    h = _dot(r, r, names) ** 0.5
    if h <= _COLLINEAR * _dot(d_b, d_b, names) ** 0.5:
        h = 0.0
    v = {k: x / h if h > 0 else torch.zeros_like(x) for k, x in r.items()}
    # x = c_b·a + c_1·‖θ1 − θ0‖, y = c_b·h
    return u, v, np.array([[a, n1], [h, 0.0]])


def plane_basis(model: nn.Module, curve: Curve) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """The orthonormal basis ``(u, v)`` of the plane through ``θ0, θb, θ1`` (origin θ0).

    Gram–Schmidt with the inner product over ``model``'s float parameters:
    ``u = (θ1 − θ0)/‖θ1 − θ0‖`` and ``v`` the normalised component of ``θb − θ0``
    orthogonal to ``u`` (zero when the bend lies on the line, to 1e-5 relative). Both
    are the same combinations of ``θb − θ0`` and ``θ1 − θ0`` in every float entry, BN
    statistics included, so ``surface(model, θ0, u, v, xs, ys, data)`` draws the
    plane and passes through ``θ(t)`` at its :func:`plane_coordinates`.
    """
    u, v, _ = _plane(model, curve)
    return u, v


def plane_coordinates(model: nn.Module, curve: Curve, ts) -> pd.DataFrame:
    """Coordinates ``(x, y)`` in the :func:`plane_basis` of the curve points ``θ(t)`` and of
    ``θ0, θb, θ1``.

    ``θ0`` is at (0, 0), ``θ1`` at ``(‖θ1 − θ0‖, 0)``, the bend at ``y ≥ 0``; distances
    in the plane are distances over the float parameters. Returns columns
    ``point, t, x, y``: one ``"curve"`` row per ``t``, then ``"start"``, ``"bend"``
    (``t`` NaN) and ``"end"``.
    """
    _, _, m = _plane(model, curve)
    t = _values(ts)
    xy = curve.coefficients(t) @ m.T
    anchors = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]) @ m.T  # (c_b, c_1) of θ0, θb, θ1
    return pd.DataFrame({"point": ["curve"] * len(t) + ["start", "bend", "end"],
                         "t": np.concatenate([t, [0.0, np.nan, 1.0]]),
                         "x": np.concatenate([xy[:, 0], anchors[:, 0]]),
                         "y": np.concatenate([xy[:, 1], anchors[:, 1]])})


# --------------------------------------------------------------------------- training


def _bn_train(model: nn.Module) -> None:
    """Inside ``eval_mode(model)``: the BatchNorm layers back in train mode (batch statistics)."""
    for m in _bn_modules(model):
        m.train()


def _epoch(step, x: torch.Tensor, y: torch.Tensor, batch_size: int, g: torch.Generator, *,
           skip_single: bool) -> tuple[list[torch.Tensor], list[float]]:
    """One epoch: a random order of the samples from ``g``, and per minibatch a ``t ~ U(0, 1)``
    from ``g`` and ``step(t, xb, yb)`` (its loss). A one-sample batch is skipped (its ``t``
    still drawn) when ``skip_single``: BatchNorm cannot train on it."""
    losses, ts = [], []
    for idx in torch.randperm(int(y.shape[0]), generator=g).split(batch_size):
        t = float(torch.rand((), generator=g, dtype=torch.float64))
        if skip_single and len(idx) < 2:
            continue
        idx = idx.to(y.device)
        losses.append(step(t, x[idx], y[idx]))
        ts.append(t)
    return losses, ts


def train_curve(model: nn.Module, start: State, end: State, data: tuple[torch.Tensor, torch.Tensor], *,
                kind: str = "bezier", epochs: int, lr: float, momentum: float = 0.9, weight_decay: float = 0.0,
                batch_size: int = 128, seed: int = 0, loss_fn: LossFn | None = None,
                device: str | torch.device | None = None, progress: bool = False) -> tuple[Curve, pd.DataFrame]:
    """Fit the bend of a curve from ``start`` to ``end`` (Garipov et al. 2018): ``min_θb E_t L(θ(t))``.

    The bend starts at the midpoint (the straight line) and its trainable float
    parameters are trained by SGD (``lr``, ``momentum``, ``weight_decay``); each
    minibatch of ``data`` (an ``(inputs, targets)`` pair) draws its own ``t ~ U(0, 1)``
    and the loss ``L(θ(t))`` reaches the bend through its weight in ``θ(t)`` (Bezier
    ``2t(1−t)``, polychain ``2t`` / ``2 − 2t``), by ``torch.func.functional_call``.
    The epochs' minibatch orders and the ``t`` come from one ``torch.Generator``
    seeded with ``seed``: the same seed gives the same bend. The endpoints are never
    modified, nor is ``model`` (weights, buffers, modes).

    BatchNorm layers run in train mode (batch statistics) and every other module in
    eval mode (no dropout); the running statistics are not trained: the forward gets
    copies of ``start``'s buffers, and the bend keeps the midpoint's statistics, which
    describe no network: evaluate with ``bn="recompute"`` (:func:`evaluate_curve`'s
    default for BN models). A last minibatch of one sample is skipped for BN models.
    ``device``: where to train (default the model's). Returns the :class:`Curve`
    (``start``/``end`` copies, the bend on ``start``'s devices) and one history row per
    epoch: ``epoch, loss`` (mean minibatch loss), ``t_mean``.
    """
    from torch.func import functional_call

    _check_kind(kind)
    loss_fn = loss_fn or default_loss
    device = torch.device(device) if device is not None else model_device(model)
    like = model.state_dict()
    theta0 = {k: v.to(device) for k, v in copy_as(start, like, "start").items()}
    theta1 = {k: v.to(device) for k, v in copy_as(end, like, "end").items()}
    params = [n for n, _ in model.named_parameters() if theta0[n].is_floating_point()]
    moving = set(params)
    # buffers (copies: BN's train-mode forward updates them in place) and non-float entries
    fixed = {k: v.clone() for k, v in theta0.items() if k not in moving}
    bend = midpoint(theta0, theta1)
    trained = [n for n in trainable_names(model) if n in moving]
    for n in trained:
        bend[n] = bend[n].clone().requires_grad_(True)
    opt = torch.optim.SGD([bend[n] for n in trained], lr=lr, momentum=momentum, weight_decay=weight_decay)

    x = prepare_inputs(data[0], device, inputs_channels_last(model))
    y = data[1].to(device)
    g = torch.Generator().manual_seed(int(seed))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs * -(-int(y.shape[0]) // batch_size), desc=f"curve ({kind})", unit="step",
                   file=sys.stderr, mininterval=0.5 if sys.stderr.isatty() else 30.0, dynamic_ncols=True)

    def step(t: float, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        w = _weights(kind, t)
        point = {k: _combine(w, (theta0[k], bend[k], theta1[k])) for k in params}
        loss = loss_fn(functional_call(model, {**fixed, **point}, (xb,)), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if bar is not None:
            bar.update(1)
        return loss.detach()

    rows = []
    try:
        with eval_mode(model):
            _bn_train(model)
            for epoch in range(1, epochs + 1):
                losses, ts = _epoch(step, x, y, batch_size, g, skip_single=bool(_bn_modules(model)))
                rows.append({"epoch": epoch, "loss": float(torch.stack(losses).mean()) if losses else float("nan"),
                             "t_mean": float(np.mean(ts)) if ts else float("nan")})
    finally:
        if bar is not None:
            bar.close()
    curve = Curve(kind, {k: v.detach().clone() for k, v in start.items()},
                  {k: bend[k].detach().to(start[k].device, start[k].dtype, copy=True) for k in start},
                  {k: v.detach().clone() for k, v in end.items()})
    return curve, pd.DataFrame(rows, columns=["epoch", "loss", "t_mean"])


# --------------------------------------------------------------------------- evaluation


def _bn_mode(model: nn.Module, bn: str) -> str:
    """``"auto"``: ``"recompute"`` for a model with BatchNorm (the bend's stored statistics
    describe no network), ``"stored"`` otherwise."""
    if bn == "auto":
        return "recompute" if _bn_modules(model) else "stored"
    return bn


def evaluate_curve(model: nn.Module, curve: Curve, ts, data: Data, *, bn: str = "auto",
                   loss_fn: LossFn | None = None, batch_size: int | None = None,
                   points_per_batch: int | None = None, engine: str = "auto") -> pd.DataFrame:
    """Loss and accuracy at ``θ(t)`` for each ``t`` in ``ts``: columns ``t, loss, accuracy``.

    One :func:`~lossland.landscape.evaluate_points` call with origin ``θ0``, directions
    ``[θb − θ0, θ1 − θ0]`` and the :meth:`Curve.coefficients`. ``bn="auto"`` (default)
    is ``"recompute"`` (statistics re-estimated from ``data`` at every ``t``) when the
    model has BatchNorm, ``"stored"`` otherwise; other options as in
    :mod:`lossland.landscape`.
    """
    t = _values(ts)
    df = evaluate_points(model, curve.start, curve.directions(), curve.coefficients(t), data, loss_fn,
                         bn=_bn_mode(model, bn), engine=engine, batch_size=batch_size,
                         points_per_batch=points_per_batch)
    df.insert(0, "t", t)
    return df


def _curve_points(model: nn.Module, curve: Curve, ts) -> _Points:
    like = model.state_dict()
    return _Points(copy_as(curve.start, like, "start"),
                   [direction_as(d, like, f"direction {i}") for i, d in enumerate(curve.directions())],
                   torch.as_tensor(curve.coefficients(ts)))


def curve_table(model: nn.Module, curve: Curve, ts, splits: Mapping[str, Data], reference: str | State | None = None,
                *, bn: str = "auto", loss_fn: LossFn | None = None, batch_size: int | None = None,
                points_per_batch: int | None = None, engine: str = "auto") -> pd.DataFrame:
    """The curve against the straight line ``θ0 + t(θ1 − θ0)``, at the same ``ts``, on every split.

    Columns ``path`` (``"curve"``, ``"line"``), ``t``, ``split``, ``loss``,
    ``accuracy``, ``functional_distance`` (``sqrt(mean_x ‖softmax(θ_ref, x) −
    softmax(θ(t), x)‖²)``) and ``disagreement`` (the fraction of inputs whose
    predicted label differs from the reference's), im2016 Table 1's definitions.
    ``reference``: ``None``/``"start"`` (θ0), ``"end"`` or a state dict. ``bn`` as in
    :func:`evaluate_curve`; with ``"recompute"`` the reference's statistics are also
    re-estimated on each split.
    """
    t = _values(ts)
    bn = _bn_mode(model, bn)
    ref = curve.start if reference in (None, "start") else curve.end if reference == "end" else reference
    opts = dict(bn=bn, engine=engine, batch_size=batch_size, points_per_batch=points_per_batch)
    curves, lines = [], []
    for split, data in splits.items():
        batches = _materialize(data, model, batch_size)
        c = evaluate_curve(model, curve, t, batches, loss_fn=loss_fn, **opts)
        fd = _functional_table(model, _curve_points(model, curve, t), ref, batches, bn=bn, engine=engine,
                               points_per_batch=points_per_batch)
        c["functional_distance"], c["disagreement"] = fd[:, 0], fd[:, 1]
        line = interpolate(model, curve.start, curve.end, t, batches, loss_fn, **opts).rename(columns={"alpha": "t"})
        line_fd = functional_distance(model, curve.start, curve.end, t, batches, reference=ref, **opts)
        line["functional_distance"] = line_fd["functional_distance"].to_numpy()
        line["disagreement"] = line_fd["disagreement"].to_numpy()
        curves.append(c.assign(path="curve", split=split))
        lines.append(line.assign(path="line", split=split))
    out = pd.concat(curves + lines, ignore_index=True)
    return out[["path", "t", "split", "loss", "accuracy", "functional_distance", "disagreement"]]


def barrier(path, ts=None) -> float:
    """The loss barrier of a path: ``max_t [L(t) − ((1−t)·L(0) + t·L(1))]`` (Garipov; Frankle).

    ``path`` is a DataFrame with columns ``t`` (or ``alpha``) and ``loss``, one path
    on one split (e.g. a :func:`curve_table` slice), or a sequence of losses at ``ts``
    (default evenly spaced on [0, 1]). The chord runs between the path's first and
    last ``t`` (normally 0 and 1). Never negative: the ends themselves give 0.
    """
    if isinstance(path, pd.DataFrame):
        ts = path["t" if "t" in path else "alpha"].to_numpy(np.float64)
        losses = path["loss"].to_numpy(np.float64)
    else:
        losses = _values(path)
        ts = np.linspace(0.0, 1.0, len(losses)) if ts is None else _values(ts)
    if len(losses) != len(ts) or len(ts) < 2:
        raise ValueError("barrier needs at least two (t, loss) pairs of equal length")
    if len(np.unique(ts)) != len(ts):
        raise ValueError("repeated t: pass one path on one split at a time")
    i = np.argsort(ts)
    ts, losses = ts[i], losses[i]
    chord = losses[0] + (ts - ts[0]) / (ts[-1] - ts[0]) * (losses[-1] - losses[0])
    return float(np.max(losses - chord))
