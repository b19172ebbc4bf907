"""The engine must stay usable headless: importing all of cae loads no Qt module."""
import json
import subprocess
import sys


def test_cae_never_imports_qt():
    code = ("import json, sys, cae, cae.cli, cae.data, cae.train, cae.metrics, cae.checkpoint\n"
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('PySide6', 'PyQt5', 'PyQt6', 'shiboken6', 'pyqtgraph', 'superqt'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=120)
    assert json.loads(out.stdout) == []
