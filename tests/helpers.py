"""Small synthetic datasets written as real IDX files, so no test needs the network or MNIST."""
from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np

from cae.data import Dataset, DatasetSpec, Resource, write_idx
from cae.preprocess import Framing, preprocess

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


def stroke(points, width=28.0, size=280):
    """Rasterise a thick anti-aliased polyline (distance to the segments) into a pad image."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    dist = np.full((size, size), np.inf)
    for (r0, c0), (r1, c1) in zip(points[:-1], points[1:]):
        d = np.array([r1 - r0, c1 - c0], float)
        t = np.clip(((yy - r0) * d[0] + (xx - c0) * d[1]) / max(d @ d, 1e-9), 0, 1)
        dist = np.minimum(dist, np.hypot(yy - (r0 + t * d[0]), xx - (c0 + t * d[1])))
    return np.clip(width / 2 - dist + 0.5, 0, 1)


def framed_scribbles(framing: Framing, n: int = 60, seed: int = 0) -> np.ndarray:
    """uint8 images (n, field, field) of random strokes framed by ``framing``: a dataset whose
    framing is known."""
    rng = np.random.default_rng(seed)
    images = [preprocess(stroke(rng.uniform(30, 250, (int(rng.integers(2, 5)), 2)), width=20.0),
                         framing).image for _ in range(n)]
    return np.round(np.stack(images) * 255).astype(np.uint8)


def make_dataset(n_train: int = 256, n_test: int = 64, seed: int = 0) -> Dataset:
    tr, trl = synthetic_digits(n_train, seed)
    te, tel = synthetic_digits(n_test, seed + 1)
    return Dataset("synthetic", tr, trl.astype(np.int64), te, tel.astype(np.int64))


def write_dataset_folder(folder: Path, n_train: int = 256, n_test: int = 64, seed: int = 0,
                         pad: int = 0, framing: Framing | None = None) -> Path:
    """Write the four IDX .gz files of a synthetic dataset into ``folder`` (its images padded by
    ``pad`` px on every side: images of another size than the model's; or scribbles framed by
    ``framing``)."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = make_dataset(n_train, n_test, seed)
    images = [np.pad(x, ((0, 0), (pad, pad), (pad, pad))) for x in (ds.train_images,
                                                                    ds.test_images)]
    if framing is not None:
        images = [framed_scribbles(framing, len(x), seed + i) for i, x in enumerate(images)]
    arrays = {"train_images": images[0], "train_labels": ds.train_labels.astype(np.uint8),
              "test_images": images[1], "test_labels": ds.test_labels.astype(np.uint8)}
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


MNIST_SAMPLE = Path(__file__).resolve().parent / "data" / "mnist_sample.npz"
# SHA-256 of the sample's arrays (tests/data/README.md): a damaged sample fails loudly, not subtly.
MNIST_SAMPLE_SHA256 = {
    "images": "b40951266842e68099badfd113fb1525bce88e99ecbc0779db1bfac8fe4b0b16",
    "labels": "697dd54cc0bf4f9aa13ea40623e905774eaa79fc775563086343b9390f156739",
}


def mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    """The first 200 MNIST test digits, uint8 (200, 28, 28), and their labels, uint8 (200,)."""
    with np.load(MNIST_SAMPLE, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in MNIST_SAMPLE_SHA256}
    for key, digest in MNIST_SAMPLE_SHA256.items():
        if hashlib.sha256(arrays[key].tobytes()).hexdigest() != digest:
            raise AssertionError(f"{MNIST_SAMPLE}: '{key}' differs from the shipped sample")
    return arrays["images"], arrays["labels"]


def tile_at(image: np.ndarray, cols: int, row: int, col: int) -> np.ndarray:
    """The decoded tile at grid cell (row from the bottom, column) of the window's mosaic image,
    the right way up."""
    size = image.shape[1] // cols
    return image[row * size:(row + 1) * size, col * size:(col + 1) * size][::-1]


def choose_colouring(bar, index: int) -> None:
    """What a user's pick in the map toolbar's colour box does (``bar``: a MapToolbar)."""
    bar.colour_by.setCurrentIndex(index)
    bar.colour_by.activated.emit(index)


def open_window(qtbot, settings, model_path, folder, points: int):
    """A shown 1200 x 800 main window started on ``model_path`` over the IDX ``folder``, once its
    map has ``points`` points."""
    from app.main_window import MainWindow
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.resize(1200, 800)
    w.show()
    qtbot.waitExposed(w)
    w.start(str(model_path), str(folder), "folder")
    qtbot.waitUntil(lambda: len(w.session.points) == points or bool(w.last_error), timeout=20000)
    assert not w.last_error
    return w


def set_settings(window, epochs=2, batch=32):
    """The Training dock set for a run of ``epochs`` in batches of ``batch``, on the CPU."""
    p = window.training_panel
    p.epochs.setValue(epochs)
    p.batch_size.setValue(batch)
    p.device.setCurrentIndex(p.device.findData("cpu"))
