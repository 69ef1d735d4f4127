"""Image data sets as tensors: reading the CIFAR-10 formats, preparing normalised
splits, and seeded minibatches drawn on the device.

Formats read (all give ``uint8`` tensors ``N×3×H×W`` and ``int64`` labels):

* ``embedded``: the CIFAR-10 subset shipped inside this package
  (:func:`embedded_archive`), an ImageFolder ``.tar.gz``;
* ``imagefolder``: ``train/<class>/*.jpg|png`` and ``test/<class>/...``, as a
  folder or a ``.tar``/``.tar.gz`` archive of one;
* ``python-archive``: the original ``cifar-10-python.tar.gz`` or its extracted
  ``cifar-10-batches-py`` folder;
* ``torchvision``: :class:`torchvision.datasets.CIFAR10` (downloads when asked).

:func:`prepare` turns one of these into normalised float tensors (class subset,
sizes, resizing, validation hold-out), the cached artifact every training run
reads. :class:`DeviceBatches` serves minibatches from tensors kept on the
device, in an order that depends only on ``(seed, epoch)``, with random-crop and
flip augmentation done on the device.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
SOURCES = ("embedded", "imagefolder", "python-archive", "torchvision")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
SPLIT_ORDER = ("train", "val", "test")


@dataclass
class RawSplit:
    """Images as ``uint8`` ``N×C×H×W`` and labels as ``int64`` ``N``."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class RawDataset:
    splits: dict[str, RawSplit]
    classes: tuple[str, ...]


# --------------------------------------------------------------------------- formats


def embedded_archive() -> Path:
    """Path of the CIFAR-10 subset shipped with the package (ImageFolder ``.tar.gz``)."""
    return Path(str(resources.files("lossland") / "resources" / "cifar10-embedded.tar.gz"))


def _decode_image(blob: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(blob)) as im:
        return np.asarray(im.convert("RGB"), dtype=np.uint8)


def _stack(images: list[np.ndarray], labels: list[int]) -> RawSplit:
    if not images:
        raise ValueError("no images found")
    arr = np.stack(images).transpose(0, 3, 1, 2).copy()  # N,H,W,C -> N,C,H,W
    return RawSplit(torch.from_numpy(arr), torch.tensor(labels, dtype=torch.int64))


def _split_and_class(relpath: str) -> tuple[str, str] | None:
    parts = [p for p in Path(relpath).parts if p not in (".", "")]
    # accept an optional top folder: [top/]split/class/file
    for i in range(len(parts) - 2):
        if parts[i] in ("train", "test") and i + 3 == len(parts):
            return parts[i], parts[i + 1]
    return None


