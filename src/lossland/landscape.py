"""Loss landscapes: interpolations, planes, directions and functional distance.

Every function here evaluates a model at *points* of its parameter space that
are linear combinations of state dicts::

    θ(c) = origin + Σ_d c_d · direction_d

(an interpolation has one direction ``end − start``, a plane two, im2016's
bilinear plane three: ``x``, ``y`` and ``x·y``). States are the
``{name: tensor}`` mappings of ``model.state_dict()``; a direction may hold a
subset of the names (a missing name is a zero direction).

Conventions
-----------

* **Buffers.** Floating-point buffers (BatchNorm running mean and variance) are
  combined like the parameters, so an interpolation between two BN networks
  also interpolates their statistics; non-float buffers (``num_batches_tracked``)
  are taken from the origin (``start``) unchanged. (Far outside [0, 1] an
  interpolated running variance can turn negative, and the loss NaN: use
  ``bn="recompute"`` there.) The directions of
  :func:`random_direction` and :func:`pca_directions` leave the buffers at the
  origin's values.
* **BatchNorm** (``bn=``). ``"stored"`` (default): evaluation mode with the
  running statistics of the point (stored, or interpolated as above).
  These statistics are in general *wrong* away from a trained checkpoint: the
  activations of an interpolated network do not have the interpolated means and
  variances. ``"recompute"`` re-estimates them at every point from ``data``
  (see :func:`recompute_bn`: a no-grad pass in train mode with
  ``momentum=None``, i.e. the equal-weight average over the batches) before
  evaluating in eval mode. Dropout is always off.
* **Loss.** ``loss_fn(logits, targets)`` returns the batch mean (default
  :func:`lossland.evaluate.default_loss`: cross-entropy, or binary
  cross-entropy for one-column logits); batches are weighted by size, exactly
  as :func:`lossland.evaluate`.
* **Data.** ``(inputs, targets)`` tensors (split into ``batch_size`` chunks)
  or an iterable of such batches. It is moved once to the model's device
  (channels-last when the model is) and held there for the whole call.
* **Engines** (``engine=``). ``"loop"`` loads each point's weights into the
  model and runs the data through it in chunks; ``"vmap"`` evaluates
  ``points_per_batch`` points in one call of
  ``torch.vmap(torch.func.functional_call)`` over stacked parameters (with
  ``bn="recompute"`` the statistics are still re-estimated point by point).
  ``"graph"`` (CUDA only) is the loop with one point's whole work (its
  weights, BN statistics and fold, the forward over every batch, the loss)
  captured once as a CUDA graph and replayed per point, with the point's
  coefficients read from a device tensor: a few launches per point instead of
  hundreds, no host round trip. All engines give the same numbers (to float
  rounding; tested to 1e-5). ``"auto"`` picks the loop on the CPU (measured
  4.7× faster there than vmap for NIN-¼ on 1000 CIFAR images, 2 cores: 3724 vs
  798 samples/s, ``benchmarks/surface_throughput.py``), the graph on CUDA from
  25 points on (falling back to the loop, with a warning, for a model that
  cannot be captured, e.g. one that reads values back to the host), and on
  other devices whichever of loop and vmap a short timing probe on the first
  data batch finds faster (cached per process, model and shape). The loop runs
  an eval-mode copy of the model with each BatchNorm folded into the conv or
  linear layer before it and, on the CPU, each conv+ReLU pair as one oneDNN
  kernel (``fuse=True``, refolded at every point; models ``torch.fx`` cannot
  trace run as they are; ``fuse=False`` runs the model itself).
* The model passed in is left as it was (weights, buffers and train/eval modes).
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
import weakref
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .evaluate import (Data, LossFn, default_loss, eval_mode, iter_batches, model_device,
                       predictions, prepare_inputs, uses_channels_last)

State = Mapping[str, torch.Tensor]
Reducer = Callable[..., torch.Tensor]

ENGINES = ("auto", "loop", "vmap", "graph")
BN_MODES = ("stored", "recompute")
NORMALIZATIONS = ("filter", "layer", "none")
_BN_TYPES = (nn.modules.batchnorm._BatchNorm,)
_PROBE_CACHE: dict[tuple, str] = {}
# below this many points a CUDA graph's capture costs more than it saves. Measured on an
# H200, NIN-¼, points/s graph ÷ loop: on 128 images (a workflow shard), 0.95 at 16 points,
# 1.19 at 49, 1.09 at 121; on 1000 images, where the forward itself keeps the GPU busy,
# 1.00–1.01 from 16 to 121 points
_GRAPH_MIN_POINTS = 25


# --------------------------------------------------------------------------- data


def _default_batch_size(device: torch.device) -> int:
    # measured on a 2-core CPU (NIN at width 1/4, channels-last): 64–128 beat
    # 256 and 1024 (cache); on a GPU larger batches only help
    return 128 if device.type == "cpu" else 4096


def _materialize(data: Data, device: torch.device, channels_last: bool,
                 batch_size: int | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The batches of ``data`` on ``device``, ready for the model (held for the call)."""
    bs = batch_size or _default_batch_size(device)
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, torch.Tensor) for t in data):
        x = prepare_inputs(data[0], device, channels_last)
        y = data[1].to(device)
        batches = list(iter_batches((x, y), bs))
    else:
        batches = [(prepare_inputs(x, device, channels_last), y.to(device)) for x, y in iter_batches(data)]
    if not batches or sum(int(y.shape[0]) for _, y in batches) == 0:
        raise ValueError("no data to evaluate the landscape on")
    return batches


