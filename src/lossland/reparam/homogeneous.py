"""Rescalings that leave a network's function unchanged (Dinh et al. 2017, §4).

* :func:`alpha_scale`: the α-scale transformation of two layers with only positively
  homogeneous operations between them (``relu(αz) = α·relu(z)`` for ``α > 0``): layer
  ``i``'s weight and bias times ``α``, layer ``j``'s weight divided by ``α``;
* :func:`bn_scale`: a layer that feeds a BatchNorm, weight and bias times ``α``, with the
  BatchNorm's running mean times ``α``, running variance and ``eps`` times ``α²`` — then
  ``BN(αz; α²ε) = BN(z; ε)`` exactly, in eval mode and in train mode.

Both return a new model and leave the one passed in unchanged. In the new parameters
``θ'`` the loss is ``L'(θ') = L(θ)``, so at corresponding points the Hessian's diagonal
block of a parameter scaled by ``c`` is the original block divided by ``c²``
(:func:`alpha_scale_blocks`, :func:`bn_scale_blocks` give the blocks and their powers of
``α``; :mod:`lossland.reparam.sweep` turns them into predictions).

Layers are named by their index among the model's ``Linear``/``Conv`` modules (in
``named_modules()`` order) or by module name. What lies between two layers is read
from the model's ``torch.fx`` graph: the output of layer ``i`` must reach layer ``j``
through a chain of positively homogeneous operations, each with one reader (no skip
connection, no branch). :data:`HOMOGENEOUS_MODULES` lists the modules allowed in the
chain; anything else (BatchNorm, sigmoid, tanh, GELU, a linear layer with a bias,
dropout in train mode, ...) is refused with an error that names it.
"""

from __future__ import annotations

import copy
import operator
from typing import Sequence

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

__all__ = ["HOMOGENEOUS_MODULES", "LAYER_TYPES", "ReparamError", "alpha_scale", "alpha_scale_blocks",
           "bn_layers", "bn_scale", "bn_scale_blocks", "homogeneous_pairs", "layer_names", "check_alpha_pair",
           "check_bn_layer"]

#: modules a layer's output may pass through on its way to the next scaled layer
HOMOGENEOUS_MODULES = (
    nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.Identity, nn.Flatten, nn.Unflatten,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
)
#: the layers that can be scaled
LAYER_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_HOMOGENEOUS_FUNCTIONS = {
    F.relu, torch.relu, F.leaky_relu, torch.flatten, F.max_pool1d, F.max_pool2d, F.max_pool3d,
    F.avg_pool1d, F.avg_pool2d, F.avg_pool3d, F.adaptive_avg_pool1d, F.adaptive_avg_pool2d,
    F.adaptive_avg_pool3d, F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d,
    torch.reshape,
}
_HOMOGENEOUS_METHODS = {"relu", "relu_", "view", "reshape", "flatten", "contiguous", "squeeze", "unsqueeze",
                        "permute", "transpose"}
_BN = nn.modules.batchnorm._BatchNorm


class ReparamError(ValueError):
    """A rescaling that would change the function (or cannot be checked): the message
    names the module in the way."""


def layer_names(model: nn.Module) -> list[str]:
    """Names of the scalable layers (``Linear``/``Conv``) in ``named_modules()`` order: index
    ``k`` in ``layers=`` means ``layer_names(model)[k]``."""
    return [name for name, m in model.named_modules() if isinstance(m, LAYER_TYPES)]


def _resolve(model: nn.Module, layer: int | str) -> str:
    names = layer_names(model)
    if isinstance(layer, str):
        if layer not in names:
            raise ReparamError(f"{layer!r} is not a Linear/Conv layer of the model; allowed: {', '.join(names)}")
        return layer
    if not -len(names) <= int(layer) < len(names):
        raise ReparamError(f"layer index {layer} is out of range: the model has {len(names)} Linear/Conv "
                           f"layers ({', '.join(names)})")
    return names[int(layer)]


def _trace(model: nn.Module) -> fx.GraphModule:
    try:
        return fx.symbolic_trace(model)
    except Exception as exc:  # dynamic control flow and the like
        raise ReparamError(f"cannot trace {type(model).__name__} with torch.fx to check what lies between "
                           f"the layers ({type(exc).__name__}: {exc}); pass check=False if you know the "
                           f"rescaling is exact") from exc


def _module_node(gm: fx.GraphModule, name: str) -> fx.Node:
    nodes = [n for n in gm.graph.nodes if n.op == "call_module" and n.target == name]
    if len(nodes) != 1:
        raise ReparamError(f"{name} is called {len(nodes)} times in the forward; a rescaled layer must be "
                           f"called once")
    return nodes[0]


