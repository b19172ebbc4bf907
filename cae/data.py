"""Datasets in IDX form: a strict reader, checksummed named datasets, local look-up and download.

Where data comes from, in order: an explicit folder, ``$CAE_EXPLORER_DATA``, the user cache,
system data folders (``/usr/share/datasets/<name>``), and finally a download that tries each
mirror in turn.  Every file of a named dataset is checked against the MD5 of its *uncompressed*
content (so a re-compressed copy is still recognised), and a download lands in the cache only
after it has been verified, via an atomic rename.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .errors import DataError, DownloadError, IDXFormatError
from .pictures import (PICTURE_SUFFIXES, PICTURES, is_picture_folder, load_picture_folder,
                       one_class_of)

ENV_VAR = "CAE_EXPLORER_DATA"
ROLES = ("train_images", "train_labels", "test_images", "test_labels")
# IDX type codes -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"
MAX_IDX_BYTES = 1 << 30  # no IDX payload of a dataset this tool knows is anywhere near 1 GiB
# MNIST's images inflate 4.8x, its labels 2x: a gzip claiming far more is refused as a bomb.
GZIP_MAX_RATIO = 100
_CHUNK = 1 << 20

ProgressFn = Callable[[str, int, "int | None"], None]


@dataclass(frozen=True)
class Resource:
    """One file of a dataset: canonical name and MD5 of its uncompressed content."""

    filename: str
    md5: str


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: its files, where to download them, and its class names."""

    name: str
    resources: dict[str, Resource]
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]


DIGITS = tuple(str(i) for i in range(10))
DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        "mnist",
        {
            "train_images": Resource("train-images-idx3-ubyte.gz",
                                      "6bbc9ace898e44ae57da46a324031adb"),
            "train_labels": Resource("train-labels-idx1-ubyte.gz",
                                      "a25bea736e30d166cdddb491f175f624"),
            "test_images": Resource("t10k-images-idx3-ubyte.gz",
                                     "2646ac647ad5339dbf082846283269ea"),
            "test_labels": Resource("t10k-labels-idx1-ubyte.gz",
                                     "27ae3e4e09519cfbb04c329615203637"),
        },
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        DIGITS,
    ),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist",
        {
            "train_images": Resource("train-images-idx3-ubyte.gz",
                                      "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
            "train_labels": Resource("train-labels-idx1-ubyte.gz",
                                      "9018921c3c673c538a1fc5bad174d6f9"),
            "test_images": Resource("t10k-images-idx3-ubyte.gz",
                                     "8181f5470baa50b63fa0f6fddb340f0a"),
            "test_labels": Resource("t10k-labels-idx1-ubyte.gz",
                                     "15d484375f8d13e6eb1aabb0c3f46965"),
        },
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ),
}


@dataclass(frozen=True, eq=False)
class Dataset:
    """Images as uint8 (N, 28, 28) and labels as int64 (N,), for the train and test splits."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...] = DIGITS
    source: str = ""
    notes: tuple[str, ...] = ()  # what the reading found amiss (unreadable pictures), said
    # where the data is loaded
    files: tuple[str, ...] = ()  # a folder of pictures: each image's file, training then test

    def test_files(self, n: int) -> tuple[str, ...]:
        """The files of the first ``n`` test images, or () where the images have none."""
        return self.files[len(self.train_images):][:n] if self.files else ()

    @property
    def image_size(self) -> int:
        return int(self.train_images.shape[-1])

    @property
    def noun(self) -> str:
        """What messages call its images: 'digits' for MNIST, 'images' for anything else."""
        return "digits" if self.name == "mnist" else "images"

    @property
    def title(self) -> str:
        return dataset_title(self.name)

    def all_images(self) -> np.ndarray:
        """The training images, then the test images, as one array: without a copy where they
        are the two halves of one (as :func:`load_folder` keeps them)."""
        train, test = self.train_images, self.test_images
        base = train.base
        if (base is not None and test.base is base and base.ndim == train.ndim
                and len(base) == len(train) + len(test) and base.flags.c_contiguous
                and train.ctypes.data == base.ctypes.data
                and test.ctypes.data == base.ctypes.data + train.nbytes):
            return base
        return np.concatenate([train, test])


TITLES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}


def dataset_title(name: str) -> str:
    """A dataset's name as people write it ("Fashion-MNIST"; the key "fashion-mnist" is what
    files and the command line use); another folder's name as it is."""
    return TITLES.get(name, name)


