"""UniformScatter draws exactly what pyqtgraph's ScatterPlotItem draws, restyles included."""
import numpy as np
import pyqtgraph as pg
import pytest

from app.uniform_scatter import UniformScatter


def _pictures(qtbot, cls, xy, **per_point):
    w = pg.PlotWidget()
    qtbot.addWidget(w)
    w.resize(300, 300)
    s = cls(size=4, pen=pg.mkPen("w"), brush=pg.mkBrush("#E69F00"), pxMode=True, hoverable=False)
    w.addItem(s)
    w.setRange(xRange=(-3, 3), yRange=(-3, 3), padding=0)
    s.setData(x=xy[:, 0], y=xy[:, 1], **per_point)
    first = w.grab().toImage()
    s.setBrush(pg.mkBrush("#0072B2"))  # greying a class out restyles every point
    s.setData(x=xy[::2, 0], y=xy[::2, 1])  # new points after a restyle
    return bytes(first.constBits()), bytes(w.grab().toImage().constBits())


@pytest.mark.parametrize("per_point", [{}, {"size": np.r_[np.full(500, 4.0), np.full(500, 9.0)]}])
def test_same_pictures_as_pyqtgraph(qtbot, per_point):
    xy = np.random.default_rng(0).normal(size=(1000, 2))
    ours = _pictures(qtbot, UniformScatter, xy, **per_point)
    theirs = _pictures(qtbot, pg.ScatterPlotItem, xy, **per_point)
    assert ours[0] != ours[1]  # the restyle shows
    assert ours == theirs


def test_one_atlas_lookup_for_all_points(qtbot, monkeypatch):
    s = UniformScatter(size=4, pen=pg.mkPen("w"), brush=pg.mkBrush("r"), pxMode=True,
                       hoverable=False)
    looked_up = []
    atlas = type(s.fragmentAtlas)
    real = atlas.__getitem__
    monkeypatch.setattr(atlas, "__getitem__", lambda self, styles: looked_up.append(len(styles))
                        or real(self, styles))
    s.setData(x=np.arange(5000.0), y=np.arange(5000.0))
    assert looked_up == [1]
