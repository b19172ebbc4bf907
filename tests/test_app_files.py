"""Files, data and the empty state: open/save/export, downloads from the window, bad input."""

import numpy as np
import pytest
import torch

from app.main_window import MainWindow
from cae import data as D
from cae.checkpoint import load_checkpoint
from tests.http_server import release_stalled
from tests.helpers import FILES, spec_for


def test_open_a_bad_model_keeps_the_current_one(window, tmp_path):
    before = window.session.models.model
    for content, message in ((b"\x80\x04garbage", "pickle"), (b"short", "too short")):
        bad = tmp_path / "bad.safetensors"
        bad.write_bytes(content)
        assert not window.files.open_model(str(bad))
        assert message in window.last_error
        assert window.session.models.model is before
    window.explore.request_decode(0.0, 0.0)  # the window still works
    assert window.decoded_view.image is not None


def test_save_then_open_and_recent_models(window, tmp_path, qtbot):
    path = tmp_path / "saved"  # the suffix is added
    assert window.files.save_model(str(path))
    saved = tmp_path / "saved.safetensors"
    assert window.windowTitle().endswith("— saved.safetensors")  # the title names the new file
    ckpt = load_checkpoint(saved)
    for k, v in window.session.models.model.state_dict().items():
        assert torch.equal(v, ckpt.model.state_dict()[k])
    assert window.files.recent_models()[0] == str(saved.resolve())
    assert window.session.settings.value("lastModel") == str(saved.resolve())
    assert [a.text() for a in window.recent_menu.actions()][0] == str(saved.resolve())
    window.session.models.new_model()  # another model, then the recent entry brings it back
    assert window.session.models.path != saved.resolve()
    window.session.set_endpoint("A", np.array([0.5, 0.5]))
    window.recent_menu.actions()[0].trigger()
    said = window.statusBar().currentMessage()  # what happened, and what the ends became
    assert said.startswith("opened saved.safetensors") and "ends A and B" in said, said
    assert window.session.endpoints == {"A": None, "B": None}
    assert window.session.models.path == saved.resolve() or window.session.models.path == saved
    for k, v in window.session.models.model.state_dict().items():
        assert torch.equal(v, ckpt.model.state_dict()[k])


def test_save_into_a_missing_folder_is_a_clear_message(window, tmp_path):
    assert not window.files.save_model(str(tmp_path / "missing" / "m.safetensors"))
    assert "could not save" in window.last_error


@pytest.mark.parametrize("suffix", [".csv", ".npy", ".npz"])
def test_export_codes(window, tmp_path, suffix):
    path = tmp_path / f"codes{suffix}"
    assert window.files.export_codes(str(path))
    if suffix == ".csv":
        table = np.loadtxt(path, delimiter=",", skiprows=1)
    elif suffix == ".npy":
        table = np.load(path)
    else:
        z = np.load(path)
        table = np.column_stack([z["codes"], z["labels"]])
    np.testing.assert_allclose(table[:, :2], window.map.codes, atol=1e-5)
    np.testing.assert_array_equal(table[:, 2], window.map.labels)


def test_the_all_digits_view_exports_exact_codes(window, tmp_path, qtbot, monkeypatch):
    """That view is placed with the fast (bf16) codes; the file gets float32 ones, as
    `cae encode` writes them, and the status says which rows are which."""
    from cae.metrics import encode_images
    s = window.session
    said = []
    s.status.connect(lambda text, _ms: said.append(text))
    s.request_train_codes()  # as a drawing's neighbours or the metrics do
    qtbot.waitUntil(lambda: s.train_codes is not None, timeout=30000)
    s.set_map_all(True)
    qtbot.waitUntil(lambda: s.points.source == "all", timeout=30000)
    import app.points
    encoded = []
    real = app.points.encode_images
    monkeypatch.setattr(app.points, "encode_images",
                        lambda model, images, **k: encoded.append(len(images)) or real(
                            model, images, **k))
    path = tmp_path / "all.npz"
    assert window.files.export_codes(str(path))
    qtbot.waitUntil(lambda: path.is_file(), timeout=30000)
    assert encoded == []  # the training and test digits' exact codes came from the cache
    z = np.load(path)
    exact = encode_images(s.models.model, s.points.images, precision="fp32")
    np.testing.assert_allclose(z["codes"], exact, atol=1e-6)
    np.testing.assert_array_equal(z["labels"], s.points.labels)
    n_test = len(s.dataset.test_images)
    n_train = len(s.dataset.train_images)
    assert list(z["split"]) == ["train"] * n_train + ["test"] * n_test  # as `cae encode` marks them
    assert f"training digits, then {n_test:,} test ones" in said[-1] or \
        f"training images, then {n_test:,} test ones" in said[-1]