@dataclass
class CancelToken:
    """Thread-safe cancellation flag shared between a GUI and a download or training loop."""

    _event: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


# ----------------------------------------------------------------------------- IDX reading


def _open_maybe_gzip(path: Path) -> BinaryIO:
    f = open(path, "rb")
    head = f.read(2)
    f.seek(0)
    if head == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f, mode="rb")  # type: ignore[return-value]
    return f


def _read_exact(stream: BinaryIO, n: int, path: Path, what: str) -> bytearray:
    """Read exactly n bytes in chunks, so memory follows what the file really holds; writable,
    so an array over them needs no copy of its own."""
    parts: list[bytes] = []
    got = 0
    while got < n:
        chunk = stream.read(min(_CHUNK, n - got))
        if not chunk:
            raise IDXFormatError(f"{path}: truncated {what}: expected {n} bytes, found {got}")
        parts.append(chunk)
        got += len(chunk)
    return bytearray().join(parts)


def read_idx(path: str | os.PathLike, max_bytes: int = MAX_IDX_BYTES) -> tuple[np.ndarray, str]:
    """Read an IDX file (raw or gzip) strictly; return the array and the MD5 of the raw bytes.

    Raises IDXFormatError naming the file and the problem for anything malformed.
    """
    path = Path(path)
    try:
        with _open_maybe_gzip(path) as stream:
            md5 = hashlib.md5()
            header = _read_exact(stream, 4, path, "header")
            if header[0] != 0 or header[1] != 0:
                raise IDXFormatError(f"{path}: not an IDX file (magic bytes {header[:2].hex()} "
                                     "!= 0000)")
            code, ndim = header[2], header[3]
            if code not in _IDX_DTYPES:
                raise IDXFormatError(f"{path}: unknown IDX dtype code 0x{code:02x}")
            if ndim == 0:
                raise IDXFormatError(f"{path}: IDX file with zero dimensions")
            dims_raw = _read_exact(stream, 4 * ndim, path, "dimensions")
            dims = tuple(int(d) for d in np.frombuffer(dims_raw, dtype=">u4"))
            dtype = np.dtype(_IDX_DTYPES[code])
            n_bytes = dtype.itemsize
            for d in dims:
                n_bytes *= d
            compressed = path.stat().st_size
            gzipped = isinstance(stream, gzip.GzipFile)
            held = compressed - 4 - 4 * ndim
            if not gzipped and n_bytes > held:  # a garbled header, or a cut-off download
                raise IDXFormatError(
                    f"{path}: corrupt or truncated: its header's dimensions {dims} need "
                    f"{n_bytes:,} bytes of data, the file holds {max(held, 0):,}")
            if n_bytes > max_bytes:
                raise IDXFormatError(
                    f"{path}: dimensions {dims} claim {n_bytes} bytes, over the {max_bytes}-byte "
                    "limit")
            if gzipped and n_bytes > GZIP_MAX_RATIO * compressed + (1 << 20):
                raise IDXFormatError(
                    f"{path}: a {compressed}-byte gzip file claiming {n_bytes} bytes of data "
                    f"(over {GZIP_MAX_RATIO}x): refused as a possible gzip bomb")
            payload = _read_exact(stream, n_bytes, path, "payload")
            if stream.read(1):  # (the header names too few values: a wrong header, most often)
                raise IDXFormatError(
                    f"{path}: corrupt header or trailing data: its header describes "
                    f"{ndim}-D {dtype.name} data of shape {dims} ({n_bytes:,} bytes), and the "
                    "file holds more than that")
            md5.update(header)
            md5.update(dims_raw)
            md5.update(payload)
    except IDXFormatError:
        raise
    except FileNotFoundError:
        raise IDXFormatError(f"{path}: file not found") from None
    except (OSError, EOFError, zlib.error, ValueError) as exc:  # corrupt gzip stream, CRC...
        raise IDXFormatError(f"{path}: unreadable ({exc})") from None
    array = np.frombuffer(payload, dtype=dtype).reshape(dims)  # (a copy only to swap bytes)
    return array.astype(dtype.newbyteorder("="), copy=False), md5.hexdigest()


