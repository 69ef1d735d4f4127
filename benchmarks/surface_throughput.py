"""Surface throughput over the benchmark zoo: lossland's 2-D surface against the
``loss-landscapes`` package and against the forward-only limit, model by model
(:data:`zoo.ZOO`), on the same data and grid, in one process. Prints points/s per
model and a summary table.

    python benchmarks/surface_throughput.py [--models nin-bn,vgg,cnn,mlp,resnet] [--device cpu|cuda]
                                            [--grid 5] [--images 1000] [--threads N] [--repeats 2]
                                            [--skip-loss-landscapes] [--engines] [--li-surface]

``--models`` takes names of :data:`zoo.ZOO`, of :data:`zoo.RESNETS` (``resnet20``, ``resnet56``,
``resnet56-noshort``) and lossland specs (``nin:0.25``, ``mlp:256``).
Each model comes from :func:`zoo.build` (seed 0, eval mode, contiguous NCHW: as a user
passes it) and is evaluated on ``--images`` embedded CIFAR-10 training images. What is timed:

* ours: ``lossland.surface(model, model.state_dict(), dx, dy, coords, coords, (x, y))``
  with ``dx, dy = lossland.random_direction(model, seed=0 / 1)`` (filter-normalised) and
  ``coords = linspace(-1, 1, grid)``: the model exactly as built, every option at its
  default (the library picks the engine and the memory format).
* loss-landscapes: ``loss_landscapes.random_plane(model, Loss(default_loss, x, y),
  distance=1, steps=grid, normalization="filter", deepcopy_model=True)`` on its own copy of
  the same model: one forward of all images per point. On CUDA it fails (its filter
  normalisation mixes devices); the row then says so.
* limit: running ``grid² × images`` samples through the model with no gradient and nothing
  else (no weight updates, no loss): the best plain forward over the data in chunks of
  {64, 128, 256, 512, 1024} images (capped at the data size), in the contiguous and (models
  with conv layers) the channels-last memory format (model and input converted), and on
  CUDA also each of those captured as a CUDA graph and replayed (no launch overhead).
  Points/s = samples/s ÷ images.
* naive forward: the contiguous model on all images in one batch (what loss-landscapes
  runs per point).
* BN folded + ReLU fused: the same forward of ``lossland.fold.folded_copy`` of a
  channels-last copy (contiguous for models without conv layers), the loop engine's
  limit; omitted where there is nothing to fold or fuse.
* engines (``--engines``): ours with ``engine=loop``, ``vmap`` and (CUDA) ``graph`` on a
  2×2 sub-grid on the CPU, 4×4 on CUDA (the ``auto`` rule's evidence).
* Li et al.'s surface (``--li-surface``; ``--models`` then defaults to
  ``resnet56,resnet56-noshort``): for those two models, the time of Li et al. 2018's full
  surface, 51×51 = 2601 points on the 50 000 CIFAR-10 training images, extrapolated from the
  points/s measured on ``--images`` (the time of a point taken proportional to the images):
  points/s × images / 50 000 is the full-data rate, 2601 points over it the seconds, for
  ours and for the forward-only limit; printed next to Li et al.'s published ~5.5 s per
  point (2601 × 5.5 s ≈ 4 GPU-hours) and the goal, under 10 minutes on one H100-class GPU.

Timings are the best of ``--repeats`` interleaved rounds, after a warm-up (ours on the
sub-grid, every forward once), so that other load on the machine shows as little, and as
evenly, as possible. A forward timing is one pass over the data on the CPU, 16 on CUDA
(reported per pass). Goals: ours / limit ≥ 0.8, and ours never below loss-landscapes.
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
import torch
import zoo
from _common import sync  # noqa: E402  (benchmarks/ is on sys.path)

import lossland
from lossland.evaluation import default_loss, has_conv2d
from lossland.runtime import configure, pick_device

CHUNKS = (64, 128, 256, 512, 1024)
GOAL_LIMIT = 0.8  # ours / limit
GOAL_LL = 1.0  # ours / loss-landscapes
# Li et al. 2018's ResNet-56 surfaces: 51x51 points on the CIFAR-10 training set, ~5.5 s a point
LI_MODELS = ("resnet56", "resnet56-noshort")
LI_GRID, LI_IMAGES, LI_S_PER_POINT = 51, 50_000, 5.5
LI_GOAL_S = 600.0  # under 10 minutes on one H100-class GPU


def bench_model(name, args, ds, x, y, device):
    """Time one model; print its rows; return its summary row."""
    n = int(y.shape[0])
    build = lambda: zoo.build(name, ds.input_shape, ds.num_classes).to(device)  # noqa: E731
    model = build()  # ours
    conv = has_conv2d(model)
    state = model.state_dict()
    dx = lossland.random_direction(model, seed=0)
    dy = lossland.random_direction(model, seed=1)
    coords = np.linspace(-1, 1, args.grid)
    points = args.grid ** 2
    params = lossland.count_parameters(model)
    print(f"\n=== {name}: {params} parameters, {'conv' if conv else 'no conv'} layers, "
          f"{n} images, grid {args.grid}x{args.grid}")

    import loss_landscapes
    from loss_landscapes.metrics import Loss

    ll_model = build()
    metric = Loss(default_loss, x, y)
    sub = coords[:2] if device.type == "cpu" else coords[:4]  # warm-up and engines: 4 or 16 points
    sub_points = len(sub) ** 2

    def ours(engine=None, xs=coords, ys=coords):
        kw = {} if engine is None else {"engine": engine}
        return lossland.surface(model, state, dx, dy, xs, ys, (x, y), **kw)

    def ll():
        torch.manual_seed(0)
        loss_landscapes.random_plane(ll_model, metric, distance=1, steps=args.grid, normalization="filter",
                                     deepcopy_model=True)

    # the forward-only limit: plain forwards in each memory format, the BN-folded + ReLU-fused copy
    limit_models = {"contiguous": (build(), x)}
    if conv:
        limit_models["channels_last"] = (build().to(memory_format=torch.channels_last),
                                         x.contiguous(memory_format=torch.channels_last))
    from lossland.fold import folded_copy
    base = limit_models["channels_last" if conv else "contiguous"]
    folded = folded_copy(base[0])
    if folded is not None:
        folded.update(base[0].state_dict())
        limit_models["folded"] = (folded.module, base[1])
    sizes = sorted({min(bs, n) for bs in CHUNKS})
    reps = 1 if device.type == "cpu" else 16  # passes over the data per forward timing

    @torch.no_grad()
    def forward_only(fmt, bs):
        m, xx = limit_models[fmt]
        for _ in range(reps):
            for i in range(0, n, bs):
                m(xx[i:i + bs])

    limits = {(f, False, bs): (lambda f=f, bs=bs: forward_only(f, bs)) for f in limit_models for bs in sizes}
    limits.setdefault(("contiguous", False, n), lambda: forward_only("contiguous", n))  # naive, n > 1024
    if device.type == "cuda":
        for f in limit_models:
            for bs in sizes:
                limits[(f, True, bs)] = graphed_forward(limit_models[f], n, bs, reps)

    def clock(fn):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        return time.perf_counter() - t0

    engines = (["loop", "vmap"] + (["graph"] if device.type == "cuda" else [])) if args.engines else []
    ours(None, sub, sub)  # warm-up
    for e in engines:
        ours(e, sub, sub)
    for fn in limits.values():
        fn()
    contenders = [("ours", ours)] + [(e, lambda e=e: ours(e, sub, sub)) for e in engines]
    contenders += [] if args.skip_loss_landscapes else [("ll", ll)]
    contenders += list(limits.items())
    best, ll_error = {}, None
    for _ in range(args.repeats):
        for key, fn in contenders:
            if key == "ll" and ll_error is not None:
                continue
            try:
                best[key] = min(best.get(key, float("inf")), clock(fn))
            except Exception as exc:  # noqa: BLE001 - loss-landscapes' filter normalisation mixes devices on CUDA
                if key != "ll":
                    raise
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                where = "cannot run on CUDA" if device.type == "cuda" else "failed"
                ll_error = f"n/a (loss-landscapes {where}: {first})"

    results = {k: v / reps for k, v in best.items() if isinstance(k, tuple)}

    def fastest(keep):
        chosen = {k: v for k, v in results.items() if keep(k)}
        return min(chosen.items(), key=lambda kv: kv[1]) if chosen else (None, float("inf"))

    plain = lambda k: k[0] != "folded" and k[2] in sizes  # noqa: E731
    limit_key, t_limit = fastest(plain)
    eager_key, t_eager = fastest(lambda k: plain(k) and not k[1])
    graph_key, t_graph = fastest(lambda k: plain(k) and k[1])
    fold_key, t_fold = fastest(lambda k: k[0] == "folded")
    t_naive = results[("contiguous", False, n)]
    rate_ours = points / best["ours"]
    rate_ll = points / best["ll"] if "ll" in best else None
    label = lambda k: f"{k[0]}{', CUDA graph' if k[1] else ''}, bs={k[2]}"  # noqa: E731

    print(f"{'method':<58}{'points/s':>12}{'samples/s':>12}")
    rows = [("lossland surface (defaults)", rate_ours)]
    rows += [(f"  engine={e} ({sub_points} points)", sub_points / best[e]) for e in engines]
    if args.skip_loss_landscapes:
        rows.append(("loss-landscapes random_plane", "skipped (--skip-loss-landscapes)"))
    else:
        rows.append(("loss-landscapes random_plane", rate_ll if rate_ll is not None else ll_error))
    rows.append((f"naive forward (contiguous, all {n} images in one batch)", 1.0 / t_naive))
    rows.append((f"forward-only limit ({label(eager_key)})", 1.0 / t_eager))
    if graph_key is not None:
        rows.append((f"forward-only limit ({label(graph_key)})", 1.0 / t_graph))
    if fold_key is not None:
        rows.append((f"forward-only, BN folded + ReLU fused (bs={fold_key[2]})", 1.0 / t_fold))
    for what, r in rows:
        if isinstance(r, str):
            print(f"{what:<58}{r}")
        else:
            print(f"{what:<58}{r:>12.3f}{r * n:>12.0f}")
    rate_limit = 1.0 / t_limit
    vs_ll = f"{rate_ours / rate_ll:.2f}" if rate_ll is not None else "n/a"
    print(f"ratio ours / loss-landscapes: {vs_ll} (goal >= {GOAL_LL:g})")
    print(f"ratio ours / forward-only limit ({label(limit_key)}): {rate_ours / rate_limit:.2f} "
          f"(goal >= {GOAL_LIMIT:g})")
    print(f"ratio ours / naive forward: {rate_ours * t_naive:.2f}")
    if fold_key is not None:
        print(f"ratio ours / folded + fused forward: {rate_ours * t_fold:.2f}")
    print("forward-only samples/s by (format, graphed, batch):",
          ", ".join(f"{f}{'/graph' if g else ''}/{b}: {n / t:.0f}" for (f, g, b), t in results.items()))
    return {"model": name, "params": params, "ours": rate_ours, "ll": rate_ll,
            "ll_note": "skipped" if args.skip_loss_landscapes else "n/a" if rate_ll is None else "",
            "limit": rate_limit, "limit_at": f"{limit_key[0]}{'/graph' if limit_key[1] else ''}/{limit_key[2]}",
            "naive": 1.0 / t_naive, "images": n}


def summary(rows) -> None:
    print("\nsummary (points/s; limit: best plain no-grad forward, format/chunk beside it)")
    head = (f"{'model':<17}{'parameters':>11}{'ours':>10}{'loss-l.':>10}{'limit':>10}  {'limit at':<26}"
            f"{'ours/ll':>8}{'ours/limit':>11}{'ours/naive':>11}  goals")
    print(head)
    print("-" * len(head))
    for r in rows:
        ll = f"{r['ll']:>10.2f}" if r["ll"] is not None else f"{r['ll_note']:>10}"
        vs_ll = r["ours"] / r["ll"] if r["ll"] is not None else None
        vs_limit = r["ours"] / r["limit"]
        missed = ([] if vs_limit >= GOAL_LIMIT else ["limit"]) + \
            ([] if vs_ll is None or vs_ll >= GOAL_LL else ["loss-landscapes"])
        print(f"{r['model']:<17}{r['params']:>11}{r['ours']:>10.2f}{ll}{r['limit']:>10.2f}  {r['limit_at']:<26}"
              f"{(f'{vs_ll:.2f}' if vs_ll is not None else 'n/a'):>8}{vs_limit:>11.2f}"
              f"{r['ours'] / r['naive']:>11.2f}  {'ok' if not missed else 'MISSED: ' + ', '.join(missed)}")
    print(f"goals: ours/limit >= {GOAL_LIMIT:g} and ours never below loss-landscapes (ours/ll >= {GOAL_LL:g})")


def li_surface(rows, device) -> None:
    """Li et al.'s full surface, extrapolated from each LI_MODELS row (module docstring)."""
    points, li_s = LI_GRID ** 2, LI_GRID ** 2 * LI_S_PER_POINT
    chosen = [r for r in rows if r["model"] in LI_MODELS]
    print(f"\nLi et al. 2018's surface: {LI_GRID}x{LI_GRID} = {points} points on {LI_IMAGES} CIFAR-10 training "
          f"images, extrapolated from the points/s measured on {device.type} (a point's time proportional "
          f"to the images)")
    if not chosen:
        print(f"  none of --models is one of {', '.join(LI_MODELS)}")
        return
    head = (f"{'model':<18}{'images':>7}{'ours s/point':>13}{'ours total':>12}{'limit total':>12}"
            f"{'ours/limit':>11}{'Li et al.':>11}{'Li/ours':>9}  goal")
    print(head)
    print("-" * len(head))
    for r in chosen:
        scale = r["images"] / LI_IMAGES  # measured rate -> rate on the full training set
        t_ours, t_limit = points / (r["ours"] * scale), points / (r["limit"] * scale)
        goal = "ok" if t_ours < LI_GOAL_S else "MISSED"
        print(f"{r['model']:<18}{r['images']:>7}{t_ours / points:>13.3f}{t_ours:>11.0f}s{t_limit:>11.0f}s"
              f"{r['ours'] / r['limit']:>11.2f}{li_s:>10.0f}s{li_s / t_ours:>9.3g}  {goal}")
    print(f"Li et al.: ~{LI_S_PER_POINT:g} s per point, {points} points = {li_s:.0f} s (about "
          f"{li_s / 3600:.0f} GPU-hours); goal: under {LI_GOAL_S / 60:.0f} minutes on one H100-class GPU"
          + ("" if device.type == "cuda" else " (this run is not on a GPU)"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=None,
                    help=f"comma-separated zoo names or lossland specs (nin:0.25); default {','.join(zoo.ZOO)} "
                         f"({','.join(LI_MODELS)} with --li-surface)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--grid", type=int, default=5)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-loss-landscapes", action="store_true")
    ap.add_argument("--engines", action="store_true", help="also time the loop/vmap/graph engines on a sub-grid")
    ap.add_argument("--li-surface", action="store_true",
                    help=f"extrapolate Li et al.'s {LI_GRID}x{LI_GRID} surface on {LI_IMAGES} images "
                         f"for {','.join(LI_MODELS)}")
    args = ap.parse_args()
    t_start = time.perf_counter()

    device = pick_device(args.device)
    configure(device, threads=args.threads, deterministic=False)
    ds = lossland.prepare(lossland.read_source("embedded"), train_size=args.images, test_size=0)
    x, y = (t.to(device) for t in ds["train"].as_tuple())
    if args.models is None:
        args.models = ",".join(LI_MODELS if args.li_surface else zoo.ZOO)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    print(f"device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"threads={torch.get_num_threads()}, models={','.join(models)}, images={int(y.shape[0])}, "
          f"grid={args.grid}x{args.grid}, repeats={args.repeats}, torch {torch.__version__}")
    rows = []
    for name in models:
        rows.append(bench_model(name, args, ds, x, y, device))
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
    summary(rows)
    if args.li_surface:
        li_surface(rows, device)
    print(f"total {time.perf_counter() - t_start:.0f} s")


def graphed_forward(model_and_input, n, bs, reps):
    """A callable that replays, ``reps`` times, one CUDA graph of the forward over the data in chunks of ``bs``."""
    m, xx = model_and_input

    @torch.no_grad()
    def forward():
        for i in range(0, n, bs):
            m(xx[i:i + bs])

    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        forward(), forward()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        forward()

    def replay():
        for _ in range(reps):
            graph.replay()
    return replay


if __name__ == "__main__":
    main()
