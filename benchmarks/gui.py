"""Measurements of the window as a user gets it: a pan with its own paint, a click to the decoded
image painted, the GUI's longest stall while training, and the window's training throughput
against the CLI's.  Each fails loudly when the state it measures is not the one it names."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import (QElapsedTimer, QEvent, QEventLoop, QObject, QPoint, QSettings,  # noqa: E402
                            Qt, QTimer)
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.density import DOT_LIMIT  # noqa: E402
from app.main_window import MainWindow  # noqa: E402
from app.points import MapPoints  # noqa: E402
from app.training_controller import SNAPSHOT_EVERY_S, SNAPSHOT_SIZE  # noqa: E402
from cae.data import Dataset  # noqa: E402
from cae.train import Progress, TrainConfig, Trainer  # noqa: E402


def _app() -> QApplication:
    return QApplication.instance() or QApplication([])


def _window(tmp: str, model: str | None = None) -> MainWindow:
    # The app's data folder (autosaves of a training run) goes into the benchmark's temporary
    # folder too: a run in the window must leave nothing for the user's next start to offer.
    os.environ["XDG_DATA_HOME"] = tmp
    window = MainWindow(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
    window.resize(1280, 800)
    window.show()
    if model:
        window.session.models.load(model)
    return window


def _wait(condition, seconds: float, what: str) -> None:
    deadline = time.perf_counter() + seconds
    while not condition():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"benchmark: timed out waiting for {what}")
        _app().processEvents()
        time.sleep(0.002)


def _run_until(condition, signal, seconds: float, what: str) -> None:
    """Run the Qt event loop, as the app does, until ``condition`` holds (checked whenever
    ``signal`` fires).  A polling loop (processEvents, sleep, again) would wake the GUI thread
    hundreds of times a second and take the GIL from the training thread each time: it cost
    the window ~10 % of its training speed that a user's window, asleep in the event loop,
    does not lose."""
    if condition():
        return
    loop = QEventLoop()

    def check(*_) -> None:
        if condition():
            loop.quit()

    deadline = QTimer(singleShot=True, interval=int(seconds * 1000))
    deadline.timeout.connect(loop.quit)
    signal.connect(check)
    deadline.start()
    loop.exec()
    deadline.stop()
    signal.disconnect(check)
    if not condition():
        raise RuntimeError(f"benchmark: timed out waiting for {what}")


def _blobs(n: int) -> MapPoints:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, n)
    centres = np.stack([np.cos(labels * 0.63), np.sin(labels * 0.63)], axis=1) * 3
    return MapPoints(centres + rng.normal(size=(n, 2)), labels, tuple("0123456789"))


def map_pan_paint(sizes: tuple[int, ...], reps: int) -> dict[int, float]:
    """Median ms of a pan (the view moves by 1 %) plus the paint it causes, at overview zoom."""
    app = _app()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        window = _window(tmp)
        for n in sizes:
            window.session.set_points(_blobs(n), fit=True)
            if n > DOT_LIMIT:  # the density image must be there, or the figure is of nothing
                _wait(window.map.density_item.isVisible, 30, "the density image")
            shown = sum(len(s.getData()[0]) for s in window.map.scatters)
            if n <= DOT_LIMIT and shown != n:
                raise RuntimeError(f"benchmark: {shown} of {n} points drawn")
            vb, viewport = window.map.view_box, window.map.viewport()
            times = []
            for i in range(reps):
                (x0, x1), _ = vb.viewRange()
                t0 = time.perf_counter()
                vb.translateBy(x=0.01 * (x1 - x0) * (1 if i % 2 else -1))
                viewport.repaint()
                times.append(1e3 * (time.perf_counter() - t0))
                app.processEvents()
            out[n] = statistics.median(times)
        window.session.shutdown()
        window.close()
    return out


class _PaintClock(QObject):
    """Notes when a widget finished painting: the filter lets the widget handle its paint event
    and then reads the clock (a timer fired "after the paint" would also count whatever else
    the event loop does first, such as the release of the click)."""

    def __init__(self, widget) -> None:
        super().__init__()
        self.painted = 0.0
        widget.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() != QEvent.Type.Paint:
            return False
        obj.event(event)  # the widget paints now, inside this paint event
        self.painted = time.perf_counter()
        return True  # handled


def click_to_paint(model: str, reps: int) -> float:
    """Median ms from a real mouse press on the map to the decoded image painted."""
    app = _app()
    with tempfile.TemporaryDirectory() as tmp:
        window = _window(tmp, model)
        _wait(lambda: len(window.map.codes) > 0, 30, "the map")
        app.processEvents()
        clock = _PaintClock(window.decoded_view)
        viewport = window.map.viewport()
        rect = window.map.view_box.sceneBoundingRect()
        times = []
        for i in range(reps + 3):
            window.explore.stop()  # each click is a fresh one, not a drag coalesced by the throttle
            pos = window.map.mapFromScene(rect.center()) + QPoint(7 * (i % 9) - 28, 5 * (i % 7) - 15)
            clock.painted = 0.0
            t0 = time.perf_counter()
            QTest.mousePress(viewport, Qt.MouseButton.LeftButton, pos=pos)
            QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, pos=pos)
            _wait(lambda: clock.painted > 0, 5, "the decoded image's paint")
            if i >= 3:  # after warm-up
                times.append(1e3 * (clock.painted - t0))
        if window.explore.decode_count < reps:
            raise RuntimeError("benchmark: the clicks did not decode")
        window.session.shutdown()
        window.close()
    return statistics.median(times)


def _window_training(ds: Dataset, config: TrainConfig, seconds: float, warmup: float,
                     explore: bool) -> tuple[float, float]:
    """(images/s after warm-up, longest GUI stall in ms) of a run in the window, map live."""
    app = _app()
    with tempfile.TemporaryDirectory() as tmp:
        window = _window(tmp)
        window.session.models.new_model()
        window.session._on_dataset_loaded(ds)
        _wait(lambda: not window.session.tasks.running("codes") and len(window.map.codes) > 0,
              120, "the map")
        window.session.run.start(config, False)
        reports: list[tuple[float, int]] = []
        window.session.training.progress.connect(
            lambda p: reports.append((time.perf_counter(), p.global_step)))
        clock = QElapsedTimer()
        lateness: list[float] = []
        last = [0.0]

        def tick() -> None:
            now = clock.nsecsElapsed() / 1e6
            lateness.append(now - last[0] - 10.0)
            last[0] = now
            if explore and len(lateness) % 5 == 0:  # the user keeps exploring meanwhile
                window.explore.request_decode(float(np.sin(now)), float(np.cos(now)))

        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(tick)
        progress = window.session.training.progress
        _run_until(lambda: bool(reports), progress, 120, "the first progress report")
        t_start = time.perf_counter() + warmup
        clock.start()
        if explore:  # the stall run; the speed run measures the window alone
            timer.start()
        _run_until(lambda: reports[-1][0] > t_start + seconds and len(_after(reports, t_start)) > 2,
                   progress, seconds + warmup + 300, "training")
        timer.stop()
        rate = _rate(_after(reports, t_start), config.batch_size)
        window.session.shutdown()
        window.close()
        app.processEvents()
    return rate, max(lateness[1:]) if len(lateness) > 1 else float("nan")


def _cli_training(ds: Dataset, config: TrainConfig, seconds: float, warmup: float) -> float:
    """Images/s after warm-up of the same run as `cae train` does it (the trainer alone)."""
    trainer = Trainer(ds, config)
    reports: list[tuple[float, int]] = []
    for record in trainer.run():
        if isinstance(record, Progress):
            reports.append((time.perf_counter(), record.global_step))
            if len(_after(reports, reports[0][0] + warmup)) > 2 \
                    and reports[-1][0] - reports[0][0] > warmup + seconds:
                trainer.stop()
    return _rate(_after(reports, reports[0][0] + warmup), config.batch_size)


def _after(reports: list[tuple[float, int]], start: float) -> list[tuple[float, int]]:
    return [r for r in reports if r[0] >= start]


def _rate(reports: list[tuple[float, int]], batch_size: int) -> float:
    """Images per second between the first and the last of ``reports`` (time, global step)."""
    if len(reports) < 2:
        raise RuntimeError("benchmark: too few progress reports to measure a rate")
    return (reports[-1][1] - reports[0][1]) * batch_size / (reports[-1][0] - reports[0][0])


def training_in_the_window(quick: bool, seconds: float, warmup: float, reps: int) -> dict:
    """The window's images/s over the CLI's (same batch, alternated; the map live with the app's
    snapshot settings), and the GUI's longest stall in a run where the user keeps exploring.

    Each figure comes from a fresh process, as `cae train` and the app each run in one: how many
    OpenMP teams a process already holds changes how fast a training thread runs (see
    app/torch_threads.py), and this process has done other torch work by now."""
    gui, cli, stall = [], [], []
    for _ in range(reps):
        cli.append(_in_fresh_process("cli", quick, seconds, warmup))
        gui.append(_in_fresh_process("window", quick, seconds, warmup))
        stall.append(_in_fresh_process("stall", quick, seconds, warmup))
    return {"gui_train_img_s": statistics.median(gui), "cli_train_img_s": statistics.median(cli),
            "gui_train_fraction_of_cli": statistics.median(g / c for g, c in zip(gui, cli)),
            "gui_stall_ms": max(stall), "gui_stall_ms_runs": stall}


def _in_fresh_process(kind: str, quick: bool, seconds: float, warmup: float) -> float:
    """One figure of :func:`_one_training` measured by ``python -m benchmarks.gui``."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gui", kind, str(int(quick)),
                           str(seconds), str(warmup)], cwd=root, capture_output=True, text=True,
                          timeout=seconds + warmup + 600)
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark: the {kind} training run failed:\n{proc.stderr[-2000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


def _one_training(kind: str, quick: bool, seconds: float, warmup: float) -> float:
    """'cli': images/s of the trainer alone (snapshots at epoch ends only, as `cae train`);
    'window': images/s of a run in the window with the map live; 'stall': the GUI's longest
    stall (ms) in such a run while the user keeps exploring."""
    from .suite import dataset
    ds = dataset(quick)
    if quick:
        ds = replace(ds, train_images=ds.train_images[:5000], train_labels=ds.train_labels[:5000])
    config = TrainConfig(epochs=100, batch_size=128, device="cpu",
                         snapshot_every_s=SNAPSHOT_EVERY_S, snapshot_size=SNAPSHOT_SIZE)
    if kind == "cli":
        return _cli_training(ds, replace(config, snapshot_every_s=0.0), seconds, warmup)
    rate, longest_stall = _window_training(ds, config, seconds, warmup, explore=kind == "stall")
    return rate if kind == "window" else longest_stall


if __name__ == "__main__":
    print(_one_training(sys.argv[1], sys.argv[2] == "1", float(sys.argv[3]), float(sys.argv[4])))
