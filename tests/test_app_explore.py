"""Exploring the map with real mouse events: click, drag, hover, legend."""
import gc

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QPushButton

from cae.metrics import encode_images


def view_to_widget(window, x: float, y: float) -> QPoint:
    scene = window.map.view_box.mapViewToScene(QPointF(x, y))
    return window.map.mapFromScene(scene)


def send_mouse(widget, kind, pos: QPoint, button, buttons):
    ev = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons,
                     Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, ev)


def expected_decode(window, z):
    with torch.no_grad():
        model = window.session.models.model
        return model.decode(torch.tensor([z], dtype=torch.float32)).clamp(0, 1)[0, 0].numpy()


def test_map_shows_the_models_codes(window):
    ds = window.session.dataset
    np.testing.assert_allclose(window.map.codes, encode_images(window.session.models.model, ds.test_images),
                               atol=1e-5)
    counts = [len(s.data) for s in window.map.scatters]
    assert counts == np.bincount(ds.test_labels, minlength=10).tolist()


def test_click_anywhere_decodes_that_point(window, qtbot):
    vb = window.map.view_box
    (x0, x1), (y0, y1) = vb.viewRange()
    target = (x0 + 0.3 * (x1 - x0), y0 + 0.6 * (y1 - y0))  # not necessarily on a data point
    pos = view_to_widget(window, *target)
    with qtbot.waitSignal(window.explore.decoded, timeout=3000) as blocker:
        qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    z = blocker.args
    px, py = vb.viewPixelSize()
    assert abs(z[0] - target[0]) <= 2 * px and abs(z[1] - target[1]) <= 2 * py
    np.testing.assert_allclose(window.decoded_view.image, expected_decode(window, z), atol=1e-6)
    assert window.session.decoded_z == tuple(z)
    mx, my = window.map.marker.getData()
    assert (mx[0], my[0]) == pytest.approx(z)
    assert f"{z[0]:+.3f}" in window.coords_label.text()


def test_clicks_leave_no_point_objects_behind(window, qtbot):
    """pyqtgraph makes an object per point of a scatter that handles a click, tied to its data in
    a cycle the collector cannot free (through a numpy object array): the marker did, once per
    click (2,000 in the soak run). No scatter of the map handles clicks (the map does)."""
    from pyqtgraph.graphicsItems.ScatterPlotItem import SpotItem

    ours = {id(window.map.marker), id(window.map.drawn_marker), *map(id, window.map.scatters)}
    window.map.set_drawn_marker(tuple(window.map.codes[1]))
    targets = [window.map.codes[0], window.map.codes[0], window.map.codes[1]]  # a point, the cross, the star
    for z in targets:
        with qtbot.waitSignal(window.explore.decoded, timeout=3000):
            qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton,
                             pos=view_to_widget(window, float(z[0]), float(z[1])))
    window.map.set_marker(0.0, 0.0)
    gc.collect()
    spots = [o for o in gc.get_objects() if isinstance(o, SpotItem) and id(o._SpotItem__plot_ref()) in ours]
    assert spots == []


def test_a_click_from_another_tab_brings_the_decoded_image_forward(window, qtbot):
    def shown(dock) -> bool:  # (Qt calls a dock behind another tab visible)
        return dock.isVisible() and not dock.visibleRegion().isEmpty()

    window.draw_dock.raise_()  # the Draw tab hides the Images tab
    qtbot.waitUntil(lambda: not shown(window.side_dock), timeout=2000)
    vb = window.map.view_box
    (x0, x1), (y0, y1) = vb.viewRange()
    pos = view_to_widget(window, x0 + 0.3 * (x1 - x0), y0 + 0.6 * (y1 - y0))
    qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: shown(window.side_dock), timeout=2000)
    window.side_dock.close()  # closed by the user: it stays closed
    qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.wait(50)
    assert not shown(window.side_dock)


