"""A pyqtgraph scatter whose points all share one style, as each class of the map does.

pyqtgraph finds every new point's symbol in its atlas through a Python tuple per point, even
when all points look the same: 0.28 s of a second start's 2.5 s went there for the 80,000 points
it plots (measured with cProfile, pyqtgraph 0.14).  With one style there is one lookup, and the
points get its place in the atlas all at once.

Its paint, too, does per-point work that one style makes unnecessary (reading each point's
source rectangle, a mask of the points in view computed in data coordinates with their sizes);
here the points are mapped to the device in one product, culled only when some lie outside the
widget, and drawn with the same single ``drawPixmapFragments`` call, so the picture is the same.
What a pan does not change is kept between paints: the points' coordinates as one contiguous
array (pyqtgraph keeps them in a record array, read with strides), and the fragments' source
rectangle, scale and opacity columns, written again only when the symbol or the screen's pixel
ratio changes.

A pan mostly does not redraw the points at all: Qt keeps the item's picture in device pixels
(``DeviceCoordinateCache``) and moves it, drawing only what comes into view.  A 1 % pan of
70,000 points took 16-20 ms with every point redrawn and 5-7 ms with the picture moved
(2-core machine, 1280x800).  A pan by a fraction of a pixel moves the picture by a whole one,
so the points are drawn again, exactly, once the view has been still for ``SETTLE_MS``.  (At a
fractional screen scale, 150 % say, Qt places the cached picture within a device pixel of where
a direct drawing puts the points.)  Qt paints the cached picture with no widget: the painter's
device stands in for it.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets
from pyqtgraph.Qt.internals import PrimitiveArray

# The exact redraw this long after the view's last move (debounced). A zoom, which has drawn
# every point already, gets one too: asking for the view's scale where pyqtgraph reports the
# change crashed Qt (a segmentation fault) while the item was being added to a plot.
SETTLE_MS = 150
_STYLE = ("symbol", "size", "pen", "brush")
_DEFAULT = pg.graphicsItems.ScatterPlotItem._DEFAULT_STYLE


class UniformScatter(pg.ScatterPlotItem):
    def __init__(self, *args, **kwargs) -> None:
        self._one_style = False  # every point drawn with the item's own style (set per update)
        self._xy_of: np.ndarray | None = None  # the record array _xy was read from
        self._xy = np.zeros((2, 0))
        # Fragments of this item's own: the constant columns stay written between paints.
        self._fragments = PrimitiveArray(QtGui.QPainter.PixmapFragment, 10)
        self._constants: tuple | None = None  # (rows, source, pixel ratio) they were written for
        self._constants_in: np.ndarray | None = None  # the buffer they were written in (kept alive)
        super().__init__(*args, **kwargs)
        self.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self._settle = QtCore.QTimer(self, singleShot=True, interval=SETTLE_MS)
        self._settle.timeout.connect(self.update)  # (an update draws the cached picture again)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        """Passed on: the map handles clicks. pyqtgraph's own handler builds an object per point,
        which the data's numpy object array holds in a cycle the collector cannot free (the
        cross's made one per click: 2,000 in the soak run)."""
        ev.ignore()

    def updateSpots(self, dataSet=None) -> None:  # noqa: N802,N803 (pyqtgraph's names)
        data = self.data if dataSet is None else dataSet
        cached = self.opts["pxMode"] and self.opts["useCache"]
        self._one_style = bool(cached and len(self.data) and self._uniform(self.data))
        if cached and len(data) and (self._one_style or self._uniform(data)):
            new = data["sourceRect"]["w"] == 0
            if new.any():
                style = tuple(self.opts[opt] for opt in _STYLE)
                data["sourceRect"][new] = self.fragmentAtlas[[style]][0]
                self.invalidate()
        super().updateSpots(dataSet)  # the rest (atlas upkeep, spot sizes) as pyqtgraph does it

    def _uniform(self, data: np.ndarray) -> bool:
        """No point has a style of its own (pyqtgraph marks "use the item's" with None/-1)."""
        if self.opts["hoverable"] or not data["visible"].all():
            return False
        return all(np.equal(data[opt], _DEFAULT[opt]).all() for opt in _STYLE)

    def viewTransformChanged(self) -> None:  # noqa: N802
        """A pan or zoom: the exact redraw is due once the view is still. pyqtgraph forgets the
        data bounds, and its bounding rectangle then scans every point again (twice per paint);
        with sizes in pixels they do not depend on the view, so they are kept."""
        bounds = list(self.bounds)
        super().viewTransformChanged()
        self._settle.start()
        if self.opts["pxMode"] and self._maxSpotWidth == 0:
            self.bounds = bounds

    def paint(self, p, option, widget) -> None:
        data = self.data
        device = p.device()  # the view, or the cached picture (which Qt paints with no widget)
        if (not self._one_style or self._exportOpts is not False or device is None
                or self.opts.get("compositionMode") is not None or len(data) == 0
                or device.devicePixelRatioF() != self.fragmentAtlas.devicePixelRatio()
                or (data["sourceRect"]["w"] == 0).any()):
            super().paint(p, option, widget)
            return
        t = p.transform()
        pts = np.array([[t.m11(), t.m21()], [t.m12(), t.m22()]]) @ self._coordinates()
        pts += ((t.dx(),), (t.dy(),))  # (2, N): device x and y
        np.clip(pts, -2 ** 30, 2 ** 30, out=pts)  # as pyqtgraph does: Qt crashes beyond
        source = data["sourceRect"][0]
        half = max(source["w"], source["h"]) / 2
        w, h = device.width(), device.height()
        inside = (pts[0] > -half) & (pts[0] < w + half) & (pts[1] > -half) & (pts[1] < h + half)
        if not inside.all():
            pts = pts[:, inside]
        p.resetTransform()
        dpr = self.fragmentAtlas.devicePixelRatio()
        self._fragments.resize(len(data))  # all points: the constant columns cover every row
        frags = self._fragments.ndarray()
        constants = (len(frags), source.tobytes(), dpr)
        if constants != self._constants or frags.base is not self._constants_in:
            frags[:, 2:6] = (source["x"], source["y"], source["w"], source["h"])
            frags[:, 6:10] = (1 / dpr, 1 / dpr, 0.0, 1.0)
            self._constants, self._constants_in = constants, frags.base
        frags[:pts.shape[1], 0:2] = pts.T
        self._fragments.resize(pts.shape[1])
        p.drawPixmapFragments(*self._fragments.drawargs(), self.fragmentAtlas.pixmap)

    def _coordinates(self) -> np.ndarray:
        """The points' x and y as the rows of one (2, N) array, read once per data set:
        pyqtgraph makes a new record array whenever points are set or added."""
        if self._xy_of is not self.data:
            self._xy = np.stack([self.data["x"], self.data["y"]]).astype(float)
            self._xy_of = self.data
        return self._xy
