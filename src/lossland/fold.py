"""BatchNorm folding: one graph walk, one formula, two uses.

In eval mode a BatchNorm that directly follows a conv or linear layer is an
affine map per channel, so ``bn(layer(x; W, b))`` equals ``layer(x; W', b')``
with, per output channel,

    s = γ·rsqrt(σ² + ε),   W' = W·s,   b' = ((b − μ)·rsqrt(σ² + ε))·γ + β

(a missing bias is zero, a missing γ one, a missing β zero: the arithmetic of
``torch.nn.utils.fusion.fuse_conv_bn_weights``). :func:`foldable_pairs` finds
the pairs in a ``torch.fx`` graph: a BatchNorm with running statistics whose
only input is a ``Conv1d/2d/3d`` (or a ``Linear`` before a ``BatchNorm1d``)
that nothing else reads. Two uses are built on it:

* :func:`fold_batchnorm`, differentiable (the curvature engine's Hessian
  products): each pair becomes one layer whose weight and bias are computed by
  :func:`fold` from the model's *own* parameters and buffers at every call, so it
  is the same function of the same parameters, minus one activation-sized pass
  per BatchNorm in the forward, backward and double-backward graphs (about 1.6×
  on a NIN's Hessian-vector product on a CPU);
* :class:`FoldedCopy` (the landscape engines): an eval-mode copy of the model
  with the BatchNorms removed and their layers' weights refolded from a state at
  every point, and on the CPU each conv followed by a ReLU run as one oneDNN
  kernel (together about 2× on a NIN's forward on a 2-core CPU).
"""

from __future__ import annotations

import copy
import weakref
from typing import Callable, Mapping

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from .evaluation import inputs_channels_last

