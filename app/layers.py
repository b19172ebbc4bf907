"""What the map shows and how: the session's points, the view that follows them, the colouring
(class, reconstruction error, wrong 5-NN vote), the decoded-image mosaic and the timeline slider.

The Colour box, the legend and the map are changed together here, so they always agree.
"""
from __future__ import annotations

import copy

import numpy as np
from PySide6.QtCore import QObject, QTimer, Slot

from cae.batch_decode import BatchDecoder
from cae.metrics import knn_predict_excluding_self, progress_part, reconstruction_errors
from cae.model import CAE
from cae.model_file import stopped_mid_epoch
from cae.mosaic import mosaic, square_rows

from .density import density_rgba, hex_rgb
from .latent_map import PALETTE, LatentMap
from .map_toolbar import MAP_SET_TIP, MapToolbar
from .points import MapPoints, encode_cached
from .session import Session

MOSAIC_DELAY_MS = 120  # recompute once panning or zooming pauses
DENSITY_CACHE = 8  # density images kept (views of the current codes)
DENSITY_DELAY_MS = 60  # a density image is rendered once the view rests this long


def _mosaic_task(cancel, report, decoder: BatchDecoder | CAE, rect: tuple,
                 shape: tuple[int, int]) -> tuple[np.ndarray | None, BatchDecoder]:
    """The mosaic, and the decoder it used (built here from a model copy when there was none
    for these weights, so the GUI can keep it for the next pan or zoom)."""
    if isinstance(decoder, CAE):
        decoder = BatchDecoder(decoder)
    return mosaic(decoder, *rect, *shape, cancelled=lambda: cancel.cancelled), decoder


def _colour_values(cancel, report, model: CAE, mode: str, points: MapPoints,
                   train_images: np.ndarray, train_labels: np.ndarray,
                   train_codes: np.ndarray | None, self_index: np.ndarray) -> np.ndarray:
    """Per-point reconstruction error, or whether the point's 5-NN vote (training digits, a digit
    never voting for itself) is wrong.  Both use exact codes, as the Metrics panel and ``cae
    evaluate`` do (the map's own codes may come from the faster bf16 encoder), through the code
    cache: the codes the metrics or the vote encoded serve the errors too."""
    if train_codes is None and (mode == "knn" or points.source == "all"):
        train_codes = encode_cached(cancel, progress_part(report, 0.0, 0.4), model, train_images,
                                    "fp32")
    own = points.images[len(train_images):] if points.source == "all" else points.images
    codes = encode_cached(cancel, progress_part(report, 0.4, 0.1), model, own, "fp32")
    if points.source == "all":  # the training digits, then the test digits: encode only these
        codes = np.concatenate([train_codes, codes])
    if mode == "error":
        return reconstruction_errors(model, points.images, codes, cancel=lambda: cancel.cancelled,
                                     progress=progress_part(report, 0.5, 0.5))
    return knn_predict_excluding_self(train_codes, train_labels, codes,
                                      self_index) != points.labels


def _density_task(cancel, report, codes: np.ndarray, labels: np.ndarray, shown: tuple,
                  palette: list, rect: tuple, width: int, height: int) -> np.ndarray:
    keep = np.isin(labels, shown)
    return density_rgba(codes[keep], labels[keep], palette, rect, width, height)


