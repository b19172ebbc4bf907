import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    """Every test gets its own empty cache and settings, so nothing leaks from the user's."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))  # the app's autosave
    monkeypatch.delenv("CAE_EXPLORER_DATA", raising=False)
    yield


def pytest_configure(config):
    config.addinivalue_line("markers", "real_priority: the training thread yields to the GUI "
                            "as in the app (see training_at_the_tests_priority)")


@pytest.fixture(autouse=True)
def training_at_the_tests_priority(request, monkeypatch):
    """A window's run trains at a lower priority than the GUI (app/torch_threads.py).  Beside
    any other work on the machine that starved the tests' runs: 20 steps took 33 s where 9 s
    at the same priority, past the 30 s the tests wait for a first report.  The tests of that
    priority itself are marked ``real_priority``."""
    if "real_priority" not in request.keywords:
        monkeypatch.setattr("app.torch_threads.TRAINING_NICE", 0)


@pytest.fixture
def tiny_folder(tmp_path):
    from tests.helpers import write_dataset_folder
    return write_dataset_folder(tmp_path / "tiny")


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def no_bundled_model(monkeypatch, tmp_path):
    """Pretend the bundled model is absent (a fresh install without resources)."""
    import app.main_window as mw
    monkeypatch.setattr(mw, "bundled_model_path", lambda name="mnist": None)


@pytest.fixture
def window(qtbot, settings, tiny_folder, tmp_path, no_bundled_model):
    """A main window with a small trained-from-seed model file and the tiny dataset loaded."""
    import torch

    from cae.checkpoint import save_checkpoint
    from cae.model import CAE

    from tests.helpers import open_window

    torch.manual_seed(1)
    model_path = save_checkpoint(tmp_path / "model.safetensors", CAE(), {"dataset": "synthetic"})
    w = open_window(qtbot, settings, model_path, tiny_folder, 64)
    yield w
    w.close()


@pytest.fixture
def server(tiny_folder):
    """A local HTTP server with the tiny dataset's files (see tests/http_server.py)."""
    from tests.helpers import FILES
    from tests.http_server import serve
    with serve({f: (tiny_folder / f).read_bytes() for f in FILES.values()}) as url:
        yield url


@pytest.fixture(autouse=True)
def answered_questions(monkeypatch):
    """Modal questions (save an unsaved model? keep a stopped run?) would block a test forever:
    they are answered "Discard" (or "No") and recorded.  Tests of the dialogs themselves undo this
    with ``monkeypatch.undo()`` and click the real buttons."""
    from app.files import FilesController
    asked: list[tuple[str, str]] = []

    def ask(self, title, text, buttons, default, labels=None):
        from PySide6.QtWidgets import QMessageBox
        asked.append((title, text))
        for choice in (QMessageBox.StandardButton.Discard, QMessageBox.StandardButton.No,
                       QMessageBox.StandardButton.Yes):  # (Yes: "quit while training")
            if buttons & choice:
                return choice
        return default

    monkeypatch.setattr(FilesController, "ask", ask)
    return asked
