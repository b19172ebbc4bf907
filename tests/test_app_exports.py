"""File ▸ Export map / timeline animation / report, from the window, on a model it trained."""
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def trained(window, qtbot):
    p = window.training_panel
    p.epochs.setValue(3)
    p.batch_size.setValue(32)
    p.device.setCurrentIndex(p.device.findData("cpu"))
    with qtbot.waitSignal(window.session.run.ended, timeout=60000):
        window.training.start()
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    qtbot.waitUntil(lambda: not window.session.tasks.running("codes"), timeout=20000)
    return window


def wait_file(qtbot, window, kind, path):
    qtbot.waitUntil(lambda: not window.session.tasks.running(kind), timeout=60000)
    assert not window.last_error, window.last_error
    assert path.is_file()


def test_the_animation_has_a_frame_per_step_and_the_epochs_differ(trained, qtbot, tmp_path):
    window = trained
    path = tmp_path / "run.gif"
    assert window.exports.export_animation(str(path), {"size": 240, "frames_per_epoch": 2,
                                                       "mosaic": False, "loss": True})
    wait_file(qtbot, window, "animation", path)
    gif = Image.open(path)
    assert gif.size == (240, 240)
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("RGB"), np.int16))
    assert len(frames) == (len(window.session.timeline) - 1) * 2 + 1  # 4 epochs: 7 frames
    assert np.abs(frames[0] - frames[-1]).mean() > 1.0  # the codes moved between epochs


def test_the_map_export_holds_one_group_per_visible_class(window, qtbot, tmp_path):
    window.map.set_class_visible(3, False)
    path = tmp_path / "map.svg"
    assert window.exports.export_map(str(path), {"scale": 1, "mosaic": False, "legend": True})
    wait_file(qtbot, window, "map", path)
    root = ET.parse(path).getroot()
    groups = [g for g in root.iter("{http://www.w3.org/2000/svg}g")
              if g.get("id", "").startswith("class-")]
    shown = {int(label) for label in np.unique(window.session.points.labels)} - {3}
    assert {g.get("id") for g in groups} == {f"class-{c}" for c in shown}
    png = tmp_path / "map.png"
    assert window.exports.export_map(str(png), {"scale": 3, "mosaic": True, "legend": True})
    wait_file(qtbot, window, "map", png)
    assert Image.open(png).size == (2400, 2400)  # 800 x 800 at scale 3


def test_the_report_is_one_page(window, qtbot, tmp_path):
    path = tmp_path / "report.pdf"
    assert window.exports.export_report(str(path))
    wait_file(qtbot, window, "report", path)
    data = path.read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page(?!s)", data)) == 1


def test_an_animation_needs_a_timeline(window):
    assert not window.exports.export_animation("x.gif", {"size": 200, "frames_per_epoch": 1,
                                                         "mosaic": False, "loss": False})
    assert "epoch by epoch" in window.last_error
