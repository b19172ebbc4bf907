"""The session: everything the window shows, in one object that emits a signal per kind of change.

It owns the background services (tasks, model, data, training) and holds the state: the dataset,
the points on the map (one immutable :class:`MapPoints`), the training digits' codes, the
timeline, the decoded and drawn codes, the interpolation end points and whether the model has
unsaved changes.  Controllers change it through its methods and redraw from its signals; it
never touches a widget, so it can be driven and tested without a window.
"""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, QObject, Signal

from cae.bundled import bundled_model_path
from cae.checkpoint import Checkpoint, load_checkpoint
from cae.data import DATASETS, Dataset, dataset_title, not_found_message, user_cache_dir
from cae.errors import CAEError, DataError
from cae.metrics import evaluate
from cae.model import CAE, CAEConfig
from cae.model_file import stopped_mid_epoch
from cae.timeline import Timeline

from . import autosave, gui_gc, torch_threads
from .data_service import DataService
from .model_service import ModelService
from .points import EMPTY_POINTS, MapPoints, encode_cached
from .tasks import LatestTasks, TaskRunner
from .training_run import TrainingRun
from .training_service import TrainingService


def _metrics(cancel, report, model: CAE, dataset: Dataset, train_codes: np.ndarray | None,
             quick: bool) -> dict:
    stop = lambda: cancel.cancelled  # noqa: E731
    if quick:  # a look after each epoch: 2,000 test digits voted by 10,000 training digits
        return evaluate(model, dataset, n_test=2000, n_train=10000, cancel=stop)
    return evaluate(model, dataset, train_codes=train_codes, cancel=stop)


