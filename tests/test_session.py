"""The session without any window: state, signals and the flows between features."""
import numpy as np
import pytest
import torch
from PySide6.QtCore import QSettings

from app import autosave, torch_threads
from app.points import MapPoints
from app.session import Session
from cae.checkpoint import save_checkpoint
from cae.model import CAE
from cae.train import TrainConfig


@pytest.fixture
def session(qtbot, tmp_path):
    s = Session(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    errors = []
    s.error.connect(lambda title, text: errors.append(text))
    s.errors = errors
    yield s
    s.shutdown()


@pytest.fixture
def model_file(tmp_path):
    torch.manual_seed(3)
    return save_checkpoint(tmp_path / "m.safetensors", CAE(), {"dataset": "synthetic"})


def test_map_points_are_one_immutable_value():
    p = MapPoints(np.zeros((3, 2)), [0, 1, 2], ("a", "b", "c"))
    assert p.codes.dtype == np.float32 and p.class_name(1) == "b"
    with pytest.raises(ValueError):
        p.codes[0, 0] = 1.0
    with pytest.raises(ValueError, match="one entry per point"):
        MapPoints(np.zeros((3, 2)), [0, 1], ("a",))


def test_a_dataset_brings_points_with_their_images(session, model_file, tiny_folder, qtbot):
    got = []
    session.pointsChanged.connect(lambda points, fit: got.append((points, fit)))
    session.start(str(model_file), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: bool(got) and got[-1][0].images is not None, timeout=20000)
    points, fit = got[-1]
    assert fit and len(points) == 64 and points.source == "test"
    np.testing.assert_array_equal(points.images, session.dataset.test_images)
    with torch.no_grad():
        expected = session.models.model.encode(
            torch.from_numpy(session.dataset.test_images[:, None] / 255.0).float()).numpy()
    np.testing.assert_allclose(points.codes, expected, atol=1e-4)
    assert session.points is points and not session.errors


def test_an_encoding_under_way_never_replaces_the_models_own_codes(session, model_file,
                                                                    tiny_folder, qtbot):
    """Opening a model with its own dataset's codes while the data before is still being
    encoded: the encoding that ends later must not put the other data back on the map (seen with
    the Fashion-MNIST model opened over MNIST), nor be saved as the model's codes."""
    session.start(str(model_file), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: session.points.images is not None, timeout=20000)
    ds = session.dataset
    session.refresh_codes()  # an encoding under way (its result is queued to this thread)
    own = np.full((len(ds.test_labels), 2), 7.0, np.float32)
    session.models.metadata["dataset"] = ds.name
    session.models.extras.update(test_codes=own, test_labels=ds.test_labels.astype(np.uint8))
    session.refresh_codes()  # the stored codes are this dataset's: shown at once
    assert np.all(session.points.codes == 7.0)
    # The first encoding ends (or stops), and whatever it sent has arrived.
    qtbot.waitUntil(lambda: session.runner.pool.activeThreadCount() == 0, timeout=20000)
    qtbot.wait(100)
    assert np.all(session.points.codes == 7.0)
    assert np.all(session.models.extras["test_codes"] == 7.0)


def test_codes_of_another_dataset_are_not_saved_as_the_models(session, model_file, tiny_folder,
                                                             qtbot):
    session.start(str(model_file), str(tiny_folder), "folder")  # the model says "synthetic"
    qtbot.waitUntil(lambda: session.points.images is not None, timeout=20000)
    qtbot.wait(200)
    assert session.dataset.name != "synthetic" and "test_codes" not in session.models.extras
    session.models.metadata["dataset"] = session.dataset.name
    with qtbot.waitSignal(session.pointsChanged, timeout=20000):
        session.refresh_codes()
    np.testing.assert_array_equal(session.models.extras["test_codes"], session.points.codes)


def test_every_weights_change_says_decoder_changed(session, model_file, tiny_folder, qtbot):
    session.start(str(model_file), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: session.points.images is not None, timeout=20000)
    with qtbot.waitSignal(session.decoderChanged, timeout=1000):
        session.models.update_weights({k: v.numpy() * 0.5
                                       for k, v in session.models.model.state_dict().items()})


def test_training_leaves_an_unsaved_model_that_can_be_discarded(session, model_file, tiny_folder,
                                                                qtbot):
    session.start(str(model_file), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: session.points.images is not None, timeout=20000)
    before = session.models.model
    dirty = []
    session.dirtyChanged.connect(dirty.append)
    with qtbot.waitSignal(session.run.ended, timeout=60000) as ended:
        assert session.run.start(TrainConfig(epochs=2, batch_size=32, device="cpu"), False)
    assert not ended.args[0].stopped
    assert session.dirty and dirty == [True] and session.models.path is None
    meta = session.models.metadata
    assert meta["epochs_done"] == 2 and meta["dataset"] == session.dataset.name
    # The threads the run trained with, not the GUI thread's one.
    assert meta["threads"] == session.training.trainer.threads == torch_threads.ALL
    assert len(session.timeline) == 3  # the start and two epochs
    qtbot.waitUntil(lambda: not session.training.running, timeout=5000)
    # Its codes are kept for the file, so it reopens with a map offline (as the CLI's models do).
    qtbot.waitUntil(lambda: "test_codes" in session.models.extras, timeout=20000)
    assert autosave.path().is_file()  # written after each epoch until saved or discarded
    session.run.discard_trained()
    assert session.models.model is before and not session.dirty and not autosave.path().exists()


def test_a_runs_timeline_over_other_data_keeps_its_own_labels_and_no_images(
        session, model_file, tiny_folder, qtbot):
    from cae.data import DATASETS, Dataset
    from tests.helpers import make_dataset
    session.start(str(model_file), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: session.points.images is not None, timeout=20000)
    with qtbot.waitSignal(session.run.ended, timeout=60000):
        assert session.run.start(TrainConfig(epochs=2, batch_size=32, device="cpu"), False)
    qtbot.waitUntil(lambda: not session.training.running, timeout=5000)
    trained_on = session.dataset.name
    own_names = session.dataset.class_names
    session.show_epoch(0)
    assert session.scrubbing and session.points.images is not None  # its own data: images
    other = make_dataset(64, 32, seed=5)
    reset, redraw = [], []
    session.timelineChanged.connect(reset.append)
    session.decoderChanged.connect(lambda: redraw.append(session.models.decoding_model))
    session._on_dataset_loaded(Dataset("fashion-mnist", other.train_images, other.train_labels,
                                       other.test_images, other.test_labels,
                                       DATASETS["fashion-mnist"].class_names))
    # A folder's model over Fashion-MNIST is flagged; the slider goes back to the model now.
    assert session.model_data_mismatch() == trained_on
    assert reset == [True] and not session.scrubbing
    assert session.models.decoder_override is None
    # The decoded point and the drawing are drawn again, by the model (not the past epoch).
    assert redraw and redraw[-1] is session.models.model
    session.show_epoch(0)  # the run's codes: named as the run named them, no foreign images
    assert session.points.class_names == tuple(own_names) and session.points.images is None


def test_continuing_a_model_records_what_it_continued_and_the_autosave_says_it_finished(
        session, model_file, tiny_folder, tmp_path, qtbot):
    from cae.checkpoint import load_checkpoint
    from cae.model_file import epochs_trained
    session.start(str(model_file), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: session.points.images is not None, timeout=20000)
    with qtbot.waitSignal(session.run.ended, timeout=60000):
        assert session.run.start(TrainConfig(epochs=2, batch_size=32, device="cpu"), False)
    qtbot.waitUntil(lambda: not session.training.running, timeout=5000)
    first = session.models.save(tmp_path / "first.safetensors")
    with qtbot.waitSignal(session.run.ended, timeout=60000):
        assert session.run.start(TrainConfig(epochs=1, batch_size=32, device="cpu"), True)
    qtbot.waitUntil(lambda: not session.training.running, timeout=5000)
    meta = session.models.metadata
    assert meta["epochs_done"] == 1 and not meta["stopped_early"]
    assert meta["init"]["file"] == "first.safetensors" and meta["init"]["epochs_done"] == 2
    assert "history" not in meta["init"] and epochs_trained(meta) == 3
    # The autosave of the run's last epoch: a finished run, which, saved, is the user's file.
    qtbot.waitUntil(lambda: autosave.path().is_file(), timeout=20000)
    qtbot.waitUntil(lambda: not session.tasks.running("autosave"), timeout=20000)
    saved = load_checkpoint(autosave.path()).metadata
    assert saved["autosave"] and not saved["stopped_early"] and saved["init"]["epochs_done"] == 2
    session.models.set_model(session.models.model, saved, None, trained=True)
    mine = load_checkpoint(session.models.save(tmp_path / "mine.safetensors")).metadata
    assert "autosave" not in mine and mine["init"]["file"] == "first.safetensors"
    assert load_checkpoint(first).metadata.get("init") is None  # a fresh run records none


def test_epochs_trained_counts_back_through_what_a_model_continued():
    from cae.model_file import epochs_trained
    assert epochs_trained({"epochs_done": 2, "init": {"epochs_done": 3, "init": {
        "epochs_done": 40}}}) == 45
    assert epochs_trained({"epochs_done": "x", "init": {"epochs_done": -1}}) == 0
    assert epochs_trained({}) == 0


def test_after_a_discard_the_next_start_opens_what_is_on_the_map(session, model_file, qtbot):
    from cae.bundled import bundled_model_path
    from cae.data import Dataset
    from tests.helpers import make_dataset
    session.start(str(model_file), None, "mnist")
    session.settings.setValue("lastModel", str(model_file))  # as Open remembered it
    small = make_dataset(64, 32)
    session._on_dataset_loaded(Dataset("mnist", small.train_images, small.train_labels,
                                       small.test_images, small.test_labels))
    session.set_dirty(True)  # an unsaved run's model, thrown away: the bundled model is shown
    session.discard_unsaved()
    bundled = bundled_model_path("mnist")
    assert session.models.path == bundled
    assert session.settings.value("lastModel") == str(bundled)
    session._on_dataset_loaded(Dataset("folder-data", small.train_images, small.train_labels,
                                       small.test_images, small.test_labels))
    session.set_dirty(True)  # over a folder's data: a new model, no file to reopen
    session.discard_unsaved()
    assert session.models.path is None and session.settings.value("lastModel") == ""


def test_train_while_the_dataset_loads_says_so(session, tiny_folder, qtbot):
    session.load_data("auto", str(tiny_folder))
    assert session.data.busy
    assert "still loading" in session.missing_data_message()
    qtbot.waitUntil(lambda: not session.data.busy, timeout=20000)


def test_not_found_names_the_folder_that_was_asked_for(session, tmp_path, qtbot):
    wanted = tmp_path / "my-mnist"
    wanted.mkdir()
    session.load_data("mnist", str(wanted))
    qtbot.waitUntil(lambda: not session.data.busy, timeout=20000)
    assert session.errors and str(wanted) in session.errors[-1]
    assert str(wanted) in session.missing_data_message()


def test_train_after_a_dataset_failed_to_load_says_why_not_that_it_was_not_found(
        session, tmp_path, qtbot):
    """A truncated file was reported at start-up, then Train said "mnist was not found" though
    all four files were there."""
    from tests.helpers import FILES, write_dataset_folder
    folder = write_dataset_folder(tmp_path / "cut")
    images = folder / FILES["test_images"]
    images.write_bytes(images.read_bytes()[:-200])
    session.load_data("folder", str(folder))
    qtbot.waitUntil(lambda: not session.data.busy, timeout=20000)
    assert session.dataset is None and session.errors
    said = session.missing_data_message()
    assert "could not be loaded" in said and session.errors[-1] in said
    assert "not found" not in said


def test_a_corrupt_given_model_is_reported_and_the_usual_model_opens(session, model_file, tmp_path,
                                                                     qtbot):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 100)
    session.start(str(bad), str(tmp_path / "no-data"), "mnist", bundled=model_file)
    assert session.errors and "bad.safetensors" in session.errors[0]
    assert session.models.path == model_file


