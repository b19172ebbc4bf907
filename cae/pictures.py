"""Datasets from folders of pictures (PNG, JPEG, ...), one subfolder per class as torchvision's
ImageFolder reads them, optionally split by ``train/`` and ``test/`` subfolders.

Each picture becomes a FIELD x FIELD grey image, the only size the lecture's architecture takes:
greyed (transparency as an opened drawing reads it), squared with its own background, and area-
scaled.  Light ink on a dark ground, as MNIST's, is what the model learns: a folder whose
pictures are mostly dark on light is inverted as a whole (each picture deciding for itself would
mix both in one dataset).  Without ``train/`` and ``test/`` a seventh of each class (MNIST's
10,000 of 70,000) is kept for testing, the same pictures every time.  Unreadable pictures are
left out, and said in the dataset's ``notes`` as a class that one split lacks is.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from . import npz_cache
from .errors import DataError
from .preprocess import FIELD, grey_levels, resize_area

if TYPE_CHECKING:
    from .data import CancelToken, Dataset

PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
TEST_SHARE = 1 / 7
MAX_PICTURES = 2_000_000  # 1.5 GB of 28 x 28 images: more is not a folder this app can show
MAX_PIXELS = 50_000_000  # a picture larger than this is refused unread (a decompression bomb)
PICTURES = "pictures"  # the progress reports' name for this work: (PICTURES, done, total)
FORMAT = "cae-pictures-2"  # bump when the meaning of a cached folder changes
KEEP = 8  # folders cached (those opened least lately go first); 55 MB for 70,000 pictures

Progress = Callable[[str, int, "int | None"], None] | None


def _pictures_in(folder: Path) -> list[Path]:
    """The pictures anywhere under ``folder``, in name order (hidden files and folders aside)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(root, f) for f in sorted(files)
                  if not f.startswith(".") and Path(f).suffix.lower() in PICTURE_SUFFIXES]
    return found


def _classes(folder: Path) -> dict[str, list[Path]]:
    """Class name -> its pictures: the subfolders that hold any, in name order."""
    if not folder.is_dir():
        return {}
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    return {p.name: pictures for p in subfolders if (pictures := _pictures_in(p))}