def test_a_click_keeps_the_interpolation_tab_whose_ends_it_sets(window, qtbot):
    """Interpolation's ends come from the point just pressed ("A ← decoded point"): a press
    brought the Images tab forward over its buttons each time."""
    window.interp_dock.raise_()
    qtbot.waitUntil(lambda: not window.interp_dock.visibleRegion().isEmpty(), timeout=2000)
    vb = window.map.view_box
    (x0, x1), (y0, y1) = vb.viewRange()
    z = (x0 + 0.3 * (x1 - x0), y0 + 0.6 * (y1 - y0))
    qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=view_to_widget(window, *z))
    qtbot.wait(50)
    assert not window.interp_dock.visibleRegion().isEmpty()
    assert window.side_dock.visibleRegion().isEmpty()
    a_button = next(b for b in window.interp_panel.findChildren(QPushButton)
                    if b.text() == "A ← decoded point")
    qtbot.mouseClick(a_button, Qt.MouseButton.LeftButton)
    np.testing.assert_allclose(window.session.endpoints["A"], z, atol=0.05 * (x1 - x0))


def test_a_click_keeps_the_draw_tab_while_it_holds_a_drawing(window, qtbot):
    """Pressed to compare the map with a drawing, the Images tab came over the drawing; with
    nothing drawn, a press shows its decoded image as before."""
    from tests.test_app_draw import draw
    vb = window.map.view_box
    (x0, x1), (y0, y1) = vb.viewRange()
    at = view_to_widget(window, x0 + 0.3 * (x1 - x0), y0 + 0.6 * (y1 - y0))
    window.draw_dock.raise_()
    qtbot.waitUntil(lambda: not window.draw_dock.visibleRegion().isEmpty(), timeout=2000)
    qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.wait(50)
    assert not window.side_dock.visibleRegion().isEmpty()  # an empty pad: Images comes forward
    window.draw_dock.raise_()
    qtbot.waitUntil(lambda: not window.draw_dock.visibleRegion().isEmpty(), timeout=2000)
    draw(qtbot, window.draw_panel.pad, [(120, 60), (130, 220)])
    qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=at)
    qtbot.wait(50)
    assert not window.draw_dock.visibleRegion().isEmpty()  # the drawing stays in sight
    assert window.side_dock.visibleRegion().isEmpty()


def tab_chain(window, key: Qt.Key, start, steps: int = 60) -> list:
    """The widgets Tab (or Shift+Tab) visits from ``start``, as a keyboard user presses it."""
    window.activateWindow()
    start.setFocus()
    seen = []
    for _ in range(steps):
        widget = QApplication.focusWidget()
        seen.append(widget)
        QTest.keyClick(widget, key, Qt.KeyboardModifier.ShiftModifier
                       if key == Qt.Key.Key_Backtab else Qt.KeyboardModifier.NoModifier)
    return seen


@pytest.mark.parametrize("key", [Qt.Key.Key_Tab, Qt.Key.Key_Backtab])
def test_tab_goes_round_what_can_be_seen(window, qtbot, key):
    """Qt counts the widgets of a dock behind another tab as visible, and Tab went through a
    dozen of them (Draw, Interpolation) with nothing on screen changing."""
    window.show()
    qtbot.waitExposed(window)
    start = window.training_panel.epochs
    seen = tab_chain(window, key, start)
    hidden = [type(w).__name__ for w in seen if w.visibleRegion().isEmpty()]
    assert hidden == []
    assert window.map in seen and seen.count(start) >= 2  # a cycle, through the map
    window.draw_dock.raise_()  # the Draw tab in front: its pad is on the way now
    qtbot.waitUntil(lambda: not window.draw_panel.pad.visibleRegion().isEmpty(), timeout=2000)
    assert window.draw_panel.pad in tab_chain(window, key, start)


