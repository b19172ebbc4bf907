"""Exploring the map: click or drag to decode, arrow keys to nudge, typed z, hovered digits.

Decodes run on the GUI thread (one small decode, about a millisecond) and are throttled, not
debounced: a drag decodes at most once per display frame and always ends on its last point.
"""
from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, Slot
from PySide6.QtWidgets import QLabel, QLineEdit

from .image_view import ImageView
from .latent_map import LatentMap
from .session import Session
from .z_text import z_number, z_pair

DECODE_INTERVAL_MS = 16  # drags decode at most at the display rate
# Typed values beyond this are refused: far past any code, where float32 decodes are still finite
# (1e300 overflowed float32 to inf and decoded to nothing).
TYPED_Z_LIMIT = 1e9


class ExploreController(QObject):
    decoded = Signal(float, float)  # a latent point was decoded and shown

    def __init__(self, session: Session, map_: LatentMap, decoded_view: ImageView, z_label: QLabel,
                 z_edits: tuple[QLineEdit, QLineEdit], hover_view: ImageView, hover_label: QLabel,
                 coords_label: QLabel, hover_title: QLabel) -> None:
        super().__init__(session)
        self.session, self.map = session, map_
        self.decoded_view, self.z_label, self.z_edits = decoded_view, z_label, z_edits
        self.hover_view, self.hover_label, self.hover_title = hover_view, hover_label, hover_title
        self.coords_label = coords_label
        self.decode_count = 0
        self.last_decode_ms = 0.0
        self._decode_times: list[float] = []  # when the decodes of the last second happened
        self._pending: tuple[float, float] | None = None
        self._timer = QTimer(self)
        self._timer.setInterval(DECODE_INTERVAL_MS)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._decode_pending)
        map_.explored.connect(self.request_decode)
        map_.nudged.connect(self.nudge)
        map_.hovered.connect(self._on_hover)
        for edit in z_edits:  # Enter decodes and hands the keys to the map (arrows, A and B)
            edit.returnPressed.connect(lambda: self.go_to_typed_z() and self.map.setFocus())
        session.decoderChanged.connect(self._redecode)
        session.modelChanged.connect(self._warm_up)
        session.datasetChanged.connect(self._on_dataset)

    @Slot(float, float)
    def request_decode(self, x: float, y: float) -> None:
        """Decode now if idle, else at the next display tick (drags coalesce to <= 60 Hz)."""
        self._pending = (x, y)
        if not self._timer.isActive():
            self._decode_pending()

    @Slot()
    def _decode_pending(self) -> None:
        if self._pending is None or self.session.models.model is None:
            return
        x, y = self._pending
        self._pending = None
        t0 = time.perf_counter()
        image = self.session.models.decode_one(x, y)
        now = time.perf_counter()
        self.last_decode_ms = 1e3 * (now - t0)
        self.decode_count += 1
        self._decode_times = [t for t in self._decode_times if now - t < 1.0] + [now]
        self.session.set_decoded((x, y))
        self.decoded_view.set_image(image)
        self.decoded_view.repaint()  # the image first, before the map redraws its marker
        self.map.set_marker(x, y)
        self.z_label.setText(f"z = {z_pair(x, y)}")
        for edit, value in zip(self.z_edits, (x, y)):  # Go then means "here", not an old point
            if not edit.hasFocus():  # never under the user's typing
                edit.setText(z_number(value))
        self.coords_label.setText(f"z1 {z_number(x, True)}  z2 {z_number(y, True)}  ·  "
                                  f"decode {self.last_decode_ms:.1f} ms  ·  "
                                  f"{len(self._decode_times)} decode"
                                  f"{'' if len(self._decode_times) == 1 else 's'}/s")
        self._timer.start()
        self.decoded.emit(x, y)

    def stop(self) -> None:
        self._timer.stop()

    @Slot()
    def _redecode(self) -> None:
        """New weights draw the decoded point anew (a snapshot, a scrub, another model), as an
        event of its own: a snapshot's handler already re-plots the map, and the GUI stays
        responsive between the two."""
        if self.session.decoded_z is not None:
            QTimer.singleShot(0, self._decode_again)

    @Slot()
    def _decode_again(self) -> None:
        """The decoded point with the weights of now, unless a newer point waits (it will be
        decoded with them anyway)."""
        if self._pending is None and self.session.decoded_z is not None:
            self.request_decode(*self.session.decoded_z)

    @Slot()
    def _warm_up(self) -> None:
        """The first decode builds the CPU kernels (~50 ms): do it now, not on the user's click."""
        QTimer.singleShot(0, lambda: self.session.models.model is not None
                          and self.session.models.decode_one(0.0, 0.0))

    @Slot(float, float)
    def nudge(self, fx: float, fy: float) -> None:
        """Move the decoded point by a fraction of the visible width/height (arrow keys); with
        equal axes, of the shorter of the two on both (a unit is as long on both axes there, and
        so is a step)."""
        z = self.session.decoded_z
        if z is None:
            return
        x0, x1, y0, y1 = self.map.visible_rect()
        w, h = x1 - x0, y1 - y0
        if self.map.equal_axes:
            w = h = min(w, h)
        self.request_decode(z[0] + fx * w, z[1] + fy * h)

    def go_to_typed_z(self) -> bool:
        """Decode the z typed into the two fields; anything but two finite numbers is refused."""
        try:
            z = tuple(_number(edit.text()) for edit in self.z_edits)
        except ValueError:
            self.session.error.emit("Not a latent point",
                                    "Type two numbers, z1 and z2 (e.g. 0.5 and -1.2; a decimal "
                                    "comma, 0,5, is read as a point too).")
            return False
        if not all(np.isfinite(z)):
            self.session.error.emit("Not a latent point",
                                    "z1 and z2 must be finite numbers (not NaN or inf).")
            return False
        if max(abs(v) for v in z) > TYPED_Z_LIMIT:
            self.session.error.emit("Not a latent point",
                                    f"z1 and z2 must lie within ±{TYPED_Z_LIMIT:,.0f} (the codes "
                                    "of real images lie within about ±10).")
            return False
        self._timer.stop()
        x0, x1, y0, y1 = self.map.visible_rect()
        if x0 <= z[0] <= x1 and y0 <= z[1] <= y1:
            self.session.status.emit("", 1)  # an earlier complaint about the fields is over
        else:  # decoded all the same; the marker is off the view, so say where it went
            self.session.status.emit(f"z = ({z[0]:g}, {z[1]:g}) is outside the view (the marker "
                                     "is off the map; Fit view frames the points)", 8000)
        self.request_decode(*z)
        return True

    @Slot(int)
    def _on_hover(self, index: int) -> None:
        points = self.session.points
        if index < 0 or index >= len(points):
            self.hover_view.set_image(None)
            self.hover_label.setText("hover over a point")
            return
        if points.images is None:  # its label, and why there is no image (there was nothing)
            self.hover_view.set_image(None)
            other = self.session.model_data_mismatch() if points.source == "epoch" else None
            why = (f"it is one of {other}'s, which is not loaded" if other else
                   "the images show once the dataset has loaded" if self.session.data.busy else
                   "no dataset is loaded: Data ▸ Choose data folder… or Download MNIST")
            self.hover_label.setText(f"label {points.class_name(index)} · test point {index} "
                                     f"(no image: {why})")
            return
        self.hover_view.set_image(points.images[index] / 255.0)
        ds = self.session.dataset
        noun = ds.noun.removesuffix("s") if ds is not None else "image"
        n_train = len(ds.train_images) if ds is not None else 0
        # Which set the index counts in: the 70,000-digit view puts the training digits first.
        split, number = (("training", index) if index < n_train else ("test", index - n_train)) \
            if points.source == "all" else ("test", index)
        # A folder of pictures: the picture's own file, to find an odd point among them.
        file = ds.files[number + n_train * (split == "test")] if ds is not None and ds.files else ""
        self.hover_label.setText(f"label {points.class_name(index)} · {split} {noun} {number}"
                                 + (f" · {file}" if file else ""))

    @Slot(object)
    def _on_dataset(self, dataset) -> None:
        noun = "digit" if dataset.name == "mnist" else "image"
        self.hover_title.setText(f"<b>{noun.capitalize()} under the cursor</b>")
        self._on_hover(-1)  # the image shown was the data before's


def _number(text: str) -> float:
    """A typed number; one comma and no point is a decimal comma ("0,5" is 0.5)."""
    text = text.strip()
    if text.count(",") == 1 and "." not in text:
        text = text.replace(",", ".")
    return float(text)
