"""Finding, loading and downloading datasets in the background, with progress and cancel."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from cae.data import (CancelToken, DataError, Dataset, download_dataset, get_spec, load_dataset,
                      load_folder, progress_text)

from .tasks import Task, TaskRunner


def _load(cancel: CancelToken, report, name: str, folder: str | None, download: bool) -> Dataset:
    def progress(file: str, done: int, total: int | None) -> None:
        report((progress_text(file, done, total), done / total if total else 0.0))

    if download:
        try:  # already on this computer (a system package, the cache): nothing to download
            return load_dataset(name, folder)
        except DataError:  # not there, or a damaged copy: the download goes into the cache
            return load_folder(download_dataset(name, progress=progress, cancel=cancel),
                               get_spec(name))
    return load_dataset(name, folder, progress=progress, cancel=cancel)


class DataService(QObject):
    """Loads one dataset at a time; a new request cancels the previous one."""

    loaded = Signal(object)  # Dataset
    failed = Signal(str)
    progress = Signal(str, float)  # what is being done, in words; the share done (0: unknown)
    busyChanged = Signal(bool)

    def __init__(self, runner: TaskRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self._task: Task | None = None

    @property
    def busy(self) -> bool:
        return self._task is not None

    def load(self, name: str = "mnist", folder: str | Path | None = None, download: bool = False) -> None:
        """Look for (or download) ``name``; with name 'folder', load any IDX or picture
        folder."""
        self.cancel()
        self._task = self.runner.submit(_load, name, str(folder) if folder else None, download,
                                        on_done=self._on_done, on_failed=self._on_failed,
                                        on_progress=self._on_progress)
        self.busyChanged.emit(True)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None
            self.busyChanged.emit(False)

    def _current(self) -> bool:
        return self.sender() is self._task

    @Slot(object)
    def _on_done(self, dataset: Dataset) -> None:
        if not self._current():
            return
        self._task = None
        self.busyChanged.emit(False)
        self.loaded.emit(dataset)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if not self._current():
            return
        self._task = None
        self.busyChanged.emit(False)
        self.failed.emit(message)

    @Slot(object)
    def _on_progress(self, info: tuple) -> None:
        if self._current():
            self.progress.emit(*info)
