"""Training through the worker thread, as a user drives it from the training dock."""
import os
import re
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import Qt

import cae.train
from cae.mosaic import grid_centres
from tests.helpers import set_settings, tile_at
from cae.model import CAE
from cae.train import Trainer


def test_training_runs_to_the_end_and_updates_everything(window, qtbot):
    set_settings(window, epochs=2, batch=32)
    before = window.session.models.model.decoder[0].weight.detach().clone()
    snapshots = []
    window.session.training.snapshot.connect(snapshots.append)
    with qtbot.waitSignal(window.session.training.finished, timeout=60000) as done:
        qtbot.mouseClick(window.training_panel.train_button, Qt.MouseButton.LeftButton)
        assert window.session.training.running and not window.training_panel.train_button.isEnabled()
        assert not any(a.isEnabled() for a in window.data_actions)  # no other data meanwhile
        assert not window.open_action.isEnabled() and not window.save_action.isEnabled()
        assert "Stop training" in window.save_action.toolTip()
    finished, state = done.args
    assert not finished.stopped and finished.epochs_done == 2
    panel = window.training_panel
    assert [x for x, _ in panel.test_points] == [1, 2]  # epochs, as a model file's history
    assert all(0 < x <= 2 for x, _ in panel.train_points) and panel.train_points[-1][0] == 2
    assert panel.loss_plot.getPlotItem().getAxis("bottom").labelText == "epoch"
    assert len(snapshots) >= 3  # initial + one per epoch at least
    # The GUI adopted the trained weights and re-encoded the map with them.
    assert not torch.equal(window.session.models.model.decoder[0].weight, before)
    for k, v in window.session.models.model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), state[k])
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    qtbot.waitUntil(lambda: not window.session.tasks.running("codes"), timeout=10000)
    from cae.metrics import encode_images
    np.testing.assert_allclose(window.map.codes, encode_images(window.session.models.model,
                                                              window.session.dataset.test_images), atol=1e-5)
    assert window.training_panel.train_button.isEnabled()
    assert all(a.isEnabled() for a in window.data_actions)
    assert window.open_action.isEnabled() and window.save_action.isEnabled()
    assert window.session.models.metadata["epochs_done"] == 2 and window.session.dirty


def test_decoding_while_training_uses_the_snapshot_decoder(window, qtbot):
    set_settings(window, epochs=1, batch=16)
    with qtbot.waitSignal(window.session.training.snapshot, timeout=30000) as got:
        window.training.start()
    snap = got.args[0]
    # The window's slot ran before ours: its decoder now holds exactly the snapshot's weights.
    for k, v in window.session.models.model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), snap.model_state[k])
    reference = CAE()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in snap.model_state.items()})
    window.explore.stop()
    window.explore.request_decode(0.1, -0.2)
    with torch.no_grad():
        expected = reference.decode(torch.tensor([[0.1, -0.2]])).clamp(0, 1)[0, 0].numpy()
    np.testing.assert_allclose(window.decoded_view.image, expected, atol=1e-6)
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=60000)


def test_stop_ends_within_one_batch(window, qtbot):
    set_settings(window, epochs=200, batch=8)
    with qtbot.waitSignal(window.session.training.progress, timeout=30000):
        window.training.start()
    trainer = window.session.training.trainer
    with qtbot.waitSignal(window.session.training.finished, timeout=5000) as done:
        qtbot.mouseClick(window.training_panel.stop_button, Qt.MouseButton.LeftButton)
        steps_at_stop = trainer.global_step
    assert done.args[0].stopped
    assert trainer.global_step <= steps_at_stop + 1


@pytest.mark.real_priority
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="thread priorities: Linux")
def test_the_training_thread_and_its_team_yield_to_the_gui(window, qtbot):
    """libgomp's workers spin between regions: at the GUI's priority they made the snapshot
    repaint 3-4x slower (45 ms stalls).  The run's thread and the team it starts run lower."""
    from app import torch_threads
    from app.torch_threads import TRAINING_NICE
    set_settings(window, epochs=200, batch=8)
    with qtbot.waitSignal(window.session.training.progress, timeout=30000):
        window.training.start()
    tid = window.session.training._worker.lowered_tid
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert tid is not None and tid != threading.get_native_id()
    assert os.getpriority(os.PRIO_PROCESS, tid) == min(19, own + TRAINING_NICE)
    team = [int(t) for t in os.listdir("/proc/self/task")
            if int(t) != tid and os.getpriority(os.PRIO_PROCESS, int(t)) == min(19, own + TRAINING_NICE)]
    if torch_threads.ALL > 1:  # (the GUI thread itself runs torch on one)
        assert team  # its OpenMP workers, born after, inherited it
    window.session.training.stop()
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own  # the GUI's own


def test_pause_and_resume(window, qtbot):
    set_settings(window, epochs=200, batch=8)
    with qtbot.waitSignal(window.session.training.progress, timeout=30000):
        window.training.start()
    trainer = window.session.training.trainer
    label = window.marks.training  # in the status bar for the whole run; menus never clear it
    assert label.isVisibleTo(window) and label.text() == "training on cpu"
    qtbot.mouseClick(window.training_panel.pause_button, Qt.MouseButton.LeftButton)
    assert window.training_panel.pause_button.text() == "Resume"
    assert label.text() == "training paused"
    window.statusBar().showMessage("a menu's status tip", 100)
    assert label.isVisibleTo(window)
    qtbot.wait(300)
    paused_at = trainer.global_step
    qtbot.wait(300)
    assert trainer.global_step == paused_at
    qtbot.mouseClick(window.training_panel.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: trainer.global_step > paused_at + 2, timeout=5000)
    assert label.text() == "training on cpu"
    window.session.training.stop()
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    assert not label.isVisibleTo(window)


