"""Python's cyclic garbage collection on the GUI thread only.

The collector runs in whichever thread happens to allocate past its threshold.  When that is the
training thread and the garbage holds Qt widgets (a closed dialog, a window caught in a reference
cycle), their C++ destructors run there, against Qt's rule that widgets live and die on the GUI
thread; seen as a deadlock: the training thread's collection waiting for the GIL inside a QMenu's
destructor while the GUI thread, deleting another object, waited for a Qt lock it held.  So the
automatic collector is switched off and a timer on the GUI thread collects instead, generation
by generation as the automatic one would (pyqtgraph's ``GarbageCollector`` does the same).
Reference counting, which frees everything not in a cycle, is unaffected.

A full collection walks every object the collector tracks, and once torch, numpy, Qt and
pyqtgraph are imported that is about 215,000 of them: 110-150 ms on this project's 2-core
machine, a visible hitch on the GUI thread (the longest GUI stall while training went from
22-30 to 62-86 ms when a changed import order let one fall inside the measurement).  What exists
when the first collection is due (modules, classes, the window) lives as long as the process, so
it is moved out of the collector's sight then (``gc.freeze``); full collections walk only what
came later.
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
        self.frozen = False
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.collect)
        gc.disable()
        self.timer.start(INTERVAL_MS)

    def collect(self) -> None:
        if not self.frozen:  # the first tick: the app is up; young garbage goes first
            gc.collect(1)
            gc.freeze()
            self.frozen = True
        counts = gc.get_count()
        for generation in (2, 1, 0):  # the oldest generation due, with the younger ones
            if all(counts[g] > self.threshold[g] for g in range(generation + 1)):
                gc.collect(generation)
                return


def install(app: QCoreApplication) -> GuiThreadCollector:
    """Collect garbage on ``app``'s thread from now on (once per application)."""
    existing = app.findChild(GuiThreadCollector)
    return existing if existing is not None else GuiThreadCollector(app)
