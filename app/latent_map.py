"""The latent map: codes as one scatter per class, click or drag anywhere to explore.

Mouse: a left press (at once, not on release) or a left drag explores (emits the latent point
under the cursor); middle drag or Shift/Ctrl + left drag pans; the wheel and right drag zoom.
Hovering near a data point emits its index.  The widget knows nothing of the model: it shows
arrays and emits coordinates.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QCursor, QGuiApplication, QPen, QPixmapCache

from cae import render
from cae.palette import PALETTE, POINT_ALPHA

from .code_axis import CodeAxis
from .density import DensityLevels
from .uniform_scatter import UniformScatter

MOSAIC_POINT_ALPHA = 110  # over the mosaic: a cluster's decoded digits show through its dots
MOSAIC_KEPT_SHARE = 0.25  # a mosaic covering less of the view than this is stale: hidden
HOVER_RADIUS_PX = 6.0
HOVER_RING_PX = 14  # the ring round the hovered point, across
ERROR_BINS = 8
KNN_RIGHT, KNN_WRONG = "#C8C8C8", "#D55E00"
GREYED = "#D9D9D9"
AXIS_TEXT = "#404040"


PAN_MODIFIERS = Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier
VIEW_LIMIT = 1e4  # the map's widest view: z1 and z2 within +-VIEW_LIMIT
MIN_VIEW_RANGE = 1e-6  # its narrowest: the width and height of a view
FOLLOW_SLACK = 0.75  # Follow refits once the codes' frame is narrower than this part of the view
PICTURES_KEPT = 12  # screen-sized pictures Qt's pixmap cache has room for: ten classes and more
PICTURES_MAX_MB = 160  # but no more (a 4K screen's twelve would take 400 MB)
KEY_ZOOM = 1.25  # + and - zoom by this factor
KEY_PAN = 0.1  # Ctrl+arrows pan by this share of the view


class ExploreViewBox(pg.ViewBox):
    """A ViewBox whose plain left drag explores instead of panning."""

    sigExploreDrag = pg.QtCore.Signal(float, float, bool, bool)  # x, y, started, finished

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 (Qt naming)
        if ev.button() == Qt.MouseButton.LeftButton and not (ev.modifiers() & PAN_MODIFIERS):
            ev.accept()
            p = self.mapSceneToView(ev.scenePos())
            if ev.isStart():  # the press position, so a drag that starts on a marker grabs it
                start = self.mapSceneToView(ev.buttonDownScenePos())
                self.sigExploreDrag.emit(start.x(), start.y(), True, False)
            self.sigExploreDrag.emit(p.x(), p.y(), False, ev.isFinish())
            return
        super().mouseDragEvent(ev, axis)  # Shift/Ctrl + left or middle: pan; right: zoom


class Swatch(pg.ItemSample):
    """A legend swatch at least SIZE px across, whatever the dots' size: 4 px dots gave 4 px
    swatches, and classes 4, 5 and 9 (purple, brown, grey) were hard to tell apart."""

    SIZE = 10

    def paint(self, p, *args) -> None:
        opts = self.item.opts
        if not self.item.isVisible() or opts.get("symbol") is None:
            super().paint(p, *args)  # the hidden class's eye
            return
        p.setRenderHint(p.RenderHint.Antialiasing)
        p.translate(10, 10)
        colour = pg.mkBrush(opts["brush"]).color()
        colour.setAlpha(255)  # the class's colour itself: see-through dots made pale swatches
        pg.graphicsItems.ScatterPlotItem.drawSymbol(
            p, opts["symbol"], max(opts["size"], self.SIZE), pg.mkPen(opts["pen"]),
            pg.mkBrush(colour))


class FixedLegend(pg.LegendItem):
    """The class legend, fixed in its cell beside the plot: pyqtgraph's legend moves with a
    drag, and a drag that began on an entry carried it over the points or out of sight, with
    no way to bring it (or a class it had hidden) back."""

    def mouseDragEvent(self, ev) -> None:  # noqa: N802
        ev.ignore()


class LatentMap(DensityLevels, pg.PlotWidget):
    """Scatter of latent codes with a class legend, an exploration marker and hover look-up."""

    explored = Signal(float, float)  # a click or a drag position: decode this point
    hovered = Signal(int)  # index into the codes, or -1 when no point is near
    nudged = Signal(float, float)  # arrow keys: a step in fractions of the visible width/height
    viewChanged = Signal()  # panned or zoomed
    densityWanted = Signal(tuple, int, int)  # rect, width and height in pixels: render and set
    drawnDropped = Signal()  # the dragged star was let go (and went back to the drawing's code)
    pressed = Signal(bool)  # a plain left press that explores; True: on the drawn digit's star

    def __init__(self, parent=None) -> None:
        self.view_box = ExploreViewBox()
        super().__init__(parent, viewBox=self.view_box, background="w",
                         axisItems={"bottom": CodeAxis("bottom")})
        self.plot_item = self.getPlotItem()
        self.plot_item.setLabel("bottom", "z1")
        self.plot_item.setLabel("left", "z2")  # no grid lines: they cost 25 ms a frame at 70k points
        for axis in ("bottom", "left"):  # plain code values, never "(x0.001)"
            self.plot_item.getAxis(axis).enableAutoSIPrefix(False)
            # Dark enough to read on a projector (pyqtgraph's default grey is #969696).
            self.plot_item.getAxis(axis).setTextPen(AXIS_TEXT)
            self.plot_item.getAxis(axis).setPen(AXIS_TEXT)
        self.plot_item.setMenuEnabled(False)
        self.plot_item.hideButtons()  # pyqtgraph's "A" (auto-range): "Fit view" does that here
        self.view_box.setAspectLocked(False)
        # Qt keeps each class's picture (see UniformScatter) in its pixmap cache, of 10 MB unless
        # told: at 1280x800 some of ten were dropped and drawn again at every pan (a 70,000-point
        # pan took 6.8 ms against 4.3-5.4 with room for them all).
        screen = QGuiApplication.primaryScreen()
        if screen is not None:
            size, ratio = screen.size(), screen.devicePixelRatio()
            room_kb = min(int(4 * size.width() * size.height() * ratio * ratio * PICTURES_KEPT / 1024),
                          PICTURES_MAX_MB * 1024)
            QPixmapCache.setCacheLimit(max(QPixmapCache.cacheLimit(), room_kb))
        # Zoom stops where the map stops meaning anything: past +-VIEW_LIMIT the decoder draws
        # noise (and the mosaic's accuracy is promised up to 1e4), and below MIN_VIEW_RANGE the
        # axis labels of float coordinates repeat.
        self.view_box.setLimits(xMin=-VIEW_LIMIT, xMax=VIEW_LIMIT, yMin=-VIEW_LIMIT,
                                yMax=VIEW_LIMIT, minXRange=MIN_VIEW_RANGE,
                                minYRange=MIN_VIEW_RANGE)
        # The legend sits beside the plot, never over the points; a click on an entry's swatch or
        # its name shows or hides that class.
        self.legend = FixedLegend(labelTextColor="k", verSpacing=-4, sampleType=Swatch)
        self.plot_item.layout.addItem(self.legend, 2, 3)
        self.plot_item.layout.setAlignment(self.legend, Qt.AlignmentFlag.AlignTop)
        # The error and vote colourings' key, in the class legend's place (which they hide).
        # (one of the two is in the layout's cell at a time: a hidden item still takes its room)
        self.colour_key = pg.LabelItem("", color="k", justify="left")
        self.colour_key.setVisible(False)
        self._beside: pg.GraphicsWidget = self.legend
        self.scatters: list[UniformScatter] = []
        self.overlays: list[UniformScatter] = []  # points coloured by error or k-NN vote
        self.colour_mode = "class"
        self.colour_values: np.ndarray | None = None
        self.colour_bar: pg.ColorBarItem | None = None
        self._class_visible: list[bool] | None = None  # the legend's choice, kept while recoloured
        self.grey_hidden = False
        self.greyed: set[int] = set()
        self.outlined = False  # white outlines on the points, for the dark mosaic
        self.points_shown = True  # False: the dots (or density image) are not drawn nor hovered
        self.codes = np.zeros((0, 2), np.float32)
        self.labels = np.zeros(0, np.int64)
        self.class_names: tuple[str, ...] = ()
        self.marker = pg.ScatterPlotItem(size=16, symbol="+", pen=pg.mkPen("#FF0000", width=3),
                                         brush=None, pxMode=True)
        self.marker.setZValue(10)
        self.marker.setVisible(False)
        self.plot_item.addItem(self.marker, ignoreBounds=True)
        # The drawn digit's code: a star that can be dragged.
        self.drawn_marker = pg.ScatterPlotItem(size=22, symbol="star", pen=pg.mkPen("k", width=1.5),
                                               brush=pg.mkBrush("#FF2D2D"), pxMode=True)
        self.drawn_marker.setZValue(11)
        self.drawn_marker.setVisible(False)
        self.plot_item.addItem(self.drawn_marker, ignoreBounds=True)
        # A ring round the point under the pointer: in a dense cluster it shows which dot the
        # "under the cursor" image is of.
        self.hover_ring = pg.ScatterPlotItem(size=HOVER_RING_PX, symbol="o", brush=None,
                                             pen=pg.mkPen("k", width=2), pxMode=True)
        self.hover_ring.setZValue(9)
        self.hover_ring.setVisible(False)
        self._ring_at: tuple | None = None  # where it was last put
        self.plot_item.addItem(self.hover_ring, ignoreBounds=True)
        for item in (self.marker, self.drawn_marker, self.hover_ring):  # the map takes clicks
            item.mouseClickEvent = UniformScatter.mouseClickEvent.__get__(item)  # (see there)
        self.dragging_drawn = False  # the star is being dragged (its decodes are the drawing's)
        self._drawn_at: tuple[float, float] | None = None  # the drawing's own code
        # The interpolation path between two end points; a white band under the dashes keeps it
        # visible over the dark decoded-image mosaic as over the white background.
        self.path_item = pg.PlotDataItem(pen=pg.mkPen("#222222", width=2, style=Qt.PenStyle.DashLine),
                                         shadowPen=pg.mkPen("#FFFFFF", width=5),
                                         symbol="o", symbolSize=6, symbolBrush="#FFFFFF",
                                         symbolPen=pg.mkPen("#222222"))
        self.path_item.setZValue(9)
        self.path_item.setVisible(False)
        self.plot_item.addItem(self.path_item, ignoreBounds=True)
        self.path_ends = [pg.TextItem(html=f'<b style="color:#222222">{end}</b>', anchor=(0.5, 1.2),
                                      fill=pg.mkBrush(255, 255, 255, 210), border="#222222")
                          for end in "AB"]
        for label in self.path_ends:
            label.setZValue(9)
            label.setVisible(False)
            self.plot_item.addItem(label, ignoreBounds=True)
        # The decoded-image map lies under the points.
        self.mosaic_item = pg.ImageItem(axisOrder="row-major")
        self.mosaic_item.setZValue(-10)
        self.mosaic_item.setVisible(False)
        self.plot_item.addItem(self.mosaic_item, ignoreBounds=True)
        self.mosaic_rect: tuple[float, float, float, float] | None = None
        # More than DOT_LIMIT points in view: one density image instead of the dots.
        self.density_item = pg.ImageItem(axisOrder="row-major")
        self.density_item.setZValue(-5)
        self.density_item.setVisible(False)
        self.plot_item.addItem(self.density_item, ignoreBounds=True)
        self._dots_rect: tuple[float, float, float, float] | None = None  # dots drawn for this
        self._density_shown = False  # the density image stands for the points, no dots
        self._class_index: list[np.ndarray] | None = None  # each class's points
        self.view_box.sigRangeChanged.connect(lambda *_: self._on_range_changed())
        self.view_box.sigRangeChanged.connect(lambda *_: self._drop_stale_mosaic())
        # A pan or zoom (Fit view, the keys) moves the points under a pointer that stays put.
        self.view_box.sigRangeChanged.connect(lambda *_: self._hover_moved())
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        # A keyboard user sees where the focus is (the arrow keys move the decoded point here);
        # the frame is always 2 px wide, so focus never moves the plot.
        self.setStyleSheet(f"{type(self).__name__} {{ border: 2px solid transparent; }}"
                           f"{type(self).__name__}:focus {{ border: 2px solid palette(highlight); }}")
        self.view_box.sigExploreDrag.connect(self._on_drag)
        self.scene().sigMouseMoved.connect(self._on_move)
        self._hover_pos: QPointF | None = None
        self._hover_timer = QTimer(self)
        self._hover_timer.setSingleShot(True)
        self._hover_timer.setInterval(16)
        self._hover_timer.timeout.connect(self._update_hover)
        self.hover_index = -1

    # --------------------------------------------------------------------------- data
    def set_codes(self, codes: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...],
                  fit: bool = False, follow: bool = False) -> None:
        """Show ``codes`` (N, 2) coloured by ``labels``; keeps each class's visibility.  ``fit``
        frames them exactly; ``follow`` keeps them framed (:meth:`keep_framed`)."""
        codes = np.asarray(codes, np.float32)
        labels = np.asarray(labels, np.int64)
        if tuple(class_names) != self.class_names:
            self._rebuild_classes(tuple(class_names))
            fit = True
        fit = fit or len(self.codes) == 0
        self.codes, self.labels = codes, labels
        self._dots_rect, self._density_shown, self._class_index = None, False, None
        self.density_item.setVisible(False)
        self.set_colouring("class")  # other colourings belong to the previous codes
        self.hover_index = -1
        if fit:
            self.fit_view()
        elif follow:
            self.keep_framed()
        self._show_level()

    def _rebuild_classes(self, class_names: tuple[str, ...]) -> None:
        for s in self.scatters:
            self.plot_item.removeItem(s)
            self.legend.removeItem(s)
        self.scatters = []
        self.class_names = class_names
        for c, name in enumerate(class_names):
            s = UniformScatter(size=4, pen=self._pen(), brush=self._brush(c), pxMode=True,
                               hoverable=False)
            s.setOpacity(self._points_opacity())
            self.plot_item.addItem(s)
            self.legend.addItem(s, name)
            sample, label = self.legend.items[-1]
            label.mouseClickEvent = sample.mouseClickEvent  # the name toggles, like the swatch
            self.scatters.append(s)
            s.visibleChanged.connect(lambda c=c: self._on_class_visibility(c))
        self.legend.setMaximumHeight(self.legend.height())  # its rows, not the plot's height
        self.greyed = set()

    def _brush(self, c: int) -> QBrush:
        colour = pg.mkColor(GREYED if c in self.greyed else PALETTE[c % len(PALETTE)])
        colour.setAlpha(MOSAIC_POINT_ALPHA if self.outlined else POINT_ALPHA)
        return pg.mkBrush(colour)

    def _pen(self) -> QPen | None:
        return pg.mkPen(255, 255, 255, 140, width=0.6) if self.outlined else None

    def set_mosaic_shown(self, shown: bool) -> None:
        """While the dark mosaic lies beneath them, the class dots get a thin white rim (to show
        on black) and let the decoded digits show through (see-through, so a dense cluster does
        not hide its own tiles)."""
        self.outlined = shown
        self.hover_ring.setPen(pg.mkPen("w" if shown else "k", width=2))  # (seen on black too)
        for item in (*self.scatters, *self.overlays):
            item.setPen(self._pen())
            item.setSize(5 if shown else 4)  # a thin rim needs a slightly larger dot
        for c, s in enumerate(self.scatters):
            s.setBrush(self._brush(c))

    def set_points_shown(self, shown: bool) -> None:
        """Hide (or show again) every point at once, whatever the legend says, so the mosaic's
        tiles show whole; the legend's choices are kept for when they come back."""
        self.points_shown = shown
        for item in (*self.scatters, *self.overlays, self.density_item):
            item.setOpacity(self._points_opacity())  # (Qt paints nothing at opacity 0)
        if self._hover_pos is not None:
            self._update_hover()  # a point under the pointer is no longer hovered (or is again)

    def _points_opacity(self) -> float:
        return 1.0 if self.points_shown else 0.0

    def set_grey_hidden(self, on: bool) -> None:
        """Hidden classes stay on the map in light grey (behind the others) instead of vanishing."""
        self.grey_hidden = on
        if on:
            hidden = [c for c, s in enumerate(self.scatters) if not s.isVisible()]
            for c in hidden:
                self._set_greyed(c, True)
        else:
            for c in sorted(self.greyed):
                self._set_greyed(c, False)
                self.scatters[c].setVisible(False)

    def _set_greyed(self, c: int, greyed: bool) -> None:
        s = self.scatters[c]
        (self.greyed.add if greyed else self.greyed.discard)(c)
        s.setBrush(self._brush(c))
        s.setZValue(-1 if greyed else 0)
        s.setVisible(True)

    def _on_class_visibility(self, c: int) -> None:
        """The legend hid a class: in grey mode, grey it out (or bring its colour back); at an
        overview, the density image is drawn again without it (or with it)."""
        s = self.scatters[c]
        if self.grey_hidden and self.colour_mode == "class" and not s.isVisible():
            self._set_greyed(c, c not in self.greyed)
        if self._density_shown:
            self._show_level()

    def set_colouring(self, mode: str, values: np.ndarray | None = None) -> None:
        """'class' (one colour per class, the legend), 'error' (``values``: per-point error, on a
        colour bar) or 'knn' (``values``: True where the 5-NN vote is wrong, drawn on top)."""
        for item in self.overlays:
            self.plot_item.removeItem(item)
        self.overlays = []
        if self.colour_bar is not None:
            self.plot_item.layout.removeItem(self.colour_bar)
            self.colour_bar.setParentItem(None)
            self.colour_bar = None
        self.colour_mode, self.colour_values = mode, values  # first: visibility handlers read it
        if mode == "class" and self._class_visible is not None:
            for s, visible in zip(self.scatters, self._class_visible):
                s.setVisible(visible)  # back to what the legend said
            self._class_visible = None
        elif mode != "class" and self._class_visible is None:
            self._class_visible = [s.isVisible() for s in self.scatters]
            for s in self.scatters:
                s.setVisible(False)
        self._beside_the_plot(self.colour_key if mode != "class" and values is not None
                              else self.legend)
        if mode == "class" or values is None:
            return
        if mode == "error":
            lo, hi = (float(v) for v in np.percentile(values, [1, 99]))
            hi = max(hi, lo + 1e-9)
            bins = np.clip(((values - lo) / (hi - lo) * ERROR_BINS).astype(int), 0, ERROR_BINS - 1)
            cmap = pg.colormap.get("viridis")
            colours = cmap.map(np.linspace(0, 1, ERROR_BINS), mode="qcolor")
            groups = [(bins == b, colours[b]) for b in range(ERROR_BINS)]
            self.colour_bar = pg.ColorBarItem(values=(lo, hi), colorMap=cmap, interactive=False,
                                              width=14)  # (its own label would cover the points)
            self.colour_key.setText("reconstruction<br>MSE per image")
            self.plot_item.layout.addItem(self.colour_bar, 2, 5)
        else:
            wrong = np.asarray(values, bool)
            groups = [(~wrong, pg.mkColor(KNN_RIGHT)), (wrong, pg.mkColor(KNN_WRONG))]
        for mask, colour in groups:
            sel = self.codes[mask]
            item = UniformScatter(x=sel[:, 0], y=sel[:, 1], size=5 if self.outlined else 4,
                                  pen=self._pen(),
                                  brush=pg.mkBrush(colour), pxMode=True, hoverable=False)
            item.setOpacity(self._points_opacity())
            self.plot_item.addItem(item)
            self.overlays.append(item)
        if mode == "knn":
            dot = '<span style="color:{}; font-size:14pt">&#9679;</span>'
            self.colour_key.setText(
                f"{dot.format(KNN_WRONG)} vote wrong ({int(np.sum(values)):,})<br>"
                f"{dot.format(KNN_RIGHT)} right ({int(np.size(values) - np.sum(values)):,})")

    def _beside_the_plot(self, item: pg.GraphicsWidget) -> None:
        """Show the class legend or the colouring's key in the cell beside the plot."""
        if item is self._beside:
            return
        layout = self.plot_item.layout
        layout.removeItem(self._beside)
        self._beside.setVisible(False)
        layout.addItem(item, 2, 3)
        layout.setAlignment(item, Qt.AlignmentFlag.AlignTop)
        item.setVisible(True)
        self._beside = item

    def set_mosaic(self, image: np.ndarray | None, rect: tuple[float, float, float, float] | None = None,
                   ) -> None:
        """Show ``image`` (row 0 at the bottom) over rect = (x0, x1, y0, y1); None hides it."""
        if image is None:
            self.mosaic_item.setVisible(False)
            self.mosaic_rect = None
            return
        x0, x1, y0, y1 = rect
        self.mosaic_item.setImage(image, levels=(0.0, 1.0), autoLevels=False)
        self.mosaic_item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.mosaic_item.setVisible(True)
        self.mosaic_rect = rect

    def _drop_stale_mosaic(self) -> None:
        """A mosaic that covers under a quarter of the view is hidden until the next one comes:
        when a run's view follows its spreading codes, the last mosaic had stood as a thin black
        strip at the old view's place for seconds.  (A pan, or a zoom in, keeps it meanwhile.)"""
        if self.mosaic_rect is None:
            return
        x0, x1, y0, y1 = self.visible_rect()
        m0, m1, n0, n1 = self.mosaic_rect
        inside = max(0.0, min(x1, m1) - max(x0, m0)) * max(0.0, min(y1, n1) - max(y0, n0))
        if inside < MOSAIC_KEPT_SHARE * (x1 - x0) * (y1 - y0):
            self.set_mosaic(None)

    def visible_rect(self) -> tuple[float, float, float, float]:
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        return float(x0), float(x1), float(y0), float(y1)

    def pointer_z(self) -> tuple[float, float] | None:
        """The plane's point under the mouse pointer; None where the pointer is not over the
        plot (a key pressed with the pointer on a dock)."""
        scene = self.mapToScene(self.viewport().mapFromGlobal(QCursor.pos()))
        if not self.underMouse() or not self.view_box.sceneBoundingRect().contains(scene):
            return None
        z = self.view_box.mapSceneToView(scene)
        return float(z.x()), float(z.y())

    def keyPressEvent(self, event) -> None:  # noqa: N802
        """Arrows nudge the decoded point (Shift: 10x); Ctrl+arrows pan and + and - zoom about
        the view's centre, as the mouse does (a keyboard user had no way to either)."""
        steps = {Qt.Key.Key_Left: (-1, 0), Qt.Key.Key_Right: (1, 0),
                 Qt.Key.Key_Up: (0, 1), Qt.Key.Key_Down: (0, -1)}
        zooms = {Qt.Key.Key_Plus: 1 / KEY_ZOOM, Qt.Key.Key_Equal: 1 / KEY_ZOOM,
                 Qt.Key.Key_Minus: KEY_ZOOM}
        if event.key() in steps and event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            x0, x1, y0, y1 = self.visible_rect()
            dx, dy = steps[event.key()]
            self.view_box.translateBy(x=dx * KEY_PAN * (x1 - x0), y=dy * KEY_PAN * (y1 - y0))
        elif event.key() in steps:
            scale = 0.1 if event.modifiers() & Qt.KeyboardModifier.ShiftModifier else 0.01
            dx, dy = steps[event.key()]
            self.nudged.emit(dx * scale, dy * scale)
            event.accept()
            return
        elif event.key() in zooms:
            f = zooms[event.key()]
            self.view_box.scaleBy((f, f), center=self.view_box.viewRect().center())
        else:
            super().keyPressEvent(event)
            return
        self.view_box.sigRangeChangedManually.emit(self.view_box.state["mouseEnabled"])
        event.accept()

    def set_class_visible(self, cls: int, visible: bool) -> None:
        self.scatters[cls].setVisible(visible)

    def class_visible(self, cls: int) -> bool:
        """Whether the legend shows the class in its colour (not hidden, not greyed out)."""
        if self._class_visible is not None:
            return self._class_visible[cls] and cls not in self.greyed
        return self.scatters[cls].isVisible() and cls not in self.greyed

    def fit_view(self) -> None:
        """Frame all codes with a small margin, far outliers left out (:func:`render.fit_view`)."""
        if len(self.codes) == 0:
            return
        x0, x1, y0, y1 = render.fit_view(self.codes)
        self.view_box.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)

    @property
    def equal_axes(self) -> bool:
        """One latent unit as long on both axes (the view's aspect locked)."""
        return bool(self.view_box.state["aspectLocked"])

    def set_equal_axes(self, equal: bool) -> None:
        """Lock one latent unit to the same length on both axes (the view widens on one axis
        to keep it), or let each axis fill the plot."""
        self.view_box.setAspectLocked(equal, ratio=1.0)

    def keep_framed(self) -> None:
        """Fit the view again only when the codes' frame has left it or fills less than
        ``FOLLOW_SLACK`` of it on either axis, and then with room to spare (the frame at the
        middle of that band): a training run's snapshots move the codes a little every few
        seconds, and a view that jumps with each is hard to watch (each refit also redraws the
        axes, on the GUI thread beside the training)."""
        if len(self.codes) == 0:
            return
        x0, x1, y0, y1 = render.fit_view(self.codes)
        v0, v1, w0, w1 = self.visible_rect()
        inside = v0 <= x0 and x1 <= v1 and w0 <= y0 and y1 <= w1
        snug_x, snug_y = (x1 - x0) >= FOLLOW_SLACK * (v1 - v0), (y1 - y0) >= FOLLOW_SLACK * (w1 - w0)
        # With equal axes the view is wider than the frame on one axis by design.
        snug = (snug_x or snug_y) if self.equal_axes else (snug_x and snug_y)
        if not (inside and snug):
            grow = (2 / (1 + FOLLOW_SLACK) - 1) / 2  # each side: the frame fills the band's middle
            dx, dy = grow * (x1 - x0), grow * (y1 - y0)
            self.view_box.setRange(xRange=(x0 - dx, x1 + dx), yRange=(y0 - dy, y1 + dy), padding=0)

    def set_path(self, points: np.ndarray | None) -> None:
        """Show the interpolation path (K, 2), or hide it with None."""
        if points is None:
            self.path_item.setVisible(False)
            for label in self.path_ends:
                label.setVisible(False)
            return
        self.path_item.setData(points[:, 0].astype(float), points[:, 1].astype(float))
        self.path_item.setVisible(True)
        for label, (x, y) in zip(self.path_ends, (points[0], points[-1])):
            label.setPos(float(x), float(y))
            label.setVisible(True)

    def set_drawn_marker(self, z: tuple[float, float] | None) -> None:
        """Show (or hide, with None) the drawn digit's code."""
        self._drawn_at = None if z is None else (float(z[0]), float(z[1]))
        if z is None:
            self.drawn_marker.setVisible(False)
            return
        self.drawn_marker.setData([float(z[0])], [float(z[1])])
        self.drawn_marker.setVisible(True)

    def _near_drawn_marker(self, x: float, y: float) -> bool:
        if not self.drawn_marker.isVisible():
            return False
        mx, my = self.drawn_marker.getData()
        px, py = self.view_box.viewPixelSize()
        return ((mx[0] - x) / px) ** 2 + ((my[0] - y) / py) ** 2 <= 12.0 ** 2

    def set_marker(self, x: float, y: float) -> None:
        self.marker.setData([x], [y])
        self.marker.setVisible(True)

    # --------------------------------------------------------------------------- mouse
    def mousePressEvent(self, ev) -> None:  # noqa: N802
        """A plain left press explores at once: the decoded image shows on the press, before
        pyqtgraph's own press handling and without waiting for the release (a click), and a
        drag goes on from there."""
        if ev.button() == Qt.MouseButton.LeftButton and not (ev.modifiers() & PAN_MODIFIERS):
            scene_pos = self.mapToScene(ev.position().toPoint())
            if (self.view_box.sceneBoundingRect().contains(scene_pos)  # not an axis
                    and not self.legend.sceneBoundingRect().contains(scene_pos)):
                p = self.view_box.mapSceneToView(scene_pos)
                self.pressed.emit(bool(self._near_drawn_marker(p.x(), p.y())))
                self.explored.emit(p.x(), p.y())
        super().mousePressEvent(ev)

    def _on_drag(self, x: float, y: float, started: bool, finished: bool) -> None:
        if started:
            self.dragging_drawn = self._near_drawn_marker(x, y)
            return
        if self.dragging_drawn:
            self.drawn_marker.setData([x], [y])
        self.explored.emit(x, y)
        if finished and self.dragging_drawn:
            # The star is the drawing's code: dropped, it goes home; the cross stays where the
            # drag ended, on the decoded point.
            self.dragging_drawn = False
            if self._drawn_at is not None:
                self.drawn_marker.setData([self._drawn_at[0]], [self._drawn_at[1]])
            self.drawnDropped.emit()

    def resizeEvent(self, ev) -> None:  # noqa: N802
        """pyqtgraph sizes the scene to the whole widget; the focus frame's border takes 2 px
        on each side, which cut the plot's bottom and right edges (the "z1" label) off: the
        scene is fitted to the viewport instead."""
        super().resizeEvent(ev)
        if self.autoPixelRange and not self.closed:
            self.range = QRectF(0, 0, self.viewport().width(), self.viewport().height())
            pg.GraphicsView.setRange(self, self.range, padding=0, disableAutoPixel=False)
            self.updateMatrix()

    def leaveEvent(self, ev) -> None:  # noqa: N802
        """The pointer left the map: no point is under it any more (the A and B keys must not
        take the last one it passed over)."""
        self._hover_timer.stop()
        self._hover_pos = None
        self._update_hover()
        super().leaveEvent(ev)

    def _on_move(self, scene_pos: QPointF) -> None:
        self._hover_pos = scene_pos
        self._hover_moved()

    def _hover_moved(self) -> None:
        """Look up the point under the pointer again, at most once a frame."""
        if self._hover_pos is not None and not self._hover_timer.isActive():
            self._hover_timer.start()

    def _update_hover(self) -> None:
        index = self.nearest_point(self._hover_pos) if self._hover_pos is not None else -1
        if index >= 0:  # (the same index may be a moved point: new codes under a still pointer)
            at = tuple(self.codes[index])
            if at != self._ring_at:  # (not set again once a frame for the same dot)
                self._ring_at = at
                self.hover_ring.setData([at[0]], [at[1]])
        self.hover_ring.setVisible(index >= 0)
        if index != self.hover_index:
            self.hover_index = index
            self.hovered.emit(index)

    def nearest_point(self, scene_pos: QPointF, radius_px: float = HOVER_RADIUS_PX) -> int:
        """Index of the visible data point nearest ``scene_pos`` within ``radius_px``, else -1."""
        if (len(self.codes) == 0 or not self.points_shown
                or not self.view_box.sceneBoundingRect().contains(scene_pos)):
            return -1
        p = self.view_box.mapSceneToView(scene_pos)
        px, py = self.view_box.viewPixelSize()
        if not (px > 0 and py > 0):
            return -1
        d2 = ((self.codes[:, 0] - p.x()) / px) ** 2 + ((self.codes[:, 1] - p.y()) / py) ** 2
        hidden = [c for c, s in enumerate(self.scatters) if not s.isVisible()]
        if hidden and self.colour_mode == "class":
            d2[np.isin(self.labels, hidden)] = np.inf
        i = int(np.argmin(d2))
        return i if d2[i] <= radius_px ** 2 else -1