def test_closing_mid_training_is_clean_and_fast(window, qtbot):
    set_settings(window, epochs=200, batch=8)
    with qtbot.waitSignal(window.session.training.progress, timeout=30000):
        window.training.start()
    import time
    t = time.perf_counter()
    window.close()
    assert time.perf_counter() - t < 2.0
    assert not window.session.training.running


def test_worker_exception_reaches_the_user_and_window_still_works(window, qtbot, monkeypatch):
    def broken_run(self):
        yield from ()
        raise RuntimeError("simulated failure inside the worker")

    monkeypatch.setattr(Trainer, "run", broken_run)
    set_settings(window, epochs=1)
    with qtbot.waitSignal(window.session.training.failed, timeout=10000):
        window.training.start()
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    assert "simulated failure inside the worker" in window.last_error
    assert window._error_box is not None and window._error_box.isVisible()
    assert window.training_panel.train_button.isEnabled()
    with qtbot.waitSignal(window.explore.decoded, timeout=2000):
        window.explore.request_decode(0.0, 0.0)


def test_non_finite_loss_is_reported_and_last_good_weights_kept(window, qtbot):
    set_settings(window, epochs=1, batch=32)
    window.training_panel.lr.setValue(1.0)
    original = cae.train.reconstruction_loss
    calls = {"n": 0}

    def poisoned(x_hat, x):
        calls["n"] += 1
        loss = original(x_hat, x)
        return loss * float("nan") if calls["n"] > 3 else loss

    import pytest as _pytest
    mp = _pytest.MonkeyPatch()
    mp.setattr(cae.train, "reconstruction_loss", poisoned)
    try:
        window.training_panel.epochs.setValue(3)
        with qtbot.waitSignal(window.session.training.failed, timeout=30000) as failed:
            window.training.start()
    finally:
        mp.undo()
    assert "loss became nan" in failed.args[0]
    state = failed.args[1]
    assert all(np.isfinite(v).all() for v in state.values())
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    assert all(torch.isfinite(p).all() for p in window.session.models.model.parameters())


@pytest.mark.parametrize("field, value", [("batch_size", 0), ("epochs", 0)])
def test_invalid_settings_get_a_message(window, field, value, monkeypatch):
    from cae.train import TrainConfig
    real = window.training_panel.config

    def bad(**kw):
        cfg = real(**kw)
        return TrainConfig(**{**{k: getattr(cfg, k) for k in cfg.__dataclass_fields__}, field: value})

    monkeypatch.setattr(window.training_panel, "config", bad)
    window.training.start()
    assert not window.session.training.running and "must be" in window.last_error


def test_metrics_panel_for_a_model_and_after_each_epoch(window, qtbot):
    from cae.metrics import evaluate
    panel = window.metrics_panel
    qtbot.waitUntil(lambda: panel.metrics is not None, timeout=20000)
    expected = evaluate(window.session.models.model, window.session.dataset)
    assert panel.metrics["test_mse"] == pytest.approx(expected["test_mse"], rel=1e-5)
    assert panel.metrics["knn5_accuracy"] == expected["knn5_accuracy"]
    assert panel.metrics["knn5_confusion"] == expected["knn5_confusion"]
    lengths = panel.bars.opts["width"]  # horizontal bars: a bar's length is its width
    np.testing.assert_allclose(lengths, np.nan_to_num(expected["per_class_mse"]), rtol=1e-5)
    assert panel.table.item(3, 3).text() == str(expected["knn5_confusion"][3][3])
    # Tab passes through the matrix in one stop (it wrapped round its 100 cells), and a cell
    # cannot be selected (the selection's blue read as a diagonal count).
    window.metrics_dock.show()
    window.metrics_dock.raise_()
    panel.table.setFocus()
    qtbot.keyClick(panel.table, Qt.Key.Key_Tab)
    assert not panel.table.hasFocus()
    assert panel.table.selectionMode() == panel.table.SelectionMode.NoSelection
    assert f"{expected['test_mse']:.4f}" in panel.summary.text()
    assert f"{100 * expected['knn5_accuracy']:.2f}\u00a0%" in panel.summary.text()  # as the report
    said = []
    window.session.metricsCleared.connect(said.append)
    window.session._metrics_of = None  # (forget them: computed again)
    window.session.refresh_metrics()
    assert said == [f"computing the metrics: model.safetensors on {window.session.dataset.title}…"]
    qtbot.waitUntil(lambda: panel.metrics is not None, timeout=20000)
    # While training, a quick look after every epoch.
    set_settings(window, epochs=2, batch=32)
    seen = []
    original = panel.show_metrics
    panel.show_metrics = lambda m, names, source, *more: (seen.append(source),
                                                          original(m, names, source, *more))
    window.training.start()
    # The model before the run is gone from the map, and so are its figures.
    assert panel.metrics is None and "its metrics follow each epoch" in panel.summary.text()
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=60000)
    # (a newer request supersedes one still running, so on this tiny data some epochs' looks
    # are replaced by the next; at least one arrives, and the last word is the full evaluation)
    qtbot.waitUntil(lambda: seen and "while training" not in seen[-1], timeout=30000)
    assert any("while training" in s for s in seen)
    final = evaluate(window.session.models.model, window.session.dataset)
    assert panel.metrics["test_mse"] == pytest.approx(final["test_mse"], rel=1e-5)


