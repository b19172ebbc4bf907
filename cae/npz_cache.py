"""A cache folder of ``.npz`` files: written whole or not at all, and kept to its newest few.

Both caches (the codes of a dataset under a model, :mod:`cae.code_cache`; the images read from
a folder of pictures, :mod:`cae.pictures`) are optimisations: a file that cannot be written
costs only the next start its work, never an error for the caller.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def write(path: Path, keep: int, **arrays: np.ndarray) -> bool:
    """Save ``arrays`` to ``path`` through a temporary file renamed into place (a crash never
    leaves half a file under the name), then delete all but the ``keep`` newest files of its
    folder.  False where the folder cannot be written."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        prune(path.parent, keep)
    except OSError:
        return False
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return True


def prune(folder: Path, keep: int) -> None:
    """Delete all but the ``keep`` most recently written (or used: :func:`touch`) files of
    ``folder`` (another process may be pruning too: a file already gone is fine)."""
    dated = []
    for p in folder.glob("*.npz"):
        try:
            dated.append((p.stat().st_mtime_ns, p))
        except FileNotFoundError:
            continue
    for _, old in sorted(dated, reverse=True)[keep:]:
        old.unlink(missing_ok=True)


def touch(path: Path) -> None:
    """Mark a cached file as used now, so pruning takes the files unused longest first."""
    try:
        os.utime(path)
    except OSError:
        pass
