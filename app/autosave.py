"""The autosave of a training run: written after every epoch (and when a stopped run is kept),
offered back at the next start if the app was killed or crashed before the user saved or
discarded the model.

Each running instance writes its own file, ``autosave-<pid>.safetensors``, and holds a lock
file, ``instance-<pid>.lock``, while it runs.  At start an instance offers only the autosaves
of instances that are gone (their lock is stale): with one shared file, a second window's
Discard or Save had deleted the first one's autosave, and its new run overwrote it."""
from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import numpy as np
from PySide6.QtCore import QLockFile

from cae.checkpoint import save_checkpoint
from cae.model import CAE

LEGACY = "autosave.safetensors"  # the one shared file of earlier versions: always an orphan
_locks: dict[Path, QLockFile] = {}  # this instance's claim, per data folder (tests change it)
_generation = 0  # advanced by clear(): a write submitted before it is thrown away
_guard = threading.Lock()


def data_dir() -> Path:
    """The user's data folder for the app ($XDG_DATA_HOME/cae-explorer or ~/.local/share/...)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "cae-explorer"


def path() -> Path:
    """This instance's autosave."""
    return data_dir() / f"autosave-{os.getpid()}.safetensors"


def _lock_path(pid: int | str) -> Path:
    return data_dir() / f"instance-{pid}.lock"


def claim() -> None:
    """Hold this instance's lock for as long as it runs, so no other instance offers its
    autosave as left behind.  (A folder that cannot be written: no autosave either.)"""
    folder = data_dir()
    if folder in _locks:
        return
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
    lock = QLockFile(str(_lock_path(os.getpid())))
    lock.setStaleLockTime(0)  # held for the whole run: stale only when its process is gone
    if lock.tryLock(0):
        _locks[folder] = lock


def _gone(pid: str) -> bool:
    """Whether the instance with this process id no longer runs (its stale lock is removed)."""
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    lock = QLockFile(str(_lock_path(pid)))
    lock.setStaleLockTime(0)
    if not lock.tryLock(0):  # it still runs
        return False
    lock.unlock()  # (and the lock file goes)
    return True


def _orphaned(file: Path) -> bool:
    """Whether ``file`` was left by an instance that is no longer running."""
    return file.name == LEGACY or _gone(file.stem.removeprefix("autosave-"))


def pending() -> Path | None:
    """The newest autosave left by an instance that was closed before its model was saved or
    discarded (killed, crashed), if any.  Stale locks of instances gone without one are swept
    (an instance that ends at once, or is killed, leaves its lock file behind)."""
    claim()
    try:
        found = [p for p in data_dir().glob("autosave*.safetensors") if _orphaned(p)]
        for lock in data_dir().glob("instance-*.lock"):
            _gone(lock.stem.removeprefix("instance-"))
        return max(found, key=lambda p: p.stat().st_mtime, default=None)
    except OSError:
        return None


def adopt(found: Path) -> None:
    """The user opened ``found``: from now on it is this instance's autosave (cleared by this
    instance's Save or Discard, and by no other's)."""
    with contextlib.suppress(OSError):
        os.replace(found, path())


def generation() -> int:
    """The token a write submitted now carries (see :func:`save_task`)."""
    return _generation


def save_task(cancel, report, model: CAE, metadata: dict, extras: dict[str, np.ndarray],
              token: int) -> Path:
    """Write the autosave atomically (a task for :class:`app.tasks.TaskRunner`); a write that
    finishes after :func:`clear` (the model was saved or discarded meanwhile) removes itself,
    or the next start would offer a model the user had already dealt with."""
    claim()
    data_dir().mkdir(parents=True, exist_ok=True)
    saved = save_checkpoint(path(), model, {**metadata, "autosave": True}, extras)
    with _guard:
        if token != _generation:
            saved.unlink(missing_ok=True)
    return saved


def clear() -> None:
    """Forget this instance's autosave: the model was saved, or the user chose to discard it."""
    global _generation
    with _guard:
        _generation += 1
        with contextlib.suppress(OSError):
            path().unlink(missing_ok=True)


def discard(found: Path) -> None:
    """Delete an autosave left behind, which the user chose not to recover."""
    with contextlib.suppress(OSError):
        found.unlink(missing_ok=True)
