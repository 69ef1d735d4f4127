"""Bad data sets give one clear error naming the offending file: missing paths, truncated or
corrupt archives, inconsistent ImageFolder splits, odd or undecodable images, bad CIFAR-10
batch files. The bad inputs are edits of the small data sets of tests/conftest.py."""

from __future__ import annotations

import io
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lossland.data import read_imagefolder, read_python_archive
from lossland.data.sources import DataError


def _raises(read, path: Path, exc: type, *words: str) -> str:
    """``read(path)`` raises ``exc`` whose message holds ``path`` and ``words``, leaving no file behind."""
    folder = path.parent
    before = sorted(folder.rglob("*"))
    with pytest.raises(exc) as info:
        read(path)
    msg = str(info.value)
    assert str(path) in msg
    for w in words:
        assert w in msg
    assert sorted(folder.rglob("*")) == before
    return msg


def _jpeg(size: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buf, format="JPEG")
    return buf.getvalue()


def _pack(folder: Path, fmt: str) -> Path:
    """``folder`` itself (fmt "dir") or a .tar.gz of its train/ and test/ with their directory entries."""
    if fmt == "dir":
        return folder
    out = folder.parent / "bad.tar.gz"
    with tarfile.open(out, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(folder / split, arcname=split)
    return out


def _edit_python_archive(src: Path, dst: Path, name: str, blob: bytes) -> Path:
    """A copy of python archive ``src`` with batch file ``name`` replaced by ``blob``."""
    with tarfile.open(src) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}
    files[f"cifar-10-batches-py/{name}"] = blob
    with tarfile.open(dst, "w:gz") as tar:
        for member, b in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(b)
            tar.addfile(info, io.BytesIO(b))
    return dst


@pytest.fixture
def folder(small_imagefolder_dir, tmp_path) -> Path:
    """A copy of the small ImageFolder folder to break."""
    return Path(shutil.copytree(small_imagefolder_dir, tmp_path / "imagefolder"))


# ------------------------------------------------------------------ 1. missing path


@pytest.mark.parametrize("read", [read_imagefolder, read_python_archive])
def test_missing_path(read, tmp_path):
    _raises(read, tmp_path / "no-such.tar.gz", FileNotFoundError, "does not exist")


# ------------------------------------------------------------------ 2. truncated archive


@pytest.mark.parametrize("read, fixture", [(read_imagefolder, "small_imagefolder_tar"),
                                           (read_python_archive, "small_python_archive")])
