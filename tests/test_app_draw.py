"""Drawing on the pad with real mouse events: reconstruction, marker, neighbours, tools."""
import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QApplication

from cae.metrics import encode_images, error_rank, knn_indices
from cae.preprocess import preprocess
from tests.test_app_explore import send_mouse, view_to_widget


def draw(qtbot, pad, points):
    qtbot.mousePress(pad, Qt.MouseButton.LeftButton, pos=QPoint(*points[0]))
    for p in points[1:]:
        qtbot.mouseMove(pad, QPoint(*p))
    qtbot.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=QPoint(*points[-1]))


SEVEN = [(60, 60), (120, 60), (180, 60), (220, 60), (190, 120), (160, 180), (140, 240)]


def test_drawing_shows_reconstruction_marker_and_neighbours(window, qtbot):
    window.draw_dock.raise_()
    pad = window.draw_panel.pad
    draw(qtbot, pad, SEVEN)
    assert not pad.is_empty and pad.ink().max() == 1.0
    pre = preprocess(pad.ink())
    model = window.session.models.model
    with torch.no_grad():
        z = model.encode(torch.from_numpy(pre.image)[None, None])
        rec = model.decode(z).clamp(0, 1)[0, 0].numpy()
    panel = window.draw_panel
    np.testing.assert_allclose(panel.input_view.image, pre.image, atol=1e-6)
    np.testing.assert_allclose(panel.recon_view.image, rec, atol=1e-6)
    mx, my = window.map.drawn_marker.getData()
    np.testing.assert_allclose([mx[0], my[0]], z[0].numpy(), atol=1e-6)
    assert window.map.drawn_marker.isVisible()
    assert f"{float(np.mean((rec - pre.image) ** 2)):.4f}" in panel.result_label.text()
    # Neighbours arrive once the training digits are encoded in the background.
    qtbot.waitUntil(lambda: window.draw.neighbours is not None, timeout=20000)
    # (the neighbours' codes are exact, as every vote's: Session.request_train_codes)
    train_codes = encode_images(model, window.session.dataset.train_images, precision="fp32")
    expected = knn_indices(train_codes, z.numpy(), k=5)[0]
    np.testing.assert_array_equal(window.draw.neighbours, expected)
    np.testing.assert_allclose(panel.neighbour_views[0].image,
                               window.session.dataset.train_images[expected[0]] / 255.0, atol=1e-6)
    assert panel.neighbour_labels[0].text() == str(window.session.dataset.train_labels[expected[0]])
    assert "their vote" in panel.vote_label.text()


