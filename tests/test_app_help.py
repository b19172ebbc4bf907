"""Help ▸ Keys and mouse lists what the keys do, read from the menus themselves."""
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from app.keys_help import WIDGET_KEYS, KeysSheet


def test_f1_lists_every_menu_shortcut_and_the_maps_own_keys(window, qtbot):
    window.activateWindow()
    window.map.setFocus()
    qtbot.keyClick(window.map, Qt.Key.Key_F1)
    boxes = [w for w in QApplication.topLevelWidgets()
             if isinstance(w, KeysSheet) and w.isVisible() and w.windowTitle() == "Keys and mouse"]
    assert len(boxes) == 1
    text = boxes[0].html
    shortcuts = [a.shortcut().toString() for m in window.menuBar().actions() if m.menu()
                 for a in m.menu().actions() if not a.shortcut().isEmpty()]
    assert {"Ctrl+F", "P", "M", "A", "B", "Ctrl+Q", "F1"} <= set(shortcuts)
    for keys in shortcuts:
        assert f"<b>{keys}</b>" in text
    for _where, keys, _what in WIDGET_KEYS:
        assert keys in text
    boxes[0].close()


def test_m_turns_the_decoded_image_mosaic_on_and_off(window, qtbot):
    window.activateWindow()
    window.map.setFocus()
    qtbot.keyClick(window.map, Qt.Key.Key_M)
    assert window.toolbar.mosaic_action.isChecked()
    qtbot.waitUntil(lambda: window.map.mosaic_item.isVisible(), timeout=20000)
    qtbot.keyClick(window.map, Qt.Key.Key_M)
    assert not window.toolbar.mosaic_action.isChecked() and not window.map.mosaic_item.isVisible()


def test_e_makes_the_axes_equal_and_the_next_start_remembers(window, qtbot, settings):
    """One latent unit as long across as up (distances then mean the same both ways), the codes
    still framed; a window started with the same settings comes up that way."""
    from app.main_window import MainWindow

    def per_unit(w) -> tuple[float, float]:
        px, py = w.map.view_box.viewPixelSize()  # latent units per screen pixel
        return abs(px), abs(py)

    window.resize(1280, 800)
    qtbot.waitUntil(lambda: len(window.map.codes) > 0)
    px, py = per_unit(window)
    assert abs(px / py - 1) > 0.05  # the plot's shape stretched one axis
    window.activateWindow()
    window.map.setFocus()
    qtbot.keyClick(window.map, Qt.Key.Key_E)
    assert window.toolbar.equal_action.isChecked()
    px, py = per_unit(window)
    assert px == pytest.approx(py, rel=1e-3)
    codes, (x0, x1, y0, y1) = window.map.codes, window.map.visible_rect()
    assert ((codes[:, 0] >= x0) & (codes[:, 0] <= x1) & (codes[:, 1] >= y0)
            & (codes[:, 1] <= y1)).mean() > 0.97
    again = MainWindow(settings)
    qtbot.addWidget(again)
    assert again.toolbar.equal_action.isChecked() and again.map.view_box.state["aspectLocked"]
    qtbot.keyClick(window.map, Qt.Key.Key_E)  # and back
    assert not window.map.view_box.state["aspectLocked"]
    assert str(settings.value("equalAxes")) == "false"


def test_help_about_names_the_version_and_where_the_files_are(window, qtbot, monkeypatch):
    import torch

    from app import about
    from cae import __version__
    from cae.code_cache import cache_dir
    shown = []
    monkeypatch.setattr(about.QMessageBox, "about",
                        lambda parent, title, text: shown.append((parent, title, text)))
    help_menu = [m.menu() for m in window.menuBar().actions() if m.text() == "&Help"][0]
    [action] = [a for a in help_menu.actions() if a.text().startswith("&About")]
    action.trigger()
    [(parent, title, text)] = shown
    assert parent is window and title == "About CAE Latent Explorer"
    for part in (f"<td>{__version__}</td>", torch.__version__, window.session.settings.fileName(),
                 str(about.autosave.data_dir()), str(cache_dir()), "conv 7x7x2 VALID"):
        assert part in text, part


def test_the_keys_sheet_fits_a_short_screen_and_scrolls(window, qtbot, monkeypatch):
    """At 1280 x 800 and 150 % (533 logical pixels high) the sheet's last rows and its Close
    button were off the screen."""
    from PySide6.QtCore import QRect
    from app.keys_help import show_keys
    monkeypatch.setattr(type(window.screen()), "availableGeometry", lambda self: QRect(0, 0, 853, 533))
    sheet = show_keys(window, window.menuBar())
    qtbot.addWidget(sheet)
    assert sheet.height() <= 533 - 80 and sheet.width() <= 853
    assert sheet.browser.verticalScrollBar().maximum() > 0  # the rest is a scroll away
    sheet.close()


def test_the_main_controls_each_have_a_tooltip(window):
    """The colour box and the z fields had none (a newcomer hovering them learnt nothing)."""
    bar, panel = window.toolbar, window.training_panel
    for widget in (bar.colour_by, bar.map_set, window.z1_edit, window.z2_edit, window.go_button,
                   panel.train_button, panel.pause_button, panel.stop_button, panel.recipe,
                   window.draw_panel.pen):
        assert widget.toolTip(), widget
