"""Interpolation between two latent points: the straight path and a filmstrip of its decodes."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QGridLayout, QHBoxLayout, QLabel, QPushButton,
                               QVBoxLayout, QWidget)

from . import file_dialogs
from .compact import text_wide
from .image_view import ImageView, save_png, to_qimage
from .spin_box import SpinBox
from .z_text import z_pair

STRIP_SCALE = 4  # exported strips are upscaled (nearest) so each frame is 112 px


def path_points(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """(steps, 2) evenly spaced points from a to b, both included."""
    t = np.linspace(0.0, 1.0, steps)[:, None]
    return ((1 - t) * np.asarray(a, np.float64) + t * np.asarray(b, np.float64)).astype(np.float32)


def filmstrip(frames: np.ndarray, gap: int = 2, columns: int | None = None) -> np.ndarray:
    """(K, H, W) frames in rows of ``columns`` (all in one row by default), in reading order,
    with a dark gap, as one float image."""
    k, h, w = frames.shape
    cols = k if columns is None else max(1, min(k, columns))
    rows = -(-k // cols)
    strip = np.full((rows * h + (rows - 1) * gap, cols * w + (cols - 1) * gap), 0.15, np.float32)
    for i, frame in enumerate(frames):
        r, c = divmod(i, cols)
        strip[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = frame
    return strip


def best_columns(k: int, width: int, height: int) -> int:
    """How many frames a row should hold so that ``k`` square frames come out largest in a
    ``width`` x ``height`` box (50 frames in one row of a 400 px dock were 8 px each)."""
    return max(range(1, k + 1), key=lambda c: (min(width / c, height / -(-k // c)), -c))


class StripView(ImageView):
    """The decodes along the path, wrapped into as many rows as make them largest here."""

    def __init__(self, minimum: int) -> None:
        super().__init__(minimum)
        self.frames: np.ndarray | None = None

    def set_frames(self, frames: np.ndarray | None) -> None:
        self.frames = frames
        self._lay_out()

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._lay_out()

    def _lay_out(self) -> None:
        if self.frames is None:
            self.set_image(None)
            return
        columns = best_columns(len(self.frames), max(1, self.width()), max(1, self.height()))
        self.set_image(filmstrip(self.frames, columns=columns))


class InterpolationPanel(QWidget):
    """Buttons set the end points A and B; the main window computes and shows the strip."""

    endpointRequested = Signal(str, str)  # "A"/"B", source: "decoded", "drawn" or "hovered"
    stepsChanged = Signal(int)
    saved = Signal(str)  # the path of a written strip or table

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Each end's z on a line of its own, its two buttons under it: side by side they made
        # the dock scroll sideways in a 1000-px window.
        grid = QGridLayout()
        self.a_label, self.b_label = QLabel("A: –"), QLabel("B: –")
        for row, (end, label) in enumerate((("A", self.a_label), ("B", self.b_label))):
            grid.addWidget(label, 2 * row, 0, 1, 2)
            for col, (source, text, tip) in enumerate((
                    ("decoded", "decoded point", "the decoded point (the red cross)"),
                    ("drawn", "drawing", "the drawing's code (the red star)"))):
                button = text_wide(QPushButton(f"{end} ← {text}"))
                button.setToolTip(f"Set {end} at {tip}")
                button.clicked.connect(lambda _=False, e=end, s=source: self.endpointRequested.emit(e, s))
                grid.addWidget(button, 2 * row + 1, col)
        self.steps = SpinBox()
        self.steps.setRange(2, 50)
        self.steps.setValue(10)
        self.steps.setPrefix("steps: ")
        self.steps.setToolTip("Decodes along the path from A to B, both included: 2 to 50")
        self.steps.valueChanged.connect(self.stepsChanged)
        self.export_png = text_wide(QPushButton("Export strip…"))
        self.export_png.setToolTip("The strip of decodes as a PNG picture")
        self.export_csv = text_wide(QPushButton("Export z…"))
        self.export_csv.setToolTip("The path's codes as a CSV table")
        row = QHBoxLayout()
        for w in (self.steps, self.export_png, self.export_csv):
            row.addWidget(w)
        self.strip_view = StripView(56)
        self.message = QLabel("Set A and B (point at the map, at a point or anywhere, and press "
                              "A or B, or use the buttons); the strip shows the decodes along the "
                              "straight path.")
        self.message.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addLayout(row)
        layout.addWidget(self.strip_view, 1)
        layout.addWidget(self.message)
        self.zs: np.ndarray | None = None
        self.frames: np.ndarray | None = None
        self.set_result(None, None)

    def set_endpoints(self, a: np.ndarray | None, b: np.ndarray | None) -> None:
        self.a_label.setText("A: –" if a is None else f"A: {z_pair(a[0], a[1])}")
        self.b_label.setText("B: –" if b is None else f"B: {z_pair(b[0], b[1])}")

    def set_result(self, zs: np.ndarray | None, frames: np.ndarray | None) -> None:
        self.zs, self.frames = zs, frames
        self.strip_view.set_frames(frames)
        self.export_png.setEnabled(frames is not None)
        self.export_csv.setEnabled(zs is not None)

    def save_png(self, path: str | None = None) -> str:
        """Write the strip; returns '' on success, else the reason (shown by the caller)."""
        if self.frames is None:
            return "no interpolation yet"
        if path is None:
            path = file_dialogs.save_file(self, "Export strip", "interpolation.png", "PNG (*.png)")
            if not path:
                return ""
        strip = np.kron(filmstrip(self.frames), np.ones((STRIP_SCALE, STRIP_SCALE), np.float32))
        problem = save_png(to_qimage(strip), path)
        if problem:
            return problem
        self.saved.emit(path)
        return ""

    def save_csv(self, path: str | None = None) -> str:
        if self.zs is None:
            return "no interpolation yet"
        if path is None:
            path = file_dialogs.save_file(self, "Export z", "interpolation.csv", "CSV (*.csv)")
            if not path:
                return ""
        table = np.column_stack([np.arange(len(self.zs)), self.zs])
        try:
            np.savetxt(path, table, delimiter=",", header="step,z1,z2", comments="",
                       fmt=["%d", "%.9g", "%.9g"])  # float32 exactly
        except OSError as exc:
            return f"cannot write {path}: {exc.strerror or exc}"
        self.saved.emit(path)
        return ""
