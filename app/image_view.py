"""A grey-scale image shown large with nearest-neighbour scaling, as pixels really are."""
from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QSizePolicy, QWidget

from cae.errors import CAEError
from cae.render import write_atomic


def to_qimage(image: np.ndarray) -> QImage:
    """float [0, 1] (H, W) -> an 8-bit grey QImage that owns its pixels."""
    data = np.ascontiguousarray((np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8))
    h, w = data.shape
    return QImage(data.data, w, h, w, QImage.Format.Format_Grayscale8).copy()


def save_png(image: QImage | QPixmap, path: str) -> str:
    """Write ``image`` as a PNG at ``path`` whole or not at all; '' or why not (Qt's own save
    says only that it failed: a read-only folder or a full disk is named here)."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb"):  # the folder's own reason (read-only, missing), as an OSError
            pass
        if not image.save(str(tmp), "PNG"):
            raise OSError(errno.EIO, "the PNG could not be written (is the disk full?)")
    try:
        write_atomic(path, write)
    except CAEError as exc:
        return str(exc)
    return ""


FRAME = "#8C8C8C"


class ImageView(QWidget):
    """Paints the last image given to :meth:`set_image`, square, scaled to fit."""

    def __init__(self, minimum: int = 112, preferred: int | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: np.ndarray | None = None  # what is shown, float [0, 1]
        self._qimage: QImage | None = None
        self._minimum = minimum
        self._preferred = preferred or 2 * minimum
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return QSize(self._minimum, self._minimum)

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(self._preferred, self._preferred)

    def set_image(self, image: np.ndarray | None) -> None:
        self.image = None if image is None else np.clip(np.asarray(image, np.float32), 0.0, 1.0)
        self._qimage = None if image is None else to_qimage(self.image)
        self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        """Scale to fit, keeping the aspect ratio (a 20 x 13 crop stays narrow); no smoothing.
        A grey frame just outside the image shows its edges where they are white ink on the
        light window (the crop of a "1" was an invisible white bar)."""
        painter = QPainter(self)
        painter.fillRect(self.rect(), self.palette().window())
        iw, ih = (1, 1) if self._qimage is None else (self._qimage.width(), self._qimage.height())
        scale = min((self.width() - 2) / iw, (self.height() - 2) / ih)
        w, h = max(1, int(iw * scale)), max(1, int(ih * scale))
        target = QRect((self.width() - w) // 2, (self.height() - h) // 2, w, h)
        painter.setPen(QColor(FRAME))
        painter.drawRect(target.adjusted(-1, -1, 0, 0))
        if self._qimage is None:
            painter.fillRect(target, Qt.GlobalColor.black)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
            painter.drawImage(target, self._qimage)
        painter.end()
