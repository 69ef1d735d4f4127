"""Directions of a landscape: Gaussian random directions with Li et al.'s filter
normalisation, and the principal directions of a training trajectory."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..state import State, flatten, unflatten

NORMALIZATIONS = ("filter", "layer", "none")


def normalize_direction(direction: State, weights: State, normalization: str = "filter",
                        ignore: str | None = "biasbn") -> dict[str, torch.Tensor]:
    """Rescale ``direction`` to the scale of ``weights`` (Li et al. 2018), returning a new dict.

    * ``"filter"``: each filter (slice along dim 0: a conv output channel, a
      linear layer's row) gets the norm of the same filter of the weights;
    * ``"layer"``: each tensor gets the norm of the weight tensor;
    * ``"none"``: unchanged.

    Tensors with one dimension or fewer (biases, BN scales and shifts) are set to
    zero with ``ignore="biasbn"`` (Li et al.'s default: the plane then leaves them
    at the origin); with ``ignore=None`` they take the weights' values
    (Li et al.'s code for that case: ``d.copy_(w)``), unless ``normalization="none"``.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if ignore not in ("biasbn", None):
        raise ValueError(f"ignore must be 'biasbn' or None, got {ignore!r}")
    out = {}
    for k, d in direction.items():
        w = weights[k].to(d.device, d.dtype)
        if d.dim() <= 1 and normalization != "none":
            out[k] = torch.zeros_like(d) if ignore == "biasbn" else w.clone()
        elif d.dim() <= 1 and ignore == "biasbn":
            out[k] = torch.zeros_like(d)
        elif normalization == "filter":
            dn = d.reshape(d.shape[0], -1).norm(dim=1)
            wn = w.reshape(w.shape[0], -1).norm(dim=1)
            out[k] = d * (wn / (dn + 1e-10)).view(-1, *([1] * (d.dim() - 1)))
        elif normalization == "layer":
            out[k] = d * (w.norm() / (d.norm() + 1e-10))
        else:
            out[k] = d.clone()
    return out


def random_direction(model: nn.Module, normalization: str = "filter", seed: int = 0, *,
                     ignore: str | None = "biasbn", weights: State | None = None
                     ) -> dict[str, torch.Tensor]:
    """A Gaussian random direction over the parameters of ``model``, normalised.

    ``weights`` (default: the model's current state) sets the scale; see
    :func:`normalize_direction` for ``normalization`` and ``ignore``. Buffers get
    no direction (they stay at the origin's values). The draw uses a CPU
    generator seeded with ``seed`` (the same direction on every device; use two
    seeds for a plane) and is returned on the model's device.
    """
    weights = weights if weights is not None else model.state_dict()
    g = torch.Generator().manual_seed(int(seed))
    raw = {}
    for name, p in model.named_parameters():
        raw[name] = torch.randn(p.shape, generator=g, dtype=torch.float32).to(p.device, p.dtype)
    return normalize_direction(raw, weights, normalization, ignore)


@dataclass
class PCADirections:
    """Top-2 principal directions of a trajectory and the checkpoints' coordinates.

    ``dir_x``/``dir_y`` are unit-norm (over ``names``) directions as state dicts;
    ``coords`` has columns ``index, x, y`` (projection of ``θ_i − θ_final``);
    ``explained_variance_ratio`` is each direction's share of the total variance.
    """

    dir_x: dict[str, torch.Tensor]
    dir_y: dict[str, torch.Tensor]
    coords: pd.DataFrame
    explained_variance: np.ndarray
    explained_variance_ratio: np.ndarray
    names: list[str]


def _is_stat(name: str) -> bool:
    return name.endswith(("running_mean", "running_var", "num_batches_tracked"))


@torch.no_grad()
def pca_directions(checkpoints: Sequence[State], final: State | None = None, *,
                   names: Iterable[str] | None = None, center: bool = True) -> PCADirections:
    """PCA of a training trajectory (Li et al. 2018, Sec. 7).

    The rows ``θ_i − θ_final`` (``final`` defaults to the last checkpoint) over the
    entries ``names`` (default: every float entry but BN running statistics) are
    decomposed; the two leading right singular vectors (after centering the rows
    when ``center``, as sklearn's PCA in Li et al.'s code) are the directions and
    each checkpoint's coordinates are its projections on them. For a surface
    around the final point: ``surface(model, final, p.dir_x, p.dir_y, ...)``. A trajectory
    with non-finite entries (a diverged run) gives NaN directions, coordinates and variances.
    """
    if len(checkpoints) < 2:
        raise ValueError("pca_directions needs at least 2 checkpoints")
    final = final if final is not None else checkpoints[-1]
    keys = list(names) if names is not None else \
        [k for k, v in final.items() if v.is_floating_point() and not _is_stat(k)]
    ref = flatten(final[k].double().cpu() for k in keys)
    m = torch.stack([flatten(c[k].double().cpu() for k in keys) - ref for c in checkpoints])
    mc = m - m.mean(0, keepdim=True) if center else m
    # the small Gram matrix instead of a (checkpoints × parameters) SVD
    gram = mc @ mc.T
    if not torch.isfinite(gram).all():  # a diverged trajectory: no plane, NaN directions and coordinates
        nan_dirs = [{k: torch.full_like(final[k], float("nan")) for k in keys} for _ in range(2)]
        coords = np.full(len(checkpoints), np.nan)
        return PCADirections(*nan_dirs, pd.DataFrame({"index": np.arange(len(checkpoints)), "x": coords, "y": coords}),
                             np.full(2, np.nan), np.full(2, np.nan), keys)
    evals, evecs = torch.linalg.eigh(gram)
    order = torch.argsort(evals, descending=True)
    evals, evecs = evals[order].clamp_min(0), evecs[:, order]
    dirs = []
    for j in range(2):
        s = math.sqrt(float(evals[j])) if j < len(evals) else 0.0
        v = mc.T @ evecs[:, j] / s if s > 1e-12 else torch.zeros_like(ref)
        # sign: the first checkpoint (e.g. the init) on the positive side
        if float(m[0] @ v) < 0:
            v = -v
        dirs.append(v)
    coords = torch.stack([m @ dirs[0], m @ dirs[1]], 1).numpy()
    var = evals.numpy() / max(len(checkpoints) - (1 if center else 0), 1)
    total = var.sum()
    ratio = var[:2] / total if total > 0 else np.zeros(2)
    out_dirs = [{k: t.to(final[k].device, final[k].dtype) for k, t in unflatten(v, final, keys).items()}
                for v in dirs]
    return PCADirections(out_dirs[0], out_dirs[1],
                         pd.DataFrame({"index": np.arange(len(checkpoints)), "x": coords[:, 0],
                                       "y": coords[:, 1]}),
                         var[:2], ratio, keys)
