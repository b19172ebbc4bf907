"""Drag and drop onto the window (app/drops.py): a model opens, a folder loads, a picture goes
to the Draw pad, anything else is refused while it is dragged over."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from cae.checkpoint import save_checkpoint
from cae.model import CAE
from tests.helpers import set_settings, write_dataset_folder


def mime(*paths: Path) -> QMimeData:
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return data


def drag_over(widget, *paths: Path) -> bool:
    """Whether a drag of ``paths`` over ``widget`` (the map, deep in the window) is accepted."""
    data = mime(*paths)  # (held: the event keeps only a pointer to it)
    event = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, data,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)
    return event.isAccepted()


def drop(qtbot, window, *paths: Path) -> None:
    """A drop, as Qt delivers it to the widget that accepted the drag's entry (the window).
    (Sent through QApplication without a drag under way, Qt's drop handling crashes.)"""
    data = mime(*paths)
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    assert window.drops.eventFilter(window, event) and event.isAccepted()
    qtbot.wait(50)  # (opened once the drop has returned)


@pytest.fixture
def things(tmp_path):
    model = save_checkpoint(tmp_path / "dropped.safetensors", CAE(), {"dataset": "synthetic"})
    picture = tmp_path / "seven.png"
    ink = np.zeros((56, 56), np.uint8)
    ink[10:14, 12:44] = 255
    ink[14:48, 38:42] = 255
    Image.fromarray(ink).save(picture)
    (tmp_path / "notes.txt").write_text("no")
    return model, picture, write_dataset_folder(tmp_path / "other-digits", seed=4)


def test_a_drag_is_accepted_only_for_what_the_window_opens(window, things, tmp_path):
    model, picture, folder = things
    target = window.map.viewport()  # (pyqtgraph's view passes drags on to the window)
    assert drag_over(target, model) and drag_over(target, picture) and drag_over(target, folder)
    assert not drag_over(target, tmp_path / "notes.txt")
    assert not drag_over(target, tmp_path / "notes.txt", model)  # the first is what opens


def test_a_dropped_model_opens(window, things, qtbot):
    model, _, _ = things
    drop(qtbot, window, model)
    qtbot.waitUntil(lambda: window.session.models.path == model, timeout=5000)


def test_a_dropped_folder_loads_as_the_dataset(window, things, qtbot):
    _, _, folder = things
    drop(qtbot, window, folder)
    qtbot.waitUntil(lambda: window.session.dataset is not None
                    and window.session.dataset.name == "other-digits", timeout=10000)


def test_a_dropped_picture_goes_to_the_draw_pad(window, things, qtbot):
    _, picture, _ = things
    assert window.draw_panel.pad.is_empty
    drop(qtbot, window, picture, picture)
    qtbot.waitUntil(lambda: not window.draw_panel.pad.is_empty, timeout=5000)
    assert window.draw_dock.isVisible() and not window.draw_dock.visibleRegion().isEmpty()
    assert window.statusBar().currentMessage() == \
        "opened seven.png, the first of the 2 dropped (one at a time)"


def test_something_else_dropped_is_said(window, things, tmp_path, qtbot):
    """(A drag of it is refused; a drop that gets through anyway says why nothing opened.)"""
    assert not window.drops.open([tmp_path / "notes.txt"])
    assert window.last_error.endswith("notes.txt: drop a model (.safetensors), a dataset's "
                                      "folder or a picture")


def test_a_model_or_folder_dropped_during_training_is_refused_to_its_sender(window, things,
                                                                            qtbot):
    """The window said why (a run trains), but told the program the drop came from that it
    was taken."""
    model, picture, folder = things
    set_settings(window, epochs=200, batch=8)
    with qtbot.waitSignal(window.session.training.runningChanged, timeout=10000):
        window.training.start()
    try:
        for path, taken in ((model, False), (folder, False), (picture, True)):
            data = mime(path)
            event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, data,
                               Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
            window.drops.eventFilter(window, event)
            assert event.isAccepted() is taken, path
            qtbot.wait(50)
        assert "Stop training before" in window.last_error
        assert window.session.models.path != model
    finally:
        window.session.training.stop()
        qtbot.waitUntil(lambda: not window.session.training.running, timeout=20000)
