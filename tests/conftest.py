"""Shared fixtures: small data sets in every supported format, built from the
shared CIFAR-10 JPEGs when they are beside the repository (../shared/data), or
from the embedded subset otherwise."""

from __future__ import annotations

import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny import TINY, snakemake

import lossland
from lossland import data

ROOT = Path(__file__).resolve().parents[1]
SHARED_ARCHIVE = ROOT.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def pytest_collection_modifyitems(config, items):
    """SLURM tests run only where `make test-slurm` started a cluster (LOSSLAND_SLURM=1);
    there a cluster that does not answer fails them, it never skips them."""
    if os.environ.get("LOSSLAND_SLURM") == "1":
        return
    skip = pytest.mark.skip(reason="needs a SLURM cluster: `make test-slurm` starts one (root, Debian's slurm-wlm)")
    for item in items:
        if "slurm" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_workflow(tmp_path_factory) -> Path:
    """A folder where the tiny config (tests/tiny.py) ran to the end: the workflow tests'
    and the reliability suite's (determinism, rerun triggers) shared run. Tests may dry-run
    in it with other configs but must leave it as they found it."""
    workdir = tmp_path_factory.mktemp("tiny")
    res = snakemake(workdir, config=TINY)
    assert res.returncode == 0, res.stdout + res.stderr
    return workdir


def source_archive() -> Path:
    return SHARED_ARCHIVE if SHARED_ARCHIVE.exists() else data.embedded_archive()


@pytest.fixture(scope="session")
def small_imagefolder_tar(tmp_path_factory) -> Path:
    """An ImageFolder .tar.gz with 6 train and 3 test JPEGs per class, taken from the shared archive."""
    out = tmp_path_factory.mktemp("fmt") / "small.tar.gz"
    data.build_embedded_archive(source_archive(), out, train_per_class=6, test_per_class={}, test_others=3)
    return out


@pytest.fixture(scope="session")
def small_imagefolder_dir(small_imagefolder_tar, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fmt_dir")
    with tarfile.open(small_imagefolder_tar) as tar:
        tar.extractall(root, filter="data")
    return root


def write_python_archive(raw: data.RawDataset, path: Path) -> None:
    """Write ``raw`` in the layout of the original cifar-10-python.tar.gz (5 train batches)."""
    def blob(obj) -> bytes:
        return pickle.dumps(obj)

    train, test = raw.splits["train"], raw.splits["test"]
    chunks = np.array_split(np.arange(len(train)), 5)
    files = {}
    for i, idx in enumerate(chunks, start=1):
        files[f"data_batch_{i}"] = blob({"data": train.images[idx].reshape(len(idx), -1).numpy(),
                                         "labels": train.labels[idx].tolist()})
    files["test_batch"] = blob({"data": test.images.reshape(len(test), -1).numpy(),
                                "labels": test.labels.tolist()})
    files["batches.meta"] = blob({"label_names": list(raw.classes)})
    with tarfile.open(path, "w:gz") as tar:
        for name, b in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(b)
            tar.addfile(info, io.BytesIO(b))


@pytest.fixture(scope="session")
def small_raw(small_imagefolder_tar) -> data.RawDataset:
    return data.read_imagefolder(small_imagefolder_tar)


@pytest.fixture(scope="session")
def small_python_archive(small_raw, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fmt_py") / "cifar-10-python.tar.gz"
    write_python_archive(small_raw, path)
    return path


@pytest.fixture(scope="session")
def embedded_raw() -> data.RawDataset:
    return data.read_source("embedded")


@pytest.fixture
def tiny_dataset(embedded_raw) -> lossland.PreparedDataset:
    """200 train / 100 test images of the embedded set, 8×8 pixels: fast to train on."""
    return data.prepare(embedded_raw, train_size=200, test_size=100, image_size=8, seed=0)


@pytest.fixture(autouse=True)
def _single_thread():
    torch.set_num_threads(1)
    yield
