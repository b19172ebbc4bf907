"""The page the window shows when there is neither a model nor data: what to do next."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

APP_NAME = "CAE Latent Explorer"


class WelcomePage(QWidget):
    """Shown when there is neither a model nor data: says what to do."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        text = QLabel(f"<h2>{APP_NAME}</h2>There is no model and no dataset yet.<br>Download MNIST "
                      "(about 11 MB), choose a dataset's folder (the four IDX files of MNIST or its like, "
                      "or pictures in one subfolder per class), or open a trained model "
                      "(.safetensors).")
        text.setWordWrap(True)
        self.download_button = QPushButton("Download MNIST")
        self.folder_button = QPushButton("Choose data folder…")
        self.open_button = QPushButton("Open model…")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QVBoxLayout()
        for w in (text, self.download_button, self.folder_button, self.open_button, self.message):
            box.addWidget(w)
        box.addStretch(1)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(box, 2)
        outer.addStretch(1)
