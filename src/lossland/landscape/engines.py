"""The engines that evaluate a model at many points of a landscape: the loop, vmap, the
CUDA graph, the timing probe that chooses between loop and vmap, and :func:`_evaluate`
that dispatches (see the package docstring)."""

from __future__ import annotations

import math
import time
import warnings
from typing import Callable

import torch
from torch import nn

from ..evaluation import LossFn, correct_count, eval_mode
from ..fold import folded_copy
from .batchnorm import _bn_modules, _recompute_bn
from .points import _Points

Reducer = Callable[..., torch.Tensor]

ENGINES = ("auto", "loop", "vmap", "graph")
BN_MODES = ("stored", "recompute")
_PROBE_CACHE: dict[tuple, str] = {}
# below this many points a CUDA graph's capture costs more than it saves. Measured on an
# H200, NIN-¼, points/s graph ÷ loop: on 128 images (a workflow shard), 0.95 at 16 points,
# 1.19 at 49, 1.09 at 121; on 1000 images, where the forward itself keeps the GPU busy,
# 1.00–1.01 from 16 to 121 points
_GRAPH_MIN_POINTS = 25


def _loss_acc_reducer(loss_fn: LossFn) -> Reducer:
    def reduce(logits, y, *extra):
        n = y.shape[0]
        return torch.stack([loss_fn(logits, y).double() * n,
                            correct_count(logits, y)])
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
        lin = folded.linear_fold(pts.origin, pts.directions)
        if lin is not None:
            return folded.module, folded.target, _Points(*lin, pts.coeffs), None
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
            folded = folded_copy(model) if fuse and engine != "vmap" else None
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

