"""A pyqtgraph scatter whose points all share one style, as each class of the map does.

pyqtgraph finds every new point's symbol in its atlas through a Python tuple per point, even
when all points look the same: 0.28 s of a second start's 2.5 s went there for the 80,000 points
it plots (measured with cProfile, pyqtgraph 0.14).  With one style there is one lookup, and the
points get its place in the atlas all at once.

Its paint, too, does per-point work that one style makes unnecessary (reading each point's
source rectangle, a mask of the points in view computed in data coordinates with their sizes);
here the points are mapped to the device in one product, culled only when some lie outside the
widget, and drawn with the same single ``drawPixmapFragments`` call, so the picture is the same.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

_STYLE = ("symbol", "size", "pen", "brush")
_DEFAULT = pg.graphicsItems.ScatterPlotItem._DEFAULT_STYLE


class UniformScatter(pg.ScatterPlotItem):
    def __init__(self, *args, **kwargs) -> None:
        self._one_style = False  # every point drawn with the item's own style (set per update)
        super().__init__(*args, **kwargs)

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
        """A pan or zoom: pyqtgraph forgets the data bounds, and its bounding rectangle then
        scans every point again (twice per paint); with sizes in pixels they do not depend on
        the view, so they are kept."""
        bounds = list(self.bounds)
        super().viewTransformChanged()
        if self.opts["pxMode"] and self._maxSpotWidth == 0:
            self.bounds = bounds

    def paint(self, p, option, widget) -> None:
        data = self.data
        if (not self._one_style or self._exportOpts is not False or widget is None
                or self.opts.get("compositionMode") is not None or len(data) == 0
                or widget.devicePixelRatioF() != self.fragmentAtlas.devicePixelRatio()
                or (data["sourceRect"]["w"] == 0).any()):
            super().paint(p, option, widget)
            return
        t = p.transform()
        x, y = data["x"], data["y"]
        pts = np.empty((len(data), 2))
        np.multiply(x, t.m11(), out=pts[:, 0])
        pts[:, 0] += y * t.m21() + t.dx()
        np.multiply(y, t.m22(), out=pts[:, 1])
        pts[:, 1] += x * t.m12() + t.dy()
        np.clip(pts, -2 ** 30, 2 ** 30, out=pts)  # as pyqtgraph does: Qt crashes beyond
        source = data["sourceRect"][0]
        half = max(source["w"], source["h"]) / 2
        w, h = widget.width(), widget.height()
        inside = ((pts[:, 0] > -half) & (pts[:, 0] < w + half)
                  & (pts[:, 1] > -half) & (pts[:, 1] < h + half))
        if not inside.all():
            pts = pts[inside]
        p.resetTransform()
        dpr = self.fragmentAtlas.devicePixelRatio()
        self._pixmapFragments.resize(len(pts))
        frags = self._pixmapFragments.ndarray()
        frags[:, 0:2] = pts
        frags[:, 2:6] = (source["x"], source["y"], source["w"], source["h"])
        frags[:, 6:10] = (1 / dpr, 1 / dpr, 0.0, 1.0)
        p.drawPixmapFragments(*self._pixmapFragments.drawargs(), self.fragmentAtlas.pixmap)
