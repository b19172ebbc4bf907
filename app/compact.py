"""Widgets that a narrow or short dock may squeeze to what their text needs, never below it."""
from __future__ import annotations

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QAbstractButton, QLabel, QWidget

PADDING = 18  # the style's frame and margins around a push button's text


def text_wide(button: QAbstractButton) -> QAbstractButton:
    """Let ``button`` shrink from the style's 80 px minimum to its text's width: at a 1000-px
    window the Draw dock's row of buttons was squeezed below that and read "pen image"."""
    button.setMinimumWidth(button.fontMetrics().horizontalAdvance(button.text()) + PADDING)
    return button


class FlowLabel(QLabel):
    """A word-wrapped label whose minimum height is that of its text at its present width.

    A plain word-wrapped label makes its panel's layout height-for-width, and a scroll area then
    keeps such a panel at its *preferred* height: at 1000 x 700 the Draw dock scrolled although
    everything fitted at the images' minimum sizes.  This one tells its layout nothing about
    height-for-width and asks instead for the lines its text wraps to, again at every resize."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)
        self._fit()

    def setText(self, text: str) -> None:  # noqa: N802
        super().setText(text)
        self._fit()

    def sizeHint(self) -> QSize:  # noqa: N802
        """As wide as QLabel asks, as high as its lines at the present width (no blank lines
        around a one-line text in a roomy panel)."""
        return QSize(super().sizeHint().width(), self.minimumHeight())

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        policy = self.sizePolicy()  # (QLabel turns height-for-width back on with every text)
        if policy.hasHeightForWidth():
            policy.setHeightForWidth(False)
            self.setSizePolicy(policy)
        self.setMinimumHeight(0)  # (QLabel never answers a height below its minimum)
        self.setMinimumHeight(max(0, self.heightForWidth(max(1, self.width()))))
