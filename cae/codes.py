"""Saving latent codes with their labels, for the CLI and the app's export."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import CAEError

CODE_FORMATS = (".csv", ".npz", ".npy")


def write_codes(path: str | Path, codes: np.ndarray, labels: np.ndarray) -> Path:
    """Write to .csv (columns z1, z2, label), .npz (arrays ``codes``, ``labels``) or .npy (N x 3).

    The file is written beside the target and renamed into place, so a failed write never
    leaves a half-written file under the requested name.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in CODE_FORMATS:
        raise CAEError(f"{path}: unknown format; use one of {', '.join(CODE_FORMATS)}")
    tmp = path.with_name(f".{path.name}.tmp{suffix}")
    try:
        if suffix == ".csv":
            header = ",".join([f"z{i + 1}" for i in range(codes.shape[1])] + ["label"])
            np.savetxt(tmp, np.column_stack([codes, labels]).astype(np.float64), delimiter=",",
                       header=header, comments="", fmt=["%.6f"] * codes.shape[1] + ["%d"])
        elif suffix == ".npz":
            np.savez(tmp, codes=codes, labels=labels)
        else:
            np.save(tmp, np.column_stack([codes, labels]).astype(np.float32))
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise CAEError(f"could not write {path}: {exc.strerror or exc}") from None
    return path
