"""The status bar's lasting marks: a run training (or paused), the Timeline on a past epoch, a
model of other data on the map, and what the data's reading found amiss (pictures it could not
read, a class one split lacks).  Each stays for as long as its state lasts (a passing message
was lost to the first menu opened, or replaced at once by the next one)."""
from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel

from .session import Session


class StatusMarks(QObject):
    """Four labels for the status bar, kept up to date from the session's signals."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.session = session
        self.training = QLabel("")
        self.epoch = QLabel("")
        self.mismatch = QLabel("")
        self.mismatch.setStyleSheet("color: #B85400; font-weight: bold;")
        self.data_notes = QLabel("")  # what the data's reading found amiss
        self.data_notes.setStyleSheet("color: #B85400;")
        for label in self.labels:
            label.setVisible(False)
        s = session
        for signal in (s.modelChanged, s.datasetChanged, s.training.runningChanged,
                       s.training.pausedChanged, s.decoderChanged, s.timelineChanged):
            signal.connect(lambda *_: self.update())

    @property
    def labels(self) -> tuple[QLabel, QLabel, QLabel, QLabel]:
        return self.training, self.epoch, self.mismatch, self.data_notes

    def update(self) -> None:
        s, t = self.session, self.session.training
        self.training.setVisible(t.running)
        if t.running and t.trainer is not None:
            self.training.setText("training paused" if t.paused
                                  else f"training on {t.trainer.device}")
        self.epoch.setVisible(s.scrubbing)
        if s.scrubbing:  # the map, its clicks and exports follow the slider; the rest does not
            shown, last = s.timeline.epochs[s.epoch_index], s.timeline.epochs[-1]
            self.epoch.setText(f"showing epoch {shown} of {last}")
            noun = s.dataset.noun if s.dataset else "images"
            self.epoch.setToolTip(
                f"The map, its decodes, Interpolation's filmstrip and Export latent codes show "
                f"epoch {shown} of the training timeline "
                f"({len(s.timeline.codes[s.epoch_index]):,} test {noun}). Metrics, Draw and "
                f"the error and vote colourings use the model as trained (epoch {last}).")
        trained_on, ds = s.model_data_mismatch(), s.dataset
        self.mismatch.setVisible(trained_on is not None)
        if trained_on is not None:
            self.mismatch.setText(f"⚠ a model of {trained_on} on {ds.title}")
            self.mismatch.setToolTip(
                f"The map shows {ds.title} {ds.noun} through a model trained on {trained_on}: "
                f"its codes and decodes mean little. Train for a model of this data, or open one.")
        notes = ds.notes if ds is not None else ()
        self.data_notes.setVisible(bool(notes))
        if notes:  # ("3 of 70,000 pictures could not be read: left out (the first: …)")
            self.data_notes.setText("⚠ " + (notes[0].split(" (")[0] if len(notes) == 1
                                            else f"{len(notes)} notes on this data"))
            self.data_notes.setToolTip(f"{ds.source}:\n" + "\n".join(notes))