def read_imagefolder(path: str | os.PathLike) -> RawDataset:
    """Read ``train/<class>/<image>`` and ``test/<class>/<image>`` from a folder or tar archive.

    Classes are the sorted folder names of the train split (ImageFolder's rule);
    files are read in sorted order, so the result does not depend on the
    archive's member order.
    """
    path = Path(path)
    entries: dict[str, dict[str, list[tuple[str, bytes]]]] = {"train": {}, "test": {}}
    if path.is_dir():
        for split in ("train", "test"):
            root = path / split
            if not root.is_dir():
                continue
            for cls_dir in sorted(p for p in root.iterdir() if p.is_dir()):
                files = sorted(f for f in cls_dir.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
                entries[split][cls_dir.name] = [(f.name, f.read_bytes()) for f in files]
    elif path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile() or Path(member.name).suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                where = _split_and_class(member.name)
                if where is None:
                    continue
                split, cls = where
                blob = tar.extractfile(member).read()
                entries[split].setdefault(cls, []).append((Path(member.name).name, blob))
    else:
        raise FileNotFoundError(f"imagefolder source {path}: not a folder or a tar archive")
    if not entries["train"]:
        raise ValueError(f"imagefolder source {path}: no train/<class>/<image> files found")
    classes = tuple(sorted(entries["train"]))
    splits = {}
    for split, by_class in entries.items():
        if not by_class:
            continue
        unknown = set(by_class) - set(classes)
        if unknown:
            raise ValueError(f"imagefolder source {path}: {split} has classes not in train: {sorted(unknown)}")
        images, labels = [], []
        for label, cls in enumerate(classes):
            for _, blob in sorted(by_class.get(cls, [])):
                images.append(_decode_image(blob))
                labels.append(label)
        splits[split] = _stack(images, labels)
    return RawDataset(splits, classes)


def _unpickle(blob: bytes) -> dict:
    # the original batches are Python 2 pickles: latin1 turns their keys into str
    # (torchvision reads them the same way)
    return pickle.loads(blob, encoding="latin1")


def read_python_archive(path: str | os.PathLike) -> RawDataset:
    """Read the original CIFAR-10 python archive (``.tar.gz`` or extracted folder)."""
    path = Path(path)
    blobs: dict[str, bytes] = {}
    wanted = {f"data_batch_{i}" for i in range(1, 6)} | {"test_batch", "batches.meta"}
    if path.is_dir():
        folder = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
        for name in wanted:
            f = folder / name
            if f.exists():
                blobs[name] = f.read_bytes()
    elif path.is_file() and tarfile.is_tarfile(path):
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                name = Path(member.name).name
                if member.isfile() and name in wanted:
                    blobs[name] = tar.extractfile(member).read()
    else:
        raise FileNotFoundError(f"python-archive source {path}: not a folder or a tar archive")
    missing = sorted(wanted - set(blobs))
    if missing:
        raise ValueError(f"python-archive source {path}: missing {', '.join(missing)}")
    classes = tuple(_unpickle(blobs["batches.meta"])["label_names"])

    def batch(names: Sequence[str]) -> RawSplit:
        xs, ys = [], []
        for n in names:
            d = _unpickle(blobs[n])
            xs.append(np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.extend(d["labels"])
        return RawSplit(torch.from_numpy(np.concatenate(xs)), torch.tensor(ys, dtype=torch.int64))

    return RawDataset(
        {"train": batch([f"data_batch_{i}" for i in range(1, 6)]), "test": batch(["test_batch"])},
        classes,
    )


def read_torchvision(root: str | os.PathLike, download: bool = False) -> RawDataset:
    """CIFAR-10 through :class:`torchvision.datasets.CIFAR10` (``download=True`` fetches it)."""
    from torchvision.datasets import CIFAR10

    splits = {}
    classes: tuple[str, ...] = CIFAR10_CLASSES
    for split in ("train", "test"):
        ds = CIFAR10(str(root), train=split == "train", download=download)
        classes = tuple(ds.classes)
        images = torch.from_numpy(np.asarray(ds.data).transpose(0, 3, 1, 2).copy())
        splits[split] = RawSplit(images, torch.tensor(ds.targets, dtype=torch.int64))
    return RawDataset(splits, classes)


def read_source(source: str, path: str | None = None, download: bool = False) -> RawDataset:
    """Read a data set in one of :data:`SOURCES`."""
    if source == "embedded":
        return read_imagefolder(path or embedded_archive())
    if source == "imagefolder":
        if not path:
            raise ValueError("source 'imagefolder' needs a path")
        return read_imagefolder(path)
    if source == "python-archive":
        if not path:
            raise ValueError("source 'python-archive' needs a path")
        return read_python_archive(path)
    if source == "torchvision":
        return read_torchvision(path or "data/torchvision", download=download)
    raise ValueError(f"unknown data source {source!r}; allowed: {', '.join(SOURCES)}")


EMBEDDED_TRAIN_PER_CLASS = 800
EMBEDDED_TEST_PER_CLASS = {"airplane": 1000, "automobile": 1000}  # zhang2018 needs all 2000
EMBEDDED_TEST_OTHERS = 200


def build_embedded_archive(source: str | os.PathLike, dest: str | os.PathLike,
                           train_per_class: int = EMBEDDED_TRAIN_PER_CLASS,
                           test_per_class: dict[str, int] | None = None,
                           test_others: int = EMBEDDED_TEST_OTHERS) -> dict[str, int]:
    """Write the embedded CIFAR-10 subset from the full ImageFolder archive ``source``.

    Takes the first ``train_per_class`` training images of every class and the
    first ``test_per_class[c]`` (default ``test_others``) test images, in file-name
    order, and copies their JPEG bytes unchanged into an ImageFolder ``.tar.gz``.
    The output is byte-for-byte reproducible (sorted members, zero timestamps and
    owners, gzip without name or time). Returns the image count per split.
    """
    import gzip

    test_per_class = dict(EMBEDDED_TEST_PER_CLASS if test_per_class is None else test_per_class)
    picked: dict[str, bytes] = {}
    with tarfile.open(source, "r:*") as tar:
        by_dir: dict[tuple[str, str], list[tarfile.TarInfo]] = {}
        for member in tar:
            if member.isfile() and Path(member.name).suffix.lower() in IMAGE_SUFFIXES:
                where = _split_and_class(member.name)
                if where:
                    by_dir.setdefault(where, []).append(member)
        for (split, cls), members in sorted(by_dir.items()):
            limit = train_per_class if split == "train" else test_per_class.get(cls, test_others)
            for m in sorted(members, key=lambda m: Path(m.name).name)[:limit]:
                picked[f"{split}/{cls}/{Path(m.name).name}"] = tar.extractfile(m).read()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".part")
    with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                compresslevel=9) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as out:
        dirs = sorted({str(Path(n).parent) for n in picked} | {"train", "test"})
        for d in dirs:
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            out.addfile(info)
        for name in sorted(picked):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(picked[name]), 0o644, 0
            out.addfile(info, io.BytesIO(picked[name]))
    os.replace(tmp, dest)
    counts: dict[str, int] = {}
    for name in picked:
        counts[name.split("/")[0]] = counts.get(name.split("/")[0], 0) + 1
    return counts