def _is_shape(node: object) -> bool:
    """A shape query (``x.size()``, ``x.shape``, an entry of either): not a tensor path."""
    if not isinstance(node, fx.Node):
        return False
    if node.op == "call_method" and node.target == "size":
        return True
    if node.op == "call_function" and node.target is getattr:
        return node.args[1:] == ("shape",)
    return node.op == "call_function" and node.target is operator.getitem and _is_shape(node.args[0])


def _only_reader(node: fx.Node, what: str) -> fx.Node:
    users = [u for u in node.users if not _is_shape(u)]
    if len(users) != 1:
        raise ReparamError(f"the output of {what} is read by {len(users)} operations "
                           f"({', '.join(str(u.target) for u in users) or 'none'}): a branch or skip "
                           f"connection, so a rescaling would change the function")
    return users[0]


def _describe(node: fx.Node, modules: dict[str, nn.Module]) -> str:
    if node.op == "call_module":
        return f"{node.target} ({type(modules[node.target]).__name__})"
    return f"{getattr(node.target, '__name__', node.target)} ({node.op})"


def _homogeneous(node: fx.Node, source: fx.Node, modules: dict[str, nn.Module]) -> str | None:
    """Why ``node`` (reading ``source``) is not positively homogeneous in it, or None."""
    others = [a for a in (*node.args, *node.kwargs.values()) if isinstance(a, fx.Node) and a is not source]
    if any(not _is_shape(a) for a in others):
        return f"{_describe(node, modules)} combines it with other tensors"
    if node.op == "call_module":
        m = modules[node.target]
        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d)) and m.training and m.p > 0:
            return f"{_describe(node, modules)} is in train mode (random); call model.eval() first"
        if isinstance(m, HOMOGENEOUS_MODULES):
            return None
        return f"{_describe(node, modules)} is not positively homogeneous"
    if node.op == "call_function" and node.target in _HOMOGENEOUS_FUNCTIONS:
        return None
    if node.op == "call_method" and node.target in _HOMOGENEOUS_METHODS:
        return None
    return f"{_describe(node, modules)} is not positively homogeneous"


def _check_chain(model: nn.Module, first: str, second: str) -> None:
    gm = _trace(model)
    modules = dict(gm.named_modules())
    start, target = _module_node(gm, first), _module_node(gm, second)
    current = start
    while True:
        reader = _only_reader(current, first if current is start else _describe(current, modules))
        if reader is target:
            if reader.args[:1] != (current,):
                raise ReparamError(f"{second} reads {first}'s output through an argument other than its input")
            return
        if reader.op == "output":
            raise ReparamError(f"the output of {first} reaches the model's output without passing through "
                               f"{second}; allowed pairs: {_pairs_text(model)}")
        why = _homogeneous(reader, current, modules)
        if why is not None:
            raise ReparamError(f"between {first} and {second}: {why}. Only positively homogeneous operations may "
                               f"lie between the two layers (ReLU, LeakyReLU, PReLU, max/average pooling, flatten, "
                               f"identity, dropout in eval mode)")
        current = reader


def check_alpha_pair(model: nn.Module, layers: Sequence[int | str]) -> tuple[str, str]:
    """The module names of ``layers = (i, j)`` after checking that α-scaling them keeps
    the function (raises :class:`ReparamError` naming what is in the way)."""
    if len(layers) != 2:
        raise ReparamError(f"layers must be a pair (i, j), got {tuple(layers)!r}")
    first, second = (_resolve(model, layer) for layer in layers)
    names = layer_names(model)
    if names.index(first) >= names.index(second):
        raise ReparamError(f"layers ({first}, {second}): the first must come before the second")
    _check_chain(model, first, second)
    return first, second


def _pairs_text(model: nn.Module) -> str:
    pairs = homogeneous_pairs(model)
    return ", ".join(f"[{i}, {j}]" for i, j in pairs) or "none"


def homogeneous_pairs(model: nn.Module) -> list[tuple[int, int]]:
    """Index pairs ``(k, k + 1)`` of consecutive layers that :func:`alpha_scale` accepts."""
    names = layer_names(model)
    out = []
    for k in range(len(names) - 1):
        try:
            _check_chain(model, names[k], names[k + 1])
        except ReparamError:
            continue
        out.append((k, k + 1))
    return out


def _module(model: nn.Module, name: str) -> nn.Module:
    return model.get_submodule(name)


