"""Surface throughput: lossland's 2-D surface against the ``loss-landscapes`` package
and against the forward-only limit, on the same model, data and grid, in one
process. Prints points/s and the ratios.

    python benchmarks/surface_throughput.py [--device cpu|cuda] [--grid 5] [--images 1000]
                                            [--model nin:0.25] [--threads N]

* ours: :func:`lossland.surface` around the initial weights along two
  filter-normalised random directions on a ``grid × grid`` lattice, evaluated on
  ``--images`` embedded CIFAR-10 training images (``engine="auto"``; the model
  in channels-last on the CPU, as training uses it).
* loss-landscapes: ``loss_landscapes.random_plane(model, Loss(default_loss, x, y),
  distance=1, steps=grid, normalization="filter", deepcopy_model=True)`` on the
  same model (eval mode, default memory format, as a user passes it) and the same
  data: one forward of all images per point.
* limit: the time to run ``grid² × images`` samples through the model with no
  gradient, at the best batch size and memory format, with nothing else
  (no weight updates, no loss): points/s = samples/s ÷ images. Printed beside
  it: the same for the BN-folded, conv+ReLU-fused copy that the loop engine runs (the limit of
  our method).
* engines: loop, vmap and (on CUDA) graph on a 2×2 sub-grid on the CPU, 4×4 on
  CUDA (the ``auto`` rule's evidence).
* on CUDA the limit is the better of the plain forward and the same forward
  captured as a CUDA graph and replayed (no launch overhead either).

Timings are the best of ``--repeats`` interleaved rounds (after a warm-up), so
that other load on the machine shows as little, and as evenly, as possible.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import model_spec, sync  # noqa: E402  (benchmarks/ is on sys.path)

import lossland
from lossland.evaluation import default_loss
from lossland.runtime import configure, pick_device, resolve_channels_last


def make_model(args, ds, device):
    """The model at seed 0, its all-zero 1-D parameters (biases, BN shifts) set to small
    random values: loss-landscapes' filter normalisation divides by their zero norm."""
    model = lossland.create_model(model_spec(args.model), ds.input_shape, ds.num_classes, seed=0)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() <= 1 and not p.any():
                p.copy_(0.01 * torch.randn(p.shape, generator=g))
    return model.to(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--grid", type=int, default=5)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--model", default="nin:0.25")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-loss-landscapes", action="store_true")
    args = ap.parse_args()
    t_start = time.perf_counter()

    device = pick_device(args.device)
    configure(device, threads=args.threads, deterministic=False)
    ds = lossland.prepare(lossland.read_source("embedded"), train_size=args.images, test_size=0)
    x, y = (t.to(device) for t in ds["train"].as_tuple())
    n = int(y.shape[0])
    model = make_model(args, ds, device).eval()
    cl = resolve_channels_last("auto", device)
    ours_model = make_model(args, ds, device)
    ours_model = ours_model.to(memory_format=torch.channels_last) if cl else ours_model
    state = ours_model.state_dict()
    dx = lossland.random_direction(ours_model, seed=0)
    dy = lossland.random_direction(ours_model, seed=1)
    coords = np.linspace(-1, 1, args.grid)
    points = args.grid ** 2
    print(f"device={device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
          f"threads={torch.get_num_threads()}, model={args.model} "
          f"({lossland.count_parameters(model)} parameters), images={n}, grid={args.grid}x{args.grid}, "
          f"torch {torch.__version__}")

    # --- the contenders, timed in interleaved rounds (best of --repeats for each)
    import loss_landscapes
    from loss_landscapes.metrics import Loss

    metric = Loss(default_loss, x, y)
    sub = coords[:2] if device.type == "cpu" else coords[:4]  # the engines on a sub-grid: 4 or 16 points
    sub_points = len(sub) ** 2

    def ours(engine="auto", xs=coords, ys=coords):
        return lossland.surface(ours_model, state, dx, dy, xs, ys, (x, y), engine=engine)

    def ll():
        torch.manual_seed(0)
        loss_landscapes.random_plane(model, metric, distance=1, steps=args.grid, normalization="filter",
                                     deepcopy_model=True)

    limit_models = {}
    for channels_last in (False, True):
        m = make_model(args, ds, device).eval()
        limit_models[channels_last] = (m.to(memory_format=torch.channels_last), x.contiguous(
            memory_format=torch.channels_last)) if channels_last else (m, x)
    # the same forward with BN folded into the convs and conv+ReLU fused, as the loop engine runs it
    from lossland.fold import folded_copy
    folded = folded_copy(limit_models[cl][0])
    if folded is not None:
        folded.update(limit_models[cl][0].state_dict())
        limit_models["folded"] = (folded.module, limit_models[cl][1])
    sizes = (64, 128, 256, 1024) if device.type == "cpu" else (256, 1024, 4096, 16384)
    reps = 1 if device.type == "cpu" else 16  # passes over the data per limit timing
    sizes = [bs for bs in sizes if bs <= 2 * n] or [sizes[0]]

    @torch.no_grad()
    def forward_only(channels_last, bs):
        m, xx = limit_models[channels_last]
        for _ in range(reps):
            for i in range(0, n, bs):
                m(xx[i:i + bs])

    limits = {(c, False, bs): (lambda c=c, bs=bs: forward_only(c, bs)) for c in limit_models for bs in sizes}
    if device.type == "cuda":
        # the same forwards captured as CUDA graphs and replayed: no launch overhead either
        for c in limit_models:
            for bs in sizes:
                limits[(c, True, bs)] = graphed_forward(limit_models[c], n, bs, reps)

    def clock(fn):
        sync(device)
        t0 = time.perf_counter()
        fn()
        sync(device)
        return time.perf_counter() - t0

    engines = ["loop", "vmap"] + (["graph"] if device.type == "cuda" else [])
    # warm-up: one point of each engine on the sub-grid, every limit configuration once
    for e in engines:
        ours(e, sub, sub)
    for fn in limits.values():
        fn()
    best = {}
    for _ in range(args.repeats):
        for name, fn in [("ours", ours)] + [(e, lambda e=e: ours(e, sub, sub)) for e in engines] + \
                ([] if args.skip_loss_landscapes else [("ll", ll)]) + list(limits.items()):
            try:
                best[name] = min(best.get(name, float("inf")), clock(fn))
            except RuntimeError as exc:  # loss-landscapes' filter normalisation mixes devices on CUDA
                if name != "ll":
                    raise
                print(f"loss-landscapes failed on {device}: {str(exc).splitlines()[0]}")
                args.skip_loss_landscapes = True
    rate_ours = points / best["ours"]
    rate_ll = points / best["ll"] if "ll" in best else float("nan")
    results = {k: v / reps for k, v in best.items() if isinstance(k, tuple)}

    def fastest(keep):
        chosen = {k: v for k, v in results.items() if keep(k)}
        return min(chosen.items(), key=lambda kv: kv[1]) if chosen else ((None, None, None), float("inf"))

    (best_c, _, best_bs), t_eager = fastest(lambda k: k[0] != "folded" and not k[1])
    (graph_c, _, graph_bs), t_graphed = fastest(lambda k: k[0] != "folded" and k[1])
    (_, _, fold_bs), t_fold = fastest(lambda k: k[0] == "folded")
    rate_eager, rate_graphed, rate_fold = 1.0 / t_eager, 1.0 / t_graphed, 1.0 / t_fold
    rate_limit = max(rate_eager, rate_graphed)
    fmt = lambda c: "folded" if c == "folded" else "channels_last" if c else "contiguous"  # noqa: E731

    print(f"{'method':<34}{'points/s':>12}{'samples/s':>12}")
    rows = [("lossland surface (auto)", rate_ours)]
    rows += [(f"  engine={e} ({sub_points} points)", sub_points / best[e]) for e in engines]
    rows += [("loss-landscapes random_plane", rate_ll),
             (f"forward-only limit (bs={best_bs}, {fmt(best_c)})", rate_eager)]
    if device.type == "cuda":
        rows.append((f"forward-only, CUDA graph (bs={graph_bs}, {fmt(graph_c)})", rate_graphed))
    rows.append((f"forward-only, BN folded+ReLU fused (bs={fold_bs})", rate_fold))
    for name, r in rows:
        print(f"{name:<46}{r:>12.3f}{r * n:>12.0f}")
    print(f"ratio ours / loss-landscapes: {rate_ours / rate_ll:.2f}x (goal >= 5)")
    print(f"ratio ours / forward-only limit (best of eager and graphed): {rate_ours / rate_limit:.2f} (goal >= 0.8)")
    print(f"ratio ours / eager forward-only limit: {rate_ours / rate_eager:.2f}")
    print(f"ratio ours / forward-only of the folded+fused copy: {rate_ours / rate_fold:.2f}")
    print("forward-only samples/s by (format, graphed, batch):",
          ", ".join(f"{'folded' if c == 'folded' else 'cl' if c else 'nchw'}{'/graph' if g else ''}/{b}: {n / t:.0f}"
                    for (c, g, b), t in results.items()))
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
