"""zhang2018's ensembles: steps/s of :class:`lossland.ensemble.Ensemble` against a sequential
loop over ``nn.Module`` copies (the naive way), ``torch.func.vmap`` over stacked parameters
(the peer approach) and the arithmetic limit, in one process; and the time of one exact
Hessian of the 1320-parameter net.

    python benchmarks/ensemble.py [--members 8,64,256] [--steps 100] [--threads N] [--repeats 2]
                                  [--device cpu|cuda]

The net is zhang2018's ``MLP(108, 1, hidden=(10, 10, 10), output_bias=False)`` (1320
parameters) on its data: the 500 airplane/automobile training images of the embedded
CIFAR-10 subset at 6×6×3. What is timed, per member count ``M``:

* full batch (what :func:`lossland.dynamics.gradient_descent` does a step):
  ours ``ens.loss_and_grad(x, y, weight_decay=1e-4)`` and ``ens.flat -= lr·grad``;
  sequential: per member, autograd on its ``nn.Module`` and ``p -= lr·p.grad``;
  vmap: ``vmap(grad(loss))`` over ``stack_module_state`` with ``functional_call``;
  limit: the FLOPs of one forward and backward of all members (``6·N·P·M``: forward, input
  and weight gradients) at the float32 rate of one large matrix product measured here;
* SGD (:func:`lossland.dynamics.sgd`, batch 50, one epoch = 10 steps) and Langevin
  (:func:`lossland.dynamics.langevin`, the noise re-estimated from 10 minibatches at every
  step), against the same steps done member by member with autograd.

Before timing, the ensemble and the sequential loop take a few full-batch steps from the
same weights and must agree (printed). Timings are the best of ``--repeats`` rounds after a
warm-up. Goal: at least 20× the sequential loop at 64 members on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import copy
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
                          test_size=100, image_size=6)
    x, y = ds["train"].x, ds["train"].y
    return x.reshape(len(y), -1).to(device), y.float().to(device)


def _nets(m: int, device) -> list:
    torch.manual_seed(0)
    return [MLP(108, 1, hidden=(10, 10, 10), output_bias=False).to(device) for _ in range(m)]


def _loss(model, x, y):
    out = model(x)[:, 0]
    return F.binary_cross_entropy_with_logits(out, y) + 0.5 * WD * sum((p ** 2).sum() for p in model.parameters())


def _sequential_step(nets, x, y):
    for net in nets:
        grads = torch.autograd.grad(_loss(net, x, y), list(net.parameters()))
        with torch.no_grad():
            for p, g in zip(net.parameters(), grads):
                p.sub_(LR * g)


def _sequential_langevin_step(nets, x, y, gen):
    """One Langevin step member by member: 10 minibatch gradients, their mean and variance, the noise."""
    n = len(y)
    for net in nets:
        order = torch.randperm(n, generator=gen).to(x.device)
        per = [torch.cat([g.reshape(-1) for g in torch.autograd.grad(_loss(net, x[c], y[c]), list(net.parameters()))])
               for c in order.view(CHUNKS, -1)]
        g = torch.stack(per)
        step = g.mean(0) + g.var(0).sqrt() * torch.randn(g.shape[1], generator=gen).to(g)
        with torch.no_grad():
            at = 0
            for p in net.parameters():
                p.sub_(LR * step[at:at + p.numel()].view_as(p))
                at += p.numel()


def _timed(fn, steps: int, repeats: int, device) -> float:
    """Steps per second: the best of ``repeats`` rounds of ``steps`` steps, after one warm-up step."""
    fn(1)
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn(steps)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return steps / best


def _matmul_rate(device) -> float:
    """FLOP/s of one large float32 matrix product (the arithmetic limit's rate)."""
    a = torch.randn(2048, 2048, device=device)
    a @ a
    best = float("inf")
    for _ in range(3):
        sync(device)
        start = time.perf_counter()
        a @ a
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * 2048 ** 3 / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", default="8,64,256")
    ap.add_argument("--steps", type=int, default=100, help="timed full-batch steps (SGD: 10 x, Langevin: / 4)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x, y = _data(device)
    n = len(y)
    rate = _matmul_rate(device)
    print(f"device {device}, {torch.get_num_threads()} threads; {n} images, 1320 parameters; "
          f"matmul rate {rate / 1e9:.1f} GFLOP/s")

    # agreement: three full-batch steps from the same weights
    nets = _nets(4, device)
    ens = Ensemble.from_models(nets)
    for _ in range(3):
        ens.flat.sub_(LR * ens.loss_and_grad(x, y, weight_decay=WD)[1])
        _sequential_step(nets, x, y)
    diff = float((ens.flat - Ensemble.from_models(nets).flat).abs().max())
    print(f"ensemble vs sequential after 3 steps: max |Δθ| = {diff:.2e} ({'ok' if diff < 1e-5 else 'DIFFERENT'})")

    print(f"\n{'members':>7} {'kind':>10} {'ours':>9} {'loop':>9} {'vmap':>9} {'limit':>9} "
          f"{'ours/loop':>10} {'ours/vmap':>10} {'ours/limit':>11}   (steps/s)")
    for m in [int(v) for v in args.members.split(",")]:
        nets = _nets(m, device)
        ens = Ensemble.from_models(nets)
        steps = max(5, args.steps * 64 // max(m, 64))

        def ours(k):
            for _ in range(k):
                ens.flat.sub_(LR * ens.loss_and_grad(x, y, weight_decay=WD)[1])

        def loop(k):
            for _ in range(k):
                _sequential_step(nets, x, y)

        params, _ = stack_module_state([copy.deepcopy(net) for net in nets])
        base = copy.deepcopy(nets[0]).to("meta")

        def member_loss(p, xs, ys):
            out = functional_call(base, (p,), (xs,))[:, 0]
            return F.binary_cross_entropy_with_logits(out, ys) + 0.5 * WD * sum((v ** 2).sum() for v in p.values())

        vgrad = vmap(grad(member_loss), in_dims=(0, None, None))

        def vmapped(k):
            nonlocal params
            for _ in range(k):
                g = vgrad(params, x, y)
                params = {name: v - LR * g[name] for name, v in params.items()}

        seq_steps = max(2, steps // 8) if m > 64 else steps
        r_ours = _timed(ours, steps, args.repeats, device)
        r_loop = _timed(loop, seq_steps, args.repeats, device)
        r_vmap = _timed(vmapped, max(2, steps // 4), args.repeats, device)
        r_limit = rate / (6.0 * n * ens.num_parameters * m)
        print(f"{m:>7} {'full':>10} {r_ours:>9.1f} {r_loop:>9.2f} {r_vmap:>9.1f} {r_limit:>9.1f} "
              f"{r_ours / r_loop:>10.1f} {r_ours / r_vmap:>10.1f} {r_ours / r_limit:>11.2f}")

        seeds = list(range(m))

        def sgd_ours(k):   # k epochs of 10 steps
            dynamics.sgd(ens, x, y, lr=LR, epochs=k, batch_size=BATCH, seeds=seeds, weight_decay=WD)

        def sgd_loop(k):
            gen = torch.Generator().manual_seed(0)
            for _ in range(k):
                for net in nets:
                    order = torch.randperm(n, generator=gen).to(device)
                    for idx in order.view(-1, BATCH):
                        _sequential_step([net], x[idx], y[idx])

        epochs = max(2, steps // 10)
        r_sgd = _timed(sgd_ours, epochs, args.repeats, device) * (n // BATCH)
        r_sgd_loop = _timed(sgd_loop, max(1, epochs // (8 if m > 64 else 2)), 1, device) * (n // BATCH)
        print(f"{m:>7} {'sgd b50':>10} {r_sgd:>9.1f} {r_sgd_loop:>9.2f} {'':>9} {'':>9} {r_sgd / r_sgd_loop:>10.1f}")

        def langevin_ours(k):
            dynamics.langevin(ens, x, y, lr=LR, steps=k, seeds=seeds, chunks=CHUNKS, weight_decay=WD)

        gen = torch.Generator().manual_seed(0)

        def langevin_loop(k):
            for _ in range(k):
                _sequential_langevin_step(nets, x, y, gen)

        lsteps = max(2, steps // 4)
        r_lan = _timed(langevin_ours, lsteps, args.repeats, device)
        r_lan_loop = _timed(langevin_loop, max(1, lsteps // (8 if m > 64 else 4)), 1, device)
        print(f"{m:>7} {'langevin':>10} {r_lan:>9.1f} {r_lan_loop:>9.2f} {'':>9} {'':>9} {r_lan / r_lan_loop:>10.1f}")

    net = _nets(1, device)[0]
    for dtype in (torch.float32, torch.float64):
        model, xs, ys = copy.deepcopy(net).to(dtype), x.to(dtype), y.to(dtype)
        times = []
        for _ in range(3):
            sync(device)
            start = time.perf_counter()
            exact_spectrum(model, (xs, ys), weight_decay=WD)
            sync(device)
            times.append(time.perf_counter() - start)
        print(f"exact Hessian + eigenvalues of one solution ({dtype}, {n} images): "
              f"{sorted(times)[1]:.2f} s (median of 3)")


if __name__ == "__main__":
    main()