def _scale_layer(layer: nn.Module, alpha: float) -> None:
    """A layer's weight and bias times ``alpha``, in place (no grad)."""
    layer.weight.mul_(alpha)
    if layer.bias is not None:
        layer.bias.mul_(alpha)


def alpha_scale(model: nn.Module, alpha: float, layers: Sequence[int | str] = (0, 1), *,
                check: bool = True) -> nn.Module:
    """Dinh et al.'s α-scale transformation: a copy of ``model`` with layer ``i``'s weight
    and bias multiplied by ``alpha`` and layer ``j``'s weight divided by it (``layers = (i, j)``,
    indices into :func:`layer_names` or module names). The function is unchanged for any
    ``alpha > 0`` when only positively homogeneous operations lie between the two layers,
    which is checked on the ``torch.fx`` graph unless ``check=False``."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    if check:
        first, second = check_alpha_pair(model, layers)
    else:
        first, second = (_resolve(model, layer) for layer in layers)
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        _scale_layer(_module(scaled, first), alpha)
        _module(scaled, second).weight.div_(alpha)
    return scaled


def _param_names(model: nn.Module, module: str, which: Sequence[str] = ("weight", "bias")) -> list[str]:
    m = _module(model, module)
    return [f"{module}.{n}" for n in which if getattr(m, n, None) is not None and getattr(m, n).requires_grad]


def alpha_scale_blocks(model: nn.Module, layers: Sequence[int | str] = (0, 1)) -> dict[str, tuple[list[str], int]]:
    """The Hessian blocks :func:`alpha_scale` rescales: ``{label: (parameter names, power)}`` —
    layer ``i``'s weight and bias by ``α^-2``, layer ``j``'s weight by ``α^2``."""
    first, second = (_resolve(model, layer) for layer in layers)
    return {first: (_param_names(model, first), -2), f"{second}.weight": (_param_names(model, second, ("weight",)), 2)}


def check_bn_layer(model: nn.Module, layer: int | str) -> tuple[str, str]:
    """The names of ``layer`` and the BatchNorm that reads it (raises :class:`ReparamError`)."""
    name = _resolve(model, layer)
    gm = _trace(model)
    modules = dict(gm.named_modules())
    reader = _only_reader(_module_node(gm, name), name)
    if reader.op != "call_module" or not isinstance(modules[reader.target], _BN):
        allowed = ", ".join(map(str, bn_layers(model))) or "none"
        raise ReparamError(f"{name} is read by {_describe(reader, modules)}, not by a BatchNorm; layers that "
                           f"feed a BatchNorm: {allowed}")
    return name, str(reader.target)


def bn_layers(model: nn.Module) -> list[int]:
    """Indices (into :func:`layer_names`) of the layers whose only reader is a BatchNorm."""
    gm = _trace(model)
    modules = dict(gm.named_modules())
    return [k for k, n in enumerate(layer_names(model)) if _feeds_bn(gm, modules, n)]


def _feeds_bn(gm: fx.GraphModule, modules: dict[str, nn.Module], name: str) -> bool:
    nodes = [n for n in gm.graph.nodes if n.op == "call_module" and n.target == name]
    if len(nodes) != 1 or len(nodes[0].users) != 1:
        return False
    reader = next(iter(nodes[0].users))
    return reader.op == "call_module" and isinstance(modules[reader.target], _BN)


def bn_scale(model: nn.Module, alpha: float, layer: int | str = 0) -> nn.Module:
    """A copy of ``model`` with ``layer``'s weight and bias times ``alpha`` and the BatchNorm that
    reads it rescaled to match (running mean ``× α``, running variance and ``eps`` ``× α²``):
    the same function in eval and in train mode, the layer's Hessian block divided by ``α²``."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    name, bn_name = check_bn_layer(model, layer)
    scaled = copy.deepcopy(model)
    with torch.no_grad():
        _scale_layer(_module(scaled, name), alpha)
        bn = _module(scaled, bn_name)
        if bn.running_mean is not None:
            bn.running_mean.mul_(alpha)
            bn.running_var.mul_(alpha ** 2)
        bn.eps = bn.eps * alpha ** 2
    return scaled


def bn_scale_blocks(model: nn.Module, layer: int | str = 0) -> dict[str, tuple[list[str], int]]:
    """The Hessian block :func:`bn_scale` rescales: the layer's weight and bias, by ``α^-2``."""
    name = _resolve(model, layer)
    return {name: (_param_names(model, name), -2)}