def write_idx(path: str | os.PathLike, array: np.ndarray, compress: bool | None = None) -> None:
    """Write an IDX file (gzip when the name ends in .gz): used for exports and tests."""
    path = Path(path)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}
    arr = np.asarray(array)
    code = codes.get(arr.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"dtype {arr.dtype} has no IDX type code")
    data = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes()
    data += arr.astype(np.dtype(_IDX_DTYPES[code]), copy=False).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)


# ----------------------------------------------------------------------------- locating


def user_cache_dir() -> Path:
    """The per-user cache folder (XDG on Linux, the platform's equivalent elsewhere)."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "cae-explorer"


def system_data_dirs(name: str) -> list[Path]:
    """Folders where an operating system package may have put the dataset."""
    return [Path("/usr/share/datasets") / name, Path("/usr/local/share/datasets") / name]


def candidate_dirs(name: str, data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The folders searched for dataset ``name``, in priority order."""
    dirs: list[Path] = []
    if data_dir:
        dirs.append(Path(data_dir))
    if os.environ.get(ENV_VAR):
        env = Path(os.environ[ENV_VAR])
        dirs += [env / name, env]
    dirs.append(user_cache_dir() / name)
    dirs += system_data_dirs(name)
    return dirs


def _find_file(folder: Path, filename: str) -> Path | None:
    """A canonical file name, accepted gzipped or not."""
    stem = filename[:-3] if filename.endswith(".gz") else filename
    for candidate in (folder / filename, folder / stem, folder / (stem + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _folder_files(folder: Path, spec: DatasetSpec) -> dict[str, Path] | None:
    found = {role: _find_file(folder, res.filename) for role, res in spec.resources.items()}
    if all(found.values()):
        return found  # type: ignore[return-value]
    return None


def find_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder holding all four files of ``name``, or None."""
    spec = get_spec(name)
    for folder in candidate_dirs(name, data_dir):
        if folder.is_dir() and _folder_files(folder, spec):
            return folder
    return None


def named_dataset_in(folder: str | os.PathLike) -> str | None:
    """The named dataset whose four files ``folder`` holds (by their names: their checksums are
    checked when they load), or None."""
    return next((name for name, spec in DATASETS.items() if _folder_files(Path(folder), spec)),
                None)


def get_spec(name: str) -> DatasetSpec:
    """The spec of a named dataset, or a DataError listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}") from None


# ----------------------------------------------------------------------------- loading


def _check_pair(images: np.ndarray, labels: np.ndarray, split: str, folder: Path) -> None:
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{folder}: {split} images must be N x H x W and labels N "
                        f"(got {images.shape} and {labels.shape})")
    if images.dtype != np.uint8:
        raise DataError(f"{folder}: {split} images must be unsigned bytes, got {images.dtype}")
    if len(images) != len(labels):
        raise DataError(f"{folder}: {len(images)} {split} images but {len(labels)} labels")
    if len(images) == 0:
        raise DataError(f"{folder}: the {split} split is empty")


def _folder_name(folder: Path) -> str:
    """An unverified folder's dataset name: never a named dataset's (a folder called "mnist"
    holding other data would get MNIST's class names, bundled model and remembered folder)."""
    return folder.name if folder.name.lower() not in DATASETS else f"{folder.name} (unverified)"