# --------------------------------------------------------------------------- preparation


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
    from .io import save_checkpoint

    tensors = {}
    for k, s in ds.splits.items():
        tensors[f"{k}.x"] = s.x
        tensors[f"{k}.y"] = s.y
    side = {"classes": list(ds.classes), "mean": list(ds.mean), "std": list(ds.std),
            "input_shape": list(ds.input_shape), **ds.meta, **(meta or {})}
    save_checkpoint(tensors, path, side)


def load_prepared(path: str | os.PathLike, device: str | torch.device = "cpu") -> PreparedDataset:
    from .io import load_checkpoint

    tensors, side = load_checkpoint(path, device=device)
    names = sorted({key.rsplit(".", 1)[0] for key in tensors},
                   key=lambda n: (SPLIT_ORDER.index(n) if n in SPLIT_ORDER else len(SPLIT_ORDER), n))
    splits = {n: Split(tensors[f"{n}.x"], tensors[f"{n}.y"]) for n in names}
    extra = {k: v for k, v in side.items() if k not in ("classes", "mean", "std")}
    return PreparedDataset(splits, tuple(side["classes"]), tuple(side["mean"]), tuple(side["std"]), extra)


# --------------------------------------------------------------------------- minibatches


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed derived from the parts (stable across runs and platforms)."""
    import hashlib

    blob = "/".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") >> 1


class DeviceBatches:
    """Minibatches of ``(x, y)`` kept on the device, in a seeded order.

    The order of epoch ``e`` is a permutation drawn from a CPU generator seeded
    with ``(seed, e)`` only, so every model and optimizer given the same seed sees
    identical batches in identical order, on any device, and a resumed run sees
    the batches it would have seen. With ``augment=True`` each image gets a
    random crop from its zero-padded version (``pad`` pixels) and a random
    horizontal flip, drawn from the same generator and applied on the device in
    one gather per batch. Augmentation keeps a padded and a mirrored copy of the
    inputs on the device (about 3× the memory of ``x`` for 32×32 images).
    """

    def __init__(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        batch_size: int,
        seed: int,
        *,
        augment: bool = False,
        pad: int = 4,
        drop_last: bool = False,
        channels_last: bool = False,
    ) -> None:
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.x, self.y = x, y
        self.n = int(y.shape[0])
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.augment = bool(augment) and x.dim() == 4
        self.pad = int(pad)
        self.drop_last = drop_last
        self.channels_last = channels_last and x.dim() == 4
        self.device = x.device
        if self.augment:
            padded = F.pad(x, (self.pad,) * 4)
            h, w = x.shape[-2:]
            # (2, N, C, 2·pad+1, 2·pad+1, H, W): every crop of every image and of its mirror, as a view
            self._crops = torch.stack([padded, padded.flip(-1)]).unfold(3, h, 1).unfold(4, w, 1)

    def __len__(self) -> int:
        if self.drop_last:
            return self.n // self.batch_size
        return -(-self.n // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """The permutation of epoch ``epoch`` (CPU tensor)."""
        g = torch.Generator().manual_seed(derive_seed("batches", self.seed, epoch))
        return torch.randperm(self.n, generator=g)

    def _augment_params(self, epoch: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(derive_seed("augment", self.seed, epoch))
        shifts = torch.randint(0, 2 * self.pad + 1, (2, self.n), generator=g)
        flips = torch.rand(self.n, generator=g) < 0.5
        return shifts[0], shifts[1], flips

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The minibatches of epoch ``epoch``: ``(inputs, targets)`` on the device.

        With augmentation every batch is one gather from a view of all crops of
        the padded images and of their mirror images (``unfold``), indexed by
        (flip, image, row offset, column offset): no per-image Python work.
        """
        perm = self.order(epoch).to(self.device, non_blocking=True)
        stop = len(self) * self.batch_size if self.drop_last else self.n
        if self.augment:
            dy, dx, flip = (t.to(self.device, non_blocking=True) for t in self._augment_params(epoch))
            # a flipped crop at column offset dx is the crop at 2·pad − dx of the flipped image
            dx = torch.where(flip, 2 * self.pad - dx, dx)
            # in batch order once per epoch, so that a batch takes slices, not gathers
            flip, dy, dx = flip.long()[perm], dy[perm], dx[perm]
        for start in range(0, stop, self.batch_size):
            idx = perm[start:start + self.batch_size]
            if self.augment:
                end = start + idx.numel()
                xb = self._crops[flip[start:end], idx, :, dy[start:end], dx[start:end]]
            else:
                xb = self.x.index_select(0, idx)
            if self.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            yield xb, self.y[idx]


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
