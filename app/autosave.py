"""The autosave of a training run: written after every epoch, offered back at the next start if
the app was killed or crashed before the user saved or discarded the model."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cae.checkpoint import save_checkpoint
from cae.model import CAE

FILENAME = "autosave.safetensors"


def data_dir() -> Path:
    """The user's data folder for the app ($XDG_DATA_HOME/cae-explorer or ~/.local/share/...)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "cae-explorer"


def path() -> Path:
    return data_dir() / FILENAME


def save_task(cancel, report, model: CAE, metadata: dict, extras: dict[str, np.ndarray]) -> Path:
    """Write the autosave atomically (a task for :class:`app.tasks.TaskRunner`)."""
    data_dir().mkdir(parents=True, exist_ok=True)
    return save_checkpoint(path(), model, {**metadata, "autosave": True}, extras)


def pending() -> Path | None:
    """The autosave left by a run that was never saved or discarded, if any."""
    p = path()
    return p if p.is_file() else None


def clear() -> None:
    """Forget the autosave: the model was saved, or the user chose to discard it."""
    path().unlink(missing_ok=True)
