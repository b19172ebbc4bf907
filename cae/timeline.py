"""The training timeline: each epoch's latent snapshot and decoder weights, to scrub through.

Saved with the model as extra arrays (``timeline.*``), so a reopened run can be replayed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .errors import CheckpointError
from .model import CAE, CAEConfig

PREFIX = "timeline."


@dataclass
class Timeline:
    epochs: list[int] = field(default_factory=list)
    codes: list[np.ndarray] = field(default_factory=list)  # each (K, 2)
    decoders: list[dict[str, np.ndarray]] = field(default_factory=list)
    labels: np.ndarray | None = None  # (K,), the same digits every epoch
    _models: dict[int, CAE] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.epochs)

    def add(self, epoch: int, codes: np.ndarray, labels: np.ndarray, model_state: dict) -> None:
        """Keep (or replace) this epoch's snapshot: codes and the decoder's weights."""
        decoder = {k[len("decoder."):]: np.array(v) for k, v in model_state.items()
                   if k.startswith("decoder.")}
        if self.epochs and self.epochs[-1] == epoch:
            self.codes[-1], self.decoders[-1] = np.array(codes), decoder
            self._models.pop(len(self.epochs) - 1, None)
            return
        self.epochs.append(int(epoch))
        self.codes.append(np.array(codes))
        self.decoders.append(decoder)
        self.labels = np.array(labels)

    def model_at(self, index: int, config: CAEConfig) -> CAE:
        """A model whose decoder is epoch ``index``'s (its encoder is unused), cached."""
        if index not in self._models:
            model = CAE(config).eval()
            model.decoder.load_state_dict({k: torch.from_numpy(v) for k, v in self.decoders[index].items()})
            self._models[index] = model
        return self._models[index]

    def to_extras(self) -> dict[str, np.ndarray]:
        if not self.epochs:
            return {}
        extras = {f"{PREFIX}epochs": np.asarray(self.epochs, np.int64),
                  f"{PREFIX}codes": np.stack(self.codes).astype(np.float32),
                  f"{PREFIX}labels": np.asarray(self.labels, np.int64)}
        for name in self.decoders[0]:
            extras[f"{PREFIX}decoder.{name}"] = np.stack([d[name] for d in self.decoders])
        return extras

    @classmethod
    def from_extras(cls, extras: dict[str, np.ndarray], config: CAEConfig) -> Timeline:
        """Rebuild from a checkpoint's extras; an empty timeline when there is none."""
        if f"{PREFIX}epochs" not in extras:
            return cls()
        try:
            epochs = extras[f"{PREFIX}epochs"]
            codes = extras[f"{PREFIX}codes"]
            labels = extras[f"{PREFIX}labels"]
            expected = {k: tuple(v.shape) for k, v in CAE(config).decoder.state_dict().items()}
            stacks = {k: extras[f"{PREFIX}decoder.{k}"] for k in expected}
        except KeyError as exc:
            raise CheckpointError(f"the saved training timeline is incomplete (no {exc})") from None
        e = len(epochs)
        if codes.ndim != 3 or codes.shape[0] != e or codes.shape[2] != config.latent_dim \
                or labels.shape != (codes.shape[1],) \
                or any(stacks[k].shape != (e, *expected[k]) for k in expected):
            raise CheckpointError("the saved training timeline does not fit the model")
        timeline = cls(labels=labels)
        for i in range(e):
            timeline.epochs.append(int(epochs[i]))
            timeline.codes.append(codes[i])
            timeline.decoders.append({k: stacks[k][i] for k in expected})
        return timeline
