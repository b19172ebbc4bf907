"""Start the app: `python main.py` or the `cae-explorer` command."""
from __future__ import annotations

import argparse
import signal
import sys
import time

STARTED = time.perf_counter()  # as early as possible: the start-up probe measures from here

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from cae.data import DATASETS

from . import probe
from .main_window import APP_NAME, MainWindow


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cae-explorer", description=APP_NAME)
    parser.add_argument("--model", help="a .safetensors model to open")
    parser.add_argument("--data", metavar="DIR", help="folder with the four IDX files")
    parser.add_argument("--dataset", default="mnist", choices=[*DATASETS, "folder", "auto"])
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Create the window, show it, then load the model and look for data."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName(APP_NAME)
    app.setOrganizationName("cae-explorer")
    window = MainWindow()
    window.show()
    probe.install(window, STARTED)
    dataset = "auto" if args.data and args.dataset == "mnist" else args.dataset
    QTimer.singleShot(0, lambda: window.start(args.model, args.data, dataset))
    # Ctrl+C in the terminal closes the window the normal way (threads stopped and awaited).
    signal.signal(signal.SIGINT, lambda *_: window.close())
    heartbeat = QTimer()
    heartbeat.start(250)  # lets Python see the signal while Qt's loop runs
    heartbeat.timeout.connect(lambda: None)
    return app.exec()
