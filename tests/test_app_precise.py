"""The decoded-image map and precise control of the decoded point."""
import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

from app.mosaic import grid_centres, tile_at


def decode(window, z):
    with torch.no_grad():
        return window.models.model.decode(torch.tensor(np.array([z], np.float32))).clamp(0, 1)[0, 0].numpy()


def test_mosaic_tiles_are_decodes_of_their_cell_centres(window, qtbot):
    window.mosaic_size.setValue(6)
    window.mosaic_action.setChecked(True)
    qtbot.waitUntil(lambda: window.map.mosaic_rect == window.map.visible_rect(), timeout=5000)
    image = window.map.mosaic_item.image
    assert image.shape == (6 * 28, 6 * 28)
    centres = grid_centres(*window.map.mosaic_rect, 6)
    for row, col in ((0, 0), (2, 5), (5, 1)):
        np.testing.assert_allclose(tile_at(image, 6, row, col), decode(window, centres[row * 6 + col]),
                                   atol=1e-5)
    # The item covers exactly the visible region.
    x0, x1, y0, y1 = window.map.visible_rect()
    br = window.map.mosaic_item.mapRectToView(window.map.mosaic_item.boundingRect())
    assert br.left() == pytest.approx(x0) and br.right() == pytest.approx(x1)
    assert br.top() == pytest.approx(y0) and br.bottom() == pytest.approx(y1)


def test_mosaic_follows_pan_and_zoom_and_turns_off(window, qtbot):
    window.mosaic_action.setChecked(True)
    qtbot.waitUntil(lambda: window.map.mosaic_rect is not None, timeout=5000)
    window.map.view_box.setRange(xRange=(-0.5, 0.5), yRange=(-0.25, 0.25), padding=0)
    qtbot.waitUntil(lambda: window.map.mosaic_rect == window.map.visible_rect(), timeout=5000)
    assert window.map.mosaic_rect == pytest.approx((-0.5, 0.5, -0.25, 0.25))
    window.mosaic_action.setChecked(False)
    assert not window.map.mosaic_item.isVisible()


def test_arrow_keys_nudge_the_decoded_point(window, qtbot):
    window.request_decode(0.2, 0.3)
    window._decode_timer.stop()
    x0, x1, y0, y1 = window.map.visible_rect()
    window.map.setFocus()
    qtbot.keyClick(window.map, Qt.Key.Key_Right)
    window._decode_timer.stop()
    assert window.current_z == pytest.approx((0.2 + 0.01 * (x1 - x0), 0.3))
    qtbot.keyClick(window.map, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert window.current_z == pytest.approx((0.2 + 0.01 * (x1 - x0), 0.3 - 0.1 * (y1 - y0)))
    np.testing.assert_allclose(window.decoded_view.image, decode(window, window.current_z), atol=1e-6)
    assert "decodes/s" in window.coords_label.text()


def test_typed_coordinates(window, qtbot):
    window.z1_edit.setText("0.5")
    window.z2_edit.setText("-1.25")
    assert window.go_to_typed_z()
    assert window.current_z == (0.5, -1.25)
    np.testing.assert_allclose(window.decoded_view.image, decode(window, (0.5, -1.25)), atol=1e-6)
    for z1, z2, message in (("nan", "0", "finite"), ("inf", "1", "finite"), ("abc", "1", "two numbers"),
                            ("", "", "two numbers")):
        window.z1_edit.setText(z1)
        window.z2_edit.setText(z2)
        assert not window.go_to_typed_z()
        assert message in window.last_error
        assert window.current_z == (0.5, -1.25)
