import gzip
import hashlib
import tarfile

import pytest
import torch
from conftest import SHARED_ARCHIVE

from lossland import data


def _tar_members(path):
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


# ------------------------------------------------------------------ embedded subset


def test_embedded_subset_contents(embedded_raw):
    path = data.embedded_archive()
    assert path.stat().st_size <= 5 * 1024 * 1024
    assert embedded_raw.classes == data.CIFAR10_CLASSES
    train, test = embedded_raw.splits["train"], embedded_raw.splits["test"]
    assert train.images.shape[1:] == (3, 32, 32) and train.images.dtype == torch.uint8
    counts_train = torch.bincount(train.labels, minlength=10)
    counts_test = torch.bincount(test.labels, minlength=10)
    assert (counts_train > 0).all() and (counts_test > 0).all()  # all ten classes
    airplane, automobile = 0, 1
    # zhang2018: 500 training and 2000 test airplane/automobile images
    assert counts_train[airplane] + counts_train[automobile] >= 500
    assert counts_test[airplane] == 1000 and counts_test[automobile] == 1000


@pytest.mark.skipif(not SHARED_ARCHIVE.exists(), reason="needs ../shared/data/cifar10-jpeg.tar.gz")
def test_embedded_subset_rebuilds_identically(tmp_path):
    rebuilt = tmp_path / "rebuilt.tar.gz"
    counts = data.build_embedded_archive(SHARED_ARCHIVE, rebuilt)
    assert counts == {"train": 8000, "test": 3600}
    assert _tar_members(rebuilt) == _tar_members(data.embedded_archive())
    # the tar stream itself (names, order, headers) is reproducible too
    digest = lambda p: hashlib.sha256(gzip.decompress(p.read_bytes())).hexdigest()  # noqa: E731
    assert digest(rebuilt) == digest(data.embedded_archive())


@pytest.mark.skipif(not SHARED_ARCHIVE.exists(), reason="needs ../shared/data/cifar10-jpeg.tar.gz")
def test_embedded_jpegs_are_unchanged_copies_of_the_shared_ones():
    embedded = _tar_members(data.embedded_archive())
    picked = {"train/airplane/0000.jpg", "test/truck/0199.jpg", "test/automobile/0999.jpg"}
    with tarfile.open(SHARED_ARCHIVE) as tar:
        for m in tar:
            name = m.name.lstrip("./")
            if name in picked:
                assert tar.extractfile(m).read() == embedded[name]
                picked.discard(name)
    assert not picked


# ------------------------------------------------------------------ formats


def test_imagefolder_folder_and_archive_agree(small_imagefolder_tar, small_imagefolder_dir):
    a = data.read_imagefolder(small_imagefolder_tar)
    b = data.read_imagefolder(small_imagefolder_dir)
    assert a.classes == b.classes == data.CIFAR10_CLASSES
    for split in ("train", "test"):
        assert torch.equal(a.splits[split].images, b.splits[split].images)
        assert torch.equal(a.splits[split].labels, b.splits[split].labels)
    assert len(a.splits["train"]) == 60 and len(a.splits["test"]) == 30


def test_python_archive_matches_imagefolder(small_raw, small_python_archive, tmp_path):
    got = data.read_python_archive(small_python_archive)
    assert got.classes == small_raw.classes
    for split in ("train", "test"):
        assert torch.equal(got.splits[split].images, small_raw.splits[split].images)
        assert torch.equal(got.splits[split].labels, small_raw.splits[split].labels)
    # the extracted folder reads the same
    with tarfile.open(small_python_archive) as tar:
        tar.extractall(tmp_path, filter="data")
    folder = data.read_python_archive(tmp_path)
    assert torch.equal(folder.splits["train"].images, got.splits["train"].images)


def test_torchvision_source_reads_the_python_layout(small_raw, small_python_archive, tmp_path, monkeypatch):
    """torchvision's CIFAR10 reader over our fixture (its md5 check is for the real files only)."""
    import torchvision.datasets.cifar as tv_cifar

    with tarfile.open(small_python_archive) as tar:
        tar.extractall(tmp_path, filter="data")
    monkeypatch.setattr(tv_cifar.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tv_cifar, "check_integrity", lambda path, md5=None: True)
    got = data.read_source("torchvision", str(tmp_path))
    assert got.classes == small_raw.classes
    assert torch.equal(got.splits["test"].images, small_raw.splits["test"].images)
    assert torch.equal(got.splits["train"].labels, small_raw.splits["train"].labels)


def test_read_source_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="allowed: embedded, imagefolder"):
        data.read_source("hdf5")
    with pytest.raises(ValueError, match="needs a path"):
        data.read_source("imagefolder")
    with pytest.raises(ValueError, match="missing"):
        (tmp_path / "x").mkdir()
        data.read_python_archive(tmp_path / "x")


# ------------------------------------------------------------------ preparation


