"""Write tests/data/mnist_sample.npz: the first 200 MNIST test digits and their labels.

The tests ship this small real sample so that checks against real digits run everywhere, also
where the full dataset is absent.  Usage: ``python scripts/make_test_sample.py [MNIST_DIR]``
(default ``../shared/data/mnist``).  The arrays are the same for every canonical copy of the
t10k files (their MD5s are checked).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from cae.data import get_spec, read_idx

COUNT = 200
OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "mnist_sample.npz"


def main(argv: list[str]) -> int:
    """Read the canonical t10k files, refuse any whose MD5 differs, and save the sample."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    folder = Path(argv[1]) if len(argv) > 1 else default
    spec = get_spec("mnist")
    arrays = {}
    for role in ("test_images", "test_labels"):
        resource = spec.resources[role]
        arrays[role], md5 = read_idx(folder / resource.filename)
        if md5 != resource.md5:
            raise SystemExit(f"{folder / resource.filename}: MD5 {md5}, expected {resource.md5}")
    images = np.ascontiguousarray(arrays["test_images"][:COUNT], dtype=np.uint8)
    labels = np.ascontiguousarray(arrays["test_labels"][:COUNT], dtype=np.uint8)
    np.savez_compressed(OUT, images=images, labels=labels)
    print(f"{OUT}: {len(images)} digits, {OUT.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