# --------------------------------------------------------------------------- BatchNorm


def _bn_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, _BN_TYPES) and m.track_running_stats]


@torch.no_grad()
def recompute_bn(model: nn.Module, data: Data, batch_size: int | None = None) -> nn.Module:
    """Re-estimate the BatchNorm running statistics of ``model`` from ``data``, in place.

    The statistics are reset, then the data runs through the model with the BN
    layers in train mode, momentum ``1/k`` at the ``k``-th batch (so the running
    statistics become the equal-weight average of the per-batch statistics, as with
    ``momentum=None``) and no gradient; every other
    module is in eval mode (no dropout). Modes and momenta are restored after.
    """
    bns = _bn_modules(model)
    if not bns:
        return model
    device = model_device(model)
    batches = _materialize(data, device, uses_channels_last(model), batch_size)
    _recompute_bn(model, bns, batches)
    return model


def _recompute_bn(model: nn.Module, bns: list[nn.Module], batches) -> None:
    momenta = [m.momentum for m in bns]
    with eval_mode(model):
        for m in bns:
            m.reset_running_stats()
            m.train()
        for i, (x, _) in enumerate(batches):
            # momentum 1/(i+1) at batch i: the equal-weight average over the batches, the
            # same numbers as momentum=None, which reads the batch counter back from the
            # device at every batch (a sync that a CUDA graph cannot hold)
            for m in bns:
                m.momentum = 1.0 / (i + 1)
            model(x)
    for m, mom in zip(bns, momenta):
        m.momentum = mom


# --------------------------------------------------------------------------- points


@dataclass
class _Points:
    """Points ``origin + coeffs[p] @ directions`` of a model's state space."""

    origin: dict[str, torch.Tensor]
    directions: list[dict[str, torch.Tensor]]
    coeffs: torch.Tensor  # (points, directions), float64 on the CPU

    @property
    def varying(self) -> list[str]:
        keys = set().union(*(d.keys() for d in self.directions)) if self.directions else set()
        return [k for k in self.origin if k in keys and self.origin[k].is_floating_point()]

    def writer(self, target: Mapping[str, torch.Tensor], keys: Sequence[str]) -> Callable[..., None]:
        """``write(c)`` sets the tensors ``target[k]`` (in place) to the point with
        coefficients ``c``: python floats, or a device tensor (read on the device,
        as a CUDA graph needs). A few multi-tensor kernels per point, not one per tensor."""
        targets = [target[k] for k in keys]
        origin = [self.origin[k] for k in keys]
        groups = []  # (direction, dtype, targets, direction tensors)
        for j, d in enumerate(self.directions):
            by_dtype: dict[torch.dtype, tuple[list, list]] = {}
            for k in keys:
                if k in d:
                    ts, ds = by_dtype.setdefault(target[k].dtype, ([], []))
                    ts.append(target[k])
                    ds.append(d[k])
            groups += [(j, dt, ts, ds) for dt, (ts, ds) in by_dtype.items()]

        def write(c) -> None:
            torch._foreach_copy_(targets, origin)
            if isinstance(c, torch.Tensor):
                cs = {dt: c.to(dt) for dt in {g[1] for g in groups}}
                for j, dt, ts, ds in groups:
                    torch._foreach_add_(ts, torch._foreach_mul(ds, cs[dt][j]))
            else:
                for j, _, ts, ds in groups:
                    if c[j] != 0.0:
                        torch._foreach_add_(ts, ds, alpha=c[j])
        return write

    def stacked(self, ps: Sequence[int], keys: Sequence[str]) -> dict[str, torch.Tensor]:
        """``{k: tensor (len(ps), *shape)}`` of the points ``ps``."""
        c = self.coeffs[list(ps)]
        out = {}
        for k in keys:
            o = self.origin[k]
            v = o.unsqueeze(0).repeat(len(ps), *([1] * o.dim()))
            for j, d in enumerate(self.directions):
                if k in d:
                    cj = c[:, j].to(device=o.device, dtype=o.dtype).view(-1, *([1] * o.dim()))
                    v.add_(cj * d[k])
            out[k] = v
        return out