def test_back_to_now_during_a_run_follows_the_weights_being_trained(window, qtbot):
    """The slider's last position during a run is "now": the run's latest snapshot on the map
    and its weights for every decode.  It had kept the last epoch's decoder until the run ended,
    so clicks, the mosaic and Interpolation drew with weights epochs old."""
    set_settings(window, epochs=200, batch=32)
    s, slider = window.session, window.toolbar.timeline_slider
    snapshots = []
    s.training.snapshot.connect(snapshots.append)
    window.training.start()
    qtbot.waitUntil(lambda: len(s.timeline) >= 2, timeout=60000)
    slider.setValue(0)
    assert s.models.decoder_override is not None and s.scrubbing
    slider.setValue(slider.maximum())
    assert s.models.decoder_override is None and not s.scrubbing
    np.testing.assert_array_equal(window.map.codes, snapshots[-1].codes)

    count = len(snapshots)
    qtbot.waitUntil(lambda: len(snapshots) > count + 1, timeout=60000)
    z = np.array([[0.3, -0.2]], np.float32)  # (the snapshots update the weights on this thread)
    with torch.no_grad():
        live = s.models.model.decode(torch.from_numpy(z)).clamp(0, 1)[0, 0].numpy()
    np.testing.assert_array_equal(s.models.decode(z)[0], live)
    s.training.stop()
    qtbot.waitUntil(lambda: not s.training.running, timeout=30000)


def test_training_timeline_scrubs_and_survives_a_save(window, qtbot, tmp_path):
    set_settings(window, epochs=3, batch=32)
    snapshots = []
    window.session.training.snapshot.connect(snapshots.append)
    with qtbot.waitSignal(window.session.training.finished, timeout=60000):
        window.training.start()
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    tl = window.session.timeline
    assert tl.epochs == [0, 1, 2, 3]
    slider = window.toolbar.timeline_slider
    assert slider.maximum() == 3 and slider.value() == 3
    # Epoch 1 as the trainer saw it: the epoch-end snapshot of epoch 1.
    snap1 = [s for s in snapshots if s.epoch == 1][-1]
    assert not window.marks.epoch.isVisibleTo(window)
    slider.setValue(1)
    np.testing.assert_array_equal(window.map.codes, snap1.codes)
    # What follows the slider and what does not, said for as long as it is away from now.
    assert window.marks.epoch.isVisibleTo(window)
    assert window.marks.epoch.text() == "showing epoch 1 of 3"
    # The set box names the sample the timeline kept, and waits for "now" to be chosen again.
    box = window.toolbar.map_set
    noun = window.session.dataset.noun
    assert box.currentText() == f"Epoch 1: {len(snap1.codes):,} test {noun}"
    assert not box.isEnabled()
    slider.setValue(3)  # now: the chosen set's codes, once encoded (or read from the cache)
    qtbot.waitUntil(box.isEnabled, timeout=20000)
    assert not box.currentText().startswith("Epoch")
    slider.setValue(1)
    assert "Metrics, Draw and the error and vote colourings use the model as trained" in \
        window.marks.epoch.toolTip()
    reference = CAE()
    reference.load_state_dict({k: torch.from_numpy(v) for k, v in snap1.model_state.items()})
    window.explore.stop()
    window.explore.request_decode(0.3, 0.1)
    with torch.no_grad():
        expected = reference.decode(torch.tensor([[0.3, 0.1]])).clamp(0, 1)[0, 0].numpy()
    np.testing.assert_allclose(window.decoded_view.image, expected, atol=1e-6)
    # The decoded-image map draws with epoch 1's decoder too.
    window.toolbar.mosaic_size.setValue(3)  # 9 points: decoded by the model itself, so exactly
    window.toolbar.mosaic_action.setChecked(True)
    qtbot.waitUntil(lambda: window.layers.batch_decoder is not None
                    and window.map.mosaic_rect == window.map.visible_rect(), timeout=10000)
    cols, rows = window.layers.mosaic_shape
    centre = grid_centres(*window.map.mosaic_rect, 3, rows)[4]
    with torch.no_grad():
        tile = reference.decode(torch.from_numpy(centre[None])).clamp(0, 1)[0, 0].numpy()
    np.testing.assert_allclose(tile_at(window.map.mosaic_item.image, 3, 1, 1), tile, atol=1e-5)
    window.toolbar.mosaic_action.setChecked(False)
    # Saved with the model, replayed after reopening.
    path = tmp_path / "run.safetensors"
    assert window.files.save_model(str(path))
    assert window.files.open_model(str(path))
    assert window.session.timeline.epochs == [0, 1, 2, 3]
    window.toolbar.timeline_slider.setValue(1)
    np.testing.assert_array_equal(window.map.codes, snap1.codes)
    window.explore.stop()
    window.explore.request_decode(0.3, 0.1)
    np.testing.assert_allclose(window.decoded_view.image, expected, atol=1e-6)
    window.toolbar.timeline_slider.setValue(3)  # back to now: the current model
    assert window.session.models.decoder_override is None
    assert not window.marks.epoch.isVisibleTo(window)
    # On other data a past epoch's codes are still of the model's own test images: the box
    # names them, and a hovered one says why it has no image (it showed nothing at all).
    from cae.data import dataset_title
    from tests.helpers import write_dataset_folder
    other = write_dataset_folder(tmp_path / "other", n_train=128, n_test=40, seed=9)
    window.session.load_data("folder", str(other))
    qtbot.waitUntil(lambda: window.session.dataset.name == "other", timeout=10000)
    window.toolbar.timeline_slider.setValue(1)
    own = dataset_title(window.session.models.metadata["dataset"])
    assert box.currentText() == f"Epoch 1: {len(snap1.codes):,} {own} test images"
    window.explore._on_hover(2)
    assert window.explore.hover_label.text() == (
        f"label {int(snap1.labels[2])} · test point 2 (no image: it is one of {own}'s, which is "
        "not loaded)")


