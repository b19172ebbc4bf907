"""Model files with a training timeline, made by really training (the bundled model has none)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cae.checkpoint import save_checkpoint
from cae.data import Dataset
from cae.metrics import encode_images
from cae.timeline import Timeline
from cae.train import EpochEnd, Snapshot, TrainConfig, Trainer


def train_with_timeline(
    dataset: Dataset,
    path: Path,
    epochs: int = 3,
    batch_size: int = 32,
    snapshot_size: int = 2000,
    seed: int = 0,
    precision: str = "auto",
) -> Path:
    """Train ``epochs`` epochs and save the model as the GUI does: its timeline (every epoch's
    codes and decoder), the test codes and the loss history."""
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=2e-3,
        seed=seed,
        device="cpu",
        snapshot_size=snapshot_size,
        precision=precision,
    )
    trainer = Trainer(dataset, config)
    timeline, history = Timeline(), []
    for record in trainer.run():
        if isinstance(record, Snapshot):
            timeline.add(record.epoch, record.codes, record.labels, record.model_state)
        elif isinstance(record, EpochEnd):
            history.append(
                {
                    "epoch": record.epoch,
                    "train_loss": record.train_loss,
                    "test_loss": record.test_loss,
                    "seconds": record.seconds,
                }
            )
    model = trainer.model.to("cpu").eval()
    metadata = {
        "dataset": dataset.name,
        "class_names": list(dataset.class_names),
        "train_config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "epochs_done": trainer.epochs_done,
        "history": history,
        "precision": trainer.precision,
        "device": "cpu",
    }
    extras = {
        "test_codes": encode_images(model, dataset.test_images),
        "test_labels": dataset.test_labels.astype(np.uint8),
        **timeline.to_extras(),
    }
    return save_checkpoint(path, model, metadata, extras)
