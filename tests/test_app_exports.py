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


def offered_checks(monkeypatch) -> list[dict]:
    """Each options dialog's checkboxes and their defaults, as offered; the user then cancels."""
    from app import exports
    checks: list[dict] = []

    class Dialog:
        def __init__(self, title, parent, spins, given):
            checks.append({k: v[1] for k, v in given.items()})

        def exec(self):
            return exports.QDialog.DialogCode.Rejected

    monkeypatch.setattr(exports, "OptionsDialog", Dialog)
    return checks


def test_the_map_export_asks_for_a_scale_only_for_a_png(window, tmp_path, monkeypatch, qtbot):
    from app import exports
    asked = []

    class Dialog:
        def __init__(self, title, parent, spins, checks):
            asked.append(spins)

        def exec(self):
            return exports.QDialog.DialogCode.Rejected  # the user looks, then cancels

    monkeypatch.setattr(exports, "OptionsDialog", Dialog)
    assert not window.exports.export_map(str(tmp_path / "map.svg"))
    assert not window.exports.export_map(str(tmp_path / "map.png"))
    assert asked == [{}, {"scale": ("Scale (×1 is 800 px wide)", 1, 8, 2)}]
    assert window.exports.export_map(str(tmp_path / "map.svg"), {"mosaic": False, "legend": True})
    qtbot.waitUntil(lambda: (tmp_path / "map.svg").is_file(), timeout=20000)


def test_export_preferences_start_from_the_last_answer(window, tmp_path, monkeypatch, qtbot):
    """The scale, the legend and the animation's frame size are the user's preferences: kept
    (in the settings) from one export to the next.  What the map shows, the mosaic, the points,
    is offered as shown each time."""
    from app import exports
    offered = []

    class Dialog:
        answer: dict = {}

        def __init__(self, title, parent, spins, checks):
            offered.append(({k: v[3] for k, v in spins.items()},
                            {k: v[1] for k, v in checks.items()}))
            self.given = {**{k: v[3] for k, v in spins.items()},
                          **{k: v[1] for k, v in checks.items()}}

        def exec(self):
            return exports.QDialog.DialogCode.Accepted

        def values(self):
            return {**self.given, **Dialog.answer}

    monkeypatch.setattr(exports, "OptionsDialog", Dialog)
    window.session.settings.setValue("exports/Map export/scale", "x")  # a damaged setting
    Dialog.answer = {"scale": 3, "legend": False, "mosaic": True}
    assert window.exports.export_map(str(tmp_path / "a.png"))
    wait_file(qtbot, window, "map", tmp_path / "a.png")
    Dialog.answer = {}
    assert window.exports.export_map(str(tmp_path / "b.png"))
    wait_file(qtbot, window, "map", tmp_path / "b.png")
    assert offered[0][0] == {"scale": 2} and offered[0][1]["legend"] is True
    assert offered[1][0] == {"scale": 3} and offered[1][1]["legend"] is False
    assert offered[1][1]["mosaic"] is False  # the map shows none
    assert window.session.settings.value("exports/Map export/scale") in (3, "3")


def test_the_map_export_draws_as_many_mosaic_tiles_across_as_the_toolbar_says(
        window, tmp_path, monkeypatch, qtbot):
    import cae.render
    seen = []
    real = cae.render.save_map
    monkeypatch.setattr(cae.render, "save_map",
                        lambda *a, **k: seen.append(k["mosaic_tiles"]) or real(*a, **k))
    window.toolbar.mosaic_size.setValue(7)
    path = tmp_path / "map.png"
    assert window.exports.export_map(str(path), {"mosaic": True, "legend": False, "scale": 1})
    qtbot.waitUntil(lambda: path.is_file(), timeout=30000)
    assert seen == [7]  # (it drew 24 whatever the map showed)


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
    # The first and last frames differ (title, view, loss panel; that the codes glide between
    # epochs is test_animate's to check).
    assert np.abs(frames[0] - frames[-1]).mean() > 1.0


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
    from cae.render import MapStyle, layout_map, legend_rows, size_for_plot
    vb = window.map.view_box.sceneBoundingRect()
    points = window.session.points
    rows = legend_rows(points.class_names, points.labels, MapStyle())
    size = size_for_plot(vb.width(), vb.height(), MapStyle(), 800, rows)
    assert Image.open(png).size == (3 * size[0], 3 * size[1])  # the window's aspect, at scale 3
    lay = layout_map(size, points.class_names, points.labels, window.map.visible_rect(),
                     MapStyle(equal_scales=False))
    left, top, right, bottom = lay.box
    assert lay.legend_beside  # beside the plot, as in the window, not over its points
    assert (bottom - top) / (right - left) == pytest.approx(vb.height() / vb.width(), rel=0.01)


