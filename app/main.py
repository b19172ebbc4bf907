"""Start the app: `python main.py` or the `cae-explorer` command.

The platform checks run before Qt or the engine is imported, so a clashing package, a missing
system library or an unreachable X display ends with one line on stderr and exit status 1."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

STARTED = time.perf_counter()  # as early as possible: the start-up probe measures from here

from . import platform_check  # noqa: E402  (standard library only)

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication

    from .main_window import MainWindow

PROG = "cae-explorer"
FALLBACK = "opening the usual model instead (the last one saved, else the bundled one)"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from cae.data import DATASETS

    parser = argparse.ArgumentParser(prog=PROG, description="CAE Latent Explorer")
    parser.add_argument("--model", help="a .safetensors model to open")
    parser.add_argument("--data", metavar="DIR", help="a dataset's folder: the four IDX "
                        "files, or pictures in one subfolder per class")
    parser.add_argument("--dataset", default="mnist", choices=[*DATASETS, "folder", "auto"],
                        help="what --data holds: auto recognises MNIST and Fashion-MNIST by "
                             "their checksums; folder reads any IDX or picture folder (default: mnist, "
                             "or auto with --data)")
    return parser.parse_args(argv)


def model_problem(path: str) -> str | None:
    """Why ``--model path`` cannot be opened before any reading is tried (absent, a folder)."""
    if not Path(path).exists():
        return f"model file not found: {path}"
    if not Path(path).is_file():
        return f"the model is not a file: {path}"
    return None


def error_hook(window) -> Callable:
    """A ``sys.excepthook`` that keeps the traceback on stderr and tells the user in the window:
    an error in a menu's action had only reached the terminal (the action did nothing, with no
    word why).  The message goes through the session's error signal, so a worker thread's
    error reaches the window on the GUI thread."""
    def hook(kind: type[BaseException], value: BaseException, tb) -> None:
        traceback.print_exception(kind, value, tb)
        if issubclass(kind, KeyboardInterrupt):
            return
        window.session.error.emit(
            "Unexpected error", f"{kind.__name__}: {value}\n\nWhat was under way stopped; the "
            "rest of the app goes on. The full report is on the terminal (stderr).")
    return hook


def main(argv: list[str] | None = None) -> int:
    """Check the platform, create the window, show it, then load the model and look for data."""
    problem = platform_check.package_problem()
    if problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 1
    args = parse_args(sys.argv[1:] if argv is None else argv)
    problem = platform_check.window_problem()
    if problem:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 1
    clash = platform_check.app_clash()
    if clash:
        print(f"{PROG}: {clash}", file=sys.stderr)

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication, QMessageBox

    from . import probe
    from .main_window import MainWindow
    from .welcome import APP_NAME

    model = args.model
    missing_model = model_problem(model) if model else None
    if missing_model:
        print(f"{PROG}: {missing_model}; {FALLBACK}", file=sys.stderr)
        model = None  # the usual start

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(PROG)
    window = MainWindow()
    sys.excepthook = error_hook(window)
    window.show()
    probe.install(window, STARTED)
    dataset = "auto" if args.data and args.dataset == "mnist" else args.dataset
    QTimer.singleShot(0, lambda: window.start(model, args.data, dataset))
    if missing_model:
        box = QMessageBox(QMessageBox.Icon.Warning, "Model not found",
                          f"{missing_model[0].upper()}{missing_model[1:]}.", parent=window)
        box.setInformativeText(f"{FALLBACK[0].upper()}{FALLBACK[1:]}.")
        # Window-modal and non-blocking, after the window is up: the event loop keeps running.
        QTimer.singleShot(0, box.open)
    install_interrupt(window)
    heartbeat = QTimer()
    heartbeat.start(250)  # lets Python see the signal while Qt's loop runs
    heartbeat.timeout.connect(lambda: None)
    return exec_window(app, window)


def exec_window(app: QApplication, window: MainWindow) -> int:
    """Run the event loop until the window closes; then end the process at once when a thread
    outlived the close's wait (a training step under way, which only ends with its batch):
    Qt aborts a process whose QThread is destroyed while it runs, which the normal exit does."""
    code = app.exec()
    if not window.left_running:
        return code
    print(f"{PROG}: {window.left_running} was still under way; it was abandoned", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def install_interrupt(window: MainWindow) -> None:
    """Ctrl+C in the terminal closes the window the normal way (threads stopped and awaited),
    from the event loop: Python runs a signal's handler between any two lines, and a close in
    the middle of a callback left it submitting work to the stopped task runner (and hung)."""
    from PySide6.QtCore import QTimer
    signal.signal(signal.SIGINT, lambda *_: QTimer.singleShot(0, window.quit_without_asking))