def test_the_all_digits_choice_is_remembered(session, model_file, tiny_folder, qtbot, tmp_path):
    session.start(str(model_file), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: session.points.images is not None, timeout=20000)
    session.set_map_all(True)
    qtbot.waitUntil(lambda: len(session.points) == 256 + 64, timeout=20000)
    again = Session(session.settings)
    assert again.map_all
    again.shutdown()


def test_the_metrics_are_not_computed_again_for_the_same_model_and_data(session, model_file,
                                                                       tiny_folder, qtbot):
    """Switching between the test digits and all of them recomputed the metrics each time
    (the panel blank for ~20 s on 2 cores) though neither the model nor the data had changed.
    (A dict sent through a signal arrives as a copy: equal, not the same object.)"""
    ready, computing = [], []
    session.metricsReady.connect(lambda metrics, source: ready.append(metrics))
    session.metricsCleared.connect(lambda why: computing.append(why))
    session.start(str(model_file), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: bool(ready) and not session.tasks.running("metrics"), timeout=30000)
    computed, first = len(computing), ready[-1]
    for all_digits, count in ((True, 320), (False, 64)):
        before = len(ready)
        session.set_map_all(all_digits)
        qtbot.waitUntil(lambda before=before: len(ready) == before + 1, timeout=20000)
        assert len(session.points) == count and ready[-1] == first
    assert len(computing) == computed
    # A past epoch shown and "now" again: the model is the same (its metrics had been computed
    # anew, minutes on a busy machine).
    session.models.set_decoder_override(CAE())
    session.models.set_decoder_override(None)
    before = len(ready)
    session.refresh_codes()
    qtbot.waitUntil(lambda: len(ready) == before + 1, timeout=20000)
    assert len(computing) == computed and ready[-1] == first
    session.models.set_model(CAE(), {"dataset": "synthetic"})  # another model: computed anew
    qtbot.waitUntil(lambda: len(computing) > computed and not session.tasks.running("metrics"),
                    timeout=30000)