def test_messages_say_how_far_a_stopped_run_got(window, qtbot, answered_questions):
    set_settings(window, epochs=5, batch=1)  # 256 steps per epoch: the first report is in epoch 1
    with qtbot.waitSignal(window.session.training.progress, timeout=30000):
        window.training.start()
    qtbot.waitUntil(lambda: "img/s" in window.training_panel.progress.format(), timeout=5000)
    running = window.training_panel.progress.format()  # a duration left, not a clock time
    assert re.fullmatch(r"epoch 1, step \d+/256  [\d,]+ img/s  (\d+:)?\d+:\d\d left", running)
    qtbot.mouseClick(window.training_panel.pause_button, Qt.MouseButton.LeftButton)
    assert window.session.training.paused
    shown = window.training_panel.progress.format()
    assert re.fullmatch(r"paused: epoch 1, step \d+/256", shown)  # no rate, no ETA: not ticking
    assert window.session.run.epochs_done == 0
    window.files.confirm_quit()  # answered "quit" by the conftest; the question is what counts
    assert "has not finished an epoch yet, so nothing of it is kept" in answered_questions[-1][1]
    with qtbot.waitSignal(window.session.training.finished, timeout=10000):
        window.session.training.stop()
    assert "stopped in epoch 1 at step " in window.training_panel.progress.format()
    assert "stopped in epoch 1 at step " in answered_questions[-1][1]  # the keep question


def test_the_quit_question_holds_the_run_while_it_is_open(window, qtbot, monkeypatch):
    """It names the epochs the autosave keeps: a run going on behind it made that stale."""
    from app.files import Button
    t = window.session.training
    set_settings(window, epochs=5, batch=1)
    with qtbot.waitSignal(t.progress, timeout=30000):
        window.training.start()
    during = []
    panel = window.training_panel
    monkeypatch.setattr(window.files, "ask", lambda *a: during.append(
        (t.paused, panel.pause_button.text(), panel.progress.format())) or Button.Cancel)
    assert not window.files.confirm_quit()
    # Held: the bar shows where it stands, no frozen rate or time left.
    assert len(during) == 1 and during[0][:2] == (True, "Resume")
    assert re.fullmatch(r"paused: epoch 1, step \d+/256", during[0][2])
    assert t.running and not t.paused  # cancelled: it goes on
    assert panel.pause_button.text() == "Pause" and "resuming" in panel.progress.format()
    t.pause()
    assert not window.files.confirm_quit()
    assert t.paused  # paused by the user before: it stays paused
    with qtbot.waitSignal(t.finished, timeout=10000):
        t.stop()


def test_another_model_clears_the_last_runs_curves_and_the_interpolation_ends(window, qtbot,
                                                                              tmp_path):
    from cae.checkpoint import save_checkpoint
    set_settings(window, epochs=1, batch=32)
    with qtbot.waitSignal(window.session.training.finished, timeout=60000):
        window.training.start()
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    panel = window.training_panel
    assert panel.train_points and "finished 1 epoch in" in panel.progress.format()  # kept
    window.session.set_endpoint("A", np.zeros(2))
    window.session.set_endpoint("B", np.ones(2))
    assert window.interp_panel.frames is not None
    other = save_checkpoint(tmp_path / "other.safetensors", CAE(), {"dataset": "synthetic"})
    window.session.set_dirty(False)
    assert window.files.open_model(str(other))
    assert not panel.train_points and not panel.test_points and panel.progress.format() == ""
    assert window.session.endpoints == {"A": None, "B": None}
    assert window.interp_panel.frames is None and not window.map.path_item.isVisible()
    assert not any(label.isVisible() for label in window.map.path_ends)


def test_the_set_choice_says_the_live_map_is_a_sample(window, qtbot):
    set_settings(window, epochs=200, batch=8)
    choice = window.toolbar.map_set
    width = choice.sizeHint().width()
    with qtbot.waitSignal(window.session.training.snapshot, timeout=30000):
        window.training.start()
    qtbot.waitUntil(lambda: window.session.points.source == "training", timeout=5000)
    assert choice.currentText() == f"Live: {len(window.session.points)} test images"
    assert not choice.isEnabled()
    assert choice.sizeHint().width() == width  # the toolbar does not shift
    assert choice.fontMetrics().horizontalAdvance("Live: 10,000 test images") < width
    with qtbot.waitSignal(window.session.training.finished, timeout=10000):
        window.session.training.stop()
    qtbot.waitUntil(lambda: window.session.points.source == "test", timeout=10000)
    assert choice.currentText() == "Test images (64)" and choice.isEnabled()


def test_only_the_training_thread_gives_torch_every_core(window, qtbot, monkeypatch):
    """While a run trains, no other thread holds an OpenMP team (app/torch_threads.py)."""
    import threading

    from app import torch_threads
    assert torch.get_num_threads() == 1  # the GUI thread: set when the session was made
    calls: list[tuple[str, int]] = []
    real_use = torch_threads.use
    monkeypatch.setattr(torch_threads, "use", lambda n: (
        calls.append((threading.current_thread().name, n)), real_use(n)))
    runner = window.session.runner

    def threads_task(cancel, report):
        return torch.get_num_threads()

    # The callback is connected before the task starts: a fast task can end before submit
    # returns, and a signal connected only after that is never seen.
    with qtbot.waitCallback(timeout=5000) as idle:
        runner.submit(threads_task, on_done=idle)
    assert idle.args[0] == torch_threads.ALL  # no run: a task uses every core
    old_pool = runner.pool
    set_settings(window, epochs=200, batch=8)
    with qtbot.waitSignal(window.session.training.progress, timeout=30000):
        window.training.start()
    assert runner.pool is not old_pool and runner.torch_threads == 1
    with qtbot.waitCallback(timeout=5000) as during:
        runner.submit(threads_task, on_done=during)
    assert during.args[0] == 1
    training_thread = [name for name, n in calls if n == torch_threads.ALL]
    assert training_thread and all(name != "MainThread" for name in training_thread)
    qtbot.waitUntil(lambda: not runner._retired, timeout=5000)  # the old threads are gone
    with qtbot.waitSignal(window.session.training.finished, timeout=10000):
        window.session.training.stop()
    qtbot.waitUntil(lambda: runner.torch_threads == torch_threads.ALL, timeout=5000)


