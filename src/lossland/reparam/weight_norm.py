"""Weight normalisation as a reparametrisation of a trained model (Dinh et al. 2017, §5.1).

``w = g · v / ‖v‖`` (Salimans & Kingma 2016; ``torch.nn.utils.parametrizations.weight_norm``,
one ``g`` per output unit): the function depends on ``v`` only through its direction, so
``v → c·v`` changes nothing the model computes while the Hessian block of ``v`` becomes
the original one divided by ``c²`` — every minimum is equivalent to an arbitrarily sharp
and an arbitrarily flat one in these parameters.
"""

from __future__ import annotations

import copy
from typing import Iterable

import torch
from torch import nn
from torch.nn.utils import parametrizations

from .homogeneous import LAYER_TYPES, layer_names

__all__ = ["weight_normalize", "weight_norm_blocks"]


def weight_normalize(model: nn.Module, scale: float = 1.0, layers: Iterable[int | str] | None = None) -> nn.Module:
    """A copy of ``model`` whose ``Linear``/``Conv`` weights (all, or ``layers``: indices into
    :func:`lossland.reparam.layer_names` or names) are parametrised as ``g · v/‖v‖`` with
    ``g = ‖w‖`` per output unit and ``v = scale · w``: the same function for any ``scale > 0``.
    The parameters are then ``<layer>.parametrizations.weight.original0`` (``g``) and
    ``...original1`` (``v``)."""
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    names = layer_names(model)
    chosen = names if layers is None else [names[k] if isinstance(k, int) else k for k in layers]
    out = copy.deepcopy(model)
    for name in chosen:
        module = out.get_submodule(name)
        if not isinstance(module, LAYER_TYPES):
            raise ValueError(f"{name} is not a Linear/Conv layer; allowed: {', '.join(names)}")
        parametrizations.weight_norm(module, "weight", dim=0)
        with torch.no_grad():
            module.parametrizations.weight.original1.mul_(scale)
    return out


def weight_norm_blocks(model: nn.Module) -> dict[str, tuple[list[str], int]]:
    """The Hessian block of a weight-normalised model that ``v → c·v`` rescales: every
    direction ``v`` (``original1``), by ``c^-2``."""
    return {"v": ([n for n, p in model.named_parameters() if n.endswith("parametrizations.weight.original1")
                   and p.requires_grad], -2)}
