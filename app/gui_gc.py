"""Python's cyclic garbage collection on the GUI thread only.

The collector runs in whichever thread happens to allocate past its threshold.  When that is the
training thread and the garbage holds Qt widgets (a closed dialog, a window caught in a reference
cycle), their C++ destructors run there, against Qt's rule that widgets live and die on the GUI
thread; seen as a deadlock: the training thread's collection waiting for the GIL inside a QMenu's
destructor while the GUI thread, deleting another object, waited for a Qt lock it held.  So the
automatic collector is switched off and a timer on the GUI thread collects instead, generation
by generation as the automatic one would (pyqtgraph's ``GarbageCollector`` does the same).
Reference counting, which frees everything not in a cycle, is unaffected.
"""
from __future__ import annotations

import gc

from PySide6.QtCore import QCoreApplication, QObject, QTimer

INTERVAL_MS = 500


class GuiThreadCollector(QObject):
    """Collects on a GUI-thread timer with the thresholds the automatic collector had."""

    def __init__(self, app: QCoreApplication) -> None:
        super().__init__(app)  # lives as long as the application
        self.threshold = gc.get_threshold()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.collect)
        gc.disable()
        self.timer.start(INTERVAL_MS)

    def collect(self) -> None:
        counts = gc.get_count()
        for generation in (2, 1, 0):  # the oldest generation due, with the younger ones
            if all(counts[g] > self.threshold[g] for g in range(generation + 1)):
                gc.collect(generation)
                return


def install(app: QCoreApplication) -> GuiThreadCollector:
    """Collect garbage on ``app``'s thread from now on (once per application)."""
    existing = app.findChild(GuiThreadCollector)
    return existing if existing is not None else GuiThreadCollector(app)
