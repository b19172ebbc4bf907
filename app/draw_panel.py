"""The "Draw a digit" dock: the pad, what the model sees (the preprocessing steps), its
reconstruction and error, and the drawn digit's nearest training digits with their vote."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImageReader
from PySide6.QtWidgets import (QGridLayout, QHBoxLayout, QLabel, QPushButton,
                               QVBoxLayout, QWidget)

from cae.metrics import error_rank
from cae.preprocess import MNIST_FRAMING, Framing, Preprocessed

from .drawing_pad import PAD_SIZE, DrawingPad
from . import file_dialogs
from .compact import FlowLabel, text_wide
from .image_view import ImageView
from .spin_box import SpinBox
from .z_text import z_pair

N_NEIGHBOURS = 5
# A drawing whose ink spans less than this share of the pad is much smaller than a digit drawn
# to fill it; the recipe enlarges it to the same box all the same (MNIST's 20 px), which surprises.
SMALL_DRAWING = 0.2
# A drawing reconstructed worse than this share (per cent) of the test images is unlike them.
UNLIKE_TEST = 99.0


def _captioned(view: ImageView, caption: str) -> tuple[QWidget, QLabel]:
    box = QWidget()
    lay = QVBoxLayout(box)
    lay.setContentsMargins(0, 0, 0, 0)
    lay.addWidget(view)
    label = QLabel(caption)
    lay.addWidget(label)
    return box, label


class DrawPanel(QWidget):
    imageOpened = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pad = DrawingPad()
        self.pad.add_keys(self)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # a click on its blank space: its keys
        clear = QPushButton("Clear")
        clear.setToolTip("Esc or Delete")
        clear.clicked.connect(self.pad.clear)
        undo = QPushButton("Undo")
        undo.setToolTip("Ctrl+Z: take back the last stroke, clear or opened image "
                        "(Ctrl+Shift+Z brings it back)")
        undo.clicked.connect(self.pad.undo)
        undo.setEnabled(False)
        self.pad.undoAvailable.connect(undo.setEnabled)
        redo = QPushButton("Redo")
        redo.setToolTip("Ctrl+Shift+Z: bring back what Undo took back")
        redo.clicked.connect(self.pad.redo)
        redo.setEnabled(False)
        self.pad.redoAvailable.connect(redo.setEnabled)
        self.undo_button, self.redo_button = undo, redo
        open_button = QPushButton("Open…")
        open_button.setToolTip("Open an image of a digit (PNG, JPEG, ...), fitted to the pad")
        open_button.clicked.connect(lambda: self.open_image())  # (not the `checked` flag)
        self.pen = SpinBox()
        self.pen.setRange(4, 80)
        self.pen.setValue(int(self.pad.pen_width))
        self.pen.setPrefix("✎ ")  # (a number alone beside the buttons said nothing)
        self.pen.setSuffix(" px")
        self.pen.setToolTip("Pen width, 4 to 80 px")
        self.pen.setMinimumWidth(self.pen.sizeHint().width())  # its text whole, "28 px"
        self.pen.valueChanged.connect(self.pad.set_pen_width)
        # One row that fits the 320-px dock of a 1024-px window (there "Open image…" and "pen"
        # had run over each other); a second row would make the panel scroll at 700 px high.
        buttons = QHBoxLayout()
        buttons.setSpacing(3)
        for w in (text_wide(clear), text_wide(undo), text_wide(redo), text_wide(open_button),
                  self.pen):
            buttons.addWidget(w)

        # One row from the ink to the reconstruction, so the whole panel fits a 800-px-high window.
        self.step_views = [ImageView(44) for _ in range(3)]
        self.recon_view = ImageView(48, preferred=112)  # 48: fits a 700-px-high window
        steps = QHBoxLayout()
        captions = [_captioned(view, caption) for view, caption in
                    zip(self.step_views, ("cropped", f"{MNIST_FRAMING.box} px", "28x28"))]
        for box, _ in captions:
            steps.addWidget(box)
        self.box_caption = captions[1][1]  # the framing's box (set_framing)
        self.field_caption = captions[2][1]  # and its field, the model's image size
        self.framing = MNIST_FRAMING
        self.input_view = self.step_views[2]  # the centred 28x28 image is the model's input
        steps.addWidget(QLabel("→"))
        steps.addWidget(_captioned(self.recon_view, "decoded")[0])
        self.hint = "draw a digit"  # what an empty pad asks for (set_noun: the dataset's images)
        self.noun = "digits"
        self.result_label = FlowLabel(self.hint)
        self._result = self.hint  # what the result line says of the drawing

        self.neighbour_views = [ImageView(36) for _ in range(N_NEIGHBOURS)]
        self.neighbour_labels: list[QLabel] = []
        grid = QGridLayout()
        for i, view in enumerate(self.neighbour_views):
            box, label = _captioned(view, "")
            grid.addWidget(box, 0, i)
            self.neighbour_labels.append(label)
        self.vote_label = QLabel("")

        layout = QVBoxLayout(self)
        layout.addWidget(self.pad)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("<b>What the model sees</b> and its reconstruction"))
        layout.addLayout(steps)
        layout.addWidget(self.result_label)
        self.neighbours_title = QLabel(f"<b>{N_NEIGHBOURS} nearest training digits</b> (latent space)")
        layout.addWidget(self.neighbours_title)
        layout.addLayout(grid)
        layout.addWidget(self.vote_label)
        layout.addStretch(1)
        self.setMinimumWidth(PAD_SIZE + 24)

    def set_framing(self, framing: Framing) -> None:
        """Frame drawings as the model's training images are (Fashion-MNIST's fill the field;
        a model of 32-px images reads 32x32)."""
        self.framing = framing
        self.box_caption.setText(f"{framing.box} px")
        self.field_caption.setText(f"{framing.field}x{framing.field}")

    def set_noun(self, noun: str) -> None:
        """Name the dataset's images ("digits", or "images" for any other set) in the texts."""
        self.noun = noun
        self.hint = "draw a digit" if noun == "digits" else "draw something like the training images"
        self.neighbours_title.setText(f"<b>{N_NEIGHBOURS} nearest training {noun}</b> (latent space)")

    def open_image(self, path: str | None = None) -> bool:
        if path is None:
            path = file_dialogs.open_file(self, "Open an image of a digit",
                                          "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff "
                                          "*.webp)")
            if not path:
                return False
        reader = QImageReader(path)
        size = reader.size()  # from the header, before any pixel is decoded
        image = reader.read()
        if image.isNull():
            too_large = size.isValid() and (
                size.width() * size.height() * 4 > QImageReader.allocationLimit() * 2**20)
            self._say_unchanged(
                f"{path} is too large to open ({size.width():,} x {size.height():,} pixels)"
                if too_large else f"could not read {path} as an image")
            return False
        if not self.pad.load_image(image):
            self._say_unchanged(f"{path} is blank (no ink anywhere)")
            return False
        self.imageOpened.emit(path)
        return True

    def _say_unchanged(self, problem: str) -> None:
        """Why an image was not opened, above what the result line says of the drawing, which
        stays (it had been replaced until the next stroke)."""
        self.result_label.setText(f"{problem}: the pad is unchanged\n{self._result}")

    def _set_result(self, text: str) -> None:
        self._result = text
        self.result_label.setText(text)

    def show_empty(self, why: str | None = None) -> None:
        """Nothing to reconstruct: the hint to draw, or ``why`` the pad's content gave nothing."""
        for view in (*self.step_views, self.recon_view, *self.neighbour_views):
            view.set_image(None)
        for label in self.neighbour_labels:
            label.setText("")
        self._set_result(why or self.hint)
        self.vote_label.setText("")

    def show_result(self, pre: Preprocessed, reconstruction: np.ndarray, z: np.ndarray,
                    percentiles: list[float] | None = None) -> float:
        """Show the steps and the reconstruction, its error placed among the test images'
        (``percentiles``, from the metrics, when known): a scribble reconstructs worse than
        nearly all of them, and says so.  Returns the reconstruction MSE it displays."""
        self.step_views[0].set_image(pre.cropped)
        self.step_views[1].set_image(pre.scaled)
        self.input_view.set_image(pre.image)
        self.recon_view.set_image(reconstruction)
        mse = float(np.mean((reconstruction - pre.image) ** 2))
        text = f"z = {z_pair(z[0], z[1])}   reconstruction MSE {mse:.4f}"
        if percentiles:  # ("above 6 % of test digits" read as a score)
            rank = error_rank(mse, percentiles)
            text += (f" (every test {self.noun[:-1]} reconstructs better)" if rank >= 100 else
                     f" ({rank:.{1 if rank >= UNLIKE_TEST else 0}f}\u00a0% of test {self.noun} "
                     "reconstruct better)")
            if rank >= UNLIKE_TEST:
                text += f"\nunlike the {self.noun} the model learned from"
        if max(pre.cropped.shape) < SMALL_DRAWING * self.pad.ink_size:
            text += (f"\na small drawing: like every drawing (and the training {self.noun}) it "
                     f"is enlarged to fill the {self.framing.box}-px box")
        self._set_result(text)
        return mse

    def show_neighbours(self, images: np.ndarray | None, labels: list[str], vote: str,
                        files: list[str] | None = None) -> None:
        """The nearest training images and their labels; ``files`` (a folder of pictures)
        name their pictures in the tooltips."""
        if images is None:
            for view, label in zip(self.neighbour_views, self.neighbour_labels):
                view.set_image(None)
                view.setToolTip("")
                label.setText("…")
            self.vote_label.setText(vote)
            return
        for i, (view, label, image, name) in enumerate(zip(self.neighbour_views,
                                                           self.neighbour_labels, images, labels)):
            view.set_image(image / 255.0)
            view.setToolTip(files[i] if files else "")
            label.setText(name)
        self.vote_label.setText(vote)