def test_a_model_file_shows_how_it_was_trained(window, tmp_path):
    """Its per-epoch losses (kept in the file) are drawn against epochs; bad entries are left
    out; a file without them shows nothing."""
    from cae.checkpoint import save_checkpoint
    history = [{"epoch": 1, "train_loss": 0.06, "test_loss": 0.047, "seconds": 90.0},
               {"epoch": 2, "train_loss": "bad", "test_loss": 0.044},
               {"epoch": 3, "train_loss": 0.05, "test_loss": 0.043, "seconds": 90.0},
               {"epoch": 4, "train_loss": 0.048, "test_loss": 0.042, "seconds": 90.0}]
    path = save_checkpoint(tmp_path / "h.safetensors", CAE(),
                           {"dataset": "synthetic", "history": history})
    window.session.set_dirty(False)
    assert window.files.open_model(str(path))
    panel = window.training_panel
    xs, ys = panel.test_curve.getData()
    assert list(xs) == [1, 3, 4] and list(ys) == [0.047, 0.043, 0.042]
    assert list(panel.train_curve.getData()[1]) == [0.06, 0.05, 0.048]
    assert panel.loss_plot.isVisibleTo(panel) and not panel.loss_hint.isVisibleTo(panel)
    assert panel.loss_plot.getPlotItem().getAxis("bottom").labelText == "epoch"
    assert "3\u00a0epochs" in panel.status.text()
    plain = save_checkpoint(tmp_path / "p.safetensors", CAE(), {"dataset": "synthetic"})
    assert window.files.open_model(str(plain))
    assert panel.test_curve.getData()[0] is None or len(panel.test_curve.getData()[0]) == 0
    assert panel.loss_hint.isVisibleTo(panel) and panel.status.text() == ""
    one = save_checkpoint(tmp_path / "one.safetensors", CAE(),  # an autosave after epoch 1
                          {"dataset": "synthetic", "history": history[:1]})
    assert window.files.open_model(str(one))
    assert list(panel.test_curve.getData()[1]) == [0.047] and panel.loss_plot.isVisibleTo(panel)
    # One epoch is one point: the training loss is drawn as a dot, and the axis counts whole
    # epochs (it read 0.6 ... 1.4).
    assert list(panel.train_curve.getData()[1]) == [0.06]
    assert panel.train_curve.opts["symbol"] == "o"
    spacing = panel.loss_plot.getPlotItem().getAxis("bottom").tickSpacing(0.6, 1.4, 200)
    assert all(step >= 1 and step == int(step) for step, _offset in spacing)
    # After a longer curve (the 1-4 above) the view is the one epoch's, not four epochs wide
    # with a tick per epoch (40 overprinted labels after the bundled model).
    def x_range() -> tuple[float, float]:
        panel.loss_plot.getPlotItem().getViewBox().prepareForPaint()  # as a paint would
        return tuple(panel.loss_plot.getPlotItem().viewRange()[0])

    x0, x1 = x_range()
    assert x0 < 1 < x1 and x1 - x0 <= 1.01
    assert window.files.open_model(str(path))
    x0, x1 = x_range()
    assert x0 <= 1 and x1 >= 4  # and a longer one is framed whole again
    assert window.files.open_model(str(one))  # straight after it
    x0, x1 = x_range()
    assert x0 < 1 < x1 and x1 - x0 <= 1.01
    assert "1\u00a0epoch," in panel.status.text()
    assert "(unclamped)\u00a00.0470" in panel.status.text()  # not Metrics' clamped MSE
    more = save_checkpoint(tmp_path / "more.safetensors", CAE(),  # continued from "one"
                           {"dataset": "synthetic", "history": history[:1], "epochs_done": 1,
                            "init": {"epochs_done": 40, "dataset": "synthetic"}})
    assert window.files.open_model(str(more))
    assert "1\u00a0epoch after 40 earlier," in panel.status.text()
    window.session.models.path = None  # as after a run: Save proposes a name, all epochs in it
    assert window.files.suggested_name() == "synthetic-41ep.safetensors"
    panel.reset_curves()  # a run's curve again: per-step reports, no dots, automatic ticks
    assert panel.train_curve.opts["symbol"] is None
    assert panel.loss_plot.getPlotItem().getAxis("bottom").tickSpacing(0, 1, 200)[0][0] < 1


def test_the_dock_trains_with_the_chosen_recipe(window, qtbot):
    p = window.training_panel
    assert p.recipe.currentData() == "best" and p.epochs.value() == 40  # the default
    p.recipe.setCurrentIndex(p.recipe.findData("lecture"))
    assert (p.epochs.value(), p.batch_size.value(), p.lr.value()) == (10, 50, 1e-3)
    assert "constant learning rate" in p.recipe.itemData(p.recipe.currentIndex(),
                                                          Qt.ItemDataRole.ToolTipRole)
    assert p.recipe.currentText() == "Lecture"
    set_settings(window, epochs=1, batch=32)  # the dock's own values win over the recipe's
    assert p.recipe.currentText() == "Lecture (edited)"  # the box says they are not its own
    assert p.recipe.itemData(p.recipe.currentIndex(), Qt.ItemDataRole.ToolTipRole).endswith(
        "with epochs 1 (its 10), batch size 32 (its 50)")
    with qtbot.waitSignal(window.session.training.finished, timeout=60000):
        qtbot.mouseClick(p.train_button, Qt.MouseButton.LeftButton)
        assert not p.recipe.isEnabled()
    meta = window.session.models.metadata
    assert meta["recipe"] == "lecture"
    config = meta["train_config"]
    assert (config["schedule"], config["ema"], config["loss"]) == ("constant", 0.0, "mse")
    assert (config["epochs"], config["batch_size"], config["lr"]) == (1, 32, 1e-3)
    qtbot.waitUntil(lambda: p.recipe.isEnabled(), timeout=5000)
    p.recipe.setCurrentIndex(p.recipe.findData("quick"))
    assert p.epochs.value() == 5 and p.config().recipe == "quick"
    assert [p.recipe.itemText(i) for i in range(p.recipe.count())] == ["Best", "Quick", "Lecture"]
    p.epochs.setValue(6)
    assert p.recipe.currentText() == "Quick (edited)"
    p.epochs.setValue(5)  # back to its own: plain again
    assert p.recipe.currentText() == "Quick"


