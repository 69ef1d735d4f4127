"""Hessian engine benchmark: lossland vs PyHessian, and the exact Hessian.

One process. On the same model and data (real CIFAR-10 images from the
embedded subset) it times

* the top Hessian eigenvalue at the same relative tolerance (lossland:
  Lanczos; PyHessian: power iteration), with the number of Hessian-vector
  products each used and each value's error against a tight Lanczos reference;
* the trace to the same tolerance: both stop once the standard error is at most
  ``--trace-tol`` of the estimate (lossland: Krylov-deflated Hutchinson with
  ``tol``; PyHessian: Hutchinson, run for the number of probes its own sample
  sequence needs to meet that rule), with each value's error against a tight
  reference;
* the Hutchinson trace with the same number of Rademacher probes;
* the exact dense Hessian of zhang2018's 1320-parameter MLP on 500 samples
  (lossland.hessian vs the naive torch.autograd.functional.hessian and
  torch.func.hessian).

Times include building each side's gradient graph. Run::

    python benchmarks/hessian.py [--device cuda] [--model mlp|nin] [--n 1000] [--probes 50]
                                 [--trace-tol 0.01 0.005]
"""

from __future__ import annotations

import argparse
import math
import platform
import time

import torch
from _common import sync  # noqa: E402  (benchmarks/ is on sys.path)
from torch import nn

import lossland


def timed(fn, device, repeats=1):
    """(best wall time, best process CPU time over all threads, last result) of ``repeats`` runs."""
    best, best_cpu, out = math.inf, math.inf, None
    for _ in range(repeats):
        sync(device)
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
    return best, best_cpu, out


def timed_pair(fa, fb, device, repeats):
    """:func:`timed` of ``fa`` and ``fb`` run alternately ``repeats`` times (so that
    load from other processes hits both alike)."""
    ta = tb = ca = cb = math.inf
    ra = rb = None
    for _ in range(repeats):
        t, c, ra = timed(fa, device)
        ta, ca = min(ta, t), min(ca, c)
        t, c, rb = timed(fb, device)
        tb, cb = min(tb, t), min(cb, c)
    return (ta, ca, ra), (tb, cb, rb)


