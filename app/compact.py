"""Buttons that a narrow dock may squeeze to their text, never below it."""
from __future__ import annotations

from PySide6.QtWidgets import QAbstractButton

PADDING = 18  # the style's frame and margins around a push button's text


def text_wide(button: QAbstractButton) -> QAbstractButton:
    """Let ``button`` shrink from the style's 80 px minimum to its text's width: at a 1000-px
    window the Draw dock's row of buttons was squeezed below that and read "pen image"."""
    button.setMinimumWidth(button.fontMetrics().horizontalAdvance(button.text()) + PADDING)
    return button
