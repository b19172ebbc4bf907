"""Start-up on a bad platform or with bad arguments: one clear line and exit status 1 (never Qt's
abort, exit 134), or a message and the bundled model for a model file that is not there."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from app import platform_check

ROOT = Path(__file__).resolve().parents[1]


def _env(tmp_path, **extra):
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT), **extra}
    env.pop("CAE_EXPLORER_DATA", None)
    return env


def _run_main(tmp_path, env, *args, timeout=60):
    return subprocess.run([sys.executable, str(ROOT / "main.py"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _one_line_exit_1(proc):
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cae-explorer: "), proc.stderr[-2000:]
    return lines[0]


def test_missing_xcb_library_names_the_packages_instead_of_aborting(tmp_path):
    # The loader finds this empty file first (LD_LIBRARY_PATH) and cannot load it: to the app
    # and to Qt's xcb plugin alike, libxcb-cursor is missing, as on a minimal Debian.
    fake = tmp_path / "lib"
    fake.mkdir()
    (fake / "libxcb-cursor.so.0").write_bytes(b"")
    env = _env(tmp_path, QT_QPA_PLATFORM="xcb", DISPLAY=":987", LD_LIBRARY_PATH=str(fake))
    line = _one_line_exit_1(_run_main(tmp_path, env))
    assert "libxcb-cursor.so.0" in line and "libxcb-icccm" not in line
    assert "sudo apt install libxcb-cursor0" in line and "sudo dnf install xcb-util-cursor" in line


def test_unreachable_x_display_is_one_line(tmp_path):
    env = _env(tmp_path, QT_QPA_PLATFORM="xcb", DISPLAY=":987")
    line = _one_line_exit_1(_run_main(tmp_path, env))
    assert "cannot connect to the X display ':987'" in line
    env.pop("DISPLAY")
    assert "DISPLAY is not set" in _one_line_exit_1(_run_main(tmp_path, env))


@pytest.mark.skipif(shutil.which("Xvfb") is None, reason="needs Xvfb")
def test_a_real_x_server_passes_the_checks_and_shows_the_map(tmp_path):
    read_end, write_end = os.pipe()
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", str(write_end), "-nolisten", "tcp",
                             "-screen", "0", "1280x800x24"], pass_fds=(write_end,),
                            stderr=subprocess.DEVNULL)
    os.close(write_end)
    try:
        with os.fdopen(read_end) as f:
            display = f":{f.readline().strip()}"
        probe = tmp_path / "probe.json"
        env = _env(tmp_path, QT_QPA_PLATFORM="xcb", DISPLAY=display,
                   CAE_EXPLORER_STARTUP_PROBE=str(probe))
        proc = _run_main(tmp_path, env, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert json.loads(probe.read_text())["points"] > 0
    finally:
        xvfb.send_signal(signal.SIGTERM)
        xvfb.wait(timeout=10)


def test_missing_model_says_so_and_opens_the_bundled_model(tmp_path):
    probe = tmp_path / "probe.json"
    env = _env(tmp_path, QT_QPA_PLATFORM="offscreen", CAE_EXPLORER_STARTUP_PROBE=str(probe))
    proc = _run_main(tmp_path, env, "--model", "missing.safetensors", timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cae-explorer: model file not found: missing.safetensors; opening" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(probe.read_text())["points"] == 10000  # the bundled model's test codes


def test_missing_model_shows_a_non_blocking_dialog(qtbot, tmp_path, monkeypatch):
    from PySide6.QtCore import QEvent, QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from app.main import main

    shown = {}

    def look() -> None:  # while the app runs: the dialogs on screen
        for w in QApplication.topLevelWidgets():
            if isinstance(w, QMessageBox) and w.isVisible():
                shown[w.windowTitle()] = (w.text(), w.informativeText(), w.isModal())

    poll = QTimer()
    poll.timeout.connect(look)
    poll.start(5)
    monkeypatch.setenv("CAE_EXPLORER_STARTUP_PROBE", str(tmp_path / "probe.json"))
    # Deleting the window below must not quit the test's application: a quit outside its event
    # loop makes every later wait in this process return at once (seen: qtbot.wait(250) took 0 s).
    app = QApplication.instance()
    quit_on_last = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    old_handler = signal.getsignal(signal.SIGINT)
    try:  # the probe quits the event loop once the map is up: the dialog did not block it
        assert main(["--model", str(tmp_path / "gone.safetensors")]) == 0
    finally:
        signal.signal(signal.SIGINT, old_handler)
        poll.stop()
    text, informative, modal = shown["Model not found"]
    assert text == f"Model file not found: {tmp_path / 'gone.safetensors'}."
    assert "bundled" in informative and modal  # window-modal, opened with open(): no exec()
    assert json.loads((tmp_path / "probe.json").read_text())["points"] > 0
    for w in QApplication.topLevelWidgets():
        if isinstance(w, QMessageBox):
            w.done(0)
            w.parent().deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    app.setQuitOnLastWindowClosed(quit_on_last)


def test_a_foreign_cae_package_on_the_path_is_named(tmp_path):
    foreign = tmp_path / "elsewhere" / "cae"
    foreign.mkdir(parents=True)
    (foreign / "__init__.py").write_text("")
    env = _env(tmp_path, QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join([str(foreign.parent), str(ROOT)]))
    # As the installed cae-explorer command runs: the path holds no script folder of ours.
    proc = subprocess.run([sys.executable, "-c", "import sys; from app.main import main; "
                           "sys.exit(main([]))"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    line = _one_line_exit_1(proc)
    assert f"the 'cae' package found first on the module path is {foreign}" in line


@pytest.mark.parametrize("environ, system, expected", [
    ({"QT_QPA_PLATFORM": "offscreen"}, "linux", "offscreen"),
    ({"QT_QPA_PLATFORM": "xcb:nograb"}, "linux", "xcb"),
    ({"QT_QPA_PLATFORM": "wayland;xcb"}, "linux", "wayland"),
    ({"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, "linux", "wayland"),
    ({"XDG_SESSION_TYPE": "x11", "DISPLAY": ":0"}, "linux", "xcb"),
    ({}, "linux", "xcb"),
    ({}, "darwin", None),
    ({}, "win32", None),
])
def test_which_platform_qt_will_use(environ, system, expected):
    assert platform_check.qt_platform(environ, system) == expected


def test_only_xcb_is_checked(monkeypatch):
    monkeypatch.setattr(platform_check, "missing_libraries", lambda names: list(names)[:1])
    assert platform_check.window_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    assert "libxcb1" in platform_check.window_problem({"QT_QPA_PLATFORM": "xcb"})


def _dist(folder: Path, name: str, top_level: str | None = None, record: str | None = None):
    meta = folder / name
    meta.mkdir(parents=True)
    if top_level is not None:
        (meta / "top_level.txt").write_text(top_level)
    if record is not None:
        (meta / "RECORD").write_text(record)


def test_another_distribution_with_a_top_level_app_is_reported(tmp_path):
    site = tmp_path / "site"
    _dist(site, "cae_explorer-0.1.0.dist-info", top_level="app\ncae\n")
    _dist(site, "numpy-2.0.dist-info", top_level="numpy\n")
    _dist(site, "apple-1.0.dist-info", top_level="apple\n")
    _dist(site, "appkit-1.0.dist-info", record="appkit/__init__.py,,\n")
    (site / "app").mkdir()
    assert platform_check.app_clash([str(site), str(tmp_path / "missing")]) is None
    _dist(site, "Flask_Thing-2.1.dist-info", top_level="app\nflask_thing\n")
    _dist(site, "webby-3.0.dist-info", record="app/__init__.py,sha256=x,1\n")
    (site / "app").rmdir()  # their metadata, but no 'app' left in this folder: no clash
    assert platform_check.app_clash([str(site)]) is None
    (site / "app.py").write_text("")
    warning = platform_check.app_clash([str(site)])
    assert "flask-thing (in" in warning and "webby (in" in warning
    assert "cae-explorer" not in warning.split("also installs")[0]
