"""The flows between features, through the real window with real mouse events."""
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt, QTimer
from PySide6 import QtGui
from PySide6.QtGui import QColor, QMouseEvent
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton, QToolButton

from app.files import FilesController
from app.main_window import MainWindow
from cae.checkpoint import save_checkpoint
from cae.model import CAE
from tests.helpers import choose_colouring

REAL_ASK = FilesController.ask  # the conftest answers questions; these tests click them


def fraction_in_view(window) -> float:
    codes = window.map.codes
    x0, x1, y0, y1 = window.map.visible_rect()
    inside = (codes[:, 0] >= x0) & (codes[:, 0] <= x1) & (codes[:, 1] >= y0) & (codes[:, 1] <= y1)
    return float(inside.mean())


def train(window, qtbot, epochs=4, batch=16):
    p = window.training_panel
    p.epochs.setValue(epochs)
    p.batch_size.setValue(batch)
    p.device.setCurrentIndex(p.device.findData("cpu"))
    fractions = []
    window.session.pointsChanged.connect(lambda *_: fractions.append(fraction_in_view(window)))
    with qtbot.waitSignal(window.session.run.ended, timeout=60000):
        qtbot.mouseClick(p.train_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    return fractions


def test_the_view_follows_the_codes_while_training_and_after_opening(window, qtbot, tmp_path):
    fractions = train(window, qtbot)
    assert len(fractions) >= 4  # the start and every epoch at least
    assert min(fractions) >= 0.9, fractions
    # Another model whose codes lie elsewhere: its points are framed too.
    torch.manual_seed(7)
    other = CAE()
    with torch.no_grad():
        other.encoder[-1].weight.mul_(40.0)
    path = save_checkpoint(tmp_path / "other.safetensors", other, {"dataset": "synthetic"})
    assert window.files.open_model(str(path))
    qtbot.waitUntil(lambda: not window.session.tasks.running("codes"), timeout=20000)
    assert fraction_in_view(window) >= 0.9


def test_a_hand_pan_stops_following_until_fit(window, qtbot):
    vb = window.map.view_box
    centre = window.map.mapFromScene(vb.sceneBoundingRect().center())
    qtbot.mouseMove(window.map.viewport(), centre)
    before = window.map.visible_rect()
    vb.wheelEvent(_wheel(vb, 120))  # a wheel zoom, as pyqtgraph receives it
    assert window.map.visible_rect() != before
    assert not window.toolbar.follow_action.isChecked()
    zoomed = window.map.visible_rect()
    window.session.set_points(window.session.points, fit=False)  # new codes, same place
    assert window.map.visible_rect() == zoomed  # the user's view is kept
    window.toolbar.fit_action.trigger()
    assert window.toolbar.follow_action.isChecked() and fraction_in_view(window) >= 0.99


def _wheel(vb, delta):
    from PySide6.QtWidgets import QGraphicsSceneWheelEvent
    ev = QGraphicsSceneWheelEvent(QGraphicsSceneWheelEvent.Type.GraphicsSceneWheel)
    ev.setDelta(delta)
    ev.setOrientation(Qt.Orientation.Vertical)
    ev.setPos(vb.boundingRect().center())
    ev.setScenePos(vb.mapToScene(vb.boundingRect().center()))
    return ev


def test_train_waits_for_the_dataset(window, qtbot, tiny_folder):
    window.session.load_data("auto", str(tiny_folder))
    assert window.session.data.busy and not window.training_panel.train_button.isEnabled()
    qtbot.waitUntil(lambda: not window.session.data.busy, timeout=20000)
    assert window.training_panel.train_button.isEnabled()


def test_colour_box_legend_and_map_agree_after_a_snapshot(window, qtbot):
    bar = window.toolbar
    choose_colouring(bar, bar.colour_by.findData("error"))
    qtbot.waitUntil(lambda: window.map.colour_mode == "error", timeout=20000)
    assert not window.map.legend.isVisible()
    window.session.set_points(window.session.points, fit=False)  # what a snapshot does
    qtbot.waitUntil(lambda: window.map.colour_mode == "error", timeout=20000)
    assert bar.colour_by.currentData() == window.map.colour_mode
    window.training.start()  # while training only the class colours make sense
    qtbot.waitUntil(lambda: window.map.colour_mode == "class", timeout=20000)
    assert bar.colour_by.currentData() == "class" and window.map.legend.isVisible()
    window.session.training.shutdown(5000)


def test_a_model_trained_in_the_window_reopens_offline_with_its_map(window, qtbot, tmp_path,
                                                                    settings):
    train(window, qtbot, epochs=1)
    qtbot.waitUntil(lambda: "test_codes" in window.session.models.extras, timeout=20000)
    path = tmp_path / "trained.safetensors"
    assert window.files.save_model(str(path)) and not window.session.dirty
    shown = window.map.codes.copy()
    again = MainWindow(settings)
    qtbot.addWidget(again)
    again.start(str(path), str(tmp_path / "no-data-here"), "mnist")  # no dataset to be found
    qtbot.waitUntil(lambda: len(again.map.codes) == len(shown), timeout=20000)
    np.testing.assert_allclose(again.map.codes, shown, atol=1e-5)
    assert again.session.dataset is None
    again.close()


def test_the_drawing_updates_while_the_pen_moves(window, qtbot):
    window.draw_dock.raise_()
    pad = window.draw_panel.pad
    qtbot.waitExposed(pad)
    updates = []
    window.session.drawnChanged.connect(lambda: updates.append(time.perf_counter()))
    qtbot.mousePress(pad, Qt.MouseButton.LeftButton, pos=QPoint(80, 60))
    t0 = time.perf_counter()
    for i in range(40):  # a 400 ms stroke, a move every 10 ms (a debounce would never fire)
        qtbot.mouseMove(pad, QPoint(80 + 3 * i, 60 + 4 * i))
        qtbot.wait(10)
    during = [t for t in updates if t >= t0]
    qtbot.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=QPoint(200, 220))
    assert len(during) >= 4, len(during)
    assert window.map.drawn_marker.isVisible()