def test_undo_and_clear(window, qtbot):
    window.draw_dock.raise_()
    pad = window.draw_panel.pad
    draw(qtbot, pad, SEVEN)
    first = pad.ink().copy()
    draw(qtbot, pad, [(40, 240), (240, 240)])
    assert not np.array_equal(pad.ink(), first)
    pad.setFocus()
    qtbot.keyClick(pad, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(pad.ink(), first)
    qtbot.keyClick(pad, Qt.Key.Key_Escape)
    assert pad.is_empty and pad.ink().max() == 0.0
    assert window.draw_panel.result_label.text() == "draw something like the training images"
    assert not window.map.drawn_marker.isVisible()
    # A clear is taken back like a stroke: the drawing and its reconstruction return.
    undo = window.draw_panel.undo_button
    assert undo.isEnabled()
    qtbot.mouseClick(undo, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(pad.ink(), first)
    assert window.map.drawn_marker.isVisible()
    qtbot.mouseClick(undo, Qt.MouseButton.LeftButton)  # and the first stroke
    assert pad.is_empty and not undo.isEnabled()  # nothing left to take back
    qtbot.keyClick(pad, Qt.Key.Key_Escape)  # clearing an empty pad is no step to undo
    assert not undo.isEnabled()
    redo = window.draw_panel.redo_button  # the panel's Redo steps forward again
    qtbot.mouseClick(redo, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(pad.ink(), first)
    assert undo.isEnabled() and redo.isEnabled() and window.map.drawn_marker.isVisible()
    qtbot.mouseClick(redo, Qt.MouseButton.LeftButton)  # the clear again
    assert pad.is_empty and not redo.isEnabled()
    # The keys work with the focus anywhere in the Draw panel: after a click on its Undo button
    # or on its blank space (they worked only while the pad had the focus).
    draw(qtbot, pad, SEVEN)
    draw(qtbot, pad, [(40, 240), (240, 240)])
    qtbot.mouseClick(undo, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(pad.ink(), first)
    undo.setFocus()  # as a click on it gives it (where the platform's buttons take focus)
    qtbot.keyClick(undo, Qt.Key.Key_Escape)
    assert pad.is_empty
    qtbot.keyClick(undo, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(pad.ink(), first)
    panel = window.draw_panel
    qtbot.mouseClick(panel, Qt.MouseButton.LeftButton, pos=panel.rect().bottomLeft() + QPoint(2, -2))
    assert panel.hasFocus() or panel.isAncestorOf(QApplication.focusWidget())
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_Delete)
    assert pad.is_empty


def test_undo_and_redo_from_anywhere_in_the_window(window, qtbot):
    """Ctrl+Z is the Edit menu's: after dragging the star or clicking the map the focus is on
    the map, where it did nothing.  Redo brings back what undo took, until the next change;
    Esc and Delete stay the Draw panel's (over the map they clear nothing)."""
    window.show()
    qtbot.waitExposed(window)
    pad = window.draw_panel.pad
    undo, redo, clear = window.undo_action, window.redo_action, window.clear_action
    assert not (undo.isEnabled() or redo.isEnabled() or clear.isEnabled())
    draw(qtbot, pad, SEVEN)
    first = pad.ink().copy()
    draw(qtbot, pad, [(40, 240), (240, 240)])
    both = pad.ink().copy()
    assert undo.isEnabled() and clear.isEnabled() and not redo.isEnabled()
    window.side_dock.raise_()  # another tab over Draw, the focus on the map
    window.map.setFocus()
    qtbot.waitUntil(lambda: window.map.hasFocus())
    qtbot.keyClick(window.map, Qt.Key.Key_Escape)
    qtbot.keyClick(window.map, Qt.Key.Key_Delete)
    np.testing.assert_array_equal(pad.ink(), both)
    qtbot.keyClick(window.map, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    np.testing.assert_array_equal(pad.ink(), first)
    assert not window.draw_dock.visibleRegion().isEmpty()  # brought in front to show the change
    assert redo.isEnabled()
    qtbot.keyClick(window.map, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    np.testing.assert_array_equal(pad.ink(), both)
    assert not redo.isEnabled()
    undo.trigger()
    undo.trigger()
    assert pad.is_empty and not undo.isEnabled()
    redo.trigger()
    np.testing.assert_array_equal(pad.ink(), first)
    mx, my = window.map.drawn_marker.getData()  # the star follows the drawing back
    assert window.map.drawn_marker.isVisible() and len(mx) == 1
    draw(qtbot, pad, [(40, 40), (240, 40)])  # a new stroke: nothing left to redo
    assert not redo.isEnabled()
    third = pad.ink().copy()
    pad.redo()
    np.testing.assert_array_equal(pad.ink(), third)
    clear.trigger()
    assert pad.is_empty and not clear.isEnabled()
    # In a text field Ctrl+Z is the field's own while it has typing to take back; then the
    # drawing's (it did nothing there, and a floating dock puts the focus in the z1 field).
    epochs = window.training_panel.epochs
    window.training_dock.raise_()
    epochs.setFocus()
    qtbot.waitUntil(epochs.hasFocus)
    epochs.selectAll()
    qtbot.keyClicks(epochs, "5")
    assert epochs.lineEdit().isUndoAvailable()
    for _ in range(4):
        if not epochs.lineEdit().isUndoAvailable():
            break
        qtbot.keyClick(epochs, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert pad.is_empty  # the field's typing taken back, not the drawing's clear
    assert epochs.text() != "5"
    qtbot.keyClick(epochs, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert not pad.is_empty  # nothing left in the field: the clear is taken back
    z1 = window.z1_edit
    z1.setFocus()
    qtbot.waitUntil(z1.hasFocus)
    qtbot.keyClick(z1, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert pad.is_empty  # redo from an untouched field: the clear again


def test_single_click_dot_and_pen_width(window, qtbot):
    pad = window.draw_panel.pad
    window.draw_panel.pen.setValue(6)
    qtbot.mouseClick(pad, Qt.MouseButton.LeftButton, pos=QPoint(140, 140))
    ink = pad.ink()
    assert 0 < (ink > 0.5).sum() < 80 * pad.devicePixelRatioF() ** 2
    assert np.isfinite(window.draw_panel.recon_view.image).all()


def test_open_image_inverts_dark_ink(window, qtbot, tmp_path):
    image = QImage(100, 60, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    p = QPainter(image)
    p.setPen(QPen(QColor("black"), 8))
    p.drawLine(50, 5, 50, 55)
    p.end()
    path = tmp_path / "digit.png"
    image.save(str(path))
    assert window.draw_panel.open_image(str(path))
    ink = window.draw_panel.pad.ink()
    h, w = ink.shape
    assert ink[h // 2, w // 2] > 0.9 and ink[h // 2, 5] < 0.1  # the stroke is ink, paper is not
    assert window.map.drawn_marker.isVisible()
    opened = ink.copy()
    draw(qtbot, window.draw_panel.pad, [(40, 240), (240, 240)])  # a stroke over it, then back
    qtbot.mouseClick(window.draw_panel.undo_button, Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(window.draw_panel.pad.ink(), opened)
    qtbot.mouseClick(window.draw_panel.undo_button, Qt.MouseButton.LeftButton)  # the opening too
    assert window.draw_panel.pad.is_empty
    bad = tmp_path / "not-an-image.png"
    bad.write_bytes(b"nope")
    assert not window.draw_panel.open_image(str(bad))
    assert "could not read" in window.draw_panel.result_label.text()


def test_a_blank_image_is_refused_and_the_drawing_kept(window, qtbot, tmp_path):
    """A white PNG replaced the drawing and was said to have "lines too thin"."""
    draw(qtbot, window.draw_panel.pad, [(120, 60), (130, 220)])
    qtbot.waitUntil(lambda: window.map.drawn_marker.isVisible(), timeout=3000)
    drawn = window.draw_panel.pad.ink().copy()
    for colour in ("white", "black"):
        image = QImage(80, 80, QImage.Format.Format_RGB32)
        image.fill(QColor(colour))
        path = tmp_path / f"{colour}.png"
        image.save(str(path))
        assert not window.draw_panel.open_image(str(path))
        assert "is blank" in window.draw_panel.result_label.text()
        np.testing.assert_array_equal(window.draw_panel.pad.ink(), drawn)
        assert window.map.drawn_marker.isVisible()


def test_dragging_the_drawn_marker_decodes_along_the_way(window, qtbot):
    """The star follows the drag (decoding as it goes) and goes back to the drawing's code when
    dropped; the cross stays on the point decoded last."""
    window.draw_dock.raise_()  # the drag starts where the drawing is
    draw(qtbot, window.draw_panel.pad, SEVEN)
    reconstruction = window.draw_panel.recon_view.image.copy()
    mx, my = window.map.drawn_marker.getData()
    window.map.view_box.setRange(xRange=(mx[0] - 1, mx[0] + 1), yRange=(my[0] - 1, my[0] + 1))
    vp = window.map.viewport()
    start = view_to_widget(window, mx[0], my[0])
    seen = []
    window.explore.decoded.connect(lambda x, y: seen.append((x, y)))
    send_mouse(vp, QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
    for dx in (10, 20, 30, 40, 50):
        qtbot.wait(25)
        send_mouse(vp, QEvent.Type.MouseMove, start + QPoint(dx, 0), Qt.MouseButton.NoButton,
                   Qt.MouseButton.LeftButton)
    end = start + QPoint(50, 0)
    target = window.map.view_box.mapSceneToView(window.map.mapToScene(end))
    nx, ny = window.map.drawn_marker.getData()
    assert abs(nx[0] - target.x()) < 0.05 and nx[0] > mx[0]  # mid-drag: under the pointer
    # The Draw dock, where the drag began, shows the decodes along the way.
    qtbot.waitUntil(lambda: window.session.decoded_z[0] > mx[0] + 0.1, timeout=2000)
    np.testing.assert_array_equal(window.draw_panel.recon_view.image,
                                  window.decoded_view.image)
    assert not np.array_equal(window.draw_panel.recon_view.image, reconstruction)
    send_mouse(vp, QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=2000)
    assert seen[-1][0] > seen[0][0]
    nx, ny = window.map.drawn_marker.getData()
    assert (nx[0], ny[0]) == (mx[0], my[0])  # dropped: back on the drawing's code
    assert tuple(window.session.drawn_z) == (mx[0], my[0])
    cx, cy = window.map.marker.getData()
    assert window.map.marker.isVisible() and abs(cx[0] - target.x()) < 0.05
    np.testing.assert_array_equal(window.draw_panel.recon_view.image, reconstruction)  # home
    assert window.side_dock.visibleRegion().isEmpty()  # a press on the star keeps Draw in front


def test_a_small_drawing_is_said_to_be_enlarged(window, qtbot):
    panel = window.draw_panel
    draw(qtbot, panel.pad, SEVEN)
    assert "small drawing" not in panel.result_label.text()
    panel.pad.clear()
    panel.pen.setValue(4)
    draw(qtbot, panel.pad, [(140, 140), (146, 144), (150, 150)])  # a 10-px mark
    qtbot.waitUntil(lambda: "small drawing" in panel.result_label.text(), timeout=2000)
    assert "enlarged to fill the 20-px box" in panel.result_label.text()


def test_an_image_with_no_ink_left_once_fitted_says_so(window, tmp_path):
    image = QImage(4000, 10, QImage.Format.Format_RGB32)  # a long thin white bar on black
    image.fill(QColor("black"))
    p = QPainter(image)
    p.fillRect(0, 3, 4000, 4, QColor("white"))
    p.end()
    path = tmp_path / "bar.png"
    image.save(str(path))
    assert window.draw_panel.open_image(str(path))
    assert "no ink is left of this image" in window.draw_panel.result_label.text()
    window.draw_panel.pad.clear()  # an empty pad asks for a drawing again
    assert "no ink" not in window.draw_panel.result_label.text()


@pytest.mark.parametrize("ink", ["black", "white"])
def test_an_image_drawn_on_a_transparent_background_is_read_as_its_strokes(window, tmp_path,
                                                                           ink):
    """A black 7 on a transparent background (a drawing program's export) was refused as blank:
    its transparent pixels read as black."""
    image = QImage(100, 100, QImage.Format.Format_ARGB32)
    image.fill(QColor(0, 0, 0, 0))
    p = QPainter(image)
    p.setPen(QPen(QColor(ink), 10))
    p.drawLine(20, 15, 80, 15)
    p.drawLine(80, 15, 40, 90)
    p.end()
    path = tmp_path / f"{ink}-7.png"
    image.save(str(path))
    assert window.draw_panel.open_image(str(path))
    opened = window.draw_panel.pad.ink()
    h, w = opened.shape
    assert opened.max() > 0.9 and (opened > 0.5).mean() < 0.3  # the strokes, not the background
    assert opened[h // 2, 5] < 0.1  # the left edge is background (the 7 keeps to the right)


def test_an_image_too_large_to_open_says_so_and_the_result_line_stays(window, qtbot, tmp_path):
    """It said "could not read … as an image", and the drawing's z and error line was gone until
    the next stroke."""
    from PySide6.QtGui import QImageReader
    draw(qtbot, window.draw_panel.pad, SEVEN)
    label = window.draw_panel.result_label
    qtbot.waitUntil(lambda: label.text().startswith("z = "), timeout=3000)
    result = label.text()
    image = QImage(1200, 1000, QImage.Format.Format_RGB32)
    image.fill(QColor("white"))
    path = tmp_path / "big.png"
    image.save(str(path))
    limit = QImageReader.allocationLimit()
    QImageReader.setAllocationLimit(1)  # MB: this one needs about 5 (as 30,000 x 30,000 would 3,600)
    try:
        assert not window.draw_panel.open_image(str(path))
    finally:
        QImageReader.setAllocationLimit(limit)
    assert label.text() == (f"{path} is too large to open (1,200 x 1,000 pixels): the pad is "
                            f"unchanged\n{result}")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert not window.draw_panel.open_image(str(bad))  # a second problem replaces the first
    assert label.text() == f"could not read {bad} as an image: the pad is unchanged\n{result}"


def test_the_drawings_error_is_placed_among_the_test_images(window, qtbot):
    """A scribble reconstructed worse than nearly every test image says it is unlike them; any
    drawing's error line says how many test images reconstruct better (from the metrics)."""
    window.draw_dock.raise_()
    window.session.models.metadata["dataset"] = window.session.dataset.name  # the model's own
    qtbot.waitUntil(lambda: window.metrics_panel.metrics is not None, timeout=20000)
    metrics = window.metrics_panel.metrics
    assert window.draw.percentiles == metrics["test_mse_percentiles"]
    pad, label = window.draw_panel.pad, window.draw_panel.result_label
    draw(qtbot, pad, SEVEN)
    error = float(label.text().split("MSE ")[1].split()[0])
    rank = error_rank(error, metrics["test_mse_percentiles"])  # (an untrained model's: any)
    assert ("(every test image reconstructs better)" if rank >= 100 else
            f"({rank:.0f}\u00a0% of test images reconstruct better)") in label.text()
    # The same drawing against an error spread it tops: unlike the test images.
    window.draw._on_metrics({"test_mse_percentiles": list(np.linspace(0, error / 2, 101))})
    assert "(every test image reconstructs better)\nunlike the images the model learned from" \
        in label.text()
    window.draw._on_metrics({"test_mse_percentiles": list(np.linspace(0, error / 0.995, 101))})
    assert "(99.5\u00a0% of test images reconstruct better)\nunlike" in label.text()
    window.draw._on_metrics({"test_mse_percentiles": list(np.linspace(0, error * 2, 101))})
    assert "(50\u00a0% of test images reconstruct better)" in label.text()
    assert "unlike" not in label.text()
    # With the model on data other than its own, those images' errors place nothing.
    window.session.models.metadata["dataset"] = "mnist"
    window.draw.update_drawing()
    assert "reconstruct better" not in label.text() and "MSE" in label.text()
    window.session.models.metadata["dataset"] = window.session.dataset.name
    window.draw.update_drawing()
    assert "(50\u00a0% of test images reconstruct better)" in label.text()
    window.session.metricsCleared.emit("computing the metrics…")  # (another model, say)
    assert "reconstruct better" not in label.text() and window.draw.percentiles is None


def test_a_dock_turned_back_on_comes_in_front_of_its_tabs(window, qtbot):
    """View > Draw after closing it: the dock came back behind the Images tab."""
    window.draw_dock.raise_()
    qtbot.waitUntil(lambda: not window.draw_dock.visibleRegion().isEmpty())
    window.draw_dock.close()
    window.side_dock.raise_()
    action = window.draw_dock.toggleViewAction()
    assert not action.isChecked()
    action.trigger()
    qtbot.waitUntil(lambda: not window.draw_dock.visibleRegion().isEmpty(), timeout=2000)
    assert window.side_dock.visibleRegion().isEmpty()


def test_esc_in_the_middle_of_a_stroke_waits_for_it(window, qtbot):
    """Esc with the mouse button still down cleared the strokes under the stroke being drawn:
    every later move raised IndexError, and undo brought back half a stroke."""
    window.draw_dock.raise_()
    pad = window.draw_panel.pad
    pad.setFocus()
    qtbot.mousePress(pad, Qt.MouseButton.LeftButton, pos=QPoint(60, 60))
    qtbot.mouseMove(pad, QPoint(120, 120))
    qtbot.keyClick(pad, Qt.Key.Key_Escape)
    qtbot.mouseMove(pad, QPoint(180, 180))
    qtbot.mouseRelease(pad, Qt.MouseButton.LeftButton, pos=QPoint(180, 180))
    assert len(pad.strokes) == 1 and len(pad.strokes[0][1]) >= 2
    qtbot.keyClick(pad, Qt.Key.Key_Escape)  # after the stroke: cleared, and undo brings it back
    assert pad.is_empty
    pad.undo()
    assert len(pad.strokes) == 1


def test_a_fashion_mnist_model_sees_drawings_framed_as_its_images(window, qtbot):
    """Fashion-MNIST's images fill their field: a drawing for its model is framed so (the panel
    showed MNIST's 20-px box for it too)."""
    from cae.preprocess import FRAMINGS
    window.draw_dock.raise_()
    panel = window.draw_panel
    draw(qtbot, panel.pad, SEVEN)
    assert panel.box_caption.text() == "20 px"  # (a model of an IDX folder: MNIST's framing)
    window.session.models.metadata["dataset"] = "fashion-mnist"
    window.draw.update_drawing()
    assert panel.box_caption.text() == "28 px" and panel.framing == FRAMINGS["fashion-mnist"]
    rows = np.flatnonzero(panel.input_view.image.max(1) > 0.05)
    assert (rows[0], rows[-1]) == (0, 27)


def test_the_framing_caption_follows_the_model_before_anything_is_drawn(window, qtbot, tmp_path):
    """Started with the Fashion-MNIST model, the empty pad's caption said MNIST's "20 px" until
    a first stroke."""
    from cae.checkpoint import save_checkpoint
    from cae.model import CAE
    panel = window.draw_panel
    assert panel.pad.is_empty and panel.box_caption.text() == "20 px"
    path = save_checkpoint(tmp_path / "clothes.safetensors", CAE(), {"dataset": "fashion-mnist"})
    window.session.load_model(path)
    assert panel.pad.is_empty and panel.box_caption.text() == "28 px"


def test_a_model_of_an_idx_folder_frames_drawings_as_its_images(window, qtbot, tmp_path):
    """A model of an IDX folder whose images fill a 24-px box, centred: a drawing is framed so
    (it was framed as MNIST's digits are, in a 20-px box moved to its centre of mass)."""
    from cae.preprocess import Framing
    from tests.helpers import write_dataset_folder
    folder = write_dataset_folder(tmp_path / "letters", framing=Framing(24, False))
    s = window.session
    s.load_data("folder", str(folder))
    qtbot.waitUntil(lambda: s.dataset.source == str(folder), timeout=10000)
    window.draw_dock.raise_()
    panel = window.draw_panel
    assert panel.box_caption.text() == "24 px"  # before anything is drawn
    draw(qtbot, panel.pad, SEVEN)
    assert panel.framing == Framing(24, False)
    rows = np.flatnonzero(panel.input_view.image.max(1) > 0.05)
    assert (rows[0], rows[-1]) == (2, 25)  # the box's 24 px, centred


def test_a_model_frames_drawings_as_its_file_records_whatever_data_is_loaded(window, qtbot):
    """The letters model over Fashion-MNIST (or MNIST) took the loaded data's framing: its
    file's own, measured on its data when it was trained, comes first."""
    import dataclasses

    from cae.preprocess import Framing
    panel = window.draw_panel
    assert panel.box_caption.text() == "20 px"  # (the loaded tiny folder's, measured)
    window.session.models.metadata["framing"] = dataclasses.asdict(Framing(24, False))
    window.session.models.modelChanged.emit()
    assert panel.framing == Framing(24, False) and panel.box_caption.text() == "24 px"
    window.session.models.metadata["framing"] = {"box": 99}  # a file's nonsense: ignored
    window.session.models.modelChanged.emit()
    assert panel.box_caption.text() == "20 px"


def test_a_model_of_32_px_images_reads_drawings_at_32_px(qtbot, settings, tmp_path,
                                                        no_bundled_model):
    """A model of 32-px images (written with the engine's API) over its own 32-px folder: a
    drawing is framed in a 32-px field (a 28x28 input had raised in the Draw panel's slot)."""
    from cae.checkpoint import save_checkpoint
    from cae.model import CAE, CAEConfig
    from cae.preprocess import Framing
    from tests.helpers import open_window, write_dataset_folder
    torch.manual_seed(0)
    model = save_checkpoint(tmp_path / "m32.safetensors", CAE(CAEConfig(image_size=32)),
                            {"dataset": "big"})
    folder = write_dataset_folder(tmp_path / "big", n_train=64, n_test=32,
                                  framing=Framing(22, True, 32))
    w = open_window(qtbot, settings, model, folder, 32)
    w.draw_dock.raise_()
    panel = w.draw_panel
    draw(qtbot, panel.pad, SEVEN)
    assert panel.framing == Framing(22, True, 32)
    assert (panel.box_caption.text(), panel.field_caption.text()) == ("22 px", "32x32")
    assert panel.input_view.image.shape == panel.recon_view.image.shape == (32, 32)
    assert w.session.drawn_z is not None and w.map.drawn_marker.isVisible()
    w.close()
