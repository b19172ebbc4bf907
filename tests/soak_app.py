"""The soak run of the real window, in a fresh process (so other tests' heap does not count):
10,000 decodes (2,000 from real mouse clicks), 1,000 draw-and-clear cycles, 50 model loads.
Prints JSON: resident memory growth after warm-up, models alive before and after, decodes done,
Qt warnings, errors."""
from __future__ import annotations

import ctypes
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PySide6.QtCore import QPoint, QPointF, QSettings, Qt, qInstallMessageHandler  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

WARNINGS: list[str] = []
QT_NOISE = ("propagateSizeHints",)  # the offscreen platform's own note


def on_message(kind, context, message) -> None:
    if kind.name != "QtDebugMsg" and kind.name != "QtInfoMsg" and not any(n in message for n in QT_NOISE):
        WARNINGS.append(message)


def rss_mb() -> float:
    """Resident memory once garbage is collected and glibc's allocator has handed its free pages
    back: a model load's freed buffers otherwise stay resident (up to 50 MB seen) and read as
    growth. What a leak holds stays."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # another C library: resident memory as it is
        pass
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    qInstallMessageHandler(on_message)
    app = QApplication([])
    import app.main_window as mw
    from cae.checkpoint import save_checkpoint
    from cae.model import CAE
    from tests.helpers import write_dataset_folder

    tmp = Path(tempfile.mkdtemp())
    mw.bundled_model_path = lambda name="mnist": None
    folder = write_dataset_folder(tmp / "tiny")
    model_path = save_checkpoint(tmp / "soak.safetensors", CAE(), {"dataset": "synthetic"})
    window = mw.MainWindow(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat))
    window.resize(1200, 800)
    window.show()
    window.start(str(model_path), str(folder), "folder")

    def pump(until, seconds: float = 30.0) -> None:
        end = time.perf_counter() + seconds
        while not until() and time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.002)

    pump(lambda: len(window.map.codes) == 64)
    vp, pad = window.map.viewport(), window.draw_panel.pad
    (x0, x1), (y0, y1) = window.map.view_box.viewRange()
    rng = np.random.default_rng(0)
    legend = window.map.legend.sceneBoundingRect()  # clicks there toggle classes instead
    points = []
    for a, b in rng.uniform(0.1, 0.9, (80, 2)):
        scene = window.map.view_box.mapViewToScene(QPointF(x0 + (x1 - x0) * a, y0 + (y1 - y0) * b))
        if not legend.contains(scene):
            points.append(window.map.mapFromScene(scene))
    seven = [(60, 60), (120, 60), (180, 60), (220, 60), (190, 120), (160, 180), (140, 240)]

    def work(n_decodes: int, n_clicks: int, n_draws: int, n_loads: int) -> None:
        start = window.explore.decode_count
        for i in range(n_clicks):
            window.explore.stop()  # clicks faster than the display rate would coalesce
            QTest.mouseClick(vp, Qt.MouseButton.LeftButton, pos=points[i % len(points)])
        clicked = window.explore.decode_count - start
        while window.explore.decode_count - start < n_decodes:  # the rest through the same decode path
            window.explore.stop()
            window.explore.request_decode(float(rng.normal()), float(rng.normal()))
        clicks.append(clicked)
        for _ in range(n_draws):
            QTest.mousePress(pad, Qt.MouseButton.LeftButton, pos=QPoint(*seven[0]))
            for p in seven[1:]:
                QTest.mouseMove(pad, QPoint(*p))
            QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=QPoint(*seven[-1]))
            pad.clear()
        for _ in range(n_loads):
            window.files.open_model(str(model_path))
            app.processEvents()
        pump(lambda: not window.session.runner.busy)

    def live_models() -> int:
        """Models in memory once every background task has ended (each task holds a copy)."""
        pump(lambda: not window.session.runner.busy and not window.session.runner._tasks)
        gc.collect()
        return sum(isinstance(o, CAE) for o in gc.get_objects())

    clicks: list[int] = []
    work(1000, 200, 100, 10)  # warm-up: allocator arenas and torch's kernel caches fill up
    models_before = live_models()  # (first: the tasks still running would count as growth)
    before, decodes = rss_mb(), window.explore.decode_count
    work(10000, 2000, 1000, 50)
    models_after = live_models()
    result = {"grown_mb": rss_mb() - before, "models_before": models_before,
              "models_after": models_after, "decodes": window.explore.decode_count - decodes,
              "click_decodes": clicks[-1],
              "warnings": WARNINGS, "error": window.last_error}
    window.close()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