class Session(QObject):
    """The app's one model of what is shown; see the module docstring."""

    modelChanged = Signal()  # another model: loaded, new, or adopted after training
    decoderChanged = Signal()  # the weights that decode changed (any model change, snapshot, scrub)
    datasetChanged = Signal(object)  # Dataset
    pointsChanged = Signal(object, bool)  # MapPoints, whether the view should frame them
    trainCodesReady = Signal()
    metricsReady = Signal(dict, str)  # metrics, what they describe
    metricsCleared = Signal(str)  # why there are none
    timelineChanged = Signal(bool)  # True: a new timeline (go to its end), False: an epoch added
    drawnChanged = Signal()  # the drawn digit's code (or none)
    endpointsChanged = Signal()
    dirtyChanged = Signal(bool)
    status = Signal(str, int)  # message, milliseconds to show it (0: until replaced)
    error = Signal(str, str)  # title, text

    def __init__(self, settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        torch_threads.use(1)  # the GUI thread never starts an OpenMP team: see app/torch_threads
        gui_gc.install(QCoreApplication.instance())  # no Qt object dies on a worker: app/gui_gc
        self.settings = settings
        self.runner = TaskRunner(self)
        self.tasks = LatestTasks(self.runner, self)
        self.models = ModelService(self)
        self.data = DataService(self.runner, self)
        self.training = TrainingService(self)

        self.dataset: Dataset | None = None
        self.points: MapPoints = EMPTY_POINTS
        # False: the test digits; True: training and test digits (as the user chose last time)
        self.map_all = str(settings.value("mapAll", "false")).lower() == "true"
        self.train_codes: np.ndarray | None = None  # training digits' codes, for neighbours
        self._metrics_waiting = False  # full metrics wait for the training digits' codes
        # The last full metrics, with the model weights and dataset they are of: showing
        # all digits or the test ones again changes neither (each took ~20 s on 2 cores).
        self._metrics_of: tuple[int, Dataset, dict] | None = None
        self.timeline = Timeline()
        self.epoch_index = -1  # the past timeline position shown; -1: now, wherever that is
        self.decoded_z: tuple[float, float] | None = None
        self.drawn_z: np.ndarray | None = None
        self.endpoints: dict[str, np.ndarray | None] = {"A": None, "B": None}
        self.dirty = False
        self.closing = False
        self.data_folder: str | None = None  # the folder asked for last (named in messages)
        self._data_requested = False
        self._data_name = "mnist"  # the dataset asked for last
        self._data_download = False  # ... and whether to download it
        self._data_failure = ""  # why the last dataset could not be loaded (none since)
        # Where a dataset asked to be downloaded was found instead, said again when the map's
        # encoding messages have replaced the first message.
        self._found_note: tuple[Dataset | None, str] = (None, "")

        self.models.modelChanged.connect(self._on_model_changed)
        self.models.weightsUpdated.connect(self.decoderChanged)
        self.data.loaded.connect(self._on_dataset_loaded)
        self.data.failed.connect(self._on_data_failed)
        self.training.runningChanged.connect(self.runner.set_training)
        self.run = TrainingRun(self)

    # =========================================================================== start-up
    def start(self, model_path: str | None = None, data_dir: str | None = None,
              dataset: str = "mnist", bundled: Path | None = None) -> None:
        """Load the model (given, last saved, or bundled) now and look for data in the background."""
        # A given model that cannot be opened is reported, and the usual start follows.
        candidates = [model_path, self.settings.value("lastModel", ""), bundled]
        for path in candidates:
            if path and Path(path).is_file():
                try:
                    self._warn(self.models.load(path))
                    break
                except CAEError as exc:
                    self.error.emit("Could not open the model", str(exc))
        self.look_for_data(data_dir, dataset)

    def look_for_data(self, data_dir: str | None = None, dataset: str = "mnist") -> None:
        """At start, for the model just opened: the data named, else the model's own dataset,
        else the folder used last time (whatever it holds), else ``dataset``."""
        if not data_dir and self.models.metadata.get("dataset") in DATASETS:
            dataset = self.models.metadata["dataset"]  # the data the model was trained on
        folder = data_dir or self.settings.value("dataFolder", "") or None
        if folder and Path(folder).is_dir() and dataset == "mnist":
            dataset = "auto"  # the folder used last time, whatever dataset it holds
        self.load_data(dataset, folder, requested=bool(data_dir))

    # =========================================================================== model
    def load_model(self, path: str | Path) -> bool:
        """Open a model file; a bad file is reported and changes nothing."""
        if self.training.running:
            self.error.emit("Training is running", "Stop training before opening another model.")
            return False
        try:
            ckpt = load_checkpoint(path)
            n, ds = ckpt.model.config.image_size, self.dataset
            if ds is not None and ds.image_size != n:
                raise DataError(f"{Path(path).name} reads {n} x {n} px images; {ds.title}'s are "
                                f"{ds.image_size} x {ds.image_size} px (the model loaded before "
                                "stays)")
            self.models.set_checkpoint(ckpt, path)
        except CAEError as exc:
            self.error.emit("Could not open the model", str(exc))
            return False
        self._warn(ckpt)
        self.set_dirty(False)
        self._follow_model_dataset()
        return True

    def _warn(self, ckpt: Checkpoint) -> None:
        """A file that loaded with a doubt (no integrity digest) says so, visibly."""
        for warning in ckpt.warnings:
            self.error.emit("Model file warning", warning)

    def save_model(self, path: str | Path) -> bool:
        try:
            self.models.save(path)
        except CAEError as exc:
            self.error.emit("Could not save the model", str(exc))
            return False
        self.set_dirty(False)
        autosave.clear()
        self.status.emit(f"saved {path}", 5000)
        return True

    def set_dirty(self, dirty: bool) -> None:
        if dirty != self.dirty:
            self.dirty = dirty
            self.dirtyChanged.emit(dirty)

    def discard_unsaved(self) -> None:
        """The user chose to throw the unsaved model away: it goes, with its autosave, and the
        map shows what it would without it, the dataset's bundled model (or a new one).  Kept
        on the map, a run started next would have gone back to it as "the previous model"."""
        self.set_dirty(False)
        autosave.clear()
        name = self.dataset.name if self.dataset is not None else "mnist"
        bundled = bundled_model_path(name) if name in DATASETS else None
        if bundled is None:
            self.models.new_model()
        elif self.models.path != bundled:
            try:
                self._warn(self.models.load(bundled))
            except CAEError:  # a damaged installation: a new model rather than none
                self.models.new_model()
        # The next start opens what is on the map now, not a file the user had moved on from.
        path = self.models.path
        self.settings.setValue("lastModel", str(path) if path is not None else "")

    def _on_model_changed(self) -> None:
        try:
            self.timeline = Timeline.from_extras(self.models.extras, self.models.model.config)
        except CAEError as exc:
            self.timeline = Timeline()
            self.error.emit("Training timeline", str(exc))
        self.epoch_index = -1
        self.timelineChanged.emit(True)
        self.forget_train_codes()
        self.tasks.cancel("metrics")  # the model before's, which would land under this one
        if self.has_endpoints and not self.run.adopting:
            # Interpolation ends are points of the previous model's latent space (a run's own
            # result is the weights they were set under, the run's last snapshot).
            self.endpoints = {"A": None, "B": None}
            self.endpointsChanged.emit()
        stored = self.models.stored_test_codes()
        if self.dataset is None and stored is not None:
            # A map at once, before any dataset is found (no hover images until then).
            names = tuple(self.models.metadata.get("class_names") or
                          (str(i) for i in range(int(stored[1].max()) + 1)))
            self.set_points(MapPoints(stored[0], stored[1], names, None, "stored"), fit=True)
        self.modelChanged.emit()
        self.decoderChanged.emit()
        # The metrics shown were the previous model's: gone at once, not when the new model's
        # map is ready (its encoding can take half a minute) and its metrics start.
        self.metricsCleared.emit("metrics need a model and the dataset" if self.dataset is None
                                 else "the metrics of this model follow once its map is ready")
        self.refresh_codes(fit=True)

    # =========================================================================== data
    def load_data(self, name: str = "mnist", folder: str | None = None, download: bool = False,
                  requested: bool = True) -> None:
        """Load (or download) a dataset in the background; ``requested`` is False for the quiet
        search at start-up, whose failure is a hint rather than an error."""
        if self.closing:
            return
        if self.training.running:
            self.error.emit("Training is running", "Stop training before changing the dataset.")
            return
        if download and self.dataset is not None and self.dataset.name == name:
            self.status.emit(f"{self.dataset.title} is already loaded, from "
                             f"{self.dataset.source}: nothing to download", 8000)
            return  # (a named dataset is loaded only when its checksums match)
        if folder is None and not download:
            folder = self.known_folder(name)
        what = dataset_title(name) if name in DATASETS else "the data"
        self.status.emit(f"downloading {what}…" if download else
                         f"loading {folder}…" if folder else f"looking for {what}…", 0)
        self._data_requested = requested
        self._data_name = name
        self._data_download = download
        self.data_folder = folder
        self.data.load(name, folder, download)

    def cancel_data_load(self) -> None:
        """Cancel: the load's "loading …" (a message that stays) gives way to what is loaded
        now (it had stayed after a Cancel, as if the load went on)."""
        if not self.data.busy:
            return
        self.data.cancel()
        self.status.emit("loading cancelled; " + (
            f"{self.dataset.title} stays loaded" if self.dataset is not None
            else "no data is loaded"), 8000)

    def known_folder(self, name: str) -> str | None:
        """The folder where dataset ``name`` was loaded from last time (still there), so a
        dataset found in a folder of the user's (``--data``, Choose data folder) is found again
        when the user switches back to it."""
        folder = self.settings.value(f"dataFolders/{name}", "") if name in DATASETS else ""
        return str(folder) if folder and Path(str(folder)).is_dir() else None

    def missing_data_message(self) -> str:
        """Why there is no dataset, naming every place searched (the requested folder too)."""
        if self.data.busy:
            return "The dataset is still loading; Train becomes available when it is ready."
        if self._data_failure:  # (a truncated file had been reported as "mnist was not found")
            return ("Load a dataset first (Data menu): training needs images. The last one "
                    f"could not be loaded:\n{self._data_failure}")
        return ("Load a dataset first (Data menu): training needs images.\n"
                + not_found_message("mnist", self.data_folder))

    def _follow_model_dataset(self) -> None:
        """A model trained on a named dataset brings that dataset's map (found quietly)."""
        wanted = self.models.metadata.get("dataset")
        if wanted in DATASETS and (self.dataset is None or self.dataset.name != wanted) \
                and not self.training.running:
            self.load_data(wanted, requested=False)

    def _on_dataset_loaded(self, dataset: Dataset) -> None:
        config = self.models.model.config if self.models.model is not None else CAEConfig()
        try:  # (images of another size: nothing this model, or a new one, could take in)
            config.check_images(dataset.train_images.shape)
        except DataError as exc:
            before = (f"{self.dataset.title} stays loaded" if self.dataset is not None
                      else "no data is loaded")
            self.error.emit("Cannot use this data",
                            f"{dataset.source or dataset.title}: {exc}; {before}.")
            return
        self.dataset = dataset
        self._data_failure = ""
        self.forget_train_codes()
        self.tasks.cancel("metrics")  # of the data before
        self._metrics_of = None  # (nor keep the data before alive)
        if dataset.source:
            self.settings.setValue("dataFolder", dataset.source)
            if dataset.name in DATASETS:
                self.settings.setValue(f"dataFolders/{dataset.name}", str(dataset.source))
        found = (self._data_download and dataset.source is not None
                 and Path(dataset.source) != user_cache_dir() / dataset.name)
        self._data_download = False
        here = (f" from {dataset.source} (already on this computer: nothing downloaded)"
                if found else "")  # (said again if a switch of model replaces this message)
        self._found_note = (dataset, here)
        self.status.emit(f"{dataset.title}: {len(dataset.train_images):,} training and "
                         f"{len(dataset.test_images):,} test images"
                         f"{here or f' from {dataset.source}'}", 8000)
        self.datasetChanged.emit(dataset)
        bundled = self._bundled_for(dataset.name)
        trained_on = self.models.metadata.get("dataset")
        if bundled is not None:  # a map at once, no training needed
            self._warn(self.models.load(bundled))
            self.status.emit(f"{dataset.title}{here}: with its bundled model (one of "
                             f"{dataset_title(trained_on)} would not make sense of it)", 10000)
        elif self.models.model is None:
            self.models.new_model()  # emits modelChanged -> codes
        else:
            if self.scrubbing:  # a past epoch's codes and decoder belong to the data before
                self.models.set_decoder_override(None)
                self.epoch_index = -1
                self.timelineChanged.emit(True)
                self.decoderChanged.emit()  # the decoded point and the drawing: the model's again
            self.refresh_codes(fit=len(self.points) == 0)

    def model_data_mismatch(self) -> str | None:
        """The dataset the model was trained on, as people write it, when that is another
        dataset (MNIST, Fashion-MNIST or a folder, by name) than the one loaded (None when they
        agree, when either is unknown, and while a run trains on this data: the map then shows
        the run's model)."""
        trained_on, ds = self.models.metadata.get("dataset"), self.dataset
        if self.models.model is None or ds is None or not trained_on \
                or trained_on == ds.name or self.training.running:
            return None
        return dataset_title(trained_on)

    def _bundled_for(self, dataset: str) -> Path | None:
        """The bundled model of ``dataset`` when the current model is another bundled one (never
        replacing a model of the user's): switching the dataset then switches the model too."""
        current = self.models.path
        if self.dirty or current is None or self.models.metadata.get("dataset") == dataset:
            return None
        bundled = {bundled_model_path(name) for name in DATASETS} - {None}
        wanted = bundled_model_path(dataset) if dataset in DATASETS else None
        return wanted if current in bundled and wanted in bundled else None

    def _on_data_failed(self, message: str) -> None:
        self._data_failure = message
        if self._data_requested or (self.models.model is None and self.dataset is None):
            name = self._data_name
            if name in DATASETS and message.startswith(f"{name} was not found"):
                # (it said only how to fetch it in a terminal)
                message += (f"\n\nIn this window: Data ▸ Download {dataset_title(name)}. "
                            + (f"{self.dataset.title} stays loaded." if self.dataset is not None
                               else ""))
            self.error.emit("Dataset", message)
        else:  # a quiet search (at start-up, or for an opened model's data): only a hint
            self.status.emit(self._not_found_hint(message), 0)

    def _not_found_hint(self, message: str) -> str:
        """What a quiet search that failed with ``message`` means for the user."""
        if self._data_name not in DATASETS:  # a folder's data: its own reason
            return message if self.dataset is not None else f"No dataset loaded: {message}"
        wanted = dataset_title(self._data_name)
        if self.dataset is not None:  # an opened model's dataset; the loaded one stays
            return (f"{wanted} (the data this model was trained on) not found on this computer: "
                    f"{self.dataset.title} stays loaded (Data menu to download or choose "
                    f"{wanted}).")
        noun = "digit" if self._data_name == "mnist" else "image"
        return (f"{wanted} not found on this computer: hover thumbnails, the 70,000-{noun} view "
                "and training need it (Data menu).")

    # =========================================================================== map points
    def set_points(self, points: MapPoints, fit: bool) -> None:
        self.points = points
        self.pointsChanged.emit(points, fit)

    def set_map_all(self, all_digits: bool) -> None:
        if bool(all_digits) != self.map_all:
            self.map_all = bool(all_digits)
            self.settings.setValue("mapAll", self.map_all)
            self.refresh_codes(fit=True)

    def refresh_codes(self, fit: bool = False) -> None:
        """Show the current model's codes of the dataset's digits (encoded off the GUI thread)."""
        ds, model = self.dataset, self.models.model
        if ds is None or model is None or self.closing or self.training.running:
            return
        if self.map_all:
            images = ds.all_images()
            labels = np.concatenate([ds.train_labels, ds.test_labels])
        else:
            images, labels = ds.test_images, ds.test_labels
        source = "all" if self.map_all else "test"
        stored = self.models.stored_test_codes(ds.name)
        if (stored is not None and not self.map_all and len(stored[0]) == len(images)
                and np.array_equal(stored[1], labels)):
            # The codes saved with the model are this dataset's test digits: no need to encode,
            # and an encoding still under way (of the data before) must not replace them.
            self.tasks.cancel("codes")
            self._found_note = (None, "")
            self.set_points(MapPoints(stored[0], labels, ds.class_names, images, source), fit)
            self.refresh_metrics()
            return
        generation = self.models.generation

        def done(codes: np.ndarray) -> None:
            if self.dataset is not ds or self.models.generation != generation:
                return  # superseded: another dataset or model is on the map by now
            self.set_points(MapPoints(codes, labels, ds.class_names, images, source), fit)
            if not self.map_all and self.models.metadata.get("dataset") in (None, "", ds.name):
                # Saved with the model: its own dataset's map at once next time (never another
                # dataset's codes under its name).
                self.models.extras.update(test_codes=codes, test_labels=labels.astype(np.uint8))
            found_in, note = self._found_note
            note, self._found_note = note if found_in is ds else "", (None, "")
            self.status.emit(f"{len(codes):,} {ds.noun} on the map{note and ','}{note}",
                             10000 if note else 5000)
            self.refresh_metrics()

        # The test digits' codes are exact (they are saved with a model); the 70,000-point view
        # takes the fast path (bf16 where the CPU has it natively, within ~1 % of the spread).
        self.tasks.submit("codes", encode_cached, copy.deepcopy(self.models.model), images,
                          "auto" if self.map_all else "fp32", on_done=done,
                          on_failed=lambda m: self.error.emit("Encoding failed", m),
                          on_progress=lambda f: self.status.emit(
                              f"encoding {len(images):,} {ds.noun}… {100 * f:.0f} %", 0))

    def request_train_codes(self) -> None:
        """Encode the training digits in the background (once per model and dataset), with the
        exact codes: they vote (metrics, the 5-NN colouring, a drawn digit's neighbours), and
        bf16 codes moved 0.5 % of the votes of the bundled model of the day (5-NN 0.665 -> 0.661)."""
        if (self.train_codes is not None or self.tasks.running("train_codes") or self.closing
                or self.dataset is None or self.models.model is None or self.training.running):
            return

        def done(codes: np.ndarray) -> None:
            self.train_codes = codes
            self.trainCodesReady.emit()
            if self._metrics_waiting:
                self.refresh_metrics()

        self.tasks.submit("train_codes", encode_cached, copy.deepcopy(self.models.model),
                          self.dataset.train_images, "fp32", on_done=done,
                          on_failed=lambda m: self.error.emit(
                              "Encoding the training digits failed", m))

    def forget_train_codes(self) -> None:
        self.tasks.cancel("train_codes")
        self.train_codes = None

    # =========================================================================== metrics
    def refresh_metrics(self, quick: bool = False) -> None:
        """Evaluate the current model on the dataset off the GUI thread (a copy of the model)."""
        if self.dataset is None or self.models.model is None or self.closing:
            self.tasks.cancel("metrics")
            self.metricsCleared.emit("metrics need a model and the dataset")
            return
        source = ("while training (2,000 test / 10,000 training digits)" if quick else
                  f"{self.models.path.name if self.models.path else 'the current model'} on "
                  f"{self.dataset.title}")
        weights = self.models.weights  # (a past epoch shown and back: the same figures)

        own = self.models.metadata.get("dataset") in (None, "", self.dataset.name)

        known = self._metrics_of
        if not quick and known and known[0] == weights and known[1] is self.dataset:
            self.tasks.cancel("metrics")
            self.metricsReady.emit(known[2], source)
            return
        dataset = self.dataset

        def done(metrics: dict) -> None:
            if not quick and self.models.weights == weights:
                self._metrics_of = (weights, dataset, metrics)
                if own:
                    self.models.metadata["metrics"] = metrics  # saved with the model
            self.metricsReady.emit(metrics, source)

        self.metricsCleared.emit(f"computing the metrics: {source}…")
        self._metrics_waiting = False
        if not quick and self.train_codes is None:
            # The training digits' codes vote here and for a drawing's neighbours: encoded once
            # (and cached on disk for the next start), not once for each.
            self.request_train_codes()
            if self.tasks.running("train_codes"):
                self._metrics_waiting = True
                return
        self.tasks.submit("metrics", _metrics, copy.deepcopy(self.models.model), self.dataset,
                          self.train_codes, quick, on_done=done,
                          on_failed=lambda m: self.metricsCleared.emit(f"metrics failed: {m}"))

    def known_metrics(self) -> dict | None:
        """The metrics computed in the window for the current model on the loaded dataset, once
        they are (not those saved with the model, which may describe another test set)."""
        known = self._metrics_of
        if known and known[0] == self.models.weights and known[1] is self.dataset:
            return known[2]
        return None

    # =========================================================================== explore state
    def set_decoded(self, z: tuple[float, float]) -> None:
        self.decoded_z = (float(z[0]), float(z[1]))

    def set_drawn(self, z: np.ndarray | None) -> None:
        self.drawn_z = None if z is None else np.array(z, np.float32)
        self.drawnChanged.emit()

    @property
    def has_endpoints(self) -> bool:
        """Whether an interpolation end (A or B) is set."""
        return any(z is not None for z in self.endpoints.values())

    def set_endpoint(self, end: str, z: np.ndarray) -> None:
        self.endpoints[end] = np.array(z, np.float32)
        self.endpointsChanged.emit()

    # =========================================================================== timeline
    @property
    def now_index(self) -> int:
        """The timeline position of the current model: its last epoch, or one past it when the
        weights have gone on from there (a run in the middle of an epoch, or one stopped
        there and kept), so that every epoch keeps a position of its own."""
        beyond = (self.run.in_epoch is not None if self.training.running
                  else stopped_mid_epoch(self.models.metadata) is not None)
        return len(self.timeline) - 1 + (beyond and len(self.timeline) > 0)

    def show_epoch(self, index: int) -> None:
        """Show position ``index`` of the timeline: an epoch's codes on the map and its decoder
        for decodes, or at :attr:`now_index` the current model (during a run, the weights
        being trained)."""
        if not (0 <= index <= self.now_index) or self.models.model is None:
            return
        now = index == self.now_index
        self.epoch_index = -1 if now else index  # (now moves on with a run)
        if now and self.training.running and self.run.live_points is not None:
            self.models.set_decoder_override(None)  # the weights being trained, as the map
            self.set_points(self.run.live_points, False)
        elif now and not self.training.running:
            self.models.set_decoder_override(None)
            self.refresh_codes()
        else:
            self.models.set_decoder_override(self.timeline.model_at(index, self.models.model.config))
            codes = self.timeline.codes[index]
            ds = self.dataset
            # The run's codes are of its own test images: the loaded ones only if they are those.
            own = ds is not None and self.model_data_mismatch() is None
            names = (ds.class_names if own else self.models.metadata.get("class_names")
                     or self.points.class_names)
            images = ds.test_images[:len(codes)] if own and len(codes) <= len(
                ds.test_images) else None
            self.set_points(MapPoints(codes, self.timeline.labels, names, images, "epoch"), False)
        self.decoderChanged.emit()

    @property
    def scrubbing(self) -> bool:
        """The user looks at a past epoch of the timeline."""
        return 0 <= self.epoch_index < self.now_index

    # =========================================================================== lifecycle
    def shutdown(self, timeout_ms: int = 1500) -> str:
        """Stop training, downloads and encodes, and wait for them; what outlived the wait
        ("" when every thread ended in time).  A stop takes effect between batches, so one long
        step (a batch of 65,536 on a CPU) can outlast it, as can a read the OS holds up (a file
        on a stalled network share): then :func:`app.main.exec_window` ends the process without
        waiting for it."""
        self.closing = True
        self.data.cancel()
        self.tasks.cancel()
        trained = self.training.shutdown(timeout_ms)
        tasks = self.runner.shutdown(timeout_ms)
        return ("" if trained and tasks else "a training step" if not trained
                else "a background task (loading data, encoding or an export)")
