"""How the side docks share the window with the map: narrowed in proportion when a small window
leaves the map less than its share, widened back when the window grows again, their panels
scrolled where the window is too short (or the screen too narrow) for them, and never left
holding the keyboard focus behind another tab."""
from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QObject, QRect, QSize, Qt, QTimer
from PySide6.QtWidgets import (QApplication, QDockWidget, QFrame, QMainWindow, QScrollArea,
                               QSizePolicy, QStyle, QWidget)

# The map is what the window is for: it never gets narrower than this, and when the window
# shrinks the side docks give up width first, down to their own minimum.
MAP_MIN_WIDTH, MAP_MIN_HEIGHT = 300, 300
MAP_SHARE = 0.4  # of the window's width, kept for the map while the docks can shrink


def grow_only(widget: QWidget) -> None:
    """``widget`` (a plot, a table) takes the height its dock has but asks for none beyond its
    minimum: a dock's panel, which scrolls below its size, then scrolls only below its minimum
    size (the loss plot's preferred height made the Training panel scroll at 1280 x 800)."""
    policy = widget.sizePolicy()
    policy.setVerticalPolicy(QSizePolicy.Policy.Ignored)
    widget.setSizePolicy(policy)


class PanelScroll(QScrollArea):
    """A dock's panel in a scroll area.  With ``whole``, the area is as wide as the panel needs,
    so the docks share the window as they did without it, and scrolls only when the window is
    shorter than the panel; on a small screen (:func:`fit_screen`), and always
    without ``whole``, it may also be narrower than the panel, down to ``compact_width``."""

    def __init__(self, panel: QWidget, compact_width: int, max_width: int | None = None,
                 whole: bool = True) -> None:
        super().__init__()
        self.setWidget(panel)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.compact_width, self.compact = compact_width, not whole
        if max_width is not None:
            self.setMaximumWidth(max_width)
        panel.installEventFilter(self)

    def make_compact(self) -> None:
        self.compact = True
        self.updateGeometry()

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        if self.compact:
            return QSize(self.compact_width, 80)
        # The panel's width, and room for a vertical scroll bar (which would otherwise narrow
        # the panel and bring a horizontal one too).
        bar = self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent)
        return QSize(self.widget().minimumSizeHint().width() + bar, 80)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()  # the panel's own minimum changed
        return False


def fit_screen(window: QMainWindow, room: QRect) -> None:
    """On a screen narrower than the window's natural minimum (a projector's 1024 x 768 at
    large text, 1280 x 800 at 150 %), the docks' panels scroll sideways too, so the whole
    window fits; done before its first size is set."""
    if window.minimumSizeHint().width() > room.width():
        for area in window.findChildren(PanelScroll):
            area.make_compact()
        for dock in window.findChildren(QDockWidget):  # now, for the window's first size
            dock.layout().activate()
        window.layout().activate()


def bring_forward(dock: QDockWidget) -> None:
    """Show ``dock`` and put it in front of its tab group: turned back on, or behind another
    tab (which counts as visible), it stayed out of sight."""
    if not dock.toggleViewAction().isChecked():
        dock.show()
    if dock.visibleRegion().isEmpty():
        dock.raise_()


class DockLayout(QObject):
    """Installed on a main window whose docks are built; ``focus_home`` takes the keyboard
    focus from a dock that goes out of sight."""

    def __init__(self, window: QMainWindow, focus_home: QWidget) -> None:
        super().__init__(window)
        self.window, self.focus_home = window, focus_home
        # Docks fit() narrowed: (the width they had, the width they were given).
        self._narrowed: dict[QDockWidget, tuple[int, int]] = {}
        window.installEventFilter(self)
        for dock in window.findChildren(QDockWidget):
            dock.visibilityChanged.connect(
                lambda visible, d=dock: visible or self._release_focus_from(d))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.window and event.type() == QEvent.Type.Resize:
            QTimer.singleShot(0, self, self.fit)  # once the layout has placed the docks
        return False

    def fit(self) -> None:
        """Narrow the left and right docks (in proportion) when they leave the map less than
        its share of the window, and widen them back, as far as the map's share allows, when
        the window grows again; the widths the user set are otherwise left alone."""
        w = self.window
        sides = []
        for area in (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea):
            docks = [d for d in w.findChildren(QDockWidget) if w.dockWidgetArea(d) == area
                     and d.isVisible() and not d.isFloating()]
            if docks:  # tabbed docks share one width: the one in front stands for them (one
                # behind its tab keeps a stale width), else the one fit() last narrowed
                sides.append(max(docks, key=lambda d: (not d.visibleRegion().isEmpty(),
                                                       d in self._narrowed, d.width())))
        short = max(MAP_MIN_WIDTH, math.ceil(MAP_SHARE * w.width())) - w.centralWidget().width()
        used = sum(d.width() for d in sides)
        if sides and short > 0:  # (each dock's part rounded up: the map gets all of its share)
            widths = [max(1, d.width() - -(-short * d.width() // used)) for d in sides]
            for dock, width in zip(sides, widths):
                self._narrowed[dock] = (self._narrowed.get(dock, (dock.width(), 0))[0], width)
            w.resizeDocks(sides, widths, Qt.Orientation.Horizontal)
            return
        for dock, (before, given) in list(self._narrowed.items()):
            if dock not in sides or dock.width() >= before or dock.width() < given - 8:
                del self._narrowed[dock]  # back to its width, hidden, or narrowed by the user
        grow = [d for d in sides if d in self._narrowed]
        missing = sum(self._narrowed[d][0] - d.width() for d in grow)
        if grow and short < 0:
            give = min(missing, -short)
            w.resizeDocks(grow, [d.width() + give * (self._narrowed[d][0] - d.width()) // missing
                                 for d in grow], Qt.Orientation.Horizontal)

    def _release_focus_from(self, dock: QDockWidget) -> None:
        """A dock gone behind another tab (or closed) gives up the keyboard focus: keys typed
        afterwards (A and B for the interpolation, say) went into a text field the user could
        no longer see."""
        focus = QApplication.focusWidget()
        if focus is not None and dock.isAncestorOf(focus):
            self.focus_home.setFocus(Qt.FocusReason.OtherFocusReason)