def test_a_model_file_without_a_digest_opens_with_a_visible_warning(session, model_file, tmp_path):
    import json
    import struct
    raw = model_file.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    del header["__metadata__"]["sha256"]
    text = json.dumps(header).encode()
    bare = tmp_path / "bare.safetensors"
    bare.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n:])
    assert session.load_model(str(bare))
    assert any("no integrity digest" in e for e in session.errors)
    assert session.load_model(str(model_file)) and len(session.errors) == 1


def test_codes_are_cached_on_disk_for_the_next_start(session, model_file, tiny_folder, qtbot,
                                                     monkeypatch):
    import app.points
    session.start(str(model_file), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: session.points.images is not None, timeout=20000)
    first = session.points.codes.copy()
    session.set_map_all(True)
    qtbot.waitUntil(lambda: len(session.points) == 320, timeout=20000)
    encoded = []
    real = app.points.encode_images
    monkeypatch.setattr(app.points, "encode_images",
                        lambda *a, **k: encoded.append(len(a[1])) or real(*a, **k))
    again = Session(session.settings)
    again.start(str(model_file), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: len(again.points) == 320 and again.points.images is not None,
                    timeout=20000)
    # The same model and images: read from the cache, not encoded (the training digits' exact
    # codes, for the votes, may still be under way in the first session, hence encoded here).
    assert 320 not in encoded
    np.testing.assert_array_equal(again.points.codes, session.points.codes)
    again.set_map_all(False)
    qtbot.waitUntil(lambda: len(again.points) == 64, timeout=20000)
    np.testing.assert_array_equal(again.points.codes, first)
    assert 64 not in encoded
    again.shutdown()


