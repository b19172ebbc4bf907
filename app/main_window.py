"""The main window: the latent map in the middle, decoded and hovered digits on the right, the
training dock below; menus for files, data and view.  It wires widgets to the services."""
from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QComboBox, QDockWidget, QFileDialog, QHBoxLayout, QLabel, QLineEdit,
                               QSlider, QSpinBox,
                               QMainWindow, QMessageBox, QProgressBar, QPushButton, QScrollArea, QStackedWidget,
                               QToolBar, QVBoxLayout, QWidget)

from cae.batch_decode import BatchDecoder
from cae.codes import write_codes
from cae.data import DATASETS, Dataset, not_found_message
from cae.errors import CAEError
from cae.metrics import (encode_images, evaluate, knn_indices, knn_predict_excluding_self,
                         reconstruction_errors, vote)
from cae.preprocess import EmptyDrawingError, preprocess
from cae.model import CAE
from cae.train import EpochEnd, Finished, Progress, Snapshot, TrainConfig, build_model

from .data_service import DataService
from .draw_panel import DrawPanel
from .image_view import ImageView
from .interpolation_panel import InterpolationPanel, path_points
from .latent_map import LatentMap
from .mosaic import mosaic
from .metrics_panel import MetricsPanel
from .model_service import ModelService
from .tasks import TaskRunner
from cae.timeline import Timeline
from .training_panel import TrainingPanel
from .training_service import TrainingService

APP_NAME = "CAE Latent Explorer"
RESOURCES = Path(__file__).resolve().parents[1] / "resources"
BUNDLED_MODEL = RESOURCES / "model.safetensors"
MAX_RECENT = 8
DECODE_INTERVAL_MS = 16  # drags decode at most at the display rate
SNAPSHOT_EVERY_S = 1.5  # the map re-plots this often while training (each costs an encode)
ENCODE_CHUNK = 1000


def _mosaic_task(cancel, report, decoder: BatchDecoder | CAE, rect: tuple,
                 n: int) -> tuple[np.ndarray, BatchDecoder]:
    """The mosaic, and the decoder it used (built here from a model copy when there was none
    for these weights, so the GUI can keep it for the next pan or zoom)."""
    if isinstance(decoder, CAE):
        decoder = BatchDecoder(decoder)
    return mosaic(decoder, *rect, n), decoder


def _colour_values(cancel, report, model: CAE, mode: str, images: np.ndarray, labels: np.ndarray,
                   codes: np.ndarray, train_images: np.ndarray, train_labels: np.ndarray,
                   train_codes: np.ndarray | None, self_index: np.ndarray) -> np.ndarray:
    """Per-point reconstruction error, or whether the point's 5-NN vote (training digits, a digit
    never voting for itself) is wrong."""
    if mode == "error":
        return reconstruction_errors(model, images, cancel=lambda: cancel.cancelled)
    if train_codes is None:
        train_codes = _encode_chunks(cancel, report, model, train_images)
    return knn_predict_excluding_self(train_codes, train_labels, codes, self_index) != labels


def _metrics(cancel, report, model: CAE, dataset: Dataset, train_codes: np.ndarray | None,
             quick: bool) -> dict:
    stop = lambda: cancel.cancelled  # noqa: E731
    if quick:  # a look after each epoch: 2,000 test digits voted by 10,000 training digits
        return evaluate(model, dataset, n_test=2000, n_train=10000, cancel=stop)
    return evaluate(model, dataset, train_codes=train_codes, cancel=stop)


def _encode_chunks(cancel, report, model: CAE, images: np.ndarray) -> np.ndarray:
    """Encode in chunks so a cancel (new model, closing window) takes effect quickly."""
    parts = []
    for start in range(0, len(images), ENCODE_CHUNK):
        parts.append(encode_images(model, images[start:start + ENCODE_CHUNK],
                                   cancel=lambda: cancel.cancelled))
        report(min(start + ENCODE_CHUNK, len(images)) / len(images))
    return np.concatenate(parts) if parts else np.zeros((0, 2), np.float32)


