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
import lzma
import os
import pickle
import tarfile
import zlib
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


class DataError(ValueError):
    """A data set's files are missing parts, unreadable or inconsistent; the message names the file."""


# what reading a truncated or corrupt archive raises: tarfile's errors, gzip's EOFError and
# BadGzipFile (an OSError), zlib.error, bz2's OSError and lzma's LZMAError
_ARCHIVE_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, lzma.LZMAError)


def _read_tar(path: Path, where: str, keep) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """The members of tar archive ``path`` that ``keep(member)`` accepts, with the bytes of regular files."""
    out: list[tuple[tarfile.TarInfo, bytes | None]] = []
    member = None
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if keep(member):
                    out.append((member, tar.extractfile(member).read() if member.isfile() else None))
    except _ARCHIVE_ERRORS as e:
        detail = f"{type(e).__name__}: {' '.join(str(e).split())}"
        if member is None:
            raise DataError(f"{where}: not a folder or a tar archive ({detail}); expected a folder "
                            "or a .tar/.tar.gz archive, the file is corrupt or of another format") from None
        raise DataError(f"{where}: tar archive truncated or corrupt near member {member.name} ({detail}); "
                        "expected a complete .tar/.tar.gz archive") from None
    return out


def _decode_image(blob: bytes, name: str, where: str) -> np.ndarray:
    """Image ``name`` (a file of source ``where``) as ``uint8`` ``H×W×3``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(blob)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        detail = "not a known image format" if isinstance(e, UnidentifiedImageError) else f"{type(e).__name__}: {e}"
        raise DataError(f"{where}: cannot decode image {name} ({detail}); expected a JPEG, PNG or BMP image") from None


def _split_and_class(relpath: str) -> tuple[str, str] | None:
    parts = [p for p in Path(relpath).parts if p not in (".", "")]
    # accept an optional top folder: [top/]split/class/file
    for i in range(len(parts) - 2):
        if parts[i] in ("train", "test") and i + 3 == len(parts):
            return parts[i], parts[i + 1]
    return None


def _is_image(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def read_imagefolder(path: str | os.PathLike) -> RawDataset:
    """Read ``train/<class>/<image>`` and ``test/<class>/<image>`` from a folder or tar archive.

    Classes are the sorted folder names of the train split (ImageFolder's rule);
    the test split must have the same classes, every class folder at least one
    image, and all images the size of the first. Files are read in sorted order,
    so the result does not depend on the archive's member order. Bad data raises
    :class:`DataError` (a missing path :class:`FileNotFoundError`) naming the file.
    """
    path = Path(path)
    where = f"imagefolder source {path}"
    # split -> class -> [(file name, name in the source, bytes)]
    entries: dict[str, dict[str, list[tuple[str, str, bytes]]]] = {"train": {}, "test": {}}
    if not path.exists():
        raise FileNotFoundError(f"{where}: does not exist; expected a folder or a .tar/.tar.gz archive")
    if path.is_dir():
        for split in ("train", "test"):
            root = path / split
            if not root.is_dir():
                continue
            for cls_dir in sorted(p for p in root.iterdir() if p.is_dir()):
                files = sorted(f for f in cls_dir.iterdir() if f.is_file() and _is_image(f.name))
                entries[split][cls_dir.name] = [(f.name, f"{split}/{cls_dir.name}/{f.name}", f.read_bytes())
                                                for f in files]
    else:
        for member, blob in _read_tar(path, where, lambda m: m.isdir() or (m.isfile() and _is_image(m.name))):
            found = _split_and_class(member.name + "/-" if member.isdir() else member.name)
            if found is None:
                continue
            split, cls = found
            files = entries[split].setdefault(cls, [])
            if blob is not None:
                files.append((Path(member.name).name, member.name, blob))
    for split in ("train", "test"):
        if not entries[split]:
            raise DataError(f"{where}: no {split}/<class>/<image> files found")
    classes = tuple(sorted(entries["train"]))
    missing = sorted(set(classes) - set(entries["test"]))
    if missing:
        raise DataError(f"{where}: test split has no folder for classes {missing} that train has; "
                        "expected test/<class>/<image> for every train class")
    unknown = sorted(set(entries["test"]) - set(classes))
    if unknown:
        raise DataError(f"{where}: test has classes not in train: {unknown}")
    empty = [f"{split}/{cls}/" for split, by_class in entries.items() for cls, files in by_class.items() if not files]
    if empty:
        raise DataError(f"{where}: class folders without images: {empty}; "
                        f"expected at least one {'/'.join(IMAGE_SUFFIXES)} file in each")
    splits = {}
    first: tuple[str, tuple[int, ...]] | None = None  # name and shape of the first image
    for split, by_class in entries.items():
        images, labels = [], []
        for label, cls in enumerate(classes):
            for _, name, blob in sorted(by_class[cls]):
                image = _decode_image(blob, name, where)
                first = first or (name, image.shape)
                if image.shape != first[1]:
                    (h, w), (eh, ew) = image.shape[:2], first[1][:2]
                    raise DataError(f"{where}: image {name} is {w}x{h} pixels; expected {ew}x{eh}, "
                                    f"the size of the first image {first[0]}")
                images.append(image)
                labels.append(label)
        arr = np.stack(images).transpose(0, 3, 1, 2).copy()  # N,H,W,C -> N,C,H,W
        splits[split] = RawSplit(torch.from_numpy(arr), torch.tensor(labels, dtype=torch.int64))
    return RawDataset(splits, classes)


def _unpickle(blob: bytes, where: str) -> dict:
    """The dict pickled in ``blob`` (file ``where``)."""
    try:
        # the original batches are Python 2 pickles: latin1 turns their keys into str
        # (torchvision reads them the same way)
        obj = pickle.loads(blob, encoding="latin1")
    except Exception as e:  # garbage raises UnpicklingError, EOFError, KeyError, ValueError, ...
        raise DataError(f"{where}: not a pickle ({type(e).__name__}: {e}); expected a pickled dict") from None
    if not isinstance(obj, dict):
        raise DataError(f"{where}: a pickled {type(obj).__name__}; expected a pickled dict")
    return obj


def _read_batch(blob: bytes, where: str) -> tuple[np.ndarray, list]:
    """Images ``N×3×32×32`` and labels of a CIFAR-10 batch file."""
    d = _unpickle(blob, where)
    if "data" not in d or "labels" not in d:
        raise DataError(f"{where}: keys {list(d)}; expected 'data' and 'labels'")
    x = np.asarray(d["data"], dtype=np.uint8)
    if x.size % (3 * 32 * 32):
        raise DataError(f"{where}: 'data' has {x.size} values; expected a multiple of 3*32*32 = 3072")
    x = x.reshape(-1, 3, 32, 32)
    if len(d["labels"]) != len(x):
        raise DataError(f"{where}: {len(d['labels'])} labels for {len(x)} images; expected one label per image")
    return x, list(d["labels"])


def read_python_archive(path: str | os.PathLike) -> RawDataset:
    """Read the original CIFAR-10 python archive (``.tar.gz`` or extracted folder).

    Bad data raises :class:`DataError` (a missing path :class:`FileNotFoundError`)
    naming the archive and the batch file.
    """
    path = Path(path)
    where = f"python-archive source {path}"
    blobs: dict[str, bytes] = {}
    wanted = {f"data_batch_{i}" for i in range(1, 6)} | {"test_batch", "batches.meta"}
    if not path.exists():
        raise FileNotFoundError(f"{where}: does not exist; expected a folder or a .tar.gz archive")
    if path.is_dir():
        folder = path / "cifar-10-batches-py" if (path / "cifar-10-batches-py").is_dir() else path
        for name in wanted:
            f = folder / name
            if f.is_file():
                blobs[name] = f.read_bytes()
    else:
        for member, blob in _read_tar(path, where, lambda m: m.isfile() and Path(m.name).name in wanted):
            blobs[Path(member.name).name] = blob
    missing = sorted(wanted - set(blobs))
    if missing:
        raise DataError(f"{where}: missing {', '.join(missing)}")
    meta = _unpickle(blobs["batches.meta"], f"{where}: batch batches.meta")
    if "label_names" not in meta:
        raise DataError(f"{where}: batch batches.meta: keys {list(meta)}; expected 'label_names'")
    classes = tuple(meta["label_names"])

    def split(names: Sequence[str]) -> RawSplit:
        batches = [_read_batch(blobs[n], f"{where}: batch {n}") for n in names]
        xs = np.concatenate([x for x, _ in batches])
        ys = [y for _, labels in batches for y in labels]
        return RawSplit(torch.from_numpy(xs), torch.tensor(ys, dtype=torch.int64))

    return RawDataset(
        {"train": split([f"data_batch_{i}" for i in range(1, 6)]), "test": split(["test_batch"])},
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
    try:
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
    except BaseException:
        tmp.unlink(missing_ok=True)  # no partial archive left behind
        raise
    os.replace(tmp, dest)
    counts: dict[str, int] = {}
    for name in picked:
        counts[name.split("/")[0]] = counts.get(name.split("/")[0], 0) + 1
    return counts
