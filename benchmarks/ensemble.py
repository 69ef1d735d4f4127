"""zhang2018's ensembles: steps/s of :class:`lossland.ensemble.Ensemble` against a sequential
loop over ``nn.Module`` copies (the naive way), ``torch.func.vmap`` over stacked parameters
(the peer approach) and the arithmetic limit, in one process; and the time of one exact
Hessian of the 1320-parameter net.

    python benchmarks/ensemble.py [--members 8,64,256] [--steps 200] [--threads N] [--repeats 2]
                                  [--device cpu|cuda]

The net is zhang2018's ``MLP(108, 1, hidden=(10, 10, 10), output_bias=False)`` (1320
parameters, ReLU, binary cross-entropy on one logit) on its data: the 500
airplane/automobile training images of the embedded CIFAR-10 subset at 6×6×3, flattened
to ``(500, 108)``, targets 0/1. Weight decay 1e-4, learning rate 0.1 everywhere. What is
timed, per member count ``M`` (every member its own initialisation, seed 0):

* full batch (what :func:`lossland.dynamics.gradient_descent` does a step):
  ours: ``_, g = ens.loss_and_grad(x, y, weight_decay=1e-4)`` and ``ens.flat.sub_(lr·g)``;
  sequential: for each of ``M`` ``nn.Module`` copies, ``loss.backward()`` and
  ``p -= lr·(p.grad + wd·p)`` (the naive way; the decay added to the gradient as
  ``torch.optim.SGD`` does, cheaper than putting it in the graph);
  vmap: ``vmap(grad(loss))`` of ``functional_call`` over ``stack_module_state``'s stacked
  parameters, updated in place;
  limit: the multiply-adds a step cannot avoid, ``2·N·M·(3·W − 108·10)`` FLOPs with ``W``
  = 1290 weights (the forward, the weight gradients and the input gradients of every layer
  but the first), at the FLOP/s of one large float32 matrix product (2048² on the CPU,
  4096² on CUDA) timed in the same rounds at the same thread count (the best of the run);
* SGD, batch 50, one batch per member (what :func:`lossland.dynamics.sgd` does a step):
  each epoch a random order per member, ours ``ens.loss_and_grad(x[idx], y[idx], ...)``
  with ``idx`` ``(M, 50)``, the sequential loop each member on its own rows ``x[idx[i]]``;
* Langevin: ours is :func:`lossland.dynamics.langevin` called for ``K`` steps (every step
  the gradient-noise variance from 10 minibatches of 50, :func:`~lossland.dynamics.
  gradient_noise_variance`, and the Gaussian noise; one call also draws ``M`` generators
  and takes one closing full-batch record); sequential: per member, a random split into 10
  minibatches, 10 autograd gradients, their mean and unbiased variance, the noise, the step.

Steps per measurement: ``--steps`` full-batch and SGD steps at ``M ≤ 16``, scaled by
``16 / M`` above (at least 5), Langevin an eighth of that (at least 2); the same count for
every method of a row. Before timing, the sequential loop, the ensemble and vmap take
three full-batch steps (and the loop and the ensemble three SGD steps) from the same
weights and must agree to 1e-5 (printed). Each row's methods are timed in interleaved
rounds, ``--repeats`` of them after a one-step warm-up of each; a method's rate is its best
round. Last, ``exact_spectrum(model, (x, y), weight_decay=1e-4)`` (the dense Hessian by
batched Hessian-vector products, then ``eigvalsh``) on a member after the timed steps, in
float32 and float64, seconds as the median of 3.

Goal: at least 20× the sequential loop at 64 members (2-core CPU). Use ``--threads 1``
when another process holds a core: two threads contending for one core run several times
slower and erratically.
"""

from __future__ import annotations

import argparse
import copy
import math
import sys
import time

import torch
from _common import sync
from torch.func import functional_call, grad, stack_module_state, vmap

import lossland
from lossland import dynamics
from lossland.curvature.entropy import exact_spectrum
from lossland.ensemble import Ensemble
from lossland.models.mlp import MLP

LR, WD, BATCH, CHUNKS = 0.1, 1e-4, 50, 10
F = torch.nn.functional


def _data(device):
    ds = lossland.prepare(lossland.read_source("embedded"), classes=["airplane", "automobile"], train_size=500,
                          image_size=6)
    train = ds.splits["train"]
    return train.x.reshape(len(train.y), -1).contiguous().to(device), train.y.float().to(device)


def _nets(m: int, device) -> list:
    torch.manual_seed(0)
    return [MLP(108, 1, hidden=(10, 10, 10), output_bias=False).to(device) for _ in range(m)]


def _flat(nets) -> torch.Tensor:
    return Ensemble.from_models(nets).flat


# ---------------------------------------------------------------- the sequential loop (naive)

