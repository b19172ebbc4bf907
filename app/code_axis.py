"""The map's horizontal axis, whose tick labels never run into each other.

pyqtgraph spaces major ticks by the axis's length alone and always labels every one of them. Far
from the origin at a deep zoom a label is long (``9000.0000002`` at a view 1e-6 wide), and on a
narrow map five of them ran together into one unreadable line.
"""
from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtGui import QFontMetrics

LABEL_GAP_PX = 12  # the least room between two neighbouring labels
THINNING = (1, 2, 5, 10, 20, 50, 100)  # label every so many ticks, on the 1-2-5 ladder


class CodeAxis(pg.AxisItem):
    """A bottom axis that labels only the ticks it has room for: pyqtgraph's major ticks where
    their labels fit (as it would), else the multiples of 2, 5, 10... times their spacing, or
    of its minor ticks' where no major tick has room for its label, or a middle tick alone. The
    ticks left unlabelled stay, as minor ticks."""

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list:
        levels = super().tickValues(minVal, maxVal, size)
        lo, hi = sorted((minVal, maxVal))
        if not levels or hi == lo or size <= 0:
            return levels
        px = size / (hi - lo)  # pixels per unit
        metrics = QFontMetrics(self.style["tickFont"] or self.font())
        for level, (spacing, values) in enumerate(levels[:2]):  # the major ticks, the minor
            if not values:
                continue
            need = LABEL_GAP_PX + max(  # the ends' labels are the widest
                metrics.horizontalAdvance(t)
                for t in self.tickStrings([values[0], values[-1]], self.scale, spacing))
            if level == 0 and spacing * px >= need:
                return levels  # room for them all: as pyqtgraph draws them
            inside = [v for v in values  # a label that would cross the end is not drawn
                      if min(v - lo, hi - v) * px >= (need - LABEL_GAP_PX) / 2]
            for step in THINNING:
                kept = [v for v in inside if round(v / spacing) % step == 0]
                if not kept:
                    break
                if len(kept) == 1 or step * spacing * px >= need:
                    return self._levels(levels, step * spacing, kept)
            if inside:  # no multiple has room: the middle one alone
                return self._levels(levels, spacing, [inside[len(inside) // 2]])
        return levels

    @staticmethod
    def _levels(levels: list, spacing: float, labelled: list[float]) -> list:
        """``labelled`` as the top level (labelled as precisely as ``spacing`` needs), every
        other tick pyqtgraph chose below it."""
        rest = [(s, [v for v in values if v not in labelled]) for s, values in levels]
        return [(spacing, labelled), *rest]