def test_export_failures(window, tmp_path):
    assert not window.files.export_codes(str(tmp_path / "nope" / "codes.csv"))
    assert "cannot write" in window.last_error
    assert not window.files.export_codes(str(tmp_path / "codes.txt"))
    assert "unknown format" in window.last_error


def test_export_map_png(window, tmp_path):
    from PySide6.QtGui import QImage
    path = tmp_path / "map.png"
    assert window.files.export_map_png(str(path))
    img = QImage(str(path))
    assert img.width() > 100 and img.height() > 100
    assert not window.files.export_map_png(str(tmp_path / "missing" / "map.png"))


def test_settings_remember_geometry_and_data_folder(window, settings, tiny_folder, qtbot):
    window.resize(window.width(), 610)
    qtbot.waitUntil(lambda: window.height() == 610)
    window.close()
    assert settings.value("dataFolder") == str(tiny_folder)
    again = MainWindow(settings)
    qtbot.addWidget(again)
    assert again.height() == 610  # (the offscreen screen is narrower than the window: width clamps)
    again.close()


# ----------------------------------------------------------------------------- empty state


@pytest.fixture
def empty_window(qtbot, settings, no_bundled_model, monkeypatch, tmp_path):
    monkeypatch.setattr(D, "system_data_dirs", lambda name: [tmp_path / "no-system-data"])
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    w.start()
    qtbot.waitUntil(lambda: not w.session.data.busy, timeout=10000)
    yield w
    w.close()


def test_no_model_no_data_shows_what_to_do(empty_window):
    w = empty_window
    assert w.stack.currentWidget() is w.welcome
    assert "was not found" in w.welcome.message.text() and "cae download" in w.welcome.message.text()
    assert not w.save_action.isEnabled()


def test_download_from_the_welcome_page(empty_window, server, tiny_folder, monkeypatch, qtbot):
    monkeypatch.setitem(D.DATASETS, "mnist", spec_for(tiny_folder, (f"{server}/good/",), "mnist"))
    w = empty_window
    w.welcome.download_button.click()
    qtbot.waitUntil(lambda: len(w.map.codes) == 64, timeout=20000)
    assert w.stack.currentWidget() is w.map
    assert w.session.models.model is not None and not w.session.models.trained
    assert (D.user_cache_dir() / "mnist" / FILES["train_images"]).is_file()


def test_failed_download_leaves_the_app_usable(empty_window, server, tiny_folder, monkeypatch, qtbot):
    monkeypatch.setitem(D.DATASETS, "mnist", spec_for(tiny_folder, (f"{server}/missing/",), "mnist"))
    w = empty_window
    w.welcome.download_button.click()
    qtbot.waitUntil(lambda: not w.session.data.busy, timeout=10000)
    assert "HTTP 404" in w.welcome.message.text()
    assert w.stack.currentWidget() is w.welcome
    w.files.choose_data_folder(str(tiny_folder))  # another way in still works
    qtbot.waitUntil(lambda: len(w.map.codes) == 64, timeout=20000)


def test_cancel_a_download(empty_window, server, tiny_folder, monkeypatch, qtbot):
    """Cancel stops the download itself (on a server still sending, a byte at a time), not
    only the window's wait for it."""
    monkeypatch.setitem(D.DATASETS, "mnist", spec_for(tiny_folder, (f"{server}/slow/",), "mnist"))
    w = empty_window
    w.session.load_data("mnist", download=True)
    qtbot.waitUntil(lambda: w.cancel_button.isVisible(), timeout=5000)
    w.cancel_button.click()
    assert not w.session.data.busy and not w.cancel_button.isVisible()
    # ("downloading MNIST…", a message that stays, had stayed as if the download went on)
    assert w.statusBar().currentMessage() == "loading cancelled; no data is loaded"
    qtbot.waitUntil(lambda: not w.session.runner.busy, timeout=3000)
    release_stalled()
    cache = D.user_cache_dir() / "mnist"
    assert not cache.exists() or not any(cache.iterdir())


