"""The GUI's own copy of the model: instant decodes on the GUI thread, loads, saves.

During training the worker owns its model; this copy's weights are refreshed from the worker's
snapshots, so a click decodes with the weights being trained without touching the worker.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal

from cae.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from cae.model import CAE, CAEConfig
from cae.train import build_model


class ModelService(QObject):
    """Holds the current model (CPU, eval mode) and its metadata."""

    modelChanged = Signal()  # a different model (loaded, trained, new): codes must be recomputed
    weightsUpdated = Signal()  # same model, new weights (a training snapshot)
    saved = Signal()  # the model is now the file at ``path`` (the window's title names it)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.model: CAE | None = None
        self.metadata: dict = {}
        self.path: Path | None = None
        self.trained = False
        self.extras: dict[str, np.ndarray] = {}  # arrays saved with the model (e.g. test codes)
        self.decoder_override: CAE | None = None  # decode with another decoder (a past epoch)
        self.generation = 0  # changes whenever what `decoding_model` decodes with changes
        self.weights = 0  # changes whenever the model's own weights do (not a past epoch shown)

    # --------------------------------------------------------------------------- state
    def set_model(self, model: CAE, metadata: dict | None = None, path: Path | None = None,
                  trained: bool = True, extras: dict[str, np.ndarray] | None = None) -> None:
        self.model = model.to("cpu").eval()
        self.metadata = dict(metadata or {})
        self.path = path
        self.trained = trained
        self.extras = dict(extras or {})
        self.decoder_override = None
        self.generation += 1
        self.weights += 1
        self.modelChanged.emit()

    def stored_test_codes(self, dataset_name: str | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """The test digits' codes saved with the model (for ``dataset_name``, if given)."""
        if "test_codes" not in self.extras or "test_labels" not in self.extras:
            return None
        if dataset_name is not None and self.metadata.get("dataset") != dataset_name:
            return None
        return self.extras["test_codes"], self.extras["test_labels"].astype(np.int64)

    def new_model(self, seed: int = 0, config: CAEConfig | None = None) -> None:
        """An untrained model, so a user with data but no model can start training at once."""
        self.set_model(build_model(config, seed), {"note": "untrained"}, None, trained=False)

    def load(self, path: str | Path) -> Checkpoint:
        """Load a model file (raises CheckpointError with a clear message; nothing changes then)."""
        ckpt = load_checkpoint(path)
        self.set_checkpoint(ckpt, path)
        return ckpt

    def set_checkpoint(self, ckpt: Checkpoint, path: str | Path) -> None:
        """Make a loaded (and verified) model file the current model."""
        self.set_model(ckpt.model, ckpt.metadata, Path(path), trained=True, extras=ckpt.extras)

    def save(self, path: str | Path, extra_metadata: dict | None = None) -> Path:
        if self.model is None:
            raise ValueError("there is no model to save")
        meta = {**self.metadata, **(extra_metadata or {})}
        meta.pop("note", None)
        meta.pop("autosave", None)  # the user's own file now, wherever the weights came from
        saved = save_checkpoint(path, self.model, meta, self.extras)
        self.path = saved
        self.saved.emit()
        return saved

    def update_weights(self, state: dict[str, np.ndarray]) -> None:
        """Copy the weights of a training snapshot into the GUI's model, in place."""
        if self.model is None:
            return
        with torch.no_grad():
            for name, tensor in self.model.state_dict().items():
                tensor.copy_(torch.from_numpy(state[name]))
        self.generation += 1
        self.weights += 1
        self.weightsUpdated.emit()

    def set_decoder_override(self, model: CAE | None) -> None:
        """Decode with ``model`` (a past epoch of the timeline), or with the model again (None)."""
        self.decoder_override = model
        self.generation += 1

    @property
    def decoding_model(self) -> CAE | None:
        """The model whose decoder draws what the user sees."""
        return self.decoder_override or self.model

    # --------------------------------------------------------------------------- decode
    @torch.no_grad()
    def decode(self, z: np.ndarray) -> np.ndarray:
        """Latent points (N, 2) -> images (N, 28, 28) float32 clamped to [0, 1], as displayed."""
        assert self.model is not None
        model = self.decoding_model
        t = torch.as_tensor(np.asarray(z, dtype=np.float32).reshape(-1, self.model.config.latent_dim))
        return model.decode(t).clamp_(0, 1)[:, 0].numpy()

    def decode_one(self, x: float, y: float) -> np.ndarray:
        return self.decode(np.array([[x, y]], np.float32))[0]

    @torch.no_grad()
    def reconstruct(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One (n, n) image in [0, 1], n the model's image size -> (its code (2,), its
        reconstruction (n, n) clamped)."""
        assert self.model is not None
        x = torch.as_tensor(np.asarray(image, np.float32))[None, None]
        z = self.model.encode(x)
        return z[0].numpy(), self.model.decode(z).clamp_(0, 1)[0, 0].numpy()
