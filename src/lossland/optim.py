"""Optimizers by name from config: thin wrappers over :mod:`torch.optim`.

A spec is a mapping ``{"algorithm": name, **hyper_parameters}``; the
hyper-parameters are the keyword arguments of the torch optimizer (``lr``,
``momentum``, ``betas``, ``weight_decay``, ...). Unknown keys are an error that
lists the allowed ones.

``algorithm: rk2`` is im2016's second-order Runge–Kutta gradient (appendix A.3)
around a base optimizer: ``{"algorithm": "rk2", "method": "heun", "base": "sgd",
"lr": 0.2, **base hyper-parameters}`` (see :class:`RK2`).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Iterable, Mapping

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


# im2016 Table 3: (a1, a2, q) of the second-order Runge-Kutta methods
RK2_METHODS: dict[str, tuple[float, float, float]] = {
    "midpoint": (0.0, 1.0, 0.5),
    "heun": (0.5, 0.5, 1.0),
    "ralston": (1.0 / 3.0, 2.0 / 3.0, 0.75),
}


class RK2(torch.optim.Optimizer):
    """Second-order Runge–Kutta gradient fed to a base optimizer (im2016, appendix A.3).

    Each step evaluates the minibatch gradient twice, through the closure::

        k1 = ∇L(θ)
        k2 = ∇L(θ − q·h·k1)          (h: the learning rate)
        g̃  = a1·k1 + a2·k2

    and hands ``g̃`` to the base optimizer (SGD, Adam, ...) as the gradient at θ.
    ``method`` picks (a1, a2, q): midpoint (0, 1, 1/2), heun (1/2, 1/2, 1),
    ralston (1/3, 2/3, 3/4). With plain SGD this is the explicit RK2 integrator of
    the gradient flow dθ/dt = −∇L(θ), second order in h where SGD (explicit
    Euler) is first order.

    The closure must zero the gradients, compute the loss on the *same*
    minibatch each time it is called and call ``backward()``. The second call also
    runs the model in train mode, so dropout draws new masks and BatchNorm
    updates its running statistics once more, as a second forward pass would.
    The base optimizer's state is this optimizer's state (``state_dict`` and
    learning-rate schedulers see one set of parameter groups).
    """

    needs_closure = True

    def __init__(self, params: Iterable[torch.nn.Parameter], base: str = "sgd", method: str = "heun",
                 **base_kwargs: Any) -> None:
        if method not in RK2_METHODS:
            raise ValueError(f"unknown RK2 method {method!r}; allowed: {', '.join(RK2_METHODS)}")
        if base not in ALGORITHMS:
            raise ValueError(f"unknown RK2 base optimizer {base!r}; allowed: {', '.join(ALGORITHMS)}")
        self.base = ALGORITHMS[base](params, **base_kwargs)
        a1, a2, q = RK2_METHODS[method]
        super().__init__(self.base.param_groups, dict(self.base.defaults, a1=a1, a2=a2, q=q))
        # one set of groups and state, shared with the base optimizer
        self.param_groups = self.base.param_groups
        self.state = self.base.state
        for group in self.param_groups:
            group.update(a1=a1, a2=a2, q=q)
        self.method, self.base_name = method, base

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        if closure is None:
            raise ValueError("RK2 needs a closure that recomputes the minibatch loss")
        with torch.enable_grad():
            loss = closure()
        saved = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                k1 = p.grad.detach().clone()
                saved.append((p, p.detach().clone(), k1, group["a1"], group["a2"]))
                p.add_(k1, alpha=-group["q"] * group["lr"])
        with torch.enable_grad():
            closure()
        for p, theta, k1, a1, a2 in saved:
            k2 = p.grad if p.grad is not None else torch.zeros_like(k1)
            p.copy_(theta)
            p.grad = k1.mul_(a1).add_(k2, alpha=a2)
        self.base.step()
        return loss


ALGORITHM_NAMES = (*ALGORITHMS, "rk2")


def hyper_parameters(algorithm: str, base: str | None = None) -> list[str]:
    """The hyper-parameters a spec may set for ``algorithm`` (for ``rk2``: of its ``base``)."""
    if algorithm == "rk2":
        return ["method", "base", *hyper_parameters(base or "sgd")]
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown optimizer algorithm {algorithm!r}; allowed: {', '.join(ALGORITHM_NAMES)}")
    sig = inspect.signature(ALGORITHMS[algorithm].__init__)
    return [p for p in sig.parameters if p not in ("self", "params") and p not in _IMPLEMENTATION_KWARGS]


def check_spec(spec: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the offending key when ``spec`` is not usable."""
    algorithm = spec.get("algorithm")
    if algorithm == "rk2":
        if spec.get("method", "heun") not in RK2_METHODS:
            raise ValueError(f"unknown RK2 method {spec.get('method')!r}; allowed: {', '.join(RK2_METHODS)}")
        if spec.get("base", "sgd") not in ALGORITHMS:
            raise ValueError(f"unknown RK2 base optimizer {spec.get('base')!r}; allowed: {', '.join(ALGORITHMS)}")
    allowed = hyper_parameters(algorithm, spec.get("base"))
    unknown = sorted(k for k in spec if k not in ("algorithm", *allowed))
    if unknown:
        raise ValueError(f"optimizer {algorithm!r} has no hyper-parameter {', '.join(unknown)}; "
                         f"allowed: {', '.join(allowed)}")


def make_optimizer(params: Iterable[torch.nn.Parameter], spec: Mapping[str, Any]) -> torch.optim.Optimizer:
    """A torch optimizer over ``params`` from ``spec`` (see module docstring)."""
    check_spec(spec)
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in spec.items() if k != "algorithm"}
    if spec["algorithm"] == "rk2":
        return RK2(params, **kwargs)
    return ALGORITHMS[spec["algorithm"]](params, **kwargs)


def learning_rate(spec: Mapping[str, Any]) -> float:
    """The spec's learning rate, or the torch default when it sets none."""
    if "lr" in spec:
        return float(spec["lr"])
    algorithm = spec.get("base", "sgd") if spec["algorithm"] == "rk2" else spec["algorithm"]
    default = inspect.signature(ALGORITHMS[algorithm].__init__).parameters["lr"].default
    return float(default)