def _as_state(state: State, like: Mapping[str, torch.Tensor], what: str) -> dict[str, torch.Tensor]:
    missing = set(like) - set(state)
    extra = set(state) - set(like)
    if missing or extra:
        raise KeyError(f"{what} does not match the model's state dict: "
                       f"missing {sorted(missing)[:5]}, unexpected {sorted(extra)[:5]}")
    # copies: the states often share storage with the model, which the loop overwrites
    return {k: state[k].detach().to(like[k].device, like[k].dtype, copy=True) for k in like}


def _direction(state: Mapping[str, torch.Tensor], like: Mapping[str, torch.Tensor], what: str
               ) -> dict[str, torch.Tensor]:
    extra = set(state) - set(like)
    if extra:
        raise KeyError(f"{what} has names the model lacks: {sorted(extra)[:5]}")
    return {k: v.detach().to(like[k].device, like[k].dtype, copy=True) for k, v in state.items()
            if like[k].is_floating_point()}


def _diff(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``a − b`` over the floating-point entries."""
    return {k: a[k] - b[k] for k in a if a[k].is_floating_point()}


# --------------------------------------------------------------------------- BN folding


class _FoldedBN:
    """An eval-mode copy of a model with every BatchNorm that directly follows a
    conv or linear layer folded into that layer's weights (``W·γ/σ``,
    ``(b − μ)·γ/σ + β``), and on the CPU each conv followed by a ReLU run as one
    fused oneDNN kernel: the same function, minus a memory pass per BN and ReLU
    layer (together about 2× on a NIN's forward on a 2-core CPU). Built by
    ``torch.fx`` tracing; :meth:`update` refolds from the original model's state.
    """

    def __init__(self, model: nn.Module) -> None:
        import copy

        import torch.fx as fx

        root = copy.deepcopy(model).eval()
        gm = fx.symbolic_trace(root)
        mods = dict(gm.named_modules())
        self.pairs: list[tuple[str, str, str]] = []  # (layer, bn, kind)
        for node in list(gm.graph.nodes):
            if node.op != "call_module" or not isinstance(mods.get(node.target), _BN_TYPES):
                continue
            prev = node.args[0] if node.args else None
            if not (isinstance(prev, fx.Node) and prev.op == "call_module" and len(prev.users) == 1):
                continue
            layer, bn = mods[prev.target], mods[node.target]
            if not bn.track_running_stats or type(layer) not in (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear):
                continue
            if layer.bias is None:
                layer.bias = nn.Parameter(torch.zeros(layer.weight.shape[0], device=layer.weight.device,
                                                      dtype=layer.weight.dtype))
            node.replace_all_uses_with(prev)
            gm.graph.erase_node(node)
            self.pairs.append((prev.target, node.target, "linear" if isinstance(layer, nn.Linear) else "conv"))
        self.relus = _fuse_conv_relu(gm) if _cpu_fusion_available(model) else 0
        if not self.pairs and not self.relus:
            raise ValueError("nothing to fold or fuse")
        gm.graph.lint()
        gm.recompile()
        gm.delete_all_unused_submodules()
        self.module = gm.eval().requires_grad_(False)
        self.target = self.module.state_dict()
        folded = {f"{layer}.{w}" for layer, _, _ in self.pairs for w in ("weight", "bias")}
        self.copied = [k for k in self.target if k not in folded]

    @torch.no_grad()
    def update(self, source: Mapping[str, torch.Tensor]) -> None:
        """Refold from ``source`` (the original model's state dict)."""
        from torch.nn.utils.fusion import fuse_conv_bn_weights, fuse_linear_bn_weights

        for k in self.copied:
            self.target[k].copy_(source[k])
        for layer, bn, kind in self.pairs:
            args = (source[f"{layer}.weight"], source.get(f"{layer}.bias"), source[f"{bn}.running_mean"],
                    source[f"{bn}.running_var"], self.eps[bn], source.get(f"{bn}.weight"),
                    source.get(f"{bn}.bias"))
            w, b = fuse_linear_bn_weights(*args) if kind == "linear" else fuse_conv_bn_weights(*args)
            self.target[f"{layer}.weight"].copy_(w)
            self.target[f"{layer}.bias"].copy_(b)

    @torch.no_grad()
    def linear_points(self, pts: _Points) -> "_Points | None":
        """``pts`` in this copy's own state, where no BatchNorm entry moves (statistics,
        scale and shift all constant along every direction, as for Li et al.'s random
        and PCA planes): the fold is then linear in the coefficients, ``W·s`` and
        ``(b − μ)·s + β`` with a constant ``s = γ/σ``, so the origin is folded once, each
        direction scaled by ``s`` once, and a point is written straight into the copy
        with no refold. ``None`` where a BatchNorm entry moves."""
        bn_keys = {f"{bn}.{n}" for _, bn, _ in self.pairs
                   for n in ("running_mean", "running_var", "weight", "bias")}
        moving = [d[k].reshape(-1) for d in pts.directions for k in bn_keys if k in d]
        if moving and bool(torch.cat(moving).any()):  # one read-back, not one per tensor
            return None
        self.update(pts.origin)
        origin = {k: v.clone() for k, v in self.target.items()}
        scale, o = {}, pts.origin
        for layer, bn, _ in self.pairs:
            s = torch.rsqrt(o[f"{bn}.running_var"] + self.eps[bn])
            if f"{bn}.weight" in o:
                s = s * o[f"{bn}.weight"]
            scale[f"{layer}.weight"] = s.view(-1, *([1] * (o[f"{layer}.weight"].dim() - 1)))
            scale[f"{layer}.bias"] = s
        directions = [{k: d[k] * scale[k] if k in scale else d[k] for k in self.target if k in d}
                      for d in pts.directions]
        return _Points(origin, directions, pts.coeffs)


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


def _fuse_conv_relu(gm) -> int:
    """Turn each Conv2d whose only user is a ReLU into :class:`_Conv2dReLU` (in place)."""
    count = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or type(gm.get_submodule(node.target)) is not nn.ReLU:
            continue
        prev = node.args[0] if node.args else None
        if not (isinstance(prev, torch.fx.Node) and prev.op == "call_module" and len(prev.users) == 1):
            continue
        conv = gm.get_submodule(prev.target)
        if type(conv) is not nn.Conv2d or conv.padding_mode != "zeros" or isinstance(conv.padding, str):
            continue
        conv.__class__ = _Conv2dReLU
        node.replace_all_uses_with(prev)
        gm.graph.erase_node(node)
        count += 1
    return count


def _structure(model: nn.Module) -> tuple:
    """What the folded copy depends on besides the values: modules (type and settings)
    and the state's names, shapes, dtypes, devices and strides (memory format)."""
    return (tuple((n, type(m), m.extra_repr()) for n, m in model.named_modules()),
            tuple((k, tuple(v.shape), v.dtype, v.device, v.stride()) for k, v in model.state_dict().items()))


# one folded copy per model, rebuilt when its structure changes: tracing and copying
# cost milliseconds per call, more than a point on a GPU
_FOLD_CACHE: "weakref.WeakKeyDictionary[nn.Module, tuple]" = weakref.WeakKeyDictionary()


def _folded(model: nn.Module) -> "_FoldedBN | None":
    """The BN-folded copy of ``model``, or ``None`` where there is nothing to fold or fx
    cannot trace it (cached per model while its structure stays the same)."""
    structure = _structure(model)
    hit = _FOLD_CACHE.get(model)
    if hit is not None and hit[0] == structure:
        return hit[1]
    f = _build_folded(model)
    _FOLD_CACHE[model] = (structure, f)
    return f


def _build_folded(model: nn.Module) -> "_FoldedBN | None":
    try:
        f = _FoldedBN(model)
    except Exception:  # noqa: BLE001 - untraceable models run as they are
        return None
    f.eps = {n: m.eps for n, m in model.named_modules() if isinstance(m, _BN_TYPES)}
    for _, bn, kind in f.pairs:
        m = model.get_submodule(bn)
        if kind == "linear" and (m.weight is None or m.bias is None):
            return None
    return f


# --------------------------------------------------------------------------- engines


def _loss_acc_reducer(loss_fn: LossFn) -> Reducer:
    def reduce(logits, y, *extra):
        n = y.shape[0]
        return torch.stack([loss_fn(logits, y).double() * n,
                            (predictions(logits) == y).sum().double()])
    return reduce


def _point_value(model, net, sd, batches, reducer, extras, bns, refold) -> torch.Tensor:
    """The reducer summed over the batches at the point written into ``sd``."""
    if bns:
        _recompute_bn(model, bns, batches)
    if refold is not None:
        refold.update(sd)
    acc = None
    for i, (x, y) in enumerate(batches):
        r = reducer(net(x), y, *extras[i])
        acc = r if acc is None else acc + r
    return acc


def _setup(model, pts: _Points, bns, folded):
    """``(net, state, points, refold)`` for the loop and graph engines: the network that
    runs, the state a point is written into, the points in that state's terms, and the
    folded copy to refold from ``state`` at every point (``None``: no refold)."""
    sd = model.state_dict()
    if folded is None:
        return model, sd, pts, None
    if not bns:
        lin = folded.linear_points(pts)
        if lin is not None:
            return folded.module, folded.target, lin, None
    return folded.module, sd, pts, folded


def _run_loop(model, pts: _Points, ps, batches, reducer, extras, bns, folded=None) -> torch.Tensor:
    net, sd, pts, refold = _setup(model, pts, bns, folded)
    write = pts.writer(sd, pts.varying)
    out = []
    for p in ps:
        write(pts.coeffs[p].tolist())
        out.append(_point_value(model, net, sd, batches, reducer, extras, bns, refold))
    return torch.stack(out)


def _run_graph(model, pts: _Points, ps, batches, reducer, extras, bns, folded=None) -> torch.Tensor:
    """The loop engine with one point's whole work (writing its weights, BN statistics,
    folding, the forward over every batch, the reduction) captured once as a CUDA graph
    and replayed per point: three launches per point instead of hundreds, no host round
    trip. The point's coefficients are read from a device tensor. The first point runs
    eagerly on the capture stream as the warm-up (cuDNN/cuBLAS handles and workspaces);
    the capture then records while the GPU still works on it (no synchronisation, and no
    emptying of the allocator's cache as ``torch.cuda.graph`` does)."""
    ps = list(ps)
    device = batches[0][0].device
    net, sd, pts, refold = _setup(model, pts, bns, folded)
    coeffs = pts.coeffs.to(device)
    c_static = coeffs[ps[0]].clone()
    write = pts.writer(sd, pts.varying)

    def body() -> torch.Tensor:
        write(c_static)
        return _point_value(model, net, sd, batches, reducer, extras, bns, refold)

    stream = torch.cuda.Stream(device)
    stream.wait_stream(torch.cuda.current_stream(device))
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.stream(stream):
        first = body()
        if len(ps) > 1:
            graph.capture_begin()
            try:
                static_out = body()
            except BaseException:
                try:
                    graph.capture_end()
                except RuntimeError:
                    pass
                raise
            graph.capture_end()
    torch.cuda.current_stream(device).wait_stream(stream)
    out = torch.empty(len(ps), *first.shape, dtype=first.dtype, device=device)
    out[0].copy_(first)
    for i, p in enumerate(ps[1:], 1):
        c_static.copy_(coeffs[p])
        graph.replay()
        out[i].copy_(static_out)
    return out


def _run_vmap(model, pts: _Points, ps, batches, reducer, extras, bns) -> torch.Tensor:
    from torch.func import functional_call

    sd = model.state_dict()
    keys = pts.varying
    if bns:
        # statistics re-estimated point by point with the loop, then batched
        bn_keys = [n for n, m in model.named_modules() if m in bns]
        stat_keys = [f"{n}.{s}" for n in bn_keys for s in ("running_mean", "running_var")]
        stats = {k: [] for k in stat_keys}
        write = pts.writer(sd, keys)
        for p in ps:
            write(pts.coeffs[p].tolist())
            _recompute_bn(model, bns, batches)
            for k in stat_keys:
                stats[k].append(sd[k].clone())
        batched = pts.stacked(ps, [k for k in keys if k not in stats])
        batched.update({k: torch.stack(v) for k, v in stats.items()})
    else:
        batched = pts.stacked(ps, keys)
    fixed = {k: v for k, v in sd.items() if k not in batched}

    def one(params, x, y, *extra):
        logits = functional_call(model, {**params, **fixed}, (x,), tie_weights=False, strict=False)
        return reducer(logits, y, *extra)

    acc = None
    for i, (x, y) in enumerate(batches):
        in_dims = (0, None, None) + (None,) * len(extras[i])
        r = torch.vmap(one, in_dims=in_dims)(batched, x, y, *extras[i])
        acc = r if acc is None else acc + r
    return acc


def _probe(model, pts: _Points, batches, reducer, extras, group: int, folded=None) -> str:
    """Time both engines on the first batch with ``group`` points; the faster's name."""
    x, y = batches[0]
    key = (str(x.device), type(model).__name__, sum(p.numel() for p in model.parameters()),
           tuple(x.shape), group)
    if key in _PROBE_CACHE:
        return _PROBE_CACHE[key]
    ps = list(range(min(group, pts.coeffs.shape[0])))
    timings = {}
    loop = lambda *a: _run_loop(*a, folded=folded)  # noqa: E731
    for name, fn in (("loop", loop), ("vmap", _run_vmap)):
        try:
            best = math.inf
            for _ in range(2):
                _sync(x.device)
                t0 = time.perf_counter()
                fn(model, pts, ps, batches[:1], reducer, extras[:1], [])
                _sync(x.device)
                best = min(best, time.perf_counter() - t0)
            timings[name] = best
        except Exception:  # noqa: BLE001 - a model vmap cannot batch falls back to the loop
            timings[name] = math.inf
    choice = "vmap" if timings["vmap"] < 0.9 * timings["loop"] else "loop"
    _PROBE_CACHE[key] = choice
    return choice


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def _evaluate(model: nn.Module, pts: _Points, batches, reducer: Reducer, extras=None, *,
              engine: str = "auto", bn: str = "stored", points_per_batch: int | None = None,
              fuse: bool = True) -> torch.Tensor:
    """Sum of ``reducer`` over the batches at every point: a float64 (points, stats) tensor."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    if bn not in BN_MODES:
        raise ValueError(f"bn must be one of {BN_MODES}, got {bn!r}")
    extras = extras or [()] * len(batches)
    n_points = pts.coeffs.shape[0]
    device = batches[0][0].device
    if engine == "graph" and device.type != "cuda":
        raise ValueError(f"engine='graph' needs a CUDA device, the data is on {device}")
    explicit = engine != "auto"
    bns = _bn_modules(model) if bn == "recompute" else []
    group = points_per_batch or (8 if device.type == "cpu" else 16)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        # every entry from the origin; the points then rewrite the varying ones
        model.load_state_dict(pts.origin)
        with eval_mode(model):
            folded = _folded(model) if fuse and engine != "vmap" else None
            if engine == "auto":
                if device.type == "cuda" and n_points >= _GRAPH_MIN_POINTS:
                    engine = "graph"
                else:
                    engine = "loop" if device.type == "cpu" or n_points < 2 else \
                        _probe(model, pts, batches, reducer, extras, group, folded)
            if engine == "graph":
                try:
                    return _run_graph(model, pts, range(n_points), batches, reducer, extras, bns, folded).cpu()
                except RuntimeError as exc:  # a model that syncs with the host cannot be captured
                    if explicit:
                        raise
                    warnings.warn(f"CUDA graph capture failed ({str(exc).splitlines()[0]}); "
                                  "evaluating the points one by one", RuntimeWarning, stacklevel=3)
                    engine = "loop"
            if engine == "loop":
                return _run_loop(model, pts, range(n_points), batches, reducer, extras, bns, folded).cpu()
            parts = [_run_vmap(model, pts, list(range(s, min(s + group, n_points))), batches,
                               reducer, extras, bns) for s in range(0, n_points, group)]
            return torch.cat(parts).cpu()
    finally:
        model.load_state_dict(saved)


def _loss_table(model, pts: _Points, data, loss_fn, *, engine, bn, batch_size, points_per_batch,
                fuse) -> np.ndarray:
    device = model_device(model)
    batches = _materialize(data, device, uses_channels_last(model), batch_size)
    n = sum(int(y.shape[0]) for _, y in batches)
    sums = _evaluate(model, pts, batches, _loss_acc_reducer(loss_fn or default_loss),
                     engine=engine, bn=bn, points_per_batch=points_per_batch, fuse=fuse)
    return (sums / n).numpy()


def evaluate_points(model: nn.Module, origin: State, directions: Sequence[State],
                    coeffs, data: Data, loss_fn: LossFn | None = None, *, bn: str = "stored",
                    engine: str = "auto", batch_size: int | None = None,
                    points_per_batch: int | None = None, fuse: bool = True) -> pd.DataFrame:
    """Loss and accuracy at the points ``origin + Σ_d coeffs[p, d]·directions[d]``.

    The general form of every landscape here. ``coeffs`` is (points, directions);
    returns a DataFrame with columns ``loss, accuracy`` (one row per point, in
    order). Options as in the module docstring.
    """
    like = model.state_dict()
    c = torch.as_tensor(np.asarray(coeffs, dtype=np.float64)).reshape(-1, len(directions))
    pts = _Points(_as_state(origin, like, "origin"),
                  [_direction(d, like, f"direction {i}") for i, d in enumerate(directions)], c)
    res = _loss_table(model, pts, data, loss_fn, engine=engine, bn=bn, batch_size=batch_size,
                      points_per_batch=points_per_batch, fuse=fuse)
    return pd.DataFrame({"loss": res[:, 0], "accuracy": res[:, 1]})


def _values(v) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(-1)


# --------------------------------------------------------------------------- 1-D and 2-D


def interpolate(model: nn.Module, start: State, end: State, alphas, data: Data,
                loss_fn: LossFn | None = None, **options) -> pd.DataFrame:
    """Loss and accuracy along ``start + α·(end − start)`` for each ``α`` in ``alphas``.

    ``start`` and ``end`` are state dicts of ``model``; ``α`` may lie outside
    [0, 1]. Float buffers (BN statistics) are interpolated too; integer buffers
    come from ``start``. Returns columns ``alpha, loss, accuracy``. Options:
    ``bn``, ``engine``, ``batch_size``, ``points_per_batch`` (module docstring).
    """
    a = _values(alphas)
    df = evaluate_points(model, start, [_diff(end, start)], a[:, None], data, loss_fn, **options)
    df.insert(0, "alpha", a)
    return df


def _grid(xs, ys) -> tuple[np.ndarray, np.ndarray]:
    """All ``(x, y)`` pairs, ``x`` outer and ``y`` inner (row-major over ``xs`` × ``ys``)."""
    g = np.array(list(itertools.product(_values(xs), _values(ys))), dtype=np.float64).reshape(-1, 2)
    return g[:, 0], g[:, 1]


def surface(model: nn.Module, origin: State, dir_x: State, dir_y: State, xs, ys, data: Data,
            loss_fn: LossFn | None = None, **options) -> pd.DataFrame:
    """Loss and accuracy on the plane ``origin + x·dir_x + y·dir_y`` over the grid ``xs × ys``.

    ``dir_x``/``dir_y`` are (possibly partial) state dicts, e.g. from
    :func:`random_direction` or :func:`pca_directions`. Returns columns
    ``x, y, loss, accuracy``, one row per grid point (``x`` outer, ``y`` inner).
    """
    x, y = _grid(xs, ys)
    df = evaluate_points(model, origin, [dir_x, dir_y], np.stack([x, y], 1), data, loss_fn, **options)
    df.insert(0, "y", y)
    df.insert(0, "x", x)
    return df


def bilinear_surface(model: nn.Module, corners: Sequence[State], xs, ys, data: Data,
                     loss_fn: LossFn | None = None, **options) -> pd.DataFrame:
    """im2016's bilinear plane through four states ``(θ00, θ10, θ01, θ11)``.

    The point at ``(x, y)`` is ``(1−x)(1−y)θ00 + x(1−y)θ10 + (1−x)yθ01 + xyθ11``,
    so the corners sit at (0,0), (1,0), (0,1), (1,1). Returns ``x, y, loss, accuracy``.
    """
    if len(corners) != 4:
        raise ValueError(f"bilinear_surface needs 4 corner states, got {len(corners)}")
    t00, t10, t01, t11 = corners
    d_x, d_y = _diff(t10, t00), _diff(t01, t00)
    d_xy = {k: t11[k] - t10[k] - t01[k] + t00[k] for k in d_x}
    x, y = _grid(xs, ys)
    df = evaluate_points(model, t00, [d_x, d_y, d_xy], np.stack([x, y, x * y], 1), data, loss_fn,
                         **options)
    df.insert(0, "y", y)
    df.insert(0, "x", x)
    return df


def barycentric_surface(model: nn.Module, theta0: State, theta1: State, theta2: State, xs, ys,
                        data: Data, loss_fn: LossFn | None = None, *, simplex_only: bool = False,
                        **options) -> pd.DataFrame:
    """im2016's plane through three states: ``θ0 + a(θ1 − θ0) + b(θ2 − θ0)``.

    ``a`` runs over ``xs`` and ``b`` over ``ys`` (θ0 at (0,0), θ1 at (1,0), θ2 at
    (0,1)); ``simplex_only`` keeps the points with ``a, b ≥ 0, a + b ≤ 1``. Returns
    ``x, y`` (= ``a, b``), the barycentric coordinates ``w0 = 1−a−b, w1 = a, w2 = b``,
    ``loss, accuracy``.
    """
    a, b = _grid(xs, ys)
    if simplex_only:
        keep = (a >= -1e-12) & (b >= -1e-12) & (a + b <= 1 + 1e-12)
        a, b = a[keep], b[keep]
    df = evaluate_points(model, theta0, [_diff(theta1, theta0), _diff(theta2, theta0)],
                         np.stack([a, b], 1), data, loss_fn, **options)
    for name, col in reversed((("x", a), ("y", b), ("w0", 1 - a - b), ("w1", a), ("w2", b))):
        df.insert(0, name, col)
    return df


def _param_names(model: nn.Module, state: State) -> list[str]:
    names = [n for n, _ in model.named_parameters()]
    return [n for n in names if n in state and state[n].is_floating_point()]


def distance_path(model: nn.Module, final: State, init: State, distances, data: Data,
                  loss_fn: LossFn | None = None, **options) -> pd.DataFrame:
    """Loss against absolute distance: ``θ(λ) = θ1 + λ(θ0 − θ1)/‖θ0 − θ1‖`` (im2016 Fig. 6).

    ``final`` is θ1, ``init`` is θ0; ``λ`` (``distances``) is in parameter-space
    distance units (the norm is over the model's parameters), so ``λ = ‖θ0 − θ1‖``
    is the init and larger ``λ`` continue past it. Float buffers move along with
    the parameters (they reach θ0's at the init). Returns ``distance, alpha, loss,
    accuracy`` with ``alpha = λ/‖θ0 − θ1‖``.
    """
    lam = _values(distances)
    names = _param_names(model, final)
    norm = math.sqrt(sum(float((init[k].double() - final[k].double()).pow(2).sum()) for k in names))
    if norm == 0:
        raise ValueError("final and init are the same point")
    df = evaluate_points(model, final, [_diff(init, final)], (lam / norm)[:, None], data, loss_fn,
                         **options)
    df.insert(0, "alpha", lam / norm)
    df.insert(0, "distance", lam)
    return df


# --------------------------------------------------------------------------- functional distance


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Softmax outputs; ``[1 − σ, σ]`` for a one-column (binary) output."""
    if logits.dim() == 2 and logits.shape[1] == 1:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p], dim=1)
    return F.softmax(logits, dim=-1)


def _functional_reducer(logits, y, ref_probs, ref_labels):
    p = probabilities(logits)
    return torch.stack([(p - ref_probs).pow(2).sum().double(),
                        (predictions(logits) != ref_labels).sum().double()])


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
    bn = options.get("bn", "stored")
    like = model.state_dict()
    a = _values(alphas)
    start_s = _as_state(start, like, "start")
    ref = start if reference == "start" else end if reference == "end" else reference
    device = model_device(model)
    batches = _materialize(data, device, uses_channels_last(model), options.get("batch_size"))
    # reference outputs, batch by batch
    saved = {k: v.clone() for k, v in like.items()}
    try:
        with torch.no_grad(), eval_mode(model):
            model.load_state_dict(_as_state(ref, like, "reference"))
            if bn == "recompute":
                _recompute_bn(model, _bn_modules(model), batches)
            extras = []
            for x, _ in batches:
                logits = model(x)
                extras.append((probabilities(logits), predictions(logits)))
    finally:
        model.load_state_dict(saved)
    pts = _Points(start_s, [_direction(_diff(end, start), like, "end − start")],
                  torch.as_tensor(a)[:, None])
    n = sum(int(y.shape[0]) for _, y in batches)
    sums = _evaluate(model, pts, batches, _functional_reducer, extras, engine=options.get("engine", "auto"),
                     bn=bn, points_per_batch=options.get("points_per_batch"),
                     fuse=options.get("fuse", True)).numpy() / n
    return pd.DataFrame({"alpha": a, "functional_distance": np.sqrt(sums[:, 0]),
                         "disagreement": sums[:, 1]})


# --------------------------------------------------------------------------- directions


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
    around the final point: ``surface(model, final, p.dir_x, p.dir_y, ...)``.
    """
    if len(checkpoints) < 2:
        raise ValueError("pca_directions needs at least 2 checkpoints")
    final = final if final is not None else checkpoints[-1]
    keys = list(names) if names is not None else \
        [k for k, v in final.items() if v.is_floating_point() and not _is_stat(k)]
    ref = torch.cat([final[k].detach().double().reshape(-1).cpu() for k in keys])
    m = torch.stack([torch.cat([c[k].detach().double().reshape(-1).cpu() for k in keys]) - ref
                     for c in checkpoints])
    mc = m - m.mean(0, keepdim=True) if center else m
    # the small Gram matrix instead of a (checkpoints × parameters) SVD
    gram = mc @ mc.T
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
    out_dirs = []
    for v in dirs:
        d, off = {}, 0
        for k in keys:
            n = final[k].numel()
            d[k] = v[off:off + n].view(final[k].shape).to(final[k].device, final[k].dtype)
            off += n
        out_dirs.append(d)
    return PCADirections(out_dirs[0], out_dirs[1],
                         pd.DataFrame({"index": np.arange(len(checkpoints)), "x": coords[:, 0],
                                       "y": coords[:, 1]}),
                         var[:2], ratio, keys)