def _answer(qtbot, button, tries: int = 500) -> list[str]:
    """Click ``button`` of the question box once it is shown (looking for up to 10 s, so a box
    that never comes leaves nothing behind to click a later test's); returns the list its text
    is put in."""
    asked: list[str] = []

    def click(left: int) -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            if left:
                QTimer.singleShot(20, lambda: click(left - 1))
            return
        asked.append(box.text())
        qtbot.mouseClick(box.button(button), Qt.MouseButton.LeftButton)
    QTimer.singleShot(20, lambda: click(tries))
    return asked


def test_quitting_with_an_unsaved_model_asks(window, qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(FilesController, "ask", REAL_ASK)
    window.session.set_dirty(True)
    _answer(qtbot, QMessageBox.StandardButton.Cancel)
    assert not window.close()  # Cancel: the window stays, the model too
    assert window.isVisible() and window.session.dirty
    saved = tmp_path / "kept.safetensors"
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getSaveFileName", lambda *a, **k: (str(saved), ""))
    _answer(qtbot, QMessageBox.StandardButton.Save)
    assert window.close()
    assert saved.is_file() and not window.session.dirty


def start_a_long_run(window, qtbot) -> None:
    """Press Train for a run far longer than the test, and wait until it is under way."""
    p = window.training_panel
    p.epochs.setValue(200)
    p.device.setCurrentIndex(p.device.findData("cpu"))
    with qtbot.waitSignal(window.session.training.progress, timeout=30000):
        qtbot.mouseClick(p.train_button, Qt.MouseButton.LeftButton)


def test_stop_asks_whether_to_keep_the_partial_model(window, qtbot, monkeypatch):
    monkeypatch.setattr(FilesController, "ask", REAL_ASK)
    before = window.session.models.model
    start_a_long_run(window, qtbot)
    asked = _answer(qtbot, QMessageBox.StandardButton.Discard)
    with qtbot.waitSignal(window.session.run.ended, timeout=30000):
        qtbot.mouseClick(window.training_panel.stop_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.session.models.model is before, timeout=5000)
    assert not window.session.dirty
    assert len(asked) == 1 and "Keep the partly trained model" in asked[0], asked
    assert asked[0].startswith("Stop training ") and "continue training?" in asked[0], asked
    # The panel shows the model gone back to (it kept the discarded run's curve), and says so.
    panel = window.training_panel
    assert panel.progress.format().endswith("; discarded") and not panel.train_points


def test_stop_can_be_taken_back(window, qtbot, monkeypatch):
    """Stop offered only Keep or Discard, after the run had ended: a Stop clicked by mistake
    in front of a class ended the run.  It asks first, the run waiting, and Continue (or
    Escape) lets it go on."""
    monkeypatch.setattr(FilesController, "ask", REAL_ASK)
    start_a_long_run(window, qtbot)
    t = window.session.training
    seen = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer)
            return
        seen.append((sorted(b.text().replace("&", "") for b in box.buttons()), t.paused))
        next(b for b in box.buttons() if b.text().replace("&", "") == "Continue training").click()
    QTimer.singleShot(20, answer)
    qtbot.mouseClick(window.training_panel.stop_button, Qt.MouseButton.LeftButton)
    assert seen == [(["Continue training", "Discard it", "Keep it"], True)]  # paused meanwhile
    assert t.running and not t.paused
    step = t.trainer.global_step
    qtbot.waitUntil(lambda: t.trainer.global_step > step + 2, timeout=30000)  # going on
    window.training.ask_keep = lambda text: False
    with qtbot.waitSignal(window.session.run.ended, timeout=30000):
        t.stop()


