"""Interpolation between two latent points: path, filmstrip, exports."""
import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication
from app.interpolation_panel import StripView, best_columns, filmstrip

from tests.test_app_draw import SEVEN, draw
from tests.test_app_explore import send_mouse, view_to_widget


def decode(window, zs):
    with torch.no_grad():
        model = window.session.models.model
        return model.decode(torch.from_numpy(np.asarray(zs, np.float32))).clamp(0, 1)[:, 0].numpy()


def test_strip_ends_are_the_decodes_of_the_end_points(window, qtbot):
    window.explore.request_decode(-0.3, 0.4)
    assert window.interpolation.set_endpoint("A", "decoded")
    draw(qtbot, window.draw_panel.pad, SEVEN)
    assert window.interpolation.set_endpoint("B", "drawn")
    a, b = np.array([-0.3, 0.4], np.float32), window.session.drawn_z
    panel = window.interp_panel
    panel.steps.setValue(7)
    assert panel.frames.shape == (7, 28, 28) and panel.zs.shape == (7, 2)
    np.testing.assert_allclose(panel.zs[0], a, atol=1e-6)
    np.testing.assert_allclose(panel.zs[-1], b, atol=1e-6)
    np.testing.assert_allclose(panel.frames[0], decode(window, [a])[0], atol=1e-6)
    np.testing.assert_allclose(panel.frames[-1], decode(window, [b])[0], atol=1e-6)
    np.testing.assert_allclose(panel.frames[3], decode(window, [(a + b) / 2])[0], atol=1e-5)
    x, y = window.map.path_item.getData()
    assert len(x) == 7 and (x[0], y[0]) == (float(a[0]), float(a[1]))
    label_a, label_b = window.map.path_ends  # the ends are named on the map
    assert label_a.textItem.toPlainText() == "A" and label_b.textItem.toPlainText() == "B"
    assert label_b.isVisible() and (label_b.pos().x(), label_b.pos().y()) == pytest.approx(
        (float(b[0]), float(b[1])))
    view = panel.strip_view  # the seven frames, wrapped to be largest in the view
    columns = best_columns(7, view.width(), view.height())
    np.testing.assert_array_equal(view.image, filmstrip(panel.frames, columns=columns))
    halo, line = window.map.path_item.opts["shadowPen"], window.map.path_item.opts["pen"]
    assert halo.color().lightness() == 255 and halo.widthF() > line.widthF()  # seen on the mosaic


def test_hovered_data_point_as_end_point_with_the_key(window, qtbot):
    i = 7
    send_mouse(window.map.viewport(), QEvent.Type.MouseMove, view_to_widget(window, *window.map.codes[i]),
               Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: window.map.hover_index >= 0, timeout=2000)
    button = window.training_panel.train_button  # the key works wherever the focus is
    button.setFocus()
    qtbot.keyClick(button, Qt.Key.Key_A)
    np.testing.assert_array_equal(window.session.endpoints["A"], window.map.codes[window.map.hover_index])
    assert window.session.endpoints["B"] is None and window.interp_panel.frames is None
    window.z1_edit.setFocus()  # but typing into a text field types
    qtbot.keyClick(window.z1_edit, Qt.Key.Key_B)
    assert window.session.endpoints["B"] is None
    # The pointer leaves the map: the point it last passed over is not "under the pointer".
    from PySide6.QtCore import QEvent as E
    from PySide6.QtWidgets import QApplication
    QApplication.sendEvent(window.map, E(E.Type.Leave))
    assert window.map.hover_index == -1
    button.setFocus()
    qtbot.keyClick(button, Qt.Key.Key_B)
    assert window.session.endpoints["B"] is None and "cannot set B" in window.statusBar().currentMessage()


