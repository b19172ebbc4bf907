"""Saving latent codes with their labels, for the CLI and the app's export."""
from __future__ import annotations

import contextlib
import csv
from collections.abc import Sequence

from pathlib import Path

import numpy as np

from .errors import CAEError

CODE_FORMATS = (".csv", ".npz", ".npy")


SPLITS = ("train", "test")


def split_rows(n_train: int, n_test: int) -> np.ndarray:
    """``split`` for :func:`write_codes` of the training images followed by the test ones."""
    return np.repeat(np.array(SPLITS), [n_train, n_test])


def write_codes(path: str | Path, codes: np.ndarray, labels: np.ndarray,
                split: np.ndarray | None = None, files: Sequence[str] = ()) -> Path:
    """Write to .csv (columns z1, z2, label), .npz (arrays ``codes``, ``labels``) or .npy (N x 3).

    ``split`` ("train" or "test" per row) says which set each row's image is from: a ``split``
    column in CSV, a ``split`` array in .npz, and a fourth .npy column, 1 for test (a file of
    both sets is otherwise one list of codes whose rows no longer say where they came from).
    ``files`` (a folder of pictures: each row's picture) is a ``file`` column in CSV and a
    ``files`` array in .npz, so an odd point can be traced to its picture; .npy holds numbers
    only.
    The file is written beside the target and renamed into place, so a failed write never
    leaves a half-written file under the requested name.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CODE_FORMATS:
        raise CAEError(f"{path}: unknown format; use one of {', '.join(CODE_FORMATS)}")
    if split is not None:
        split = np.asarray(split, dtype=str)
        if split.shape != (len(codes),) or not np.isin(split, SPLITS).all():
            raise ValueError(f"split must give 'train' or 'test' for each of the {len(codes)} rows")
    if len(files) not in (0, len(codes)):
        raise ValueError(f"files must name one picture for each of the {len(codes)} rows")
    tmp = path.with_name(f".{path.name}.tmp{suffix}")
    try:
        if suffix == ".csv":
            d = codes.shape[1]
            names = [f"z{i + 1}" for i in range(d)] + ["label"]
            columns = [[f"{v:.9g}" for v in column] for column in np.asarray(codes, np.float64).T]
            columns.append([str(v) for v in np.asarray(labels).astype(np.int64)])
            if split is not None:
                names.append("split")
                columns.append(list(split))
            if len(files):
                names.append("file")
                columns.append(list(files))
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                out = csv.writer(f, lineterminator="\n")  # (quotes a name with a comma)
                out.writerow(names)
                out.writerows(zip(*columns))
        elif suffix == ".npz":
            arrays = {"codes": codes, "labels": labels}
            if split is not None:
                arrays["split"] = split
            if len(files):
                arrays["files"] = np.asarray(files, dtype=str)
            np.savez(tmp, **arrays)
        else:
            columns = [codes, labels] + ([split == "test"] if split is not None else [])
            np.save(tmp, np.column_stack(columns).astype(np.float32))
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):  # (a read-only folder refuses even this: EROFS)
            tmp.unlink(missing_ok=True)
        raise CAEError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