def load_folder(folder: str | os.PathLike, spec: DatasetSpec | None = None,
                verify: bool = True, progress: ProgressFn | None = None,
                cancel: CancelToken | None = None) -> Dataset:
    """Load the four IDX files in ``folder``; with a spec and ``verify``, check their MD5s.

    Without a spec the folder may hold any IDX data with MNIST's file naming (``train-images*``,
    ``train-labels*``, ``t10k-images*``, ``t10k-labels*``), or, where it has none, pictures in
    one subfolder per class (:mod:`cae.pictures`; ``progress`` and ``cancel`` follow their
    reading).
    """
    folder = Path(folder)
    if spec is not None:
        files = _folder_files(folder, spec)
    else:
        files = {}
        prefixes = ("train-images", "train-labels", "t10k-images", "t10k-labels")
        for role, prefix in zip(ROLES, prefixes):
            matches = (sorted(p for p in folder.glob(prefix + "*") if p.is_file())
                       if folder.is_dir() else [])
            if matches:
                files[role] = matches[0]
        if len(files) != 4:
            files = None
    if not files:
        if not folder.exists():
            raise DataError(f"{folder}: no such folder")
        if not folder.is_dir():
            raise DataError(f"{folder}: not a folder (name the folder that holds the IDX files)")
        if spec is None and is_picture_folder(folder):
            return load_picture_folder(folder, _folder_name(folder), progress=progress,
                                       cancel=cancel, cache=user_cache_dir() / "pictures")
        pictures = any(p.suffix.lower() in PICTURE_SUFFIXES for p in folder.rglob("*"))
        hint = ""
        if pictures:  # (a class's own folder, chosen for the dataset's: its parent is the one)
            hint = (f"; it looks like one class of the dataset in {folder.parent}: choose that "
                    "folder" if one_class_of(folder) else
                    "; its pictures are in no subfolder (put each class's in its own: 0/, 1/, …)")
        raise DataError(f"{folder}: needs train-images, train-labels, t10k-images and t10k-labels "
                        "IDX files (optionally .gz), or pictures in one subfolder per class" + hint)
    arrays = {}
    for role, path in files.items():
        arrays[role], md5 = read_idx(path)
        if spec is not None and verify and md5 != spec.resources[role].md5:
            raise DataError(f"{path}: checksum mismatch (MD5 of content {md5}, expected "
                            f"{spec.resources[role].md5}); the file is corrupt or not {spec.name}")
    _check_pair(arrays["train_images"], arrays["train_labels"], "train", folder)
    _check_pair(arrays["test_images"], arrays["test_labels"], "test", folder)
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise DataError(f"{folder}: train and test images differ in size")
    labels = np.concatenate([arrays["train_labels"], arrays["test_labels"]]).astype(np.int64)
    if labels.min() < 0:
        raise DataError(f"{folder}: negative labels")
    names = spec.class_names if spec else tuple(str(i) for i in range(int(labels.max()) + 1))
    if labels.max() >= len(names):
        raise DataError(f"{folder}: label {labels.max()} out of range for {len(names)} classes")
    # One array, train then test: the map's view of all the images is then no second copy of
    # them (a 310,000-image folder's took 243 MB more).
    n = len(arrays["train_images"])
    both = np.concatenate([arrays.pop("train_images"), arrays.pop("test_images")])
    name = spec.name if spec else _folder_name(folder)
    return Dataset(
        name=name,
        train_images=both[:n],
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=both[n:],
        test_labels=arrays["test_labels"].astype(np.int64),
        class_names=names,
        source=str(folder),
    )


def load_dataset(name: str = "mnist", data_dir: str | os.PathLike | None = None,
                 download: bool = False, progress: ProgressFn | None = None,
                 cancel: CancelToken | None = None) -> Dataset:
    """Find (or, with ``download``, fetch) and load a named dataset, verified.

    ``name="folder"`` loads any IDX (or picture) folder given as ``data_dir`` without
    checksums; ``"auto"`` recognises a named dataset in ``data_dir`` by its checksums and falls
    back to ``"folder"``.  ``progress`` follows a download or a picture folder's reading.
    """
    if name in ("folder", "auto"):
        if not data_dir:
            raise DataError(f"the '{name}' dataset needs a folder (--data DIR)")
        if name == "auto":
            for spec in DATASETS.values():
                if _folder_files(Path(data_dir), spec):
                    try:
                        return load_folder(data_dir, spec)
                    except DataError:
                        continue
        return load_folder(data_dir, progress=progress, cancel=cancel)
    spec = get_spec(name)
    folder = find_dataset(name, data_dir)
    if folder is None:
        if not download:
            raise DataError(not_found_message(name, data_dir))
        folder = download_dataset(name, progress=progress, cancel=cancel)
    return load_folder(folder, spec)


def progress_text(name: str, done: int, total: int | None) -> str:
    """A loading report in words: a download's megabytes, or how many pictures are read."""
    if name == PICTURES:
        return f"reading pictures: {done:,} of {total or done:,}"
    return f"downloading {name} {done / 1e6:.1f} MB"


def mismatch_note(trained_on: str | None, dataset: Dataset) -> str | None:
    """"note: the model was trained on mnist, these are fashion-mnist images" where a model of a
    named dataset meets other data (the commands' figures then describe a mismatch)."""
    if trained_on not in DATASETS or dataset.name == trained_on:
        return None
    return f"note: the model was trained on {trained_on}, these are {dataset.name} {dataset.noun}"


