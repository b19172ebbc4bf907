"""A square pad to draw a digit with the mouse (or a tablet, through Qt's synthesised mouse
events): white ink on black, anti-aliased round strokes, undo and redo, clear, open an image."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QKeySequence, QPainter, QPen, QShortcut
from PySide6.QtWidgets import QSizePolicy, QWidget

from cae import preprocess
from cae.preprocess import INK_THRESHOLD, normalize_ink

PAD_SIZE = 280  # logical pixels, ten times MNIST's 28
UNDO_DEPTH = 200  # steps undo can take back
_State = tuple[QImage | None, list[tuple[float, list[QPointF]]]]  # (background, strokes)


def grey_levels(image: QImage) -> np.ndarray:
    """The image's grey levels in [0, 1] (:func:`cae.preprocess.grey_levels`)."""
    rgba = image.convertToFormat(QImage.Format.Format_RGBA8888)  # R, G, B, A bytes anywhere
    h, w, stride = rgba.height(), rgba.width(), rgba.bytesPerLine()
    px = np.frombuffer(rgba.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return preprocess.grey_levels(px[:, :4 * w].reshape(h, w, 4) / 255.0)


class DrawingPad(QWidget):
    """Keeps strokes in logical coordinates and renders them at the screen's pixel density."""

    strokeStarted = Signal()
    inkChanged = Signal()  # during a stroke (every mouse move)
    strokeFinished = Signal()  # a stroke ended, an undo, a clear or an opened image
    undoAvailable = Signal(bool)  # whether undo has something to take back
    redoAvailable = Signal(bool)  # whether redo has something to bring back

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedSize(PAD_SIZE, PAD_SIZE)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.pen_width = PAD_SIZE / 10
        self.strokes: list[tuple[float, list[QPointF]]] = []  # (pen width, points)
        self.background: QImage | None = None  # an opened image, under the strokes
        # What the pad held before each stroke, clear and opened image, newest last: undo steps
        # back through all three, so a clear (Esc) or an opened image never loses a drawing;
        # redo steps forward again through what undo took back, until the next change.
        self._history: list[_State] = []
        self._future: list[_State] = []
        self._drawing = False
        self._canvas = self._new_canvas()

    def add_keys(self, scope: QWidget) -> None:
        """Esc and Delete (clear) wherever the focus is within ``scope``: the panel around the
        pad, so they work after a click on its buttons too, and nowhere else, where they mean
        something else.  (Undo and redo are the window's Edit menu's.)"""
        for key in (Qt.Key.Key_Escape, Qt.Key.Key_Delete):
            shortcut = QShortcut(QKeySequence(key), scope)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self.clear)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(PAD_SIZE, PAD_SIZE)

    # --------------------------------------------------------------------------- canvas
    def _new_canvas(self) -> QImage:
        ratio = self.devicePixelRatioF()
        side = max(1, round(PAD_SIZE * ratio))
        canvas = QImage(side, side, QImage.Format.Format_Grayscale8)
        canvas.setDevicePixelRatio(ratio)
        canvas.fill(QColor("black"))
        return canvas

    def _painter(self) -> QPainter:
        painter = QPainter(self._canvas)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        return painter

    def _stroke_pen(self, width: float) -> QPen:
        return QPen(QColor("white"), width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
                    Qt.PenJoinStyle.RoundJoin)

    def _paint_stroke(self, painter: QPainter, width: float, points: list[QPointF]) -> None:
        """The same operations as while drawing (a dot, then one segment per mouse move), so
        an undo re-renders the remaining strokes pixel for pixel."""
        painter.setPen(self._stroke_pen(width))
        painter.drawPoint(points[0])
        for a, b in zip(points[:-1], points[1:]):
            painter.drawLine(a, b)

    def _render(self) -> None:
        """Redraw everything (after an undo or a change of pixel density)."""
        self._canvas = self._new_canvas()
        painter = self._painter()
        if self.background is not None:
            painter.drawImage(QRectF(0, 0, PAD_SIZE, PAD_SIZE), self.background)
        for width, points in self.strokes:
            self._paint_stroke(painter, width, points)
        painter.end()
        self.update()

    @property
    def ink_size(self) -> int:
        """The side of :meth:`ink`'s array, in device pixels (without copying the canvas)."""
        return self._canvas.height()

    def ink(self) -> np.ndarray:
        """The pad as float [0, 1], ink = 1, at device pixel resolution."""
        img = self._canvas
        h, w, stride = img.height(), img.width(), img.bytesPerLine()
        buf = np.frombuffer(img.constBits(), np.uint8, count=stride * h).reshape(h, stride)[:, :w]
        return buf.astype(np.float32) / 255.0

    @property
    def is_empty(self) -> bool:
        return not self.strokes and self.background is None

    # --------------------------------------------------------------------------- actions
    def _state(self) -> _State:
        return self.background, list(self.strokes)  # (strokes are copied; a QImage is shared)

    def _remember(self) -> None:
        """Keep what the pad holds now for undo; a change drops what redo could bring back."""
        self._history = self._history[-(UNDO_DEPTH - 1):] + [self._state()]
        self._future = []
        self.undoAvailable.emit(True)
        self.redoAvailable.emit(False)

    def clear(self) -> None:
        if self._drawing:  # Esc with the button down: the stroke under way would lose its list
            return
        if not self.is_empty:
            self._remember()
        self.strokes = []
        self.background = None
        self._render()
        self.strokeFinished.emit()

    def undo(self) -> None:
        """Back to what the pad held before the last stroke, clear or opened image."""
        self._step(self._history, self._future)

    def redo(self) -> None:
        """Forward again to what the last undo took back."""
        self._step(self._future, self._history)

    def _step(self, source: list[_State], target: list[_State]) -> None:
        if self._drawing or not source:
            return
        target.append(self._state())
        self.background, self.strokes = source.pop()
        self._render()
        self.undoAvailable.emit(bool(self._history))
        self.redoAvailable.emit(bool(self._future))
        self.strokeFinished.emit()

    def set_pen_width(self, width: float) -> None:
        self.pen_width = float(width)

    def load_image(self, image: QImage) -> bool:
        """Show an image (any colours): converted to grey, inverted if dark-on-light, fitted.
        A blank image (one colour all over: no ink) changes nothing and gives False."""
        grey = grey_levels(image)
        h, w = grey.shape
        ink = normalize_ink(grey)
        if not (ink > INK_THRESHOLD).any():
            return False
        ink = np.ascontiguousarray((ink * 255).astype(np.uint8))
        side = max(h, w)
        square = np.zeros((side, side), np.uint8)
        square[(side - h) // 2:(side - h) // 2 + h, (side - w) // 2:(side - w) // 2 + w] = ink
        self._remember()
        self.background = QImage(square.data, side, side, side, QImage.Format.Format_Grayscale8).copy()
        self.strokes = []
        self._render()
        self.strokeFinished.emit()
        return True

    # --------------------------------------------------------------------------- events
    def changeEvent(self, event) -> None:  # noqa: N802
        super().changeEvent(event)
        if abs(self._canvas.devicePixelRatio() - self.devicePixelRatioF()) > 1e-6:
            self._render()  # moved to a screen of another density

    def mousePressEvent(self, event) -> None:  # noqa: N802
        if event.button() != Qt.MouseButton.LeftButton:
            return
        self._remember()
        self._drawing = True
        self.strokes.append((self.pen_width, [event.position()]))
        painter = self._painter()
        self._paint_stroke(painter, self.pen_width, self.strokes[-1][1])
        painter.end()
        self.update()
        self.strokeStarted.emit()
        self.inkChanged.emit()

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if not self._drawing:
            return
        width, points = self.strokes[-1]
        last = points[-1]
        points.append(event.position())
        painter = self._painter()
        painter.setPen(self._stroke_pen(width))
        painter.drawLine(last, event.position())
        painter.end()
        self.update()
        self.inkChanged.emit()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self._drawing:
            self._drawing = False
            self.strokeFinished.emit()

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.drawImage(QRectF(0, 0, PAD_SIZE, PAD_SIZE), self._canvas)
        painter.end()