class LayersController(QObject):
    def __init__(self, session: Session, map_: LatentMap, bar: MapToolbar) -> None:
        super().__init__(session)
        self.session, self.map, self.bar = session, map_, bar
        self._decoder: tuple[int, BatchDecoder] | None = None  # the mosaic's, per generation
        self.mosaic_shape = (0, 0)  # tiles across and down in the mosaic shown
        self._out_of_view_said = False  # the status bar says the points are outside the view
        self._mosaic_timer = QTimer(self)
        self._mosaic_timer.setSingleShot(True)
        self._mosaic_timer.setInterval(MOSAIC_DELAY_MS)
        self._mosaic_timer.timeout.connect(self.refresh_mosaic)

        bar.fit_action.triggered.connect(self.fit_view)
        bar.map_set.activated.connect(lambda _: session.set_map_all(bar.map_set.currentData()))
        bar.colour_by.activated.connect(self._choose_colouring)
        bar.grey_action.toggled.connect(map_.set_grey_hidden)
        bar.mosaic_action.toggled.connect(self.set_mosaic_enabled)
        bar.points_action.toggled.connect(self.set_points_shown)
        bar.equal_action.setChecked(str(session.settings.value("equalAxes", "false")) == "true")
        map_.set_equal_axes(bar.equal_action.isChecked())
        bar.equal_action.toggled.connect(self.set_equal_axes)
        bar.mosaic_size.valueChanged.connect(lambda _: self._schedule_mosaic())
        bar.timeline_slider.valueChanged.connect(session.show_epoch)
        map_.viewChanged.connect(self._schedule_mosaic)
        map_.view_box.sigResized.connect(self._schedule_mosaic)  # rows for the new shape
        map_.densityWanted.connect(self._want_density)
        self._density_timer = QTimer(self)
        self._density_timer.setSingleShot(True)
        self._density_timer.setInterval(DENSITY_DELAY_MS)
        self._density_timer.timeout.connect(lambda: self.render_density(*self._density_wanted))
        self._density_wanted: tuple = ()
        self.colouring = "class"  # the user's choice of colouring (shown whenever it can be)
        self._density_cache: dict[tuple, np.ndarray] = {}  # per view, of the codes below
        self._density_of: np.ndarray | None = None
        map_.view_box.sigRangeChangedManually.connect(lambda *_: bar.follow_action.setChecked(False))

        session.pointsChanged.connect(self._on_points)
        session.decoderChanged.connect(self._schedule_mosaic)
        session.timelineChanged.connect(self._on_timeline)
        session.training.runningChanged.connect(lambda _: self._label_epoch())  # run over: no "in"
        session.datasetChanged.connect(self._on_dataset)
        session.run.ended.connect(lambda _: self.fit_view())
        self._on_timeline(True)

    # --------------------------------------------------------------------------- points
    @Slot(object, bool)
    def _on_points(self, points: MapPoints, fit: bool) -> None:
        if fit:
            self.bar.follow_action.setChecked(True)  # a new set of points: frame them
        follow = self.bar.follow_action.isChecked()
        self.map.set_codes(points.codes, points.labels, points.class_names, fit=fit, follow=follow)
        if not follow:
            self._say_if_out_of_view(points)
        self.bar.map_set.setCurrentIndex(1 if self.session.map_all else 0)
        self._name_the_set(points)
        self.refresh_colouring()

    def _say_if_out_of_view(self, points: MapPoints) -> None:
        """A view the user set by hand is kept, even when the new points (another epoch on the
        timeline) mostly lie outside it: then the status bar says how to see them."""
        if len(points) == 0:
            return
        x0, x1, y0, y1 = self.map.visible_rect()
        x, y = points.codes[:, 0], points.codes[:, 1]
        inside = int(np.count_nonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)))
        if inside < len(points) / 2:
            self._out_of_view_said = True
            self.session.status.emit(f"{len(points) - inside:,} of the {len(points):,} points are "
                                     "outside the view: Fit view (Ctrl+F) frames them", 8000)

    def _name_the_set(self, points: MapPoints) -> None:
        """While training, and on a past epoch of the timeline, the map shows a sample of the
        test digits: the choice says so, and waits."""
        s, bar, ds = self.session, self.bar.map_set, self.session.dataset
        live, past = points.source == "training", points.source == "epoch"
        bar.setEnabled(not (live or past))
        if live or past:
            noun = "digits" if ds is None else ds.noun
            other = s.model_data_mismatch() if past else None
            if other:  # a past epoch's codes are of the model's own data, not the loaded set
                noun = f"{other} test " + ("digits" if other == "MNIST" else "images")
            else:
                noun = f"test {noun}"
            epochs = s.timeline.epochs
            what = ("Live" if live else f"Epoch {epochs[s.epoch_index]}"
                    if s.scrubbing else "Timeline")
            bar.setItemText(bar.currentIndex(), f"{what}: {len(points):,} {noun}")
            bar.setToolTip("While training, the map follows this sample of the test set; the "
                           "full set comes back when the run ends" if live else
                           "The timeline keeps this sample of the test set for every epoch; at "
                           "the slider's right end (now) the set can be chosen again")
        elif ds is not None:
            self._on_dataset(ds)
            bar.setToolTip(MAP_SET_TIP)

    def fit_view(self) -> None:
        """Frame the points, and keep them framed as they move."""
        self.bar.follow_action.setChecked(True)
        self.map.fit_view()
        if self._out_of_view_said:  # the hint is answered: the points are in view
            self._out_of_view_said = False
            self.session.status.emit("", 0)

    @Slot(object)
    def _on_dataset(self, dataset) -> None:
        noun = dataset.noun
        n_test, n_all = len(dataset.test_images), len(dataset.test_images) + len(dataset.train_images)
        self.bar.map_set.setItemText(0, f"Test {noun} ({n_test:,})")
        self.bar.map_set.setItemText(1, f"All {noun} ({n_all:,})")
        # The set left on last time, already while its codes are encoded (70,000 take a while).
        self.bar.map_set.setCurrentIndex(1 if self.session.map_all else 0)

    # --------------------------------------------------------------------------- density
    @Slot(tuple, int, int)
    def _want_density(self, rect: tuple, width: int, height: int) -> None:
        """Debounced on purpose: while a pan goes on, the last image moves with the view, and
        one render follows when the view rests (a render per mouse move would queue up work)."""
        self._density_wanted = (rect, width, height)
        self._density_timer.start()

    def render_density(self, rect: tuple, width: int, height: int) -> None:
        """Render the density image of a large map for this view, off the GUI thread (kept per
        view and set of codes, so going back to a view shows it at once)."""
        if self.session.closing:
            return
        codes, labels = self.map.codes, self.map.labels
        if codes is not self._density_of:  # (held, so never mistaken for a later array)
            self._density_cache.clear()
            self._density_of = codes
        shown = tuple(c for c in range(len(self.map.scatters)) if self.map.class_visible(c))
        key = (rect, width, height, shown)
        if key in self._density_cache:
            self.map.set_density(self._density_cache[key], rect)
            return

        def done(image: np.ndarray) -> None:
            if codes is not self._density_of:
                return  # other codes came meanwhile
            if len(self._density_cache) >= DENSITY_CACHE:
                self._density_cache.pop(next(iter(self._density_cache)))
            self._density_cache[key] = image
            if codes is self.map.codes:
                self.map.set_density(image, rect)

        palette = [hex_rgb(PALETTE[c % len(PALETTE)]) for c in range(len(self.map.scatters))]
        self.session.tasks.submit("density", _density_task, codes, labels, shown, palette, rect,
                                  width, height, on_done=done)

    # --------------------------------------------------------------------------- colouring
    def _show_colouring(self, mode: str, values: np.ndarray | None = None) -> None:
        self.map.set_colouring(mode, values)
        self.bar.colour_by.setCurrentIndex(self.bar.colour_by.findData(mode))

    @Slot(int)
    def _choose_colouring(self, _index: int) -> None:
        self.colouring = self.bar.colour_by.currentData()
        self.refresh_colouring(asked=True)

    @Slot()
    def refresh_colouring(self, asked: bool = False) -> None:
        """Colour the map's points by the user's choice, computed off the GUI thread: by class
        where it cannot be had (no dataset, a run training), and the choice again when it can (a
        run had left the map coloured by class for good).  ``asked``: the user just chose it."""
        s = self.session
        mode = self.colouring
        stopped = s.tasks.running("colour")
        s.tasks.cancel("colour")
        problem = ("" if mode == "class" else
                   "colouring by error or vote needs the dataset" if s.points.images is None else
                   "colouring by error or vote comes back after training" if s.training.running
                   else "")
        if mode == "class" or problem:
            changed = self.map.colour_mode != "class"  # (said once, not at every re-plot)
            self._show_colouring("class")
            if (problem and (asked or changed)) or stopped:  # (nor a stopped one's progress)
                s.status.emit(problem or "coloured by class: the other colouring was stopped",
                              5000)
            return
        if self.map.colour_mode != mode:  # another colouring's colours and key would stand in
            self.map.set_colouring("class")  # for this one's while it is computed
        ds, points = s.dataset, s.points
        n_train = len(ds.train_images)
        # In the all-digits view the first points are the training digits themselves.
        self_index = (np.concatenate([np.arange(n_train), np.full(len(ds.test_images), -1)])
                      if points.source == "all" else np.full(len(points), -1))

        def done(values: np.ndarray) -> None:
            if s.points is not points:
                return
            self._show_colouring(mode, values)
            s.status.emit(f"mean error {float(values.mean()):.4f}" if mode == "error"
                          else f"{int(values.sum()):,} of {len(values):,} points voted wrong", 8000)

        what = (f"the reconstruction error of {len(points):,} {ds.noun}" if mode == "error"
                else f"the 5-NN votes of {len(points):,} {ds.noun}")

        def progress(f: float) -> None:
            if s.points is points:
                s.status.emit(f"colouring by {what}… {100 * f:.0f} %", 0)

        s.tasks.submit("colour", _colour_values, copy.deepcopy(s.models.model), mode, points,
                       ds.train_images, ds.train_labels, s.train_codes, self_index, on_done=done,
                       on_failed=lambda m: s.error.emit("Colouring failed", m),
                       on_progress=progress)
        progress(0.0)

    # --------------------------------------------------------------------------- timeline
    @Slot(bool)
    def _on_timeline(self, restart: bool) -> None:
        """Fit the slider to the timeline; it shows the session's epoch."""
        s, slider = self.session, self.bar.timeline_slider
        n = len(s.timeline)
        self.bar.timeline_bar.setVisible(n > 1)
        for action in self.bar.timeline_actions:
            action.setVisible(n > 1)
        slider.blockSignals(True)
        slider.setRange(0, max(s.now_index, 0))
        slider.setValue(s.epoch_index if s.epoch_index >= 0 else max(s.now_index, 0))
        slider.blockSignals(False)
        self._label_epoch()

    def _label_epoch(self) -> None:
        s = self.session
        if not len(s.timeline):  # (a discarded run, another model): nothing stale for the next
            self.bar.timeline_label.setText("")
        elif s.scrubbing:
            self.bar.timeline_label.setText(str(s.timeline.epochs[s.epoch_index]))
        elif s.now_index == len(s.timeline) - 1:  # the model is the last epoch's
            self.bar.timeline_label.setText(f"{s.timeline.epochs[-1]} (now)")
        elif s.training.running:
            self.bar.timeline_label.setText(f"now: in epoch {s.run.in_epoch}")
        else:
            stopped = stopped_mid_epoch(s.models.metadata)
            self.bar.timeline_label.setText(
                f"now: stopped in epoch {stopped[0]}, step {stopped[1]}/{stopped[2]}")

    # --------------------------------------------------------------------------- mosaic
    @property
    def batch_decoder(self) -> BatchDecoder | None:
        """The mosaic's decoder for the current weights, kept between pans and zooms."""
        return self._decoder[1] if self._decoder else None

    def set_mosaic_enabled(self, enabled: bool) -> None:
        if self.bar.mosaic_action.isChecked() != enabled:
            self.bar.mosaic_action.setChecked(enabled)  # re-enters through toggled
            return
        self.map.set_mosaic_shown(enabled)
        if enabled:
            self.refresh_mosaic()
        else:
            self.session.tasks.cancel("mosaic")
            self._decoder = None  # (it holds its own copy of the weights)
            self.map.set_mosaic(None)

    def set_points_shown(self, shown: bool) -> None:
        """P: the points off (the mosaic's tiles show whole) or back on; exports follow."""
        self.map.set_points_shown(shown)
        self.session.status.emit("Points shown" if shown else "Points hidden: P shows them again",
                                 2000 if shown else 6000)  # (the hint is not left standing)

    def set_equal_axes(self, equal: bool) -> None:
        """E: one latent unit as long on both axes (remembered), or each axis filling the plot."""
        self.map.set_equal_axes(equal)
        self.session.settings.setValue("equalAxes", "true" if equal else "false")
        if self.bar.follow_action.isChecked():
            self.map.fit_view()

    @Slot()
    def _schedule_mosaic(self) -> None:
        self._label_epoch()
        if self.bar.mosaic_action.isChecked():
            self._mosaic_timer.start()

    @Slot()
    def refresh_mosaic(self) -> None:
        """Decode a grid of square tiles, n across, over exactly the visible region, off the GUI
        thread (on a copy of the model, so training snapshots can update the GUI's copy
        meanwhile)."""
        s = self.session
        if not self.bar.mosaic_action.isChecked() or s.models.model is None or s.closing:
            return
        rect = self.map.visible_rect()
        box = self.map.view_box.sceneBoundingRect()  # square tiles on the screen
        n = self.bar.mosaic_size.value()
        shape = (n, square_rows(n, box.width(), box.height()))
        generation = s.models.generation
        if self._decoder is not None and self._decoder[0] != generation:
            self._decoder = None  # other weights now: let its matrices go
        decoder = self._decoder[1] if self._decoder else copy.deepcopy(s.models.decoding_model)

        def done(result: tuple[np.ndarray, BatchDecoder]) -> None:
            if not self.bar.mosaic_action.isChecked():
                return
            image, built = result
            if generation == s.models.generation:
                self._decoder = (generation, built)
            self.map.set_mosaic(image, rect)
            self.mosaic_shape = shape

        s.tasks.submit("mosaic", _mosaic_task, decoder, rect, shape, on_done=done,
                       on_failed=lambda m: s.error.emit("Decoded-image map failed", m))
