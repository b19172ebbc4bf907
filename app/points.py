"""The points on the map as one immutable value, and the encoding that makes them."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cae.code_cache import data_key, load_codes, model_key, save_codes
from cae.errors import CAEError
from cae.metrics import encode_images
from cae.model import CAE

@dataclass(frozen=True)
class MapPoints:
    """The points on the map: codes, their labels, the images behind them (None until the
    dataset is loaded) and the class names, kept together so they can never disagree."""

    codes: np.ndarray  # (N, 2) float32
    labels: np.ndarray  # (N,) int64
    class_names: tuple[str, ...]
    images: np.ndarray | None = None  # (N, H, W) uint8
    source: str = "test"  # "test", "all", "stored" (saved with the model), "training", "epoch"

    def __post_init__(self) -> None:
        codes = np.array(self.codes, np.float32).reshape(-1, 2)
        labels = np.array(self.labels, np.int64).reshape(-1)
        if len(codes) != len(labels) or (self.images is not None and len(self.images) != len(codes)):
            raise ValueError("codes, labels and images must have one entry per point")
        for a in (codes, labels):
            a.setflags(write=False)
        object.__setattr__(self, "codes", codes)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "class_names", tuple(self.class_names))

    def __len__(self) -> int:
        return len(self.codes)

    def class_name(self, index: int) -> str:
        label = int(self.labels[index])
        return self.class_names[label] if label < len(self.class_names) else str(label)


EMPTY_POINTS = MapPoints(np.zeros((0, 2), np.float32), np.zeros(0, np.int64), ())


def encode_cached(cancel, report, model: CAE, images: np.ndarray, precision: str = "fp32",
                  ) -> np.ndarray:
    """The codes of ``images`` under ``model``: from the on-disk cache when this model and these
    images were encoded before (a second start shows 70,000 points at once), else encoded in
    batches that a cancel (new model, closing window) stops, and cached."""
    keys = model_key(model, precision), data_key(images)
    codes = load_codes(*keys, count=len(images))
    if codes is not None:
        return codes
    codes = encode_images(model, images, cancel=lambda: cancel.cancelled, progress=report,
                          precision=precision)
    bad = int((~np.isfinite(codes).all(1)).sum())
    if bad:
        raise CAEError(f"the model's codes are not finite (infinite or NaN) for {bad:,} of the "
                       f"{len(codes):,} images: its weights overflow float32, so nothing can be "
                       f"mapped")
    if not cancel.cancelled:  # a partial result is never stored
        save_codes(*keys, codes)
    return codes


def encode_exact_parts(cancel, report, model: CAE, parts: list[np.ndarray]) -> np.ndarray:
    """The float32 codes of several image sets, one after another, each through the code cache
    under its own key: the training digits' are there once a drawing's neighbours or the
    metrics needed them, the test digits' once the test view showed them."""
    total, done, codes = sum(len(p) for p in parts), 0, []
    for images in parts:
        start, n = done, len(images)
        codes.append(encode_cached(cancel, lambda f, s=start, n=n: report((s + f * n) / total),
                                   model, images, "fp32"))
        done += n
    return np.concatenate(codes)
