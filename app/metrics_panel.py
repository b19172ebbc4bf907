"""The metrics dock: test MSE, per-class MSE as bars, 5-NN accuracy and its confusion matrix."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QBrush, QColor, QFontMetrics
from PySide6.QtWidgets import (QHeaderView, QLabel, QTableWidget, QTableWidgetItem, QToolTip,
                               QVBoxLayout, QWidget)

from .dock_layout import grow_only


BAR_HEIGHT = 0.7  # of a class's row
CELL_MARGIN_PX = 1  # each side of a confusion count (the style's own padding is wider)
LABEL_FILL = 0.75  # the class names' text may fill this much of the bars' axis (else every other)
TABLE_FONT_SCALE = 0.85  # ten four-digit counts then fit a dock of ~320 px without scrolling

def _numbered(class_names: tuple[str, ...]) -> list[str]:
    """'3 Dress' for a named class, plain '3' where the name is the number itself (MNIST)."""
    return [name if name == str(i) else f"{i} {name}" for i, name in enumerate(class_names)]

class MetricsPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.summary = QLabel("no metrics yet")
        self.summary.setWordWrap(True)
        self.summary.setToolTip(
            "Test MSE: the mean squared error of the test images as shown, the model's output "
            "clamped to [0, 1] (what cae evaluate reports). The Training tab's test loss is the "
            "unclamped output's, so it reads a little higher.\n5-NN accuracy: each test code "
            "voted by the labels of its 5 nearest training codes.")
        self.bars_plot = pg.PlotWidget(background="w")
        self.bars_plot.setMinimumHeight(150)
        plot = self.bars_plot.getPlotItem()
        plot.setLabel("bottom", "test MSE")
        plot.getAxis("bottom").enableAutoSIPrefix(False)  # plain values, never "(x0.001)"
        plot.setMenuEnabled(False)
        plot.invertY(True)  # the first class on top, as in the table below
        plot.getAxis("left").setStyle(textFillLimits=[(0, LABEL_FILL)])
        # Horizontal bars: a class name of any length fits beside its bar ("T-shirt/top",
        # "Sneaker" and "Ankle boot" overlapped as labels under vertical bars).
        self.bars = pg.BarGraphItem(x0=0, y=[], width=[], height=BAR_HEIGHT, brush="#0072B2")
        self.bars_plot.addItem(self.bars)
        self.bar_tips: list[str] = []  # per class: its name, value and count, shown on hover
        self.bars_plot.viewport().installEventFilter(self)
        self.table = QTableWidget()
        grow_only(self.bars_plot)
        grow_only(self.table)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        # One stop for Tab, not a hundred (it wrapped round the cells and never left), and no
        # selection, whose blue read as a diagonal count; each cell's tooltip stays.
        self.table.setTabKeyNavigation(False)
        self.table.setSelectionMode(QTableWidget.SelectionMode.NoSelection)
        self.table.setMinimumHeight(200)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        font = self.table.font()
        font.setPointSizeF(font.pointSizeF() * TABLE_FONT_SCALE)
        self.table.setFont(font)
        self.table.setStyleSheet(f"QTableWidget::item {{ padding: 0px {CELL_MARGIN_PX}px; }}")
        rows = self.table.verticalHeader()  # rows share the height, down to their text's: ten
        rows.setMinimumSectionSize(QFontMetrics(font).height() + 2 * CELL_MARGIN_PX)  # fit
        rows.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)  # a short dock unscrolled
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(QLabel("<b>Per-class reconstruction MSE</b>"))
        layout.addWidget(self.bars_plot, 2)  # 2:3, all ten names at 1280 x 800
        layout.addWidget(QLabel("<b>5-NN confusion</b> (rows: true label, columns: vote)"))
        layout.addWidget(self.table, 3)
        self.metrics: dict | None = None

    def show_metrics(self, metrics: dict, class_names: tuple[str, ...], source: str,
                     noun: str = "images") -> None:
        """``noun``: what the dataset's images are called ("digits" for MNIST)."""
        self.metrics = metrics
        n = len(class_names)
        self.summary.setText(
            f"<b>{source}</b><br>test MSE (clamped) <b>{metrics['test_mse']:.4f}</b> · 5-NN accuracy "
            f"<b>{100 * metrics['knn5_accuracy']:.2f}\u00a0%</b> ({metrics['n_test']:,} test points voted by "
            f"{metrics['n_train']:,} training points)")
        per_class = np.nan_to_num(np.asarray(metrics["per_class_mse"], float))
        self.bars.setOpts(x0=0, y=np.arange(n), width=per_class, height=BAR_HEIGHT)
        numbered = _numbered(class_names)
        confusion = np.asarray(metrics["knn5_confusion"])
        counts = confusion.sum(axis=1)
        self.bar_tips = [
            f"{name}: test MSE {mse:.4f} over {int(count):,} test {noun}; 5-NN vote right for "
            f"{100 * confusion[i, i] / count:.1f}\u00a0%" if count else f"{name}: no test {noun}"
            for i, (name, mse, count) in enumerate(zip(numbered, per_class, counts))]
        # Every other class's name on a second tick level, which pyqtgraph draws only where the
        # axis has room for all of them (ten names in a short dock overlapped).
        ticks = list(enumerate(numbered))
        self.bars_plot.getPlotItem().getAxis("left").setTicks([ticks[::2], ticks[1::2]])
        self.bars_plot.getPlotItem().autoRange()
        self.table.setRowCount(n)
        self.table.setColumnCount(n)
        # Numbers head the rows and columns (the bars above pair each with its name; the
        # headers' tooltips name it too), so ten columns fit the dock without scrolling; names
        # as short as numbers (letters A L O T X) head them themselves.
        short = all(len(str(c)) <= 2 for c in class_names) and len(class_names) == n
        for i, name in enumerate(numbered):
            text = str(class_names[i]) if short else str(i)
            for header, set_item in ((QTableWidgetItem(text), self.table.setHorizontalHeaderItem),
                                     (QTableWidgetItem(text), self.table.setVerticalHeaderItem)):
                header.setToolTip(name)
                set_item(i, header)
        row_totals = np.maximum(confusion.sum(axis=1, keepdims=True), 1)
        for i in range(n):
            for j in range(n):
                item = QTableWidgetItem(str(int(confusion[i, j])))
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                item.setToolTip(f"true {numbered[i]}, voted {numbered[j]}: {int(confusion[i, j]):,}")
                share = confusion[i, j] / row_totals[i, 0]
                base = (0, 114, 178) if i == j else (213, 94, 0)
                item.setBackground(QBrush(QColor(*base, int(30 + 200 * share) if confusion[i, j] else 0)))
                self.table.setItem(i, j, item)
        # Columns share the dock's width but never get narrower than the widest count ("1095"
        # showed as "1…" at 1280x800): a narrow dock scrolls instead.
        font = self.table.fontMetrics()
        widest = max(font.horizontalAdvance(str(int(v))) for v in confusion.flat)
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(widest + 2 * CELL_MARGIN_PX)
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        """Qt's tooltip moment over the bars (after the hover delay, then at once while one
        shows): the class's value under the pointer, over its bar, its row or its name, as each
        confusion cell gives its count (the axis shows no values, and names only every other
        class when the dock is short).  Qt's scene would hide any tip where no item has one."""
        if watched is self.bars_plot.viewport() and event.type() == QEvent.Type.ToolTip:
            tip = self.bar_tip_at(self.bars_plot.mapToScene(event.pos()))
            if tip:
                QToolTip.showText(event.globalPos(), tip, self.bars_plot.viewport())
            else:
                QToolTip.hideText()
            return True
        return super().eventFilter(watched, event)

    def bar_tip_at(self, scene_pos: QPointF) -> str:
        """The tip for the class whose row holds ``scene_pos``; empty off the rows."""
        plot = self.bars_plot.getPlotItem()
        y = plot.getViewBox().mapSceneToView(scene_pos).y()
        row = round(y)
        inside = (plot.sceneBoundingRect().contains(scene_pos) and 0 <= row < len(self.bar_tips)
                  and abs(y - row) <= 0.5)
        return self.bar_tips[row] if inside else ""

    def clear(self, text: str = "no metrics yet") -> None:
        self.metrics = None
        self.bar_tips = []
        self.summary.setText(text)
        self.bars.setOpts(y=[], width=[])
        self.table.setRowCount(0)
