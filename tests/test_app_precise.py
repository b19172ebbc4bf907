"""The decoded-image map and precise control of the decoded point."""
import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from cae.mosaic import grid_centres
from tests.helpers import choose_colouring, tile_at


def decode(window, z):
    with torch.no_grad():
        model = window.session.models.model
        return model.decode(torch.tensor(np.array([z], np.float32))).clamp(0, 1)[0, 0].numpy()


def _give_contrast(window) -> None:
    """The fixture's untrained model draws pixels under 0.02; scaled up, its output layer draws
    over all of [0, 1], so a wrong or blank tile cannot pass for a right one."""
    state = {k: v.numpy().copy() for k, v in window.session.models.model.state_dict().items()}
    state["decoder.4.weight"] *= 300.0
    window.session.models.update_weights(state)


def _assert_tile(tile: np.ndarray, expected: np.ndarray) -> None:
    """Within 1% of the tile's own contrast (the README's 0.01 on a full-range image)."""
    contrast = float(np.ptp(expected))
    assert contrast > 0.5, contrast
    assert np.abs(tile - expected).max() <= 0.01 * contrast


def test_mosaic_tiles_are_decodes_of_their_cell_centres(window, qtbot):
    _give_contrast(window)
    window.toolbar.mosaic_size.setValue(6)
    window.toolbar.mosaic_action.setChecked(True)
    qtbot.waitUntil(lambda: window.map.mosaic_rect == window.map.visible_rect(), timeout=5000)
    image = window.map.mosaic_item.image
    cols, rows = window.layers.mosaic_shape
    assert cols == 6 and image.shape == (rows * 28, 6 * 28)
    centres = grid_centres(*window.map.mosaic_rect, 6, rows)
    for row, col in ((0, 0), (rows // 2, 5), (rows - 1, 1)):
        _assert_tile(tile_at(image, 6, row, col), decode(window, centres[row * 6 + col]))
    # The item covers exactly the visible region.
    x0, x1, y0, y1 = window.map.visible_rect()
    br = window.map.mosaic_item.mapRectToView(window.map.mosaic_item.boundingRect())
    assert br.left() == pytest.approx(x0) and br.right() == pytest.approx(x1)
    assert br.top() == pytest.approx(y0) and br.bottom() == pytest.approx(y1)


def test_mosaic_tiles_are_square_on_the_screen_whatever_the_map_s_shape(window, qtbot):
    """A digit stretched to the plot's shape reads as another digit."""
    window.toolbar.mosaic_size.setValue(8)
    window.toolbar.mosaic_action.setChecked(True)
    for width, height in ((1280, 800), (1000, 780)):
        window.resize(width, height)
        qtbot.waitUntil(lambda: window.map.mosaic_rect == window.map.visible_rect()
                        and window.layers.mosaic_shape[1] == round(
                            8 * window.map.view_box.height() / window.map.view_box.width()),
                        timeout=5000)
        cols, rows = window.layers.mosaic_shape
        box = window.map.view_box.sceneBoundingRect()
        tile_w, tile_h = box.width() / cols, box.height() / rows
        assert cols == 8 and rows != cols
        assert abs(tile_w - tile_h) <= 0.5 * min(tile_w, tile_h) / rows + 1, (tile_w, tile_h)


def test_mosaic_decoder_is_kept_while_the_weights_are(window, qtbot):
    _give_contrast(window)
    window.toolbar.mosaic_action.setChecked(True)
    qtbot.waitUntil(lambda: window.layers.batch_decoder is not None, timeout=5000)
    first = window.layers.batch_decoder
    window.map.view_box.setRange(xRange=(-0.5, 0.5), yRange=(-0.25, 0.25), padding=0)
    qtbot.waitUntil(lambda: window.map.mosaic_rect == window.map.visible_rect(), timeout=5000)
    assert window.layers.batch_decoder is first  # a pan or zoom reuses it
    # New weights (as a training snapshot brings): a new decoder, and tiles drawn with them.
    state = {k: (-v).numpy() for k, v in window.session.models.model.state_dict().items()}
    window.session.models.update_weights(state)
    qtbot.waitUntil(lambda: window.layers.batch_decoder not in (None, first), timeout=5000)
    qtbot.waitUntil(lambda: window.map.mosaic_rect == window.map.visible_rect(), timeout=5000)
    n, rows = window.layers.mosaic_shape
    centre = grid_centres(*window.map.mosaic_rect, n, rows)[n + 1]
    _assert_tile(tile_at(window.map.mosaic_item.image, n, 1, 1), decode(window, centre))
    window.toolbar.mosaic_action.setChecked(False)
    assert window.layers.batch_decoder is None  # its matrices are let go with the mosaic


def test_mosaic_follows_pan_and_zoom_and_turns_off(window, qtbot):
    window.toolbar.mosaic_action.setChecked(True)
    qtbot.waitUntil(lambda: window.map.mosaic_rect is not None, timeout=5000)
    window.map.view_box.setRange(xRange=(-0.5, 0.5), yRange=(-0.25, 0.25), padding=0)
    qtbot.waitUntil(lambda: window.map.mosaic_rect == window.map.visible_rect(), timeout=5000)
    assert window.map.mosaic_rect == pytest.approx((-0.5, 0.5, -0.25, 0.25))
    window.toolbar.mosaic_action.setChecked(False)
    assert not window.map.mosaic_item.isVisible()


def test_over_the_mosaic_the_dots_let_the_decoded_digits_show_through(window, qtbot):
    """A dense cluster's dots would otherwise hide its own tiles; they come back as they were
    when the mosaic goes."""
    def alphas():
        return [s.opts["brush"].color().alpha() for s in window.map.scatters]

    before = alphas()
    window.toolbar.mosaic_action.setChecked(True)
    assert max(alphas()) <= 0.6 * min(before)
    assert all(s.opts["pen"].color().alpha() > 0 for s in window.map.scatters)  # a rim on black
    window.toolbar.mosaic_action.setChecked(False)
    assert alphas() == before


def test_arrow_keys_nudge_the_decoded_point(window, qtbot):
    window.explore.request_decode(0.2, 0.3)
    window.explore.stop()
    x0, x1, y0, y1 = window.map.visible_rect()
    window.map.setFocus()
    qtbot.keyClick(window.map, Qt.Key.Key_Right)
    window.explore.stop()
    assert window.session.decoded_z == pytest.approx((0.2 + 0.01 * (x1 - x0), 0.3))
    qtbot.keyClick(window.map, Qt.Key.Key_Down, Qt.KeyboardModifier.ShiftModifier)
    assert window.session.decoded_z == pytest.approx((0.2 + 0.01 * (x1 - x0), 0.3 - 0.1 * (y1 - y0)))
    np.testing.assert_allclose(window.decoded_view.image, decode(window, window.session.decoded_z), atol=1e-6)
    assert "decodes/s" in window.coords_label.text()
    # With equal axes a step is as long on both axes: a hundredth of the shorter span.
    window.layers.set_equal_axes(True)
    window.toolbar.follow_action.setChecked(False)  # the view stays put while the point moves
    qtbot.wait(200)
    x0, x1, y0, y1 = window.map.visible_rect()
    assert abs((x1 - x0) - (y1 - y0)) > 0.05 * (x1 - x0)  # the plot is not square
    start = window.session.decoded_z
    qtbot.keyClick(window.map, Qt.Key.Key_Right)
    window.explore.stop()  # (decoded at once: the next step starts from it)
    qtbot.keyClick(window.map, Qt.Key.Key_Up)
    window.explore.stop()
    assert window.map.visible_rect() == (x0, x1, y0, y1)
    step = 0.01 * min(x1 - x0, y1 - y0)
    assert window.session.decoded_z == pytest.approx((start[0] + step, start[1] + step))
    window.layers.set_equal_axes(False)


def test_the_keyboard_zooms_and_pans_the_map(window, qtbot):
    """+ and - zoom about the view's centre and Ctrl+arrows pan, as the wheel and a drag do
    (a keyboard user could do neither); both stop Follow, as the mouse does; the arrows alone
    still nudge the decoded point, not the view."""
    from app.latent_map import KEY_PAN, KEY_ZOOM
    m = window.map
    window.layers.set_equal_axes(False)

    def frame() -> tuple[float, float, float, float]:  # centre and size
        x0, x1, y0, y1 = m.visible_rect()
        return (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0

    cx, cy, w, h = frame()
    assert window.toolbar.follow_action.isChecked()
    qtbot.keyClick(m, Qt.Key.Key_Plus)
    assert frame() == pytest.approx((cx, cy, w / KEY_ZOOM, h / KEY_ZOOM))
    assert not window.toolbar.follow_action.isChecked()
    qtbot.keyClick(m, Qt.Key.Key_Minus)
    qtbot.keyClick(m, Qt.Key.Key_Minus)
    assert frame() == pytest.approx((cx, cy, w * KEY_ZOOM, h * KEY_ZOOM))
    qtbot.keyClick(m, Qt.Key.Key_Equal)  # (+ without Shift on most keyboards)
    assert frame() == pytest.approx((cx, cy, w, h))
    qtbot.keyClick(m, Qt.Key.Key_Right, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(m, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)
    assert frame() == pytest.approx((cx + KEY_PAN * w, cy + KEY_PAN * h, w, h))
    window.explore.request_decode(0.0, 0.0)
    window.explore.stop()
    qtbot.keyClick(m, Qt.Key.Key_Right)
    window.explore.stop()  # (the nudge decoded at once)
    assert frame() == pytest.approx((cx + KEY_PAN * w, cy + KEY_PAN * h, w, h))
    assert window.session.decoded_z == pytest.approx((0.01 * w, 0.0))


def test_typed_coordinates(window, qtbot):
    window.z1_edit.setText("0.5")
    window.z2_edit.setText("-1.25")
    assert window.explore.go_to_typed_z()
    assert window.session.decoded_z == (0.5, -1.25)
    np.testing.assert_allclose(window.decoded_view.image, decode(window, (0.5, -1.25)), atol=1e-6)
    for z1, z2, message in (("nan", "0", "finite"), ("inf", "1", "finite"), ("abc", "1", "two numbers"),
                            ("", "", "two numbers"), ("1e300", "1e300", "within ±1,000,000,000"),
                            ("0", "-1.1e9", "within")):
        window.z1_edit.setText(z1)
        window.z2_edit.setText(z2)
        assert not window.explore.go_to_typed_z()
        assert message in window.last_error
        assert window.session.decoded_z == (0.5, -1.25)
    window.z1_edit.setText("0")
    window.z2_edit.setText("1e9")  # decoded, and the user is told why no marker shows
    assert window.explore.go_to_typed_z() and window.session.decoded_z == (0.0, 1e9)
    assert "outside the view" in window.statusBar().currentMessage()
    assert np.isfinite(window.decoded_view.image).all()
    # Far values are written short: a label as wide as the window pushed the map aside.
    assert window.z_label.text() == "z = (0.000, 1e+09)"
    assert "z2 +1e+09" in window.coords_label.text()
    window.z1_edit.setText("0,5")  # a decimal comma, as typed where it is the custom
    window.z2_edit.setText(" -1,25 ")
    assert window.explore.go_to_typed_z() and window.session.decoded_z == (0.5, -1.25)
    window.z1_edit.setText("1,000.5")  # a thousands comma is not read as a decimal one
    assert not window.explore.go_to_typed_z() and "two numbers" in window.last_error


def test_enter_in_a_z_field_hands_the_keys_to_the_map(window, qtbot):
    """After Enter the focus stayed in the field, and A and B typed "-2ab" into it."""
    window.show()
    qtbot.waitExposed(window)
    window.activateWindow()
    window.z2_edit.setFocus()
    qtbot.waitUntil(window.z2_edit.hasFocus, timeout=2000)
    window.z1_edit.setText("0.5")
    window.z2_edit.setText("-2")
    qtbot.keyClick(window.z2_edit, Qt.Key.Key_Return)
    assert window.session.decoded_z == (0.5, -2.0)
    qtbot.waitUntil(window.map.hasFocus, timeout=2000)
    qtbot.keyClick(QApplication.focusWidget(), Qt.Key.Key_A)
    assert window.z2_edit.text() == "-2" and window.session.endpoints["A"] is not None
    window.z2_edit.setFocus()
    qtbot.waitUntil(window.z2_edit.hasFocus, timeout=2000)
    window.z2_edit.setText("x")  # refused: the focus stays where the typing is to be mended
    qtbot.keyClick(window.z2_edit, Qt.Key.Key_Return)
    assert window.z2_edit.hasFocus()


def test_the_typed_fields_follow_the_decoded_point_but_not_under_typing(window, qtbot):
    window.explore.request_decode(1.25, -0.5)  # a click, a drag or an arrow key
    assert (window.z1_edit.text(), window.z2_edit.text()) == ("1.250", "-0.500")
    window.z1_edit.setFocus()
    qtbot.waitUntil(window.z1_edit.hasFocus, timeout=2000)
    window.z1_edit.setText("3")
    qtbot.wait(100)  # past the decode interval
    window.explore.request_decode(2.0, 1.0)
    assert window.z1_edit.text() == "3" and window.z2_edit.text() == "1.000"


def _overlay_points(window):
    return [np.column_stack(item.getData()) for item in window.map.overlays]


def test_colour_by_reconstruction_error(window, qtbot):
    from app.latent_map import ERROR_BINS
    from cae.metrics import reconstruction_errors
    choose_colouring(window.toolbar, window.toolbar.colour_by.findData("error"))
    qtbot.waitUntil(lambda: window.map.colour_mode == "error", timeout=10000)
    errors = reconstruction_errors(window.session.models.model, window.session.dataset.test_images)
    np.testing.assert_allclose(window.map.colour_values, errors, rtol=1e-5)
    groups = _overlay_points(window)
    assert len(groups) == ERROR_BINS and sum(len(g) for g in groups) == len(errors)
    # Bins go up with the error: every point of a higher bin has at least the error of a lower one.
    by_point = {tuple(p): e for p, e in zip(window.map.codes.astype(float), errors)}
    filled = [[by_point[tuple(p)] for p in g] for g in groups if len(g)]
    assert all(max(a) <= min(b) + 1e-9 for a, b in zip(filled, filled[1:]))
    assert window.map.colour_bar is not None and not window.map.legend.isVisible()
    assert window.map.colour_key.isVisible() and "reconstruction" in window.map.colour_key.text
    choose_colouring(window.toolbar, 0)
    assert window.map.colour_mode == "class" and window.map.overlays == []
    assert all(s.isVisible() for s in window.map.scatters) and window.map.legend.isVisible()


def test_a_colouring_says_how_far_it_is_and_that_it_stopped(window, qtbot, monkeypatch):
    """70,000 digits take a while: the status bar counts, and a switch back to class colours
    meanwhile says so (the count had stayed standing)."""
    said = []
    window.session.status.connect(lambda text, ms: said.append((text, ms)))
    bar = window.toolbar
    n = len(window.session.points)
    choose_colouring(bar, bar.colour_by.findData("error"))
    noun = window.session.dataset.noun  # (the test folder holds "images")
    assert said[-1] == (f"colouring by the reconstruction error of {n:,} {noun}… 0 %", 0)
    choose_colouring(bar, bar.colour_by.findData("class"))  # before the error's result came
    assert said[-1] == ("coloured by class: the other colouring was stopped", 5000)
    qtbot.wait(500)
    assert window.map.colour_mode == "class"  # the stopped one never lands
    choose_colouring(bar, bar.colour_by.findData("knn"))
    qtbot.waitUntil(lambda: window.map.colour_mode == "knn", timeout=20000)
    import cae.metrics
    monkeypatch.setattr(cae.metrics, "DECODE_CHUNK", 16)  # a report after each chunk
    said.clear()
    choose_colouring(bar, bar.colour_by.findData("error"))
    # Meanwhile the class colours, not the votes' colours and key under the name "error".
    assert window.map.colour_mode == "class" and window.map.legend.isVisible()
    qtbot.waitUntil(lambda: window.map.colour_mode == "error", timeout=20000)
    counts = [t for t, _ in said if t.startswith("colouring by the reconstruction error")]
    percents = [int(t.rsplit(" ", 2)[1]) for t in counts]
    assert percents[0] == 0 and percents[-1] == 100 and percents == sorted(percents)
    assert len(percents) >= 5  # (0, then four chunks of 16)
    assert said[-1][0].startswith("mean error")


def test_colour_by_wrong_vote(window, qtbot):
    from cae.metrics import encode_images, knn_predict
    choose_colouring(window.toolbar, window.toolbar.colour_by.findData("knn"))
    qtbot.waitUntil(lambda: window.map.colour_mode == "knn", timeout=20000)
    ds, model = window.session.dataset, window.session.models.model
    # Exact codes vote, as in the Metrics panel and `cae evaluate` (not the map's bf16 codes).
    train_codes = encode_images(model, ds.train_images, precision="fp32")
    test_codes = encode_images(model, ds.test_images, precision="fp32")
    wrong = knn_predict(train_codes, ds.train_labels, test_codes) != ds.test_labels
    np.testing.assert_array_equal(window.map.colour_values, wrong)
    window.session.request_train_codes()
    qtbot.waitUntil(lambda: window.session.train_codes is not None, timeout=20000)
    np.testing.assert_array_equal(window.session.train_codes, train_codes)
    right_pts, wrong_pts = _overlay_points(window)
    assert len(wrong_pts) == wrong.sum() and len(right_pts) == (~wrong).sum()
    key = window.map.colour_key
    assert key.isVisible() and not window.map.legend.isVisible()
    assert f"vote wrong ({wrong.sum():,})" in key.text and f"right ({(~wrong).sum():,})" in key.text
    choose_colouring(window.toolbar, 0)
    assert not key.isVisible() and window.map.legend.isVisible()


def test_wrong_vote_in_the_70k_view_leaves_each_digit_out_of_its_own_vote(window, qtbot):
    from cae.metrics import encode_images, knn_indices, vote
    window.session.set_map_all(True)
    qtbot.waitUntil(lambda: len(window.map.codes) == 320, timeout=10000)
    choose_colouring(window.toolbar, window.toolbar.colour_by.findData("knn"))
    qtbot.waitUntil(lambda: window.map.colour_mode == "knn", timeout=20000)
    ds = window.session.dataset
    train_codes = encode_images(window.session.models.model, ds.train_images, precision="fp32")
    nearest = knn_indices(train_codes, train_codes, k=6)
    expected = []
    for i, row in enumerate(nearest):
        row = [j for j in row if j != i][:5]
        expected.append(vote(ds.train_labels[row][None], 10)[0] != ds.train_labels[i])
    np.testing.assert_array_equal(window.map.colour_values[:256], expected)


def test_colouring_with_grey_mode_on_hides_the_class_scatters(window, qtbot):
    window.toolbar.grey_action.setChecked(True)
    choose_colouring(window.toolbar, window.toolbar.colour_by.findData("error"))
    qtbot.waitUntil(lambda: window.map.colour_mode == "error", timeout=10000)
    assert not any(s.isVisible() for s in window.map.scatters) and not window.map.greyed


def test_the_training_digits_are_encoded_once_for_metrics_and_neighbours(window, qtbot,
                                                                         monkeypatch):
    """Metrics and a drawing's neighbours vote with the same codes of the training digits: one
    encode (cached on disk), where the metrics had encoded them again for themselves."""
    import app.points
    import cae.metrics
    train = window.session.dataset.train_images
    encoded = []

    def counting(real):
        def encode(model, images, *args, **kwargs):
            if len(images) == len(train):
                encoded.append(len(images))
            return real(model, images, *args, **kwargs)
        return encode

    monkeypatch.setattr(app.points, "encode_images", counting(app.points.encode_images))
    monkeypatch.setattr(cae.metrics, "encode_images", counting(cae.metrics.encode_images))
    panel = window.metrics_panel
    window.session.models.new_model()  # a model no cache has seen
    qtbot.waitUntil(lambda: panel.metrics is not None, timeout=20000)
    window.session.request_train_codes()  # (a drawing asks, and gets them at once)
    assert window.session.train_codes is not None and encoded == [len(train)]
    expected = cae.metrics.evaluate(window.session.models.model, window.session.dataset)
    assert panel.metrics["knn5_confusion"] == expected["knn5_confusion"]
    encoded.clear()
    window.session.forget_train_codes()  # as after a restart: the disk cache has them
    window.session._metrics_of = None  # (the metrics too: computed again, with those codes)
    with qtbot.waitSignal(window.session.metricsReady, timeout=20000):
        window.session.refresh_metrics()
    assert window.session.train_codes is not None and encoded == []


def test_a_mosaic_far_from_the_view_is_hidden_until_the_next_one(window, qtbot):
    """When a run's view followed its spreading codes, the last mosaic stood for seconds as a
    thin black strip where the old view had been.  One that covers under a quarter of the view
    is hidden until its successor comes; a pan that keeps most of it in view keeps it."""
    window.toolbar.mosaic_action.setChecked(True)
    box = window.map.view_box
    box.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
    qtbot.waitUntil(lambda: window.map.mosaic_rect == window.map.visible_rect(), timeout=5000)
    box.setRange(xRange=(0.3, 1.3), yRange=(0, 1), padding=0)  # a pan: 70 % still in view
    assert window.map.mosaic_item.isVisible() and window.map.mosaic_rect is not None
    qtbot.waitUntil(lambda: window.map.mosaic_rect == window.map.visible_rect(), timeout=5000)
    box.setRange(xRange=(-10, 10), yRange=(-10, 10), padding=0)  # as Follow refits a run's view
    assert not window.map.mosaic_item.isVisible() and window.map.mosaic_rect is None
    qtbot.waitUntil(lambda: window.map.mosaic_rect == window.map.visible_rect(), timeout=5000)
    assert window.map.mosaic_item.isVisible()