def test_the_keep_question_names_what_each_button_does(window, qtbot, monkeypatch):
    monkeypatch.setattr(FilesController, "ask", REAL_ASK)
    texts = []

    def press(text: str) -> None:  # the button the user reads as ``text``
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, lambda: press(text))
            return
        texts.append(sorted(b.text().replace("&", "") for b in box.buttons()))
        next(b for b in box.buttons() if b.text().replace("&", "") == text).click()
    QTimer.singleShot(20, lambda: press("Keep it"))
    assert window.files.ask_keep("Keep?") is True
    QTimer.singleShot(20, lambda: press("Discard it"))
    assert window.files.ask_keep("Keep?") is False
    assert texts == [["Discard it", "Keep it"]] * 2


def test_everything_fits_a_1280x800_window(qtbot, settings, tiny_folder, no_bundled_model):
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.resize(1280, 800)
    w.show()
    qtbot.waitExposed(w)
    ext = [b for b in w.toolbar.findChildren(QToolButton) if b.objectName() == "qt_toolbar_ext_button"]
    assert not ext or not ext[0].isVisible()  # no "››" overflow
    w.draw_dock.raise_()
    qtbot.wait(50)
    panel = w.draw_panel
    for widget in (panel.vote_label, *panel.neighbour_views, panel.result_label):
        bottom = widget.mapTo(w, QPoint(0, widget.height())).y()
        assert bottom <= w.statusBar().mapTo(w, QPoint(0, 0)).y(), widget
    w.close()


def test_the_map_keeps_its_room_when_the_window_shrinks(window, qtbot):
    from app.dock_layout import MAP_MIN_WIDTH, MAP_SHARE
    window.metrics_dock.raise_()  # the widest panels on both sides
    sides = ((window.training_dock, window.metrics_dock),
             (window.side_dock, window.draw_dock, window.interp_dock))
    docks_min = sum(max(d.minimumSizeHint().width() for d in side) for side in sides)
    assert docks_min < 700  # the panels scroll rather than widen their dock
    for width, height in ((1280, 800), (1024, 700), (900, 560)):
        window.resize(width, height)
        qtbot.wait(50)
        # The docks give up width first, down to their own minimum; the map never below its own.
        wanted = min(MAP_SHARE * window.width(), window.width() - docks_min - 30)
        assert window.map.width() >= max(wanted, MAP_MIN_WIDTH), width
        assert window.map.height() >= 300
    assert window.width() < 1000 and window.map.width() >= MAP_MIN_WIDTH  # as small as allowed


def test_the_docks_get_their_width_back_when_the_window_grows_again(window, qtbot):
    from app.dock_layout import MAP_SHARE
    window.resize(1280, 800)
    qtbot.wait(100)
    before = (window.training_dock.width(), window.side_dock.width())
    window.resize(900, 560)
    qtbot.wait(100)
    assert window.side_dock.width() < before[1] - 20  # narrowed for the map
    window.resize(1280, 800)
    qtbot.waitUntil(lambda: window.side_dock.width() >= before[1] - 4, timeout=2000)
    assert window.training_dock.width() >= before[0] - 4
    assert window.map.width() >= MAP_SHARE * window.width() - 4