def test_the_press_itself_decodes_before_any_release(window, qtbot):
    vb = window.map.view_box
    (x0, x1), (y0, y1) = vb.viewRange()
    pos = view_to_widget(window, x0 + 0.4 * (x1 - x0), y0 + 0.4 * (y1 - y0))
    decodes = window.explore.decode_count
    qtbot.mousePress(window.map.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert window.explore.decode_count == decodes + 1  # at once, inside the press
    qtbot.mouseRelease(window.map.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    # Neither a pan (Shift + press) nor a press on an axis is a point of the plane.
    qtbot.mousePress(window.map.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.ShiftModifier, pos)
    qtbot.mouseRelease(window.map.viewport(), Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.ShiftModifier, pos)
    axis = window.map.plot_item.getAxis("bottom")
    on_axis = window.map.mapFromScene(axis.mapToScene(axis.boundingRect().center()))
    qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=on_axis)
    assert window.explore.decode_count == decodes + 1


def test_drag_decodes_along_the_path(window, qtbot):
    vb = window.map.view_box
    (x0, x1), (y0, y1) = vb.viewRange()
    path = [(x0 + t * (x1 - x0), y0 + 0.5 * (y1 - y0)) for t in np.linspace(0.2, 0.8, 8)]
    seen = []
    window.explore.decoded.connect(lambda x, y: seen.append((x, y)))
    vp = window.map.viewport()
    start = view_to_widget(window, *path[0])
    range_before = vb.viewRange()
    send_mouse(vp, QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton, Qt.MouseButton.LeftButton)
    for x, y in path[1:]:
        qtbot.wait(25)  # longer than the 16 ms decode interval
        send_mouse(vp, QEvent.Type.MouseMove, view_to_widget(window, x, y), Qt.MouseButton.NoButton,
                   Qt.MouseButton.LeftButton)
    qtbot.wait(25)
    send_mouse(vp, QEvent.Type.MouseButtonRelease, view_to_widget(window, *path[-1]),
               Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: len(seen) >= 5, timeout=3000)
    xs = [z[0] for z in seen]
    assert xs == sorted(xs) and xs[-1] - xs[0] > 0.4 * (x1 - x0)  # follows the cursor rightwards
    np.testing.assert_allclose(window.decoded_view.image, expected_decode(window, seen[-1]), atol=1e-6)
    assert vb.viewRange() == range_before  # a plain drag explores; it does not pan


def test_hover_shows_the_original_digit(window, qtbot):
    i = 5
    x, y = window.map.codes[i]
    vp = window.map.viewport()
    send_mouse(vp, QEvent.Type.MouseMove, view_to_widget(window, x, y), Qt.MouseButton.NoButton,
               Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: window.map.hover_index >= 0, timeout=2000)
    j = window.map.hover_index
    np.testing.assert_allclose(window.map.codes[j], window.map.codes[i], atol=0.05 * np.ptp(window.map.codes))
    ring = window.map.hover_ring  # the hovered dot is ringed, where it is
    assert ring.isVisible()
    np.testing.assert_array_equal(np.array(ring.getData()).ravel(), window.map.codes[j])
    for mosaic, colour in ((True, "#ffffff"), (False, "#000000")):  # white over the dark mosaic
        window.map.set_mosaic_shown(mosaic)
        assert ring.opts["pen"].color().name() == colour
    np.testing.assert_allclose(window.hover_view.image, window.session.dataset.test_images[j] / 255.0,
                               atol=1e-6)
    assert f"label {window.session.dataset.test_labels[j]}" in window.hover_label.text()
    assert window.hover_label.text().endswith(f" · test {window.session.dataset.noun[:-1]} {j}")
    window.session.set_map_all(True)  # the training digits first, then the test ones
    qtbot.waitUntil(lambda: window.session.points.source == "all", timeout=30000)
    n_train = len(window.session.dataset.train_images)
    window.explore._on_hover(n_train + j)
    assert window.hover_label.text().endswith(f" · test {window.session.dataset.noun[:-1]} {j}")
    window.explore._on_hover(3)
    assert window.hover_label.text().endswith(f" · training {window.session.dataset.noun[:-1]} 3")
    # Another dataset: the image of the data before is not left under "Image under the cursor".
    window.session.datasetChanged.emit(window.session.dataset)
    assert window.hover_view.image is None and window.hover_label.text() == "hover over a point"


def test_a_point_without_an_image_says_why(window, qtbot):
    """Without any dataset loading, "the images show once the dataset has loaded" promised what
    would never come."""
    from app.points import MapPoints
    s = window.session
    s.set_points(MapPoints(np.zeros((3, 2)), [0, 1, 2], ("a", "b", "c"), None, "stored"), False)
    assert not s.data.busy
    window.explore._on_hover(1)
    assert window.hover_label.text() == ("label b · test point 1 (no image: no dataset is loaded: "
                                         "Data ▸ Choose data folder… or Download MNIST)")


def test_legend_click_toggles_a_class(window, qtbot):
    sample, _label = window.map.legend.items[3]
    scene_pos = sample.mapToScene(sample.boundingRect().center())
    pos = window.map.mapFromScene(scene_pos)
    decodes = window.explore.decode_count
    qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: not window.map.class_visible(3), timeout=2000)
    assert window.explore.decode_count == decodes  # a legend click is not a point of the plane
    # Hidden points are not hovered.
    idx = int(np.flatnonzero(window.map.labels == 3)[0])
    assert window.map.nearest_point(window.map.view_box.mapViewToScene(QPointF(*window.map.codes[idx]))) \
        not in np.flatnonzero(window.map.labels == 3)
    qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: window.map.class_visible(3), timeout=2000)


