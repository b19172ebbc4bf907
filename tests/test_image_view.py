"""ImageView: pixels as they are (no smoothing), with a frame that shows white edges."""
import numpy as np
from PySide6.QtGui import QColor

from app.image_view import FRAME, ImageView


def test_a_narrow_white_image_keeps_its_shape_and_gets_a_frame(qtbot):
    view = ImageView(44)
    qtbot.addWidget(view)
    view.resize(60, 60)
    view.set_image(np.ones((20, 3)))  # the crop of a drawn "1": white ink only
    picture = view.grab().toImage()
    row = [picture.pixelColor(x, 30) for x in range(60)]
    white = [x for x, c in enumerate(row) if c == QColor("white")]
    assert 6 <= len(white) <= 9  # 3 pixels wide at the 20-pixel height's scale, not stretched
    left, right = white[0] - 1, white[-1] + 1
    assert row[left] == QColor(FRAME) and row[right] == QColor(FRAME)
    assert row[left - 1] == row[right + 1] == view.palette().window().color()
    # No smoothing: the image's own two levels only inside the frame.
    view.set_image(np.array([[0.0, 1.0], [1.0, 0.0]]))
    picture = view.grab().toImage()
    inside = {picture.pixelColor(x, y).name() for x in range(5, 55) for y in range(5, 55)}
    assert inside == {"#000000", "#ffffff"}