def one_class_of(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` looks like one class's folder of a picture dataset: its parent holds
    other folders of pictures too.  (Only their own files are looked at: the parent may be a
    home folder.)"""
    def has_pictures(path: str) -> bool:
        with contextlib.suppress(OSError), os.scandir(path) as entries:
            return any(e.is_file() and Path(e.name).suffix.lower() in PICTURE_SUFFIXES
                       for e in entries)
        return False
    parent = Path(folder).parent
    with contextlib.suppress(OSError), os.scandir(parent) as entries:
        return sum(1 for e in entries if e.is_dir() and not e.name.startswith(".")
                   and has_pictures(e.path)) > 1
    return False


def _split_folders(folder: Path) -> tuple[Path, Path] | None:
    """The ``train`` and ``test`` subfolders (any case), where both exist."""
    named = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
    if "train" in named and "test" in named:
        return named["train"], named["test"]
    return None


def is_picture_folder(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a picture dataset this module reads: a subfolder (of
    ``train/``, where there is one) with a picture anywhere in it.  It stops at the first
    picture: the load lists them all (a second full listing of 60,000 files took 0.6 s)."""
    folder = Path(folder)
    if not folder.is_dir():
        return False
    split = _split_folders(folder)
    top = split[0] if split else folder
    for sub in top.iterdir():
        if sub.is_dir() and not sub.name.startswith("."):
            for _root, dirs, files in os.walk(sub):
                dirs[:] = [d for d in dirs if not d.startswith(".")]
                if any(not f.startswith(".") and Path(f).suffix.lower() in PICTURE_SUFFIXES
                       for f in files):
                    return True
    return False


def _layout(folder: Path) -> tuple[tuple[str, ...], list[tuple[Path, int]], list[tuple[Path, int]]]:
    """Class names, and the (picture, label) pairs of the train and test splits."""
    split = _split_folders(folder)
    if split is not None:
        train, test = _classes(split[0]), _classes(split[1])
        names = tuple(sorted(set(train) | set(test)))
        index = {name: i for i, name in enumerate(names)}
        return names, [(p, index[c]) for c, ps in train.items() for p in ps], \
            [(p, index[c]) for c, ps in test.items() for p in ps]
    classes = _classes(folder)
    names = tuple(classes)
    rng = np.random.default_rng(0)  # the same split every time the folder is read
    train_pairs, test_pairs = [], []
    for label, pictures in enumerate(classes.values()):
        order = rng.permutation(len(pictures))
        n_test = round(len(pictures) * TEST_SHARE)
        test_pairs += [(pictures[i], label) for i in sorted(order[:n_test])]
        train_pairs += [(pictures[i], label) for i in sorted(order[n_test:])]
    return names, train_pairs, test_pairs


def read_picture(path: Path, field: int = FIELD) -> tuple[np.ndarray, float]:
    """One picture as a (field, field) grey image in [0, 1], squared with its background, and
    that background's grey (the median of its border).  Raises OSError or ValueError for a
    file that is no readable picture."""
    if not stat.S_ISREG(os.stat(path).st_mode):  # (a named pipe would wait for a writer forever)
        raise ValueError("not a regular file")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(path)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise ValueError(f"too large (over {MAX_PIXELS:,} pixels)") from None
        with im:
            if im.width * im.height > MAX_PIXELS:
                raise ValueError(f"{im.width:,} x {im.height:,} pixels is too large")
            im.draft("RGB", (4 * field, 4 * field))  # a JPEG decodes at a reduced scale
            im = ImageOps.exif_transpose(im)
            deep = im.mode in ("I", "F") or im.mode.startswith("I;16")  # more than 8 bits
            im = im.convert("F" if deep else "RGBA")
    factor = min(im.size) // (4 * field)
    if factor > 1:  # a photo: box-reduced first (the area filter below would do the same)
        im = im.reduce(factor)
    if deep:  # 16-bit greys (scans, microscopy) or floats; 8-bit converting had clipped them
        values = np.asarray(im, np.float64)
        top = max(float(values.max(initial=0.0)), 1e-12)
        grey = np.clip(values / (1.0 if top <= 1.0 else 255.0 if top <= 255.0 else 65535.0),
                       0.0, 1.0)
    else:
        grey = grey_levels(np.asarray(im, np.float64) / 255.0)
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    h, w = grey.shape
    side = max(h, w)
    square = np.full((side, side), background)
    square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = grey
    if side != field:
        square = np.clip(resize_area(square, field, field), 0.0, 1.0)
    return square, background


def _key(folder: Path, names: tuple[str, ...], pairs: list[tuple[Path, int]], n_train: int,
         field: int) -> str:
    """SHA-256 over what the dataset is made of: each picture's place, class, size and time of
    change, the classes and the split.  A picture changed, added or removed changes it."""
    h = hashlib.sha256(f"{FORMAT}|{field}|{n_train}|{names}\n".encode())
    for path, label in pairs:
        try:
            st = path.stat()
            changed = f"{st.st_size}|{st.st_mtime_ns}"
        except OSError:  # (a dangling link: read, and left out, as any unreadable picture)
            changed = "?"
        h.update(f"{path.relative_to(folder)}|{label}|{changed}\n".encode())
    return h.hexdigest()


def _cache_file(cache: Path, folder: Path) -> Path:
    """One file per folder: a folder that changes replaces its entry, none pile up."""
    return cache / f"{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:32]}.npz"


def _read_cache(path: Path, key: str, total: int, field: int) -> tuple | None:
    """(images, kept, the first picture left out and why) cached under ``key``, or None: a
    file of another key, or damaged, or of the wrong shape is not used.  Plain arrays, read
    without pickles: nothing runs."""
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["key"]) != key:
                return None
            images, kept, first = f["images"], f["kept"], str(f["first_failure"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None
    if (images.dtype != np.uint8 or images.shape != (total, field, field)
            or kept.dtype != bool or kept.shape != (total,)):
        return None
    return images, kept, first


def _read_all(folder: Path, pairs: list[tuple[Path, int]], field: int, progress: Progress,
              cancel: CancelToken | None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Every picture as a uint8 image, light ink on dark, whether it could be read, and why
    those that could not."""
    total = len(pairs)
    images = np.zeros((total, field, field), np.uint8)
    backgrounds = np.zeros(total)
    kept = np.ones(total, bool)
    failed: list[str] = []
    step = max(1, total // 200)
    for i, (path, _) in enumerate(pairs):
        if cancel is not None and cancel.cancelled:
            raise DataError(f"{folder}: reading the pictures was cancelled")
        try:
            image, backgrounds[i] = read_picture(path, field)
            images[i] = np.rint(image * 255)
        except (OSError, ValueError) as exc:
            kept[i] = False
            why = ("not a picture this app can read" if isinstance(exc, UnidentifiedImageError)
                   else exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))
            failed.append(f"{path.relative_to(folder)}: {why}")
        if progress is not None and (i % step == 0 or i + 1 == total):
            progress(PICTURES, i + 1, total)
    if kept.any() and np.median(backgrounds[kept]) > 0.5:  # mostly dark on light
        np.subtract(255, images, out=images)
    return images, kept, failed


def load_picture_folder(folder: str | os.PathLike, name: str, field: int = FIELD,
                        progress: Progress = None, cancel: CancelToken | None = None,
                        cache: Path | None = None) -> Dataset:
    """The picture dataset in ``folder`` (see the module's text), called ``name``.
    ``progress(PICTURES, done, total)`` follows the reading; ``cancel`` stops it (raising
    :class:`cae.errors.DataError`).  With a ``cache`` folder, the images read are kept there
    under a key of the folder's files, and a second load of an unchanged folder reads them
    from it (70,000 pictures here: 1.3 s, not 12-27 s)."""
    from .data import Dataset  # (cae.data reads a picture folder through this module)
    folder = Path(folder)
    names, train_pairs, test_pairs = _layout(folder)
    pairs, n = train_pairs + test_pairs, len(train_pairs)
    if not names:
        raise DataError(f"{folder}: no subfolder of pictures (one subfolder per class, as "
                        "digits/0/*.png, digits/1/*.png, …)")
    if len(pairs) > MAX_PICTURES:
        raise DataError(f"{folder}: {len(pairs):,} pictures, more than the {MAX_PICTURES:,} "
                        "this app reads")
    key = _key(folder, names, pairs, n, field)
    where = _cache_file(cache, folder) if cache is not None else None
    cached = _read_cache(where, key, len(pairs), field) if where is not None else None
    if cached is not None:
        images, kept, first_failure = cached
        npz_cache.touch(where)  # (the folders opened least lately are pruned first)
    else:
        images, kept, failed = _read_all(folder, pairs, field, progress, cancel)
        for split, count, some in (("train", kept[:n].sum(), n), ("test", kept[n:].sum(),
                                                                    len(test_pairs))):
            if count == 0:
                why = f" (none could be read; the first: {failed[0]})" if some and failed else (
                    " (each class needs at least 4 pictures for a seventh of it to be kept for "
                    "testing)" if split == "test" and _split_folders(folder) is None else "")
                raise DataError(f"{folder}: no {split} pictures{why}")
        first_failure = failed[0] if failed else ""
        if where is not None:  # (what is said of them is worded here, not cached)
            npz_cache.write(where, KEEP, key=np.array(key), images=images, kept=kept,
                            first_failure=np.array(first_failure))
    left_out = int((~kept).sum())
    note = (f"{left_out:,} of {len(pairs):,} pictures could not be read: left out (the first: "
            f"{first_failure})") if left_out else ""
    labels = np.array([label for _, label in pairs], np.int64)
    files = tuple(str(path.relative_to(folder)) for (path, _), k in zip(pairs, kept) if k)
    both = images[kept]  # one array, train then test, as cae.data.load_folder keeps them
    n_train = int(kept[:n].sum())
    train_labels, test_labels = labels[:n][kept[:n]], labels[n:][kept[n:]]
    return Dataset(name=name, train_images=both[:n_train], train_labels=train_labels,
                   test_images=both[n_train:], test_labels=test_labels, class_names=names,
                   source=str(folder), files=files,
                   notes=((note,) if note else ()) + _missing(names, train_labels, test_labels))


def _missing(names: tuple[str, ...], train: np.ndarray, test: np.ndarray) -> tuple[str, ...]:
    """Classes one split has none of: a class never trained on is voted wrong every time (its
    5-NN accuracy fell with nothing saying why), and one never tested is not measured."""
    notes = []
    for count, what in ((np.bincount(train, minlength=len(names)),
                         "no training pictures of {} (their test pictures cannot be voted "
                         "right)"),
                        (np.bincount(test, minlength=len(names)), "no test pictures of {}")):
        empty = [names[c] for c in np.flatnonzero(count == 0)]
        if empty:
            shown = ", ".join(empty[:5]) + (f" and {len(empty) - 5} more" if len(empty) > 5 else "")
            notes.append(what.format(shown))
    return tuple(notes)
