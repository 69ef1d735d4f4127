"""Hessian benchmark over the zoo: lossland vs PyHessian, model by model
(:data:`zoo.ZOO`), and the exact Hessian, in one process.

    python benchmarks/hessian.py [--models nin-bn,vgg,cnn,mlp,resnet] [--device cpu|cuda] [--n 1000]
                                 [--threads N] [--repeats 2] [--top-tol 1e-4] [--top5-err 1e-3]
                                 [--ph-trace-probes 34] [--trace-ref] [--skip-naive] [--skip-exact]

Every model comes from :func:`zoo.build` (seed 0, eval mode, contiguous NCHW, as a user
passes it; moved with ``.to(device)``) and is measured on the same ``--n`` embedded CIFAR-10
training images as one batch (``lossland.prepare(..., train_size=n, test_size=0, seed=0)``),
loss cross-entropy (``lossland.default_loss``; PyHessian: ``nn.CrossEntropyLoss()``). Per model:

1. HVP: one Hessian-vector product of ``lossland.HessianOperator(model, (x, y))`` after the
   first (its gradient graph is then cached), and separately operator construction plus the
   first product (graph build included); PyHessian's ``hessian_vector_product(comp.gradsH,
   comp.params, v)`` on a built ``pyhessian.hessian``; both against the limit, the best plain
   forward + backward (``torch.autograd.grad(loss, params)``, all images in one batch) in the
   contiguous and (conv models) channels-last memory format. A product timing is the mean of
   1 (CPU) or 5 (CUDA) consecutive products.
2. top-1: the eigenvalue of largest magnitude, what PyHessian's power iteration finds.
   Ours: ``lossland.top_eigenvalues(model, (x, y), k=1, tol=T, which="magnitude")``
   (Lanczos), its time including building the operator, T the loosest of 1e-3, 1e-4,
   1e-5, 1e-6 whose value is within ``--top-tol`` relative error of a reference
   (``top_eigenvalues(k=5, tol=1e-8, max_iter=--ref-iter, which="magnitude")``), found by a
   scan from loose to tight whose run at the chosen T is timed (best of it and
   ``--repeats`` − 1 more). PyHessian: one run of ``pyhessian.hessian(...)`` plus
   ``eigenvalues(maxIter=--ph-max-iter, tol=1e-7, top_n=5)`` (its default maxIter is 100),
   with every product's time and Rayleigh quotient ``vᵀHv`` (its running estimate)
   recorded; its time is that of the first product whose estimate is within the target,
   from before ``hessian()`` (an oracle stop no tolerance rule can beat: a lower bound on
   PyHessian's time to that accuracy, so the ratio is, if anything, generous to it). Where
   no estimate gets within the target, its whole run is timed and the row says so.
   Products: ours counted on the operator's ``matmat`` rows, PyHessian's calls of
   ``hessian_vector_product`` up to that stop.
3. top-5: the same with ``k=5``, the target every one of the five (by magnitude, in the
   order PyHessian's deflation finds them) within ``--top5-err`` of the reference; the
   oracle time is when the fifth got within it, the four before it having done so.
4. trace: PyHessian's Hutchinson with ``--ph-trace-probes`` Rademacher probes
   (``comp.trace(maxIter=N, tol=-inf)``: never stops early) gives a mean and standard error
   s = std/√N; ours is ``lossland.hessian_trace(model, (x, y), n_probes=2000, tol=s/|mean|)``
   with the library's default method, stopping once its standard error is at most ``tol`` of
   its estimate. With ``--trace-ref`` also each side's error against a tight deflated estimate
   (1200 products, 200 Lanczos steps; expensive).

Then, once: the exact dense Hessian of zhang2018's 1320-parameter MLP on 500 samples
(``lossland.hessian`` vs ``torch.func.hessian`` and, unless ``--skip-naive``, the naive
``torch.autograd.functional.hessian``; ``--skip-exact`` skips it). Timings are the best of
``--repeats`` runs, lossland and its baseline run alternately (so that other load on the
machine hits both alike). Ends with a summary table and the goals.
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import sys
import time
import warnings

import torch
import zoo
from _common import sync  # noqa: E402  (benchmarks/ is on sys.path)
from torch import nn

import lossland
from lossland.evaluation import has_conv2d

TOLS = (1e-3, 1e-4, 1e-5, 1e-6)  # scanned loose to tight
TRACE_BUDGET = 2000  # our trace's most products
GOALS = {"top1": 0.5, "top5": 0.2, "trace": 0.5}


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
    """Counts calls of PyHessian's hessian_vector_product and, while ``record`` is on, notes
    for each call its time, the eigenvalue PyHessian's power iteration is on (the number of
    eigenvectors its ``orthnormal`` deflates against) and the Rayleigh quotient ``vᵀHv`` of
    the unit vector multiplied: PyHessian's own estimate at that product."""

    def __init__(self, module):
        self.module, self.orig, self.calls = module, module.hessian_vector_product, 0
        self.record, self.current, self.log, self.reached, self.ref, self.target = False, 0, [], {}, [], 0.0
        orthnormal = module.orthnormal

        def wrapped(gradsH, params, v):
            i = self.current
            if self.record and i in self.reached:
                # the oracle stop: eigenvalue i is within the target already, so its power
                # iteration ends here (v, an exact eigenvector of this product, makes the next
                # estimate equal the last and PyHessian's own tolerance test break the loop)
                return [self.reached[i] * u for u in v]
            self.calls += 1
            hv = self.orig(gradsH, params, v)
            if self.record:
                rq = float(sum((h * u).sum() for h, u in zip(hv, v)))
                self.log.append((time.perf_counter(), i, rq))
                if i < len(self.ref) and abs(rq - self.ref[i]) <= self.target * abs(self.ref[i]):
                    self.reached[i] = rq
            return hv

        def deflating(w, v_list):
            self.current = len(v_list)
            return orthnormal(w, v_list)

        module.hessian_vector_product = wrapped
        module.orthnormal = deflating

    def reset(self, ref=(), target=0.0):
        """Zero the count; with ``ref``, stop each eigenvalue's iteration once its estimate
        is within ``target`` (relative) of ``ref[i]`` (see ``wrapped``)."""
        self.calls, self.current, self.log, self.reached = 0, 0, [], {}
        self.ref, self.target = list(ref), target


