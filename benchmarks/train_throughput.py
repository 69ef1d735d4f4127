"""Training throughput: lossland's loop against a plain torchvision DataLoader loop
and against the bare forward+backward+step limit, on the same model and data, in
one process. Prints samples/s and the ratios.

    python benchmarks/train_throughput.py [--device cpu|cuda] [--images 2048] [--epochs 2]

* ours: :func:`lossland.train` (tensors on the device, seeded batches gathered
  with random-crop+flip augmentation on the device, channels-last on the CPU),
  its training time only (the per-epoch evaluation is excluded).
* dataloader: the loop a user writes from the torchvision tutorial: a Dataset of
  uint8 images with ``RandomCrop(32, 4)``, ``RandomHorizontalFlip``,
  ``ToTensor``, ``Normalize`` and a ``DataLoader(shuffle=True)``; the best of
  best of the ``--workers`` counts; model in the default memory format ("plain") and, to isolate
  the data pipeline, in channels-last as ours.
* limit: forward, backward and an SGD step over batches prepared beforehand and
  already on the device, in the faster of the two memory formats.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from _common import model_spec, sync  # noqa: E402  (benchmarks/ is on sys.path)

import lossland
from lossland.runtime import configure, pick_device, resolve_channels_last


def make_model(args, ds, device, channels_last):
    model = lossland.create_model(model_spec(args.model), ds.input_shape, ds.num_classes, seed=0)
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def bench_ours(args, ds, device):
    channels_last = resolve_channels_last("auto", device)
    model = make_model(args, ds, device, channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    splits = {"train": ds["train"].to(device)}
    settings = lossland.TrainSettings(epochs=1, batch_size=args.batch_size, augment=True,
                                      channels_last=channels_last, eval_batch_size=500)
    lossland.train(model, opt, splits, settings, progress=False)  # warm-up epoch
    settings.epochs = args.epochs + 1
    state = lossland.train(model, opt, splits, settings, progress=False)
    seconds = state.records[-1]["wall_time"] - state.records[1]["wall_time"]
    return args.epochs * len(ds["train"]) / seconds


class ImageDataset(torch.utils.data.Dataset):
    """CIFAR-10 as torchvision's dataset keeps it: HWC uint8 arrays, PIL per item."""

    def __init__(self, images, labels, transform):
        self.data = images.permute(0, 2, 3, 1).numpy()
        self.targets = labels.tolist()
        self.transform = transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.data[i])), self.targets[i]