def test_the_right_docks_buttons_keep_their_text_in_a_1000_px_window(window, qtbot):
    """At 1000 x 700 the Draw dock read "pen image" and "28 px p" (buttons squeezed below their
    text) and Interpolation scrolled sideways."""
    from PySide6.QtWidgets import QPushButton
    window.resize(1000, 700)
    qtbot.wait(100)
    for dock, panel in ((window.draw_dock, window.draw_panel),
                        (window.interp_dock, window.interp_panel)):
        dock.raise_()
        qtbot.waitUntil(panel.isVisible, timeout=2000)
        qtbot.wait(50)
        for button in panel.findChildren(QPushButton):
            assert button.width() >= button.fontMetrics().horizontalAdvance(button.text()) + 8, \
                button.text()
        scroll = panel.parentWidget().parentWidget()
        assert not scroll.horizontalScrollBar().isVisible(), dock.windowTitle()
    pen = window.draw_panel.pen
    assert pen.width() >= pen.sizeHint().width()
    # Side by side, none over the next (at 1024 px the pen box lay over "Open image…").
    row = sorted([b for b in window.draw_panel.findChildren(QPushButton)
                  if b.parentWidget() is window.draw_panel and b.y() < pen.y() + pen.height()
                  and b.y() + b.height() > pen.y()] + [pen], key=lambda w: w.x())
    assert len(row) == 5
    for left, right in zip(row, row[1:]):
        assert left.geometry().right() < right.geometry().left(), (left, right)
    assert row[-1].geometry().right() <= window.draw_panel.width()


def test_the_draw_dock_fits_a_700_px_window_without_scrolling(window, qtbot):
    """At 1000 x 700 the Draw dock scrolled by 66 px although everything fitted at its images'
    minimum sizes: its word-wrapped result line had made the scroll area keep the panel at its
    preferred height.  Both with the short hint and with the three-line small-drawing note, all
    of it shows, every line of the note included; at 1280 x 800 the images keep their size."""
    panel = window.draw_panel
    scroll = panel.parentWidget().parentWidget()
    note = ("z = (1.234, -0.567)   reconstruction MSE 0.0123\na small drawing: like every drawing "
            "(and MNIST's own digits) it is enlarged to fill the 20-px box")
    window.draw_dock.raise_()
    sizes = {}
    for width, height in ((1280, 800), (1000, 700)):
        window.resize(width, height)
        for text in (panel.hint, note):
            panel.result_label.setText(text)
            qtbot.wait(100)
            assert not scroll.verticalScrollBar().isVisible(), (width, text[:20])
            assert panel.height() <= scroll.viewport().height()
            label = panel.result_label
            assert label.height() >= label.heightForWidth(label.width()) > 0
            vote = panel.vote_label
            assert vote.geometry().bottom() <= panel.height()
            sizes[width, text] = panel.recon_view.height()
    assert sizes[1280, panel.hint] == 112  # as before the change, at the usual window size
    assert sizes[1000, note] >= 48
    panel.result_label.setText(panel.hint)  # back to one line: no blank lines left around it
    qtbot.wait(100)
    assert panel.result_label.height() < 2 * panel.result_label.fontMetrics().lineSpacing()


def test_clicking_a_legend_name_toggles_its_class(window, qtbot):
    sample, label = window.map.legend.items[3]
    pos = window.map.mapFromScene(label.mapToScene(label.boundingRect().center()))
    qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert not window.map.class_visible(3) and window.map.class_visible(2)
    qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert window.map.class_visible(3)
    legend = window.map.legend.sceneBoundingRect()
    assert legend.left() >= window.map.view_box.sceneBoundingRect().right() - 1  # beside the points


def test_a_drag_on_the_legend_leaves_it_in_its_place(window, qtbot):
    """A drag that began on an entry carried pyqtgraph's legend over the points, or out of
    sight with no way back (nor for the classes it had hidden)."""
    def send_mouse(widget, kind, pos, button, buttons):
        QApplication.sendEvent(widget, QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)),
                                                   button, buttons, Qt.KeyboardModifier.NoModifier))

    legend = window.map.legend
    before = legend.sceneBoundingRect()
    _, label = legend.items[5]
    vp = window.map.viewport()
    start = window.map.mapFromScene(label.mapToScene(label.boundingRect().center()))
    send_mouse(vp, QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton,
               Qt.MouseButton.LeftButton)
    for step in range(1, 9):
        qtbot.wait(10)
        send_mouse(vp, QEvent.Type.MouseMove, start - QPoint(30 * step, -10 * step),
                   Qt.MouseButton.NoButton, Qt.MouseButton.LeftButton)
    send_mouse(vp, QEvent.Type.MouseButtonRelease, start - QPoint(240, -80),
               Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)
    qtbot.wait(50)
    assert legend.sceneBoundingRect() == before
    assert window.map.class_visible(5)  # a drag is not a click on the entry


