"""Run engine functions (load, download, encode) off the GUI thread, with cancellation.

Each task gets a :class:`cae.data.CancelToken` as its first argument and reports through signals
of a QObject that lives on the GUI thread, so results always arrive in GUI-thread slots.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal, Slot

from cae.data import CancelToken
from cae.errors import CAEError

from . import torch_threads


def describe_error(exc: BaseException) -> str:
    """A message for a person: the engine's own text, or the type and text of anything else."""
    if isinstance(exc, CAEError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class Task(QObject):
    """One background call; ``done`` carries its result, ``failed`` a message, ``progress`` any
    payload the function reports through the ``report`` callable it is given."""

    done = Signal(object)
    failed = Signal(str)
    progress = Signal(object)
    ended = Signal()

    def __init__(self, fn: Callable[..., Any], *args: Any, torch_threads: int = 1) -> None:
        super().__init__()
        self.fn = fn
        self.args = args
        self.torch_threads = torch_threads
        self.cancel_token = CancelToken()

    def cancel(self) -> None:
        self.cancel_token.cancel()

    @property
    def cancelled(self) -> bool:
        return self.cancel_token.cancelled

    def _run(self) -> None:
        try:
            torch_threads.use(self.torch_threads)
            result = self.fn(self.cancel_token, self._report, *self.args)
        except Exception as exc:  # noqa: BLE001 - any failure must reach the user, not kill the app
            if not self.cancelled:
                if not isinstance(exc, CAEError):
                    traceback.print_exc()
                self._emit(self.failed, describe_error(exc))
        else:
            if not self.cancelled:
                self._emit(self.done, result)
        finally:
            self._emit(self.ended)

    def _report(self, payload: Any) -> None:
        if not self.cancelled:
            self._emit(self.progress, payload)

    @staticmethod
    def _emit(signal, *args: Any) -> None:
        """Emit unless the receiving side is gone (the app is exiting around a late task)."""
        try:
            signal.emit(*args)
        except RuntimeError:
            pass


class TaskRunner(QObject):
    """A small thread pool that remembers its tasks so they can be cancelled and awaited."""

    def __init__(self, parent: QObject | None = None, threads: int = 2) -> None:
        super().__init__(parent)
        self.threads = threads
        self.pool = self._new_pool()
        self.torch_threads = torch_threads.ALL  # 1 while a training run owns the cores
        self._retired: list[QThreadPool] = []
        self._reaper = QTimer(self)
        self._reaper.setInterval(200)
        self._reaper.timeout.connect(self._reap)
        self._tasks: set[Task] = set()
        self.closed = False

    def _new_pool(self) -> QThreadPool:
        pool = QThreadPool(self)
        pool.setMaxThreadCount(self.threads)
        # Keep the threads: each new thread that runs torch gets its own OpenMP team, arena and
        # caches, so recycling idle threads (Qt's default after 30 s) makes memory creep up.
        pool.setExpiryTimeout(-1)
        return pool

    def set_training(self, training: bool) -> None:
        """A training run starts (or ended): tasks run torch on one thread meanwhile, in new
        pool threads, since the old ones keep the OpenMP teams they had (see
        :mod:`app.torch_threads`); the old pool goes once its (cancelled) tasks have ended."""
        self.torch_threads = 1 if training else torch_threads.ALL
        if training and torch_threads.ALL > 1:
            self._retired.append(self.pool)
            self.pool = self._new_pool()
            self._reaper.start()

    def _reap(self) -> None:
        """Delete retired pools whose tasks have ended: their threads end, and their teams."""
        for pool in [p for p in self._retired if p.activeThreadCount() == 0]:
            self._retired.remove(pool)
            pool.deleteLater()
        if not self._retired:
            self._reaper.stop()

    def submit(self, fn: Callable[..., Any], *args: Any, on_done: Callable | None = None,
               on_failed: Callable | None = None, on_progress: Callable | None = None) -> Task:
        """Start ``fn(cancel_token, report, *args)`` in the pool.

        The slots are connected before the task starts: a task can finish before ``submit``
        returns, and a signal emitted with nothing connected is lost.
        """
        if self.closed:
            raise RuntimeError("the task runner has been shut down")
        task = Task(fn, *args, torch_threads=self.torch_threads)
        for signal, slot in ((task.done, on_done), (task.failed, on_failed),
                             (task.progress, on_progress)):
            if slot is not None:
                signal.connect(slot)
        self._tasks.add(task)
        task.ended.connect(self._forget)
        # A plain callable, not a QRunnable subclass: PySide kept some such subclasses' Python
        # objects after Qt had deleted them, and with them their tasks and arguments (a model
        # copy each: 25-50 MB over 50 model loads on a busy machine, in the soak run).
        self.pool.start(task._run)
        return task

    @Slot()
    def _forget(self) -> None:
        self._tasks = {t for t in self._tasks if t is not self.sender()}

    @property
    def busy(self) -> bool:
        return any(p.activeThreadCount() > 0 for p in (self.pool, *self._retired))

    def shutdown(self, timeout_ms: int = 2000) -> bool:
        """Cancel everything and wait; True when every task ended in time."""
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
        return all([p.waitForDone(timeout_ms) for p in (self.pool, *self._retired)])


class LatestTasks(QObject):
    """At most one live task per kind ("codes", "metrics", "mosaic"...): submitting a kind again
    cancels its previous task, and only the latest task's results reach its callbacks.

    The callbacks run on the GUI thread: the tasks' signals arrive in this object's slots (which
    live there) and are handed on from there.
    """

    def __init__(self, runner: TaskRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self._tasks: dict[str, Task] = {}
        self._callbacks: dict[Task, tuple[Callable | None, Callable | None, Callable | None]] = {}

    def submit(self, kind: str, fn: Callable[..., Any], *args: Any, on_done: Callable | None = None,
               on_failed: Callable | None = None, on_progress: Callable | None = None) -> Task:
        """Start ``fn(cancel_token, report, *args)`` as the one task of ``kind``."""
        self.cancel(kind)
        task = self.runner.submit(fn, *args, on_done=self._on_done, on_failed=self._on_failed,
                                  on_progress=self._on_progress)
        # Safe after submit: the task's signals are queued to this thread, which is busy here.
        self._tasks[kind] = task
        self._callbacks[task] = (on_done, on_failed, on_progress)
        return task

    def cancel(self, *kinds: str) -> None:
        """Cancel the tasks of ``kinds`` (all kinds when none is named)."""
        for kind in kinds or list(self._tasks):
            task = self._tasks.pop(kind, None)
            if task is not None:
                task.cancel()
                self._callbacks.pop(task, None)

    def running(self, kind: str) -> bool:
        return kind in self._tasks

    def _current(self, final: bool) -> tuple[Callable | None, Callable | None, Callable | None] | None:
        task = self.sender()
        callbacks = self._callbacks.get(task)
        if callbacks is None:
            return None
        if final:
            self._callbacks.pop(task, None)
            self._tasks = {k: t for k, t in self._tasks.items() if t is not task}
        return callbacks

    @Slot(object)
    def _on_done(self, result: Any) -> None:
        callbacks = self._current(final=True)
        if callbacks and callbacks[0]:
            callbacks[0](result)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        callbacks = self._current(final=True)
        if callbacks and callbacks[1]:
            callbacks[1](message)

    @Slot(object)
    def _on_progress(self, payload: Any) -> None:
        callbacks = self._current(final=False)
        if callbacks and callbacks[2]:
            callbacks[2](payload)