def _module_step(net, x, y) -> None:
    """One autograd step of one ``nn.Module``: ``loss.backward()``, ``p -= lr (p.grad + wd p)``."""
    net.zero_grad(set_to_none=True)
    F.binary_cross_entropy_with_logits(net(x)[:, 0], y).backward()
    with torch.no_grad():
        for p in net.parameters():
            p.sub_(LR * (p.grad + WD * p))


def _module_langevin_step(net, x, y, gen, device) -> None:
    """One Langevin step of one ``nn.Module``: 10 minibatch gradients, their mean and unbiased
    variance per parameter, ``θ -= lr (mean + σ·ξ)``."""
    params = list(net.parameters())
    order = torch.randperm(len(y), generator=gen).to(device)
    rows = []
    for idx in order.view(CHUNKS, -1):
        net.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(net(x[idx])[:, 0], y[idx]).backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in params]))
    g = torch.stack(rows)
    noise = torch.randn(g.shape[1], generator=gen).to(g)
    with torch.no_grad():
        step = g.mean(0).add_(torch.cat([p.reshape(-1) for p in params]), alpha=WD).add_(noise.mul_(g.var(0).sqrt_()))
        at = 0
        for p in params:
            p.sub_(LR * step[at:at + p.numel()].view_as(p))
            at += p.numel()


def _orders(gen, m: int, n: int, device) -> torch.Tensor:
    """``(M, N)``: a random order of the examples per member."""
    return torch.rand(m, n, generator=gen).argsort(1).to(device)


# ---------------------------------------------------------------- vmap (the peer approach)

def _vmap_stepper(nets, x, y):
    """A full-batch step of ``vmap(grad(loss))`` over the stacked parameters, and those parameters."""
    params, _ = stack_module_state([copy.deepcopy(net) for net in nets])
    params = {k: v.detach() for k, v in params.items()}
    base = copy.deepcopy(nets[0]).to("meta")

    def member_loss(p, xs, ys):
        out = functional_call(base, (p,), (xs,))[:, 0]
        return F.binary_cross_entropy_with_logits(out, ys) + 0.5 * WD * sum((v ** 2).sum() for v in p.values())

    vgrad = vmap(grad(member_loss), in_dims=(0, None, None))

    def step():
        g = vgrad(params, x, y)
        for k, v in params.items():
            v.sub_(LR * g[k])

    return step, params


# ---------------------------------------------------------------- timing

def _matmul(device):
    """One large float32 matrix product and its FLOPs (the limit's rate)."""
    size = 4096 if device.type == "cuda" else 2048
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    return (lambda k: [a @ b for _ in range(k)]), 2.0 * size ** 3


def _rounds(fns: dict, steps: int, repeats: int, device) -> dict:
    """Steps/s of each ``fn(k)`` (``k`` steps): the best of ``repeats`` interleaved rounds of
    ``steps`` steps after a one-step warm-up of each."""
    for fn in fns.values():
        fn(1)
    sync(device)
    best = {name: math.inf for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            sync(device)
            start = time.perf_counter()
            fn(steps)
            sync(device)
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: steps / t for name, t in best.items()}


def _check(x, y, device) -> str:
    """The sequential loop, the ensemble and vmap after three full-batch steps from the same
    weights, and the loop and the ensemble after three SGD steps on the same batches."""
    nets = _nets(8, device)
    ens = Ensemble.from_models(nets)
    vstep, params = _vmap_stepper(nets, x, y)
    for _ in range(3):
        ens.flat.sub_(LR * ens.loss_and_grad(x, y, weight_decay=WD)[1])
        for net in nets:
            _module_step(net, x, y)
        vstep()
    ref = _flat(nets)
    vflat = torch.cat([params[k].reshape(8, -1) for k, _ in nets[0].named_parameters()], 1)
    d_full, d_vmap = float((ens.flat - ref).abs().max()), float((vflat - ref).abs().max())
    idx = _orders(torch.Generator().manual_seed(0), 8, len(y), device)[:, :3 * BATCH]
    for s in range(3):
        b = idx[:, s * BATCH:(s + 1) * BATCH]
        ens.flat.sub_(LR * ens.loss_and_grad(x[b], y[b], weight_decay=WD)[1])
        for i, net in enumerate(nets):
            _module_step(net, x[b[i]], y[b[i]])
    d_sgd = float((ens.flat - _flat(nets)).abs().max())
    ok = max(d_full, d_vmap, d_sgd) < 1e-5
    return (f"check (8 members, 3 steps): max |Δθ| ensemble vs sequential {d_full:.1e} (full batch), "
            f"{d_sgd:.1e} (+3 SGD steps); vmap vs sequential {d_vmap:.1e}: {'ok' if ok else 'DIFFERENT'}")


