"""Prepared data sets: normalised float splits, the cached artifact every training run
reads, and the fixed subsets an analysis evaluates."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Sequence

import torch
import torch.nn.functional as F

from .sources import RawDataset

SPLIT_ORDER = ("train", "val", "test")


@dataclass
class Split:
    """Normalised inputs ``x`` (float32) and labels ``y`` (int64)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: str | torch.device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))

    def as_tuple(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x, self.y


@dataclass
class PreparedDataset:
    splits: dict[str, Split]
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    meta: dict = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.splits["train"].x.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __getitem__(self, split: str) -> Split:
        return self.splits[split]

    def to(self, device: str | torch.device) -> "PreparedDataset":
        return PreparedDataset({k: v.to(device) for k, v in self.splits.items()},
                               self.classes, self.mean, self.std, dict(self.meta))


def _balanced_subset(labels: torch.Tensor, size: int | None, generator: torch.Generator) -> torch.Tensor:
    """Indices of a class-balanced random subset of ``size`` (all when ``None``), sorted."""
    n = labels.shape[0]
    if size is None or size >= n:
        return torch.arange(n)
    if size <= 0:
        return torch.zeros(0, dtype=torch.int64)
    classes = torch.unique(labels)
    per = [torch.nonzero(labels == c).flatten() for c in classes]
    per = [p[torch.randperm(len(p), generator=generator)] for p in per]
    # round-robin over classes, so every class gets size/k (+1 for the first remainders)
    take = [0] * len(per)
    remaining = size
    while remaining > 0:
        progressed = False
        for i, p in enumerate(per):
            if remaining and take[i] < len(p):
                take[i] += 1
                remaining -= 1
                progressed = True
        if not progressed:
            break
    chosen = torch.cat([p[:t] for p, t in zip(per, take)])
    return torch.sort(chosen).values


def prepare(
    raw: RawDataset,
    *,
    classes: Sequence[str] | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    val_size: int = 0,
    image_size: int | None = None,
    seed: int = 0,
) -> PreparedDataset:
    """Select classes and sizes, resize, hold out a validation split, normalise.

    * ``classes``: names to keep (labels become their positions in this list).
    * ``train_size``/``test_size``: class-balanced random subsets (``None``: all).
    * ``val_size``: a class-balanced validation split held out from the source's
      training images, drawn in addition to ``train_size`` (never overlapping it).
    * ``image_size``: resize by area averaging (e.g. 6 for zhang2018's 6×6×3).
    * Normalisation: per-channel mean and std of the final training split.
    """
    names = tuple(classes) if classes else raw.classes
    unknown = [c for c in names if c not in raw.classes]
    if unknown:
        raise ValueError(f"classes {unknown} not in data set; allowed: {', '.join(raw.classes)}")
    source_label = torch.tensor([raw.classes.index(c) for c in names])
    g = torch.Generator().manual_seed(int(seed))
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for split, size in (("train", train_size), ("test", test_size)):
        rs = raw.splits[split]
        keep = torch.isin(rs.labels, source_label)
        images, labels = rs.images[keep], rs.labels[keep]
        relabel = torch.full((len(raw.classes),), -1, dtype=torch.int64)
        relabel[source_label] = torch.arange(len(names))
        labels = relabel[labels]
        if split == "train" and val_size:
            total = None if train_size is None else train_size + val_size
            idx = _balanced_subset(labels, total, g)
            images, labels = images[idx], labels[idx]
            val_idx = _balanced_subset(labels, val_size, g)
            mask = torch.ones(len(labels), dtype=torch.bool)
            mask[val_idx] = False
            out["val"] = (images[val_idx], labels[val_idx])
            images, labels = images[mask], labels[mask]
        else:
            idx = _balanced_subset(labels, size, g)
            images, labels = images[idx], labels[idx]
        out[split] = (images, labels)

    def to_float(images: torch.Tensor) -> torch.Tensor:
        x = images.float().div_(255.0)
        if image_size and image_size != x.shape[-1]:
            x = F.interpolate(x, size=(image_size, image_size), mode="area")
        return x

    floats = {k: (to_float(im), lab) for k, (im, lab) in out.items()}
    xtr = floats["train"][0]
    mean = xtr.mean(dim=(0, 2, 3))
    std = xtr.std(dim=(0, 2, 3)).clamp_min(1e-6)
    splits = {
        k: Split(((x - mean[:, None, None]) / std[:, None, None]).contiguous(), y)
        for k, (x, y) in floats.items()
    }
    return PreparedDataset(
        splits, names, tuple(mean.tolist()), tuple(std.tolist()),
        {"sizes": {k: len(v) for k, v in splits.items()}},
    )


def save_prepared(ds: PreparedDataset, path: str | os.PathLike, meta: dict | None = None) -> None:
    from ..io import save_checkpoint

    tensors = {}
    for k, s in ds.splits.items():
        tensors[f"{k}.x"] = s.x
        tensors[f"{k}.y"] = s.y
    side = {"classes": list(ds.classes), "mean": list(ds.mean), "std": list(ds.std),
            "input_shape": list(ds.input_shape), **ds.meta, **(meta or {})}
    save_checkpoint(tensors, path, side)


def load_prepared(path: str | os.PathLike, device: str | torch.device = "cpu") -> PreparedDataset:
    from ..io import load_checkpoint

    tensors, side = load_checkpoint(path, device=device)
    names = sorted({key.rsplit(".", 1)[0] for key in tensors},
                   key=lambda n: (SPLIT_ORDER.index(n) if n in SPLIT_ORDER else len(SPLIT_ORDER), n))
    splits = {n: Split(tensors[f"{n}.x"], tensors[f"{n}.y"]) for n in names}
    extra = {k: v for k, v in side.items() if k not in ("classes", "mean", "std")}
    return PreparedDataset(splits, tuple(side["classes"]), tuple(side["mean"]), tuple(side["std"]), extra)


SUBSET_SEED = 0


def subset_indices(size: int, samples: int | None, seed: int = SUBSET_SEED) -> torch.Tensor:
    """Indices of the images an analysis (landscape, Hessian) evaluates: all of a split
    (``samples`` None or ≥ its size), else a fixed random subset of ``samples`` (seeded,
    in split order). Prepared splits are sorted by class, so their first N images would
    be a few classes only."""
    if samples is None or int(samples) >= size:
        return torch.arange(size)
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(size, generator=g)[:int(samples)].sort().values
