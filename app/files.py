"""Files: open, save and recent models, exports, data folders, and never losing an unsaved model
(Save / Discard / Cancel before it is replaced or the window closes; the autosave of a run that
was killed is offered back at the next start)."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject
from PySide6.QtGui import QAction, QIcon
from PySide6.QtWidgets import QMenu, QMessageBox, QWidget

from cae.codes import CODE_FORMATS, split_rows, write_codes
from cae.data import DATASETS, dataset_title
from cae.errors import CAEError
from cae.model_file import epochs_trained

from . import autosave, file_dialogs
from .image_view import save_png
from .latent_map import LatentMap
from .points import encode_exact_parts
from .session import Session

MAX_RECENT = 8
Button = QMessageBox.StandardButton


class FilesController(QObject):
    def __init__(self, session: Session, parent: QWidget, map_: LatentMap,
                 recent_menu: QMenu) -> None:
        super().__init__(session)
        self.session, self.parent, self.map, self.recent_menu = session, parent, map_, recent_menu
        self.rebuild_recent_menu()

    # --------------------------------------------------------------------------- questions
    def ask(self, title: str, text: str, buttons: Button, default: Button,
            labels: dict[Button, str] | None = None) -> Button:
        """A modal question; ``labels`` renames buttons so each says what it does (tests replace
        this method)."""
        box = QMessageBox(QMessageBox.Icon.Question, title, text, buttons, self.parent)
        box.setDefaultButton(default)
        for button, label in (labels or {}).items():
            box.button(button).setText(label)
            box.button(button).setIcon(QIcon())  # (a style's Cancel ✗ on "Continue training")
        return Button(box.exec())

    def confirm_replace(self, what: str) -> bool:
        """Before ``what`` replaces an unsaved model: Save, Discard or Cancel.  True: go on."""
        s = self.session
        if not s.dirty or s.models.model is None:
            return True
        answer = self.ask("Unsaved model", f"The current model has not been saved. Save it before "
                          f"you {what}?", Button.Save | Button.Discard | Button.Cancel, Button.Save)
        if answer == Button.Save:
            return self.save_model()
        if answer == Button.Discard:
            s.discard_unsaved()
            return True
        return False

    def confirm_quit(self) -> bool:
        """Before the window closes: a running training run, then an unsaved model."""
        training = self.session.training
        if training.running:
            was_paused = training.paused
            training.pause()  # what the question says stays true while it is open
            done = self.session.run.epochs_done
            kept = (f"its last finished epoch ({done}) is kept in the autosave and offered at the "
                    "next start." if done else "it has not finished an epoch yet, so nothing of "
                    "it is kept.")
            answer = self.ask("Training is running", f"Quit now? The run stops; {kept}",
                              Button.Yes | Button.Cancel, Button.Cancel)
            if answer != Button.Yes and not was_paused:
                training.resume()
            return answer == Button.Yes
        return self.confirm_replace("quit")

    def ask_keep(self, text: str) -> bool:
        """After Stop: keep the partly trained model (True) or go back to the previous one."""
        answer = self.ask("Training stopped", text, Button.Save | Button.Discard, Button.Save,
                          {Button.Save: "Keep it", Button.Discard: "Discard it"})
        return answer == Button.Save

    def ask_stop(self, text: str) -> str:
        """Stop, asked while the run waits: "keep" what it learnt, "discard" it, or "continue"
        (also Escape: a Stop clicked by mistake in front of a class costs nothing)."""
        answer = self.ask("Stop training?", text, Button.Save | Button.Discard | Button.Cancel,
                          Button.Save, {Button.Save: "Keep it", Button.Discard: "Discard it",
                                        Button.Cancel: "Continue training"})
        return {Button.Save: "keep", Button.Discard: "discard"}.get(answer, "continue")

    def offer_autosave(self) -> bool:
        """At start: a run that was never saved or discarded left its last epoch; reopen it?"""
        found = autosave.pending()
        if found is None:
            return False
        answer = self.ask("Recover the last training run?",
                          "The app was closed before the model of the last training run was saved. "
                          "Open what was autosaved of it (its last epoch, or the model kept at "
                          "Stop) now? You can then save it.",
                          Button.Open | Button.Discard | Button.Ignore, Button.Open)
        if answer == Button.Discard:
            autosave.discard(found)
        if answer != Button.Open:
            return False
        if not self.session.load_model(found):
            return False
        autosave.adopt(found)  # this window's now: another's Save or Discard leaves it alone
        self.session.models.path = None  # not a document of the user's yet: save asks where
        self.session.set_dirty(True)
        return True

    # --------------------------------------------------------------------------- models
    def open_model(self, path: str | None = None) -> bool:
        if path is None:
            path = file_dialogs.open_file(self.parent, "Open model",
                                          "Models (*.safetensors);;All files (*)")
            if not path:
                return False
        if not self.confirm_replace("open another model"):
            return False
        had_ends = self.session.has_endpoints
        if not self.session.load_model(path):
            return False
        self.remember(path)
        self.session.status.emit(f"opened {Path(path).name}" + (
            "; the interpolation's ends A and B were points of the previous model and are cleared"
            if had_ends else ""), 10000)
        return True

    def save_model(self, path: str | None = None) -> bool:
        s = self.session
        if s.models.model is None:
            return False
        if path is None:
            path = file_dialogs.save_file(self.parent, "Save model", self.suggested_name(),
                                          "Models (*.safetensors)")
            if not path:
                return False
        if not path.endswith(".safetensors"):
            path += ".safetensors"
        if not s.save_model(path):
            return False
        self.remember(path)
        return True

    def suggested_name(self) -> str:
        """Save's proposal: the model's own file, but never a bundled model (shared package
        data); otherwise a new name that says what the model is ("mnist-40ep.safetensors")."""
        m = self.session.models
        if m.path is not None and m.path.resolve().parent not in file_dialogs.bundled_folders():
            return str(m.path)
        data = m.metadata.get("dataset") or (self.session.dataset.name if self.session.dataset
                                             else "cae")
        epochs = epochs_trained(m.metadata)  # a continued run's earlier epochs included
        return f"{data}-{epochs}ep.safetensors" if epochs else f"{data}-model.safetensors"

    def remember(self, path: str) -> None:
        settings = self.session.settings
        path = str(Path(path).resolve())
        recent = [p for p in self.recent_models() if p != path]
        settings.setValue("recentModels", [path, *recent][:MAX_RECENT])
        settings.setValue("lastModel", path)
        self.rebuild_recent_menu()

    def recent_models(self) -> list[str]:
        value = self.session.settings.value("recentModels", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def rebuild_recent_menu(self) -> None:
        """The menu of recent models and, after them, the bundled ones (the way back to where
        the app started); greyed out when it has none or while a run trains (no other model
        may be opened then)."""
        self.recent_menu.clear()  # deletes the old actions: they belong to the menu
        bundled = [(name, path.resolve()) for name in DATASETS
                   if (path := file_dialogs.bundled_model_path(name)) is not None]
        ours = {str(path) for _, path in bundled}  # listed below, by name
        recent = [path for path in self.recent_models() if path not in ours]
        entries = [(path, path) for path in recent]
        entries += [(f"Bundled {dataset_title(name)} model ({path.name})", str(path))
                    for name, path in bundled]
        for i, (text, path) in enumerate(entries):
            if i == len(recent) and recent:
                self.recent_menu.addSeparator()
            action = QAction(text, self.recent_menu)
            action.triggered.connect(lambda checked=False, p=path: self.open_model(p))
            self.recent_menu.addAction(action)
        self.recent_menu.setEnabled(bool(entries) and not self.session.training.running)

    # --------------------------------------------------------------------------- data
    def choose_data_folder(self, folder: str | None = None) -> bool:
        """Load the dataset in ``folder`` (asked for when None); whether a load started."""
        if folder is None:
            folder = file_dialogs.data_folder(
                self.parent, "A dataset's folder: four IDX files, or pictures in one subfolder "
                "per class")
            if not folder:
                return False
        self.session.load_data("auto", folder)
        return self.session.data.busy

    # --------------------------------------------------------------------------- exports
    def export_codes(self, path: str | None = None) -> bool:
        points = self.session.points
        if len(points) == 0:
            self.session.error.emit("Nothing to export", "There are no latent codes on the map yet.")
            return False
        if path is None:
            path = file_dialogs.save_file(self.parent, "Export latent codes", "codes.csv",
                                          "CSV (*.csv);;NumPy (*.npy);;NumPy archive (*.npz)")
            if not path:
                return False
        s = self.session
        if Path(path).suffix.lower() not in CODE_FORMATS:  # said now, not after an encode
            s.error.emit("Could not export", f"{path}: unknown format; use one of "
                         f"{', '.join(CODE_FORMATS)}")
            return False
        ds = s.dataset
        if points.source == "all" and ds is not None and s.models.model is not None:
            # The 70,000-digit view is placed with the fast bf16 codes; a file gets the exact
            # ones, as `cae encode` writes them (from the code cache where they are already).
            n_train, n_test = len(ds.train_images), len(ds.test_images)

            def write(codes: np.ndarray) -> None:
                self._write_codes(path, codes, points.labels,
                                  f" ({n_train:,} training {ds.noun}, then {n_test:,} test ones)",
                                  split_rows(n_train, n_test), ds.files)
            s.tasks.submit("export_codes", encode_exact_parts, copy.deepcopy(s.models.model),
                           [ds.train_images, ds.test_images], on_done=write,
                           on_failed=lambda m: s.error.emit("Could not export", m),
                           on_progress=lambda f: s.status.emit(
                               f"encoding the codes to export… {100 * f:.0f} %", 0))
            return True
        where = f" of epoch {s.timeline.epochs[s.epoch_index]}" if s.scrubbing else ""
        # (the map's other points are the first of the test images, whose files they name)
        files = ds.test_files(len(points)) if ds is not None and points.images is not None else ()
        return self._write_codes(path, points.codes, points.labels, where,
                                 files=files if len(files) == len(points) else ())

    def _write_codes(self, path: str, codes: np.ndarray, labels: np.ndarray, what: str,
                     split: np.ndarray | None = None, files: tuple[str, ...] = ()) -> bool:
        try:
            write_codes(path, codes, labels, split, files)
        except CAEError as exc:
            self.session.error.emit("Could not export", str(exc))
            return False
        self.session.status.emit(f"wrote {len(codes):,} codes{what} to {path}", 8000)
        return True

    def export_map_png(self, path: str | None = None) -> bool:
        if path is None:
            path = file_dialogs.save_file(self.parent, "Export map", "latent-map.png", "PNG (*.png)")
            if not path:
                return False
        problem = save_png(self.map.grab(), path)
        if problem:
            self.session.error.emit("Could not export", problem)
            return False
        self.session.status.emit(f"saved {path}", 5000)
        return True
