"""A density image of many points, coloured by class: how the map draws a million points at an
overview zoom (one image instead of a million dots).  Pure numpy, so it renders off the GUI
thread; ``np.bincount`` over one flat (class, row, column) index beats ``np.histogram2d`` per
class by about 10x here and needs no new dependency."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF

DOT_LIMIT = 100_000  # more points than this in view: a density image, else dots


def hex_rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def density_rgba(codes: np.ndarray, labels: np.ndarray, palette: list[tuple[int, int, int]],
                 rect: tuple[float, float, float, float], width: int, height: int) -> np.ndarray:
    """(height, width, 4) uint8, row 0 at y0 (pyqtgraph's y axis points up): each pixel has the
    count-weighted mean colour of the classes that fall in it and an opacity that grows with
    the log of its count, so sparse outliers stay visible next to dense cores."""
    x0, x1, y0, y1 = rect
    n_classes = len(palette)
    ix = np.floor((codes[:, 0] - x0) * (width / (x1 - x0))).astype(np.int64)
    iy = np.floor((codes[:, 1] - y0) * (height / (y1 - y0))).astype(np.int64)
    keep = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
    flat = (labels[keep] % n_classes) * (height * width) + iy[keep] * width + ix[keep]
    counts = np.bincount(flat, minlength=n_classes * height * width).reshape(
        n_classes, height * width).astype(np.float32)
    total = counts.sum(axis=0)
    rgba = np.zeros((height * width, 4), np.float32)
    shown = total > 0
    if shown.any():
        colours = np.asarray(palette, np.float32)  # (classes, 3)
        rgba[shown, :3] = (counts[:, shown].T @ colours) / total[shown, None]
        level = np.log1p(total[shown])
        rgba[shown, 3] = 255.0 * (0.35 + 0.65 * level / level.max())
    return rgba.reshape(height, width, 4).round().astype(np.uint8)


def _inside(codes: np.ndarray, rect: tuple[float, float, float, float]) -> np.ndarray:
    x0, x1, y0, y1 = rect
    return (codes[:, 0] >= x0) & (codes[:, 0] <= x1) & (codes[:, 1] >= y0) & (codes[:, 1] <= y1)


class DensityLevels:
    """The part of the latent map that switches between dots and a density image as the view
    changes (mixed into :class:`app.latent_map.LatentMap`, whose attributes it uses)."""

    @property
    def large(self) -> bool:
        """Too many points to draw as dots at every zoom (see app/density.py)."""
        return len(self.codes) > DOT_LIMIT

    def _on_range_changed(self) -> None:
        if self.large:
            self._show_level()
        self.viewChanged.emit()

    def _show_level(self) -> None:
        """Dots for the points near the view when few enough, else ask for a density image."""
        codes = self.codes
        if not self.large:
            if self._dots_rect is None:
                self._set_dots(None)
                self._dots_rect = (-np.inf, np.inf, -np.inf, np.inf)
            return
        x0, x1, y0, y1 = rect = self.visible_rect()
        d = self._dots_rect
        if d is not None and d[0] <= x0 and x1 <= d[1] and d[2] <= y0 and y1 <= d[3]:
            return  # the dots drawn still cover the view
        if int(_inside(codes, rect).sum()) <= DOT_LIMIT:
            w, h = x1 - x0, y1 - y0  # dots for three times the view: pans need no new selection
            wide = (x0 - w, x1 + w, y0 - h, y1 + h)
            keep = _inside(codes, wide)
            if keep.sum() > 4 * DOT_LIMIT:
                wide, keep = rect, _inside(codes, rect)
            self._set_dots(keep)
            self._dots_rect, self._density_shown = wide, False
            self.density_item.setVisible(False)
            return
        if not self._density_shown:  # from dots to the density image: no dots at all
            self._dots_rect, self._density_shown = None, True
            self._set_dots(np.zeros(len(codes), bool))
        px, py = self.view_box.viewPixelSize()
        self.densityWanted.emit(rect, max(1, round((x1 - x0) / px)), max(1, round((y1 - y0) / py)))

    def _set_dots(self, keep: np.ndarray | None) -> None:
        """Draw the points where ``keep`` is True (None: all of them)."""
        if self._class_index is None:  # each class's points, found once per set of codes
            self._class_index = [np.flatnonzero(self.labels == c) for c in range(len(self.scatters))]
        for scatter, index in zip(self.scatters, self._class_index):
            sel = self.codes[index if keep is None else index[keep[index]]]
            scatter.setData(x=sel[:, 0], y=sel[:, 1])

    def set_density(self, image: np.ndarray, rect: tuple[float, float, float, float]) -> None:
        """Show a density image (see app/density.py) over ``rect`` = (x0, x1, y0, y1)."""
        if not self._density_shown:
            return  # the view came close enough for dots meanwhile
        x0, x1, y0, y1 = rect
        self.density_item.setImage(image, autoLevels=False, levels=(0, 255))
        self.density_item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.density_item.setVisible(True)
