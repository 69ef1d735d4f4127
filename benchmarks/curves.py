"""Curve evaluation over the benchmark zoo: :func:`lossland.evaluate_curve` against the
naive way and against a fair limit, model by model (:data:`zoo.ZOO`), on the same data
and points, in one process. Prints points/s per model and the ratios.

    python benchmarks/curves.py [--models nin-bn,vgg,cnn,mlp,resnet] [--device cpu|cuda]
                                [--points 11] [--images 500] [--threads N] [--repeats 2]

Each model comes from :func:`zoo.build` (seed 0, eval mode, contiguous NCHW: as a user
passes it); its two ends are its weights and a copy perturbed by 10 % noise, the bend
their midpoint plus 5 % noise; ``--images`` embedded CIFAR-10 training images. What is
timed, at ``--points`` evenly spaced t of a Bezier curve:

* ours: ``lossland.evaluate_curve(model, curve, ts, (x, y))`` with every option at its
  default (``bn="auto"``: BatchNorm statistics re-estimated at every t for models with
  BatchNorm, as ``dnn-mode-connectivity`` does when its user calls ``update_bn``);
* naive: per t, ``model.load_state_dict(curve.point(t))``, then (BN models)
  ``lossland.recompute_bn`` and ``lossland.evaluate``: what a user writes around
  ``dnn-mode-connectivity``'s ``update_bn`` + ``test`` loop;
* limit: the forward passes a point needs and nothing else, each over the data in the
  best chunk of {64, 128, 256, 512} images and the better of the contiguous and
  channels-last formats: two passes (statistics, evaluation) for a BN model, one without.

Timings are the best of ``--repeats`` interleaved rounds after a warm-up. Goal: ours
≥ 0.8 × the limit, and never below the naive way.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import zoo
from _common import sync

import lossland
from lossland.landscape.batchnorm import _bn_modules


def _perturbed(state: dict, scale: float, seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {k: v + scale * v.abs().mean() * torch.randn(v.shape, generator=g).to(v)
            if v.is_floating_point() and v.ndim else v.clone() for k, v in state.items()}


def _naive(model, curve, ts, data, bn: bool) -> None:
    work = copy.deepcopy(model)
    for t in ts:
        work.load_state_dict(curve.point(float(t)))
        if bn:
            lossland.recompute_bn(work, data)
        lossland.evaluate(work, data)


def _limit(model, x, passes: int, device) -> float:
    """Seconds for ``passes`` forwards over ``x`` at the best chunk size and memory format."""
    best = float("inf")
    formats = [torch.contiguous_format] + ([torch.channels_last] if x.ndim == 4 else [])
    for fmt in formats:
        m = copy.deepcopy(model).to(memory_format=fmt) if x.ndim == 4 else model
        xs = x.contiguous(memory_format=fmt)
        for chunk in (64, 128, 256, 512):
            with torch.no_grad():
                start = time.perf_counter()
                for _ in range(passes):
                    for part in xs.split(chunk):
                        m(part)
                sync(device)
                best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(zoo.ZOO))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--points", type=int, default=11)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ds = lossland.prepare(lossland.read_source("embedded"), train_size=args.images, test_size=0)
    x, y = ds.splits["train"].x.to(device), ds.splits["train"].y.to(device)
    ts = torch.linspace(0, 1, args.points).tolist()
    print(f"{'model':<8}{'BN':>4}{'ours pts/s':>12}{'naive':>9}{'limit':>9}{'ours/naive':>12}{'ours/limit':>12}")
    for name in args.models.split(","):
        model = zoo.build(name).to(device).eval()
        start_state = model.state_dict()
        end = _perturbed(start_state, 0.1, 1)
        bend = _perturbed(lossland.landscape.curves.midpoint(start_state, end), 0.05, 2)
        curve = lossland.Curve("bezier", start_state, bend, end)
        bn = bool(_bn_modules(model))
        lossland.evaluate_curve(model, curve, ts[:2], (x, y))             # warm-up
        _naive(model, curve, ts[:1], (x, y), bn)
        times = {"ours": float("inf"), "naive": float("inf"), "limit": float("inf")}
        for _ in range(args.repeats):
            start = time.perf_counter()
            lossland.evaluate_curve(model, curve, ts, (x, y))
            sync(device)
            times["ours"] = min(times["ours"], time.perf_counter() - start)
            start = time.perf_counter()
            _naive(model, curve, ts, (x, y), bn)
            sync(device)
            times["naive"] = min(times["naive"], time.perf_counter() - start)
            times["limit"] = min(times["limit"], _limit(model, x, (2 if bn else 1) * len(ts), device))
        rate = {k: len(ts) / v for k, v in times.items()}
        print(f"{name:<8}{'yes' if bn else 'no':>4}{rate['ours']:>12.2f}{rate['naive']:>9.2f}{rate['limit']:>9.2f}"
              f"{rate['ours'] / rate['naive']:>12.2f}{rate['ours'] / rate['limit']:>12.2f}")


if __name__ == "__main__":
    main()