def test_the_map_export_offers_the_points_as_the_map_shows_them(window, qtbot, tmp_path,
                                                                 monkeypatch):
    checks = offered_checks(monkeypatch)
    for shown in (True, False):
        window.toolbar.points_action.setChecked(shown)
        assert not window.exports.export_map(str(tmp_path / "map.svg"))
        assert checks[-1]["points"] is shown
    monkeypatch.undo()
    path = tmp_path / "map.svg"  # points off: no class groups, no legend entries
    assert window.exports.export_map(str(path), {"mosaic": False, "points": False, "legend": True})
    wait_file(qtbot, window, "map", path)
    text = path.read_text()
    assert 'id="class-' not in text and "<circle" not in text


def test_the_map_export_shows_exactly_the_view_on_screen(window, qtbot, tmp_path, monkeypatch):
    """Not widened to equal scales: a view 10x taller than wide in latent units stays so."""
    import cae.render
    window.map.view_box.setRange(xRange=(-0.1, 0.1), yRange=(-1, 1), padding=0)
    window.toolbar.follow_action.setChecked(False)
    qtbot.wait(50)
    shown = window.map.visible_rect()
    calls = []
    real = cae.render.save_map
    monkeypatch.setattr(cae.render, "save_map", lambda *a, **k: (calls.append(k), real(*a, **k))[1])
    said = []
    window.session.status.connect(lambda text, _ms: said.append(text))
    path = tmp_path / "map.svg"
    assert window.exports.export_map(str(path), {"scale": 1, "mosaic": False, "legend": True})
    wait_file(qtbot, window, "map", path)
    # Points beyond the view are not drawn, and the status says how many.
    codes = window.session.points.codes
    x0, x1, y0, y1 = shown
    outside = int((~((codes[:, 0] >= x0) & (codes[:, 0] <= x1) & (codes[:, 1] >= y0)
                     & (codes[:, 1] <= y1))).sum())
    assert outside > 0
    qtbot.waitUntil(lambda: any(t.startswith(f"wrote {path}") for t in said), timeout=5000)
    assert f"({outside:,} of the {len(codes):,} points lie outside the view" in \
        [t for t in said if t.startswith(f"wrote {path}")][-1]
    k = calls[0]
    lay = cae.render.layout_map(k["size"], window.session.points.class_names,
                                window.session.points.labels, k["view"], k["style"])
    np.testing.assert_allclose(lay.view, shown, rtol=1e-6)
    vb = window.map.view_box.sceneBoundingRect()
    box_w, box_h = lay.box[2] - lay.box[0], lay.box[3] - lay.box[1]
    assert box_h / box_w == pytest.approx(vb.height() / vb.width(), rel=0.01)


def test_the_report_is_one_page(window, qtbot, tmp_path):
    path = tmp_path / "report.pdf"
    assert window.exports.export_report(str(path))
    wait_file(qtbot, window, "report", path)
    data = path.read_bytes()
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page(?!s)", data)) == 1


def test_mp4_without_ffmpeg_is_refused_before_any_options(window, monkeypatch, tmp_path):
    import cae.animate
    monkeypatch.setattr(cae.animate, "find_ffmpeg", lambda: None)
    state = {k: v.numpy() for k, v in window.session.models.model.state_dict().items()}
    for epoch in range(2):
        window.session.timeline.add(epoch, np.zeros((4, 2), np.float32), np.zeros(4, np.int64),
                                    state)
    asked = []
    monkeypatch.setattr(window.exports, "_ask_options", lambda *a: asked.append(a))
    assert not window.exports.export_animation(str(tmp_path / "run.MP4"))
    assert asked == [] and "needs the ffmpeg program" in window.last_error
    offered = []
    monkeypatch.setattr(window.exports, "_ask_path", lambda *a: offered.append(a[2]) or None)
    assert not window.exports.export_animation()
    assert offered == ["Animated GIF (*.gif)"]  # no MP4 to choose where it cannot be written