def test_truncated_archive(read, fixture, request, tmp_path):
    whole = request.getfixturevalue(fixture).read_bytes()
    path = tmp_path / "half.tar.gz"
    path.write_bytes(whole[: len(whole) // 2])
    msg = _raises(read, path, DataError, "truncated or corrupt near member", "expected a complete .tar")
    assert "EOFError" in msg


# ------------------------------------------------------------------ 3. corrupt archive


@pytest.mark.parametrize("content", ["random", "gzip-header"])
@pytest.mark.parametrize("read", [read_imagefolder, read_python_archive])
def test_corrupt_archive(read, content, small_imagefolder_tar, tmp_path):
    garbage = np.random.default_rng(0).bytes(4096)
    path = tmp_path / "corrupt.tar.gz"
    path.write_bytes(small_imagefolder_tar.read_bytes()[:10] + garbage if content == "gzip-header" else garbage)
    _raises(read, path, DataError, "not a folder or a tar archive", "ReadError")


# ------------------------------------------------------------------ 4. inconsistent splits


@pytest.mark.parametrize("fmt", ["dir", "tar"])
def test_test_split_lacks_a_class(fmt, folder):
    shutil.rmtree(folder / "test" / "cat")
    _raises(read_imagefolder, _pack(folder, fmt), DataError, "test split has no folder for classes ['cat']")


@pytest.mark.parametrize("fmt", ["dir", "tar"])
def test_empty_class_folder(fmt, folder):
    for f in (folder / "train" / "dog").iterdir():
        f.unlink()
    _raises(read_imagefolder, _pack(folder, fmt), DataError, "class folders without images: ['train/dog/']")


# ------------------------------------------------------------------ 5.-6. bad images


@pytest.mark.parametrize("fmt", ["dir", "tar"])
def test_image_of_another_size(fmt, folder):
    (folder / "train" / "cat" / "odd.jpg").write_bytes(_jpeg(30))
    _raises(read_imagefolder, _pack(folder, fmt), DataError,
            "image train/cat/odd.jpg is 30x30 pixels; expected 32x32", "first image train/airplane/")


@pytest.mark.parametrize("fmt", ["dir", "tar"])
def test_undecodable_image(fmt, folder):
    (folder / "test" / "frog" / "x.jpg").write_bytes(b"this is not a JPEG" * 10)
    _raises(read_imagefolder, _pack(folder, fmt), DataError, "cannot decode image test/frog/x.jpg",
            "not a known image format")


# ------------------------------------------------------------------ 7. bad batch files

_PIXELS = 3 * 32 * 32
_BAD_BATCHES = {
    "not-a-pickle": (b"garbage, not a pickle", "not a pickle"),
    "not-a-dict": (pickle.dumps([1, 2, 3]), "a pickled list; expected a pickled dict"),
    "no-labels": (pickle.dumps({"data": np.zeros((2, _PIXELS), np.uint8)}), "expected 'data' and 'labels'"),
    "data-length": (pickle.dumps({"data": np.zeros(_PIXELS + 5, np.uint8), "labels": [0]}),
                    "'data' has 3077 values; expected a multiple of 3*32*32"),
    "labels-count": (pickle.dumps({"data": np.zeros((2, _PIXELS), np.uint8), "labels": [0, 1, 2]}),
                     "3 labels for 2 images"),
}


@pytest.mark.parametrize("kind", list(_BAD_BATCHES))
def test_bad_batch_file(kind, small_python_archive, tmp_path):
    blob, problem = _BAD_BATCHES[kind]
    path = _edit_python_archive(small_python_archive, tmp_path / "cifar-10-python.tar.gz", "data_batch_3", blob)
    _raises(read_python_archive, path, DataError, "batch data_batch_3", problem)


def test_bad_batch_file_in_a_folder(small_python_archive, tmp_path):
    with tarfile.open(small_python_archive) as tar:
        tar.extractall(tmp_path, filter="data")
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle at all")
    _raises(read_python_archive, tmp_path / "cifar-10-batches-py", DataError, "batch test_batch", "not a pickle")


@pytest.mark.workflow
def test_a_truncated_archive_fails_its_prepare_job_naming_the_file_and_leaves_no_tensors(small_imagefolder_tar,
                                                                                       tmp_path):
    """Through the workflow: the prepare job of a truncated archive fails with the file named in its
    log, no prepared tensors (or partial files) exist after it, and the data set's runs never start."""
    from tiny import TINY, snakemake

    archive = tmp_path / "half.tar.gz"
    blob = small_imagefolder_tar.read_bytes()
    archive.write_bytes(blob[: len(blob) // 2])
    config = {key: TINY[key] for key in ("device", "threads", "models", "optimizers", "training")}
    config["datasets"] = {"half": {"source": "imagefolder", "path": str(archive), "val_size": 0}}
    config["optimizer_study"] = {"dataset": "half", "models": ["mlp"], "optimizers": ["sgd"]}
    workdir = tmp_path / "wf"
    workdir.mkdir()
    res = snakemake(workdir, config=config)
    assert res.returncode != 0
    log = (workdir / "results" / "logs" / "prepare_dataset" / "half.log").read_text()
    assert f"{archive}: tar archive truncated or corrupt" in log, log
    data_dir = workdir / "results" / "data"
    assert not data_dir.exists() or not any(data_dir.iterdir()), sorted(data_dir.iterdir())
    assert not (workdir / "results" / "runs").exists()
