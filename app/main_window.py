"""The main window: builds the widgets, docks and menus, creates the session and one controller
per feature, and shows errors.  State lives in :class:`app.session.Session`; behaviour in the
controllers (explore, draw, layers, training, interpolation, files)."""
from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings, Qt, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QApplication, QDockWidget, QHBoxLayout, QLabel, QLineEdit,
                               QMainWindow, QMenu, QMessageBox, QProgressBar, QPushButton,
                               QStackedWidget, QVBoxLayout, QWidget)

from cae.bundled import bundled_model_path

from . import file_dialogs
from .about import show_about
from .dock_layout import (MAP_MIN_HEIGHT, MAP_MIN_WIDTH, DockLayout, PanelScroll,
                          bring_forward, fit_screen)
from .draw_controller import DrawController, FieldUndoPassThrough
from .draw_panel import DrawPanel
from .drawing_pad import PAD_SIZE
from .explore import ExploreController
from .exports import ExportsController
from .files import FilesController
from .image_view import ImageView
from .interpolation_controller import InterpolationController
from .interpolation_panel import InterpolationPanel
from .keys_help import show_keys
from .latent_map import LatentMap
from .layers import LayersController
from .map_toolbar import MapToolbar
from .metrics_panel import MetricsPanel
from .session import Session
from .drops import DropController
from .status_marks import StatusMarks
from .training_controller import TrainingController
from .training_panel import TrainingPanel
from .welcome import APP_NAME, WelcomePage


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.session = Session(settings or QSettings("cae-explorer", "cae-explorer"), self)
        file_dialogs.remember_folders_in(self.session.settings)
        self.last_error = ""
        self.left_running = ""  # after a close: what outlived its wait ("a training step"), if any
        self._error_box: QMessageBox | None = None
        self._build_ui()
        self.dock_layout = DockLayout(self, self.map)
        s = self.session
        self.explore = ExploreController(s, self.map, self.decoded_view, self.z_label,
                                         (self.z1_edit, self.z2_edit), self.hover_view,
                                         self.hover_label, self.coords_label, self.hover_title)
        self.files = FilesController(s, self, self.map, self.recent_menu)
        self.draw = DrawController(s, self.draw_panel, self.map)
        self.layers = LayersController(s, self.map, self.toolbar)
        self.training = TrainingController(s, self.training_panel, self.files.confirm_replace,
                                           self.files.ask_keep, self.files.ask_stop)
        self.training.choose_folder = self.files.choose_data_folder
        self.interpolation = InterpolationController(s, self.interp_panel, self.map)
        self.exports = ExportsController(s, self, self.map, self.toolbar)
        self.drops = DropController(s, self, {"model": self.files.open_model,
                                              "data": self.files.choose_data_folder,
                                              "picture": self._open_picture})
        self._build_menus()
        self._connect()
        self._restore_settings()
        self._update_page()

    # =========================================================================== building
    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_ui(self) -> None:
        self.setWindowTitle(APP_NAME)
        self.map = LatentMap()
        self.welcome = WelcomePage()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        # While start() runs (it may first ask about a lost run): neither the map nor the
        # welcome page's "no model and no dataset", which would not be true yet.
        self.starting = QLabel("Starting…")
        self.starting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack.addWidget(self.starting)
        self._starting = False
        self.stack.addWidget(self.map)
        self.stack.setMinimumSize(MAP_MIN_WIDTH, MAP_MIN_HEIGHT)
        self.setCentralWidget(self.stack)

        right = QWidget()
        lay = QVBoxLayout(right)
        lay.addWidget(QLabel("<b>Decoded</b> (click or drag on the map)"))
        self.decoded_view = ImageView(minimum=160)
        lay.addWidget(self.decoded_view, 3)
        self.z_label = QLabel("z = –")
        self.z_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.z_label)
        goto = QHBoxLayout()
        self.z1_edit, self.z2_edit = QLineEdit(), QLineEdit()
        for edit, name in ((self.z1_edit, "z1"), (self.z2_edit, "z2")):
            edit.setPlaceholderText(name)
            edit.setToolTip(f"Type {name} (a decimal comma reads as a point); Enter decodes the "
                            "point and hands the keys back to the map")
            goto.addWidget(edit)
        self.go_button = QPushButton("Go")
        self.go_button.setToolTip("Decode exactly this z (arrow keys on the map nudge it; "
                                  "Shift: bigger steps)")
        goto.addWidget(self.go_button)
        lay.addLayout(goto)
        self.hover_title = QLabel("<b>Digit under the cursor</b>")
        lay.addWidget(self.hover_title)
        self.hover_view = ImageView(minimum=84)
        lay.addWidget(self.hover_view, 2)
        self.hover_label = QLabel("hover over a point")
        self.hover_label.setWordWrap(True)  # (a long line had widened the dock, narrowing the map)
        lay.addWidget(self.hover_label)

        right_area = Qt.DockWidgetArea.RightDockWidgetArea
        self.side_dock = self._dock("Images", "imagesDock", PanelScroll(right, 200), right_area)
        self.draw_panel = DrawPanel()
        self.draw_dock = self._dock("Draw", "drawDock", PanelScroll(  # the pad itself always fits
            self.draw_panel, PAD_SIZE + 40, whole=False), right_area)
        self.interp_panel = InterpolationPanel()
        self.interp_dock = self._dock("Interpolation", "interpolationDock",
                                      PanelScroll(self.interp_panel, PAD_SIZE, whole=False), right_area)
        self.tabifyDockWidget(self.side_dock, self.draw_dock)
        self.tabifyDockWidget(self.draw_dock, self.interp_dock)
        self.side_dock.raise_()
        left_area = Qt.DockWidgetArea.LeftDockWidgetArea
        self.training_panel = TrainingPanel()
        self.training_dock = self._dock("Training", "trainingDock",
                                        PanelScroll(self.training_panel, 220, 360), left_area)
        self.metrics_panel = MetricsPanel()
        self.metrics_dock = self._dock("Metrics", "metricsDock",
                                       PanelScroll(self.metrics_panel, 220), left_area)
        self.tabifyDockWidget(self.training_dock, self.metrics_dock)
        self.training_dock.raise_()

        self.coords_label = QLabel("")
        self.work_bar = QProgressBar()
        self.work_bar.setMaximumWidth(220)
        self.work_bar.setRange(0, 1000)
        self.work_bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.marks = StatusMarks(self.session)
        self._permanent = (*self.marks.labels, self.coords_label, self.work_bar, self.cancel_button)
        for w in self._permanent:
            self.statusBar().addPermanentWidget(w)
        self.recent_menu = QMenu("Recent models", self)
        self.toolbar = MapToolbar(self)
        self.addToolBar(self.toolbar)
        self.addToolBarBreak()
        self.addToolBar(self.toolbar.timeline_bar)

    def _action(self, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda checked=False: slot())
        return action

    def _build_menus(self) -> None:
        f, s = self.files, self.session
        m = self.menuBar().addMenu("&File")
        self.open_action = self._action("&Open model…", f.open_model, QKeySequence.StandardKey.Open)
        m.addAction(self.open_action)
        m.addMenu(self.recent_menu)
        self.save_action = self._action("&Save model…", f.save_model, QKeySequence.StandardKey.Save)
        m.addAction(self.save_action)
        m.addSeparator()
        m.addAction(self._action("Export latent codes (CSV/NPY/NPZ)…", f.export_codes, "Ctrl+E"))
        m.addAction(self._action("Export map as PNG (screen size)…", f.export_map_png,
                                 "Ctrl+Shift+E"))
        m.addAction(self._action("Export map (SVG, or PNG at any resolution)…",
                                 self.exports.export_map))
        m.addAction(self._action("Export timeline animation (GIF/MP4)…",
                                 self.exports.export_animation))
        m.addAction(self._action("Export report (PDF/PNG)…", self.exports.export_report))
        m.addSeparator()
        m.addAction(self._action("&Quit", self.close, "Ctrl+Q"))
        m.setToolTipsVisible(True)
        e = self.menuBar().addMenu("&Edit")  # the drawing's steps, wherever the focus is
        self.undo_action, self.redo_action, self.clear_action = self.draw.edit_actions(
            self, lambda: bring_forward(self.draw_dock))
        e.addActions([self.undo_action, self.redo_action, self.clear_action])
        self.field_keys = FieldUndoPassThrough(self)
        self.field_keys.watch(self)
        d = self.menuBar().addMenu("&Data")
        # Another dataset while a run trains on this one is refused: the menu says so up front
        # (a folder chosen first and refused then was also remembered as the last one used).
        self.data_actions = [
            self._action("Download MNIST", lambda: s.load_data("mnist", download=True)),
            self._action("Download Fashion-MNIST",
                         lambda: s.load_data("fashion-mnist", download=True)),
            self._action("Choose data folder…", f.choose_data_folder)]
        d.addActions(self.data_actions)
        d.setToolTipsVisible(True)
        v = self.menuBar().addMenu("&View")
        v.addAction(self._action("&Fit view", self.layers.fit_view, "Ctrl+F"))
        v.addAction(self.toolbar.follow_action)  # (the toolbar's buttons take no Tab stop)
        v.addAction(self.toolbar.grey_action)
        v.addAction(self.toolbar.points_action)
        v.addAction(self.toolbar.mosaic_action)
        v.addAction(self.toolbar.equal_action)
        for end in ("A", "B"):  # window-wide: wherever the focus is, except in a text field
            v.addAction(self._action(f"Set end {end} at the pointer (the digit or the map's "
                                     "point under it, else the decoded point)",
                                     lambda end=end: self.interpolation.set_endpoint(end, "hovered"),
                                     end))
        for dock in (self.side_dock, self.training_dock, self.draw_dock, self.interp_dock,
                     self.metrics_dock):
            v.addAction(dock.toggleViewAction())
            dock.toggleViewAction().triggered.connect(  # (it came back behind its tabs)
                lambda on, dock=dock: on and bring_forward(dock))
        h = self.menuBar().addMenu("&Help")
        h.addAction(self._action("&Keys and mouse", lambda: show_keys(self, self.menuBar()),
                                 QKeySequence.StandardKey.HelpContents))
        h.addAction(self._action("&About CAE Latent Explorer",
                                 lambda: show_about(self, self.session.settings)))

    def _connect(self) -> None:
        s = self.session
        s.error.connect(self.show_error)
        s.status.connect(self.say)
        self.statusBar().messageChanged.connect(  # a message gone takes its tooltip with it
            lambda text: text or self.statusBar().setToolTip(""))
        s.modelChanged.connect(self._update_page)
        s.models.saved.connect(self._update_page)
        s.pointsChanged.connect(lambda *_: self._update_page())
        s.datasetChanged.connect(lambda _: self._update_page())
        s.dirtyChanged.connect(lambda _: self._update_page())
        s.training.runningChanged.connect(self._update_run_actions)
        s.metricsReady.connect(lambda m, source: self.metrics_panel.show_metrics(
            m, s.dataset.class_names, source, s.dataset.noun) if s.dataset else None)
        s.metricsCleared.connect(self.metrics_panel.clear)
        s.data.progress.connect(self._on_data_progress)
        s.data.busyChanged.connect(self._on_data_busy)
        self.cancel_button.clicked.connect(s.cancel_data_load)
        self.go_button.clicked.connect(self.explore.go_to_typed_z)
        self.explore.decoded.connect(lambda *_: self.draw.show_star_decode(self.decoded_view.image))
        self.map.pressed.connect(self._show_decoded_tab)
        self.welcome.download_button.clicked.connect(lambda: s.load_data("mnist", download=True))
        self.welcome.folder_button.clicked.connect(lambda: self.files.choose_data_folder())
        self.welcome.open_button.clicked.connect(lambda: self.files.open_model())

    # =========================================================================== start-up
    def start(self, model_path: str | None = None, data_dir: str | None = None,
              dataset: str = "mnist") -> None:
        """Offer a lost run back, else load the model (given, last saved or bundled) and look
        for data in the background."""
        self._starting = True
        self._update_page()
        try:
            if not model_path and self.files.offer_autosave():
                self.session.look_for_data(data_dir, dataset)
            else:
                self.session.start(model_path, data_dir, dataset, bundled_model_path())
        finally:
            self._starting = False
            self._update_page()

    # =========================================================================== state
    @Slot()
    def _update_page(self) -> None:
        m = self.session.models
        has_content = m.model is not None or self.session.dataset is not None or len(
            self.session.points) > 0
        page = self.map if has_content else self.welcome
        self.stack.setCurrentWidget(self.starting if self._starting else page)
        running = self.session.training.running  # its model is kept or discarded at its end
        self.save_action.setEnabled(m.model is not None and not running)
        self.save_action.setToolTip("Stop training to save: the run's model is kept or "
                                    "discarded when it ends" if running else "Save model")
        title = APP_NAME
        if m.path is not None:
            title += f" — {m.path.name}"
        elif m.model is not None:
            title += " — trained model (unsaved)" if m.trained else " — untrained model"
        self.setWindowTitle(title + (" *" if self.session.dirty else ""))

    def _update_run_actions(self, running: bool) -> None:
        """While a run trains, neither another dataset nor another model may be loaded, nor the
        changing model saved: the menus say so up front (Open used to refuse only after a file
        was chosen, and Save wrote mid-epoch weights without the run's record)."""
        for action in self.data_actions:
            action.setEnabled(not running)
            action.setToolTip("Stop training to change the dataset" if running else action.text())
        self.open_action.setEnabled(not running)
        self.open_action.setToolTip("Stop training to open another model" if running
                                    else "Open model")
        self.files.rebuild_recent_menu()
        self._update_page()

    def _open_picture(self, path: str) -> bool:
        bring_forward(self.draw_dock)
        return self.draw_panel.open_image(path)

    def _show_decoded_tab(self, on_star: bool) -> None:
        """A press on the map decodes: the Images tab comes forward to show it when another tab
        hides it (not when it was closed).  A press on the drawn digit's star starts a drag the
        Draw dock follows, so that dock stays; so does Draw while it holds a drawing (pressed to
        compare the map with it), and Interpolation, whose ends are set from the point just
        pressed ("A ← decoded point")."""
        drawing = not self.draw_panel.pad.is_empty and not self.draw_dock.visibleRegion().isEmpty()
        if (not on_star and not drawing and self.side_dock.toggleViewAction().isChecked()
                and self.side_dock.visibleRegion().isEmpty()  # (a hidden tab is "visible")
                and self.interp_dock.visibleRegion().isEmpty()):
            self.side_dock.raise_()

    @Slot(str, str)
    def say(self, text: str, timeout_ms: int = 0) -> None:
        """A status-bar message, cut with an ellipsis where the z readout and the marks begin
        (a long one ran into them mid-word); the whole text is its tooltip."""
        bar = self.statusBar()
        taken = sum(w.width() + 6 for w in self._permanent if w.isVisible())
        room = max(80, bar.width() - taken - 30)  # (the size grip and margins)
        bar.showMessage(bar.fontMetrics().elidedText(text, Qt.TextElideMode.ElideRight, room),
                        timeout_ms)
        bar.setToolTip(text)

    def show_error(self, title: str, text: str) -> None:
        """Tell the user without blocking the event loop (training and tests keep running)."""
        self.last_error = text
        line = text.splitlines()[0] if text else title
        # ("Could not save the model: could not save the model to …" said it twice)
        self.say(line if line.lower().startswith(title.lower()) else f"{title}: {line}", 10000)
        if self.stack.currentWidget() is self.welcome and title == "Dataset":
            self.welcome.message.setText(text)  # the welcome page explains what to do
            return
        if self._error_box is not None:
            self._error_box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        box.open()
        self._error_box = box

    @Slot(str, float)
    def _on_data_progress(self, text: str, done: float) -> None:
        self.work_bar.setFormat(text)
        self.work_bar.setValue(int(1000 * done))

    @Slot(bool)
    def _on_data_busy(self, busy: bool) -> None:
        self.work_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.work_bar.setValue(0)
            self.work_bar.setFormat("loading data…")

    # =========================================================================== lifecycle
    def _restore_settings(self) -> None:
        settings = self.session.settings
        geometry = settings.value("geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:  # a first start: 1280 x 800, or what the screen has room for, centred on it
            room = self.screen().availableGeometry()
            fit_screen(self, room)
            self.resize(min(1280, room.width()), min(800, room.height()))
            self.move(room.center() - self.rect().center())
        state = settings.value("windowState")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)

    def quit_without_asking(self) -> None:
        """Ctrl+C in the terminal: close now (a run's last epoch is in the autosave)."""
        self.session.closing = True
        self.close()

    def focusNextPrevChild(self, next: bool) -> bool:  # noqa: N802
        """Tab and Shift+Tab skip what cannot be seen: the widgets of a dock behind another
        dock's tab still count as visible to Qt, and the focus went through a dozen of them
        (the Draw and Interpolation panels behind Images) before it came back into view."""
        start = QApplication.focusWidget()
        for _ in range(500):  # bounded: the chain is a cycle of a few dozen widgets
            if not super().focusNextPrevChild(next):
                return False
            widget = QApplication.focusWidget()
            if widget is None or widget is start or not widget.visibleRegion().isEmpty():
                return True
        return True

    def closeEvent(self, event) -> None:  # noqa: N802
        """Ask about an unsaved model, then stop every thread and wait for it."""
        if not self.session.closing and not self.files.confirm_quit():
            event.ignore()
            return
        settings = self.session.settings
        settings.setValue("geometry", self.saveGeometry())
        settings.setValue("windowState", self.saveState())
        settings.sync()
        self.explore.stop()
        self.left_running = self.session.shutdown(1500)
        super().closeEvent(event)
