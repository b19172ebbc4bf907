"""What a trained model file holds besides its weights, built in one place for `cae train` and the
window's Train, so a model reopens the same way (map included, offline) whoever trained it."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import torch

from .data import Dataset
from .metrics import encode_images
from .model import CAE
from .preprocess import dataset_framing
from .train import TrainConfig


def model_file_contents(model: CAE, dataset: Dataset | None, config: TrainConfig | None, *,
                        history: list[dict], epochs_done: int, stopped_early: bool,
                        wall_time_s: float, device: str, precision: str, threads: int,
                        command: str | None = None, metrics: dict | None = None,
                        steps: StepLosses | None = None, encode: bool = True,
                        progress: Callable[[float], None] | None = None,
                        ) -> tuple[dict, dict[str, np.ndarray]]:
    """The metadata and extras of a trained model file.

    ``precision`` is the one the run used (``Trainer.precision``, never "auto") and ``threads``
    the CPU threads it computed with (``Trainer.threads``), so the file says how to reproduce its
    weights.  ``steps``: the run's optimiser steps and training losses, which say how far a run
    stopped mid-epoch got and draw its curve again when the file is opened.  With ``encode`` and
    a dataset, the test digits' codes and labels go into the extras (the map is then there before
    any data is found); ``progress`` hears the fraction of them encoded."""
    meta: dict = {
        "dataset": dataset.name if dataset is not None else "",
        "class_names": list(dataset.class_names) if dataset is not None else [],
        "train_config": dataclasses.asdict(config) if config is not None else {},
        "recipe": config.recipe if config is not None else "",
        "history": list(history), "epochs_done": int(epochs_done),
        "stopped_early": bool(stopped_early), "wall_time_s": round(float(wall_time_s), 1),
        "device": str(device), "precision": precision, "torch_version": torch.__version__,
        "threads": int(threads),  # CPU results are bit-exact for one thread count
    }
    if dataset is not None:  # how a drawing is framed for it, whatever data is loaded then
        meta["framing"] = dataclasses.asdict(dataset_framing(dataset))
    if steps is not None:
        meta.update(steps.metadata())
    if command is not None:
        meta["command"] = command
    if metrics is not None:
        meta["metrics"] = metrics
    extras: dict[str, np.ndarray] = {}
    if encode and dataset is not None:
        extras["test_codes"] = encode_images(model, dataset.test_images, progress=progress)
        extras["test_labels"] = dataset.test_labels.astype(np.uint8)
    return meta, extras


@dataclasses.dataclass
class StepLosses:
    """A run's optimiser steps and its training loss as reported every few steps (the
    trainer's ``Progress`` records), kept for its model file."""

    steps_done: int = 0
    steps_per_epoch: int = 0
    losses: list[tuple[float, float]] = dataclasses.field(default_factory=list)  # (epochs, loss)

    def add(self, global_step: int, steps_per_epoch: int, loss: float) -> None:
        self.steps_done, self.steps_per_epoch = int(global_step), int(steps_per_epoch)
        self.losses.append((global_step / max(steps_per_epoch, 1), float(loss)))

    def metadata(self) -> dict:
        """``steps_done``, ``steps_per_epoch`` and at most :data:`MAX_STEP_LOSSES` evenly
        spaced ``step_losses`` (the last always among them), rounded for a small header."""
        every = max(1, math.ceil(len(self.losses) / MAX_STEP_LOSSES))
        kept = self.losses[::every]
        if self.losses and kept[-1] is not self.losses[-1]:
            kept.append(self.losses[-1])
        return {"steps_done": self.steps_done, "steps_per_epoch": self.steps_per_epoch,
                "step_losses": [[round(e, 4), float(f"{v:.5g}")] for e, v in kept]}


MAX_STEP_LOSSES = 2000


def step_points(metadata: dict) -> np.ndarray:
    """The file's training loss every few steps as (N, 2) finite (epochs, loss) rows, in
    order; entries that are not two numbers are left out (the file is the user's)."""
    rows = []
    for entry in metadata.get("step_losses") if isinstance(metadata.get("step_losses"), list) else []:
        try:
            e, v = float(entry[0]), float(entry[1])
        except (IndexError, TypeError, ValueError):
            continue
        if math.isfinite(e) and math.isfinite(v) and v > 0:
            rows.append((e, v))
    return np.array(sorted(rows), float).reshape(-1, 2)


def stopped_mid_epoch(metadata: dict) -> tuple[int, int, int] | None:
    """(epoch under way, its steps done, steps per epoch) of a run stopped in the middle of an
    epoch, from its file; None for one that ended at an epoch's end or says nothing of its
    steps (a file from before they were kept, or a damaged entry)."""
    done, per, epochs = (metadata.get(k) for k in ("steps_done", "steps_per_epoch", "epochs_done"))
    if not (metadata.get("stopped_early") and all(isinstance(v, int) for v in (done, per, epochs))
            and per > 0 and done > epochs * per):
        return None
    return epochs + 1, done - epochs * per, per


def epochs_trained(metadata: dict) -> int:
    """All the epochs a model file's weights have had: its own run's, plus those of the model
    it continued from (``init``, kept by `cae train --init` and the window's "Continue"), and
    so on back.  Damaged or missing entries count as none."""
    total, seen = 0, 0
    while isinstance(metadata, dict) and seen < 100:  # a chain, never a cycle, in a real file
        epochs = metadata.get("epochs_done")
        total += epochs if isinstance(epochs, int) and epochs > 0 else 0
        metadata, seen = metadata.get("init"), seen + 1
    return total