def test_the_key_sets_an_end_at_the_maps_point_under_the_pointer_where_no_digit_is(window,
                                                                                 qtbot):
    """Over an empty part of the map the key took the decoded point instead: pressed there after
    A had been set from it, B was the same point and the strip twenty equal digits."""
    from PySide6.QtGui import QCursor
    x0, x1, y0, y1 = window.map.visible_rect()
    codes = window.map.codes
    grid = [(x0 + (x1 - x0) * i / 20, y0 + (y1 - y0) * j / 20)
            for i in range(2, 19) for j in range(2, 19)]  # the emptiest spot inside the view
    z = max(grid, key=lambda p: np.hypot(codes[:, 0] - p[0], codes[:, 1] - p[1]).min())
    window.map.explored.emit(0.0, 0.0)  # a decoded point elsewhere
    qtbot.waitUntil(lambda: window.session.decoded_z is not None, timeout=5000)
    assert window.interpolation.set_endpoint("A", "decoded")
    QCursor.setPos(window.map.viewport().mapToGlobal(view_to_widget(window, *z)))
    qtbot.waitUntil(lambda: window.map.underMouse(), timeout=2000)
    assert window.map.hover_index == -1  # no digit under it
    button = window.training_panel.train_button
    button.setFocus()
    qtbot.keyClick(button, Qt.Key.Key_B)
    px, py = window.map.view_box.viewPixelSize()
    b = window.session.endpoints["B"]
    assert abs(b[0] - z[0]) < 1.5 * px and abs(b[1] - z[1]) < 1.5 * py  # there, to a pixel
    assert window.interp_panel.frames is not None
    qtbot.keyClick(button, Qt.Key.Key_A)  # A there too: the same point, and said so
    assert "A and B are the same point" in window.statusBar().currentMessage()


def test_missing_end_point_is_explained(window):
    assert not window.interpolation.set_endpoint("B", "drawn")
    assert "draw a digit first" in window.statusBar().currentMessage()


def test_exports(window, tmp_path):
    window.session.endpoints = {"A": np.array([0, 0], np.float32), "B": np.array([1, 1], np.float32)}
    window.interpolation.update()
    png, csv = tmp_path / "strip.png", tmp_path / "z.csv"
    assert window.interp_panel.save_png(str(png)) == ""
    assert window.statusBar().currentMessage() == f"saved {png}"  # the user hears it worked
    image = QImage(str(png))
    assert image.height() == 28 * 4 and image.width() == (10 * 28 + 9 * 2) * 4
    assert window.interp_panel.save_csv(str(csv)) == ""
    table = np.loadtxt(csv, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 1:].astype(np.float32), window.interp_panel.zs)
    assert window.interp_panel.save_csv(str(tmp_path / "missing" / "z.csv")).startswith("cannot write")
    window.interpolation._report("could not write x")
    assert "could not write x" in window.last_error


def test_far_ends_are_written_short(window):
    """A: (1000000.000, -1000000.000) widened the dock past the window."""
    import numpy as np
    window.session.set_endpoint("A", np.array([1e6, -1e6], np.float32))
    window.session.set_endpoint("B", np.array([0.25, -2.0], np.float32))
    panel = window.interp_panel
    assert panel.a_label.text() == "A: (1e+06, -1e+06)"
    assert panel.b_label.text() == "B: (0.250, -2.000)"


def test_a_text_field_behind_another_tab_gives_up_the_keyboard(window, qtbot):
    """Typed z, then the Interpolation tab: A and B must not go on typing into the hidden z2."""
    window.side_dock.raise_()
    window.activateWindow()
    window.z2_edit.setFocus()
    qtbot.waitUntil(window.z2_edit.hasFocus, timeout=2000)
    window.interp_dock.raise_()
    qtbot.waitUntil(lambda: not window.z2_edit.hasFocus(), timeout=2000)
    assert window.map.hasFocus()
    i = 5
    send_mouse(window.map.viewport(), QEvent.Type.MouseMove,
               view_to_widget(window, *window.map.codes[i]), Qt.MouseButton.NoButton,
               Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: window.map.hover_index >= 0, timeout=2000)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_A)  # where the keyboard is now
    assert window.session.endpoints["A"] is not None
    assert window.z2_edit.text() == ""


def test_many_frames_wrap_into_rows_that_fill_the_view(qtbot):
    """50 decodes in one row of a 400 px dock were 8 px each; wrapped, they fill the view."""
    view = StripView(56)
    qtbot.addWidget(view)
    view.resize(400, 430)
    view.show()
    frames = np.random.default_rng(0).uniform(size=(50, 28, 28)).astype(np.float32)
    view.set_frames(frames)
    h, w = view.image.shape
    scale = min(400 / w, 430 / h)
    assert 28 * scale >= 40  # each frame at least 40 px on screen
    columns = (w + 2) // 30
    assert columns * -(-50 // columns) >= 50 and 1 < columns < 50
    np.testing.assert_array_equal(view.image[:28, 30:58], frames[1])  # reading order
    np.testing.assert_array_equal(view.image[30:58, :28], frames[columns])
    view.resize(1200, 120)  # a wide, low view: fewer rows
    assert view.image.shape[0] < h
    assert best_columns(1, 100, 100) == 1 and best_columns(4, 1000, 100) == 4