def not_found_message(name: str, data_dir: str | os.PathLike | None = None,
                      spec: DatasetSpec | None = None) -> str:
    """Says where the dataset was looked for and how to provide it."""
    spec = spec or get_spec(name)
    tried = "\n".join(f"  - {d}" for d in candidate_dirs(name, data_dir))
    files = ", ".join(r.filename for r in spec.resources.values())
    return (f"{name} was not found. Looked in:\n{tried}\n"
            f"Provide the four IDX files ({files}; gzipped or not) in one of these folders, "
            f"point --data or ${ENV_VAR} at them, or run `cae download --dataset {name}`.")


# ----------------------------------------------------------------------------- download


def _fetch(url: str, dest: BinaryIO, timeout: float, progress: ProgressFn | None,
           cancel: CancelToken | None, label: str) -> None:
    req = urllib.request.Request(url, headers={"User-Agent": "cae-explorer"})
    with urllib.request.urlopen(req, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        done = 0
        while True:
            if cancel is not None and cancel.cancelled:
                raise DownloadError("download cancelled")
            chunk = response.read1(64 * 1024)  # what has arrived: a cancel is seen at once
            if not chunk:
                break
            dest.write(chunk)
            done += len(chunk)
            if progress is not None:
                progress(label, done, total)
        if total is not None and done != total:
            # The caller prefixes the URL.
            raise DownloadError(f"connection closed after {done} of {total} bytes")


def download_file(resource: Resource, folder: Path, mirrors: tuple[str, ...], timeout: float = 30.0,
                  progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> Path:
    """Download one file, trying each mirror; it reaches ``folder`` only once verified."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / resource.filename
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + resource.filename
        fd, tmp_name = tempfile.mkstemp(prefix=".part-", dir=folder)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                _fetch(url, out, timeout, progress, cancel, resource.filename)
            _, md5 = read_idx(tmp)
            if md5 != resource.md5:
                raise DataError(f"checksum mismatch (got {md5}, expected {resource.md5})")
            os.replace(tmp, target)
            return target
        except DownloadError as exc:
            if cancel is not None and cancel.cancelled:
                raise
            errors.append(f"{url}: {exc}")
        except urllib.error.HTTPError as exc:
            errors.append(f"{url}: HTTP {exc.code} {exc.reason}")
        except (urllib.error.URLError, OSError, DataError) as exc:  # refused, timeouts, bad data
            errors.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
        finally:
            tmp.unlink(missing_ok=True)
    raise DownloadError(f"could not download {resource.filename}:\n  " + "\n  ".join(errors))


def download_dataset(name: str = "mnist", folder: str | os.PathLike | None = None,
                     mirrors: tuple[str, ...] | None = None, timeout: float = 30.0,
                     progress: ProgressFn | None = None, cancel: CancelToken | None = None,
                     spec: DatasetSpec | None = None) -> Path:
    """Download every missing or invalid file of a dataset into ``folder`` (the user cache)."""
    spec = spec or get_spec(name)
    folder = Path(folder) if folder else user_cache_dir() / spec.name
    for resource in spec.resources.values():
        existing = _find_file(folder, resource.filename)
        if existing is not None:
            try:
                if read_idx(existing)[1] == resource.md5:
                    continue
            except DataError:
                pass
        try:
            download_file(resource, folder, mirrors or spec.mirrors, timeout, progress, cancel)
        except DownloadError as exc:
            if cancel is not None and cancel.cancelled:
                raise DownloadError("download cancelled") from None
            files = ", ".join(r.filename for r in spec.resources.values())
            raise DownloadError(  # (not "run cae download": that is what just failed)
                f"{exc}\nWithout a connection: copy the four IDX files ({files}; gzipped or "
                f"not) into {folder}, or point --data (the window: Data ▸ Choose data "
                f"folder…) or ${ENV_VAR} at a folder that has them.") from None
    return folder


def images_to_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) -> float32 (N, 1, H, W) in [0, 1], the model's input format."""
    return (np.asarray(images, dtype=np.float32) / 255.0)[:, None]


__all__ = [
    "DATASETS", "Dataset", "DatasetSpec", "Resource", "CancelToken", "read_idx", "write_idx",
    "load_dataset", "load_folder", "find_dataset", "download_dataset", "download_file",
    "user_cache_dir", "candidate_dirs", "not_found_message", "images_to_float", "ENV_VAR",
    "get_spec",
]
