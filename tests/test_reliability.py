"""Reliability: repeated start/stop, faults inside the worker, disk faults, and a soak run."""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cae.train import Trainer
from tests.helpers import set_settings

QT_NOISE = ("propagateSizeHints",)  # the offscreen platform's own note, not ours


def qt_warnings(qtlog):
    return [r.message for r in qtlog.records
            if r.type.name in ("QtWarningMsg", "QtCriticalMsg", "QtFatalMsg")
            and not any(n in r.message for n in QT_NOISE)]


def test_twenty_start_stop_cycles(window, qtbot, qtlog):
    set_settings(window, epochs=100, batch=8)
    for cycle in range(20):
        with qtbot.waitSignal(window.session.training.progress, timeout=30000):
            window.training.start()
        with qtbot.waitSignal(window.session.training.finished, timeout=5000) as done:
            window.session.training.stop()
        assert done.args[0].stopped, cycle
        qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    assert all(torch.isfinite(p).all() for p in window.session.models.model.parameters())
    assert window.training_panel.train_button.isEnabled() and not window.last_error
    assert not qt_warnings(qtlog)


def test_simulated_gpu_out_of_memory_is_reported_and_the_window_adopts_the_weights_sent(
        window, qtbot, monkeypatch):
    # Which weights those are (the last report's, not the last step's) is the engine's to
    # keep: tests/test_train.py::test_out_of_memory_says_lower_the_batch_size_and_keeps_the_...
    # Here: the message reaches the user, and the window ends on exactly what the worker sent.
    calls = {"n": 0}
    original = Trainer._batch

    def batch_then_oom(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 5:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_batch", batch_then_oom)
    set_settings(window, epochs=3, batch=8)
    with qtbot.waitSignal(window.session.training.failed, timeout=30000) as failed:
        window.training.start()
    message, state = failed.args
    assert "lower the batch size" in message and "lower the batch size" in window.last_error
    qtbot.waitUntil(lambda: not window.session.training.running, timeout=5000)
    for k, v in window.session.models.model.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), state[k])


def test_closing_during_a_mosaic_compute(window, qtbot):
    window.toolbar.mosaic_size.setValue(40)
    window.toolbar.mosaic_action.setChecked(True)
    window.layers.refresh_mosaic()
    assert window.session.tasks.running("mosaic")
    t0 = time.perf_counter()
    window.close()
    assert time.perf_counter() - t0 < 2.0 and not window.session.runner.busy


@pytest.fixture
def read_only_folder(tmp_path):
    """(folder, lock): a folder the OS itself refuses writes to once ``lock()`` is called, which
    returns the OS's reason.  Not root: chmod 0555.  Root ignores permissions, so there the
    folder is a tmpfs remounted read-only; where neither works the test is skipped."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    mounted = False
    if os.geteuid() == 0:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)],
                                capture_output=True, text=True)
        if result.returncode:
            pytest.skip(f"root, and no read-only tmpfs can be mounted: {result.stderr.strip()}")
        mounted = True

    def lock() -> str:
        if mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        else:
            folder.chmod(0o555)
        probe = folder / ".probe"
        try:
            probe.touch()
        except OSError as exc:
            return exc.strerror
        probe.unlink()
        pytest.skip("the OS did not make the folder read-only")

    yield folder, lock
    if mounted:
        subprocess.run(["umount", str(folder)], check=True)
    else:
        folder.chmod(0o755)


def test_saving_into_a_read_only_folder_keeps_the_old_file(window, read_only_folder):
    folder, lock = read_only_folder
    target = folder / "model.safetensors"
    assert window.files.save_model(str(target))
    before = target.read_bytes()
    reason = lock()  # "Read-only file system" (root, tmpfs) or "Permission denied" (chmod)
    assert not window.files.save_model(str(target))
    assert reason in window.last_error and str(target) in window.last_error
    assert target.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["model.safetensors"]  # no temporary file


def test_every_export_into_a_read_only_folder_says_why(window, read_only_folder, tmp_path,
                                                      capsys):
    """Exports into a read-only folder ended in a traceback ("unexpected error" in the window,
    rc 1 from `cae`): the clean-up of the temporary file raised EROFS too, over the message. The
    PNGs said "could not write" without a reason."""
    import numpy as np

    from app.image_view import save_png, to_qimage
    from cae.cli import main
    from cae.errors import CAEError
    from cae.render import write_atomic
    folder, lock = read_only_folder
    model = tmp_path / "m.safetensors"
    assert window.files.save_model(str(model))
    reason = lock()
    from app.file_dialogs import cannot_write_in
    assert cannot_write_in(folder) == reason  # (a save dialog says so as the folder is chosen)
    assert not window.files.export_codes(str(folder / "codes.csv"))
    assert reason in window.last_error and "codes.csv" in window.last_error
    assert not window.files.export_map_png(str(folder / "map.png"))
    assert reason in window.last_error and "map.png" in window.last_error
    problem = save_png(to_qimage(np.zeros((4, 4))), str(folder / "strip.png"))
    assert reason in problem and "strip.png" in problem
    with pytest.raises(CAEError, match=reason):
        write_atomic(folder / "map.svg", lambda tmp: tmp.write_text("<svg/>"))
    data = str(window.session.dataset.source)
    capsys.readouterr()
    for args in (["encode", "--model", str(model), "--dataset", "folder", "--data", data,
                  "--out", str(folder / "codes.npz")],
                 ["map", "--model", str(model), "--dataset", "folder", "--data", data, "--out",
                  str(folder / "map.svg")]):
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert reason in err and "Traceback" not in err
    assert list(folder.iterdir()) == []


def test_exporting_onto_a_full_disk_keeps_the_old_file(window, tmp_path, monkeypatch):
    target = tmp_path / "codes.csv"
    assert window.files.export_codes(str(target))
    before = target.read_bytes()

    class DiskFull:  # a CSV writer whose rows fill the disk part of the way
        def __init__(self, f, **kwargs) -> None:
            self.f = f

        def writerow(self, row) -> None:
            self.f.write("partial")

        def writerows(self, rows) -> None:
            self.f.flush()
            raise OSError(28, "No space left on device")

    monkeypatch.setattr("cae.codes.csv.writer", DiskFull)
    assert not window.files.export_codes(str(target))
    assert "No space left" in window.last_error
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name != "codes.csv" and "codes" in p.name] == []


def test_soak(tmp_path):
    """10,000 decodes (2,000 from real mouse clicks), 1,000 draw-and-clear cycles, 50 model loads
    in the real window, in a fresh process like the app's: no model outlives its use (each load's
    background tasks held a copy that PySide once kept), resident memory grows by less than 50 MB
    after warm-up, and Qt prints no warning."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path),
               XDG_CACHE_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, str(Path(__file__).with_name("soak_app.py"))], env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["decodes"] >= 10000 and result["click_decodes"] >= 1900
    assert result["models_after"] <= result["models_before"], result
    assert result["grown_mb"] < 50, f"resident memory grew by {result['grown_mb']:.1f} MB"
    assert result["warnings"] == [] and result["error"] == ""
