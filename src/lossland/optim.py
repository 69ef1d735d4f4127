"""Optimizers by name from config: thin wrappers over :mod:`torch.optim`.

A spec is a mapping ``{"algorithm": name, **hyper_parameters}``; the
hyper-parameters are the keyword arguments of the torch optimizer (``lr``,
``momentum``, ``betas``, ``weight_decay``, ...). Unknown keys are an error that
lists the allowed ones.
"""

from __future__ import annotations

import inspect
from typing import Any, Iterable, Mapping

import torch

ALGORITHMS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "adadelta": torch.optim.Adadelta,
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
}
# keyword arguments that select implementations rather than define the method
_IMPLEMENTATION_KWARGS = {"foreach", "fused", "capturable", "differentiable", "maximize",
                          "decoupled_weight_decay"}


def hyper_parameters(algorithm: str) -> list[str]:
    """The hyper-parameters a spec may set for ``algorithm``."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown optimizer algorithm {algorithm!r}; allowed: {', '.join(ALGORITHMS)}")
    sig = inspect.signature(ALGORITHMS[algorithm].__init__)
    return [p for p in sig.parameters if p not in ("self", "params") and p not in _IMPLEMENTATION_KWARGS]


def check_spec(spec: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the offending key when ``spec`` is not usable."""
    algorithm = spec.get("algorithm")
    allowed = hyper_parameters(algorithm)
    unknown = sorted(k for k in spec if k not in ("algorithm", *allowed))
    if unknown:
        raise ValueError(f"optimizer {algorithm!r} has no hyper-parameter {', '.join(unknown)}; "
                         f"allowed: {', '.join(allowed)}")


def make_optimizer(params: Iterable[torch.nn.Parameter], spec: Mapping[str, Any]) -> torch.optim.Optimizer:
    """A torch optimizer over ``params`` from ``spec`` (see module docstring)."""
    check_spec(spec)
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items() if k != "algorithm"}
    return ALGORITHMS[spec["algorithm"]](params, **kwargs)


def learning_rate(spec: Mapping[str, Any]) -> float:
    """The spec's learning rate, or the torch default when it sets none."""
    if "lr" in spec:
        return float(spec["lr"])
    default = inspect.signature(ALGORITHMS[spec["algorithm"]].__init__).parameters["lr"].default
    return float(default)
