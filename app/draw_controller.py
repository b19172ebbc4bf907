"""Drawing a digit: preprocess the pad, reconstruct it, put its code on the map (a star that can
be dragged) and show its nearest training digits with their vote.

Updates are throttled while the pen moves (a steady rate, not restarted by every move), so the
reconstruction and the star follow the stroke; the end of a stroke updates at once.
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QTimer, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractSpinBox, QLineEdit, QWidget

from cae.metrics import knn_indices, vote
from cae.preprocess import (
    FRAMINGS,
    MNIST_FRAMING,
    EmptyDrawingError,
    dataset_framing,
    framing_from,
    preprocess,
)

from .draw_panel import DrawPanel
from .latent_map import LatentMap
from .session import Session

LIVE_INTERVAL_MS = 40  # while a stroke is drawn: 25 updates a second


class FieldUndoPassThrough(QObject):
    """A text field takes Ctrl+Z and Ctrl+Shift+Z for its own typing even with none to undo,
    so the drawing's undo did nothing while the focus sat in one (a floating dock puts it in
    the z1 field).  Watching the window's fields and spin boxes, this lets the keys through to
    the window's Edit menu when the field has nothing to take back or bring back."""

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if event.type() != QEvent.Type.ShortcutOverride:
            return False
        edit = watched.lineEdit() if isinstance(watched, QAbstractSpinBox) else watched
        if not isinstance(edit, QLineEdit) or edit.isReadOnly():
            return False
        if event.matches(QKeySequence.StandardKey.Undo):
            return not edit.isUndoAvailable()  # filtered out unaccepted: the shortcut fires
        if event.matches(QKeySequence.StandardKey.Redo):
            return not edit.isRedoAvailable()
        return False

    def watch(self, window: QWidget) -> None:
        for widget in (*window.findChildren(QLineEdit), *window.findChildren(QAbstractSpinBox)):
            widget.installEventFilter(self)


