"""Image data sets in their file formats, read as ``uint8`` tensors.

Formats read (all give ``uint8`` tensors ``N×3×H×W`` and ``int64`` labels):

* ``embedded``: the CIFAR-10 subset shipped inside this package
  (:func:`embedded_archive`, written by :func:`build_embedded_archive`), an
  ImageFolder ``.tar.gz``;
* ``imagefolder``: ``train/<class>/*.jpg|png`` and ``test/<class>/...``, as a
  folder or a ``.tar``/``.tar.gz`` archive of one;
* ``python-archive``: the original ``cifar-10-python.tar.gz`` or its extracted
  ``cifar-10-batches-py`` folder;
* ``torchvision``: :class:`torchvision.datasets.CIFAR10` (downloads when asked).
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)
SOURCES = ("embedded", "imagefolder", "python-archive", "torchvision")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


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