def test_fit_view_frames_the_codes(window):
    window.map.view_box.setRange(xRange=(100, 101), yRange=(100, 101), padding=0)
    window.map.fit_view()
    (x0, x1), (y0, y1) = window.map.view_box.viewRange()
    c = window.map.codes
    assert x0 <= np.median(c[:, 0]) <= x1 and y0 <= np.median(c[:, 1]) <= y1


def test_a_hand_set_view_is_kept_and_the_status_bar_says_where_the_points_went(window, qtbot):
    """New points that keep the view (another epoch on the timeline) may lie outside a view the
    user set by hand: the view stays, and the status bar says how to see them."""
    from app.points import MapPoints
    messages = []
    window.session.status.connect(lambda text, ms: messages.append(text))
    window.toolbar.follow_action.setChecked(False)
    window.map.view_box.setRange(xRange=(100, 101), yRange=(100, 101), padding=0)
    p = window.session.points
    window.session.set_points(MapPoints(p.codes, p.labels, p.class_names, None, "epoch"), False)
    assert window.map.visible_rect() == pytest.approx((100, 101, 100, 101))
    assert any(f"{len(p)} of the {len(p)} points are outside the view" in m
               for m in messages), messages
    messages.clear()
    window.layers.fit_view()  # Fit view answers the hint: it leaves the status bar
    assert messages == [""]
    window.toolbar.follow_action.setChecked(False)
    window.session.set_points(MapPoints(p.codes, p.labels, p.class_names, None, "epoch"), False)
    assert not any("outside the view" in m for m in messages), messages


def test_all_digits_view(window, qtbot):
    window.session.set_map_all(True)
    qtbot.waitUntil(lambda: len(window.map.codes) == 256 + 64, timeout=10000)
    assert len(window.session.points.images) == 320


def test_grey_out_hidden_classes_instead_of_removing(window, qtbot):
    from app.latent_map import GREYED
    window.toolbar.grey_action.setChecked(True)
    sample, _label = window.map.legend.items[4]
    pos = window.map.mapFromScene(sample.mapToScene(sample.boundingRect().center()))
    qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    scatter = window.map.scatters[4]
    qtbot.waitUntil(lambda: 4 in window.map.greyed, timeout=2000)
    assert scatter.isVisible() and not window.map.class_visible(4)
    assert scatter.opts["brush"].color().name() == GREYED.lower()
    qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=pos)  # colour back
    qtbot.waitUntil(lambda: 4 not in window.map.greyed, timeout=2000)
    assert scatter.isVisible() and window.map.class_visible(4)
    qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    qtbot.waitUntil(lambda: 4 in window.map.greyed, timeout=2000)
    window.toolbar.grey_action.setChecked(False)  # greyed classes become hidden ones
    assert not scatter.isVisible() and not window.map.greyed


