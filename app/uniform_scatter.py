"""A pyqtgraph scatter whose points all share one style, as each class of the map does.

pyqtgraph finds every new point's symbol in its atlas through a Python tuple per point, even
when all points look the same: 0.28 s of a second start's 2.5 s went there for the 80,000 points
it plots (measured with cProfile, pyqtgraph 0.14).  With one style there is one lookup, and the
points get its place in the atlas all at once.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg

_STYLE = ("symbol", "size", "pen", "brush")


class UniformScatter(pg.ScatterPlotItem):
    def updateSpots(self, dataSet=None) -> None:  # noqa: N802,N803 (pyqtgraph's names)
        data = self.data if dataSet is None else dataSet
        if self.opts["pxMode"] and self.opts["useCache"] and len(data) and self._uniform(data):
            new = data["sourceRect"]["w"] == 0
            if new.any():
                style = tuple(self.opts[opt] for opt in _STYLE)
                data["sourceRect"][new] = self.fragmentAtlas[[style]][0]
                self.invalidate()
        super().updateSpots(dataSet)  # the rest (atlas upkeep, spot sizes) as pyqtgraph does it

    def _uniform(self, data: np.ndarray) -> bool:
        """No point has a style of its own (pyqtgraph marks "use the item's" with None/-1)."""
        if self.opts["hoverable"]:
            return False
        return all(np.equal(data[opt], pg.graphicsItems.ScatterPlotItem._DEFAULT_STYLE[opt]).all()
                   for opt in _STYLE)
