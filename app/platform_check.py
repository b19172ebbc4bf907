"""Checks made before Qt starts.  Qt aborts the process (exit 134, a core dump) when its X11
platform plugin cannot load a system library or reach the X display, and a package named like
ours earlier on the module path breaks an import deep inside the window; each of these gives one
clear line instead.  Only the standard library is imported here, so the checks run first."""
from __future__ import annotations

import ctypes
import os
import re
import sys
from collections.abc import Iterable, Mapping
from importlib.util import find_spec
from pathlib import Path

DISTRIBUTION = "cae-explorer"
# The system libraries that Qt's xcb plugin and Qt GUI beneath it load (`ldd` on
# PySide6/Qt/plugins/platforms/libqxcb.so, less what PySide6 ships and what every Linux has),
# with the packages that install them: (Debian/Ubuntu, Fedora).
XCB_LIBRARIES: dict[str, tuple[str, str]] = {
    "libxcb.so.1": ("libxcb1", "libxcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libX11.so.6": ("libx11-6", "libX11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libGL.so.1": ("libgl1", "libglvnd-glx"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs"),
}


def qt_platform(environ: Mapping[str, str] = os.environ, system: str = sys.platform) -> str | None:
    """The platform plugin Qt tries first on Linux (None elsewhere: macOS and Windows have
    theirs built in)."""
    if not system.startswith("linux"):
        return None
    requested = environ.get("QT_QPA_PLATFORM", "").strip()
    if requested:  # "name", "name:options" or a fallback list "a;b"
        return requested.split(";")[0].split(":")[0].strip().lower()
    if environ.get("XDG_SESSION_TYPE") == "wayland" and environ.get("WAYLAND_DISPLAY"):
        return "wayland"
    return "xcb"


def missing_libraries(sonames: Iterable[str]) -> list[str]:
    """The libraries the dynamic loader cannot load, searched as Qt's plugin loader searches."""
    missing = []
    for soname in sonames:
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append(soname)
    return missing


def display_error(display: str) -> bool:
    """Whether libxcb fails to connect to X display ``display`` (as Qt would, before it aborts)."""
    xcb = ctypes.CDLL("libxcb.so.1")
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    connection = xcb.xcb_connect(display.encode(), None)  # never NULL: an error object at worst
    failed = xcb.xcb_connection_has_error(connection) != 0
    xcb.xcb_disconnect(connection)
    return failed


def xcb_problem(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why Qt's xcb plugin would abort (missing libraries, no X display), or None."""
    missing = missing_libraries(XCB_LIBRARIES)
    if missing:
        debian = " ".join(dict.fromkeys(XCB_LIBRARIES[name][0] for name in missing))
        fedora = " ".join(dict.fromkeys(XCB_LIBRARIES[name][1] for name in missing))
        return (f"the window cannot open: Qt's X11 (xcb) platform plugin needs system libraries "
                f"that are missing ({', '.join(missing)}); install them with "
                f"'sudo apt install {debian}' (Debian/Ubuntu) or 'sudo dnf install {fedora}' "
                f"(Fedora)")
    display = environ.get("DISPLAY", "")
    if not display:
        return ("the window cannot open: no X display (DISPLAY is not set); start the app from a "
                "desktop session")
    if display_error(display):
        return (f"the window cannot open: cannot connect to the X display {display!r} "
                f"(DISPLAY); is the X server running and may this user use it?")
    return None


def package_problem() -> str | None:
    """Why the ``cae`` package found first on the module path is not the one beside this ``app``
    (another project's ``cae`` shadows it), or None.  This module runs only from this project's
    ``app``, so the pair is this project's when ``cae`` sits beside it."""
    expected = Path(__file__).resolve().parents[1] / "cae"
    spec = find_spec("cae")
    found = Path(spec.origin).resolve().parent if spec and spec.origin else None
    if found == expected:
        return None
    if found is None:
        return f"the 'cae' package is missing (expected in {expected}); reinstall the app"
    return (f"the 'cae' package found first on the module path is {found}, not CAE Latent "
            f"Explorer's ({expected}); remove the other one from the path (PYTHONPATH) or install "
            f"the app into its own virtual environment")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _provides_app(metadata_dir: Path) -> bool:
    """Whether a distribution's metadata lists a top-level ``app`` package or module."""
    top_level = metadata_dir / "top_level.txt"
    record = metadata_dir / "RECORD"
    try:
        if top_level.is_file():
            return "app" in top_level.read_text(errors="replace").split()
        lines = record.read_text(errors="replace").splitlines() if record.is_file() else []
    except OSError:
        return False
    return any(line.startswith(("app/", "app.py,")) for line in lines)


def app_clash(paths: Iterable[str] | None = None) -> str | None:
    """A warning naming the other installed distributions with a top-level ``app`` (one hides or
    overwrites the other's files), or None.  Reads only the small metadata files of the folders
    on the path that hold an ``app`` (~10 ms)."""
    others = []
    for folder in dict.fromkeys(sys.path if paths is None else paths):
        where = Path(folder or ".")
        if not ((where / "app").is_dir() or (where / "app.py").is_file()):
            continue  # no 'app' here: nothing to hide or be hidden
        try:
            entries = list(os.scandir(where))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith((".dist-info", ".egg-info")):
                continue
            name = _normalise(entry.name.rsplit(".", 1)[0].split("-")[0])
            if name != DISTRIBUTION and _provides_app(Path(entry.path)):
                others.append(f"{name} (in {folder})")
    if not others:
        return None
    return (f"warning: {', '.join(others)} also installs a top-level package named 'app', as CAE "
            f"Latent Explorer does; one hides or overwrites the other: give each its own "
            f"virtual environment")


def window_problem(environ: Mapping[str, str] = os.environ) -> str | None:
    """Why Qt would abort instead of opening the window here, as one line, or None."""
    return xcb_problem(environ) if qt_platform(environ) == "xcb" else None