def test_an_animation_needs_a_timeline(window):
    """The message says how to get a model with one; for the bundled model, why it has none
    (a lecturer expected the demo model to animate)."""
    options = {"size": 200, "frames_per_epoch": 1, "mosaic": False, "loss": False}
    assert not window.exports.export_animation("x.gif", options)
    assert "epoch by epoch" in window.last_error and "Quick recipe" in window.last_error
    assert "bundled" not in window.last_error
    from cae.bundled import bundled_model_path
    assert window.session.load_model(bundled_model_path("mnist"))
    assert not window.exports.export_animation("x.gif", options)
    assert "the bundled model was saved without them" in window.last_error


def test_the_animation_offers_the_mosaic_as_the_map_shows_it(window, monkeypatch, tmp_path):
    checks = offered_checks(monkeypatch)
    s = window.session
    state = {k: v.numpy() for k, v in s.models.model.state_dict().items()}
    for epoch in (0, 1):
        s.timeline.add(epoch, s.points.codes[:10], s.points.labels[:10], state)
    for shown in (False, True):
        window.toolbar.mosaic_action.setChecked(shown)
        assert not window.exports.export_animation(str(tmp_path / "a.gif"))
        assert checks[-1]["mosaic"] is shown  # the animation's, as the map's, follows the map


def test_the_map_export_marks_the_decoded_point_as_the_map_does(window, qtbot, tmp_path,
                                                                monkeypatch):
    checks = offered_checks(monkeypatch)
    assert not window.exports.export_map(str(tmp_path / "map.svg"))
    assert "cross" not in checks[-1]  # nothing decoded yet: nothing to offer
    x0, x1, y0, y1 = window.map.visible_rect()
    z = (0.6 * x0 + 0.4 * x1, 0.3 * y0 + 0.7 * y1)
    window.map.explored.emit(*z)  # what a click there does
    qtbot.waitUntil(lambda: window.session.decoded_z is not None, timeout=5000)
    assert not window.exports.export_map(str(tmp_path / "map.svg"))
    assert checks[-1]["cross"] is True  # offered, on, as the map shows it
    monkeypatch.undo()
    from cae.render import CROSS, MapStyle, layout_map
    svg = "{http://www.w3.org/2000/svg}"
    for with_cross in (True, False):
        path = tmp_path / f"map-{with_cross}.svg"
        assert window.exports.export_map(str(path), {"mosaic": False, "legend": True,
                                                     "cross": with_cross})
        wait_file(qtbot, window, "map", path)
        root = ET.parse(path).getroot()
        cross = root.find(f".//{svg}path[@id='decoded-point']")
        assert (cross is not None) is with_cross
        if with_cross:  # red, centred where the decoded code lies in the picture
            assert cross.get("stroke") == CROSS
            x_left, y, x_right = (float(v) for v in re.findall(r"[-\d.]+", cross.get("d"))[:3])
            size = (round(float(root.get("width"))), round(float(root.get("height"))))
            lay = layout_map(size, window.session.points.class_names,
                             window.session.points.labels, window.map.visible_rect(),
                             MapStyle(equal_scales=False))
            (px, py), = lay.to_px(np.array([window.session.decoded_z]))
            assert ((x_left + x_right) / 2, y) == pytest.approx((px, py), abs=0.2)


def test_the_animation_can_leave_out_the_classes_hidden_on_the_map(window, monkeypatch,
                                                                   tmp_path, qtbot):
    checks = offered_checks(monkeypatch)
    s = window.session
    state = {k: v.numpy() for k, v in s.models.model.state_dict().items()}
    for epoch in (0, 1):
        s.timeline.add(epoch, s.points.codes[:40], s.points.labels[:40], state)
    assert not window.exports.export_animation(str(tmp_path / "a.gif"))
    assert "hidden" not in checks[-1]  # every class shown: nothing to offer
    window.map.set_class_visible(3, False)
    window.map.set_class_visible(5, False)
    assert not window.exports.export_animation(str(tmp_path / "a.gif"))
    assert checks[-1]["hidden"] is True
    from app.exports import _leave_out
    assert _leave_out(frozenset({3, 5}), [str(c) for c in range(10)]) == \
        "Leave out 3, 5 (hidden on the map)"
    monkeypatch.undo()
    import cae.animate
    seen = []
    real = cae.animate.export_animation
    monkeypatch.setattr(cae.animate, "export_animation",
                        lambda *a, **k: seen.append(a[4].hidden) or real(*a, **k))
    for leave_out in (True, False):
        path = tmp_path / f"a-{leave_out}.gif"
        assert window.exports.export_animation(str(path), {
            "size": 200, "frames_per_epoch": 1, "mosaic": False, "loss": False,
            "hidden": leave_out})
        wait_file(qtbot, window, "animation", path)
    assert seen == [frozenset({3, 5}), frozenset()]


