"""The layering contract: the engine (`cae`) never imports Qt, pyqtgraph or the GUI (`app`), so it
stays usable and testable headless.  Checked twice: what importing every engine module loads, and
what every engine source file says it imports."""
import ast
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import cae

FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "superqt", "app")
ENGINE = Path(cae.__file__).parent


def test_importing_every_engine_module_loads_no_gui():
    modules = [f"cae.{m.name}" for m in pkgutil.iter_modules([str(ENGINE)]) if m.name != "__main__"]
    code = (f"import importlib, json, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         timeout=120)
    assert json.loads(out.stdout) == []
    assert len(modules) >= 10


def test_no_engine_source_names_the_gui():
    offenders = []
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0
                     else [])
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