def bench_dataloader(args, raw_images, labels, mean, std, device, channels_last, workers):
    from torchvision import transforms as T

    transform = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(mean, std)])
    loader = torch.utils.data.DataLoader(ImageDataset(raw_images, labels, transform), batch_size=args.batch_size,
                                         shuffle=True, num_workers=workers, pin_memory=device.type == "cuda",
                                         persistent_workers=workers > 0)
    model = make_model(args, args.ds, device, channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()

    def epoch():
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

    return _rate(epoch, args.epochs, len(labels), device)


def bench_limit(args, ds, device, channels_last):
    model = make_model(args, ds, device, channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = lossland.DeviceBatches(ds["train"].x.to(device), ds["train"].y.to(device), args.batch_size, seed=0,
                                    augment=True, channels_last=channels_last)
    batches = [(x.clone(), y.clone()) for x, y in loader.epoch(1)]
    model.train()

    def epoch():
        for x, y in batches:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            opt.step()

    return _rate(epoch, args.epochs, len(ds["train"]), device)


def _rate(epoch, epochs: int, samples: int, device) -> float:
    """Samples per second of ``epochs`` calls of ``epoch`` (after one warm-up call)."""
    epoch()
    sync(device)
    t = time.perf_counter()
    for _ in range(epochs):
        epoch()
    sync(device)
    return epochs * samples / (time.perf_counter() - t)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--models", default="nin:0.25,nin:0.0625,mlp:256",
                   help="comma-separated arch:size; nin:0.25 is the default study's model")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (the workflow runs one per job by default)")
    p.add_argument("--workers", default="0,2", type=lambda v: [int(w) for w in v.split(",")],
                   help="DataLoader worker counts to try (the best is compared)")
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats; the median is reported")
    p.add_argument("--epoch-images", type=int, default=45_000,
                   help="images of one epoch for the epoch time in the summary (CIFAR-10 less a 5000 validation split)")
    args = p.parse_args()

    device = pick_device(args.device)
    configure(device, threads=args.threads)
    raw = lossland.read_source("embedded")
    ds = lossland.prepare(raw, train_size=args.images, test_size=100, seed=0)
    args.ds = ds
    # the same images, as uint8, for the DataLoader loop
    idx = _same_selection(raw, args.images)
    images, labels = raw.splits["train"].images[idx], raw.splits["train"].labels[idx]
    assert torch.equal(labels, ds["train"].y)

    summary = []
    for name in args.models.split(","):
        args.model = name
        n_params = lossland.count_parameters(make_model(args, ds, torch.device("cpu"), False))
        print(f"\n{name} ({n_params} parameters) on {device}, threads {torch.get_num_threads()}, "
              f"{args.images} images, batch {args.batch_size}, {args.epochs} timed epochs (+1 warm-up), "
              f"median of {args.repeats}", flush=True)
        summary.append((name, measure(args, ds, images, labels, device)))
    print("\nsummary: ours / plain DataLoader loop, ours / same-format DataLoader loop, ours / limit, "
          f"seconds of our training loop per epoch of {args.epoch_images} images (evaluation not included)")
    for name, (a, b, c, ours) in summary:
        print(f"  {name:<12} {a:6.2f}x  {b:6.2f}x  {c:6.3f}  {args.epoch_images / ours:8.2f} s")


def measure(args, ds, images, labels, device):
    methods = {
        "limit (fwd+bwd+step, NCHW)": lambda: bench_limit(args, ds, device, False),
        "limit (fwd+bwd+step, channels-last)": lambda: bench_limit(args, ds, device, True),
        "ours (lossland.train)": lambda: bench_ours(args, ds, device),
    }
    for workers in args.workers:
        methods[f"dataloader plain NCHW, {workers} workers"] = (
            lambda w=workers: bench_dataloader(args, images, labels, ds.mean, ds.std, device, False, w))
        methods[f"dataloader channels-last, {workers} workers"] = (
            lambda w=workers: bench_dataloader(args, images, labels, ds.mean, ds.std, device, True, w))
    # interleaved repeats, median of each: drifts of a shared machine hit all methods alike
    samples = {name: [] for name in methods}
    for _ in range(args.repeats):
        for name, fn in methods.items():
            samples[name].append(fn())
    results = {name: float(np.median(v)) for name, v in samples.items()}
    width = max(map(len, results))
    for name, v in results.items():
        spread = f"(min {min(samples[name]):.0f}, max {max(samples[name]):.0f})"
        print(f"  {name:<{width}}  {v:10.1f} samples/s  {spread}")
    ours = results["ours (lossland.train)"]
    limit = max(v for k, v in results.items() if k.startswith("limit"))
    plain = max(v for k, v in results.items() if k.startswith("dataloader plain"))
    same_format = max(v for k, v in results.items() if k.startswith("dataloader channels-last"))
    print(f"  ratio ours / plain DataLoader loop (best workers):        {ours / plain:6.2f}x")
    print(f"  ratio ours / DataLoader loop in the same memory format:   {ours / same_format:6.2f}x")
    print(f"  ratio ours / limit (best fwd+bwd+step on ready batches):  {ours / limit:6.3f}", flush=True)
    return ours / plain, ours / same_format, ours / limit, ours


def _same_selection(raw, n):
    """Indices of the training images :func:`lossland.prepare` picks (same seed)."""
    from lossland.data.prepared import _balanced_subset

    return _balanced_subset(raw.splits["train"].labels, n, torch.Generator().manual_seed(0))


if __name__ == "__main__":
    main()
