import gzip

import numpy as np
import pytest
import torch

from aigc_course.data import digits as data


def test_shipped_split_is_fixed_stratified_and_disjoint():
    train, test = data.load_digits("train"), data.load_digits("test")
    assert (len(train), len(test)) == (8000, 2000)
    assert torch.bincount(test.labels).tolist() == [200] * 10
    assert len(data.load_digits("all")) == 10000
    with np.load(data.asset_path("digits.npz")) as npz:
        assert npz["is_test"].sum() == 2000  # one mask: a digit is in exactly one split


def test_items_are_float_images_in_unit_range():
    test = data.load_digits("test")
    x, y = test[0]
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.5
    assert y.dtype == torch.int64 and 0 <= y < 10
    assert test.x.shape == (2000, 1, 28, 28)


def test_loaders_shuffle_reproducibly():
    a, _ = data.digit_loaders(batch_size=32, seed=3)
    b, _ = data.digit_loaders(batch_size=32, seed=3)
    assert torch.equal(next(iter(a))[1], next(iter(b))[1])


def test_bad_split_and_bad_shapes():
    with pytest.raises(ValueError, match="split"):
        data.load_digits("validation")
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        data.DigitDataset(torch.zeros(3, 32, 32, dtype=torch.uint8), torch.zeros(3))


def _write_idx(path, array, zipped):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    (gzip.open if zipped else open)(path, "wb").write(header + array.astype(np.uint8).tobytes())


def test_full_mnist_path_reads_torchvision_layout(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 256, (5, 28, 28)), np.arange(5)
    _write_idx(raw / "train-images-idx3-ubyte.gz", images, zipped=True)
    _write_idx(raw / "train-labels-idx1-ubyte", labels, zipped=False)
    ds = data.load_digits("train", mnist_root=tmp_path)
    assert torch.equal(ds.images, torch.from_numpy(images.astype(np.uint8)))
    assert ds.labels.tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        data.load_digits("test", mnist_root=tmp_path)


def test_truncated_idx_file_is_reported(tmp_path):
    path = tmp_path / "bad-idx"
    _write_idx(path, np.zeros((4, 28, 28)), zipped=False)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(path)
