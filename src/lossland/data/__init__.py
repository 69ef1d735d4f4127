"""Image data sets as tensors: reading the CIFAR-10 formats (:mod:`.sources`), preparing
normalised splits (:mod:`.prepared`), and seeded minibatches drawn on the device
(:mod:`.batches`).

:func:`prepare` turns a raw data set into normalised float tensors (class subset,
sizes, resizing, validation hold-out), the cached artifact every training run
reads. :class:`DeviceBatches` serves minibatches from tensors kept on the
device, in an order that depends only on ``(seed, epoch)``, with random-crop and
flip augmentation done on the device.
"""

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

__all__ = [
    "CIFAR10_CLASSES", "SOURCES", "DataError", "RawSplit", "RawDataset", "embedded_archive", "read_imagefolder",
    "read_python_archive", "read_torchvision", "read_source", "build_embedded_archive",
    "SPLIT_ORDER", "Split", "PreparedDataset", "prepare", "save_prepared", "load_prepared",
    "SUBSET_SEED", "subset_indices",
    "derive_seed", "DeviceBatches",
]