def oracle_seconds(log, t0, ref, target):
    """The earliest time (from ``t0``) at which PyHessian's running estimates of eigenvalues
    ``0 .. len(ref)-1`` had each been within ``target`` of ``ref`` (by magnitude, in the order
    it finds them), with the products used; ``(None, products)`` if one never was."""
    done, products = {}, 0
    for n, (t, i, rq) in enumerate(log, 1):
        if i < len(ref) and i not in done and abs(rq - ref[i]) <= target * abs(ref[i]):
            done[i] = (t - t0, n)
    if len(done) < len(ref):
        return None, len(log)
    seconds, products = max(done.values())
    return seconds, products


def counted_operator(model, data):
    """A :class:`lossland.HessianOperator` whose ``products`` attribute counts the vectors it multiplied."""
    op = lossland.HessianOperator(model, data)
    op.products = 0
    matmat = op.matmat

    def counting(vs):
        op.products += 1 if vs.dim() == 1 else int(vs.shape[0])
        return matmat(vs)

    op.matmat = counting
    return op


def rel_err(values, ref) -> float:
    """Largest relative error of ``values`` (sorted descending) against ``ref`` (descending)."""
    vals = sorted((float(v) for v in values), reverse=True)
    return max(abs(v - float(r)) / abs(float(r)) for v, r in zip(vals, ref))


