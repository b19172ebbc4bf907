"""Each controller on its own: a session and only the widgets it drives, no main window."""
import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, QSettings, Qt
from PySide6.QtGui import QHelpEvent, QImage, QPainter
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QMenu, QToolTip, QWidget

from app.draw_controller import DrawController
from app.draw_panel import DrawPanel
from app.explore import ExploreController
from app.files import FilesController
from app.image_view import ImageView
from app.interpolation_controller import InterpolationController
from app.interpolation_panel import InterpolationPanel
from app.latent_map import LatentMap
from app.layers import LayersController
from app.map_toolbar import MapToolbar
from app.points import MapPoints
from app.session import Session
from app.training_controller import TrainingController
from app.training_panel import TrainingPanel
from cae.checkpoint import save_checkpoint
from cae.model import CAE
from tests.helpers import choose_colouring


@pytest.fixture
def session(qtbot, tmp_path):
    s = Session(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    torch.manual_seed(5)
    s.load_model(save_checkpoint(tmp_path / "m.safetensors", CAE(), {"dataset": "synthetic"}))
    s.errors = []
    s.error.connect(lambda title, text: s.errors.append(text))
    yield s
    s.shutdown()


@pytest.fixture
def map_(qtbot):
    m = LatentMap()
    qtbot.addWidget(m)
    m.resize(500, 400)
    m.show()
    return m


def explore_at(session, map_, z1: str, z2: str):
    """An ExploreController on plain widgets, its z fields holding (z1, z2)."""
    labels = [QLabel() for _ in range(4)]
    decoded, hover = ImageView(), ImageView()
    edits = (QLineEdit(z1), QLineEdit(z2))
    explore = ExploreController(session, map_, decoded, labels[0], edits, hover, labels[1],
                                labels[2], labels[3])
    return explore, decoded, edits


def test_explore_decodes_a_point_into_the_session_and_the_view(session, map_, qtbot):
    explore, decoded, edits = explore_at(session, map_, "0.25", "-1.5")
    assert explore.go_to_typed_z()
    assert session.decoded_z == (0.25, -1.5)
    np.testing.assert_allclose(decoded.image, session.models.decode_one(0.25, -1.5), atol=1e-6)
    edits[0].setText("nan")
    assert not explore.go_to_typed_z() and "finite" in session.errors[-1]


def test_new_weights_redraw_the_decoded_point_in_an_event_of_their_own(session, map_, qtbot):
    """A training snapshot's new weights decode the shown point again once its handler is done,
    and never bring back an older point over one still waiting to be decoded."""
    explore, decoded, _ = explore_at(session, map_, "0.25", "-1.5")
    assert explore.go_to_typed_z()
    before = decoded.image.copy()
    state = {k: v.numpy().copy() for k, v in session.models.model.state_dict().items()}
    state["decoder.4.bias"] += 0.5  # grey where the untrained decoder draws black
    qtbot.waitUntil(lambda: not explore._timer.isActive())  # a decode now would be at once
    session.models.update_weights(state)
    np.testing.assert_array_equal(decoded.image, before)  # not inside the snapshot's handler
    qtbot.waitUntil(lambda: not np.array_equal(decoded.image, before), timeout=2000)
    np.testing.assert_allclose(decoded.image, session.models.decode_one(0.25, -1.5), atol=1e-6)
    explore.request_decode(1.0, 1.0)  # decoded at once; the next one waits for the interval
    explore.request_decode(2.0, 2.0)
    session.models.update_weights(state)
    qtbot.waitUntil(lambda: session.decoded_z == (2.0, 2.0), timeout=2000)
    qtbot.wait(50)
    assert session.decoded_z == (2.0, 2.0)  # the newest point, not the one shown before it


def test_layers_show_the_session_points_and_keep_the_colour_box_true(session, map_):
    bar = MapToolbar()
    layers = LayersController(session, map_, bar)
    points = MapPoints(np.random.default_rng(0).normal(size=(50, 2)), np.arange(50) % 10,
                       tuple("0123456789"))
    choose_colouring(bar, bar.colour_by.findData("error"))
    session.set_points(points, fit=True)
    assert len(map_.codes) == 50 and layers.bar is bar
    assert bar.colour_by.currentData() == "class" == map_.colour_mode  # no images: class colours


def test_follow_keeps_the_view_while_the_codes_stay_framed(map_):
    """Snapshots that move the codes a little leave the view still; codes that leave it, or
    shrink well inside it, are framed again."""
    rng = np.random.default_rng(1)
    codes, labels, names = rng.normal(size=(300, 2)), np.arange(300) % 10, tuple("0123456789")
    map_.set_codes(codes, labels, names, fit=True)
    framed = map_.visible_rect()
    map_.set_codes(codes * 0.97 + 0.02, labels, names, follow=True)
    assert map_.visible_rect() == framed
    map_.set_codes(codes + 3.0, labels, names, follow=True)  # gone right and up: followed
    x0, x1, y0, y1 = map_.visible_rect()
    assert x0 > framed[0] + 2 and y0 > framed[2] + 2
    map_.set_codes(codes * 0.5 + 3.0, labels, names, follow=True)  # half the size: zoomed in
    zoomed = map_.visible_rect()
    assert zoomed[1] - zoomed[0] < 0.6 * (x1 - x0) and zoomed[3] - zoomed[2] < 0.6 * (y1 - y0)
    map_.set_codes(codes - 5.0, labels, names)  # Follow off: the view stays where it is
    assert map_.visible_rect() == zoomed


def test_draw_updates_the_session_drawn_code(session, map_, qtbot):
    panel = DrawPanel()
    qtbot.addWidget(panel)
    DrawController(session, panel, map_)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.mousePress(panel.pad, Qt.MouseButton.LeftButton, pos=QPoint(140, 40))
    qtbot.mouseMove(panel.pad, QPoint(140, 140))
    qtbot.mouseRelease(panel.pad, Qt.MouseButton.LeftButton, pos=QPoint(140, 240))  # a "1"
    assert session.drawn_z is not None and map_.drawn_marker.isVisible()
    panel.pad.clear()
    assert session.drawn_z is None and not map_.drawn_marker.isVisible()


def test_interpolation_follows_the_session_end_points(session, map_):
    panel = InterpolationPanel()
    InterpolationController(session, panel, map_)
    session.set_endpoint("A", np.array([0.0, 0.0]))
    session.set_endpoint("B", np.array([1.0, 2.0]))
    assert panel.frames.shape == (panel.steps.value(), 28, 28)
    np.testing.assert_allclose(panel.zs[-1], [1.0, 2.0])


def test_training_waits_for_data_and_asks_before_replacing(session, tiny_folder, qtbot):
    panel = TrainingPanel()
    asked = []
    TrainingController(session, panel, lambda what: asked.append(what) or False, lambda t: True,
                       lambda t: "keep")
    session.load_data("auto", str(tiny_folder))
    assert not panel.train_button.isEnabled()
    qtbot.waitUntil(lambda: session.dataset is not None, timeout=20000)
    assert panel.train_button.isEnabled()
    session.set_dirty(True)
    panel.train_button.click()
    assert asked == ["start a new training run"] and not session.training.running


def test_files_remember_recent_models_and_refuse_empty_exports(session, tmp_path):
    files = FilesController(session, QWidget(), LatentMap(), QMenu())
    target = tmp_path / "saved.safetensors"
    assert files.save_model(str(target)) and target.is_file()
    assert files.recent_models()[0] == str(target.resolve())
    assert not files.export_codes(str(tmp_path / "c.csv"))  # no points on the map yet
    assert "no latent codes" in session.errors[-1]


def test_the_confusion_matrix_of_ten_named_classes_fits_a_narrow_dock(qtbot):
    from app.metrics_panel import MetricsPanel
    from cae.data import DATASETS
    names = DATASETS["fashion-mnist"].class_names
    panel = MetricsPanel()
    qtbot.addWidget(panel)
    panel.resize(330, 700)
    panel.show()
    confusion = np.full((10, 10), 12) + np.diag(np.full(10, 880))
    panel.show_metrics({"test_mse": 0.03, "knn5_accuracy": 0.66, "n_test": 10000, "n_train": 60000,
                        "per_class_mse": [0.02] * 10, "knn5_confusion": confusion.tolist()},
                       names, "a model")
    qtbot.wait(50)
    table = panel.table
    assert not table.horizontalScrollBar().isVisible()  # all ten columns on show
    assert table.horizontalHeaderItem(0).toolTip() == "0 T-shirt/top"
    assert table.verticalHeaderItem(9).toolTip() == "9 Ankle boot"
    ticks = sorted(sum(panel.bars_plot.getPlotItem().getAxis("left")._tickLevels, []))
    assert ticks[3] == (3, "3 Dress") and len(ticks) == 10
    assert table.item(9, 9).text() == "892"
    assert table.horizontalHeaderItem(0).text() == "0"  # (ten long names would not fit)
    # Names as short as numbers head the rows and columns themselves (a letters folder's
    # A L O T X had read 0-4, to be looked up in the bars).
    panel.show_metrics({"test_mse": 0.03, "knn5_accuracy": 0.66, "n_test": 50, "n_train": 300,
                        "per_class_mse": [0.02] * 5, "knn5_confusion": np.eye(5).tolist()},
                       ("A", "L", "O", "T", "X"), "a model")
    assert [table.horizontalHeaderItem(i).text() for i in range(5)] == list("ALOTX")
    assert table.verticalHeaderItem(4).text() == "X"


def drawn_names(axis) -> list[tuple[str, QRectF]]:
    """The class names the bars' axis draws now, with their rectangles."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(text, rect) for rect, _, text in texts]


@pytest.mark.parametrize("height", [420, 900])
def test_the_metrics_fit_a_1000_by_700_window_and_names_never_overlap(qtbot, height):
    """At 1000 x 700 the dock is about 310 x 420: all 100 counts show without scrolling, and
    the per-class bars name every other class rather than print names over each other; a tall
    dock names them all."""
    from app.metrics_panel import MetricsPanel
    panel = MetricsPanel()
    qtbot.addWidget(panel)
    panel.resize(310, height)
    panel.show()
    confusion = np.full((10, 10), 12) + np.diag(np.full(10, 1083))  # four-digit counts
    panel.show_metrics({"test_mse": 0.03, "knn5_accuracy": 0.7, "n_test": 10000,
                        "n_train": 60000, "per_class_mse": [0.02] * 10,
                        "knn5_confusion": confusion.tolist()}, tuple("0123456789"), "a model")
    qtbot.wait(50)
    table = panel.table
    assert not table.horizontalScrollBar().isVisible()
    assert not table.verticalScrollBar().isVisible()
    names = drawn_names(panel.bars_plot.getPlotItem().getAxis("left"))
    rects = sorted((rect.top(), rect.bottom()) for _, rect in names)
    assert all(below[0] >= above[1] for above, below in zip(rects, rects[1:])), rects
    assert len(names) == (10 if height == 900 else 5), [n for n, _ in names]
    # Each class's value, and its name where the axis leaves it out, under the pointer: over
    # its bar's row, beside it, and away from any row.
    plot = panel.bars_plot
    vb = plot.getPlotItem().getViewBox()

    def hover(x: float, y: float) -> str:
        pos = plot.mapFromScene(vb.mapViewToScene(QPointF(x, y)))
        QApplication.sendEvent(plot.viewport(), QHelpEvent(QEvent.Type.ToolTip, pos,
                                                          plot.viewport().mapToGlobal(pos)))
        qtbot.waitUntil(lambda: QToolTip.isVisible() == (panel.bar_tip_at(
            vb.mapViewToScene(QPointF(x, y))) != ""), timeout=2000)  # (a tip fades out)
        return QToolTip.text() if QToolTip.isVisible() else ""
    assert hover(0.01, 3.1) == ("3: test MSE 0.0200 over 1,203 test images; 5-NN vote right for "
                                "91.0\u00a0%")
    assert hover(0.001, 8.8).startswith("9: ")
    assert hover(0.01, -3) == ""
    panel.show_metrics({"test_mse": 0.03, "knn5_accuracy": 0.7, "n_test": 10000,
                        "n_train": 60000, "per_class_mse": [0.02] * 10,
                        "knn5_confusion": confusion.tolist()}, tuple("0123456789"), "a model",
                       "digits")  # MNIST's are digits
    assert "over 1,203 test digits;" in panel.bar_tips[3]


def test_an_epochs_summary_wraps_between_figures_only(qtbot):
    """"(14.7" / "s)" on two lines: each figure stays with its name and unit."""
    from cae.train import EpochEnd
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.show_epoch(EpochEnd(3, 0.0913, 0.0764, 14.7))
    text = panel.status.text()
    assert text.replace("\u00a0", " ") == "epoch 3: train loss 0.0913, test loss 0.0764 (14.7 s)"
    assert text.split(" ") == ["epoch", "3:", "train\u00a0loss\u00a00.0913,",
                               "test\u00a0loss\u00a00.0764", "(14.7\u00a0s)"]


def test_the_first_epochs_loss_axis_reads_in_epochs(qtbot):
    """During the first epoch the x values are fractions of it: the axis read "epoch (x0.001)"
    under ticks 50 to 300, as if epochs 50 to 300."""
    from cae.train import Progress
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.resize(320, 500)
    panel.show()
    panel.reset_curves()
    for step in range(10, 310, 10):
        panel.show_progress(Progress(1, step, 1000, step, 2000, 0.06 - step * 1e-5, 900.0,
                                     60.0, 1e-3))
    pi = panel.loss_plot.getPlotItem()
    pi.getViewBox().prepareForPaint()  # as a paint would
    axis = pi.getAxis("bottom")
    assert axis.labelString().startswith("<span") and "x0.001" not in axis.labelString()
    assert axis.scale == 1.0 and max(pi.viewRange()[0]) < 1


def test_a_run_slowed_by_other_programs_says_so(qtbot, monkeypatch):
    """With another program on a core, 1,000 img/s fell to 123 and the ETA to 15 minutes for
    two epochs, unexplained.  Said only when the pace falls well below the run's best while
    the machine has more work than cores."""
    import app.training_panel as tp
    from cae.train import Progress
    clock = [100.0]
    load = [2.1]
    monkeypatch.setattr(tp.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(tp.os, "getloadavg", lambda: (load[0], 2.0, 2.0))
    monkeypatch.setattr(tp.os, "cpu_count", lambda: 2)
    panel = TrainingPanel()
    qtbot.addWidget(panel)
    panel.reset_curves()
    step = 0

    def report(seconds: float, steps: int) -> str:
        """What the bar and the line under it say."""
        nonlocal step
        clock[0] += seconds
        step += steps
        panel.show_progress(Progress(1, step, 10000, step, 20000, 0.05, 900.0, 60.0, 1e-3))
        assert "slowed" not in panel.progress.format()  # (the bar's one line has no room)
        return panel.progress.format() + (
            f"\n{panel.slowed.text()}" if panel.slowed.isVisibleTo(panel) else "")

    for _ in range(8):  # 20 steps a second, the machine otherwise idle
        assert "slowed" not in report(1.0, 20)
    load[0] = 3.2  # another program on a core: a fifth of the pace
    said = [report(1.0, 4) for _ in range(8)]
    assert "slowed" not in said[0] and said[-1].endswith(
        "\nslowed: other programs are using the CPU")
    load[0] = 2.1  # slow for some reason of the run's own: nothing said of other programs
    assert "slowed" not in report(1.0, 4)
    load[0] = 3.2
    for _ in range(8):  # at full pace again, however loaded the machine
        text = report(1.0, 20)
    assert "slowed" not in text
    panel.show_paused(True)  # a pause is no slowness
    clock[0] += 60
    panel.show_paused(False)
    assert "slowed" not in report(1.0, 20) and "slowed" not in report(1.0, 20)
    panel.reset_curves()  # a new run: its own best pace
    assert all("slowed" not in report(1.0, 4) for _ in range(8))


def test_a_slow_start_counts_its_seconds_and_says_when_other_programs_crowd_the_cpu(
        qtbot, monkeypatch):
    """Beside a terminal run the window's run sat at "starting…" for a minute, unexplained
    (its threads yield to other programs).  After a few seconds with no step reported the bar
    counts them, and the line under it says when the machine has more work than cores; a pause
    and Stop are not a slow start, and the first report ends the count."""
    import app.training_panel as tp
    from cae.train import Progress
    clock, load = [100.0], [3.2]
    monkeypatch.setattr(tp.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(tp.os, "getloadavg", lambda: (load[0], 2.0, 2.0))
    monkeypatch.setattr(tp.os, "cpu_count", lambda: 2)
    panel = TrainingPanel()
    qtbot.addWidget(panel)

    def after(seconds: float) -> str:
        clock[0] += seconds
        panel.tick_starting()
        return panel.progress.format() + (
            f"\n{panel.slowed.text()}" if panel.slowed.isVisibleTo(panel) else "")

    panel.reset_curves()
    assert panel._start_clock.isActive()
    # (paused at its first report, a run had been told the curve comes "when training starts")
    assert panel.loss_hint.text() == ("The loss curve appears here after the run's first 40 "
                                      "steps (a point every 20).")
    assert after(2) == "starting…"  # an ordinary start says nothing more
    assert after(10) == "starting… 12 s\nslowed: other programs are using the CPU"
    load[0] = 1.0
    assert after(1) == "starting… 13 s"  # a slow start of its own: only the count
    panel.show_paused(True)
    assert after(60) == "paused" and not panel._start_clock.isActive()
    panel.show_paused(False)
    assert after(1) == "resuming…" and after(5) == "starting… 6 s"  # counted from the resume
    panel.show_stopping()
    assert after(5) == "stopping after the step under way…"
    panel.reset_curves()
    panel.show_progress(Progress(1, 20, 100, 20, 200, 0.05, 900.0, 60.0, 1e-3))
    assert not panel._start_clock.isActive() and "starting" not in after(30)
    panel.reset_curves()
    panel.show_finished("training failed")
    assert after(30) == "training failed" and not panel._start_clock.isActive()


def test_the_docks_recipe_is_kept_from_one_start_to_the_next(session):
    """Recipe, epochs, batch size, learning rate and device went back to Best, 40 epochs at
    every start.  A damaged entry is left at the dock's default."""
    first = TrainingPanel()
    TrainingController(session, first, lambda what: True, lambda t: True, lambda t: "keep")
    first.recipe.setCurrentIndex(first.recipe.findData("quick"))
    first.epochs.setValue(7)
    first.batch_size.setValue(96)  # (not the recipe's own)
    first.lr.setValue(0.0005)
    first.device.setCurrentIndex(first.device.findData("cpu"))
    again = TrainingPanel()
    TrainingController(session, again, lambda what: True, lambda t: True, lambda t: "keep")
    assert again.recipe.currentData() == "quick" and again.recipe.currentText() == "Quick (edited)"
    assert again.epochs.value() == 7 and abs(again.lr.value() - 0.0005) < 1e-9
    assert again.batch_size.value() == 96
    assert again.device.currentData() == "cpu"
    session.settings.setValue("training/epochs", "many")
    session.settings.setValue("training/device", "cuda:7")  # a GPU gone
    third = TrainingPanel()
    TrainingController(session, third, lambda what: True, lambda t: True, lambda t: "keep")
    from cae.train import RECIPES
    assert third.recipe.currentData() == "quick" and third.epochs.value() == RECIPES["quick"]["epochs"]
    assert third.device.currentIndex() == 0  # Auto
