"""Numbers typed past a box's range: the nearest end, where QSpinBox dropped the keystroke."""
from PySide6.QtCore import Qt

from app.spin_box import DoubleSpinBox, SpinBox


def type_into(qtbot, box, text: str, key=Qt.Key.Key_Return) -> None:
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), text)
    qtbot.keyClick(box.lineEdit(), key)


def test_a_number_past_the_range_takes_its_end(qtbot):
    box = SpinBox()
    qtbot.addWidget(box)
    box.setRange(2, 40)
    box.setSuffix(" px")
    box.setValue(10)
    box.show()
    type_into(qtbot, box, "500")  # QSpinBox: "50" refused too, "5" stood
    assert box.value() == 40 and box.text() == "40 px"
    type_into(qtbot, box, "1")
    assert box.value() == 2
    type_into(qtbot, box, "25")  # in range: as typed
    assert box.value() == 25
    type_into(qtbot, box, "2x")  # not a number: the letter is refused as before
    assert box.value() == 2
    box.setValue(7)
    box.lineEdit().selectAll()
    qtbot.keyClicks(box.lineEdit(), "99")
    box.clearFocus()  # leaving the box settles it too
    box.interpretText()
    assert box.value() == 40


def test_the_windows_boxes_clamp(window, qtbot):
    window.show()
    qtbot.waitExposed(window)
    mosaic, epochs = window.toolbar.mosaic_size, window.training_panel.epochs
    assert isinstance(mosaic, SpinBox) and isinstance(epochs, SpinBox)
    mosaic.setFocus()
    type_into(qtbot, mosaic, "500")
    assert mosaic.value() == mosaic.maximum()
    epochs.setFocus()
    type_into(qtbot, epochs, "100000")
    assert epochs.value() == epochs.maximum() == 1000


def test_a_decimal_past_the_range_takes_its_end(qtbot):
    """The learning rate's box (1e-5 to 1) kept "5" of a typed "50" and went back to its old
    value for a typed "0"."""
    box = DoubleSpinBox()
    qtbot.addWidget(box)
    box.setDecimals(5)
    box.setRange(1e-5, 1.0)
    box.setValue(0.002)
    box.show()
    type_into(qtbot, box, "50")
    assert box.value() == 1.0
    type_into(qtbot, box, "0")
    assert box.value() == 1e-5
    type_into(qtbot, box, "0.25")
    assert box.value() == 0.25
    whole = SpinBox()
    qtbot.addWidget(whole)
    whole.setRange(2, 40)
    whole.show()
    type_into(qtbot, whole, "7.6")  # a fraction in a whole-number box: rounded
    assert whole.value() == 8
