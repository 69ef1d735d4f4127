"""Parameters as vectors and state dicts as points of a vector space.

A *state* is a ``{name: tensor}`` mapping as returned by ``model.state_dict()``.
Arithmetic on states applies to floating-point entries; integer buffers (such
as BatchNorm's ``num_batches_tracked``) are carried over from the first operand.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import torch
from torch import nn

State = Mapping[str, torch.Tensor]


def parameter_names(model: nn.Module) -> list[str]:
    """Names of the trainable parameters, in ``model.named_parameters()`` order."""
    return [n for n, p in model.named_parameters() if p.requires_grad]


def flatten(state: State, names: Iterable[str] | None = None) -> torch.Tensor:
    """Concatenate the entries ``names`` (default: all floating entries) into one vector."""
    keys = list(names) if names is not None else [k for k, v in state.items() if v.is_floating_point()]
    return torch.cat([state[k].reshape(-1) for k in keys]) if keys else torch.zeros(0)


def unflatten(vector: torch.Tensor, like: State, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Split ``vector`` into tensors shaped like ``like[name]`` for each of ``names``."""
    out, offset = {}, 0
    for k in names:
        n = like[k].numel()
        out[k] = vector[offset:offset + n].view_as(like[k])
        offset += n
    if offset != vector.numel():
        raise ValueError(f"vector has {vector.numel()} entries, the names cover {offset}")
    return out


def parameters_vector(model: nn.Module) -> torch.Tensor:
    """The trainable parameters of ``model`` as one detached vector."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters() if p.requires_grad])


def clone_state(state: State, device: str | torch.device | None = None) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().to(device) if device else v.detach().clone() for k, v in state.items()}


def _combine(a: State, b: State, fn) -> dict[str, torch.Tensor]:
    if a.keys() != b.keys():
        raise KeyError(f"states differ in keys: {sorted(set(a) ^ set(b))}")
    return {k: fn(a[k], b[k]) if a[k].is_floating_point() else a[k].clone() for k in a}


def add(a: State, b: State) -> dict[str, torch.Tensor]:
    return _combine(a, b, torch.add)


def sub(a: State, b: State) -> dict[str, torch.Tensor]:
    return _combine(a, b, torch.sub)


def scale(a: State, factor: float) -> dict[str, torch.Tensor]:
    return {k: v * factor if v.is_floating_point() else v.clone() for k, v in a.items()}


def lerp(a: State, b: State, alpha: float) -> dict[str, torch.Tensor]:
    """``a + alpha·(b − a)`` entry by entry (``alpha`` may lie outside [0, 1])."""
    return _combine(a, b, lambda x, y: x + alpha * (y - x))


def distance(a: State, b: State, names: Iterable[str]) -> float:
    """Euclidean distance between the entries ``names`` of two states."""
    sq = [(a[k].detach().double() - b[k].detach().double()).pow(2).sum() for k in names]
    return float(torch.stack(sq).sum().sqrt()) if sq else 0.0


def norm(a: State, names: Iterable[str]) -> float:
    """Euclidean norm of the entries ``names`` of a state."""
    sq = [a[k].detach().double().pow(2).sum() for k in names]
    return float(torch.stack(sq).sum().sqrt()) if sq else 0.0
