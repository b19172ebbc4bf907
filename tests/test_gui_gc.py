"""Garbage collection happens on the GUI thread only (app/gui_gc.py)."""
import gc
import threading

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication

from app import gui_gc


class _Cycle:
    def __init__(self, seen: list) -> None:
        self.me, self.seen = self, seen

    def __del__(self) -> None:
        self.seen.append(threading.current_thread() is threading.main_thread())


def test_cycles_made_on_a_worker_are_collected_on_the_gui_thread(qtbot):
    collector = gui_gc.install(QApplication.instance())
    assert gui_gc.install(QApplication.instance()) is collector  # one per application
    assert not gc.isenabled()
    seen: list[bool] = []
    kept: list = []

    def work() -> None:  # enough allocations to have triggered the automatic collector
        for _ in range(5):
            _Cycle(seen)
        kept.extend([QObject()] for _ in range(20 * gc.get_threshold()[0]))

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert seen == []  # nothing collected there
    qtbot.waitUntil(lambda: len(seen) == 5, timeout=5000)
    assert all(seen)  # every one on the GUI thread


def test_what_exists_when_the_app_is_up_is_left_out_of_full_collections(qtbot):
    """Full collections walk only what came after the first tick (the modules and the window
    live as long as the process); a cycle made later is still collected."""
    collector = gui_gc.install(QApplication.instance())
    qtbot.waitUntil(lambda: collector.frozen, timeout=5000)
    assert gc.get_freeze_count() > 10000  # torch, Qt, numpy...
    seen: list[bool] = []
    _Cycle(seen)
    for _ in range(3):
        gc.collect(2)  # what the timer does when a full collection is due
    assert seen == [True]