def test_switching_to_fashion_mnist_switches_the_bundled_model(session, qtbot):
    from cae.bundled import bundled_model_path
    from cae.data import DATASETS, Dataset
    from tests.helpers import make_dataset
    mnist, fashion = bundled_model_path("mnist"), bundled_model_path("fashion-mnist")
    assert mnist is not None and fashion is not None
    session.start(None, None, "mnist", bundled=mnist)
    assert session.models.path == mnist
    said = []
    session.status.connect(lambda text, _ms: said.append(text))
    small = make_dataset(64, 32)
    names = DATASETS["fashion-mnist"].class_names
    session._on_dataset_loaded(Dataset("fashion-mnist", small.train_images, small.train_labels,
                                       small.test_images, small.test_labels, names))
    assert session.models.path == fashion and session.models.metadata["dataset"] == "fashion-mnist"
    assert "Fashion-MNIST: with its bundled model (one of MNIST would not make sense of it)" in said[-1]
    assert session.model_data_mismatch() is None
    session.set_dirty(True)  # a model of the user's is never replaced, and the user is told
    session._on_dataset_loaded(Dataset("mnist", small.train_images, small.train_labels,
                                       small.test_images, small.test_labels))
    assert session.models.path == fashion
    assert session.model_data_mismatch() == "Fashion-MNIST"  # the window keeps it in view
    # Asked to download a dataset already on this computer, the switch's message says so too
    # (it replaced the first message, which alone had said it).
    session.set_dirty(False)
    session.models.load(mnist)
    session._data_download = True
    session._on_dataset_loaded(Dataset("fashion-mnist", small.train_images, small.train_labels,
                                       small.test_images, small.test_labels, names,
                                       source="/usr/share/datasets/fashion-mnist"))
    assert said[-1].startswith("Fashion-MNIST from /usr/share/datasets/fashion-mnist (already "
                               "on this computer: nothing downloaded): with its bundled model")


