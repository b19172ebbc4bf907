"""Evaluation: reconstruction error (overall and per class) and 5-NN accuracy of the latent codes.

Everything runs in batches so memory stays flat for all 70,000 digits.  The reported MSE is per
pixel on the images *as shown* (decoder output clamped to [0, 1]), which is what a user sees.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .data import Dataset
from .errors import CAEError
from .model import CAE


Cancel = Callable[[], bool] | None  # polled between batches; True stops the work


def _batches(images: np.ndarray, batch_size: int, device: torch.device, cancel: Cancel = None):
    for start in range(0, len(images), batch_size):
        if cancel is not None and cancel():
            raise CAEError("cancelled")
        chunk = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).to(device)
        yield chunk.unsqueeze(1).float().div_(255.0)


def _device_of(model: CAE) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def encode_images(model: CAE, images: np.ndarray, batch_size: int = 256,
                  cancel: Cancel = None) -> np.ndarray:
    """uint8 images (N, H, W) -> latent codes (N, latent_dim) as float32."""
    model.eval()
    device = _device_of(model)
    codes = [model.encode(x).float().cpu() for x in _batches(images, batch_size, device, cancel)]
    dim = model.config.latent_dim
    return torch.cat(codes).numpy() if codes else np.zeros((0, dim), np.float32)


@torch.no_grad()
def reconstruction_errors(model: CAE, images: np.ndarray, batch_size: int = 256,
                          cancel: Cancel = None) -> np.ndarray:
    """Per-image MSE between each uint8 image and its clamped reconstruction, float32 (N,)."""
    model.eval()
    device = _device_of(model)
    out = [((model(x).clamp(0, 1) - x) ** 2).mean(dim=(1, 2, 3)).float().cpu()
           for x in _batches(images, batch_size, device, cancel)]
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def per_class_mean(values: np.ndarray, labels: np.ndarray, n_classes: int) -> list[float]:
    """Mean of ``values`` for each class (NaN for a class with no sample)."""
    sums = np.bincount(labels, weights=values, minlength=n_classes)
    counts = np.bincount(labels, minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return [float(v) for v in sums / counts]


@torch.no_grad()
def knn_indices(train_codes: np.ndarray, query_codes: np.ndarray, k: int = 5,
                batch_size: int = 512) -> np.ndarray:
    """Indices (Q, k) of the k nearest training codes of each query, nearest first."""
    train = torch.from_numpy(np.ascontiguousarray(train_codes, dtype=np.float32))
    k = min(k, len(train))
    out = []
    for start in range(0, len(query_codes), batch_size):
        q = torch.from_numpy(np.ascontiguousarray(query_codes[start:start + batch_size], np.float32))
        d = torch.cdist(q, train)
        out.append(d.topk(k, largest=False, sorted=True).indices)
    return torch.cat(out).numpy() if out else np.zeros((0, k), np.int64)


def vote(neighbour_labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Majority label of each row of neighbours (nearest first); a tie goes to the label whose
    voters are nearer."""
    q, k = neighbour_labels.shape
    # Each vote counts 1, plus a tie-breaker smaller than any whole vote that favours near ranks.
    weights = 1.0 + 1e-3 * np.arange(k, 0, -1) / k
    votes = np.zeros((q, n_classes))
    np.add.at(votes, (np.repeat(np.arange(q), k), neighbour_labels.ravel()), np.tile(weights, q))
    return votes.argmax(1)


def knn_predict_excluding_self(train_codes: np.ndarray, train_labels: np.ndarray,
                               query_codes: np.ndarray, self_index: np.ndarray,
                               k: int = 5) -> np.ndarray:
    """k-NN votes where query i is training digit ``self_index[i]`` (or -1 for none): a digit
    never votes for itself."""
    labels = np.asarray(train_labels, dtype=np.int64)
    nearest = knn_indices(train_codes, query_codes, k + 1)
    is_self = nearest == np.asarray(self_index)[:, None]
    order = np.argsort(is_self, axis=1, kind="stable")  # the self match, if any, goes last
    nearest = np.take_along_axis(nearest, order, axis=1)[:, :k]
    return vote(labels[nearest], int(labels.max()) + 1)


def knn_predict(train_codes: np.ndarray, train_labels: np.ndarray, query_codes: np.ndarray,
                k: int = 5, batch_size: int = 512) -> np.ndarray:
    """Majority vote of the k nearest training codes (Euclidean)."""
    labels = np.asarray(train_labels, dtype=np.int64)
    if len(query_codes) == 0:
        return np.zeros(0, np.int64)
    nearest = knn_indices(train_codes, query_codes, k, batch_size)
    return vote(labels[nearest], int(labels.max()) + 1)


def confusion_matrix(true: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) counts: row = true label, column = predicted label."""
    return np.bincount(np.asarray(true) * n_classes + np.asarray(pred),
                       minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def evaluate(model: CAE, dataset: Dataset, k: int = 5, train_codes: np.ndarray | None = None,
             n_test: int | None = None, n_train: int | None = None, cancel: Cancel = None) -> dict:
    """The figures `cae evaluate` prints: test MSE, per-class MSE, k-NN accuracy of the codes and
    its confusion matrix.  ``train_codes`` reuses codes already computed; ``n_test``/``n_train``
    evaluate on the first digits only (a quick look while training)."""
    n_classes = len(dataset.class_names)
    test_images, test_labels = dataset.test_images[:n_test], dataset.test_labels[:n_test]
    train_labels = dataset.train_labels[:n_train]
    errors = reconstruction_errors(model, test_images, cancel=cancel)
    if train_codes is None:
        train_codes = encode_images(model, dataset.train_images[:n_train], cancel=cancel)
    test_codes = encode_images(model, test_images, cancel=cancel)
    pred = knn_predict(train_codes[:n_train], train_labels, test_codes, k=k)
    return {
        "dataset": dataset.name,
        "n_test": int(len(test_images)),
        "n_train": int(len(train_labels)),
        "test_mse": float(errors.mean()),
        "per_class_mse": per_class_mean(errors.astype(np.float64), test_labels, n_classes),
        f"knn{k}_accuracy": float((pred == test_labels).mean()),
        f"knn{k}_confusion": confusion_matrix(test_labels, pred, n_classes).tolist(),
    }