__all__ = ["foldable_pairs", "fold", "fold_batchnorm", "FoldedCopy", "folded_copy"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN = nn.modules.batchnorm._BatchNorm


# --------------------------------------------------------------------------- the walk and the formula


def _chains(gm: fx.GraphModule, follows: Callable[[nn.Module, "nn.Module | fx.Node"], bool]
            ) -> list[tuple[fx.Node, fx.Node]]:
    """``(producer, consumer)`` calls where the producer is a module call whose one input
    is a node and whose one user is the consumer, the consumer's first input is the
    producer and ``follows(producer module, consumer)``. The consumer is a module call of
    one argument (``follows`` gets its module) or a function or method call (``follows``
    gets the node, as a functional ReLU is one)."""
    mods = dict(gm.named_modules())
    out = []
    for node in gm.graph.nodes:
        if node.op == "call_module" and len(node.args) == 1 and not node.kwargs:
            consumer = mods[node.target]
        elif node.op in ("call_function", "call_method") and node.args:
            consumer = node
        else:
            continue
        prev = node.args[0]
        if (isinstance(prev, fx.Node) and prev.op == "call_module" and len(prev.users) == 1
                and len(prev.args) == 1 and not prev.kwargs and follows(mods[prev.target], consumer)):
            out.append((prev, node))
    return out


def _foldable(layer: nn.Module, bn: "nn.Module | fx.Node") -> bool:
    if not isinstance(bn, _BN) or not bn.track_running_stats or bn.running_mean is None:
        return False
    if type(layer) is nn.Linear:
        return isinstance(bn, nn.BatchNorm1d)
    return type(layer) in _CONV


def foldable_pairs(gm: fx.GraphModule) -> list[tuple[fx.Node, fx.Node]]:
    """The ``(layer, batchnorm)`` nodes of ``gm`` that can be folded (module docstring)."""
    return _chains(gm, _foldable)


def _scales(var: torch.Tensor, eps: float, gamma: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``rsqrt(σ² + ε)`` and the weight scale ``s = γ·rsqrt(σ² + ε)``."""
    r = torch.rsqrt(var + eps)
    return r, (r if gamma is None else gamma * r)


def fold(weight: torch.Tensor, bias: torch.Tensor | None, mean: torch.Tensor, var: torch.Tensor, eps: float,
         gamma: torch.Tensor | None = None, beta: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The folded ``(W', b')`` of a layer ``(weight, bias)`` followed by a BatchNorm with
    running ``mean``/``var``, ``eps`` and affine ``gamma``/``beta`` (module docstring);
    differentiable in every tensor."""
    r, s = _scales(var, eps, gamma)
    shift = ((torch.zeros_like(mean) if bias is None else bias) - mean) * r
    if gamma is not None:
        shift = shift * gamma
    if beta is not None:
        shift = shift + beta
    return weight * s.reshape(-1, *([1] * (weight.dim() - 1))), shift


# --------------------------------------------------------------------------- differentiable fold


class _FoldedPair(nn.Module):
    """``bn(layer(x))`` in eval mode as one layer, folded from the shared originals at every call."""

    def __init__(self, layer: nn.Module, bn: nn.Module) -> None:
        super().__init__()
        self.layer, self.bn = layer, bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layer, bn = self.layer, self.bn
        w, b = fold(layer.weight, layer.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias)
        return F.linear(x, w, b) if type(layer) is nn.Linear else layer._conv_forward(x, w, b)


def fold_batchnorm(model: nn.Module) -> "fx.GraphModule | None":
    """A ``torch.fx.GraphModule`` computing ``model``'s eval-mode forward with every
    foldable conv/linear → BatchNorm pair as one layer, sharing ``model``'s parameters
    and buffers; ``None`` when there is nothing to fold or ``torch.fx`` cannot trace
    the model. Only valid while ``model`` is in eval mode (BatchNorm with running
    statistics); forward hooks on the folded layers are not run.
    """
    try:
        gm = fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - untraceable models are used as they are
        return None
    pairs = foldable_pairs(gm)
    if not pairs:
        return None
    for i, (prev, node) in enumerate(pairs):
        name = f"_folded_bn{i}"
        gm.add_submodule(name, _FoldedPair(gm.get_submodule(prev.target), gm.get_submodule(node.target)))
        with gm.graph.inserting_before(node):
            new = gm.graph.call_module(name, prev.args)
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        gm.graph.erase_node(prev)
    gm.graph.lint()
    gm.recompile()
    return gm


# --------------------------------------------------------------------------- folded inference copy


class _Conv2dReLU(nn.Conv2d):
    """``relu(conv2d(x))`` in one oneDNN kernel (``mkldnn._convolution_pointwise``,
    the op TorchInductor emits for this pattern on the CPU): the same numbers, one
    memory pass fewer. Same parameters and state-dict names as the Conv2d it replaces."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._convolution_pointwise(
            x, self.weight, self.bias, list(self.padding), list(self.stride), list(self.dilation),
            self.groups, "relu", [], "")


def _cpu_fusion_available(model: nn.Module) -> bool:
    p = next(iter(model.parameters()), None)
    return (p is not None and p.device.type == "cpu" and p.dtype == torch.float32
            and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_convolution_pointwise"))


_RELU_FUNCTIONS = (F.relu, torch.relu, torch.relu_)


def _is_relu_call(node: fx.Node) -> bool:
    """A functional ReLU of one tensor: ``F.relu(x)``, ``torch.relu(x)``, ``x.relu()``
    (in place or not: the fused kernel writes a new tensor, which is what is read next)."""
    if node.op == "call_function" and node.target in _RELU_FUNCTIONS:
        return len(node.args) == 1 and set(node.kwargs) <= {"inplace"}
    return node.op == "call_method" and node.target in ("relu", "relu_") and len(node.args) == 1 \
        and not node.kwargs


def _fusable_relu(conv: nn.Module, relu: "nn.Module | fx.Node") -> bool:
    """A Conv2d with zero padding followed by a ReLU: an ``nn.ReLU`` module or a
    functional ReLU, as user models write it."""
    is_relu = type(relu) is nn.ReLU or (isinstance(relu, fx.Node) and _is_relu_call(relu))
    return is_relu and type(conv) is nn.Conv2d and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)


def _fuse_conv_relu(gm: fx.GraphModule) -> int:
    """Turn each Conv2d whose only user is a ReLU into :class:`_Conv2dReLU` (in place)."""
    chains = _chains(gm, _fusable_relu)
    for conv, relu in chains:
        gm.get_submodule(conv.target).__class__ = _Conv2dReLU
        relu.replace_all_uses_with(conv)
        gm.graph.erase_node(relu)
    return len(chains)


class FoldedCopy:
    """An eval-mode copy of a model with each foldable BatchNorm removed and folded into
    the weights of the layer before it and, on the CPU, each conv followed by a ReLU run
    as one fused oneDNN kernel: the same function, minus a memory pass per BN and ReLU
    layer. :meth:`update` refolds from the original model's state.

    ``module`` is the copy, ``target`` its state dict (written in place), ``pairs`` the
    ``(layer, batchnorm)`` names folded, ``eps`` their BatchNorms' ε, ``relus`` the
    number of conv+ReLU pairs fused. Raises ``ValueError`` when there is nothing to fold
    or fuse (and what ``torch.fx`` raises for a model it cannot trace).
    """

    def __init__(self, model: nn.Module) -> None:
        root = copy.deepcopy(model).eval()
        if inputs_channels_last(model):  # the copy's weights in the format its inputs come in
            root = root.to(memory_format=torch.channels_last)
        gm = fx.symbolic_trace(root)
        self.pairs: list[tuple[str, str]] = []
        self.eps: dict[str, float] = {}
        for prev, node in foldable_pairs(gm):
            layer = gm.get_submodule(prev.target)
            if layer.bias is None:
                layer.bias = nn.Parameter(torch.zeros(layer.weight.shape[0], device=layer.weight.device,
                                                      dtype=layer.weight.dtype))
            self.eps[node.target] = gm.get_submodule(node.target).eps
            self.pairs.append((prev.target, node.target))
            node.replace_all_uses_with(prev)
            gm.graph.erase_node(node)
        self.relus = _fuse_conv_relu(gm) if _cpu_fusion_available(model) else 0
        if not self.pairs and not self.relus:
            raise ValueError("nothing to fold or fuse")
        gm.graph.lint()
        gm.recompile()
        gm.delete_all_unused_submodules()
        self.module = gm.eval().requires_grad_(False)
        self.target = self.module.state_dict()
        folded = {f"{layer}.{w}" for layer, _ in self.pairs for w in ("weight", "bias")}
        self.copied = [k for k in self.target if k not in folded]

    @torch.no_grad()
    def update(self, source: Mapping[str, torch.Tensor]) -> None:
        """Refold from ``source`` (the original model's state dict)."""
        for k in self.copied:
            self.target[k].copy_(source[k])
        for layer, bn in self.pairs:
            w, b = fold(source[f"{layer}.weight"], source.get(f"{layer}.bias"), source[f"{bn}.running_mean"],
                        source[f"{bn}.running_var"], self.eps[bn], source.get(f"{bn}.weight"),
                        source.get(f"{bn}.bias"))
            self.target[f"{layer}.weight"].copy_(w)
            self.target[f"{layer}.bias"].copy_(b)

    @torch.no_grad()
    def linear_fold(self, origin: Mapping[str, torch.Tensor], directions: list[Mapping[str, torch.Tensor]]
                    ) -> "tuple[dict[str, torch.Tensor], list[dict[str, torch.Tensor]]] | None":
        """The points ``origin + Σ c_d·directions[d]`` (states of the original model) in this
        copy's own state, where no BatchNorm entry moves (statistics, scale and shift all
        constant along every direction, as on Li et al.'s random and PCA planes): the fold
        is then linear in the coefficients, ``W·s`` and ``(b − μ)·s + β`` with a constant
        ``s``, so the origin is folded once, each direction scaled by ``s`` once, and a
        point is written straight into :attr:`target` with no refold. Returns the folded
        ``(origin, directions)``, or ``None`` where a BatchNorm entry moves."""
        bn_keys = {f"{bn}.{n}" for _, bn in self.pairs for n in ("running_mean", "running_var", "weight", "bias")}
        moving = [d[k].reshape(-1) for d in directions for k in bn_keys if k in d]
        if moving and bool(torch.cat(moving).any()):  # one read-back, not one per tensor
            return None
        self.update(origin)
        folded_origin = {k: v.clone() for k, v in self.target.items()}
        scale = {}
        for layer, bn in self.pairs:
            _, s = _scales(origin[f"{bn}.running_var"], self.eps[bn], origin.get(f"{bn}.weight"))
            scale[f"{layer}.weight"] = s.view(-1, *([1] * (origin[f"{layer}.weight"].dim() - 1)))
            scale[f"{layer}.bias"] = s
        # in the copy's own memory format, so that writing a point is a plain elementwise pass
        folded_dirs = [{k: torch.empty_like(self.target[k]).copy_(d[k] * scale[k] if k in scale else d[k])
                        for k in self.target if k in d} for d in directions]
        return folded_origin, folded_dirs


def _structure(model: nn.Module) -> tuple:
    """What the folded copy depends on besides the values: modules (type and settings)
    and the state's names, shapes, dtypes, devices and strides (memory format)."""
    return (tuple((n, type(m), m.extra_repr()) for n, m in model.named_modules()),
            tuple((k, tuple(v.shape), v.dtype, v.device, v.stride()) for k, v in model.state_dict().items()))


# one folded copy per model, rebuilt when its structure changes: tracing and copying
# cost milliseconds per call, more than a point on a GPU
_FOLD_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def folded_copy(model: nn.Module) -> FoldedCopy | None:
    """The :class:`FoldedCopy` of ``model``, or ``None`` where there is nothing to fold or
    fuse or ``torch.fx`` cannot trace it (cached per model while its structure stays the same)."""
    structure = _structure(model)
    hit = _FOLD_CACHE.get(model)
    if hit is not None and hit[0] == structure:
        return hit[1]
    try:
        f = FoldedCopy(model)
    except Exception:  # noqa: BLE001 - untraceable models run as they are
        f = None
    _FOLD_CACHE[model] = (structure, f)
    return f
