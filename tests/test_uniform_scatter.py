"""UniformScatter draws exactly what pyqtgraph's ScatterPlotItem draws, restyles included."""
import numpy as np
import pyqtgraph as pg
import pytest
from pyqtgraph.Qt import QtGui

from app.uniform_scatter import SETTLE_MS, UniformScatter


def _pictures(qtbot, cls, xy, **per_point):
    w = pg.PlotWidget()
    qtbot.addWidget(w)
    w.resize(300, 300)
    s = cls(size=4, pen=pg.mkPen("w"), brush=pg.mkBrush("#E69F00"), pxMode=True, hoverable=False)
    w.addItem(s)
    w.setRange(xRange=(-3, 3), yRange=(-3, 3), padding=0)
    s.setData(x=xy[:, 0], y=xy[:, 1], **per_point)
    pictures = [w.grab().toImage()]
    w.setRange(xRange=(0.5, 1.5), yRange=(-1, 0.2), padding=0)  # most points out of view
    pictures.append(w.grab().toImage())
    w.setRange(xRange=(-3, 3), yRange=(-3, 3), padding=0)
    s.setBrush(pg.mkBrush("#0072B2"))  # greying a class out restyles every point
    s.setData(x=xy[::2, 0], y=xy[::2, 1])  # new points after a restyle
    pictures.append(w.grab().toImage())
    s.setData(x=xy[:, 0] + 0.5, y=xy[:, 1])  # more points again, in the fragments kept
    pictures.append(w.grab().toImage())
    s.setBrush(pg.mkBrush("#E69F00"))  # a restyle alone: the same points, another symbol
    pictures.append(w.grab().toImage())
    return [bytes(picture.constBits()) for picture in pictures]


@pytest.mark.parametrize("per_point", [{}, {"size": np.r_[np.full(500, 4.0), np.full(500, 9.0)]}])
def test_same_pictures_as_pyqtgraph(qtbot, per_point):
    xy = np.random.default_rng(0).normal(size=(1000, 2))
    ours = _pictures(qtbot, UniformScatter, xy, **per_point)
    theirs = _pictures(qtbot, pg.ScatterPlotItem, xy, **per_point)
    assert len(set(ours)) == 5  # the zoom, the restyles and the new points show
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


def test_bounds_follow_the_data_not_the_view(qtbot):
    w = pg.PlotWidget()
    qtbot.addWidget(w)
    s = UniformScatter(size=4, pxMode=True, hoverable=False)
    w.addItem(s)
    s.setData(x=[0.0, 1.0], y=[0.0, 2.0])
    w.setRange(xRange=(-5, 5), yRange=(-5, 5))
    assert s.dataBounds(0) == (0.0, 1.0)
    w.setRange(xRange=(-1, 1), yRange=(-1, 1))  # a zoom keeps them
    s.setData(x=[-3.0, 7.0], y=[0.0, 1.0])  # new data replaces them
    w.setRange(xRange=(0, 2), yRange=(0, 2))
    assert s.dataBounds(0) == (-3.0, 7.0) and s.dataBounds(1) == (0.0, 1.0)
    rect = s.boundingRect()
    assert rect.left() <= -3.0 and rect.right() >= 7.0


def test_a_pan_moves_the_picture_and_the_points_are_exact_once_the_view_is_still(qtbot):
    """A pan moves the cached picture by whole pixels (not redrawing the points); once the view
    is still, the points are drawn again where they belong: the picture is pyqtgraph's own, but
    for the rounding of the cached picture's see-through colours."""
    xy = np.random.default_rng(1).normal(size=(3000, 2))
    widgets = []
    for cls in (UniformScatter, pg.ScatterPlotItem):
        w = pg.PlotWidget()
        qtbot.addWidget(w)
        w.resize(300, 300)
        w.addItem(cls(x=xy[:, 0], y=xy[:, 1], size=4, pen=pg.mkPen("w"),
                      brush=pg.mkBrush(230, 159, 0, 200), pxMode=True, hoverable=False))
        w.setRange(xRange=(-3, 3), yRange=(-3, 3), padding=0)
        for axis in ("left", "bottom"):  # (their labels' widths would move the view itself)
            w.hideAxis(axis)
        w.show()  # (the picture is cached for a view on the screen)
        qtbot.waitExposed(w)
        widgets.append(w)
    ours, theirs = widgets

    def picture(w) -> np.ndarray:
        w.viewport().repaint()
        image = w.viewport().grab().toImage()
        rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), -1)
        return rows[:, :4 * image.width()].astype(int)

    for dx, dy in [(0.0625, -0.125), (-0.03125, 0.0625), (0.125, 0.03125), (-0.0625, -0.25)] * 3:
        for w in widgets:
            w.getViewBox().translateBy(x=dx, y=dy)  # (binary fractions: a pure translation)
        if np.abs(picture(ours) - picture(theirs)).max() > 50:
            break  # the picture was moved, not drawn again
    else:
        pytest.fail("no pan moved the cached picture (the check below would prove nothing)")
    qtbot.wait(SETTLE_MS)
    qtbot.waitUntil(lambda: np.abs(picture(ours) - picture(theirs)).max() <= 3, timeout=3000)


def test_the_cached_picture_is_drawn_the_fast_way(qtbot, monkeypatch):
    """Qt paints the cached picture with no widget; the single-call drawing must still be used,
    not pyqtgraph's own per-point paint."""
    slow, painted = [], []
    real = pg.ScatterPlotItem.paint
    monkeypatch.setattr(pg.ScatterPlotItem, "paint", lambda *a: slow.append(1) or real(*a))
    ours = UniformScatter.paint
    monkeypatch.setattr(UniformScatter, "paint",
                        lambda self, p, *a: painted.append(p.device()) or ours(self, p, *a))
    w = pg.PlotWidget()
    qtbot.addWidget(w)
    w.resize(300, 300)
    xy = np.random.default_rng(2).normal(size=(500, 2))
    w.addItem(UniformScatter(x=xy[:, 0], y=xy[:, 1], size=4, brush=pg.mkBrush(230, 159, 0, 200),
                             pxMode=True, hoverable=False))
    w.setRange(xRange=(-3, 3), yRange=(-3, 3), padding=0)  # (the points in view at once)
    w.show()
    qtbot.waitExposed(w)
    qtbot.waitUntil(lambda: w.viewport().repaint() or bool(painted), timeout=3000)
    assert all(isinstance(d, QtGui.QPixmap) for d in painted)  # the cached picture
    assert slow == []
