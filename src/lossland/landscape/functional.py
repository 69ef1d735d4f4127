"""Functional distance along a line: how far the outputs move, not the loss (im2016 Table 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..evaluation import Data, eval_mode, predictions, sample_mean
from ..state import State, copy_as, diff, direction_as
from .batches import _materialize
from .batchnorm import _bn_modules, _recompute_bn
from .engines import _evaluate
from .lines import _values
from .points import _Points


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Softmax outputs; ``[1 − σ, σ]`` for a one-column (binary) output."""
    if logits.dim() == 2 and logits.shape[1] == 1:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=1)
    return F.softmax(logits, dim=1)


def _functional_reducer(logits, y, ref_probs, ref_labels):
    p = probabilities(logits)
    # per sample (per token of a sequence: the mean over its tokens), summed over the batch
    return torch.stack([sample_mean((p - ref_probs).pow(2).sum(1)).sum(),
                        sample_mean(predictions(logits) != ref_labels).sum()])


def _reference_outputs(model: nn.Module, ref: State, batches, bn: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The reference's softmax outputs and predicted labels on each batch (the reducer's extras);
    with ``bn="recompute"`` its BN statistics are re-estimated on ``batches`` first."""
    like = model.state_dict()
    saved = {k: v.clone() for k, v in like.items()}
    try:
        with torch.no_grad(), eval_mode(model):
            model.load_state_dict(copy_as(ref, like, "reference"))
            if bn == "recompute":
                _recompute_bn(model, _bn_modules(model), batches)
            extras = []
            for x, _ in batches:
                logits = model(x)
                extras.append((probabilities(logits), predictions(logits)))
    finally:
        model.load_state_dict(saved)
    return extras


def _functional_table(model: nn.Module, pts: _Points, ref: State, batches, *, bn: str = "stored",
                      engine: str = "auto", points_per_batch: int | None = None, fuse: bool = True) -> np.ndarray:
    """(points, 2): functional distance and label disagreement of every point of ``pts`` to the
    state ``ref`` over ``batches`` (materialised), in one engine pass."""
    extras = _reference_outputs(model, ref, batches, bn)
    n = sum(int(y.shape[0]) for _, y in batches)
    sums = _evaluate(model, pts, batches, _functional_reducer, extras, engine=engine, bn=bn,
                     points_per_batch=points_per_batch, fuse=fuse).numpy() / n
    return np.stack([np.sqrt(sums[:, 0]), sums[:, 1]], axis=1)


def functional_distance(model: nn.Module, start: State, end: State, alphas, data: Data, *,
                        reference: str | State = "start", **options) -> pd.DataFrame:
    """Functional distance and label disagreement along ``start + α(end − start)`` (im2016 Table 1).

    At each ``α``: ``sqrt(mean_x ‖F(x, θ_ref) − F(x, θ(α))‖²)`` with ``F`` the
    softmax output, and the fraction of inputs whose predicted label differs from
    the reference's. ``reference`` is ``"start"`` (im2016: the first algorithm's
    solution), ``"end"`` or a state dict. Targets in ``data`` are not used.
    Returns ``alpha, functional_distance, disagreement``.
    """
    options.pop("loss_fn", None)
    like = model.state_dict()
    a = _values(alphas)
    ref = start if reference == "start" else end if reference == "end" else reference
    batches = _materialize(data, model, options.get("batch_size"))
    pts = _Points(copy_as(start, like, "start"), [direction_as(diff(end, start), like, "end − start")],
                  torch.as_tensor(a)[:, None])
    res = _functional_table(model, pts, ref, batches, bn=options.get("bn", "stored"),
                            engine=options.get("engine", "auto"), points_per_batch=options.get("points_per_batch"),
                            fuse=options.get("fuse", True))
    return pd.DataFrame({"alpha": a, "functional_distance": res[:, 0], "disagreement": res[:, 1]})
