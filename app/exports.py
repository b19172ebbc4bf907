"""Show and share: the map at print quality (SVG, or PNG at any scale), the training timeline as
an animation (GIF, or MP4 where ffmpeg is installed) and a one-page model report (PDF or PNG).

The pictures are drawn by the engine (``cae/render.py``, ``cae/animate.py``, ``cae/report.py``,
the same code as ``cae map``/``cae animate``/``cae report``) on a worker thread, from copies of
what the session shows; a progress dialog can cancel the longer ones.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (QCheckBox, QDialog, QDialogButtonBox, QFormLayout,
                               QProgressDialog, QWidget)

from cae.model_file import step_points

from . import file_dialogs
from .latent_map import LatentMap
from .map_toolbar import MapToolbar
from .session import Session
from .spin_box import SpinBox


# The engine's drawing modules (and Pillow) load on first use, on the worker: not at start-up.


def _map_task(cancel, report, path: str, points, style, view, size, scale: float, decoder,
              tiles: int) -> Path:
    from cae.render import save_map
    return save_map(path, points.codes, points.labels, points.class_names, size=size, scale=scale,
                    view=view, style=style, decoder=decoder, mosaic_tiles=tiles)


def _animation_task(cancel, report, path: str, timeline, config, names, options, history,
                    steps) -> int:
    from cae.animate import export_animation
    return export_animation(path, timeline, config, names, options, history, progress=report,
                            cancel=lambda: cancel.cancelled, steps=steps)


def _report_task(cancel, report, path: str, model, metadata: dict, extras: dict, name: str,
                 digest: str | None, dataset, metrics: dict | None) -> Path:
    from cae.report import render_report, save_report
    page = render_report(model, metadata, extras, model_name=name, digest=digest, dataset=dataset,
                         metrics=metrics, progress=report, cancel=lambda: cancel.cancelled)
    return save_report(page, path)


def _leave_out(hidden: frozenset[int], names) -> str:
    """The animation's offer to leave out the classes hidden on the map, naming a few."""
    if len(hidden) > 3:
        return f"Leave out the {len(hidden)} classes hidden on the map"
    shown = ", ".join(str(names[c]) if c < len(names) else str(c) for c in sorted(hidden))
    return f"Leave out {shown} (hidden on the map)"


SLIDE_ASPECT = 16 / 9


def widened(view: tuple[float, float, float, float], width: float, height: float,
            aspect: float) -> tuple[tuple[float, float, float, float], float, float]:
    """The view, and its plot's size, widened (or heightened) about its centre to ``aspect``
    (width over height), each latent unit as many pixels as before: everything shown stays
    in, and nothing is stretched."""
    x0, x1, y0, y1 = view
    if width / height < aspect:  # too narrow: more z1
        grow = aspect * height / width
        cx, half = (x0 + x1) / 2, (x1 - x0) / 2 * grow
        return (cx - half, cx + half, y0, y1), aspect * height, height
    grow = width / aspect / height
    cy, half = (y0 + y1) / 2, (y1 - y0) / 2 * grow
    return (x0, x1, cy - half, cy + half), width, width / aspect


class OptionsDialog(QDialog):
    """A small form of spin boxes and check boxes."""

    def __init__(self, title: str, parent: QWidget, spins: dict, checks: dict) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        form = QFormLayout(self)
        self.spins, self.checks = {}, {}
        for key, (label, lo, hi, value) in spins.items():
            box = SpinBox()
            box.setRange(lo, hi)
            box.setValue(value)
            form.addRow(label, box)
            self.spins[key] = box
        for key, (label, value) in checks.items():
            box = QCheckBox(label)
            box.setChecked(value)
            form.addRow("", box)
            self.checks[key] = box
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def values(self) -> dict:
        return {**{k: b.value() for k, b in self.spins.items()},
                **{k: b.isChecked() for k, b in self.checks.items()}}


