"""Training from the window: the dock's settings and buttons, progress, the loss curve, and what
happens to the model a run leaves behind (kept as an unsaved model, or discarded on Stop)."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Slot

from cae.model_file import epochs_trained, step_points, stopped_mid_epoch
from cae.train import Finished

from .session import Session
from .training_panel import TrainingPanel

SNAPSHOT_EVERY_S = 2.0  # the map re-plots this often while training (each costs an encode)
SNAPSHOT_SIZE = 1500  # test digits on the live map (all 10,000 on a GPU)
RECIPE_KEY = "training"  # the settings group of the dock's recipe, kept from run to run


def _epochs(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def _how_far(epochs_done: int, step: tuple[int, int, int] | None) -> str:
    """'after 2 epochs', or where inside an epoch a run stopped ('in epoch 1 at step 80/469')."""
    if step is not None and step[0] > epochs_done and 0 < step[1] < step[2]:
        return f"in epoch {step[0]} at step {step[1]}/{step[2]}"
    return f"after {_epochs(epochs_done)}"


class TrainingController(QObject):
    def __init__(self, session: Session, panel: TrainingPanel,
                 confirm_replace: Callable[[str], bool], ask_keep: Callable[[str], bool],
                 ask_stop: Callable[[str], str]) -> None:
        """``confirm_replace(what)`` asks to save or discard an unsaved model (False: cancel);
        ``ask_stop(text)``, at Stop, whether to keep, discard or continue the run; ``ask_keep
        (text)`` whether to keep the model of a run stopped otherwise."""
        super().__init__(session)
        self.session, self.panel = session, panel
        self.confirm_replace, self.ask_keep, self.ask_stop = confirm_replace, ask_keep, ask_stop
        self._stop_choice: str | None = None  # what the Stop question chose for the run's end
        t = session.training
        panel.trainRequested.connect(self.start)
        panel.pauseRequested.connect(t.pause)
        panel.resumeRequested.connect(t.resume)
        panel.stopRequested.connect(self.request_stop)
        panel.datasetChosen.connect(self._on_dataset_chosen)
        t.progress.connect(panel.show_progress)
        t.pausedChanged.connect(self._on_paused)
        t.epochEnded.connect(panel.show_epoch)
        t.runningChanged.connect(lambda _: self._update_enabled())
        session.data.busyChanged.connect(lambda _: self._update_enabled())
        session.datasetChanged.connect(self._on_dataset)
        session.modelChanged.connect(self._on_model_changed)
        session.data.failed.connect(lambda _: self._on_dataset(session.dataset))
        session.run.ended.connect(self._on_ended)
        self.choose_folder: Callable[[], None] = lambda: None  # set by the files controller
        self._restore_recipe()
        for signal in (panel.recipe.currentIndexChanged, panel.epochs.valueChanged,
                       panel.batch_size.valueChanged, panel.lr.valueChanged,
                       panel.device.currentIndexChanged):
            signal.connect(self._remember_recipe)
        self._update_enabled()

    def _restore_recipe(self) -> None:
        """The recipe, its edits and the device the user chose last time (they went back to
        Best, 40 epochs at every start); a value the settings hold but the dock cannot take
        (a GPU gone, a damaged entry) is left at the dock's default."""
        settings, p = self.session.settings, self.panel
        recipe = p.recipe.findData(settings.value(f"{RECIPE_KEY}/recipe", ""))
        if recipe < 0:
            return
        p.recipe.setCurrentIndex(recipe)  # (fills in the recipe's own values first)
        for key, box, kind in (("epochs", p.epochs, int), ("batch_size", p.batch_size, int),
                               ("lr", p.lr, float)):
            try:
                box.setValue(kind(settings.value(f"{RECIPE_KEY}/{key}", box.value())))
            except (TypeError, ValueError):
                continue
        device = p.device.findData(settings.value(f"{RECIPE_KEY}/device", ""))
        if device >= 0:
            p.device.setCurrentIndex(device)

    def _remember_recipe(self) -> None:
        p, settings = self.panel, self.session.settings
        for key, value in (("recipe", p.recipe.currentData()), ("epochs", p.epochs.value()),
                           ("batch_size", p.batch_size.value()), ("lr", float(p.lr.value())),
                           ("device", p.device.currentData())):
            settings.setValue(f"{RECIPE_KEY}/{key}", value)

    def _update_enabled(self) -> None:
        s = self.session
        self.panel.set_running(s.training.running)
        if s.data.busy and not s.training.running:
            self.panel.train_button.setEnabled(False)
            self.panel.train_button.setToolTip("The dataset is still loading")
        else:  # (an empty tooltip here had wiped Train's own for good)
            self.panel.train_button.setToolTip(self.panel.train_tip)

    @Slot()
    def start(self) -> bool:
        s = self.session
        if s.training.running:
            return False
        if s.data.busy:
            s.status.emit("the dataset is still loading: Train is available when it is ready", 5000)
            return False
        if s.dataset is None:
            s.error.emit("No dataset", s.missing_data_message())
            return False
        continuing = self.panel.continue_training.isChecked() and s.models.model is not None
        if not continuing and not self.confirm_replace("start a new training run"):
            return False
        try:
            device = self.panel.config().device
            config = self.panel.config(snapshot_every_s=SNAPSHOT_EVERY_S,
                                       snapshot_size=10000 if device.startswith("cuda")
                                       else SNAPSHOT_SIZE)
        except Exception as exc:  # noqa: BLE001 - TrainingError: impossible settings
            s.error.emit("Cannot train", str(exc))
            return False
        had_ends = s.has_endpoints
        if not s.run.start(config, continuing):
            return False  # (said why; the panel still shows the model's own curves)
        self.panel.reset_curves()  # (the run's records are queued to this thread: none yet)
        if had_ends and not s.has_endpoints:  # (as opening a model says it)
            s.status.emit("training; the interpolation's ends A and B were points of the "
                          "previous model and are cleared", 10000)
        return True

    def _step_now(self) -> tuple[int, int, int] | None:
        """(epoch, step, steps per epoch) the run is at by its own count (the last report can
        be 19 steps behind), once it has reported its steps per epoch."""
        last = self.panel.last_step
        if last is None:
            return None
        per = last[2]
        done, step = divmod(self.session.training.steps_taken, per)
        return (done, per, per) if step == 0 and done else (done + 1, step, per)

    @Slot(bool)
    def _on_paused(self, paused: bool) -> None:
        """The bar says where the run paused, as the Stop question does (it said the last
        report's step, 16 before the question's)."""
        self.panel.show_paused(paused, self._step_now())

    @Slot()
    def request_stop(self) -> None:
        """Stop asks first, the run paused meanwhile: keep what it learnt, discard it, or go on
        training (a run that has not taken a step yet just stops)."""
        t = self.session.training
        if not t.running:
            return
        last = self.panel.last_step
        if last is None:  # (no step reported yet: nothing to ask about)
            self.panel.show_stopping()
            t.stop()
            return
        was_paused = t.paused
        t.pause()  # (it lands after the step under way)
        now = self._step_now()
        where = _how_far(now[0] - (now[1] < now[2]), now)  # (epochs done, where it is)
        choice = self.ask_stop(
            f"Stop training {where}? Keep the partly trained model (unsaved), discard it and go "
            f"back to {self.session.run.previous_model()}, or continue training?")
        if not t.running:  # it ended while the question was open (its last step)
            return
        if choice == "continue":
            if not was_paused:
                t.resume()
            return
        self._stop_choice = choice
        self.panel.show_stopping()
        t.stop()

    @Slot(object)
    def _on_ended(self, rec: Finished | None) -> None:
        if rec is None:
            self.panel.show_finished("training failed")
            return
        last = self.panel.last_step  # (its steps per epoch; the steps are the run's own count,
        # as its file keeps them: the last report may be a few steps before the stop)
        step = None if last is None else (
            rec.epochs_done + 1, rec.steps - rec.epochs_done * last[2], last[2])
        where = ("before its first step" if rec.steps == 0 else
                 # (steps taken, none reported yet: "after 0 epochs" had hidden them)
                 f"after {rec.steps:,} step{'s' * (rec.steps > 1)} of epoch 1"
                 if step is None and rec.epochs_done == 0 else _how_far(rec.epochs_done, step))
        text = (f"stopped {where}" if rec.stopped
                else f"finished {_epochs(rec.epochs_done)}") + f" in {rec.seconds:.0f} s"
        self.panel.show_finished(text)
        self.session.status.emit("training " + text, 10000)
        choice, self._stop_choice = self._stop_choice, None
        if not rec.stopped or self.session.closing:
            return
        if rec.steps == 0:  # nothing learnt: nothing to ask about
            keep = False
        elif choice is not None:  # asked at Stop
            keep = choice == "keep"
        else:  # stopped otherwise
            keep = self.ask_keep(
                f"Training was stopped {where}. Keep this partly trained model (unsaved), or "
                f"discard it and go back to {self.session.run.previous_model()}?")
        if keep:
            self.session.run.autosave_kept()
        else:
            self.session.run.discard_trained()
            # The model gone back to: its own curves (the run's thread may not have ended yet,
            # so the change of model did not show them), and the bar says what became of the run.
            self._show_model_history()
            self.panel.show_finished(f"{text}; discarded")

    @Slot()
    def _on_model_changed(self) -> None:
        """Another model (opened, new, discarded back to): the last run's curves and outcome
        no longer describe it, the per-epoch losses in its file do.  A run's own result keeps
        its curves."""
        if not self.session.training.running and not self.session.run.adopting:
            self._show_model_history()

    def _show_model_history(self) -> None:
        self.panel.reset_curves(starting=False)
        meta = self.session.models.metadata
        self.panel.show_history(meta.get("history") or [], epochs_trained(meta.get("init") or {}),
                                step_points(meta), stopped_mid_epoch(meta))

    @Slot(str)
    def _on_dataset_chosen(self, name: str) -> None:
        if name == "folder":
            self.choose_folder()
            self._on_dataset(self.session.dataset)  # a cancelled choice leaves the data as it is
        else:
            self.session.load_data(name)

    @Slot(object)
    def _on_dataset(self, dataset) -> None:
        """The choice shows the data in use: after a load, and after a failed one (which keeps
        the previous data); any other folder shows as the folder entry, by its name ("Folder:
        shapes…": "Folder…" alone had not said which)."""
        if dataset is None:
            return
        combo = self.panel.dataset
        i, folder = combo.findData(dataset.name), combo.findData("folder")
        combo.setItemText(folder, "Folder…" if i >= 0 else f"Folder: {dataset.name}…")
        combo.setItemData(folder, "Choose a folder of IDX files or of pictures" if i >= 0 else
                          f"{dataset.source}; choose another folder",
                          Qt.ItemDataRole.ToolTipRole)
        combo.setCurrentIndex(i if i >= 0 else folder)