def bench_model(name, args, ds, x, y, device, counter):
    """Every measurement of one model: prints its table, returns its summary row."""
    import pyhessian
    from pyhessian.utils import hessian_vector_product

    cuda = device.type == "cuda"
    build = lambda: zoo.build(name, ds.input_shape, ds.num_classes).to(device)  # noqa: E731
    model = build()
    params = lossland.count_parameters(model)
    conv = has_conv2d(model)
    crit = nn.CrossEntropyLoss()
    data = (x, y)
    print(f"\n=== {name}: {params} parameters, {'conv' if conv else 'no conv'} layers, {len(y)} images")
    rows = []

    def ph_build():
        model.zero_grad(set_to_none=True)
        return pyhessian.hessian(model, crit, data=data, cuda=cuda)

    def ph_done():
        model.zero_grad(set_to_none=True)  # PyHessian leaves the gradient graph in .grad

    # ---------------------------------------------------------------- 1. HVP vs forward + backward
    summary = {"model": name, "params": params}
    if "hvp" in args.sections:
        k = 5 if cuda else 1  # products per timing
        g = torch.Generator().manual_seed(0)
        op = lossland.HessianOperator(model, data)
        v = torch.randn(op.dim, generator=g).to(device)
        op.matvec(v)  # builds the cached graph
        comp = ph_build()
        v_ph = [torch.randn(p.shape, generator=g).to(device) for p in comp.params]
        fb_models = {"contiguous": (model, x)}
        if conv:
            fb_models["channels_last"] = (build().to(memory_format=torch.channels_last),
                                          x.contiguous(memory_format=torch.channels_last))

        def fwd_bwd(fmt):
            m, xx = fb_models[fmt]
            ps = [p for p in m.parameters() if p.requires_grad]
            for _ in range(k):
                torch.autograd.grad(lossland.default_loss(m(xx), y), ps)

        def ours_hvp():
            for _ in range(k):
                op.matvec(v)

        def ph_hvp():
            for _ in range(k):
                hessian_vector_product(comp.gradsH, comp.params, v_ph)

        def ours_first():
            return lossland.HessianOperator(model, data).matvec(v)

        def ph_first():
            c = ph_build()
            hessian_vector_product(c.gradsH, c.params, v_ph)
            del c

        contenders = [("ours", ours_hvp), ("ph", ph_hvp), ("first", ours_first), ("ph_first", ph_first)]
        contenders += [(f, lambda f=f: fwd_bwd(f)) for f in fb_models]
        for _, fn in contenders:  # warm-up
            fn()
        best = {}
        for _ in range(args.repeats):
            for key, fn in contenders:
                t, c, _ = timed(fn, device)
                prev = best.get(key, (math.inf, math.inf))
                best[key] = (min(prev[0], t), min(prev[1], c))
        per = {key: (t / (1 if "first" in key else k), c / (1 if "first" in key else k))
               for key, (t, c) in best.items()}
        comp = op = None  # free both gradient graphs
        ph_done()
        fb_fmt = min(fb_models, key=lambda f: per[f][0])
        t_fb = per[fb_fmt][0]
        hvp_ratio, ph_hvp_ratio = per["ours"][0] / t_fb, per["ph"][0] / t_fb
        summary.update(hvp=hvp_ratio, ph_hvp=ph_hvp_ratio)
        fb_note = ", ".join(f"{f} {per[f][0]:.4g} s" for f in fb_models)
        rows.append(("HVP, one product (graph cached)", per["ours"], per["ph"], 1, 1,
                     f"fwd+bwd {fb_note}; HVP/fwd-bwd: lossland {hvp_ratio:.2f}, PyHessian {ph_hvp_ratio:.2f}"))
        rows.append(("HVP, operator + first product", per["first"], per["ph_first"], 1, 1,
                     f"graph build included (PyHessian: hessian() + one product); lossland "
                     f"{per['first'][0] / t_fb:.2f} x fwd-bwd"))

    # ---------------------------------------------------------------- 2./3. top eigenvalues
    if "top" in args.sections:
        # PyHessian's "top" eigenvalues are those of largest magnitude (power iteration with
        # deflation): ours and the reference use which="magnitude" so that both find the same
        def ours_top(kk, tol):
            return lossland.top_eigenvalues(model, data, k=kk, tol=tol, which="magnitude")

        def scan(run, ref, target):
            """(tol, values, products, error, met, seconds) of the loosest tol in TOLS within ``target``
            of ``ref`` (each tol one timed run, from loose to tight)."""
            for tol in TOLS:
                sync(device)
                t0 = time.perf_counter()
                values, products = run(tol)
                sync(device)
                seconds = time.perf_counter() - t0
                err = rel_err(values, ref)
                if err <= target:
                    return tol, values, products, err, True, seconds
            return tol, values, products, err, False, seconds

        def ours_counted(kk):
            def run(tol):
                op = counted_operator(model, data)
                values = lossland.top_eigenvalues(model, op, k=kk, tol=tol, which="magnitude")
                return values, op.products
            return run

        by_magnitude = [float(r) for r in lossland.top_eigenvalues(model, data, k=5, tol=1e-8, max_iter=args.ref_iter,
                                                                   which="magnitude")]
        def ph_practical(tol):
            counter.reset()
            torch.manual_seed(0)
            comp = ph_build()
            values, _ = comp.eigenvalues(maxIter=args.ph_max_iter, tol=tol, top_n=1)
            comp = None
            ph_done()
            return values, counter.calls

        def ph_oracle(kk, target):
            """PyHessian's top_n=kk at a tight tol, each value's iteration stopped by the oracle:
            (seconds to the last value within the target or None, products, values, seconds of the run)."""
            counter.reset(by_magnitude[:kk], target)
            counter.record = True
            torch.manual_seed(0)
            sync(device)
            t0 = time.perf_counter()
            comp = ph_build()
            values, _ = comp.eigenvalues(maxIter=args.ph_max_iter, tol=1e-7, top_n=kk)
            sync(device)
            total = time.perf_counter() - t0
            counter.record = False
            comp = None
            ph_done()
            seconds, products = oracle_seconds(counter.log, t0, by_magnitude[:kk], target)
            return seconds, products, values, total

        fmt = lambda vs: ", ".join(f"{float(v):.6g}" for v in vs)  # noqa: E731
        for key, kk, target in (("top1", 1, args.top_tol), ("top5", 5, args.top5_err)):
            ref = by_magnitude[:kk]
            o_tol, o_vals, o_prod, o_err, o_met, t_o = scan(ours_counted(kk), ref, target)
            if args.repeats > 1:
                t_o = min([t_o] + [timed(lambda: lossland.top_eigenvalues(model, data, k=kk, tol=o_tol,
                                                                          which="magnitude"), device)[0]
                                   for _ in range(args.repeats - 1)])
            t_p, p_prod, ph_vals, ph_total = ph_oracle(kk, target)
            p_met = t_p is not None
            if not p_met:
                t_p = ph_total
            practical = ""
            if kk == 1:  # PyHessian as a user runs it: the loosest tol of its own rule that meets the target
                s_tol, _, s_prod, s_err, s_met, s_t = scan(ph_practical, ref, target)
                summary["top1_practical"] = (t_o, s_t, s_met)
                practical = (f"; PyHessian at its loosest sufficient tol {s_tol:g}{'' if s_met else ' (NOT MET)'}: "
                             f"{s_t:.4g} s, {s_prod} products, err {s_err:.1e}, ratio {t_o / s_t:.3f}")
            o_sorted = sorted((float(v) for v in o_vals), key=abs, reverse=True)
            rows.append((f"top-{kk} |λ| (target {target:g} rel. err)", (t_o, math.nan), (t_p, math.nan), o_prod, p_prod,
                         f"ref {fmt(ref)}; lossland tol {o_tol:g}: {fmt(o_sorted)} err {o_err:.1e}"
                         f"{'' if o_met else ' NOT MET at the tightest tol'}; PyHessian "
                         + ("(oracle stop: first product within the target)" if p_met else
                            f"NOT within the target in {args.ph_max_iter} iterations per eigenvalue "
                            f"(its whole run timed: {fmt(ph_vals[:kk])})") + practical))
            summary[key] = (t_o, t_p)
            summary[key + "_met"] = (o_met, p_met)

    # ---------------------------------------------------------------- 4. trace
    if "trace" in args.sections:
        n_ph = args.ph_trace_probes

        def ph_trace():
            torch.manual_seed(0)
            comp = ph_build()
            # tol=-inf: never stops early (PyHessian divides the change of its running mean by the signed
            # mean, so tol=-1.0 still stops once that mean is negative and the change exceeds it)
            samples = comp.trace(maxIter=n_ph, tol=-math.inf)
            del comp
            ph_done()
            return samples

        counter.reset()
        samples = torch.tensor(ph_trace(), dtype=torch.float64)  # untimed: PyHessian's standard error sets our tol
        ph_products = counter.calls
        ph_mean, ph_se = float(samples.mean()), float(samples.std()) / math.sqrt(len(samples))
        trace_tol = ph_se / abs(ph_mean) if ph_mean else math.inf

        def ours_trace():
            return lossland.hessian_trace(model, data, n_probes=TRACE_BUDGET, tol=trace_tol)

        (t_o, c_o, est), (t_p, c_p, _) = timed_pair(ours_trace, ph_trace, device, args.repeats)
        note = (f"tol {trace_tol:.3g}: lossland {est.estimate:.5g} ± {est.stderr:.2g} ({est.method}), "
                f"PyHessian {ph_mean:.5g} ± {ph_se:.2g}")
        if args.trace_ref:
            tref = lossland.hessian_trace(model, data, n_probes=1200, method="deflated", lanczos_steps=200, seed=12345)
            note += (f"; ref {tref.estimate:.5g} ± {tref.stderr:.2g}: err lossland "
                     f"{abs(est.estimate - tref.estimate) / abs(tref.estimate):.2%}, PyHessian "
                     f"{abs(ph_mean - tref.estimate) / abs(tref.estimate):.2%}")
        rows.append(("trace (to PyHessian's stderr)", (t_o, c_o), (t_p, c_p), est.n_matvecs, ph_products, note))
        summary["trace"] = (t_o, t_p)
    print_rows(rows)
    return summary