def test_a_model_discarded_before_a_run_does_not_come_back_with_it(window, qtbot,
                                                                   answered_questions):
    """Train, keep; Train again and discard the kept model; stop and discard the new run: the
    map goes back to what was there without the discarded model, never to it (it had come back
    marked saved, and the next Train then threw it away without asking)."""
    set_settings(window, epochs=200, batch=8)

    def run_and_stop(keep: bool) -> None:
        window.training.ask_keep = lambda text: answered_questions.append(("keep", text)) or keep
        with qtbot.waitSignal(window.session.training.progress, timeout=30000):
            assert window.training.start()
        with qtbot.waitSignal(window.session.run.ended, timeout=10000):
            window.session.training.stop()
        qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)

    run_and_stop(keep=True)
    kept = window.session.models.model
    assert window.session.dirty and window.windowTitle().endswith("*")
    run_and_stop(keep=False)  # Train asks about the kept model: answered Discard
    assert answered_questions[-2][0] == "Unsaved model"
    assert answered_questions[-1][1].endswith("go back to an untrained model?")
    assert window.session.models.model is not kept and not window.session.models.trained
    assert not window.session.dirty and window.windowTitle().endswith("untrained model")


def test_a_run_stopped_before_its_first_step_leaves_nothing_to_keep(window, qtbot, monkeypatch,
                                                                    answered_questions):
    real = Trainer._to_device
    monkeypatch.setattr(Trainer, "_to_device", lambda self, a: time.sleep(0.3) or real(self, a))
    before = window.session.models.model
    set_settings(window, epochs=2, batch=8)
    with qtbot.waitSignal(window.session.run.ended, timeout=10000) as ended:
        assert window.training.start()
        window.session.training.stop()
    assert ended.args[0].stopped and ended.args[0].steps == 0
    assert not [q for q in answered_questions if q[0] == "keep" or "Keep" in q[1]]
    assert window.session.models.model is before and not window.session.dirty
    assert window.training_panel.progress.format().startswith("stopped before its first step")


def test_stop_before_the_first_report_says_so_at_once_and_counts_the_steps(
        window, qtbot, monkeypatch, answered_questions):
    """On a busy CPU Stop showed nothing for 20 s, then asked to keep a model "stopped after 0
    epochs" that had taken steps (none reported yet: a report comes every 20)."""
    real = Trainer._to_device
    monkeypatch.setattr(Trainer, "_to_device", lambda self, a: time.sleep(0.05) or real(self, a))
    set_settings(window, epochs=2, batch=8)  # 32 steps an epoch
    panel = window.training_panel
    with qtbot.waitSignal(window.session.run.ended, timeout=20000) as ended:
        assert window.training.start()
        t = window.session.training
        qtbot.waitUntil(lambda: t.trainer is not None and t.trainer.global_step > 0, timeout=10000)
        assert panel.last_step is None  # steps taken, none reported
        window.training.request_stop()
        assert panel.progress.format() == "stopping after the step under way…"
        assert not panel.stop_button.isEnabled() and not panel.pause_button.isEnabled()
    steps = ended.args[0].steps
    assert 0 < steps < 20
    said = f"stopped after {steps} step{'s' * (steps > 1)} of epoch 1"
    assert panel.progress.format().startswith(said)
    assert said in answered_questions[-1][1]  # the keep question


@pytest.fixture
def held_at_step_26(window, monkeypatch):
    """A run of 32 steps an epoch (reports at steps 20 and 32) that holds before its 27th
    step, 6 steps past its last report, until the returned event is set."""
    real, gate = Trainer._batch, threading.Event()

    def batch(self, *args):
        if self.global_step == 26:
            gate.wait(60)
        return real(self, *args)
    monkeypatch.setattr(Trainer, "_batch", batch)
    set_settings(window, epochs=3, batch=8)
    yield gate
    gate.set()  # (a test that failed midway leaves no worker waiting)


def test_the_stop_question_names_the_step_the_run_is_at(window, qtbot, held_at_step_26,
                                                        answered_questions):
    """The question named the last reported step, up to 19 behind the run (a report comes
    every 20 steps)."""
    gate = held_at_step_26
    t = window.session.training
    with qtbot.waitSignal(window.session.run.ended, timeout=60000) as ended:
        assert window.training.start()
        qtbot.waitUntil(lambda: t.trainer is not None and t.trainer.global_step == 26
                        and window.training_panel.last_step is not None, timeout=60000)
        assert window.training_panel.last_step == (1, 20, 32)  # the last report
        window.training.request_stop()
        gate.set()
    assert any(text.startswith("Stop training in epoch 1 at step 26/32?")
               for _, text in answered_questions), answered_questions
    assert ended.args[0].steps == 27  # (the step under way when Stop was pressed)


def test_the_bar_says_the_step_the_run_paused_at(window, qtbot, held_at_step_26):
    """Paused, the bar said the last report's step (120) under a Stop question naming the
    run's own (136)."""
    gate = held_at_step_26
    t, panel = window.session.training, window.training_panel
    with qtbot.waitSignal(window.session.run.ended, timeout=60000):
        assert window.training.start()
        try:
            qtbot.waitUntil(lambda: t.trainer is not None and t.trainer.global_step == 26
                            and panel.last_step is not None, timeout=60000)
            qtbot.mouseClick(panel.pause_button, Qt.MouseButton.LeftButton)
            said = panel.progress.format()
            gate.set()
            qtbot.wait(300)  # (reports already on their way leave it said)
            assert said == panel.progress.format() == "paused: epoch 1, step 26/32"
        finally:
            gate.set()
            t.stop()