LABELS = {"mnist": ("Digit under the cursor", "Test digits", "training digits", "draw a digit"),
          "fashion-mnist": ("Image under the cursor", "Test images", "training images",
                            "draw something like the training images")}


@pytest.mark.parametrize("first,then", [("mnist", "fashion-mnist"), ("fashion-mnist", "mnist")])
def test_labels_name_the_dataset(window, qtbot, first, then):
    """Digits for MNIST, images for anything else: each label changes with the dataset."""
    from cae.data import Dataset, get_spec
    ds = window.session.dataset
    for name in (first, then):
        window.session._on_dataset_loaded(Dataset(name, ds.train_images, ds.train_labels,
                                                  ds.test_images, ds.test_labels,
                                                  get_spec(name).class_names))
        hover, test_set, training, hint = LABELS[name]
        assert hover in window.hover_title.text()
        assert window.toolbar.map_set.itemText(0).startswith(test_set)
        assert training in window.draw_panel.neighbours_title.text()
        assert window.draw_panel.result_label.text() == hint


def test_a_killed_run_is_offered_back_at_the_next_start(qtbot, settings, tiny_folder, monkeypatch,
                                                        no_bundled_model, tmp_path):
    from app import autosave
    torch.manual_seed(11)
    lost = CAE()
    autosave.data_dir().mkdir(parents=True, exist_ok=True)
    left = autosave.data_dir() / "autosave-999999999.safetensors"  # an instance that is gone
    save_checkpoint(left, lost, {"dataset": "synthetic", "autosave": True})
    monkeypatch.setattr(FilesController, "ask", REAL_ASK)
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    behind = []  # what the window shows behind the question: not "no model and no dataset"
    QTimer.singleShot(10, lambda: behind.append(w.stack.currentWidget()))
    _answer(qtbot, QMessageBox.StandardButton.Open)
    w.start(None, str(tiny_folder), "folder")
    assert behind == [w.starting] and w.stack.currentWidget() is w.map
    state = w.session.models.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in lost.state_dict().items())
    assert w.session.dirty and w.session.models.path is None  # unsaved: Save asks where
    monkeypatch.setattr(FilesController, "ask", lambda *a: QMessageBox.StandardButton.Discard)
    w.close()
    assert autosave.pending() is None  # discarded on purpose: not offered again
    assert list(autosave.data_dir().glob("autosave*")) == []


def test_a_recovered_run_opens_over_the_data_used_last_time(qtbot, settings, tiny_folder,
                                                           monkeypatch, no_bundled_model):
    """The recovery asked for the default MNIST after the run's own data: a run trained on a
    folder came back over an empty map ("MNIST not found"), the folder left unused."""
    from app import autosave
    autosave.data_dir().mkdir(parents=True, exist_ok=True)
    save_checkpoint(autosave.data_dir() / autosave.LEGACY, CAE(), {"dataset": "tiny",
                                                                  "autosave": True})
    settings.setValue("dataFolder", str(tiny_folder))
    monkeypatch.setattr(FilesController, "ask", lambda *a: QMessageBox.StandardButton.Open)
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.start(None, None, "mnist")  # as a plain `cae-explorer` does
    qtbot.waitUntil(lambda: w.session.dataset is not None, timeout=20000)
    assert w.session.dataset.source == str(tiny_folder)
    qtbot.waitUntil(lambda: len(w.map.codes) == len(w.session.dataset.test_images), timeout=20000)
    monkeypatch.setattr(FilesController, "ask", lambda *a: QMessageBox.StandardButton.Discard)
    w.close()


def test_quitting_while_training_asks(window, qtbot, monkeypatch):
    monkeypatch.setattr(FilesController, "ask", REAL_ASK)
    start_a_long_run(window, qtbot)
    _answer(qtbot, QMessageBox.StandardButton.Cancel)
    assert not window.close() and window.session.training.running  # Cancel: training goes on
    _answer(qtbot, QMessageBox.StandardButton.Yes)
    assert window.close() and not window.session.training.running


