"""The training dock: settings, Train/Pause/Resume/Stop, progress and the loss curve.

It only shows state and emits the user's requests; the main window wires it to the services.
"""
from __future__ import annotations

import math
import os
import time
from collections import deque

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel,
                               QProgressBar, QPushButton, QVBoxLayout, QWidget)

from cae.train import RECIPES, EpochEnd, Progress, TrainConfig

from .dock_layout import grow_only
from .spin_box import DoubleSpinBox, SpinBox

DATASET_CHOICES = (("MNIST", "mnist"), ("Fashion-MNIST", "fashion-mnist"), ("Folder…", "folder"))
# (label, RECIPES name, what it does); the first is the default (docs/training.md has the probes).
RECIPE_CHOICES = (
    ("Best", "best", "The probes' winner: warm-up and cosine learning rate, batches of 64, an "
     "average of the weights, a loss on the image as shown"),
    ("Quick", "quick", "Best's settings for a short run"),
    ("Lecture", "lecture", "The lecture's plain recipe: Adam at a constant learning rate, batches "
     "of 50, the plain MSE, TensorFlow's initialisation; train it, save it, and open it and a "
     "Best model in turn (File ▸ Recent models) to compare the two maps"),
)


def device_choices() -> list[tuple[str, str]]:
    """(label, device string) for Auto, CPU and every accelerator torch can see."""
    choices = [("Auto", "auto"), ("CPU", "cpu")]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            choices.append((f"CUDA {i}: {torch.cuda.get_device_name(i)}", f"cuda:{i}"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        choices.append(("Apple MPS", "mps"))
    return choices


# A run whose steps come at under this share of its best pace while the machine has more work
# than cores is said to be slowed by other programs (1,000 img/s fell to 123, unexplained).
SLOWED = 0.6
PACE_WINDOW_S = 5.0  # the pace is measured over the last few seconds of reports
# A run with no step to report after this long counts the seconds, and says when other
# programs crowd the CPU (beside a terminal run it sat at "starting…" for a minute, unexplained).
STARTING_SAID_AFTER_S = 5.0
NO_STEPS = np.zeros((0, 2))


def cpu_crowded() -> bool:
    """More runnable work than cores (the 1-minute load average, where the system has one):
    the run's own threads count about one per core, so the excess is someone else's."""
    try:
        return os.getloadavg()[0] > (os.cpu_count() or 1) + 0.25
    except (AttributeError, OSError):  # (no load average on Windows)
        return False


def format_eta(seconds: float) -> str:
    """A duration as m:ss or h:mm:ss (shown as "... left": "ETA 18:55" read as a clock time)."""
    seconds = int(max(0, seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else \
        f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class TrainingPanel(QWidget):
    trainRequested = Signal()
    pauseRequested = Signal()
    resumeRequested = Signal()
    stopRequested = Signal()
    datasetChosen = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        form = QFormLayout()
        self.dataset = QComboBox()
        for label, name in DATASET_CHOICES:
            self.dataset.addItem(label, name)
        self.dataset.activated.connect(lambda _: self.datasetChosen.emit(self.dataset.currentData()))
        self.dataset.setToolTip("The images to train on and to show on the map")
        self.recipe = QComboBox()
        for i, (label, name, what) in enumerate(RECIPE_CHOICES):
            self.recipe.addItem(label, name)
            self.recipe.setItemData(i, what, Qt.ItemDataRole.ToolTipRole)
        self.recipe.setToolTip("How to train (the model is always the lecture's); choosing one "
                               "fills in its epochs, batch size and learning rate")
        self.epochs = SpinBox()
        self.epochs.setRange(1, 1000)
        self.epochs.setToolTip("Passes over the training images")
        self.batch_size = SpinBox()
        self.batch_size.setRange(1, 65536)
        self.batch_size.setToolTip("Images per optimisation step")
        self.lr = DoubleSpinBox()
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setToolTip("The learning rate (Best and Quick: its peak, after the warm-up)")
        self.recipe.currentIndexChanged.connect(self._fill_recipe)
        for box in (self.epochs, self.batch_size, self.lr):
            box.valueChanged.connect(self._mark_edited)
        self._fill_recipe()
        self.device = QComboBox()
        for label, dev in device_choices():
            self.device.addItem(label, dev)
        self.device.setToolTip("Where to train: Auto takes a GPU when there is one")
        form.addRow("Dataset", self.dataset)
        form.addRow("Recipe", self.recipe)
        form.addRow("Epochs", self.epochs)
        form.addRow("Batch size", self.batch_size)
        form.addRow("Learning rate", self.lr)
        form.addRow("Device", self.device)
        self.continue_training = QCheckBox("Continue from the current model")
        self.continue_training.setToolTip("Off: train a freshly initialised model")
        form.addRow("", self.continue_training)

        self.train_button = QPushButton("Train")
        self.train_tip = ("Train with these settings on a background thread; the map follows "
                          "the model as it learns")
        self.train_button.setToolTip(self.train_tip)
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.pause_button.setToolTip("Pause or resume the run")
        self.stop_button.setToolTip("End the run; you choose whether to keep what it learnt")
        self.train_button.clicked.connect(self.trainRequested)
        self.pause_button.clicked.connect(self._on_pause)
        self.stop_button.clicked.connect(self.stopRequested)
        buttons = QHBoxLayout()
        for b in (self.train_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setFormat("idle")
        self.progress.setTextVisible(True)
        # Under the bar, not in it: the bar's one line had no room left for it.
        self.slowed = QLabel("slowed: other programs are using the CPU")
        self.slowed.setWordWrap(True)
        self.slowed.setVisible(False)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setToolTip(
            "The test loss is what training minimises: the mean squared error of the model's raw "
            "output, which can stray outside [0, 1]. The Metrics tab's test MSE is of the images "
            "as shown, clamped to [0, 1], so it reads a little lower.")

        self.loss_plot = pg.PlotWidget(background="w")
        self.loss_plot.setMinimumHeight(140)
        grow_only(self.loss_plot)
        self.loss_plot.setVisible(False)  # empty axes would mean nothing: shown with the first loss
        self.loss_hint = QLabel("The loss curve appears here when training starts.")
        self.loss_hint.setWordWrap(True)
        pi = self.loss_plot.getPlotItem()
        pi.setLabel("bottom", "epoch")  # a run's too (fractions between), as a file's history
        pi.setLabel("left", "loss (MSE)")
        pi.getAxis("left").enableAutoSIPrefix(False)  # plain 0.04, not "40 (x0.001)"
        pi.getAxis("bottom").enableAutoSIPrefix(False)  # the first epoch: 0.25, not "250 (x0.001)"
        pi.addLegend(offset=(-4, 4), labelTextColor="k")
        self.train_curve = pi.plot([], [], pen=pg.mkPen("#0072B2", width=1.5), name="train")
        self.test_curve = pi.plot([], [], pen=pg.mkPen("#D55E00", width=2), symbol="o",
                                  symbolSize=6, symbolBrush="#D55E00", name="test")
        self.train_points: list[tuple[float, float]] = []  # (epochs done, loss)
        self.test_points: list[tuple[float, float]] = []
        self.last_step: tuple[int, int, int] | None = None  # (epoch, step, steps per epoch)
        self._reports: deque[tuple[float, int]] = deque()  # (time, global step), for the pace
        self._best_pace = 0.0  # steps a second, the run's best so far
        self._tick_major: int | None = None  # whole epochs between the axis's ticks, or auto
        self.stopping = False  # Stop was asked for; the bar says so until the run ends
        self._starting_since: float | None = None  # a run with no step reported yet: since when
        self._start_clock = QTimer(self)
        self._start_clock.setInterval(1000)
        self._start_clock.timeout.connect(self.tick_starting)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.slowed)
        layout.addWidget(self.status)
        layout.addWidget(self.loss_hint, 1, Qt.AlignmentFlag.AlignTop)  # the plot's place
        layout.addWidget(self.loss_plot, 1)
        self.set_running(False)

    # --------------------------------------------------------------------------- requests
    def config(self, **overrides) -> TrainConfig:
        """The recipe's settings with the dock's on top, as a TrainConfig (raises TrainingError
        for impossible values)."""
        return TrainConfig.recipe_config(
            self.recipe.currentData(), epochs=self.epochs.value(),
            batch_size=self.batch_size.value(), lr=float(self.lr.value()),
            device=self.device.currentData(), **overrides)

    def _fill_recipe(self) -> None:
        settings = RECIPES[self.recipe.currentData()]
        self.epochs.setValue(settings["epochs"])
        self.batch_size.setValue(settings["batch_size"])
        self.lr.setValue(settings["lr"])
        self._mark_edited()

    def _mark_edited(self) -> None:
        """"Best (edited)" while the epochs, batch size or learning rate differ from the
        recipe's: the rest of it (schedule, averaging, loss) still applies."""
        i = self.recipe.currentIndex()
        settings = RECIPES[RECIPE_CHOICES[i][1]]
        edited = [f"{text} {value:g} (its {settings[key]:g})" for key, text, value in (
            ("epochs", "epochs", self.epochs.value()),
            ("batch_size", "batch size", self.batch_size.value()),
            ("lr", "learning rate", round(self.lr.value(), 5))) if value != settings[key]]
        for j, (plain, _, tip) in enumerate(RECIPE_CHOICES):  # (another one edited before)
            self.recipe.setItemText(j, f"{plain} (edited)" if edited and j == i else plain)
            self.recipe.setItemData(j, f"{tip}; with {', '.join(edited)}"
                                    if edited and j == i else tip, Qt.ItemDataRole.ToolTipRole)

    def _on_pause(self) -> None:
        (self.pauseRequested if self.pause_button.text() == "Pause" else self.resumeRequested).emit()

    # --------------------------------------------------------------------------- display
    def set_running(self, running: bool) -> None:
        self.train_button.setEnabled(not running)
        self.pause_button.setEnabled(running)
        self.stop_button.setEnabled(running)
        self.pause_button.setText("Pause")
        for w in (self.dataset, self.recipe, self.epochs, self.batch_size, self.lr, self.device,
                  self.continue_training):
            w.setEnabled(not running)

    def show_stopping(self) -> None:
        """Stop was asked for: the run ends after the step under way, which on a busy CPU can
        take a while (Stop had shown nothing for 20 s)."""
        self.pause_button.setEnabled(False)
        self.stop_button.setEnabled(False)
        self.stopping = True  # (the reports still on their way leave it standing)
        self.progress.setFormat("stopping after the step under way…")

    def show_paused(self, paused: bool, at: tuple[int, int, int] | None = None) -> None:
        """Any pause (this button, the quit question): the button offers the way back, and the
        bar says where the run stands (``at``: (epoch, step, steps per epoch), else the last
        report's), with no rate or time left while nothing runs."""
        self.pause_button.setText("Resume" if paused else "Pause")
        self._reports.clear()  # the pace is measured afresh: a pause is no slowness
        self.slowed.setVisible(False)
        if self.last_step is None:
            self.progress.setFormat("paused" if paused else "resuming…")
            self._count_start(not paused)  # a pause is not a slow start
            return
        epoch, step, steps = at or self.last_step
        self.progress.setFormat(f"paused: epoch {epoch}, step {step}/{steps}" if paused
                                else f"epoch {epoch}, step {step}/{steps}  resuming…")

    def reset_curves(self, starting: bool = True) -> None:
        """A new run (or another model): no curves, progress or messages of the previous one."""
        self.stopping = False
        self.train_points, self.test_points = [], []
        self.last_step = None
        self._reports.clear()
        self._best_pace = 0.0
        self.slowed.setVisible(False)
        self.train_curve.setData([], [])
        self.train_curve.setSymbol(None)  # a run's curve: a report every few steps, no dots
        self.test_curve.setData([], [])
        self._epoch_ticks(0)  # automatic again
        self.loss_plot.getPlotItem().enableAutoRange(axis="x")
        self.progress.setValue(0)
        self.progress.setFormat("starting…" if starting else "")
        self._count_start(starting)
        self.status.setText("")
        self.loss_plot.setVisible(False)
        # (a run paused at its first report had been told the curve comes "when training starts")
        every = TrainConfig.report_every
        self.loss_hint.setText(f"The loss curve appears here after the run's first {2 * every} "
                               f"steps (a point every {every})." if
                               starting else "The loss curve appears here when training starts.")
        self.loss_hint.setVisible(True)

    def show_history(self, history: list, earlier: int = 0, step_losses: np.ndarray = NO_STEPS,
                     mid_epoch: tuple[int, int, int] | None = None) -> None:
        """The losses a model file keeps: how the model on the map was trained, until a new run
        draws its own curve.  ``history``: per epoch; ``step_losses``: the training loss every
        few steps ((N, 2): epochs, loss, as :func:`cae.model_file.step_points` reads them),
        drawn as the run drew it; ``earlier``: epochs of the model that run continued;
        ``mid_epoch``: (epoch, steps done, steps per epoch) of a run stopped in the middle of
        one.  Entries that are not numbers are left out (the file is the user's)."""
        rows = []
        for entry in history:
            try:
                rows.append((int(entry["epoch"]), float(entry["train_loss"]),
                             float(entry["test_loss"])))
            except (KeyError, TypeError, ValueError):
                continue
        rows = [r for r in rows if all(_plottable(v) for v in r[1:])]
        steps = [(float(e), float(v)) for e, v in step_losses]
        if not rows and len(steps) < 2:
            return
        pi = self.loss_plot.getPlotItem()
        if steps:  # the run's own curve, a point every few steps
            self.train_curve.setData(*zip(*steps))
        if rows:
            epochs, train, test = zip(*rows)
            if not steps:  # a dot per epoch: one epoch is one point, which a line would not show
                self.train_curve.setSymbol("o")
                self.train_curve.setSymbolSize(4)
                self.train_curve.setSymbolBrush("#0072B2")
                self.train_curve.setData(epochs, train)
            self.test_curve.setData(epochs, test)
        xs = [r[0] for r in rows] + [e for e, _ in steps]
        span = max(xs) - min(xs)
        self._epoch_ticks(span if steps else max(span, 1))
        if span == 0:  # one point has no width: the view kept the previous model's 40 epochs,
            pi.setXRange(xs[0] - 0.5, xs[0] + 0.5, padding=0)  # 40 overprinted ticks
        else:
            pi.enableAutoRange(axis="x")
        self.loss_plot.setVisible(True)
        self.loss_hint.setVisible(False)
        text = "1\u00a0epoch" if len(rows) == 1 else f"{len(rows)}\u00a0epochs"
        if mid_epoch is not None:
            epoch, done, per = mid_epoch
            text = (f"{text} and {done:,} of {per:,} steps of the next" if rows else
                    f"{done:,} of {per:,} steps of epoch\u00a0{epoch}") + " (stopped)"
        if earlier:
            text += f" after {earlier} earlier"
        # Unclamped, as the curve: Metrics' test MSE (of the image as shown) reads lower.
        self.status.setText(f"this model's training: {text}, last test\u00a0loss "
                            f"(unclamped)\u00a0{rows[-1][2]:.4f}" if rows else
                            f"this model's training: {text}; no test\u00a0loss (it is measured "
                            "at each epoch's end)")

    def _count_start(self, on: bool) -> None:
        self._starting_since = time.monotonic() if on else None
        (self._start_clock.start if on else self._start_clock.stop)()

    def tick_starting(self) -> None:
        """Each second before the run's first step is reported: after a few, how long it has
        been, and whether other programs crowd the CPU (the run's threads yield to them)."""
        if self._starting_since is None or self.stopping:
            return
        waited = time.monotonic() - self._starting_since
        if waited >= STARTING_SAID_AFTER_S:
            self.progress.setFormat(f"starting… {waited:.0f} s")
            self.slowed.setVisible(cpu_crowded())

    def show_progress(self, p: Progress) -> None:
        self.last_step = (p.epoch, p.step, p.steps_per_epoch)
        self._count_start(False)
        self.progress.setValue(int(1000 * p.global_step / max(p.total_steps, 1)))
        if not self.stopping and self.pause_button.text() == "Pause":  # (a report on its way
            # when the run paused leaves the pause said)
            self.progress.setFormat(f"epoch {p.epoch}, step {p.step}/{p.steps_per_epoch}  "
                                    f"{p.images_per_s:,.0f} img/s  {format_eta(p.eta_s)} left")
        self.slowed.setVisible(self._slowed(p.global_step))
        if _plottable(p.loss):
            self.train_points.append((p.global_step / max(p.steps_per_epoch, 1), p.loss))
            xs, ys = zip(*self.train_points)
            self.train_curve.setData(xs, ys)
            self._epoch_ticks(xs[-1] - xs[0])
            if len(xs) > 1:  # one point has no axes worth showing
                self.loss_plot.setVisible(True)
                self.loss_hint.setVisible(False)

    def _epoch_ticks(self, span: float) -> None:
        """Whole epochs on the loss curve's axis once it spans one (a 2-epoch run had read 1.0,
        1.5, 2.0), fractions of the first epoch before that."""
        major = max(1, math.ceil(span / 8)) if span >= 1 else None
        if major != self._tick_major:
            self._tick_major = major
            axis = self.loss_plot.getPlotItem().getAxis("bottom")
            axis.setTickSpacing(*(() if major is None else (major, 1)))

    def _slowed(self, global_step: int) -> bool:
        """Whether the steps now come much slower than at the run's best pace while the CPU has
        more work than cores: the run's figures alone (an ETA of 15 minutes for 2 epochs) did
        not say why."""
        now = time.monotonic()
        self._reports.append((now, global_step))
        while len(self._reports) > 2 and now - self._reports[1][0] >= PACE_WINDOW_S:
            self._reports.popleft()
        (t0, s0), (t1, s1) = self._reports[0], self._reports[-1]
        if t1 - t0 < PACE_WINDOW_S / 2:
            return False
        pace = (s1 - s0) / (t1 - t0)
        self._best_pace = max(self._best_pace, pace)
        return pace < SLOWED * self._best_pace and cpu_crowded()

    def show_epoch(self, e: EpochEnd) -> None:
        if _plottable(e.test_loss):
            self.test_points.append((e.epoch, e.test_loss))
            xs, ys = zip(*self.test_points)
            self.test_curve.setData(xs, ys)
        # No-break spaces keep each figure with its name and unit when the dock wraps the line.
        self.status.setText(f"epoch {e.epoch}: train\u00a0loss\u00a0{e.train_loss:.4f}, "
                            f"test\u00a0loss\u00a0{e.test_loss:.4f} ({e.seconds:.1f}\u00a0s)")

    def show_finished(self, text: str) -> None:
        """The run's outcome goes on the progress bar; the label keeps the last epoch's losses."""
        self.progress.setFormat(text)
        self._count_start(False)
        self.slowed.setVisible(False)


def _plottable(loss: float) -> bool:
    """What the loss curve shows: a NaN or an infinity (a diverged run) would squash every other
    point against the axis, and a loss at or below zero (an edited file) is no MSE."""
    return math.isfinite(loss) and loss > 0