def print_rows(rows) -> None:
    print(f"{'task':<36} {'lossland s':>10} {'baseline s':>10} {'ratio':>6} {'cpu ratio':>9} "
          f"{'HVPs':>5} {'base HVPs':>9}  notes")
    for task, (a, ca), (b, cb), na, nb, note in rows:
        cpu = f"{ca / cb:>9.3f}" if cb > 0 else f"{'n/a':>9}"
        print(f"{task:<36} {a:>10.4g} {b:>10.4g} {a / b:>6.3f} {cpu} {na:>5} {nb:>9}  {note}")


def exact_section(args, device) -> None:
    """The exact dense Hessian of zhang2018's net: lossland.hessian vs torch.func / autograd.functional."""
    raw = lossland.read_source("embedded")
    small = lossland.prepare(raw, classes=["airplane", "automobile"], train_size=500, image_size=6, seed=0)
    xs, ys = (t.to(device) for t in small["train"].as_tuple())
    net = lossland.create_model({"arch": "mlp", "hidden": [10, 10, 10], "activation": "sigmoid",
                                 "binary": True, "output_bias": False}, small.input_shape, 2, seed=0).to(device)
    pn = lossland.count_parameters(net)
    print(f"\n=== exact Hessian: zhang2018's MLP, {pn} parameters, {len(ys)} samples")
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
    rows = [("vs torch.func.hessian", (t_dense, c_dense), (t_func, c_func), pn, pn,
             f"max |diff| {float((h - h_func).abs().max()):.1e}")]
    if not args.skip_naive:
        t_naive, c_naive, h_naive = timed(lambda: torch.autograd.functional.hessian(flat_loss, theta), device)
        rows.append(("vs torch.autograd.functional.hessian", (t_dense, c_dense), (t_naive, c_naive), pn, pn,
                     f"max |diff| {float((h - h_naive).abs().max()):.1e} (one run)"))
    print_rows(rows)
    print("goal: exact Hessian < 1 s")


