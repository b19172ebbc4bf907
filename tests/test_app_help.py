"""Help ▸ Keys and mouse lists what the keys do, read from the menus themselves."""
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QMessageBox

from app.keys_help import WIDGET_KEYS


def test_f1_lists_every_menu_shortcut_and_the_maps_own_keys(window, qtbot):
    window.activateWindow()
    window.map.setFocus()
    qtbot.keyClick(window.map, Qt.Key.Key_F1)
    boxes = [w for w in QApplication.topLevelWidgets()
             if isinstance(w, QMessageBox) and w.isVisible() and w.windowTitle() == "Keys and mouse"]
    assert len(boxes) == 1
    text = boxes[0].text()
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
