"""Small synthetic datasets written as real IDX files, so no test needs the network or MNIST."""
from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np

from cae.data import Dataset, DatasetSpec, Resource, write_idx

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}


def synthetic_digits(n: int, seed: int = 0, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Images whose class decides where a bright bar sits: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n)
    images = (rng.random((n, 28, 28)) * 30).astype(np.uint8)
    for i, c in enumerate(labels):
        row = 4 + 2 * int(c)
        images[i, row:row + 3, 4:24] = 255
    return images, labels.astype(np.uint8)


def make_dataset(n_train: int = 256, n_test: int = 64, seed: int = 0) -> Dataset:
    tr, trl = synthetic_digits(n_train, seed)
    te, tel = synthetic_digits(n_test, seed + 1)
    return Dataset("synthetic", tr, trl.astype(np.int64), te, tel.astype(np.int64))


def write_dataset_folder(folder: Path, n_train: int = 256, n_test: int = 64, seed: int = 0) -> Path:
    """Write the four IDX .gz files of a synthetic dataset into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = make_dataset(n_train, n_test, seed)
    arrays = {"train_images": ds.train_images, "train_labels": ds.train_labels.astype(np.uint8),
              "test_images": ds.test_images, "test_labels": ds.test_labels.astype(np.uint8)}
    for role, name in FILES.items():
        write_idx(folder / name, arrays[role])
    return folder


def raw_md5(path: Path) -> str:
    """MD5 of a .gz file's uncompressed content."""
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = zlib.decompress(data, 31)
    return hashlib.md5(data).hexdigest()


def spec_for(folder: Path, mirrors: tuple[str, ...], name: str = "synthetic") -> DatasetSpec:
    """A DatasetSpec whose checksums are those of the files in ``folder``."""
    return DatasetSpec(name, {r: Resource(f, raw_md5(folder / f)) for r, f in FILES.items()},
                       mirrors, tuple(str(i) for i in range(10)))