class Counter:
    """Counts calls of PyHessian's hessian_vector_product."""

    def __init__(self, module):
        self.module, self.orig, self.calls = module, module.hessian_vector_product, 0

        def wrapped(*a, **k):
            self.calls += 1
            return self.orig(*a, **k)

        module.hessian_vector_product = wrapped

    def reset(self):
        self.calls = 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", default="mlp", choices=["mlp", "nin"],
                    help="mlp: hidden 64-64 on 32x32x3 inputs; nin: width 0.25, depth 1")
    ap.add_argument("--n", type=int, default=1000, help="training images")
    ap.add_argument("--image-size", type=int, default=None)
    ap.add_argument("--probes", type=int, default=50)
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--trace-tol", type=float, nargs="+", default=[0.01, 0.005],
                    help="relative standard errors the trace estimates must reach")
    ap.add_argument("--trace-budget", type=int, default=1500, help="most products for the trace to tolerance")
    ap.add_argument("--ref-probes", type=int, default=1200, help="products of the reference trace (deflated)")
    ap.add_argument("--repeats", type=int, default=3, help="best of this many runs for each timing "
                    "(autograd.functional.hessian: one run)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--skip-naive", action="store_true", help="skip torch.autograd.functional.hessian")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    import sys

    import pyhessian

    counter = Counter(sys.modules["pyhessian.hessian"])  # the module (the package exports the class)
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
             f" ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"))

    raw = lossland.read_source("embedded")
    ds = lossland.prepare(raw, train_size=args.n, image_size=args.image_size, seed=0)
    x, y = (t.to(device) for t in ds["train"].as_tuple())
    spec = ({"arch": "mlp", "hidden": [64, 64]} if args.model == "mlp"
            else {"arch": "nin", "width": 0.25, "depth": 1})
    model = lossland.create_model(spec, ds.input_shape, ds.num_classes, seed=0).to(device)
    p = lossland.count_parameters(model)
    print(f"model {spec} ({p} parameters), {len(y)} images {tuple(ds.input_shape)}; "
          f"tol {args.tol}, {args.probes} probes")
    crit = nn.CrossEntropyLoss()
    rows = []

    # ---------------------------------------------------------------- top eigenvalue
    ref = float(lossland.top_eigenvalues(model, (x, y), tol=1e-9, max_iter=300)[0])

    def ours_top():
        op = lossland.HessianOperator(model, (x, y))
        return op.eigenvalues(1, tol=args.tol, max_iter=100, return_info=True)

    t_ours, c_ours, (vals, info) = timed(ours_top, device, repeats=args.repeats)

    def ph_top(tol, max_iter):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        comp = pyhessian.hessian(model, crit, data=(x, y), cuda=device.type == "cuda")
        ev, _ = comp.eigenvalues(maxIter=max_iter, tol=tol, top_n=1)
        model.zero_grad(set_to_none=True)
        return ev[0]

    err = abs(float(vals[0]) - ref) / abs(ref)
    for label, tol, max_iter in (("same tol", args.tol, 100), ("tol/100", args.tol / 100, 1000)):
        t_ph, c_ph, ph_val = timed(lambda: ph_top(tol, max_iter), device, repeats=args.repeats)
        counter.reset()
        ph_top(tol, max_iter)
        rows.append((f"top eigenvalue (PyHessian {label})", t_ours, t_ph, c_ours, c_ph, info["iterations"],
                     counter.calls,
                     f"λ1 ref {ref:.6g}: lossland err {err:.1e}, "
                     f"pyhessian {ph_val:.6g} err {abs(ph_val - ref) / abs(ref):.1e}"))

    # ---------------------------------------------------------------- trace to a tolerance
    def ph_samples(n):
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)
        comp = pyhessian.hessian(model, crit, data=(x, y), cuda=device.type == "cuda")
        samples = comp.trace(maxIter=n, tol=-1.0)  # tol < 0: never stops early
        model.zero_grad(set_to_none=True)
        return samples

    # PyHessian has no standard-error rule: find from its own (seeded) sample sequence
    # the first n ≥ 8 at which std/√n ≤ tol·|mean|, then time it with maxIter = n
    pilot = torch.tensor(ph_samples(args.trace_budget), dtype=torch.float64)
    tref = lossland.hessian_trace(model, (x, y), n_probes=args.ref_probes, method="deflated",
                                  lanczos_steps=args.ref_probes // 6, seed=12345)
    for trace_tol in args.trace_tol:
        n_ph = args.trace_budget
        for n in range(8, len(pilot) + 1):
            if float(pilot[:n].std()) / n ** 0.5 <= trace_tol * abs(float(pilot[:n].mean())):
                n_ph = n
                break
        reached = "" if n_ph < args.trace_budget else " (budget spent)"

        def ours_tol():
            return lossland.hessian_trace(model, (x, y), n_probes=args.trace_budget, method="deflated",
                                          tol=trace_tol)

        (t_ours, c_ours, est), (t_ph, c_ph, samples) = timed_pair(ours_tol, lambda: ph_samples(n_ph), device,
                                                                 args.repeats)
        ph_mean = sum(samples) / len(samples)
        rows.append((f"trace to {trace_tol:g} rel. stderr", t_ours, t_ph, c_ours, c_ph, est.n_matvecs, n_ph,
                     f"ref {tref.estimate:.5g} ± {tref.stderr:.2g}: lossland {est.estimate:.5g} "
                     f"(err {abs(est.estimate - tref.estimate) / abs(tref.estimate):.2%}), pyhessian {ph_mean:.5g} "
                     f"(err {abs(ph_mean - tref.estimate) / abs(tref.estimate):.2%}){reached}"))

    # ---------------------------------------------------------------- trace, same probes
    def ours_trace():
        return lossland.hessian_trace(model, (x, y), n_probes=args.probes)


    def ph_trace():
        return ph_samples(args.probes)

    (t_ours, c_ours, est), (t_ph, c_ph, samples) = timed_pair(ours_trace, ph_trace, device, args.repeats)
    counter.reset()
    ph_trace()
    ph_mean = sum(samples) / len(samples)
    ph_se = (sum((s - ph_mean) ** 2 for s in samples) / (len(samples) - 1) / len(samples)) ** 0.5
    rows.append(("trace (Hutchinson)", t_ours, t_ph, c_ours, c_ph, est.n_matvecs, counter.calls,
                 f"lossland {est.estimate:.5g} ± {est.stderr:.2g}, pyhessian {ph_mean:.5g} ± {ph_se:.2g}"))

    def ours_hpp():
        return lossland.hessian_trace(model, (x, y), n_probes=args.probes, method="hutch++")

    t_hpp, c_hpp, hpp = timed(ours_hpp, device, repeats=args.repeats)
    rows.append(("trace (Hutch++)", t_hpp, t_ph, c_hpp, c_ph, hpp.n_matvecs, counter.calls,
                 f"lossland {hpp.estimate:.5g} ± {hpp.stderr:.2g} (vs pyhessian Hutchinson)"))

    # ---------------------------------------------------------------- exact Hessian, zhang2018 net
    small = lossland.prepare(raw, classes=["airplane", "automobile"], train_size=500, image_size=6, seed=0)
    xs, ys = (t.to(device) for t in small["train"].as_tuple())
    net = lossland.create_model({"arch": "mlp", "hidden": [10, 10, 10], "activation": "sigmoid",
                                 "binary": True, "output_bias": False}, small.input_shape, 2, seed=0).to(device)
    pn = lossland.count_parameters(net)
    lossland.hessian(net, (xs, ys))  # warm-up
    t_dense, c_dense, h = timed(lambda: lossland.hessian(net, (xs, ys)), device, repeats=args.repeats)

    names = [n for n, _ in net.named_parameters()]
    shapes = [q.shape for q in net.parameters()]
    theta = torch.nn.utils.parameters_to_vector(net.parameters()).detach()

    def flat_loss(t):
        parts = t.split([math.prod(s) for s in shapes])
        ps = {n: v.view(s) for n, v, s in zip(names, parts, shapes)}
        return lossland.default_loss(torch.func.functional_call(net, ps, (xs,)), ys)

    t_func, c_func, h_func = timed(lambda: torch.func.hessian(flat_loss)(theta), device, repeats=args.repeats)
    rows.append((f"exact Hessian P={pn}, N=500 vs torch.func.hessian", t_dense, t_func, c_dense, c_func, pn, pn,
                 f"max |diff| {float((h - h_func).abs().max()):.1e}"))
    if not args.skip_naive:
        t_naive, c_naive, h_naive = timed(lambda: torch.autograd.functional.hessian(flat_loss, theta), device)
        rows.append((f"exact Hessian P={pn}, N=500 vs autograd.functional", t_dense, t_naive, c_dense, c_naive, pn, pn,
                     f"max |diff| {float((h - h_naive).abs().max()):.1e}"))

    # ---------------------------------------------------------------- table
    print()
    print(f"{'task':<50} {'lossland s':>10} {'baseline s':>10} {'ratio':>6} {'cpu ratio':>9} "
          f"{'HVPs':>5} {'base HVPs':>9}  notes")
    for task, a, b, ca, cb, na, nb, note in rows:
        print(f"{task:<50} {a:>10.3f} {b:>10.3f} {a / b:>6.3f} {ca / cb:>9.3f} {na:>5} {nb:>9}  {note}")
    print("\ntimes: best wall clock of the runs; ratio = lossland / baseline (PyHessian for the top "
          "eigenvalue and trace rows); cpu ratio: the same for process CPU time (all threads), less "
          "sensitive to other load on the machine. Goals: ratio ≤ 0.5, exact Hessian < 1 s.")


if __name__ == "__main__":
    main()