def test_prepare_subsets_relabels_and_normalises(embedded_raw):
    ds = data.prepare(embedded_raw, classes=["automobile", "airplane"], train_size=500, test_size=2000,
                      val_size=100, seed=3)
    assert ds.classes == ("automobile", "airplane")
    assert len(ds["train"]) == 500 and len(ds["val"]) == 100 and len(ds["test"]) == 2000
    assert torch.bincount(ds["train"].y).tolist() == [250, 250]
    assert torch.bincount(ds["val"].y).tolist() == [50, 50]
    # labels follow the requested order: automobile -> 0
    raw_test = embedded_raw.splits["test"]
    auto = raw_test.images[raw_test.labels == 1].float().mean()
    x_auto = ds["test"].x[ds["test"].y == 0]
    mean, std = torch.tensor(ds.mean), torch.tensor(ds.std)
    back = (x_auto * std[:, None, None] + mean[:, None, None]) * 255
    assert torch.allclose(back.mean(), auto, atol=1e-2)
    # training split normalised per channel
    x = ds["train"].x
    assert torch.allclose(x.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(x.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)


def test_prepare_validation_is_disjoint_from_train(embedded_raw):
    ds = data.prepare(embedded_raw, train_size=300, val_size=100, test_size=10, seed=1)
    tr = {bytes(t.numpy().tobytes()) for t in ds["train"].x}
    va = {bytes(t.numpy().tobytes()) for t in ds["val"].x}
    assert len(tr) == 300 and len(va) == 100 and not (tr & va)


def test_prepare_resizes_and_is_deterministic(embedded_raw):
    a = data.prepare(embedded_raw, classes=["airplane", "automobile"], train_size=50, test_size=20,
                     image_size=6, seed=0)
    b = data.prepare(embedded_raw, classes=["airplane", "automobile"], train_size=50, test_size=20,
                     image_size=6, seed=0)
    c = data.prepare(embedded_raw, classes=["airplane", "automobile"], train_size=50, test_size=20,
                     image_size=6, seed=1)
    assert a.input_shape == (3, 6, 6)
    assert torch.equal(a["train"].x, b["train"].x)
    assert not torch.equal(a["train"].x, c["train"].x)


def test_prepare_unknown_class(embedded_raw):
    with pytest.raises(ValueError, match="not in data set"):
        data.prepare(embedded_raw, classes=["airplane", "zebra"])


def test_save_and_load_prepared(tiny_dataset, tmp_path):
    path = tmp_path / "d.safetensors"
    data.save_prepared(tiny_dataset, path, meta={"dataset": "tiny"})
    back = data.load_prepared(path)
    assert list(back.splits) == ["train", "test"]
    assert back.classes == tiny_dataset.classes and back.mean == tiny_dataset.mean
    assert torch.equal(back["train"].x, tiny_dataset["train"].x)
    assert back.meta["dataset"] == "tiny"


# ------------------------------------------------------------------ minibatches


def _batches(loader, epoch):
    return [(x.clone(), y.clone()) for x, y in loader.epoch(epoch)]


def test_batch_order_depends_only_on_seed_and_epoch():
    x = torch.randn(50, 3, 8, 8)
    y = torch.arange(50)
    a = data.DeviceBatches(x, y, 16, seed=7)
    b = data.DeviceBatches(x.clone(), y.clone(), 16, seed=7)
    ea, eb = _batches(a, 1), _batches(b, 1)
    assert [len(t[1]) for t in ea] == [16, 16, 16, 2]
    for (xa, ya), (xb, yb) in zip(ea, eb):
        assert torch.equal(ya, yb) and torch.equal(xa, xb)
    seen = torch.cat([t[1] for t in ea])
    assert sorted(seen.tolist()) == list(range(50))  # a permutation: every example once
    assert not torch.equal(seen, torch.cat([t[1] for t in _batches(a, 2)]))
    assert not torch.equal(seen, torch.cat([t[1] for t in _batches(data.DeviceBatches(x, y, 16, seed=8), 1)]))
    assert len(data.DeviceBatches(x, y, 16, seed=7, drop_last=True)) == 3


def test_augmentation_is_a_padded_crop_with_optional_flip():
    torch.manual_seed(0)
    x = torch.randn(40, 3, 8, 8)
    y = torch.arange(40)
    loader = data.DeviceBatches(x, y, 40, seed=1, augment=True, pad=2)
    (xb, yb), = list(loader.epoch(3))
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    flips = 0
    for img, label in zip(xb, yb):
        src = padded[label]
        candidates = []
        for dy in range(5):
            for dx in range(5):
                crop = src[:, dy:dy + 8, dx:dx + 8]
                candidates += [(crop, False), (crop.flip(-1), True)]
        match = [flip for crop, flip in candidates if torch.equal(crop, img)]
        assert match, "augmented image is not a crop (or flipped crop) of its padded source"
        flips += match[0]
    assert 5 < flips < 35  # both flipped and unflipped images occur
    # same seed and epoch -> same augmentation
    (xb2, _), = list(data.DeviceBatches(x, y, 40, seed=1, augment=True, pad=2).epoch(3))
    assert torch.equal(xb, xb2)


def test_channels_last_batches():
    x = torch.randn(10, 3, 8, 8)
    loader = data.DeviceBatches(x, torch.arange(10), 5, seed=0, augment=True, channels_last=True)
    xb, _ = next(iter(loader.epoch(1)))
    assert xb.is_contiguous(memory_format=torch.channels_last)
