"""File dialogs that open in the folder the user last chose a file in (their home folder the
first time), not in whatever folder the app happened to be started from.  The folder of the
last dataset is kept apart: a save or an export never starts among the IDX files.  A save dialog
offering several file types offers the one chosen in it last.  All are kept in the window's
settings, so they survive a restart."""
from __future__ import annotations

import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from cae.bundled import bundled_model_path
from cae.data import DATASETS

KEY = "lastFolder"
DATA_KEY = "lastDataFolder"
LOADED_DATA_KEY = "dataFolder"  # where the session found the data it loaded last
TYPE_KEY = "lastFileType/"  # + a save dialog's title: the suffix of the file written last
_settings: QSettings | None = None  # the main window's (tests give each window its own)


def remember_folders_in(settings: QSettings) -> None:
    """Where the last folder is kept; the main window calls this when it is built."""
    global _settings
    _settings = settings


def start_folder(*keys: str) -> str:
    """The last folder a file (or with ``DATA_KEY``, a dataset) was chosen in, if it still
    exists, else the first of the other settings ``keys`` that names one, else the home folder."""
    for key in keys or (KEY,):
        value = _settings.value(key, "") if _settings is not None else ""
        if value and Path(str(value)).is_dir():
            return str(value)
    return str(Path.home())


def _remember(path: str, key: str = KEY) -> str:
    if path and _settings is not None:
        _settings.setValue(key, str(Path(path) if key == DATA_KEY else Path(path).parent))
    return path


def open_file(parent: QWidget | None, title: str, filters: str) -> str:
    """A file to read, or '' if the user cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, title, start_folder(), filters)
    return _remember(path)


def bundled_folders() -> set[Path]:
    """The folders of the bundled models: package data, never a place for the user's files."""
    return {path.parent.resolve() for path in map(bundled_model_path, DATASETS) if path}


def save_folder() -> str:
    """:func:`start_folder`, unless that is where the bundled models are (a user who opened one
    would otherwise be offered to write next to it, or over it): then the home folder."""
    folder = start_folder()
    return str(Path.home()) if Path(folder).resolve() in bundled_folders() else folder


def save_file(parent: QWidget | None, title: str, name: str, filters: str) -> str:
    """Where to write; ``name`` is the suggested file name (a full path is kept as it is).
    Where ``filters`` offer several file types, the one chosen last time for this ``title``
    is offered first (a user who exports PNGs is not put back on SVG each time).  A name typed
    without a suffix gets the chosen type's (a PNG had been written as "map", no suffix)."""
    types = {f"*{suffix}": f for f in filters.split(";;") for suffix in _suffixes(f)}
    last = _settings.value(TYPE_KEY + title, "") if _settings is not None and len(types) > 1 else ""
    selected = types.get(f"*{last}", "")
    if selected:
        name = str(Path(name).with_suffix(str(last)))
    suggested = name if Path(name).is_absolute() else str(Path(save_folder()) / name)
    while True:
        path, chosen = QFileDialog.getSaveFileName(parent, title, suggested, filters, selected)
        given = _suffixes(chosen or filters.split(";;")[0])
        if path and not Path(path).suffix and given:  # "map" with PNG chosen: map.png, as typed
            path += given[0]
            # The dialog asked about replacing "map", not "map.png".
            if Path(path).exists() and not confirm_replace(parent, path):
                return ""
        if not path:
            return ""
        folder = Path(path).parent
        reason = cannot_write_in(folder)
        if reason is None:
            break
        # Said at once, before an export asks its options and does its work (it then failed),
        # and the dialog opens again outside that folder.
        QMessageBox.warning(parent, "Cannot write there",
                            f"Nothing can be written in {folder}: {reason}.\n\n"
                            "Choose another folder.")
        start = save_folder()
        start = str(Path.home()) if Path(start) == folder else start
        suggested, selected = str(Path(start) / Path(path).name), chosen or selected
    suffix = Path(path).suffix.lower()
    if f"*{suffix}" in types and _settings is not None:
        _settings.setValue(TYPE_KEY + title, suffix)
    return _remember(path)


def cannot_write_in(folder: Path) -> str | None:
    """Why nothing can be written in ``folder``, in the OS's words, or None.  Tried rather than
    read from its permissions: root ignores those, and a read-only disk refuses everyone."""
    try:
        with tempfile.TemporaryFile(dir=folder):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def confirm_replace(parent: QWidget | None, path: str) -> bool:
    """Whether to replace ``path``, asked as the file dialog asks it."""
    answer = QMessageBox.question(parent, "Replace the file?",
                                  f"{Path(path).name} already exists in {Path(path).parent}. "
                                  "Replace it?", QMessageBox.StandardButton.Yes
                                  | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def _suffixes(name_filter: str) -> list[str]:
    """".svg" and ".png" of "Pictures (*.svg *.png)"."""
    inside = name_filter[name_filter.find("(") + 1:name_filter.rfind(")")]
    return [p[1:].lower() for p in inside.split() if p.startswith("*.")]


def data_folder(parent: QWidget | None, title: str) -> str:
    """A dataset's folder, or '' if the user cancelled; it starts where the last one was chosen,
    else in the folder of the data loaded last (``--data DIR``: not the home folder)."""
    start = start_folder(DATA_KEY, LOADED_DATA_KEY)
    return _remember(QFileDialog.getExistingDirectory(parent, title, start), DATA_KEY)
