"""A million points: a density image at overview zoom, dots when few are in view, hover and
click at every level (generated codes, ten classes in ten blobs)."""
import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt

from app.density import DOT_LIMIT, density_rgba, hex_rgb
from app.latent_map import PALETTE
from app.points import MapPoints

N = 1_000_000


@pytest.fixture
def million(window, qtbot):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, N)
    centres = np.stack([np.cos(labels * 0.63) * 10, np.sin(labels * 0.63) * 10], axis=1)
    codes = (centres + rng.normal(size=(N, 2))).astype(np.float32)
    window.session.set_points(MapPoints(codes, labels, tuple("0123456789")), fit=True)
    qtbot.waitUntil(lambda: window.map.density_item.isVisible(), timeout=20000)
    return codes, labels


def dots(window) -> int:
    return sum(len(s.getData()[0]) for s in window.map.scatters)


def test_overview_is_a_density_image_coloured_by_class(window, million):
    codes, labels = million
    assert window.map.large and dots(window) == 0
    image = window.map.density_item.image
    x0, x1, y0, y1 = window.map.visible_rect()
    h, w = image.shape[:2]
    for c in (0, 3, 7):  # the pixel at a blob's centre has that class's colour
        cx, cy = np.cos(c * 0.63) * 10, np.sin(c * 0.63) * 10
        px = image[int((cy - y0) / (y1 - y0) * h), int((cx - x0) / (x1 - x0) * w)]
        assert np.abs(px[:3].astype(int) - hex_rgb(PALETTE[c])).max() <= 40, (c, px)
        assert px[3] > 200


def test_zoomed_in_the_points_are_dots_and_hover_and_click_work(window, million, qtbot):
    codes, _ = million
    window.map.view_box.setRange(xRange=(9, 10), yRange=(-0.5, 0.5), padding=0)
    assert 0 < dots(window) <= 4 * DOT_LIMIT and not window.map.density_item.isVisible()
    i = int(np.flatnonzero((np.abs(codes[:, 0] - 9.5) < 0.3) & (np.abs(codes[:, 1]) < 0.3))[0])
    scene = window.map.view_box.mapViewToScene(QPointF(float(codes[i, 0]), float(codes[i, 1])))
    found = window.map.nearest_point(scene)
    assert np.abs(codes[found] - codes[i]).max() < 0.01  # that point, or one on the same pixel
    with qtbot.waitSignal(window.map.explored, timeout=2000):
        qtbot.mouseClick(window.map.viewport(), Qt.MouseButton.LeftButton,
                         pos=window.map.mapFromScene(scene))


def test_hover_works_at_overview_too(window, million):
    """The point found is the one under the cursor (or one within a pixel of it)."""
    codes, _ = million
    scene = window.map.view_box.mapViewToScene(QPointF(float(codes[5, 0]), float(codes[5, 1])))
    found = window.map.nearest_point(scene)
    pixel = np.abs(np.asarray(window.map.view_box.viewPixelSize())).max()
    assert found >= 0 and np.abs(codes[found] - codes[5]).max() <= 2 * pixel


def test_density_counts_every_point_once():
    """Each pixel's opacity follows the log of its own count, its colour the count-weighted mean
    of its classes; a point on the far edge falls outside, as does everything off the rect."""
    red, blue = (255, 0, 0), (0, 0, 255)
    cells = {(0, 0): (1, 0), (1, 2): (9, 0), (3, 3): (6, 3)}  # (column, row): (class 0, class 1)
    codes, labels = [], []
    for (col, row), counts in cells.items():
        for label, count in enumerate(counts):
            codes += [((col + 0.5) / 4, (row + 0.5) / 4)] * count
            labels += [label] * count
    codes.append((1.0, 0.5))  # on x1: outside, as numpy's half-open bins
    labels.append(0)
    codes, labels = np.asarray(codes, np.float32), np.asarray(labels, np.int64)
    image = density_rgba(codes, labels, [red, blue], (0.0, 1.0, 0.0, 1.0), 4, 4)
    top = np.log1p(9)
    for (col, row), (a, b) in cells.items():
        n = a + b
        expected = np.round([(a * 255) / n, 0, (b * 255) / n, 255 * (0.35 + 0.65 * np.log1p(n) / top)])
        np.testing.assert_array_equal(image[row, col], expected)
    assert (image[..., 3] > 0).sum() == len(cells)  # no other pixel drawn
    empty = density_rgba(codes, labels, [red, blue], (5.0, 6.0, 5.0, 6.0), 4, 4)
    assert not empty.any()


def test_a_class_hidden_in_the_legend_leaves_the_density_image(window, million, qtbot):
    def centre_pixel(c: int) -> np.ndarray:
        image = window.map.density_item.image
        x0, x1, y0, y1 = window.map.visible_rect()
        h, w = image.shape[:2]
        cx, cy = np.cos(c * 0.63) * 10, np.sin(c * 0.63) * 10
        return image[int((cy - y0) / (y1 - y0) * h), int((cx - x0) / (x1 - x0) * w)]

    assert centre_pixel(3)[3] > 200
    window.map.set_class_visible(3, False)
    qtbot.waitUntil(lambda: centre_pixel(3)[3] < 50, timeout=20000)
    assert centre_pixel(7)[3] > 200
    window.map.set_class_visible(3, True)
    qtbot.waitUntil(lambda: centre_pixel(3)[3] > 200, timeout=20000)


def test_new_codes_never_get_the_density_image_of_the_codes_before(window, million, qtbot):
    """The pictures were kept under id(codes), which Python hands to a new array once the old
    one is freed: new codes in the same view could get the old codes' picture."""
    codes, labels = million
    assert window.layers._density_cache
    moved = codes + np.float32(3.0)
    window.session.set_points(MapPoints(moved, labels, tuple("0123456789")), fit=False)
    qtbot.waitUntil(lambda: window.layers._density_of is window.map.codes, timeout=20000)
    qtbot.waitUntil(lambda: len(window.layers._density_cache) == 1, timeout=20000)
    rect = window.map.visible_rect()
    x0, x1, y0, y1 = rect
    image = window.map.density_item.image
    expected = density_rgba(window.map.codes, labels, [hex_rgb(c) for c in PALETTE[:10]],
                            (x0, x1, y0, y1), image.shape[1], image.shape[0])
    assert np.abs(image.astype(int) - expected.astype(int)).max() <= 1