def test_stopping_stays_said_over_the_reports_still_on_their_way(window):
    from cae.train import Progress
    panel = window.training_panel
    panel.reset_curves()
    panel.show_stopping()
    panel.show_progress(Progress(1, 5, 32, 5, 64, 0.1, 100.0, 1.0, 1e-3))
    assert panel.progress.format() == "stopping after the step under way…"
    panel.reset_curves()  # the next run reports again
    panel.show_progress(Progress(1, 5, 32, 5, 64, 0.1, 100.0, 1.0, 1e-3))
    assert panel.progress.format().startswith("epoch 1, step 5/32")


def test_the_slider_label_says_when_the_map_shows_an_epoch_under_way(window, qtbot, monkeypatch):
    """Between epoch ends the map re-plots the live model: the label must not name the last
    finished epoch as what is shown."""
    import app.training_controller as tc
    monkeypatch.setattr(tc, "SNAPSHOT_EVERY_S", 0.05)
    set_settings(window, epochs=3, batch=1)  # 256 steps an epoch: snapshots inside epoch 2
    label = window.toolbar.timeline_label
    seen = []  # the label each time the map's weights changed (connected after the toolbar's)
    window.session.decoderChanged.connect(lambda: seen.append(label.text()))
    window.training.start()
    qtbot.waitUntil(lambda: "now: in epoch 2" in seen, timeout=60000)
    assert "now: in epoch 1" in seen and "1 (now)" in seen  # then epoch 1's end, as shown
    assert seen.index("now: in epoch 1") < seen.index("1 (now)") < seen.index("now: in epoch 2")
    with qtbot.waitSignal(window.session.training.finished, timeout=10000):
        window.session.training.stop()
    # Once the run is over (kept or discarded), no epoch is under way.
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    assert "in epoch" not in label.text() and window.session.run.in_epoch is None


def test_a_new_run_says_it_cleared_the_interpolation_ends(window, qtbot, answered_questions):
    window.session.set_endpoint("A", np.zeros(2))
    window.session.set_endpoint("B", np.ones(2))
    said = []
    window.session.status.connect(lambda text, _ms: said.append(text))
    set_settings(window, epochs=1, batch=32)
    with qtbot.waitSignal(window.session.training.finished, timeout=60000):
        assert window.training.start()
        assert window.session.endpoints == {"A": None, "B": None}
        assert any("ends A and B were points of the previous model and are cleared" in t
                   for t in said)
    said.clear()
    window.session.set_dirty(False)
    window.training.start()  # no ends this time: nothing to say about them
    window.session.training.stop()
    assert not any("ends A and B" in t for t in said)
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=10000)


def test_a_report_exported_mid_run_describes_the_run(window, qtbot, tmp_path, monkeypatch):
    """It said "unsaved model", "(no training recipe was saved with this model)" and "(no loss
    history saved)" while the Training dock showed the run's recipe and curve."""
    from app import exports
    from cae.report import _recipe_lines
    asked = []

    def report_task(cancel, report, path, model, metadata, extras, name, digest, dataset,
                    metrics):
        asked.append((model, metadata, name))
        Path(path).write_text("report")
        return Path(path)

    monkeypatch.setattr(exports, "_report_task", report_task)
    set_settings(window, epochs=200, batch=8)
    with qtbot.waitSignal(window.session.training.epochEnded, timeout=30000):
        window.training.start()
    qtbot.waitUntil(lambda: window.session.run.epochs_done >= 1, timeout=5000)
    assert window.exports.export_report(str(tmp_path / "live.png"))
    qtbot.waitUntil(lambda: bool(asked), timeout=10000)
    window.session.training.stop()
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    model, metadata, name = asked[0]
    done = metadata["epochs_done"]
    assert name == "the model in training (unsaved)" and done >= 1
    assert metadata["train_config"]["epochs"] == 200 and len(metadata["history"]) == done
    assert metadata["under_way"] == f"epoch {done + 1} of 200"
    text = " ".join(_recipe_lines(metadata))
    assert f"{done} epoch" in text and "under way (a snapshot during training)" in text
    assert "stopped early" not in text