class WelcomePage(QWidget):
    """Shown when there is neither a model nor data: says what to do."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel(f"<h2>{APP_NAME}</h2>")
        text = QLabel("There is no model and no dataset yet.<br>Download MNIST (about 11 MB), "
                      "choose a folder that holds the four MNIST IDX files, or open a trained "
                      "model (.safetensors).")
        text.setWordWrap(True)
        self.download_button = QPushButton("Download MNIST")
        self.folder_button = QPushButton("Choose data folder…")
        self.open_button = QPushButton("Open model…")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box = QVBoxLayout()
        box.addWidget(title)
        box.addWidget(text)
        for b in (self.download_button, self.folder_button, self.open_button):
            box.addWidget(b)
        box.addWidget(self.message)
        box.addStretch(1)
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        outer.addLayout(box, 2)
        outer.addStretch(1)


class MainWindow(QMainWindow):
    decoded = Signal(float, float)  # a latent point was decoded and shown

    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings("cae-explorer", "cae-explorer")
        self.runner = TaskRunner(self)
        self.models = ModelService(self)
        self.data = DataService(self.runner, self)
        self.training = TrainingService(self)

        self.dataset: Dataset | None = None
        self.map_images: np.ndarray | None = None  # uint8 images behind the map's points
        self.map_all = False  # False: the 10,000 test digits; True: all 70,000
        self.current_z: tuple[float, float] | None = None
        self._pending_z: tuple[float, float] | None = None
        self._encode_task = None
        self._error_box: QMessageBox | None = None
        self._train_config: TrainConfig | None = None
        self._history: list[dict] = []
        self.train_codes: np.ndarray | None = None  # training digits' codes, for neighbours
        self._train_codes_task = None
        self.drawn_z: np.ndarray | None = None
        self.drawn_neighbours: np.ndarray | None = None
        self.last_error = ""
        self.endpoints: dict[str, np.ndarray | None] = {"A": None, "B": None}
        self.timeline = Timeline()
        self._epoch_ended = False
        self.decode_count = 0
        self._decode_times: list[float] = []  # when the decodes of the last second happened
        self._mosaic_task = None
        self._batch_decoder: BatchDecoder | None = None  # the mosaic's, for these weights
        self._batch_decoder_generation = -1
        self._colour_task = None
        self._metrics_task = None
        self._metrics_due = False  # an epoch ended: compute metrics with its snapshot
        self.last_decode_ms = 0.0
        self.dirty = False
        self.closing = False  # set in closeEvent: late worker results are then ignored
        self._data_requested = False

        self._build_ui()
        self._connect()
        self._restore_settings()
        self._update_page()

    # =========================================================================== building
    def _build_ui(self) -> None:
        self.setWindowTitle(APP_NAME)
        self.map = LatentMap()
        self.welcome = WelcomePage()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.map)
        self.setCentralWidget(self.stack)

        # Decoded + hovered panels
        right = QWidget()
        lay = QVBoxLayout(right)
        lay.addWidget(QLabel("<b>Decoded</b> (click or drag on the map)"))
        self.decoded_view = ImageView(minimum=168)
        lay.addWidget(self.decoded_view, 3)
        self.z_label = QLabel("z = –")
        self.z_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.z_label)
        goto = QHBoxLayout()
        self.z1_edit, self.z2_edit = QLineEdit(), QLineEdit()
        for edit, name in ((self.z1_edit, "z1"), (self.z2_edit, "z2")):
            edit.setPlaceholderText(name)
            edit.returnPressed.connect(self.go_to_typed_z)
            goto.addWidget(edit)
        go = QPushButton("Go")
        go.setToolTip("Decode exactly this z (arrow keys on the map nudge it; Shift: bigger steps)")
        go.clicked.connect(self.go_to_typed_z)
        goto.addWidget(go)
        lay.addLayout(goto)
        lay.addWidget(QLabel("<b>Digit under the cursor</b>"))
        self.hover_view = ImageView(minimum=84)
        lay.addWidget(self.hover_view, 2)
        self.hover_label = QLabel("hover over a point")
        lay.addWidget(self.hover_label)
        self.side_dock = QDockWidget("Images", self)
        self.side_dock.setObjectName("imagesDock")
        self.side_dock.setWidget(right)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.side_dock)

        self.draw_panel = DrawPanel()
        self.draw_dock = QDockWidget("Draw a digit", self)
        self.draw_dock.setObjectName("drawDock")
        scroll = QScrollArea()  # the panel is tall: let small screens scroll it
        scroll.setWidget(self.draw_panel)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(self.draw_panel.minimumSizeHint().width() + 20)
        self.draw_dock.setWidget(scroll)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.draw_dock)
        self.tabifyDockWidget(self.side_dock, self.draw_dock)
        self.interp_panel = InterpolationPanel()
        self.interp_dock = QDockWidget("Interpolation", self)
        self.interp_dock.setObjectName("interpolationDock")
        self.interp_dock.setWidget(self.interp_panel)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.interp_dock)
        self.tabifyDockWidget(self.draw_dock, self.interp_dock)
        self.side_dock.raise_()

        self.training_panel = TrainingPanel()
        self.training_panel.setMaximumWidth(380)
        self.training_dock = QDockWidget("Training", self)
        self.training_dock.setObjectName("trainingDock")
        self.training_dock.setWidget(self.training_panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.training_dock)
        self.metrics_panel = MetricsPanel()
        self.metrics_dock = QDockWidget("Metrics", self)
        self.metrics_dock.setObjectName("metricsDock")
        self.metrics_dock.setWidget(self.metrics_panel)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, self.metrics_dock)
        self.tabifyDockWidget(self.training_dock, self.metrics_dock)
        self.training_dock.raise_()

        # Status bar: message, coordinates, background work with cancel
        self.coords_label = QLabel("")
        self.work_bar = QProgressBar()
        self.work_bar.setMaximumWidth(220)
        self.work_bar.setRange(0, 1000)
        self.work_bar.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.statusBar().addPermanentWidget(self.coords_label)
        self.statusBar().addPermanentWidget(self.work_bar)
        self.statusBar().addPermanentWidget(self.cancel_button)

        self._build_menus()

    def _action(self, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(lambda checked=False: slot())
        return action

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        self.open_action = self._action("&Open model…", self.open_model, QKeySequence.StandardKey.Open)
        self.save_action = self._action("&Save model…", self.save_model, QKeySequence.StandardKey.Save)
        m.addAction(self.open_action)
        self.recent_menu = m.addMenu("Recent models")
        m.addAction(self.save_action)
        m.addSeparator()
        m.addAction(self._action("Export latent codes (CSV/NPY/NPZ)…", self.export_codes, "Ctrl+E"))
        m.addAction(self._action("Export map as PNG…", self.export_map_png, "Ctrl+Shift+E"))
        m.addSeparator()
        quit_action = self._action("&Quit", self.close, QKeySequence.StandardKey.Quit)
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        m.addAction(quit_action)

        d = self.menuBar().addMenu("&Data")
        d.addAction(self._action("Download MNIST", lambda: self.load_data("mnist", download=True)))
        d.addAction(self._action("Download Fashion-MNIST",
                                 lambda: self.load_data("fashion-mnist", download=True)))
        d.addAction(self._action("Choose data folder…", self.choose_data_folder))

        v = self.menuBar().addMenu("&View")
        v.addAction(self._action("&Fit view", self.map.fit_view, "Ctrl+F"))
        v.addAction(self.side_dock.toggleViewAction())
        v.addAction(self.training_dock.toggleViewAction())
        v.addAction(self.draw_dock.toggleViewAction())
        v.addAction(self.interp_dock.toggleViewAction())
        v.addAction(self.metrics_dock.toggleViewAction())

        bar = QToolBar("Map")
        bar.setObjectName("mapToolbar")
        bar.addAction(self._action("Fit view", self.map.fit_view))
        self.map_set = QComboBox()
        self.map_set.addItem("Test digits (10,000)", False)
        self.map_set.addItem("All digits (70,000)", True)
        self.map_set.activated.connect(lambda _: self.set_map_all(self.map_set.currentData()))
        bar.addWidget(QLabel(" Show: "))
        bar.addWidget(self.map_set)
        self.colour_by = QComboBox()
        self.colour_by.addItem("Class", "class")
        self.colour_by.addItem("Reconstruction error", "error")
        self.colour_by.addItem("5-NN vote wrong", "knn")
        self.colour_by.activated.connect(lambda _: self.refresh_colouring())
        bar.addWidget(QLabel(" Colour: "))
        bar.addWidget(self.colour_by)
        self.grey_action = QAction("Grey out hidden", self)
        self.grey_action.setCheckable(True)
        self.grey_action.setToolTip("Classes switched off in the legend stay on the map in grey")
        self.grey_action.toggled.connect(self.map.set_grey_hidden)
        bar.addAction(self.grey_action)
        self.timeline_slider = QSlider(Qt.Orientation.Horizontal)
        self.timeline_slider.setMinimumWidth(140)
        self.timeline_slider.setToolTip("Scrub through the epochs of the training run")
        self.timeline_slider.valueChanged.connect(self.show_epoch)
        self.timeline_label = QLabel("")
        self.timeline_actions = [bar.addWidget(QLabel(" Epoch: ")), bar.addWidget(self.timeline_slider),
                                 bar.addWidget(self.timeline_label)]
        self.mosaic_action = QAction("Decoded-image map", self)
        self.mosaic_action.setCheckable(True)
        self.mosaic_action.setToolTip("Lay what the decoder draws everywhere under the points")
        self.mosaic_action.toggled.connect(self.set_mosaic_enabled)
        bar.addAction(self.mosaic_action)
        self.mosaic_size = QSpinBox()
        self.mosaic_size.setRange(2, 40)
        self.mosaic_size.setValue(16)
        self.mosaic_size.setSuffix(" × n")
        self.mosaic_size.setPrefix("n = ")
        self.mosaic_size.valueChanged.connect(lambda _: self._schedule_mosaic())
        bar.addWidget(self.mosaic_size)
        bar.addWidget(QLabel("   left drag: explore · Shift+drag or middle drag: pan · wheel: zoom"
                             " · arrows: nudge"))
        self.addToolBar(bar)

    def _connect(self) -> None:
        self.map.explored.connect(self.request_decode)
        self.map.hovered.connect(self._on_hover)
        self.map.nudged.connect(self.nudge)
        self.map.endpointKey.connect(lambda end: self.set_endpoint(end, "hovered"))
        self.interp_panel.endpointRequested.connect(self.set_endpoint)
        self.interp_panel.stepsChanged.connect(lambda _: self.update_interpolation())
        self.interp_panel.export_png.clicked.connect(
            lambda: self._export_problem(self.interp_panel.save_png()))
        self.interp_panel.export_csv.clicked.connect(
            lambda: self._export_problem(self.interp_panel.save_csv()))
        self.models.weightsUpdated.connect(self.update_interpolation)
        self.map.viewChanged.connect(self._schedule_mosaic)
        self._mosaic_timer = QTimer(self)
        self._mosaic_timer.setSingleShot(True)
        self._mosaic_timer.setInterval(120)  # recompute once panning or zooming pauses
        self._mosaic_timer.timeout.connect(self.refresh_mosaic)
        self.models.modelChanged.connect(self._schedule_mosaic)
        self.models.weightsUpdated.connect(self._schedule_mosaic)
        self._decode_timer = QTimer(self)
        self._decode_timer.setInterval(DECODE_INTERVAL_MS)
        self._decode_timer.setSingleShot(True)
        self._decode_timer.timeout.connect(self._decode_pending)

        self.models.modelChanged.connect(self._on_model_changed)
        self.data.loaded.connect(self._on_dataset_loaded)
        self.data.failed.connect(self._on_data_failed)
        self.data.progress.connect(self._on_download_progress)
        self.data.busyChanged.connect(self._on_data_busy)
        self.cancel_button.clicked.connect(self.data.cancel)

        tp = self.training_panel
        tp.trainRequested.connect(self.start_training)
        tp.pauseRequested.connect(self.training.pause)
        tp.resumeRequested.connect(self.training.resume)
        tp.stopRequested.connect(self.training.stop)
        tp.datasetChosen.connect(self._on_dataset_chosen)
        self.training.progress.connect(self._on_progress)
        self.training.snapshot.connect(self._on_snapshot)
        self.training.epochEnded.connect(self._on_epoch)
        self.training.finished.connect(self._on_training_finished)
        self.training.failed.connect(self._on_training_failed)
        self.training.runningChanged.connect(tp.set_running)

        pad = self.draw_panel.pad
        self._draw_timer = QTimer(self)
        self._draw_timer.setSingleShot(True)
        self._draw_timer.setInterval(40)  # live updates while a stroke is drawn
        self._draw_timer.timeout.connect(self.update_drawing)
        pad.inkChanged.connect(self._draw_timer.start)
        pad.strokeFinished.connect(self.update_drawing)
        self.models.weightsUpdated.connect(self.update_drawing)

        self.welcome.download_button.clicked.connect(lambda: self.load_data("mnist", download=True))
        self.welcome.folder_button.clicked.connect(self.choose_data_folder)
        self.welcome.open_button.clicked.connect(self.open_model)

    # =========================================================================== start-up
    def start(self, model_path: str | None = None, data_dir: str | None = None,
              dataset: str = "mnist") -> None:
        """Load the model (given, last used, or bundled) now and look for data in the background."""
        candidates = [model_path] if model_path else [self.settings.value("lastModel", ""),
                                                       str(BUNDLED_MODEL)]
        for path in candidates:
            if path and Path(path).is_file():
                try:
                    self.models.load(path)
                    break
                except CAEError as exc:
                    if model_path:
                        self.show_error("Could not open the model", str(exc))
        if not data_dir and self.models.metadata.get("dataset") in DATASETS:
            dataset = self.models.metadata["dataset"]  # the data the model was trained on
        folder = data_dir or self.settings.value("dataFolder", "") or None
        if folder and Path(folder).is_dir() and dataset == "mnist":
            dataset = "auto"  # the folder used last time, whatever dataset it holds
        self.load_data(dataset, folder, requested=bool(data_dir))

    # =========================================================================== pages/state
    def _update_page(self) -> None:
        has_content = self.models.model is not None or self.dataset is not None
        self.stack.setCurrentWidget(self.map if has_content else self.welcome)
        self.save_action.setEnabled(self.models.model is not None)
        title = APP_NAME
        if self.models.path is not None:
            title += f" — {self.models.path.name}"
        elif self.models.model is not None:
            title += " — trained model" if self.models.trained else " — untrained model"
        self.setWindowTitle(title + (" *" if self.dirty else ""))

    def show_error(self, title: str, text: str) -> None:
        """Tell the user without blocking the event loop (training and tests keep running)."""
        self.last_error = text
        self.statusBar().showMessage(f"{title}: {text.splitlines()[0]}", 10000)
        if self._error_box is not None:
            self._error_box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, self)
        box.setModal(False)
        box.open()
        self._error_box = box

    # =========================================================================== data
    def load_data(self, name: str = "mnist", folder: str | None = None, download: bool = False,
                  requested: bool = True) -> None:
        """Load (or download) a dataset in the background; ``requested`` is False for the quiet
        search at start-up, whose failure is a hint rather than an error."""
        if self.closing:
            return
        if self.training.running:
            self.show_error("Training is running", "Stop training before changing the dataset.")
            return
        self.statusBar().showMessage("downloading " + name if download else f"looking for {name}…")
        self._data_requested = requested
        self.data.load(name, folder, download)

    @Slot(str)
    def _on_dataset_chosen(self, name: str) -> None:
        if name == "folder":
            self.choose_data_folder()
        else:
            self.load_data(name)

    def _follow_model_dataset(self) -> None:
        """A model trained on a named dataset brings that dataset's map (found quietly)."""
        wanted = self.models.metadata.get("dataset")
        if wanted in DATASETS and (self.dataset is None or self.dataset.name != wanted) \
                and not self.training.running:
            self.load_data(wanted, requested=False)

    def choose_data_folder(self, folder: str | None = None) -> None:
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Folder with the four IDX files")
            if not folder:
                return
        self.load_data("auto", folder)

    @Slot(object)
    def _on_dataset_loaded(self, dataset: Dataset) -> None:
        self.dataset = dataset
        self._forget_train_codes()
        if dataset.source:
            self.settings.setValue("dataFolder", dataset.source)
        i = self.training_panel.dataset.findData(dataset.name)
        if i >= 0:
            self.training_panel.dataset.setCurrentIndex(i)
        self.statusBar().showMessage(f"{dataset.name}: {len(dataset.train_images):,} training and "
                                     f"{len(dataset.test_images):,} test images from {dataset.source}",
                                     8000)
        self.welcome.message.setText("")
        if self.models.model is None:
            self.models.new_model()  # emits modelChanged -> encode
        else:
            self.refresh_codes()
        self._update_page()

    @Slot(str)
    def _on_data_failed(self, message: str) -> None:
        if self.models.model is None and self.dataset is None:
            self.welcome.message.setText(message)  # the welcome page explains what to do
            self.statusBar().showMessage("no dataset found", 8000)
        elif self._data_requested:
            self.show_error("Dataset", message)
        else:
            # The quiet search at start-up: the map works without data, so only a hint.
            self.statusBar().showMessage("MNIST not found on this computer: hover thumbnails, the "
                                         "70,000-digit view and training need it (Data menu).")

    @Slot(str, int, int)
    def _on_download_progress(self, file: str, done: int, total: int) -> None:
        self.work_bar.setFormat(f"{file}: {done / 1e6:.1f} MB")
        self.work_bar.setValue(int(1000 * done / total) if total else 0)

    @Slot(bool)
    def _on_data_busy(self, busy: bool) -> None:
        self.work_bar.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if busy:
            self.work_bar.setValue(0)
            self.work_bar.setFormat("loading data…")

    # =========================================================================== codes
    def _current_task(self, attr: str):
        """The signal's sender if it is still the task kept in ``attr`` (which is then cleared):
        results of a superseded or cancelled task are ignored."""
        task = self.sender()
        if task is None or task is not getattr(self, attr):
            return None
        setattr(self, attr, None)
        return task

    def set_map_all(self, all_digits: bool) -> None:
        self.map_all = bool(all_digits)
        self.map_set.setCurrentIndex(1 if self.map_all else 0)
        self.refresh_codes()

    def _map_source(self) -> tuple[np.ndarray, np.ndarray] | None:
        ds = self.dataset
        if ds is None:
            return None
        if self.map_all:
            return (np.concatenate([ds.train_images, ds.test_images]),
                    np.concatenate([ds.train_labels, ds.test_labels]))
        return ds.test_images, ds.test_labels

    def refresh_codes(self) -> None:
        """Re-encode the map's digits with the current model, off the GUI thread."""
        source = self._map_source()
        if source is None or self.models.model is None or self.closing:
            return
        if self._encode_task is not None:
            self._encode_task.cancel()
            self._encode_task = None
        images, labels = source
        stored = self.models.stored_test_codes(self.dataset.name)
        if (stored is not None and not self.map_all and len(stored[0]) == len(images)
                and np.array_equal(stored[1], labels)):
            # The codes saved with the model are this dataset's test digits: no need to encode.
            self.map_images = images
            self.map.set_codes(stored[0], labels, self.dataset.class_names)
            self.refresh_colouring()
            self.refresh_metrics()
            return
        task = self.runner.submit(_encode_chunks, self.models.model, images, on_done=self._on_codes,
                                  on_failed=self._on_codes_failed,
                                  on_progress=self._on_encode_progress)
        task.images, task.labels = images, labels
        self._encode_task = task
        self.statusBar().showMessage(f"encoding {len(images):,} digits…")

    @Slot(object)
    def _on_codes(self, codes: np.ndarray) -> None:
        task = self._current_task("_encode_task")
        if task is None:
            return
        self.map_images = task.images
        self.map.set_codes(codes, task.labels, self.dataset.class_names)
        self.refresh_colouring()
        self.refresh_metrics()
        self.statusBar().showMessage(f"{len(codes):,} digits on the map", 5000)

    @Slot(str)
    def _on_codes_failed(self, message: str) -> None:
        if self._current_task("_encode_task"):
            self.show_error("Encoding failed", message)

    @Slot(object)
    def _on_encode_progress(self, fraction: float) -> None:
        if self.sender() is self._encode_task:
            self.statusBar().showMessage(f"encoding digits… {100 * fraction:.0f} %")

    def _request_train_codes(self) -> None:
        """Encode the training digits in the background (once per model and dataset)."""
        if (self.train_codes is not None or self._train_codes_task is not None or self.closing
                or self.dataset is None or self.models.model is None or self.training.running):
            return
        self._train_codes_task = self.runner.submit(
            _encode_chunks, self.models.model, self.dataset.train_images,
            on_done=self._on_train_codes, on_failed=self._on_train_codes_failed)

    @Slot(object)
    def _on_train_codes(self, codes: np.ndarray) -> None:
        if self._current_task("_train_codes_task"):
            self.train_codes = codes
            self.update_drawing()

    @Slot(str)
    def _on_train_codes_failed(self, message: str) -> None:
        if self._current_task("_train_codes_task"):
            self.show_error("Encoding the training digits failed", message)

    def _forget_train_codes(self) -> None:
        if self._train_codes_task is not None:
            self._train_codes_task.cancel()
        self._train_codes_task = None
        self.train_codes = None

    @Slot()
    def update_drawing(self) -> None:
        """Preprocess the pad, reconstruct it, place its code on the map, find its neighbours."""
        self._draw_timer.stop()
        panel = self.draw_panel
        if self.models.model is None or self.closing:
            return
        if panel.pad.is_empty:
            self._show_no_drawing()
            return
        try:
            pre = preprocess(panel.pad.ink())
        except EmptyDrawingError:
            self._show_no_drawing()
            return
        z, reconstruction = self.models.reconstruct(pre.image)
        self.drawn_z = z
        panel.show_result(pre, reconstruction, z)
        self.map.set_drawn_marker((float(z[0]), float(z[1])))
        if self.dataset is None:
            panel.show_neighbours(None, [], "load a dataset to see the nearest training digits")
            return
        if self.train_codes is None:
            self._request_train_codes()
            panel.show_neighbours(None, [], "finding the nearest training digits…" if
                                  not self.training.running else "neighbours appear after training")
            return
        idx = knn_indices(self.train_codes, z[None], k=5)[0]
        self.drawn_neighbours = idx
        labels = self.dataset.train_labels[idx]
        names = self.dataset.class_names
        winner = int(vote(labels[None], len(names))[0])
        panel.show_neighbours(self.dataset.train_images[idx], [names[i] for i in labels],
                              f"their vote: <b>{names[winner]}</b>")

    def _show_no_drawing(self) -> None:
        self.drawn_z = None
        self.drawn_neighbours = None
        self.draw_panel.show_empty()
        self.map.set_drawn_marker(None)

    @Slot()
    def _on_model_changed(self) -> None:
        try:
            self.timeline = Timeline.from_extras(self.models.extras, self.models.model.config)
        except CAEError as exc:
            self.timeline = Timeline()
            self.show_error("Training timeline", str(exc))
        self._update_timeline_controls()
        self._update_page()
        # The first decode builds the CPU kernels (~50 ms): do it now, not on the user's click.
        QTimer.singleShot(0, lambda: self.models.model is not None and self.models.decode_one(0.0, 0.0))
        self._forget_train_codes()
        self.update_interpolation()
        stored = self.models.stored_test_codes()
        if self.dataset is None and stored is not None:
            # A map at once, before any dataset is found (no hover images until then).
            names = tuple(self.models.metadata.get("class_names") or
                          (str(i) for i in range(int(stored[1].max()) + 1)))
            self.map_images = None
            self.map.set_codes(stored[0], stored[1], names)
        self.refresh_codes()
        self.update_drawing()
        if self.current_z is not None:
            self.request_decode(*self.current_z)

    # =========================================================================== explore
    @Slot(float, float)
    def request_decode(self, x: float, y: float) -> None:
        """Decode now if idle, else at the next display tick (drags coalesce to <= 60 Hz)."""
        self._pending_z = (x, y)
        if not self._decode_timer.isActive():
            self._decode_pending()

    @Slot()
    def _decode_pending(self) -> None:
        if self._pending_z is None or self.models.model is None:
            return
        x, y = self._pending_z
        self._pending_z = None
        t0 = time.perf_counter()
        image = self.models.decode_one(x, y)
        self.last_decode_ms = 1e3 * (time.perf_counter() - t0)
        self.decode_count += 1
        now = time.perf_counter()
        self._decode_times = [t for t in self._decode_times if now - t < 1.0] + [now]
        self.current_z = (x, y)
        self.decoded_view.set_image(image)
        self.map.set_marker(x, y)
        self.z_label.setText(f"z = ({x:.3f}, {y:.3f})")
        self.coords_label.setText(f"z1 {x:+.3f}  z2 {y:+.3f}  ·  decode {self.last_decode_ms:.1f} ms"
                                  f"  ·  {len(self._decode_times)} decodes/s")
        self._decode_timer.start()
        self.decoded.emit(x, y)

    @Slot(float, float)
    def nudge(self, fx: float, fy: float) -> None:
        """Move the decoded point by a fraction of the visible width/height (arrow keys)."""
        if self.current_z is None:
            return
        x0, x1, y0, y1 = self.map.visible_rect()
        self.request_decode(self.current_z[0] + fx * (x1 - x0), self.current_z[1] + fy * (y1 - y0))

    def go_to_typed_z(self) -> bool:
        """Decode the z typed into the two fields; anything but two finite numbers is refused."""
        try:
            z = (float(self.z1_edit.text()), float(self.z2_edit.text()))
        except ValueError:
            self.show_error("Not a latent point", "Type two numbers, z1 and z2 (e.g. 0.5 and -1.2).")
            return False
        if not all(np.isfinite(z)):
            self.show_error("Not a latent point", "z1 and z2 must be finite numbers (not NaN or inf).")
            return False
        self._decode_timer.stop()
        self.request_decode(*z)
        return True

    # =========================================================================== interpolation
    def set_endpoint(self, end: str, source: str) -> bool:
        """Set interpolation end ``end`` from the hovered digit (else the decoded point), the
        decoded point or the drawn digit."""
        z = None
        if source == "hovered" and 0 <= self.map.hover_index < len(self.map.codes):
            z = self.map.codes[self.map.hover_index]
        elif source in ("hovered", "decoded") and self.current_z is not None:
            z = np.asarray(self.current_z, np.float32)
        elif source == "drawn" and self.drawn_z is not None:
            z = self.drawn_z
        if z is None:
            what = {"drawn": "draw a digit first", "decoded": "click on the map first",
                    "hovered": "hover over a digit or click on the map first"}[source]
            self.statusBar().showMessage(f"cannot set {end}: {what}", 5000)
            return False
        self.endpoints[end] = np.array(z, np.float32)
        self.interp_panel.set_endpoints(self.endpoints["A"], self.endpoints["B"])
        self.update_interpolation()
        return True

    @Slot()
    def update_interpolation(self) -> None:
        a, b = self.endpoints["A"], self.endpoints["B"]
        if a is None or b is None or self.models.model is None:
            return
        zs = path_points(a, b, self.interp_panel.steps.value())
        self.interp_panel.set_result(zs, self.models.decode(zs))
        self.map.set_path(zs)

    def _export_problem(self, problem: str) -> bool:
        """Show what went wrong with an export (empty: nothing did)."""
        if problem:
            self.show_error("Could not export", problem)
        return not problem

    # =========================================================================== colouring
    @Slot()
    def refresh_colouring(self) -> None:
        """Colour the map's points by the chosen quantity, computed off the GUI thread."""
        mode = self.colour_by.currentData()
        if self._colour_task is not None:
            self._colour_task.cancel()
            self._colour_task = None
        if mode == "class" or self.dataset is None or self.map_images is None or self.closing:
            self.map.set_colouring("class")
            if mode != "class" and self.dataset is None:
                self.statusBar().showMessage("colouring by error or vote needs the dataset", 5000)
            return
        if self.training.running:
            self.map.set_colouring("class")
            self.statusBar().showMessage("colouring by error or vote is available after training", 5000)
            return
        ds = self.dataset
        n_train = len(ds.train_images)
        # In the 70,000 view the first 60,000 points are the training digits themselves.
        self_index = (np.concatenate([np.arange(n_train), np.full(len(ds.test_images), -1)])
                      if len(self.map.codes) == n_train + len(ds.test_images)
                      else np.full(len(self.map.codes), -1))
        self._colour_task = self.runner.submit(
            _colour_values, copy.deepcopy(self.models.model), mode, self.map_images, self.map.labels,
            self.map.codes, ds.train_images, ds.train_labels, self.train_codes, self_index,
            on_done=self._on_colour_values, on_failed=self._on_colour_failed)
        self._colour_task.mode = mode
        self.statusBar().showMessage("computing the colouring…")

    @Slot(object)
    def _on_colour_values(self, values: np.ndarray) -> None:
        task = self._current_task("_colour_task")
        if task is None:
            return
        if len(values) == len(self.map.codes):
            self.map.set_colouring(task.mode, values)
            what = ("mean error %.4f" % float(values.mean()) if task.mode == "error"
                    else f"{int(values.sum()):,} of {len(values):,} points voted wrong")
            self.statusBar().showMessage(what, 8000)

    @Slot(str)
    def _on_colour_failed(self, message: str) -> None:
        if self._current_task("_colour_task"):
            self.show_error("Colouring failed", message)

    # =========================================================================== metrics
    def refresh_metrics(self, quick: bool = False) -> None:
        """Evaluate the current model on the dataset off the GUI thread (a copy of the model)."""
        if self._metrics_task is not None:
            self._metrics_task.cancel()
            self._metrics_task = None
        if self.dataset is None or self.models.model is None or self.closing:
            self.metrics_panel.clear("metrics need a model and the dataset")
            return
        source = ("while training (2,000 test / 10,000 training digits)" if quick else
                  f"{self.models.path.name if self.models.path else 'current model'} on "
                  f"{self.dataset.name}")
        task = self.runner.submit(_metrics, copy.deepcopy(self.models.model), self.dataset,
                                  self.train_codes, quick, on_done=self._on_metrics,
                                  on_failed=self._on_metrics_failed)
        task.source = source
        self._metrics_task = task

    @Slot(object)
    def _on_metrics(self, metrics: dict) -> None:
        task = self._current_task("_metrics_task")
        if task is not None and self.dataset is not None:
            self.metrics_panel.show_metrics(metrics, self.dataset.class_names, task.source)

    @Slot(str)
    def _on_metrics_failed(self, message: str) -> None:
        if self._current_task("_metrics_task"):
            self.metrics_panel.clear(f"metrics failed: {message}")

    # =========================================================================== timeline
    def _update_timeline_controls(self, restart: bool = True) -> None:
        """Fit the slider to the timeline; ``restart`` (a new timeline) puts it on the last
        epoch, else it stays where the user is looking unless that was the last epoch."""
        n = len(self.timeline)
        for action in self.timeline_actions:
            action.setVisible(n > 1)
        slider = self.timeline_slider
        following = restart or slider.value() >= slider.maximum()
        slider.blockSignals(True)
        slider.setRange(0, max(n - 1, 0))
        if following:
            slider.setValue(max(n - 1, 0))
        slider.blockSignals(False)
        if n:
            self.timeline_label.setText(f"{self.timeline.epochs[-1]} (now)")

    @Slot(int)
    def show_epoch(self, index: int) -> None:
        """Show epoch ``index`` of the timeline: its codes on the map, its decoder for clicks.
        The last position is the current model."""
        if not (0 <= index < len(self.timeline)) or self.models.model is None:
            return
        last = index == len(self.timeline) - 1
        epoch = self.timeline.epochs[index]
        self.timeline_label.setText(f"{epoch} (now)" if last else str(epoch))
        if last and not self.training.running:
            self.models.set_decoder_override(None)
            self.refresh_codes()
        else:
            self.models.set_decoder_override(self.timeline.model_at(index, self.models.model.config))
            codes = self.timeline.codes[index]
            if self.dataset is not None and len(codes) <= len(self.dataset.test_images):
                self.map_images = self.dataset.test_images[:len(codes)]
            names = self.dataset.class_names if self.dataset else self.map.class_names
            self.map.set_codes(codes, self.timeline.labels, names)
        if self.current_z is not None:
            self.request_decode(*self.current_z)
        self._schedule_mosaic()
        self.update_interpolation()

    # =========================================================================== mosaic
    def set_mosaic_enabled(self, enabled: bool) -> None:
        if self.mosaic_action.isChecked() != enabled:
            self.mosaic_action.setChecked(enabled)  # re-enters through toggled
            return
        if enabled:
            self.refresh_mosaic()
        else:
            if self._mosaic_task is not None:
                self._mosaic_task.cancel()
                self._mosaic_task = None
            self._batch_decoder = None
            self.map.set_mosaic(None)

    @Slot()
    def _schedule_mosaic(self) -> None:
        if self.mosaic_action.isChecked():
            self._mosaic_timer.start()

    @Slot()
    def refresh_mosaic(self) -> None:
        """Decode an n x n grid over exactly the visible region, in one batch, off the GUI thread
        (on a copy of the model, so training snapshots can update the GUI's copy meanwhile)."""
        if not self.mosaic_action.isChecked() or self.models.model is None or self.closing:
            return
        if self._mosaic_task is not None:
            self._mosaic_task.cancel()
        rect = self.map.visible_rect()
        n = self.mosaic_size.value()
        generation = self.models.generation
        if self._batch_decoder_generation != generation:
            self._batch_decoder = None  # other weights now: let its matrices go
        decoder = self._batch_decoder
        task = self.runner.submit(_mosaic_task, decoder or copy.deepcopy(self.models.decoding_model),
                                  rect, n, on_done=self._on_mosaic, on_failed=self._on_mosaic_failed)
        task.rect, task.n, task.generation = rect, n, generation
        self._mosaic_task = task

    @Slot(object)
    def _on_mosaic(self, result: tuple[np.ndarray, BatchDecoder]) -> None:
        task = self._current_task("_mosaic_task")
        if task is None or not self.mosaic_action.isChecked():
            return
        image, decoder = result
        if task.generation == self.models.generation:
            self._batch_decoder, self._batch_decoder_generation = decoder, task.generation
        self.map.set_mosaic(image, task.rect)
        self.mosaic_n = task.n

    @Slot(str)
    def _on_mosaic_failed(self, message: str) -> None:
        if self._current_task("_mosaic_task"):
            self.show_error("Decoded-image map failed", message)

    @Slot(int)
    def _on_hover(self, index: int) -> None:
        if index < 0 or self.map_images is None or index >= len(self.map_images):
            self.hover_view.set_image(None)
            self.hover_label.setText("hover over a point")
            return
        self.hover_view.set_image(self.map_images[index] / 255.0)
        label = int(self.map.labels[index])
        names = self.map.class_names
        name = names[label] if label < len(names) else str(label)
        self.hover_label.setText(f"label {name} · index {index}")

    # =========================================================================== training
    @Slot()
    def start_training(self) -> None:
        if self.training.running:
            return
        if self.dataset is None:
            self.show_error("No dataset", "Load a dataset first (Data menu): training needs images.\n"
                            + not_found_message("mnist"))
            return
        try:
            device_probe = self.training_panel.config()
            snapshot_size = 10000 if device_probe.device.startswith("cuda") else 2000
            config = self.training_panel.config(snapshot_every_s=SNAPSHOT_EVERY_S,
                                                snapshot_size=snapshot_size)
            if self.training_panel.continue_training.isChecked() and self.models.model is not None:
                model = copy.deepcopy(self.models.model)
            else:
                model = build_model(seed=config.seed)
            self.training_panel.reset_curves()
            self._history = []
            self.timeline = Timeline()
            self.models.set_decoder_override(None)
            self._update_timeline_controls()
            for task in (self._encode_task, self._colour_task, self._mosaic_task):
                if task is not None:
                    task.cancel()  # their results would describe the model before training
            self._encode_task = self._colour_task = None
            self.training.start(self.dataset, config, model)
        except CAEError as exc:
            self.show_error("Cannot train", str(exc))
            return
        self._train_config = config
        self.statusBar().showMessage(f"training on {self.training.trainer.device}…")

    @Slot(object)
    def _on_progress(self, p: Progress) -> None:
        self.training_panel.show_progress(p)

    @Slot(object)
    def _on_snapshot(self, snap: Snapshot) -> None:
        self._forget_train_codes()
        if snap.global_step == 0 or self._epoch_ended:  # the start, or an epoch's end
            self._epoch_ended = False
            self.timeline.add(snap.epoch, snap.codes, snap.labels, snap.model_state)
            self._update_timeline_controls(restart=False)
        if self.models.model is not None:
            self.models.update_weights(snap.model_state)
        scrubbing = self.timeline_slider.value() < self.timeline_slider.maximum()
        if self.dataset is not None and not scrubbing:
            self.map_images = self.dataset.test_images[:len(snap.codes)]
            self.map.set_codes(snap.codes, snap.labels, self.dataset.class_names,
                               fit=snap.global_step == 0)
        if self.current_z is not None:
            self.request_decode(*self.current_z)
        if self._metrics_due:
            self._metrics_due = False
            self.refresh_metrics(quick=True)

    @Slot(object)
    def _on_epoch(self, e: EpochEnd) -> None:
        self._metrics_due = True
        self._epoch_ended = True
        self.training_panel.show_epoch(e)
        self._history.append({"epoch": e.epoch, "train_loss": e.train_loss,
                              "test_loss": e.test_loss, "seconds": e.seconds})

    def _adopt_trained(self, state: dict, extra: dict) -> None:
        if self.closing:
            return
        model = CAE(self.models.model.config if self.models.model else None)
        model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
        cfg = self._train_config
        meta = {"dataset": self.dataset.name if self.dataset else "",
                "class_names": list(self.dataset.class_names) if self.dataset else [],
                "train_config": {k: getattr(cfg, k) for k in cfg.__dataclass_fields__},
                "history": list(self._history), **extra}
        self.dirty = True
        self.models.set_model(model, meta, None, trained=True, extras=self.timeline.to_extras())

    @Slot(object, object)
    def _on_training_finished(self, rec: Finished, state: dict) -> None:
        text = (f"stopped after {rec.epochs_done} epoch(s)" if rec.stopped
                else f"finished {rec.epochs_done} epoch(s)") + f" in {rec.seconds:.0f} s"
        self.training_panel.show_finished(text)
        self.statusBar().showMessage("training " + text, 10000)
        self._adopt_trained(state, {"epochs_done": rec.epochs_done, "stopped_early": rec.stopped})

    @Slot(str, object)
    def _on_training_failed(self, message: str, state: dict) -> None:
        self.training_panel.show_finished("training failed")
        self.show_error("Training failed", message)
        if state:
            self._adopt_trained(state, {"note": "last good weights of a failed run"})

    # =========================================================================== files
    def open_model(self, path: str | None = None) -> bool:
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, "Open model", "",
                                                  "Models (*.safetensors);;All files (*)")
            if not path:
                return False
        if self.training.running:
            self.show_error("Training is running", "Stop training before opening another model.")
            return False
        try:
            self.models.load(path)
        except CAEError as exc:
            self.show_error("Could not open the model", str(exc))
            return False
        self.dirty = False
        self._remember_model(path)
        self._update_page()
        self._follow_model_dataset()
        return True

    def save_model(self, path: str | None = None) -> bool:
        if self.models.model is None:
            return False
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Save model", "model.safetensors",
                                                  "Models (*.safetensors)")
            if not path:
                return False
        if not path.endswith(".safetensors"):
            path += ".safetensors"
        try:
            self.models.save(path)
        except CAEError as exc:
            self.show_error("Could not save the model", str(exc))
            return False
        self.dirty = False
        self._remember_model(path)
        self._update_page()
        self.statusBar().showMessage(f"saved {path}", 5000)
        return True

    def export_codes(self, path: str | None = None) -> bool:
        if len(self.map.codes) == 0:
            self.show_error("Nothing to export", "There are no latent codes on the map yet.")
            return False
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export latent codes", "codes.csv",
                                                  "CSV (*.csv);;NumPy (*.npy);;NumPy archive (*.npz)")
            if not path:
                return False
        try:
            write_codes(path, self.map.codes, self.map.labels)
        except CAEError as exc:
            self.show_error("Could not export", str(exc))
            return False
        self.statusBar().showMessage(f"wrote {len(self.map.codes):,} codes to {path}", 5000)
        return True

    def export_map_png(self, path: str | None = None) -> bool:
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, "Export map", "latent-map.png", "PNG (*.png)")
            if not path:
                return False
        if not self.map.grab().save(path, "PNG"):
            self.show_error("Could not export", f"could not write {path}")
            return False
        self.statusBar().showMessage(f"saved {path}", 5000)
        return True

    def _remember_model(self, path: str) -> None:
        path = str(Path(path).resolve())
        recent = [p for p in self.recent_models() if p != path]
        self.settings.setValue("recentModels", [path, *recent][:MAX_RECENT])
        self.settings.setValue("lastModel", path)
        self._rebuild_recent_menu()

    def recent_models(self) -> list[str]:
        value = self.settings.value("recentModels", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()  # deletes the old actions: they belong to the menu
        for path in self.recent_models():
            action = QAction(path, self.recent_menu)
            action.triggered.connect(lambda checked=False, p=path: self.open_model(p))
            self.recent_menu.addAction(action)
        self.recent_menu.setEnabled(bool(self.recent_models()))

    # =========================================================================== lifecycle
    def _restore_settings(self) -> None:
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        state = self.settings.value("windowState")
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state)
        self._rebuild_recent_menu()

    def closeEvent(self, event) -> None:  # noqa: N802
        """Stop training, downloads and encodes, and wait for them: no thread outlives the window."""
        self.closing = True
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("windowState", self.saveState())
        self.settings.sync()
        self._decode_timer.stop()
        self.data.cancel()
        for task in (self._encode_task, self._mosaic_task, self._train_codes_task, self._colour_task,
                     self._metrics_task):
            if task is not None:
                task.cancel()
        self.training.shutdown(1500)
        self.runner.shutdown(1500)
        super().closeEvent(event)
