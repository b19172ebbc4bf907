"""A training run in the window: the model it leaves (kept unsaved, or discarded to go back to
the previous one), its live snapshots on the map and timeline, and its autosave after every
epoch.  Part of the session (``session.run``); it touches no widget."""
from __future__ import annotations

import copy
import time

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal

from cae.errors import CAEError
from cae.model import CAE
from cae.model_file import StepLosses, model_file_contents
from cae.timeline import Timeline
from cae.train import EpochEnd, Finished, Snapshot, TrainConfig, build_model

from . import autosave
from .points import MapPoints


# The tasks that describe the model on the map (its codes, metrics, colours and pictures).
DESCRIBING = ("codes", "train_codes", "metrics", "colour", "mosaic", "density")


class TrainingRun(QObject):
    ended = Signal(object)  # Finished, or None when the run failed

    def __init__(self, session) -> None:
        super().__init__(session)
        self.session = session
        self._before_training: tuple | None = None  # the model to go back to if the run is discarded
        self._train_config: TrainConfig | None = None
        self._init: dict | None = None  # the metadata of the model a run continues, if it does
        self._history: list[dict] = []
        self._steps = StepLosses()  # the run's steps and training losses, for its file
        self._train_started = 0.0
        self._epoch_ended = False
        self._metrics_due = False
        self.adopting = False
        # The epoch under way while the map shows a snapshot from its middle (None: the map
        # shows an epoch's end, the start, or no run trains).
        self.in_epoch: int | None = None
        # The run's latest snapshot on the map, kept while the user looks at a past epoch: the
        # slider's last position ("now") shows it again.
        self.live_points: MapPoints | None = None
        t = session.training
        t.snapshot.connect(self._on_snapshot)
        t.progress.connect(lambda p: self._steps.add(p.global_step, p.steps_per_epoch, p.loss))
        t.epochEnded.connect(self._on_epoch)
        t.finished.connect(self._on_training_finished)
        t.failed.connect(self._on_training_failed)
        t.runningChanged.connect(self._on_running_changed)

    def start(self, config: TrainConfig, continue_current: bool) -> bool:
        """Train a new model (or the current one further) on the dataset, on a worker thread."""
        s = self.session
        if s.training.running:
            return False
        if s.dataset is None:
            s.error.emit("No dataset", s.missing_data_message())
            return False
        try:
            model = (copy.deepcopy(s.models.model) if continue_current and s.models.model
                     else build_model(seed=config.seed, weight_init=config.weight_init))
            # Work that describes the model before training would only compete for the CPU
            # (exports go on: they are files the user is waiting for).
            s.tasks.cancel(*DESCRIBING)
            s.training.start(s.dataset, config, model)
        except CAEError as exc:
            s.error.emit("Cannot train", str(exc))
            return False
        m = s.models
        self._before_training = (m.model, m.metadata, m.path, m.trained, m.extras, s.dirty)
        # A run that continues a trained model says so in its file, as `cae train --init` does.
        self._init = ({k: v for k, v in m.metadata.items() if k not in ("history", "note")}
                      if continue_current and m.model is not None and m.trained else None)
        if self._init is not None and m.path is not None:
            self._init["file"] = m.path.name
        # The GUI decodes with its own copy, which the run's snapshots update in place.
        s.models.set_model(copy.deepcopy(model), {"note": "training"}, None, trained=False)
        self._train_config = config
        self._history = []
        self._steps = StepLosses()
        self._train_started = time.perf_counter()
        s.timeline = Timeline()
        s.epoch_index = -1
        s.models.set_decoder_override(None)
        s.timelineChanged.emit(True)
        s.metricsCleared.emit("the model being trained: its metrics follow each epoch")
        return True

    def _on_snapshot(self, snap: Snapshot) -> None:
        s = self.session
        if s.closing:
            return  # a record still queued when the window closed
        s.forget_train_codes()
        boundary = snap.global_step == 0 or self._epoch_ended
        self.in_epoch = None if boundary else snap.epoch
        if boundary:  # the start, or an epoch's end
            s.timeline.add(snap.epoch, snap.codes, snap.labels, snap.model_state)
            if self._epoch_ended:  # a crash or a kill from here on loses at most this epoch
                self._epoch_ended = False
                self._autosave(snap.model_state)
        s.timelineChanged.emit(False)  # (mid-epoch, "now" is a position past the last epoch)
        s.models.update_weights(snap.model_state)
        if s.dataset is not None:
            images = s.dataset.test_images[:len(snap.codes)]
            self.live_points = MapPoints(snap.codes, snap.labels, s.dataset.class_names, images,
                                         "training")
            if not s.scrubbing:
                s.set_points(self.live_points, fit=snap.global_step == 0)
        if self._metrics_due:
            self._metrics_due = False
            s.refresh_metrics(quick=True)

    @property
    def epochs_done(self) -> int:
        """Epochs the current (or last) run finished: what its autosave holds."""
        return len(self._history)

    def _on_epoch(self, e: EpochEnd) -> None:
        self._metrics_due = True
        self._epoch_ended = True
        self._history.append({"epoch": e.epoch, "train_loss": e.train_loss,
                              "test_loss": e.test_loss, "seconds": e.seconds})

    def _model_file(self, state: dict, stopped: bool) -> tuple[CAE, dict, dict]:
        """The trained weights as a model, with the metadata and extras `cae train` would save."""
        s = self.session
        model = CAE(s.models.model.config if s.models.model else None)
        model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state.items()})
        trainer = s.training.trainer
        meta, extras = model_file_contents(
            model, s.dataset, self._train_config, history=list(self._history),
            epochs_done=len(self._history), stopped_early=stopped, steps=self._steps,
            wall_time_s=time.perf_counter() - self._train_started,
            device=str(trainer.device) if trainer else "cpu",
            precision=trainer.precision if trainer else "fp32",
            threads=trainer.threads if trainer else torch.get_num_threads(), encode=False)
        if self._init is not None:
            meta["init"] = self._init
        extras.update(s.timeline.to_extras())
        return model, meta, extras

    def snapshot_file(self) -> tuple[CAE, dict, dict]:
        """The model being trained as its file would hold it now (the run's recipe, the history
        of its finished epochs, its timeline), marked as a run under way: what a report exported
        mid-run describes (it had read "unsaved model, no recipe, no loss history")."""
        s = self.session
        state = {k: v.detach().cpu().numpy() for k, v in s.models.model.state_dict().items()}
        model, meta, extras = self._model_file(state, stopped=False)
        total = self._train_config.epochs if self._train_config else len(self._history)
        meta["under_way"] = f"epoch {len(self._history) + 1} of {total}"
        return model, meta, extras

    def _autosave(self, state: dict) -> None:
        """Write the run so far to the autosave file, off the GUI thread."""
        s = self.session
        stopped = self._train_config is None or len(self._history) < self._train_config.epochs
        model, meta, extras = self._model_file(state, stopped=stopped)
        s.tasks.submit("autosave", autosave.save_task, model, meta, extras, autosave.generation(),
                       on_failed=lambda m: s.status.emit(f"autosave failed: {m}", 8000))

    def autosave_kept(self) -> None:
        """A stopped run the user kept: autosaved as it stands (the last autosave was of its
        last finished epoch, or none), so a kill before Save loses nothing."""
        model = self.session.models.model
        if model is not None and self._train_config is not None:
            self._autosave({k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})

    def _adopt(self, state: dict, stopped: bool, note: str = "") -> None:
        """Make the trained weights the session's model: unsaved until the user saves it."""
        s = self.session
        model, meta, extras = self._model_file(state, stopped)
        if note:
            meta["note"] = note
        self.adopting = True  # the run's own result: its curves stay on show
        try:
            s.models.set_model(model, meta, None, trained=True, extras=extras)
        finally:
            self.adopting = False
        s.set_dirty(True)

    def _on_training_finished(self, rec: Finished, state: dict) -> None:
        s = self.session
        self._steps.steps_done = rec.steps  # (the last report may be a few steps before)
        if not s.closing:
            self._adopt(state, rec.stopped)
        self.ended.emit(rec)

    def _on_training_failed(self, message: str, state: dict) -> None:
        s = self.session
        s.error.emit("Training failed", message)
        if state and not s.closing:
            self._adopt(state, stopped=True, note="last good weights of a failed run")
        self.ended.emit(None)

    def _on_running_changed(self, running: bool) -> None:
        s = self.session
        if not running:  # the worker is gone: the map, metrics and neighbours catch up
            self.in_epoch = None
            self.live_points = None
            s.timelineChanged.emit(False)  # ("now" may be past the last epoch: a kept stop)
            s.refresh_codes(fit=True)

    def previous_model(self) -> str:
        """What discarding the run goes back to, in words (for the question after Stop)."""
        if self._before_training is None:
            return "the previous model"
        model, _, path, trained, _, _ = self._before_training
        if model is None or not trained:
            return "an untrained model"
        return path.name if path is not None else "the unsaved model from before"

    def discard_trained(self) -> None:
        """Go back to the model from before the run (the user chose not to keep it)."""
        s = self.session
        if self._before_training is None:
            return
        model, metadata, path, trained, extras, dirty = self._before_training
        self._before_training = None
        autosave.clear()
        if model is None:
            s.models.new_model()
        else:
            s.models.set_model(model, metadata, path, trained=trained, extras=extras)
        s.set_dirty(dirty)
