"""Training on a worker thread: a QObject moved to a QThread drives :class:`cae.train.Trainer`.

The worker forwards the trainer's immutable records through queued signals; the GUI only ever
changes widgets in its own slots.  ``shutdown`` stops the run and waits for the thread, so the
application never exits with a live thread.
"""
from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from cae.data import Dataset
from cae.model import CAE
from cae.train import EpochEnd, Finished, Progress, Snapshot, TrainConfig, Trainer

from . import torch_threads
from .tasks import describe_error

PROGRESS_INTERVAL_S = 0.25  # at most four progress updates a second reach the GUI


def _state_numpy(model: CAE) -> dict[str, np.ndarray]:
    return {k: v.detach().to("cpu").numpy().copy() for k, v in model.state_dict().items()}


class _Worker(QObject):
    record = Signal(object)
    finished = Signal(object, object)  # Finished, state dict (numpy)
    failed = Signal(str, object)  # message, last good state dict (numpy)

    def __init__(self, trainer: Trainer) -> None:
        super().__init__()
        self.trainer = trainer
        self.lowered_tid: int | None = None  # the thread whose priority yields to the GUI's

    @Slot()
    def run(self) -> None:
        self.lowered_tid = torch_threads.yield_to_gui()  # before its team exists: inherited
        torch_threads.use(torch_threads.ALL)  # the one thread with an OpenMP team meanwhile
        last_progress = 0.0
        pending: Progress | None = None
        try:
            for rec in self.trainer.run():
                if isinstance(rec, Progress):
                    now = time.monotonic()
                    if now - last_progress < PROGRESS_INTERVAL_S and rec.step != rec.steps_per_epoch:
                        pending = rec
                        continue
                    last_progress, pending = now, None
                elif isinstance(rec, Finished):
                    if pending is not None:
                        self.record.emit(pending)
                    self.finished.emit(rec, _state_numpy(self.trainer.model))
                    continue
                self.record.emit(rec)
        except Exception as exc:  # noqa: BLE001 - shown to the user; the GUI stays alive
            self.failed.emit(describe_error(exc), _state_numpy(self.trainer.model))


class TrainingService(QObject):
    """Start/pause/resume/stop training; relays records as signals on the GUI thread."""

    progress = Signal(object)  # Progress
    snapshot = Signal(object)  # Snapshot
    epochEnded = Signal(object)  # EpochEnd
    finished = Signal(object, object)  # Finished, state dict
    failed = Signal(str, object)  # message, last good state dict
    runningChanged = Signal(bool)
    pausedChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: _Worker | None = None
        self.trainer: Trainer | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def paused(self) -> bool:
        return self.trainer is not None and self.trainer.paused

    @property
    def steps_taken(self) -> int:
        """The run's optimiser steps so far, as the trainer counts them (a report comes only
        every few steps)."""
        return self.trainer.global_step if self.trainer is not None else 0

    def start(self, dataset: Dataset, config: TrainConfig, model: CAE) -> None:
        """Train ``model`` (the service takes it over) on ``dataset``.  Raises TrainingError for
        bad settings before any thread starts."""
        if self.running:
            raise RuntimeError("training is already running")
        self.trainer = Trainer(dataset, config, model)
        self._worker = _Worker(self.trainer)
        self._thread = QThread()
        self._thread.setObjectName("cae-training")
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        self._worker.record.connect(self._on_record)
        self._worker.finished.connect(self._on_finished)
        self._worker.failed.connect(self._on_failed)
        # Direct: the worker thread ends its own loop, even while the GUI thread waits in shutdown.
        self._worker.finished.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._worker.failed.connect(self._thread.quit, Qt.ConnectionType.DirectConnection)
        self._thread.finished.connect(self._on_thread_finished)
        self._thread.start()
        self.runningChanged.emit(True)

    def pause(self) -> None:
        if self.trainer is not None:
            self.trainer.pause()
            self.pausedChanged.emit(True)

    def resume(self) -> None:
        if self.trainer is not None:
            self.trainer.resume()
            self.pausedChanged.emit(False)

    def stop(self) -> None:
        if self.trainer is not None:
            self.trainer.stop()

    def shutdown(self, timeout_ms: int = 2000) -> bool:
        """Stop and wait for the worker thread; True when it ended in time."""
        if self._thread is None:
            return True
        self.stop()
        ok = self._thread.wait(timeout_ms)
        if ok:
            self._on_thread_finished()
        return ok

    @Slot(object)
    def _on_record(self, rec: object) -> None:
        if isinstance(rec, Progress):
            self.progress.emit(rec)
        elif isinstance(rec, Snapshot):
            self.snapshot.emit(rec)
        elif isinstance(rec, EpochEnd):
            self.epochEnded.emit(rec)

    @Slot(object, object)
    def _on_finished(self, rec: Finished, state: dict) -> None:
        self.finished.emit(rec, state)

    @Slot(str, object)
    def _on_failed(self, message: str, state: dict) -> None:
        self.failed.emit(message, state)

    @Slot()
    def _on_thread_finished(self) -> None:
        if self._thread is None:
            return
        self._thread.deleteLater()
        self._worker.deleteLater()
        self._thread = None
        self._worker = None
        self.runningChanged.emit(False)