class ExportsController(QObject):
    def __init__(self, session: Session, parent: QWidget, map_: LatentMap,
                 toolbar: MapToolbar) -> None:
        super().__init__(session)
        self.session, self.parent, self.map = session, parent, map_
        # The toolbar's mosaic switch and tiles across: an export offers and draws them so.
        self.mosaic_on, self.mosaic_size = toolbar.mosaic_action, toolbar.mosaic_size
        self.progress: QProgressDialog | None = None

    # --------------------------------------------------------------------------- asking
    def _ask_path(self, title: str, default: str, filters: str) -> str | None:
        return file_dialogs.save_file(self.parent, title, default, filters) or None

    def _ask_options(self, title: str, spins: dict, checks: dict,
                     remember: tuple[str, ...] = ()) -> dict | None:
        """The options dialog; the ``remember`` keys (preferences such as the scale, not what
        the map shows now) start from the user's last answer, kept in the settings."""
        settings, group = self.session.settings, f"exports/{title}/"

        def last(key: str, default: int) -> int:
            try:  # (a settings file is the user's: anything may be in it)
                return int(settings.value(group + key, default))
            except (TypeError, ValueError):
                return default
        spins = {k: (*v[:3], last(k, v[3])) if k in remember else v for k, v in spins.items()}
        checks = {k: (v[0], str(settings.value(group + k, v[1])).lower() == "true")
                  if k in remember else v for k, v in checks.items()}
        dialog = OptionsDialog(title, self.parent, spins, checks)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        values = dialog.values()
        for key in remember:
            if key in values:
                settings.setValue(group + key, values[key])
        return values

    # --------------------------------------------------------------------------- exports
    def export_map(self, path: str | None = None, options: dict | None = None) -> bool:
        """The map as shown (visible classes or no points, drawn star, decoded point's cross,
        interpolation path, mosaic if on)."""
        s = self.session
        if len(s.points) == 0:
            s.error.emit("Nothing to export", "There are no latent codes on the map yet.")
            return False
        path = path or self._ask_path("Export map", "latent-map.svg",
                                      "SVG (*.svg);;PNG at any resolution (*.png)")
        across = 800  # the picture's width at scale 1 (cae.render.size_for_plot)
        options = options or (path and self._ask_options(
            "Map export",
            {"scale": (f"Scale (×1 is {across} px wide)", 1, 8, 2)}
            if str(path).lower().endswith(".png") else {},
            {"mosaic": ("Decoded images under the points", self.mosaic_on.isChecked()),
             "points": ("Points", self.map.points_shown),
             "legend": ("Legend", True),
             **({"cross": ("Decoded point (the red cross)", self.map.marker.isVisible())}
                if s.decoded_z is not None else {}),
             "slide": ("A slide's shape, 16:9 (the view widened to it)", False)},
            remember=("scale", "legend", "slide")))
        if not path or not options:
            return False
        classes = range(len(self.map.scatters))
        hidden = frozenset(c for c in classes
                           if not (options.get("points", True) and self.map.class_visible(c)))
        a, b = s.endpoints["A"], s.endpoints["B"]
        from cae.render import MapStyle, legend_rows, plot_aspect_for, size_for_plot
        style = MapStyle(hidden=hidden, legend=options["legend"], equal_scales=False,
                         star=None if s.drawn_z is None else tuple(float(v) for v in s.drawn_z),
                         cross=s.decoded_z if options.get("cross") else None,
                         path=None if a is None or b is None else np.stack([a, b]))
        shown = self.map.view_box.sceneBoundingRect()  # as shown: the same view and aspect
        view, width, height = self.map.visible_rect(), shown.width(), shown.height()
        rows = legend_rows(s.points.class_names, s.points.labels, style)
        if options.get("slide"):  # (a tall map in a narrow window made a portrait picture)
            view, width, height = widened(view, width, height,
                                          plot_aspect_for(SLIDE_ASPECT, style, across, rows))
        size = size_for_plot(width, height, style, across, rows)
        decoder = copy.deepcopy(s.models.decoding_model) if options["mosaic"] else None
        x0, x1, y0, y1 = view
        codes, shown = s.points.codes, ~np.isin(s.points.labels, list(hidden))
        inside = (codes[:, 0] >= x0) & (codes[:, 0] <= x1) & (codes[:, 1] >= y0) & (codes[:, 1] <= y1)
        outside = int((shown & ~inside).sum())  # the view frames most codes, not every one
        note = (f" ({outside:,} of the {int(shown.sum()):,} points lie outside the view and are "
                "not in it; Fit view or zoom out to include them)") if outside else ""
        return self._run("map", f"Exporting the map to {Path(path).name}", _map_task, path,
                         s.points, style, view, size,
                         float(options.get("scale", 1)),  # (an SVG has no pixels to scale)
                         decoder, self.mosaic_size.value(),  # as many tiles across as shown
                         note=note)

    def export_animation(self, path: str | None = None, options: dict | None = None) -> bool:
        """Every epoch of the timeline, with in-between frames."""
        s = self.session
        if len(s.timeline) == 1:  # a run stopped in its first epoch: only the start is kept
            s.error.emit("No finished epoch", "The timeline holds only the codes before training "
                         "(epoch 0): the animation shows how they moved epoch by epoch, so it "
                         "needs a run that finished at least one epoch.")
            return False
        if len(s.timeline) < 2:
            s.error.emit("No training timeline", (
                "This model's file keeps no epochs to animate" + (
                    " (the bundled model was saved without them)" if s.models.path is not None
                    and s.models.path.parent.resolve() in file_dialogs.bundled_folders()
                    else "") + ". The animation shows how a model's codes moved epoch by epoch: "
                "train one in the window (the Quick recipe, 5 epochs, takes a few minutes on a "
                "laptop), or open a model trained here or with `cae train --timeline`."))
            return False
        from cae.animate import MP4_NEEDS_FFMPEG, find_ffmpeg
        ffmpeg = find_ffmpeg()  # MP4 is offered only where it can be written
        path = path or self._ask_path("Export timeline animation", "training.gif",
                                      "Animated GIF (*.gif)" + (";;MP4 video (*.mp4)" if ffmpeg
                                                                else ""))
        if path and Path(path).suffix.lower() == ".mp4" and ffmpeg is None:
            s.error.emit("Cannot write MP4", MP4_NEEDS_FFMPEG)  # before any options are asked
            return False
        names = s.points.class_names or tuple(str(c) for c in range(10))
        hidden = frozenset(c for c in range(len(self.map.scatters))
                           if not self.map.class_visible(c))
        options = options or (path and self._ask_options(
            "Animation", {"size": ("Frame size (px)", 200, 2000, 800),
                          "frames_per_epoch": ("Frames per epoch", 1, 30, 6)},
            {"mosaic": ("Decoded images under the points", self.mosaic_on.isChecked()),
             "loss": ("Loss curve beside the map", True),
             **({"hidden": (_leave_out(hidden, names), True)} if hidden else {})},
            remember=("size", "frames_per_epoch", "loss")))
        if not path or not options:
            return False
        from cae.animate import AnimationOptions
        settings = AnimationOptions(size=(options["size"], options["size"]),
                                    frames_per_epoch=options["frames_per_epoch"],
                                    mosaic=options["mosaic"], loss=options["loss"],
                                    hidden=hidden if options.get("hidden") else frozenset())
        return self._run("animation", f"Writing {Path(path).name}", _animation_task, path,
                         copy.deepcopy(s.timeline), s.models.model.config, names, settings,
                         list(s.models.metadata.get("history") or []),
                         step_points(s.models.metadata))

    def export_report(self, path: str | None = None) -> bool:
        """One page: the map, the mosaic, the metrics, the recipe and the loss curve."""
        m = self.session.models
        if m.model is None:
            return False
        path = path or self._ask_path("Export report", "model-report.pdf", "PDF (*.pdf);;PNG (*.png)")
        if not path:
            return False
        if self.session.training.running:  # the run's weights now, its recipe and epochs
            model, metadata, extras = self.session.run.snapshot_file()
            return self._run("report", f"Writing the report {Path(path).name}", _report_task,
                             path, model, metadata, extras, "the model in training (unsaved)",
                             None, self.session.dataset, None)
        name = m.path.name if m.path else "unsaved model"
        from cae.report import file_digest
        digest = file_digest(m.path) if m.path and not self.session.dirty else None
        return self._run("report", f"Writing the report {Path(path).name}", _report_task, path,
                         copy.deepcopy(m.model), dict(m.metadata), dict(m.extras), name, digest,
                         self.session.dataset, self.session.known_metrics())

    # --------------------------------------------------------------------------- running
    def _run(self, kind: str, text: str, fn, *args, note: str = "") -> bool:
        """Run ``fn(*args)`` as a cancellable task with a progress dialog; ``args[0]`` is the
        file written, and ``note`` follows "wrote FILE" in the status bar."""
        s = self.session
        dialog = QProgressDialog(text, "Cancel", 0, 1000, self.parent)
        dialog.setWindowModality(Qt.WindowModality.NonModal)
        dialog.setMinimumDuration(300)
        dialog.setValue(0)
        self.progress = dialog

        def finish(message: str | None, ok: bool) -> None:
            dialog.reset()
            dialog.deleteLater()
            self.progress = None
            if ok:
                s.status.emit(message or "", 8000)
            else:
                s.error.emit("Could not export", message or "")

        task = s.tasks.submit(kind, fn, *args,
                              on_done=lambda r: finish(f"wrote {args[0]}{note}", True),
                              on_failed=lambda m: finish(m, False),
                              on_progress=lambda f: dialog.setValue(int(1000 * f)))

        def cancelled() -> None:
            if task.cancelled or not s.tasks.running(kind):
                return  # it had ended already
            s.tasks.cancel(kind)  # the engine removes its partial file
            dialog.deleteLater()
            self.progress = None
            s.status.emit("export cancelled", 5000)

        dialog.canceled.connect(cancelled)
        return True
