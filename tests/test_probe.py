"""The start-up probe's peak memory is the app's own, not that of the process that started it."""
import os
import subprocess
import sys
import textwrap

import pytest

CHILD = "from app.probe import peak_rss_mb; print(peak_rss_mb())"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss survives exec on Linux")
def test_a_child_of_a_large_process_reports_its_own_peak():
    parent = textwrap.dedent(f"""
        import subprocess, sys
        import numpy as np
        big = np.ones(400 * 2**20 // 8)  # 400 MB, touched
        print(subprocess.run([sys.executable, "-c", {CHILD!r}], capture_output=True,
                             text=True, check=True).stdout)
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True, check=True,
                         env=env).stdout
    assert 10 < float(out) < 300, out  # Python with Qt imported, far below the parent's 400 MB