def _row_rates(m: int, args, x, y, device, rate: list) -> list:
    n = len(y)
    nets = _nets(m, device)
    ens = Ensemble.from_models(nets)
    steps = max(5, args.steps * 16 // max(m, 16))
    gen = torch.Generator().manual_seed(1)
    matmul, matmul_flops = _matmul(device)

    def ours(k):
        for _ in range(k):
            _, g = ens.loss_and_grad(x, y, weight_decay=WD)
            ens.flat.sub_(g.mul_(LR))

    def sequential(k):
        for _ in range(k):
            for net in nets:
                _module_step(net, x, y)

    vstep, _ = _vmap_stepper(nets, x, y)

    def vmapped(k):
        for _ in range(k):
            vstep()

    full = _rounds({"ours": ours, "sequential": sequential, "vmap": vmapped, "matmul": matmul},
                   steps, args.repeats, device)
    rate[0] = max(rate[0], full.pop("matmul") * matmul_flops)

    per_epoch = n // BATCH
    state = {"ours": [0, None], "sequential": [0, None]}

    def batches(name, k):   # the next k index batches (M, 50) of this method, a new order each epoch
        s = state[name]
        for _ in range(k):
            if s[0] % per_epoch == 0:
                s[1] = _orders(gen, m, n, device)
            j = s[0] % per_epoch
            s[0] += 1
            yield s[1][:, j * BATCH:(j + 1) * BATCH]

    def sgd_ours(k):
        for idx in batches("ours", k):
            _, g = ens.loss_and_grad(x[idx], y[idx], weight_decay=WD)
            ens.flat.sub_(g.mul_(LR))

    def sgd_sequential(k):
        for idx in batches("sequential", k):
            for i, net in enumerate(nets):
                _module_step(net, x[idx[i]], y[idx[i]])

    sgd = _rounds({"ours": sgd_ours, "sequential": sgd_sequential}, steps, args.repeats, device)

    seeds = list(range(m))

    def langevin_ours(k):
        dynamics.langevin(ens, x, y, lr=LR, steps=k, seeds=seeds, chunks=CHUNKS, weight_decay=WD)

    def langevin_sequential(k):
        for _ in range(k):
            for net in nets:
                _module_langevin_step(net, x, y, gen, device)

    lsteps = max(2, steps // 8)
    lan = _rounds({"ours": langevin_ours, "sequential": langevin_sequential}, lsteps, args.repeats, device)
    flops = 2.0 * n * m * (3 * sum(o * i for o, i, _ in ens.shapes) - ens.shapes[0][0] * ens.shapes[0][1])
    return [(m, "full", full, flops, steps), (m, "sgd b50", sgd, None, steps), (m, "langevin", lan, None, lsteps)], ens


def _fmt(v, spec):
    return format(v, spec) if v is not None else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", default="8,64,256")
    ap.add_argument("--steps", type=int, default=200,
                    help="timed full-batch and SGD steps per measurement at M <= 16 (x 16/M above, Langevin / 8)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    begin = time.perf_counter()
    x, y = _data(device)
    print(f"device {device}, {torch.get_num_threads()} threads; {len(y)} images of {x.shape[1]} features, "
          f"MLP(108, 1, hidden=(10, 10, 10), output_bias=False), 1320 parameters")
    print(_check(x, y, device))

    rows, rate, ens = [], [0.0], None
    for m in [int(v) for v in args.members.split(",")]:
        print(f"  timing {m} members ...", file=sys.stderr, flush=True)
        got, ens = _row_rates(m, args, x, y, device, rate)
        rows += got

    print(f"\nsteps/s; limit at {rate[0] / 1e9:.1f} GFLOP/s (float32 matmul, best of the run)")
    print(f"{'members':>7} {'step':>9} {'ours':>9} {'sequential':>11} {'vmap':>8} {'limit':>8} "
          f"{'ours/seq':>9} {'ours/vmap':>10} {'ours/limit':>11} {'steps':>6}")
    for m, kind, r, flops, steps in rows:
        limit = rate[0] / flops if flops else None
        vm = r.get("vmap")
        print(f"{m:>7} {kind:>9} {r['ours']:>9.1f} {r['sequential']:>11.2f} {_fmt(vm, '>8.1f'):>8} "
              f"{_fmt(limit, '>8.0f'):>8} {r['ours'] / r['sequential']:>9.1f} "
              f"{_fmt(vm and r['ours'] / vm, '>10.1f'):>10} {_fmt(limit and r['ours'] / limit, '>11.2f'):>11} "
              f"{steps:>6}")

    net = ens.load_into(_nets(1, device)[0], 0)   # a member after the timed steps
    print()
    for dtype in (torch.float32, torch.float64):
        model, xs, ys = copy.deepcopy(net).to(dtype), x.to(dtype), y.to(dtype)
        times = []
        for _ in range(3):
            sync(device)
            start = time.perf_counter()
            exact_spectrum(model, (xs, ys), weight_decay=WD)
            sync(device)
            times.append(time.perf_counter() - start)
        print(f"exact_spectrum (1320 x 1320 Hessian + eigvalsh, {len(y)} images), {str(dtype).split('.')[-1]}: "
              f"{sorted(times)[1]:.2f} s (median of 3)")
    print(f"total {time.perf_counter() - begin:.0f} s")


if __name__ == "__main__":
    main()
