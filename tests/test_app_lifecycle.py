"""The real program in a subprocess: it starts, quits with status 0, and closes cleanly mid-work."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=str(ROOT))
    env.pop("CAE_EXPLORER_DATA", None)
    return env


def test_main_starts_and_quits_with_status_zero(tmp_path, tiny_folder):
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--data", str(tiny_folder)],
                            cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # The window is up, its data loaded and its codes encoded (cached) before Ctrl+C comes: a
    # loaded 2-core machine may take many seconds to import torch and Qt.
    cache, deadline = tmp_path / "cache" / "cae-explorer", time.monotonic() + 90
    while not (cache.is_dir() and any(cache.rglob("*.npz"))) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read()
        time.sleep(0.2)
    assert proc.poll() is None and any(cache.rglob("*.npz")), "the map's codes never came"
    proc.send_signal(signal.SIGINT)  # closes the window the normal way
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "Fatal Python error" not in err
    assert (tmp_path / "config" / "cae-explorer" / "cae-explorer.conf").is_file()  # settings saved


# The window, about to train on the folder sys.argv[1] for a long time (settings: sys.argv[2]).
TRAINING = textwrap.dedent("""
    import sys, threading, time
    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication
    from app.main import exec_window
    from app.main_window import MainWindow
    app = QApplication([])
    w = MainWindow(QSettings(sys.argv[2], QSettings.Format.IniFormat))
    w.show()
    w.start(None, sys.argv[1], "folder")
    w.training_panel.epochs.setValue(500)
    w.training_panel.batch_size.setValue(8)
    w.training_panel.device.setCurrentIndex(w.training_panel.device.findData("cpu"))
    w.session.data.loaded.connect(lambda ds: QTimer.singleShot(0, w.training.start))
    started = []
""")

SCRIPT = TRAINING + textwrap.dedent("""
    def on_progress(p):
        if not started:
            started.append(time.perf_counter())
            QTimer.singleShot(0, w.quit_without_asking)  # as Ctrl+C in the terminal does
    w.session.training.progress.connect(on_progress)
    code = app.exec()
    sys.stderr.write(f"closed-after {time.perf_counter() - started[0]:.2f}\\n")
    sys.exit(code)
""")


def test_closing_mid_training_exits_cleanly(tmp_path, tiny_folder):
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tiny_folder), str(tmp_path / "s.ini")],
                          cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "QThread: Destroyed while thread is still running" not in proc.stderr
    assert "Fatal Python error" not in proc.stderr and "Traceback" not in proc.stderr
    seconds = float(proc.stderr.split("closed-after ")[1].split()[0])
    assert seconds < 2.0


LONG_STEP = TRAINING + textwrap.dedent("""
    import cae.train
    forward, in_long_step, calls = cae.train.Trainer._forward, threading.Event(), []
    def slow_forward(self, x):  # the fifth step far longer than the close waits (as a huge
        calls.append(1)         # batch on a CPU takes)
        if len(calls) == 5:
            in_long_step.set()
            time.sleep(6)
        return forward(self, x)
    cae.train.Trainer._forward = slow_forward
    def close_in_the_long_step():
        if in_long_step.is_set() and not started:
            started.append(time.perf_counter())
            w.quit_without_asking()  # as Ctrl+C in the terminal does
    poll = QTimer()
    poll.timeout.connect(close_in_the_long_step)
    poll.start(10)
    app.aboutToQuit.connect(lambda: sys.stderr.write(
        f"closed-after {time.perf_counter() - started[0]:.2f}\\n"))
    sys.exit(exec_window(app, w))
""")


def test_a_step_longer_than_the_close_waits_for_still_exits_cleanly(tmp_path, tiny_folder):
    """A stop takes effect between batches; a step that outlasts the close's wait had the
    process abort at exit ("QThread: Destroyed while thread is still running", status 134)."""
    proc = subprocess.run([sys.executable, "-c", LONG_STEP, str(tiny_folder),
                           str(tmp_path / "s.ini")], cwd=ROOT, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "QThread: Destroyed" not in proc.stderr and "Traceback" not in proc.stderr
    assert "a training step was still under way; it was abandoned" in proc.stderr
    assert float(proc.stderr.split("closed-after ")[1].split()[0]) < 3.0


def test_an_unexpected_error_is_shown_in_the_window_from_any_thread(window, qtbot, capsys):
    """An error in a menu's action had reached only the terminal: the action did nothing, with
    no word why.  The hook keeps the traceback on stderr and tells the user, also for an error
    on a worker thread (through the session's signal, so no widget is touched there)."""
    import threading

    from app.main import error_hook
    hook = error_hook(window)
    try:
        raise ImportError("cannot import name 'check_hidden'")
    except ImportError as exc:
        hook(type(exc), exc, exc.__traceback__)
    assert window.last_error.startswith("ImportError: cannot import name 'check_hidden'")
    assert "Traceback" in capsys.readouterr().err
    window.last_error = ""
    thread = threading.Thread(target=lambda: hook(ValueError, ValueError("bad"), None))
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: window.last_error.startswith("ValueError: bad"), timeout=2000)
    window.last_error = ""
    hook(KeyboardInterrupt, KeyboardInterrupt(), None)  # Ctrl+C is no error to show
    qtbot.wait(50)
    assert window.last_error == ""


def test_ctrl_c_closes_the_window_from_the_event_loop(window, qtbot):
    """Python runs a signal's handler between any two lines: a close run right there, in the
    middle of a callback, left the callback submitting work to the stopped task runner (a
    traceback, and a process that never ended)."""
    import signal
    from app.main import install_interrupt
    window.show()
    before = signal.getsignal(signal.SIGINT)
    try:
        install_interrupt(window)
        during = []

        def callback() -> None:  # as the map's codes arriving when Ctrl+C comes
            signal.raise_signal(signal.SIGINT)  # the handler runs here, between two lines
            during.append((window.session.closing, window.session.runner.closed))
        callback()
        assert during == [(False, False)]  # the callback ran to its end with the app whole
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=5000)  # then the window closed
        assert window.session.closing and window.session.runner.closed
    finally:
        signal.signal(signal.SIGINT, before)