class DrawController(QObject):
    def __init__(self, session: Session, panel: DrawPanel, map_: LatentMap) -> None:
        super().__init__(session)
        self.session, self.panel, self.map = session, panel, map_
        self.neighbours = None  # indices of the drawn digit's nearest training digits
        # The test images' errors, per cent by per cent (the metrics'), to place the drawing's.
        self.percentiles: list[float] | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(LIVE_INTERVAL_MS)
        self._timer.timeout.connect(self.update_drawing)
        panel.pad.inkChanged.connect(self._throttle)
        panel.pad.strokeFinished.connect(self.update_drawing)
        session.decoderChanged.connect(self.update_drawing)
        session.trainCodesReady.connect(self.update_drawing)
        session.datasetChanged.connect(self._on_dataset)
        session.modelChanged.connect(self._frame)
        map_.drawnDropped.connect(self.update_drawing)  # the reconstruction again
        session.metricsReady.connect(self._on_metrics)
        session.metricsCleared.connect(lambda _: self._on_metrics({}))

    @Slot(object)
    def _on_dataset(self, dataset) -> None:
        self.panel.set_noun(dataset.noun)
        self._frame()
        self.update_drawing()

    @Slot()
    def _frame(self) -> None:
        """A drawing is framed as the model's training images are (as its file records them,
        else as the loaded dataset's, measured for an IDX folder), in the model's size, and
        the panel's caption says so before anything is drawn (it said MNIST's "20 px" under the
        Fashion-MNIST model until a first stroke)."""
        s = self.session
        if s.models.model is None:
            return
        n = s.models.model.config.image_size
        meta, ds = s.models.metadata, s.dataset
        framing = (framing_from(meta.get("framing"), n)  # (measured on its data when trained)
                   or FRAMINGS.get(meta.get("dataset"))
                   or (dataset_framing(ds) if ds is not None and ds.image_size == n
                       else MNIST_FRAMING))
        self.panel.set_framing(framing if framing.field == n else framing.scaled_to(n))

    def _on_metrics(self, metrics: dict, source: str = "") -> None:
        percentiles = metrics.get("test_mse_percentiles")
        if percentiles != self.percentiles:
            self.percentiles = percentiles
            if not self.panel.pad.is_empty:
                self.update_drawing()

    def edit_actions(self, parent: QObject, show_panel: Callable[[], None]
                     ) -> tuple[QAction, QAction, QAction]:
        """Undo, Redo and Clear of the drawing, for the window's Edit menu: window-wide keys
        (after dragging the star the focus is on the map, where a panel's Ctrl+Z did nothing),
        each showing the Draw panel (``show_panel``) before it changes what the panel shows."""
        pad = self.panel.pad
        actions = []
        for text, step, keys in (
                ("&Undo drawing step (stroke, clear or opened image)", pad.undo,
                 QKeySequence.StandardKey.Undo),
                ("&Redo drawing step", pad.redo, QKeySequence.StandardKey.Redo),
                ("&Clear drawing (Esc or Delete in the Draw panel)", pad.clear, None)):
            action = QAction(text, parent)
            if keys is not None:
                action.setShortcuts(keys)
            action.setEnabled(False)
            action.triggered.connect(lambda _=False, step=step: (show_panel(), step()))
            actions.append(action)
        undo, redo, clear = actions
        pad.undoAvailable.connect(undo.setEnabled)
        pad.redoAvailable.connect(redo.setEnabled)
        pad.strokeFinished.connect(lambda: clear.setEnabled(not pad.is_empty))
        return undo, redo, clear

    def show_star_decode(self, image) -> None:
        """While the star is dragged, the dock's decoded image follows it (the drag starts in
        this dock, where the Images tab with the decoded point is out of sight)."""
        if self.map.dragging_drawn:
            self.panel.recon_view.set_image(image)
            self.panel.result_label.setText("decoded at the star; let go and it goes back")

    @Slot()
    def _throttle(self) -> None:
        if not self._timer.isActive():  # a running timer is not restarted: that would debounce
            self._timer.start()

    @Slot()
    def update_drawing(self) -> None:
        """Preprocess the pad, reconstruct it, place its code on the map, find its neighbours."""
        self._timer.stop()
        s, panel = self.session, self.panel
        if s.models.model is None or s.closing:
            return
        try:
            if panel.pad.is_empty:
                raise EmptyDrawingError("nothing drawn")
            self._frame()
            pre = preprocess(panel.pad.ink(), panel.framing)
        except EmptyDrawingError:
            self.neighbours = None
            # An opened image can lose all its ink when fitted to the pad (a hairline, a long thin
            # bar): said so, rather than asking to draw as if nothing had been opened.
            panel.show_empty(None if panel.pad.is_empty else
                             f"no ink is left of this image at the model's {panel.framing.field}"
                             " px scale (lines too thin, or the image too long and narrow); try "
                             "another image")
            self.map.set_drawn_marker(None)
            s.set_drawn(None)
            return
        z, reconstruction = s.models.reconstruct(pre.image)
        s.set_drawn(z)
        # The test images' errors place the drawing's only where they are the model's own data's
        # (an MNIST model's errors on Fashion-MNIST ranked a scribble above 75 % of them).
        own = s.model_data_mismatch() is None
        panel.show_result(pre, reconstruction, z, self.percentiles if own else None)
        self.map.set_drawn_marker((float(z[0]), float(z[1])))
        ds = s.dataset
        noun = "digits" if ds is None else ds.noun
        if ds is None:
            panel.show_neighbours(None, [], f"load a dataset to see the nearest training {noun}")
            return
        if s.train_codes is None:
            s.request_train_codes()
            panel.show_neighbours(None, [], f"finding the nearest training {noun}…" if
                                  not s.training.running else "neighbours appear after training")
            return
        idx = knn_indices(s.train_codes, z[None], k=5)[0]
        self.neighbours = idx
        labels = ds.train_labels[idx]
        names = ds.class_names
        winner = int(vote(labels[None], len(names))[0])
        panel.show_neighbours(ds.train_images[idx], [names[i] for i in labels],
                              f"their vote: <b>{names[winner]}</b>",
                              [ds.files[i] for i in idx] if ds.files else [])