def summary_table(rows) -> None:
    print("\nsummary (HVP: per-product time / best plain forward+backward; others: seconds and "
          "lossland / PyHessian; top-1 and top-5 against PyHessian stopped by an oracle, a lower bound on "
          "its time; 'top-1 vs PH tol': against PyHessian at the loosest of its own tolerances that meets "
          "the target)")
    head = (f"{'model':<12}{'params':>9}{'HVP/fb':>8}{'PH HVP/fb':>10}  "
            + "  ".join(f"{k + ' ours s':>13}{'PH s':>9}{'ratio':>7}  " for k in ("top-1", "top-5", "trace"))
            + f"  {'top-1 vs PH tol':>10}")
    print(head)
    print("-" * len(head))
    nan2 = (math.nan, math.nan)
    for r in rows:
        def mark(k):
            met = r.get(k + "_met", (True, True))
            return ("" if met[0] else "*") + ("" if met[1] else "†")

        cells = "  ".join(f"{r.get(k, nan2)[0]:>13.3f}{r.get(k, nan2)[1]:>9.3f}"
                          f"{r.get(k, nan2)[0] / r.get(k, nan2)[1]:>7.3f}{mark(k):<2}"
                          for k in ("top1", "top5", "trace"))
        o, p, met = r.get("top1_practical", (math.nan, math.nan, True))
        cells += f"  {o / p:>10.3f}{'' if met else '†':<2}"
        print(f"{r['model']:<12}{r['params']:>9}{r.get('hvp', math.nan):>8.2f}{r.get('ph_hvp', math.nan):>10.2f}"
              f"  {cells}")
    print(f"goals: HVP <= 1.5 x a 2-3x forward-backward (HVP/fb <= about 3-4.5); top-1 ratio <= {GOALS['top1']:g}; "
          f"top-5 ratio <= {GOALS['top5']:g}; trace ratio <= {GOALS['trace']:g}. *: lossland, †: PyHessian "
          "did not reach the target accuracy at the tightest tol tried (its time is then a lower bound)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=",".join(zoo.ZOO),
                    help="comma-separated zoo names or lossland specs (nin:0.25)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--n", type=int, default=1000, help="training images")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2, help="best of this many runs for each timing "
                    "(autograd.functional.hessian: one run)")
    ap.add_argument("--top-tol", type=float, default=1e-4, help="target relative error of the top eigenvalue")
    ap.add_argument("--top5-err", type=float, default=1e-3, help="target relative error of each top-5 eigenvalue")
    ap.add_argument("--ph-trace-probes", type=int, default=34, help="PyHessian's Hutchinson probes")
    ap.add_argument("--ph-max-iter", type=int, default=100,
                    help="PyHessian's power iterations per eigenvalue (its default: 100)")
    ap.add_argument("--sections", default="hvp,top,trace",
                    help="comma-separated parts to run per model: hvp, top (top-1 and top-5), trace")
    ap.add_argument("--ref-iter", type=int, default=150, help="most Lanczos steps of the reference eigenvalues")
    ap.add_argument("--trace-ref", action="store_true", help="also a tight reference trace (expensive)")
    ap.add_argument("--skip-naive", action="store_true", help="skip torch.autograd.functional.hessian")
    ap.add_argument("--skip-exact", action="store_true", help="skip the exact-Hessian section")
    args = ap.parse_args()
    t_start = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    # PyHessian's loss.backward(create_graph=True) warns about a reference cycle each time
    warnings.filterwarnings("ignore", message=r"Using backward\(\) with create_graph=True")
    import pyhessian  # noqa: F401

    counter = Counter(sys.modules["pyhessian.hessian"])  # the module (the package exports the class)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    ds = lossland.prepare(lossland.read_source("embedded"), train_size=args.n, test_size=0, seed=0)
    x, y = (t.to(device) for t in ds["train"].as_tuple())
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
             f" ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
          + f"; models {','.join(models)}; {len(y)} images {tuple(ds.input_shape)}; repeats {args.repeats}; "
          f"targets: top-1 {args.top_tol:g}, top-5 {args.top5_err:g} rel. err; "
          f"PyHessian trace {args.ph_trace_probes} probes")
    rows = []
    for name in models:
        rows.append(bench_model(name, args, ds, x, y, device, counter))
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if not args.skip_exact:
        exact_section(args, device)
    print("\ntimes: best wall clock of the runs; ratio = lossland / baseline; cpu ratio: the same for "
          "process CPU time (all threads), less sensitive to other load on the machine.")
    summary_table(rows)
    print(f"total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