def test_closing_during_a_download_is_quick(empty_window, server, tiny_folder, monkeypatch, qtbot):
    import time
    monkeypatch.setitem(D.DATASETS, "mnist", spec_for(tiny_folder, (f"{server}/slow/",), "mnist"))
    w = empty_window
    w.session.load_data("mnist", download=True)
    qtbot.waitUntil(lambda: w.cancel_button.isVisible(), timeout=5000)
    qtbot.wait(200)
    t = time.perf_counter()
    w.close()
    # The download stops at the cancel (a worker that went on would hold the close for the
    # runner's whole 1.5-s wait), also on a server sending a byte at a time.
    assert time.perf_counter() - t < 1.0
    assert w.session.runner.pool.activeThreadCount() == 0


def test_reopening_models_does_not_pile_up_menu_actions(window, tmp_path):
    from PySide6.QtGui import QAction
    path = tmp_path / "again.safetensors"
    assert window.files.save_model(str(path))
    assert window.files.open_model(str(path))
    count = len(window.findChildren(QAction))
    for _ in range(5):
        assert window.files.open_model(str(path))
    assert len(window.findChildren(QAction)) == count
    listed = [a.text() for a in window.recent_menu.actions() if not a.isSeparator()]
    assert listed[:len(window.files.recent_models())] == window.files.recent_models()


def test_the_recent_menu_offers_the_bundled_models_after_the_recent_ones(window, tmp_path,
                                                                         monkeypatch):
    """The way back to the model the app started with, once others were opened."""
    from app import file_dialogs
    from cae.checkpoint import save_checkpoint
    from cae.model import CAE
    (tmp_path / "b").mkdir()
    bundled = save_checkpoint(tmp_path / "b" / "model.safetensors", CAE(), {"dataset": "mnist"})
    monkeypatch.setattr(file_dialogs, "bundled_model_path",
                        lambda name: bundled if name == "mnist" else None)
    mine = tmp_path / "mine.safetensors"
    assert window.files.save_model(str(mine))
    actions = window.recent_menu.actions()
    assert [a.text() for a in actions] == [str(mine.resolve()), "",
                                           "Bundled MNIST model (model.safetensors)"]
    assert actions[1].isSeparator()
    actions[2].trigger()  # opened: named once, below, not again among the recent ones
    assert window.session.models.path.resolve() == bundled.resolve()
    assert [a.text() for a in window.recent_menu.actions()] == [
        str(mine.resolve()), "", "Bundled MNIST model (model.safetensors)"]
    monkeypatch.setattr(file_dialogs, "bundled_model_path", lambda name: None)
    window.files.rebuild_recent_menu()  # an install without them: the recent ones alone
    assert [a.text() for a in window.recent_menu.actions()] == [str(bundled.resolve()),
                                                                str(mine.resolve())]


def test_save_proposes_a_new_name_for_a_bundled_model_and_the_own_file_otherwise(window, tmp_path,
                                                                                 monkeypatch):
    from app import file_dialogs
    m = window.session.models
    own = m.path
    assert window.files.suggested_name() == str(own)  # the user's file: saved where it is
    monkeypatch.setattr(file_dialogs, "bundled_model_path",
                        lambda name: own if name == "mnist" else None)
    m.metadata["epochs_done"] = 3
    assert window.files.suggested_name() == "synthetic-3ep.safetensors"
    m.metadata.pop("epochs_done")
    assert window.files.suggested_name() == "synthetic-model.safetensors"


def test_opening_a_model_clears_the_metrics_of_the_one_before(window, qtbot, tmp_path):
    """For half a minute (the new model's codes being encoded) the Metrics tab showed the model
    before's numbers under the new model's title."""
    from cae.checkpoint import save_checkpoint
    from cae.model import CAE
    panel = window.metrics_panel
    qtbot.waitUntil(lambda: panel.metrics is not None, timeout=30000)
    path = save_checkpoint(tmp_path / "other.safetensors", CAE(), {"dataset": "synthetic"})
    window.session.set_dirty(False)
    assert window.files.open_model(str(path))
    assert window.session.tasks.running("codes")  # its map still to come ...
    assert panel.metrics is None  # ... and no numbers of the model before meanwhile
    assert "follow once its map is ready" in panel.summary.text()
    qtbot.waitUntil(lambda: panel.metrics is not None, timeout=30000)  # then its own


def test_an_error_whose_text_repeats_its_title_is_said_once_in_the_status_bar(window):
    """"Could not save the model: could not save the model to …" said it twice."""
    window.show_error("Could not save the model", "could not save the model to /x: full")
    assert window.statusBar().currentMessage() == "could not save the model to /x: full"
    window.show_error("Training timeline", "a bad timeline")
    assert window.statusBar().currentMessage() == "Training timeline: a bad timeline"