def test_a_run_stopped_mid_epoch_and_kept_says_how_far_it_got(window, qtbot, monkeypatch,
                                                              tmp_path):
    """Stopped at step 160 of 938 and kept, the saved model reopened with no curve, "epochs_done
    0" and nothing saying it had trained at all."""
    from app.files import Button, FilesController
    monkeypatch.setattr(FilesController, "ask", lambda self, title, *a, **k: (
        Button.Save if title == "Training stopped" else Button.Discard))  # "Keep it"
    # Every report reaches the panel, and a step takes at least 5 ms: three reports come by
    # step 60, and the stop lands well before the epoch's 256th step on any machine.
    monkeypatch.setattr("app.training_service.PROGRESS_INTERVAL_S", 0.0)
    real = Trainer._batch
    monkeypatch.setattr(Trainer, "_batch", lambda self, *a: time.sleep(0.005) or real(self, *a))
    set_settings(window, epochs=5, batch=1)  # 256 steps per epoch
    with qtbot.waitSignal(window.session.training.progress, timeout=30000):
        window.training.start()
    qtbot.waitUntil(lambda: len(window.training_panel.train_points) >= 3, timeout=30000)
    with qtbot.waitSignal(window.session.training.finished, timeout=10000) as stopped:
        window.session.training.stop()
    qtbot.waitUntil(lambda: window.session.dirty and not window.session.training.running,
                    timeout=5000)
    steps = stopped.args[0].steps
    meta = window.session.models.metadata
    assert 0 < steps < 256 and meta["steps_done"] == steps and meta["steps_per_epoch"] == 256
    assert len(meta["step_losses"]) >= 3 and meta["epochs_done"] == 0 and meta["stopped_early"]
    # The bar says the same step as the file (it said the last report's, a few steps before).
    assert window.training_panel.progress.format().startswith(
        f"stopped in epoch 1 at step {steps}/256")
    # The slider's "now" is the kept weights, not the last epoch's end it holds ("0 (now)").
    assert window.toolbar.timeline_label.text() == f"now: stopped in epoch 1, step {steps}/256"
    # Kept, it is autosaved as it stands: a kill before Save lost it (no epoch had ended).
    from app import autosave
    from cae.checkpoint import load_checkpoint
    qtbot.waitUntil(lambda: autosave.path().is_file()
                    and not window.session.tasks.running("autosave"), timeout=20000)
    kept = load_checkpoint(autosave.path())
    assert kept.metadata["steps_done"] == steps and kept.metadata["autosave"]
    assert all(torch.equal(v, window.session.models.model.state_dict()[k])
               for k, v in kept.model.state_dict().items())
    path = tmp_path / "partial.safetensors"
    assert window.files.save_model(str(path))
    assert not autosave.path().exists()  # saved: nothing left to recover
    window.session.models.new_model()  # another model, then the saved one again
    panel = window.training_panel
    assert panel.status.text() == ""
    assert window.files.open_model(str(path)), window.last_error
    xs, ys = panel.train_curve.getData()
    assert len(xs) == len(meta["step_losses"]) and 0 < xs[0] < xs[-1] < 1  # the run's curve
    assert panel.loss_plot.isVisibleTo(panel) and not panel.loss_hint.isVisibleTo(panel)
    assert f"{steps} of 256 steps of epoch\u00a01 (stopped)" in panel.status.text()
    # A part of an epoch: the axis's ticks are fractions of it (whole epochs showed none).
    axis = panel.loss_plot.getPlotItem().getAxis("bottom")
    assert axis.tickSpacing(xs[0], xs[-1], 200)[0][0] < xs[-1] - xs[0]
    assert "no test\u00a0loss" in panel.status.text()


def test_a_train_that_cannot_start_leaves_the_panel_as_it_was(window, qtbot, monkeypatch):
    """A refused start (here: the trainer refuses the data) left "starting…" on the bar and the
    model's loss curve wiped."""
    from cae.errors import TrainingError
    panel = window.training_panel
    panel.show_history([{"epoch": 1, "train_loss": 0.05, "test_loss": 0.04, "seconds": 1.0}])
    status, fmt = panel.status.text(), panel.progress.format()

    def refuse(*args):
        raise TrainingError("no room for this run")
    monkeypatch.setattr(window.session.training, "start", refuse)
    set_settings(window, epochs=1, batch=32)
    assert not window.training.start()
    assert "no room for this run" in window.last_error
    assert panel.progress.format() == fmt and panel.status.text() == status
    assert len(panel.train_curve.getData()[0] or []) == 1


def test_the_timeline_has_a_row_of_its_own_that_a_narrow_window_keeps_in_view(window, qtbot):
    """At 1024 px the slider, at the end of the map's toolbar, went into its "»" menu."""
    bar = window.toolbar.timeline_bar
    assert not bar.isVisible()  # no timeline yet: no empty row either
    set_settings(window, epochs=2, batch=32)
    with qtbot.waitSignal(window.session.training.finished, timeout=60000):
        window.training.start()
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    window.resize(1024, 768)
    qtbot.wait(50)
    slider = window.toolbar.timeline_slider
    assert bar.isVisible() and slider.isVisible() and slider.width() >= 120
    assert bar.geometry().top() >= window.toolbar.geometry().bottom()  # the row below
    assert window.rect().contains(bar.mapTo(window, slider.geometry().bottomRight()))


def test_in_the_middle_of_an_epoch_the_last_epoch_keeps_a_position(window, qtbot):
    """With "now" at the slider's right end being the weights being trained, the last finished
    epoch had no position of its own while the next one ran (nor after a stop mid-epoch)."""
    set_settings(window, epochs=50, batch=1)  # 256 steps per epoch
    s, slider = window.session, window.toolbar.timeline_slider
    window.training.start()
    qtbot.waitUntil(lambda: len(s.timeline) >= 2 and s.run.in_epoch is not None, timeout=120000)
    assert slider.maximum() == len(s.timeline) and slider.value() == slider.maximum()
    assert window.toolbar.timeline_label.text().startswith("now: in epoch ")
    slider.setValue(len(s.timeline) - 1)  # the last finished epoch
    assert s.scrubbing and s.models.decoder_override is not None
    assert window.toolbar.timeline_label.text() == str(s.timeline.epochs[-1])
    slider.setValue(slider.maximum())
    assert not s.scrubbing and s.models.decoder_override is None
    s.training.stop()
    qtbot.waitUntil(lambda: not s.training.running, timeout=30000)


def test_a_runs_loss_axis_counts_whole_epochs_once_it_spans_one(window):
    """During a run the axis showed 1.0, 1.5, 2.0 for a 2-epoch curve: fractions only while the
    curve is within its first epoch, whole epochs after."""
    from cae.train import Progress
    panel = window.training_panel
    panel.reset_curves()
    axis = panel.loss_plot.getPlotItem().getAxis("bottom")

    def report(step: int) -> None:
        panel.show_progress(Progress(step // 10 + 1, step % 10, 10, step, 20, 0.1, 100.0, 1.0,
                                     1e-3))

    for step in range(1, 9):
        report(step)
    assert axis.tickSpacing(0.1, 0.8, 200)[0][0] < 1  # within the first epoch: its fractions
    for step in range(9, 21):
        report(step)
    assert all(s >= 1 and s == int(s) for s, _ in axis.tickSpacing(0.1, 2.0, 200))
    panel.reset_curves()  # the next run starts with fractions again
    assert axis.tickSpacing(0, 1, 200)[0][0] < 1
