"""Drag and drop onto the window, as a desktop user expects of it: a model file opens, a
dataset's folder loads, a picture goes to the Draw pad.  Anything else is refused as it is
dragged over (the cursor says so), not after it is dropped."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QEvent, QMimeData, QObject, QTimer
from PySide6.QtWidgets import QWidget

from cae.checkpoint import SUFFIX
from cae.pictures import PICTURE_SUFFIXES

from .session import Session


def dropped_kind(path: Path) -> str | None:
    """"model", "data" (a folder) or "picture" for what a drop of ``path`` would open."""
    if path.is_dir():
        return "data"
    suffix = path.suffix.lower()
    return "model" if suffix == SUFFIX else "picture" if suffix in PICTURE_SUFFIXES else None


def _local_paths(mime: QMimeData) -> list[Path]:
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()]


class DropController(QObject):
    """Watches ``window`` for drops; ``openers`` map a kind to what opens it (the files
    controller's, the Draw panel's), each returning whether it did."""

    def __init__(self, session: Session, window: QWidget,
                 openers: dict[str, Callable[[str], object]]) -> None:
        super().__init__(window)
        self.session, self.openers = session, openers
        window.setAcceptDrops(True)
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        kind = event.type()
        if kind in (QEvent.Type.DragEnter, QEvent.Type.DragMove):
            paths = _local_paths(event.mimeData())
            if paths and dropped_kind(paths[0]) is not None:
                event.acceptProposedAction()
            else:
                event.ignore()
            return True
        if kind == QEvent.Type.Drop:
            paths = _local_paths(event.mimeData())
            if not paths or dropped_kind(paths[0]) is None:
                event.ignore()
                return True
            # A model or a folder cannot replace what a run trains: the drop is refused (the
            # program it came from is told so), and the opening says why.
            if self.session.training.running and dropped_kind(paths[0]) != "picture":
                event.ignore()
            else:
                event.acceptProposedAction()
            # Opened once the drop has returned: a question (save the model first?) asked
            # inside it would hold the program the file came from until it is answered.
            QTimer.singleShot(0, lambda: self.open(paths))
            return True
        return False

    def open(self, paths: list[Path]) -> bool:
        """Open the first of ``paths`` as what it is; the others are said to be left."""
        path = paths[0]
        kind = dropped_kind(path)
        if kind is None:
            self.session.error.emit("Cannot open", f"{path}: drop a model ({SUFFIX}), a "
                                    "dataset's folder or a picture")
            return False
        opened = bool(self.openers[kind](str(path)))
        if opened and len(paths) > 1:
            self.session.status.emit(f"opened {path.name}, the first of the {len(paths)} "
                                     "dropped (one at a time)", 8000)
        return opened
