"""What a trained model file holds besides its weights, built in one place for `cae train` and the
window's Train, so a model reopens the same way (map included, offline) whoever trained it."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import torch

from .data import Dataset
from .metrics import encode_images
from .model import CAE
from .train import TrainConfig


def model_file_contents(model: CAE, dataset: Dataset | None, config: TrainConfig | None, *,
                        history: list[dict], epochs_done: int, stopped_early: bool,
                        wall_time_s: float, device: str, precision: str, threads: int,
                        command: str | None = None, metrics: dict | None = None,
                        encode: bool = True,
                        progress: Callable[[float], None] | None = None,
                        ) -> tuple[dict, dict[str, np.ndarray]]:
    """The metadata and extras of a trained model file.

    ``precision`` is the one the run used (``Trainer.precision``, never "auto") and ``threads``
    the CPU threads it computed with (``Trainer.threads``), so the file says how to reproduce its
    weights.  With ``encode`` and a dataset, the test digits' codes and
    labels go into the extras (the map is then there before any data is found); ``progress``
    hears the fraction of them encoded."""
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
    if command is not None:
        meta["command"] = command
    if metrics is not None:
        meta["metrics"] = metrics
    extras: dict[str, np.ndarray] = {}
    if encode and dataset is not None:
        extras["test_codes"] = encode_images(model, dataset.test_images, progress=progress)
        extras["test_labels"] = dataset.test_labels.astype(np.uint8)
    return meta, extras


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