def test_open_image_button_opens_a_file(window, qtbot, monkeypatch, tmp_path):
    from PySide6.QtGui import QColor, QImage, QPainter
    image = QImage(120, 120, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    painter.fillRect(50, 10, 20, 100, QColor("black"))  # a dark "1" on white paper
    painter.end()
    path = tmp_path / "one.png"
    image.save(str(path))
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getOpenFileName", lambda *a, **k: (str(path), ""))
    window.draw_dock.raise_()
    buttons = [b for b in window.draw_panel.findChildren(QPushButton) if b.text() == "Open…"]
    qtbot.mouseClick(buttons[0], Qt.MouseButton.LeftButton)
    assert not window.draw_panel.pad.is_empty and window.session.drawn_z is not None


def test_confusion_counts_are_never_cut_short(qtbot):
    """A narrow Metrics dock showed 1095 as "1…": columns keep the widest count's width."""
    import numpy as np

    from app.metrics_panel import CELL_MARGIN_PX, MetricsPanel
    panel = MetricsPanel()
    qtbot.addWidget(panel)
    panel.resize(200, 600)
    panel.show()
    confusion = np.full((10, 10), 7)
    np.fill_diagonal(confusion, 1095)
    panel.show_metrics({"test_mse": 0.04, "knn5_accuracy": 0.7, "n_test": 10000, "n_train": 60000,
                        "per_class_mse": [0.03] * 10, "knn5_confusion": confusion.tolist()},
                       tuple(str(i) for i in range(10)), "model on mnist")
    qtbot.wait(20)
    header = panel.table.horizontalHeader()
    need = panel.table.fontMetrics().horizontalAdvance("1095") + 2 * CELL_MARGIN_PX
    assert all(header.sectionSize(i) >= need for i in range(10))
    assert panel.table.textElideMode() == Qt.TextElideMode.ElideNone
    assert panel.table.item(0, 0).toolTip() == "true 0, voted 0: 1,095"


def test_legend_swatches_are_large_enough_to_tell_colours_apart(window, qtbot):
    from PySide6.QtGui import QColor, QImage, QPainter

    from app.latent_map import Swatch
    sample, _ = window.map.legend.items[5]
    assert isinstance(sample, Swatch) and window.map.scatters[5].opts["size"] < Swatch.SIZE
    image = QImage(20, 20, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = QPainter(image)
    sample.paint(painter)
    painter.end()
    inked = sum(QColor(image.pixel(x, y)) != QColor("white") for x in range(20) for y in range(20))
    assert inked >= 60  # measured: 88 px; the 4 px dot itself inks 16


def test_the_map_shows_when_it_has_the_keyboard_focus(window, qtbot):
    """After Tab the focus could land on the map with nothing to show it (the arrow keys then
    move the decoded point): a highlight frame says so, the same width with and without focus."""
    from PySide6.QtGui import QColor
    m = window.map
    window.z1_edit.setFocus()
    qtbot.wait(20)
    before, inner = QColor(m.grab().toImage().pixel(0, 100)), m.viewport().geometry()
    m.setFocus()
    qtbot.waitUntil(m.hasFocus, timeout=1000)
    qtbot.wait(20)
    after = QColor(m.grab().toImage().pixel(0, 100))
    assert after == m.palette().color(m.palette().ColorRole.Highlight) and after != before
    assert m.viewport().geometry() == inner


def test_the_toolbar_switches_look_like_switches(window, qtbot):
    """Checkable tool buttons are drawn flat while off: "Decoded images" read as a label. The
    three switches get a frame, and a filled face while on."""
    bar = window.toolbar
    button = bar.widgetForAction(bar.mosaic_action)
    assert button.property("switch") is True
    assert bar.widgetForAction(bar.fit_action).property("switch") is None  # a plain command

    def edge_and_face():
        image = button.grab().toImage()
        h, w = image.height(), image.width()
        ratio = image.devicePixelRatio()
        edge = min(QColor(image.pixel(int(x * ratio), h // 2)).value() for x in range(2, 5))
        return edge, QColor(image.pixel(w // 8, h // 4)).value()

    bar.mosaic_action.setChecked(False)
    edge, face_off = edge_and_face()
    assert edge < face_off - 40  # a visible frame around a light face
    bar.mosaic_action.setChecked(True)
    assert edge_and_face()[1] < face_off - 40  # filled while on
    bar.mosaic_action.setChecked(False)


def test_zoom_stops_where_the_map_stops_meaning_anything(window, qtbot):
    from app.latent_map import MIN_VIEW_RANGE, VIEW_LIMIT
    box = window.map.view_box
    for _ in range(60):  # far out: the wheel's steps, many times over
        box.scaleBy((4.0, 4.0))
    (x0, x1), (y0, y1) = box.viewRange()
    assert -VIEW_LIMIT <= x0 < x1 <= VIEW_LIMIT and -VIEW_LIMIT <= y0 < y1 <= VIEW_LIMIT
    assert x1 - x0 > 0.5 * VIEW_LIMIT  # it did zoom out, as far as allowed
    window.map.fit_view()
    for _ in range(60):  # far in
        box.scaleBy((0.25, 0.25))
    (x0, x1), (y0, y1) = box.viewRange()
    assert x1 - x0 >= MIN_VIEW_RANGE * 0.999 and y1 - y0 >= MIN_VIEW_RANGE * 0.999
    assert x1 - x0 < 1e-4


@pytest.mark.parametrize("corner", [9000.0, -943.0, 0.5])
def test_the_axis_labels_never_run_together_at_the_deepest_zoom(window, qtbot, corner):
    """Far from the origin at the narrowest view the labels are long (9000.0000002): five of
    them ran into one line on a narrow map."""
    from app.latent_map import MIN_VIEW_RANGE
    window.resize(1000, 700)
    window.map.view_box.setRange(xRange=(corner, corner + MIN_VIEW_RANGE),
                                 yRange=(corner, corner + MIN_VIEW_RANGE), padding=0)
    qtbot.wait(50)
    axis = window.map.plot_item.getAxis("bottom")
    assert axis.width() < 560  # narrow enough that the plain axis's labels met
    image = QtGui.QImage(8, 8, QtGui.QImage.Format.Format_ARGB32)
    painter = QtGui.QPainter(image)  # pyqtgraph measures the labels with a live painter
    try:
        texts = sorted((rect for rect, _, _ in axis.generateDrawSpecs(painter)[2]),
                       key=lambda r: r.left())
    finally:
        painter.end()
    assert texts  # still labelled
    for left, right in zip(texts, texts[1:]):
        assert right.left() - left.right() >= 8, (left, right)
    window.map.fit_view()  # and at the usual zoom, as many labels as pyqtgraph gives
    qtbot.wait(50)
    import pyqtgraph as pg
    (x0, x1), _ = window.map.view_box.viewRange()
    assert axis.tickSpacing(x0, x1, axis.width()) == pg.AxisItem.tickSpacing(
        axis, x0, x1, axis.width())


def test_a_long_status_message_is_cut_before_the_z_readout(window, qtbot):
    """A long message ran into the permanent z readout mid-word ("...Save z1 -0.849 z2 ...")."""
    window.resize(1000, 700)
    qtbot.wait(50)
    window.coords_label.setText("z1 -0.849  z2 +1.401 · decode 2.1 ms")
    text = ("bad.pt: this looks like something long enough to fill the whole status bar and "
            "then some more words, so that it must be cut somewhere before the end")
    window.session.status.emit(text, 0)
    shown = window.statusBar().currentMessage()
    assert shown.endswith("…") and shown[:-1] in text
    bar = window.statusBar()
    room = bar.width() - window.coords_label.width()
    assert bar.fontMetrics().horizontalAdvance(shown) < room
    assert bar.toolTip() == text
    window.session.status.emit("saved", 0)
    assert window.statusBar().currentMessage() == "saved"
    window.statusBar().clearMessage()
    assert window.statusBar().toolTip() == ""


def test_the_set_box_names_the_set_left_on_while_its_codes_are_encoded(
        qtbot, settings, tiny_folder, tmp_path, no_bundled_model, monkeypatch):
    """It said "Test digits (10,000)" while the status bar said "encoding 70,000 digits"."""
    from app.session import Session
    settings.setValue("mapAll", True)
    monkeypatch.setattr(Session, "refresh_codes", lambda self, fit=False: None)  # still encoding
    model_path = save_checkpoint(tmp_path / "m.safetensors", CAE(), {"dataset": "synthetic"})
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    w.start(str(model_path), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: w.session.dataset is not None, timeout=20000)
    assert len(w.session.points) == 0  # no codes yet
    ds = w.session.dataset
    assert w.toolbar.map_set.currentText() == f"All images ({len(ds.train_images) + len(ds.test_images)})"
    w.close()


def test_a_first_start_fits_a_small_screen(qtbot, settings, monkeypatch):
    """A projector's 1024 x 768, or 1280 x 800 at 150 % (853 x 533 logical pixels): the first
    window opened at 1280 x 800 regardless, and its docks' panels would not let it shrink below
    959 x 555, so the Images dock and the status bar were off the screen."""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QScreen
    monkeypatch.setattr(QScreen, "availableGeometry", lambda self: QRect(0, 0, 853, 533))
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    assert w.width() <= 853 and w.height() <= 533
    assert w.minimumSizeHint().width() <= 853 and w.minimumSizeHint().height() <= 533
    assert w.map.parentWidget().width() >= 300  # the map keeps its room


def test_an_autosave_is_offered_only_once_its_window_is_gone(tmp_path):
    """Two windows shared one autosave file: the second's Discard (or Save, or next run) deleted
    or overwrote the first one's.  Each writes its own, and only a gone instance's is offered."""
    import subprocess
    import sys

    from app import autosave
    other = subprocess.Popen(
        [sys.executable, "-c",
         "from app import autosave; from cae.checkpoint import save_checkpoint; "
         "from cae.model import CAE; autosave.claim(); "
         "save_checkpoint(autosave.path(), CAE(), {'autosave': True}); "
         "print(autosave.path(), flush=True); import time; time.sleep(60)"],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        theirs = Path(other.stdout.readline().strip())
        assert theirs.is_file() and theirs != autosave.path()
        assert autosave.pending() is None  # its window still runs
        autosave.clear()  # this window's Save or Discard
        save_checkpoint(autosave.path(), CAE(), {"autosave": True})  # and its own run
        assert theirs.is_file() and autosave.pending() is None
    finally:
        other.kill()  # killed: what it left is offered now
        other.wait()
    assert autosave.pending() == theirs
    assert not (autosave.data_dir() / f"instance-{other.pid}.lock").exists()  # swept
    autosave.adopt(theirs)  # opened here: this window's own from now on
    assert autosave.pending() is None and not theirs.exists()
    autosave.clear()
    assert list(autosave.data_dir().glob("autosave*")) == []


def test_an_autosave_finished_after_a_save_removes_itself():
    """Saved (or discarded) while the last epoch's autosave was being written: that write landed
    after the clear, and the next start offered a model the user had already saved."""
    from app import autosave
    token = autosave.generation()
    autosave.clear()  # the user saved meanwhile
    autosave.save_task(None, None, CAE(), {}, {}, token)
    assert not autosave.path().exists()
    autosave.save_task(None, None, CAE(), {}, {}, autosave.generation())
    assert autosave.path().is_file()


def test_a_runs_end_brings_back_the_colouring_and_keeps_the_ends_set_during_it(window, qtbot):
    """A run left the map coloured by class for good (the error colouring chosen before it was
    gone), and the interpolation's ends set while it trained vanished at its end."""
    from cae.train import TrainConfig
    bar, s = window.toolbar, window.session
    choose_colouring(bar, bar.colour_by.findData("error"))
    qtbot.waitUntil(lambda: window.map.colour_mode == "error", timeout=20000)
    with qtbot.waitSignal(s.run.ended, timeout=60000):
        assert s.run.start(TrainConfig(epochs=1, batch_size=32, device="cpu"), False)
        qtbot.waitUntil(lambda: window.map.colour_mode == "class", timeout=20000)
        s.set_endpoint("A", np.array([0.0, 0.0], np.float32))
        s.set_endpoint("B", np.array([1.0, 1.0], np.float32))
    assert s.endpoints["A"] is not None and s.endpoints["B"] is not None
    qtbot.waitUntil(lambda: window.map.colour_mode == "error", timeout=30000)
    assert bar.colour_by.currentData() == "error"
    s.models.new_model()  # another model clears them: they were points of its space
    assert s.endpoints == {"A": None, "B": None}


def test_a_gone_windows_lock_is_swept_at_the_next_start():
    """A window that left at once (os._exit after a step outlived the close) or was killed kept
    its lock file for good, one more with every such exit."""
    import subprocess
    import sys

    from app import autosave
    other = subprocess.run(
        [sys.executable, "-c", "import os; from app import autosave; autosave.claim(); "
                               "print(os.getpid(), flush=True); os._exit(0)"],
        capture_output=True, text=True, env=dict(os.environ), check=True)
    lock = autosave.data_dir() / f"instance-{other.stdout.strip()}.lock"
    assert lock.exists()
    assert autosave.pending() is None and not lock.exists()
    assert (autosave.data_dir() / f"instance-{os.getpid()}.lock").exists()  # this window's own
