"""Data sets as tensors: reading the CIFAR-10 formats (:mod:`.sources`), preparing
normalised splits (:mod:`.prepared`), Penn Treebank as token sequences (:mod:`.text`),
and seeded minibatches drawn on the device (:mod:`.batches`).

:func:`prepare` turns a raw data set into normalised float tensors (class subset,
sizes, resizing, validation hold-out), the cached artifact every training run
reads. :class:`DeviceBatches` serves minibatches from tensors kept on the
device, in an order that depends only on ``(seed, epoch)``, with random-crop and
flip augmentation done on the device. :func:`prepare_source` prepares a data set
from its config entry, image or text.
"""

from typing import Any, Mapping

from . import text
from .batches import DeviceBatches, derive_seed
from .prepared import (
    SPLIT_ORDER,
    SUBSET_SEED,
    PreparedDataset,
    Split,
    load_prepared,
    prepare,
    save_prepared,
    subset_indices,
)
from .sources import (
    CIFAR10_CLASSES,
    SOURCES,
    DataError,
    RawDataset,
    RawSplit,
    build_embedded_archive,
    embedded_archive,
    read_imagefolder,
    read_python_archive,
    read_source,
    read_torchvision,
)
from .text import (
    EOS,
    TEXT_OPTIONS,
    TEXT_SOURCES,
    UNK,
    RawText,
    build_vocabulary,
    embedded_ptb_files,
    encode,
    prepare_text,
    read_ptb,
    read_text_source,
    sequences,
    tokenize,
)


def prepare_source(spec: Mapping[str, Any]) -> PreparedDataset:
    """The prepared data set of a config entry (``datasets.<name>``): a text source
    (:data:`TEXT_SOURCES`) through :func:`prepare_text`, an image source through
    :func:`read_source` and :func:`prepare`."""
    if spec["source"] in TEXT_SOURCES:
        splits = {spec.get(k) for k in ("train_split", "test_split", "val_split")} - {None}
        defaults = text.DEFAULT_SPLITS[spec["source"]]
        splits |= {defaults[k] for k in ("train", "test") if not spec.get(f"{k}_split")}
        raw = read_text_source(spec["source"], spec.get("path"), sorted(splits))
        return prepare_text(raw, source=spec["source"],
                            **{k: spec[k] for k in TEXT_OPTIONS if spec.get(k) is not None})
    raw = read_source(spec["source"], spec.get("path"), download=spec.get("download", False))
    return prepare(raw, classes=spec.get("classes"), train_size=spec.get("train_size"),
                   test_size=spec.get("test_size"), val_size=spec.get("val_size", 0),
                   image_size=spec.get("image_size"), seed=spec.get("subset_seed", 0))


__all__ = [
    "CIFAR10_CLASSES", "SOURCES", "DataError", "RawSplit", "RawDataset", "embedded_archive", "read_imagefolder",
    "read_python_archive", "read_torchvision", "read_source", "build_embedded_archive",
    "SPLIT_ORDER", "Split", "PreparedDataset", "prepare", "save_prepared", "load_prepared",
    "SUBSET_SEED", "subset_indices",
    "derive_seed", "DeviceBatches",
    "EOS", "UNK", "TEXT_SOURCES", "RawText", "tokenize", "embedded_ptb_files", "read_ptb", "read_text_source",
    "build_vocabulary", "encode", "sequences", "prepare_text", "prepare_source", "TEXT_OPTIONS",
]
