"""State dicts as points of a vector space: the one module of state-dict arithmetic.

A *state* is a ``{name: tensor}`` mapping as returned by ``model.state_dict()``.
Arithmetic on states applies to floating-point entries; integer buffers (such
as BatchNorm's ``num_batches_tracked``) have no direction. A *direction* may
hold a subset of a model's names (a missing name is a zero direction).
"""

from __future__ import annotations

import functools
from typing import Iterable, Mapping

import torch
from torch import nn

State = Mapping[str, torch.Tensor]


def float_param_names(model: nn.Module, state: State) -> list[str]:
    """The names of ``model``'s parameters that are floating-point entries of ``state``
    (in ``model.named_parameters()`` order)."""
    return [n for n, _ in model.named_parameters() if n in state and state[n].is_floating_point()]


def trainable_names(model: nn.Module) -> list[str]:
    """Names of the trainable parameters, in ``model.named_parameters()`` order."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def diff(a: State, b: State) -> dict[str, torch.Tensor]:
    """``a − b`` over the floating-point entries of ``a``."""
    return {k: a[k] - b[k] for k in a if a[k].is_floating_point()}


def _root_sum(squares: list[torch.Tensor]) -> float:
    # added one by one in float64, in the order of the names, with one read-back
    return float(functools.reduce(torch.add, squares).sqrt()) if squares else 0.0


def distance(a: State, b: State, names: Iterable[str]) -> float:
    """Euclidean distance between the entries ``names`` of two states (in float64)."""
    return _root_sum([(a[k].detach().double() - b[k].detach().double()).pow(2).sum() for k in names])


def norm(a: State, names: Iterable[str]) -> float:
    """Euclidean norm of the entries ``names`` of a state (in float64)."""
    return _root_sum([a[k].detach().double().pow(2).sum() for k in names])


def flatten(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """The tensors, each flattened, concatenated into one detached vector."""
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def unflatten(vector: torch.Tensor, like: State, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Split ``vector`` into views shaped like ``like[name]`` for each of ``names`` (the
    inverse of :func:`flatten`; differentiable)."""
    keys = list(names)
    parts = vector.split([like[k].numel() for k in keys])
    return {k: p.view(like[k].shape) for k, p in zip(keys, parts)}


def copy_as(state: State, like: State, what: str = "state") -> dict[str, torch.Tensor]:
    """A copy of ``state`` on the devices and dtypes of ``like``, which must have the same
    names (a ``KeyError`` naming ``what`` otherwise). Copies: states often share storage
    with a model that is about to be overwritten."""
    missing = set(like) - set(state)
    extra = set(state) - set(like)
    if missing or extra:
        raise KeyError(f"{what} does not match the model's state dict: "
                       f"missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
    return {k: state[k].detach().to(like[k].device, like[k].dtype, copy=True) for k in like}


def direction_as(direction: State, like: State, what: str = "direction") -> dict[str, torch.Tensor]:
    """A copy of the entries of ``direction`` that are floating-point in ``like``, on its
    devices and dtypes; names ``like`` lacks are a ``KeyError`` naming ``what``."""
    extra = set(direction) - set(like)
    if extra:
        raise KeyError(f"{what} has names the model lacks: {sorted(extra)[:5]}")
    return {k: v.detach().to(like[k].device, like[k].dtype, copy=True) for k, v in direction.items()
            if like[k].is_floating_point()}
