"""Render the real main window offscreen and save it as the README's screenshot.

    python scripts/screenshot.py [--data DIR] [--out docs/screenshot.png]

It opens the bundled model, loads the dataset (for hover thumbnails), decodes a point, lays the
decoded images under the points, draws a digit on the pad and grabs the window (1280x800).
Run it again whenever the window changes.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QPoint, QSettings, Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def wait(app: QApplication, condition, seconds: float = 60.0) -> None:
    import time
    end = time.perf_counter() + seconds
    while not condition() and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshot.png"))
    args = parser.parse_args()
    app = QApplication([])
    from app.main_window import MainWindow
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        window.resize(1280, 800)
        window.show()
        window.start(None, args.data if Path(args.data).is_dir() else None)
        wait(app, lambda: window.session.points.images is not None or not window.session.data.busy)
        window.layers.fit_view()
        window.explore.request_decode(0.5, 1.0)
        window.toolbar.mosaic_action.setChecked(True)  # the decoded images under the points
        wait(app, lambda: window.layers.mosaic_n > 0, 60)
        window.draw_dock.raise_()
        pad = window.draw_panel.pad
        points = [(70, 60), (150, 50), (210, 60), (180, 120), (150, 180), (130, 240)]
        QTest.mousePress(pad, Qt.MouseButton.LeftButton, pos=QPoint(*points[0]))
        for p in points[1:]:
            QTest.mouseMove(pad, QPoint(*p))
        QTest.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=QPoint(*points[-1]))
        wait(app, lambda: window.draw.neighbours is not None, 60)
        QTest.qWait(800)  # let the docks finish moving (a grab mid-animation shows two tab bars)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        ok = window.grab().save(args.out)
        window.close()
    print(f"saved {args.out}" if ok else f"could not save {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