def test_an_animation_after_a_run_stopped_in_its_first_epoch_says_why_not(window, qtbot,
                                                                          answered_questions):
    p = window.training_panel
    p.epochs.setValue(5)
    p.batch_size.setValue(1)  # 256 steps an epoch: stopped long before the first one ends
    p.device.setCurrentIndex(p.device.findData("cpu"))
    window.training.ask_keep = lambda text: True  # "Keep it"
    with qtbot.waitSignal(window.session.training.progress, timeout=30000):
        assert window.training.start()
    with qtbot.waitSignal(window.session.run.ended, timeout=10000):
        window.session.training.stop()
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    assert window.session.dirty and len(window.session.timeline) == 1  # kept: the start only
    assert not window.exports.export_animation("x.gif", {"size": 200, "frames_per_epoch": 1,
                                                         "mosaic": False, "loss": False})
    assert "needs a run that finished at least one epoch" in window.last_error


def test_the_report_shows_the_metrics_the_window_computed(window, qtbot, monkeypatch, tmp_path):
    """A model trained elsewhere on a subset carries that subset's metrics: the report gave
    them as "computed in the app", beside the panel's own numbers for the loaded dataset."""
    from app import exports
    s = window.session
    qtbot.waitUntil(lambda: s.known_metrics() is not None, timeout=30000)
    computed = s.known_metrics()
    s.models.metadata["metrics"] = {"test_mse": 0.5, "n_test": 7}  # as a CLI run on a subset
    given = []
    monkeypatch.setattr(exports, "_report_task", lambda cancel, report, *a: given.append(a))
    assert window.exports.export_report(str(tmp_path / "r.pdf"))
    qtbot.waitUntil(lambda: len(given) == 1, timeout=10000)
    assert given[0][-1] is computed and given[0][-2] is s.dataset
    s.models.set_model(s.models.model, {}, None)  # another model: its metrics not known yet
    assert s.known_metrics() is None
    assert window.exports.export_report(str(tmp_path / "r.pdf"))
    qtbot.waitUntil(lambda: len(given) == 2, timeout=10000)
    assert given[1][-1] is None  # the report computes them on the dataset


def test_a_map_export_can_take_a_slides_shape(window, qtbot, tmp_path):
    """A narrow window's tall map gave a portrait picture (1600 x 3468 at scale 2), no good on
    a 16:9 slide; widened to 16:9 about its centre, everything shown stays in, unstretched."""
    from PIL import Image

    from app.exports import widened
    window.resize(1000, 760)
    qtbot.wait(50)
    view, w, h = widened((0.0, 2.0, 0.0, 6.0), 300.0, 600.0, 16 / 9)
    assert view == pytest.approx((1 - 32 / 9, 1 + 32 / 9, 0.0, 6.0)) and w / h == pytest.approx(16 / 9)
    assert (view[1] - view[0]) / w == pytest.approx(2.0 / 300)  # units per pixel as before
    view, w, h = widened((0.0, 8.0, 0.0, 1.0), 800.0, 100.0, 16 / 9)  # too wide: more z2
    assert view[:2] == (0.0, 8.0) and h == pytest.approx(450.0)
    for name, slide in (("tall.png", False), ("slide.png", True)):
        assert window.exports.export_map(str(tmp_path / name),
                                         {"mosaic": False, "legend": True, "scale": 1,
                                          "slide": slide})
        wait_file(qtbot, window, "map", tmp_path / name)
    tall, slide = (Image.open(tmp_path / n).size for n in ("tall.png", "slide.png"))
    assert tall[1] > tall[0]  # the shape on screen: portrait
    assert slide[0] / slide[1] == pytest.approx(16 / 9, rel=0.01)  # axes and legend included