def test_loading_says_what_it_loads(session, tiny_folder, qtbot, monkeypatch):
    """(Choose data folder said "looking for auto…".)"""
    from dataclasses import replace

    from cae import data as D
    monkeypatch.setitem(D.DATASETS, "fashion-mnist",  # (a test never goes on the network)
                        replace(D.DATASETS["fashion-mnist"], mirrors=("http://127.0.0.1:9/",)))
    said = []
    session.status.connect(lambda text, _ms: said.append(text))
    session.load_data("auto", str(tiny_folder))
    assert said[0] == f"loading {tiny_folder}…"
    qtbot.waitUntil(lambda: not session.data.busy, timeout=10000)
    said.clear()
    session.load_data("fashion-mnist", download=True)
    assert said[0] == "downloading Fashion-MNIST…"
    session.data.cancel()
    qtbot.waitUntil(lambda: not session.data.busy, timeout=10000)


def test_the_metrics_of_the_model_before_never_land_under_the_next(session, tiny_folder, qtbot,
                                                                   tmp_path, monkeypatch):
    """Model A's metrics still being computed when B opened (B's codes still encoding) were
    shown as the current figures, and the Draw tab ranked drawings with them."""
    import time

    import app.session as app_session
    real_metrics, real_encode = app_session._metrics, app_session.encode_cached

    def slow_metrics(cancel, report, *args):
        time.sleep(1.0)
        return real_metrics(cancel, report, *args)

    def slow_encode(cancel, report, *args):
        time.sleep(2.5)
        return real_encode(cancel, report, *args)
    monkeypatch.setattr(app_session, "_metrics", slow_metrics)
    torch.manual_seed(1)
    a = save_checkpoint(tmp_path / "A.safetensors", CAE(), {})
    torch.manual_seed(2)
    b = save_checkpoint(tmp_path / "B.safetensors", CAE(), {})
    ready = []
    session.metricsReady.connect(lambda metrics, source: ready.append(source))
    session.start(str(a), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: session.tasks.running("metrics"), timeout=20000)
    monkeypatch.setattr(app_session, "encode_cached", slow_encode)
    assert session.load_model(b)
    qtbot.waitUntil(lambda: len(ready) > 0, timeout=30000)
    assert ready == [f"B.safetensors on {session.dataset.title}"]


def test_starting_a_run_leaves_exports_going(session, model_file, tiny_folder, qtbot):
    """A run's start cancelled every task: an export under way stopped with its progress
    dialog frozen and no word that the file was never written."""
    import time
    session.start(str(model_file), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: session.dataset is not None and len(session.points) > 0,
                    timeout=20000)

    def export(cancel, report):
        time.sleep(1.0)
        return "written"
    finished = []
    for kind in ("report", "export_codes"):
        session.tasks.submit(kind, export, on_done=finished.append)
    assert session.run.start(TrainConfig(epochs=1, batch_size=32, device="cpu"), False)
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=20000)
    session.training.stop()


def test_a_model_whose_codes_overflow_says_so(session, tiny_folder, qtbot, tmp_path):
    """Huge but finite weights (which the file's checks accept) give infinite codes: the map's
    encoding failed with "ValueError: codes must be a finite (N, D) array" from the cache."""
    model = CAE()
    with torch.no_grad():
        model.encoder[0].weight.mul_(1e30)
        model.encoder[3].weight.mul_(1e30)
    path = save_checkpoint(tmp_path / "huge.safetensors", model, {})
    session.start(str(path), str(tiny_folder), "folder")
    qtbot.waitUntil(lambda: len(session.errors) > 0, timeout=20000)
    assert "the model's codes are not finite (infinite or NaN) for 64 of the 64 images" in \
        session.errors[-1]
    assert "ValueError" not in session.errors[-1]


def test_shutdown_names_what_outlived_its_wait(session):
    """A data load held up by the OS (a picture on a stalled share) outlived the close, and the
    app said "a training step was still under way" with nothing training."""
    import threading
    release = threading.Event()
    session.runner.submit(lambda cancel, report: release.wait(10))
    try:
        assert session.shutdown(100) == "a background task (loading data, encoding or an export)"
    finally:
        release.set()
    assert session.runner.shutdown(5000)
