"""Help ▸ Keys and mouse: every shortcut the menus hold (read from them, so the sheet cannot
drift from what the keys do) and the map's and drawing pad's own keys and mouse gestures."""
from __future__ import annotations

from html import escape

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (QApplication, QDialog, QDialogButtonBox, QFrame, QMenuBar,
                               QTextBrowser, QVBoxLayout, QWidget)

# What no menu holds: keys and gestures that belong to one widget.
WIDGET_KEYS: list[tuple[str, str, str]] = [  # (what it does: capitalised as the menus' rows)
    ("Map", "Press or left-drag", "Decode the point under the cursor"),
    ("Map", "Shift+drag, Ctrl+drag or middle-drag", "Pan"),
    ("Map", "Wheel or right-drag", "Zoom"),
    ("Map", "Click a legend entry", "Hide or show that class"),
    ("Map", "Drag the red star",
     "Decode along the way from the drawn digit's code (it goes back when dropped)"),
    ("Map", "Arrow keys (Shift: 10x)", "Nudge the decoded point"),
    ("Map", "+ (or =) and -", "Zoom in and out"),
    ("Map", "Ctrl+arrow keys", "Pan"),
    ("Images", "Enter in z1 or z2", "Decode the typed point; the keys go back to the map"),
    ("Draw", "Left-drag on the pad", "Draw (Open… reads a picture instead)"),
    ("Draw", "Esc or Delete", "Clear the drawing (Ctrl+Z brings it back)"),
    ("Stop question", "Esc", "Continue training"),
    ("Window", "Drop a file or folder on it",
     "Open a model (.safetensors), load a dataset's folder, or draw a picture on the pad"),
]


def menu_shortcuts(menu_bar: QMenuBar) -> list[tuple[str, str, str]]:
    """(menu, keys, what) for every menu action that has a shortcut, in menu order."""
    rows = []
    for top in menu_bar.actions():
        menu = top.menu()
        if menu is None:
            continue
        for action in menu.actions():
            keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if keys:
                rows.append((top.text().replace("&", ""), keys,
                             action.text().replace("&", "").rstrip("…")))
    return rows


def keys_html(menu_bar: QMenuBar) -> str:
    """The sheet as an HTML table."""
    rows = "".join(
        f"<tr><td>{escape(where)}</td><td><b>{escape(keys)}</b></td><td>{escape(what)}</td></tr>"
        for where, keys, what in [*menu_shortcuts(menu_bar), *WIDGET_KEYS])
    return ("<table cellspacing='0' cellpadding='3'><tr><th align='left'>Where</th>"
            f"<th align='left'>Keys or mouse</th><th align='left'>Does</th></tr>{rows}</table>"
            "<p>Single-letter keys act wherever the keyboard focus is, except in a text field.</p>")


class KeysSheet(QDialog):
    """The sheet in a window of its own, left open while the user tries the keys; it scrolls
    where the screen is shorter than the sheet (1280 x 800 at 150 % left its last rows and the
    Close button off the screen)."""

    def __init__(self, parent: QWidget, menu_bar: QMenuBar) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keys and mouse")
        self.html = keys_html(menu_bar)
        self.browser = QTextBrowser()
        self.browser.setHtml(self.html)
        self.browser.setFrameShape(QFrame.Shape.NoFrame)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        document = self.browser.document()
        document.setTextWidth(620)
        room = (parent.screen() or QApplication.primaryScreen()).availableGeometry()
        self.resize(min(660, room.width() - 40),
                    min(int(document.size().height()) + buttons.sizeHint().height() + 60,
                        room.height() - 80))

def show_keys(parent: QWidget, menu_bar: QMenuBar) -> KeysSheet:
    """Open the sheet, non-modal."""
    sheet = KeysSheet(parent, menu_bar)
    sheet.setModal(False)
    sheet.show()
    return sheet
