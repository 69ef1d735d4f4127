"""Sharpness against a reparametrisation's scale: the measurements and their predictions.

:func:`reparametrization_sweep` applies a function-preserving transform
``transform(model, α)`` (:func:`lossland.alpha_scale`, :func:`lossland.bn_scale`,
:func:`lossland.weight_normalize`, ...) at every ``α`` and measures, on the same
data: the largest change of the outputs, the test loss and accuracy, the top Hessian
eigenvalue (Lanczos), the trace (deflated Hutchinson by default), Keskar's ε-sharpness
(box) and Dinh's ε-ball sharpness. The transform scales known parameter blocks by known
powers of ``α`` (``blocks``: ``{label: (names, power)}``, the rest unchanged), so from the
blocks of the ``α = 1`` model it predicts

* the trace exactly: ``tr H(α) = Σ_B tr(H_BB) α^{p_B}`` (the diagonal blocks scale,
  cross blocks do not enter the trace);
* a lower bound of the top eigenvalue: ``λ_max H(α) ≥ max_B λ_max(H_BB) α^{p_B}``
  (interlacing), which grows like ``α²`` or ``α⁻²`` without bound.

:func:`input_reparametrization_sweep` is the input-space counterpart (Dinh §5.2): the
input-gradient norms of the same prediction function in other input coordinates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..curvature.blocks import HessianBlock, parameter_index
from ..curvature.operator import HessianOperator
from ..curvature.report import settings_from_config
from ..curvature.sharpness import epsilon_sharpness
from ..evaluation import Data, LossFn, default_loss, eval_mode, evaluate, model_device, predictions
from .homogeneous import alpha_scale, alpha_scale_blocks, bn_scale, bn_scale_blocks, check_alpha_pair, check_bn_layer
from .inputs import ReparametrizedInput, input_gradient_norms, scaling, standardization, whitening
from .weight_norm import weight_norm_blocks, weight_normalize

__all__ = ["SweepSettings", "TRANSFORMS", "named_transform", "reparametrization_sweep", "input_reparametrization_sweep",
           "INPUT_TRANSFORMS"]

Blocks = Mapping[str, tuple[Sequence[str], int]]
INPUT_TRANSFORMS = ("standardize", "whiten")
#: the transforms :func:`named_transform` knows
TRANSFORMS = ("alpha_scale", "bn_scale", "weight_norm")


def named_transform(model: nn.Module, name: str, layers: Any = None
                    ) -> tuple[Callable[[nn.Module, float], nn.Module], dict[str, tuple[list[str], int]]]:
    """``(transform(model, α), blocks)`` for :func:`reparametrization_sweep`: ``"alpha_scale"``
    (``layers``: a pair), ``"bn_scale"`` (``layers``: one layer feeding a BatchNorm) or
    ``"weight_norm"`` (``layers`` ignored; ``α`` scales ``v``). The layers are checked here."""
    if name == "alpha_scale":
        check_alpha_pair(model, layers)  # fails here, before any sweep; each call checks again (cheap)
        return (lambda m, a: alpha_scale(m, a, layers)), alpha_scale_blocks(model, layers)
    if name == "bn_scale":
        check_bn_layer(model, layers)
        return (lambda m, a: bn_scale(m, a, layers)), bn_scale_blocks(model, layers)
    if name == "weight_norm":
        return (lambda m, a: weight_normalize(m, a)), weight_norm_blocks(weight_normalize(model, 1.0))
    raise ValueError(f"unknown transform {name!r}; allowed: {', '.join(TRANSFORMS)}")


@dataclass(frozen=True)
class SweepSettings:
    """What each point of a :func:`reparametrization_sweep` computes."""

    tol: float = 1e-3                 # Lanczos: relative change of the top Ritz value to stop at
    max_iter: int = 30                # Lanczos: at most this many products
    trace_probes: int = 10            # products of each trace estimate
    trace_method: str = "deflated"    # deflated | hutchinson | exact
    sharpness_epsilon: float | None = 1e-3   # Keskar's box C_ε = {|z_i| ≤ ε(|θ_i|+1)} (None: skip)
    ball_radius: float | None = 1e-2         # Dinh's Euclidean ball ‖z‖ ≤ radius (None: skip)
    sharpness_steps: int = 3          # ascent steps of each sharpness
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> "SweepSettings":
        return settings_from_config(cls, cfg)


@torch.no_grad()
def _outputs(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    device = model_device(model)
    with eval_mode(model):
        return torch.cat([model(x[s:s + batch_size].to(device)) for s in range(0, x.shape[0], batch_size)])


def _quality(logits: torch.Tensor, targets: torch.Tensor, loss_fn: LossFn | None) -> dict[str, float]:
    """Mean loss and accuracy from outputs already computed (one forward serves the output
    change and the test metrics)."""
    targets = targets.to(logits.device)
    loss = (loss_fn or default_loss)(logits, targets)
    return {"loss": float(loss), "accuracy": float((predictions(logits) == targets).double().mean())}


def block_spectra(model: nn.Module, data: Data, blocks: Blocks, settings: SweepSettings = SweepSettings(),
                  loss_fn: LossFn | None = None) -> pd.DataFrame:
    """Top eigenvalue and trace of each block of ``blocks`` and of the rest of the
    parameters (label ``"rest"``, power 0): ``block, power, n_params, top_eigenvalue,
    trace, trace_stderr``."""
    op = HessianOperator(model, data, loss_fn)
    s = settings
    chosen: list[tuple[str, torch.Tensor, int]] = []
    taken = torch.zeros(op.dim, dtype=torch.bool)
    for label, (names, power) in blocks.items():
        idx = parameter_index(op, names)
        taken[idx] = True
        chosen.append((label, idx, int(power)))
    if not taken.all():
        chosen.append(("rest", torch.nonzero(~taken)[:, 0], 0))
    rows = []
    for k, (label, idx, power) in enumerate(chosen):
        block = HessianBlock(op, idx)
        top = float(block.eigenvalues(1, "largest", tol=s.tol, max_iter=s.max_iter, seed=s.seed)[0])
        tr = block.trace(s.trace_probes, s.trace_method, seed=s.seed + 2 + k)
        rows.append({"block": label, "power": power, "n_params": block.dim, "top_eigenvalue": top,
                     "trace": float(tr.estimate), "trace_stderr": float(tr.stderr)})
    return pd.DataFrame(rows)


def measure_point(model: nn.Module, data: Data, test_data: Data, reference_outputs: torch.Tensor,
                  settings: SweepSettings = SweepSettings(), loss_fn: LossFn | None = None) -> dict[str, float]:
    """One point of a sweep (see the module docstring): the columns of its row."""
    t0 = time.perf_counter()
    s = settings
    op = HessianOperator(model, data, loss_fn)
    top = op.eigenvalues(1, "largest", tol=s.tol, max_iter=s.max_iter, seed=s.seed)
    trace = op.trace(s.trace_probes, s.trace_method, seed=s.seed + 1)
    box = ball = float("nan")
    if s.sharpness_epsilon is not None:
        box = epsilon_sharpness(model, op, s.sharpness_epsilon, loss_fn, steps=s.sharpness_steps)
    if s.ball_radius is not None:
        ball = epsilon_sharpness(model, op, s.ball_radius, loss_fn, steps=s.sharpness_steps, region="ball")
    logits = _outputs(model, test_data[0])
    diff = (logits.double() - reference_outputs.double()).abs().max()
    fit = evaluate(model, op.batches, loss_fn=loss_fn)
    test = _quality(logits, test_data[1], loss_fn)
    return {
        "max_output_diff": float(diff), "rel_output_diff": float(diff / reference_outputs.double().abs().max()),
        "loss": fit["loss"], "accuracy": fit["accuracy"], "test_loss": test["loss"], "test_accuracy": test["accuracy"],
        "top_eigenvalue": float(top[0]), "trace": float(trace.estimate), "trace_stderr": float(trace.stderr),
        "epsilon_sharpness": float(box), "ball_sharpness": float(ball),
        "n_params": int(op.dim), "n_samples": int(op.n), "seconds": time.perf_counter() - t0,
    }


def reparametrization_sweep(model: nn.Module, transform: Callable[[nn.Module, float], nn.Module],
                            alphas: Sequence[float], data: Data, test_data: tuple[torch.Tensor, torch.Tensor], *,
                            blocks: Blocks | None = None, settings: SweepSettings = SweepSettings(),
                            loss_fn: LossFn | None = None, progress: Any = None) -> dict[str, pd.DataFrame]:
    """Measure ``transform(model, α)`` at every ``α`` of ``alphas`` (the Hessian on ``data``,
    the outputs, loss and accuracy on ``test_data``, a tensor pair).

    ``blocks`` (``{label: (parameter names of transform(model, 1), power of α)}``) gives the
    predictions. Returns ``{"sweep": one row per α, "blocks": the α = 1 blocks}``; the sweep's
    columns: ``alpha, max_output_diff`` (the largest ``|f_α(x) − f(x)|`` over the test
    inputs and outputs), ``rel_output_diff`` (the same over ``max |f(x)|``), ``loss, accuracy``
    (on ``data``), ``test_loss, test_accuracy, top_eigenvalue, trace, trace_stderr,
    epsilon_sharpness`` (Keskar box, %), ``ball_sharpness`` (Dinh ball, %), ``predicted_trace,
    top_eigenvalue_bound, n_params, n_samples, seconds``. ``progress`` (a tqdm bar or
    anything with ``update()``) advances once per α. ``model`` is not changed.
    """
    reference_outputs = _outputs(model, test_data[0])
    block_table = block_spectra(transform(model, 1.0), data, blocks or {}, settings, loss_fn)
    rows = []
    for alpha in alphas:
        row = {"alpha": float(alpha)}
        row.update(measure_point(transform(model, float(alpha)), data, test_data, reference_outputs, settings,
                                 loss_fn))
        rows.append(row)
        if progress is not None:
            progress.update()
    sweep = pd.DataFrame(rows)
    a = sweep["alpha"].to_numpy(float)
    powers = block_table["power"].to_numpy(float)[None, :]
    sweep["predicted_trace"] = (block_table["trace"].to_numpy(float)[None, :] * a[:, None] ** powers).sum(1)
    sweep["top_eigenvalue_bound"] = (block_table["top_eigenvalue"].to_numpy(float)[None, :]
                                     * a[:, None] ** powers).max(1)
    return {"sweep": sweep, "blocks": block_table}


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra = pd.Series(a.double().cpu().numpy()).rank().to_numpy()
    rb = pd.Series(b.double().cpu().numpy()).rank().to_numpy()
    return float(np.corrcoef(ra, rb)[0, 1])


def input_reparametrization_sweep(model: nn.Module, x: torch.Tensor, fit_x: torch.Tensor, scales: Sequence[float],
                                  transforms: Sequence[str] = INPUT_TRANSFORMS, *, whiten_eps: float = 1e-2
                                  ) -> dict[str, pd.DataFrame]:
    """The prediction function of ``model`` in other input coordinates ``u = T(x − μ)``:
    ``u = c·x`` for each ``c`` of ``scales``, and the ``transforms`` (``standardize``:
    per feature, ``whiten``: ZCA with ``whiten_eps``) fitted on ``fit_x``.

    Returns ``{"input": one row per transform, "examples": one row per example and
    transform}``. ``input`` columns: ``transform, alpha`` (``c``; 1 otherwise),
    ``max_output_diff`` (``max |g(u) − f(x)|``), ``rel_output_diff`` (the same over
    ``max |f(x)|``), ``mean_grad_norm, median_grad_norm`` (of
    ``‖∇_u g_k‖``, :func:`lossland.reparam.input_gradient_norms`),
    ``predicted_mean_grad_norm`` (``u = c·x``: the identity's divided by ``c``),
    ``ratio_min, ratio_max`` (of ``‖∇_u g‖ / ‖∇_x f‖`` over the examples),
    ``rank_correlation`` (Spearman, per-example norms against the identity's).
    ``examples`` columns: ``transform, example, grad_norm``.
    """
    for t in transforms:
        if t not in INPUT_TRANSFORMS:
            raise ValueError(f"input transform {t!r} is unknown; allowed: {', '.join(INPUT_TRANSFORMS)}")
    base, reference = (t.double() for t in input_gradient_norms(model, x, return_outputs=True))
    top = float(reference.abs().max())
    rows = [{"transform": "identity", "alpha": 1.0, "max_output_diff": 0.0, "rel_output_diff": 0.0,
             "mean_grad_norm": float(base.mean()), "median_grad_norm": float(base.median()),
             "predicted_mean_grad_norm": float(base.mean()), "ratio_min": 1.0, "ratio_max": 1.0,
             "rank_correlation": 1.0}]
    examples = [pd.DataFrame({"transform": "identity", "example": np.arange(len(base)),
                              "grad_norm": base.cpu().numpy()})]
    cases = [("scale", float(c), scaling(x, c)) for c in scales]
    cases += [(t, 1.0, standardization(fit_x) if t == "standardize" else whitening(fit_x, whiten_eps))
              for t in transforms]
    for name, c, (matrix, mean, inverse) in cases:
        g = ReparametrizedInput(model, matrix, mean, inverse).to(model_device(model))
        u = g.encode(x.to(model_device(model)))
        norms, outputs = (t.double() for t in input_gradient_norms(g, u, return_outputs=True))
        ratio = norms / base
        diff = float((outputs - reference).abs().max())
        rows.append({"transform": name, "alpha": c, "max_output_diff": diff, "rel_output_diff": diff / top,
                     "mean_grad_norm": float(norms.mean()), "median_grad_norm": float(norms.median()),
                     "predicted_mean_grad_norm": float(base.mean()) / c if name == "scale" else float("nan"),
                     "ratio_min": float(ratio.min()), "ratio_max": float(ratio.max()),
                     "rank_correlation": _spearman(norms, base)})
        if name != "scale":
            examples.append(pd.DataFrame({"transform": name, "example": np.arange(len(norms)),
                                          "grad_norm": norms.cpu().numpy()}))
    return {"input": pd.DataFrame(rows), "examples": pd.concat(examples, ignore_index=True)}
