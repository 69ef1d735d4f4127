"""Differentiable BatchNorm folding for eval-mode models.

In eval mode a BatchNorm that directly follows a conv or linear layer is an
affine map per channel, so ``bn(conv(x; W, b))`` equals
``conv(x; W·s, (b − μ)·s + β)`` with ``s = γ/√(σ² + ε)``. :func:`fold_batchnorm`
rewrites a model (by ``torch.fx`` tracing) so that each such pair is one
convolution whose weight and bias are computed from the *original* parameters
and buffers at every call: the result is the same function of the same
parameters (``model.parameters()`` are shared, not copied), so its first and
second derivatives are those of the model, minus one activation-sized pass per
BatchNorm in the forward, backward and double-backward graphs (about 1.6× on a
NIN's Hessian-vector product on a CPU).

Used by :class:`lossland.hessian.HessianOperator` in eval mode; the landscape
engine keeps its own non-differentiable fold (``lossland.landscape``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["fold_batchnorm"]

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _scale_shift(bias, gamma, beta, mean, var, eps):
    scale = torch.rsqrt(var + eps)
    if gamma is not None:
        scale = scale * gamma
    shift = -mean * scale
    if bias is not None:
        shift = shift + bias * scale
    if beta is not None:
        shift = shift + beta
    return scale, shift


def _conv_bn(x, weight, bias, gamma, beta, mean, var, eps, stride, padding, dilation, groups):
    scale, shift = _scale_shift(bias, gamma, beta, mean, var, eps)
    conv = (F.conv1d, F.conv2d, F.conv3d)[weight.dim() - 3]
    return conv(x, weight * scale.reshape(-1, *([1] * (weight.dim() - 1))), shift, stride, padding,
                dilation, groups)


def _linear_bn(x, weight, bias, gamma, beta, mean, var, eps):
    scale, shift = _scale_shift(bias, gamma, beta, mean, var, eps)
    return F.linear(x, weight * scale[:, None], shift)


def _foldable(layer: nn.Module, bn: nn.Module) -> bool:
    if not isinstance(bn, _BN) or not bn.track_running_stats or bn.running_mean is None:
        return False
    if type(layer) in _CONV:
        return layer.padding_mode == "zeros" and not isinstance(layer.padding, str)
    return type(layer) is nn.Linear and isinstance(bn, nn.BatchNorm1d)


def fold_batchnorm(model: nn.Module) -> "torch.fx.GraphModule | None":
    """A ``torch.fx.GraphModule`` computing ``model``'s eval-mode forward with
    every conv/linear → BatchNorm pair folded into one layer, sharing
    ``model``'s parameters and buffers; ``None`` when there is nothing to fold
    or ``torch.fx`` cannot trace the model. Only valid while ``model`` is in
    eval mode (BatchNorm with running statistics); forward hooks on the folded
    layers are not run.
    """
    import torch.fx as fx

    try:
        gm = fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - untraceable models are used as they are
        return None
    mods = dict(gm.named_modules())
    graph = gm.graph
    folded = 0
    for node in list(graph.nodes):
        if node.op != "call_module" or not isinstance(mods.get(node.target), _BN):
            continue
        prev = node.args[0] if node.args else None
        if not (isinstance(prev, fx.Node) and prev.op == "call_module" and len(prev.users) == 1
                and len(prev.args) == 1 and not prev.kwargs and len(node.args) == 1 and not node.kwargs):
            continue
        layer, bn = mods[prev.target], mods[node.target]
        if not _foldable(layer, bn):
            continue
        with graph.inserting_before(node):
            def attr(owner: str, module: nn.Module, name: str):
                return graph.get_attr(f"{owner}.{name}") if getattr(module, name) is not None else None

            common = (prev.args[0], attr(prev.target, layer, "weight"), attr(prev.target, layer, "bias"),
                      attr(node.target, bn, "weight"), attr(node.target, bn, "bias"),
                      attr(node.target, bn, "running_mean"), attr(node.target, bn, "running_var"), bn.eps)
            if type(layer) is nn.Linear:
                new = graph.call_function(_linear_bn, common)
            else:
                new = graph.call_function(_conv_bn, common + (layer.stride, layer.padding, layer.dilation,
                                                              layer.groups))
        node.replace_all_uses_with(new)
        graph.erase_node(node)
        graph.erase_node(prev)
        folded += 1
    if not folded:
        return None
    graph.lint()
    gm.recompile()
    return gm
