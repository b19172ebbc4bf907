"""Start-up measurement for the benchmark suite: with ``CAE_EXPLORER_STARTUP_PROBE=FILE`` set,
the app writes how long it took to paint an interactive map (and its peak memory) to FILE, then
quits.  With ``CAE_EXPLORER_PROBE_WAIT_DATA=1`` it also waits until the dataset is loaded."""
from __future__ import annotations

import json
import os
import resource
import sys
import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

PROBE_ENV = "CAE_EXPLORER_STARTUP_PROBE"
WAIT_DATA_ENV = "CAE_EXPLORER_PROBE_WAIT_DATA"


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB.  On Linux it is VmHWM, the peak of this
    program's own memory: ru_maxrss survives exec, so a process started by a large one (the
    benchmark suite, 920 MB after training) would report its parent's peak.  Elsewhere
    ru_maxrss (KiB on Linux, bytes on macOS)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def install(window, started: float) -> None:
    """If the probe is requested, poll until the map is interactive, then report and quit."""
    path = os.environ.get(PROBE_ENV)
    if not path:
        return
    wait_data = os.environ.get(WAIT_DATA_ENV) == "1"
    timer = QTimer(window)

    def check() -> None:
        s = window.session
        ready = len(window.map.codes) > 0 and s.models.model is not None
        if window.stack.currentWidget() is window.welcome and not s.data.busy:
            ready = True  # nothing to plot (no model, no data): the welcome page is the interface
        elif wait_data:  # the data loaded and plotted, or the search for it over without data
            ready = ready and not s.data.busy and (s.dataset is None or s.points.images is not None)
        if not ready:
            return
        timer.stop()
        window.map.viewport().repaint()  # the first paint of the plotted map, synchronously
        report = {"first_paint_s": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(),
                  "points": int(len(window.map.codes)), "data_loaded": s.dataset is not None}
        with open(path, "w") as f:
            json.dump(report, f)
        window.close()
        QApplication.quit()

    timer.timeout.connect(check)
    timer.start(5)