def test_the_whole_plot_fits_inside_the_focus_frame(window, qtbot):
    """The 2-px focus frame takes room from the view: the plot (axes and their labels) must fit
    what is left, not the widget's whole size (the "z1" label was cut at the bottom)."""
    m = window.map
    for size in ((600, 500), (513, 731)):
        m.resize(*size)
        qtbot.wait(20)
        viewport = QRectF(m.viewport().rect())
        assert viewport.width() == m.width() - 4  # the frame is there
        shown = m.viewportTransform().mapRect(m.plot_item.sceneBoundingRect())
        assert viewport.contains(shown), (shown, viewport)  # axes and their labels included


def test_p_hides_every_point_and_shows_them_again(window, qtbot):
    """Over the mosaic the dense clusters hide their own tiles: P takes the points away (they
    are neither drawn nor hovered) and brings them back with the legend's choices kept."""
    window.map.set_class_visible(3, False)
    i = int(np.flatnonzero(window.map.labels != 3)[0])
    pos = view_to_widget(window, *window.map.codes[i])
    window.activateWindow()
    window.map.setFocus()
    qtbot.keyClick(window.map, Qt.Key.Key_P)
    assert not window.toolbar.points_action.isChecked()
    assert all(s.opacity() == 0 for s in window.map.scatters)
    assert "P shows them again" in window.statusBar().currentMessage()
    send_mouse(window.map.viewport(), QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton,
               Qt.MouseButton.NoButton)
    qtbot.wait(100)
    assert window.map.hover_index == -1 and not window.map.hover_ring.isVisible()
    window.map.set_colouring("knn", np.zeros(len(window.map.codes), bool))
    assert window.map.overlays and all(o.opacity() == 0 for o in window.map.overlays)
    window.map.set_colouring("class")
    qtbot.keyClick(window.map, Qt.Key.Key_P)
    assert all(s.opacity() == 1 for s in window.map.scatters)
    assert window.statusBar().currentMessage() == "Points shown"
    assert not window.map.class_visible(3) and window.map.class_visible(int(window.map.labels[i]))
    send_mouse(window.map.viewport(), QEvent.Type.MouseMove, pos + QPoint(1, 0),
               Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: window.map.hover_index >= 0, timeout=2000)
    view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
    assert window.toolbar.points_action in view.actions()


@pytest.mark.parametrize("mosaic", [False, True])
def test_legend_swatches_are_the_class_colours_over_the_mosaic_too(window, qtbot, mosaic):
    """The dots are see-through over the mosaic; the swatches stay the colour itself (pale ones
    read as hidden classes, and stayed pale after the mosaic was turned off)."""
    from app.latent_map import PALETTE
    window.toolbar.mosaic_action.setChecked(mosaic)
    window.toolbar.mosaic_action.setChecked(False)
    window.toolbar.mosaic_action.setChecked(mosaic)
    image = window.map.grab().toImage()
    for c in (0, 4, 9):
        sample, _label = window.map.legend.items[c]
        pos = window.map.mapFromScene(sample.mapToScene(QPointF(10, 10)))
        colour = image.pixelColor(pos)
        want = PALETTE[c].lstrip("#")
        rgb = [int(want[i:i + 2], 16) for i in (0, 2, 4)]
        got = (colour.red(), colour.green(), colour.blue())
        assert max(abs(a - b) for a, b in zip(got, rgb)) <= 12, (c, colour.name())


def test_a_view_change_under_a_still_pointer_updates_the_hover(window, qtbot):
    """Fit view (or a zoom by the keys) moves the points, not the pointer: the digit under the
    cursor follows (it kept showing the digit that had been there)."""
    i = 5
    x, y = window.map.codes[i]
    send_mouse(window.map.viewport(), QEvent.Type.MouseMove, view_to_widget(window, x, y),
               Qt.MouseButton.NoButton, Qt.MouseButton.NoButton)
    qtbot.waitUntil(lambda: window.map.hover_index >= 0, timeout=2000)
    (x0, x1), (y0, y1) = window.map.view_box.viewRange()
    far = 10 * (x1 - x0)
    window.map.view_box.setRange(xRange=(x0 + far, x1 + far), yRange=(y0, y1), padding=0)
    qtbot.waitUntil(lambda: window.map.hover_index == -1, timeout=2000)
