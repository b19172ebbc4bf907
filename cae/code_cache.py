"""On-disk cache of a dataset's latent codes under one model, so a second start skips encoding.

A cached file is trusted only under its key: the model's digest and the data's checksum are
stored inside the file as well as in its name, and a file whose stored key differs, or that is
corrupt, truncated or of the wrong shape, is ignored (the caller encodes again and saves anew).
Files are plain ``.npz`` read with ``allow_pickle=False``: loading one never runs code.  Writes go
to a temporary file that is renamed into place, so a crash never leaves half a file under a key.
"""
from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np
import torch

from . import npz_cache
from .data import user_cache_dir
from .model import CAE
from .train import fast_precision

FORMAT = "cae-codes-1"  # bump when the meaning of a cached file changes
KEEP = 16  # cached files kept (the least recently written go first); ~0.6 MB each for MNIST


def cache_dir() -> Path:
    """``<user cache>/cae-explorer/codes`` (``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux)."""
    return user_cache_dir() / "codes"


def model_key(model: CAE, precision: str) -> str:
    """SHA-256 over the model's config, every weight and the encode precision (``"auto"`` is
    resolved to what ``encode_images`` would use): the codes' inputs other than the data.  (A
    checkpoint's ``sha256`` field also covers its metadata; hashing the weights keys a model
    trained in this session too, and the same weights share one entry.)"""
    if precision == "auto":
        precision = fast_precision(next(model.parameters()).device)
    h = hashlib.sha256(f"{FORMAT}|{precision}|{model.config.to_dict()}|".encode())
    for name, tensor in sorted(model.state_dict().items()):
        array = tensor.detach().to("cpu", torch.float32).contiguous().numpy()
        h.update(f"{name}|{array.shape}|".encode())
        h.update(array.tobytes())
    return h.hexdigest()


def data_key(images: np.ndarray) -> str:
    """SHA-256 of the images (dtype, shape, bytes), for data that is not a checksummed file set;
    a loaded named dataset can key on its files' MD5s instead (any string without a path
    separator is a key)."""
    images = np.ascontiguousarray(images)
    h = hashlib.sha256(f"{images.dtype.str}|{images.shape}|".encode())
    h.update(memoryview(images).cast("B"))
    return h.hexdigest()


def _path(model: str, data: str) -> Path:
    name = hashlib.sha256(f"{model}|{data}".encode()).hexdigest()[:32]
    return cache_dir() / f"{name}.npz"


def _check_key(key: str, what: str) -> None:
    if not key or len(key) > 512 or "/" in key or "\\" in key:
        raise ValueError(f"{what} must be a non-empty string of at most 512 characters without "
                         f"path separators (got {key!r})")


def load_codes(model: str, data: str, count: int | None = None) -> np.ndarray | None:
    """The cached float32 codes (N, D) for this model key and data key, or None when there are
    none that can be trusted (missing, another key, corrupt, truncated, non-finite, or not
    ``count`` rows)."""
    _check_key(model, "model key")
    _check_key(data, "data key")
    try:
        with np.load(_path(model, data), allow_pickle=False) as npz:
            if (str(npz["format"]) != FORMAT or str(npz["model_key"]) != model
                    or str(npz["data_key"]) != data):
                return None
            codes = npz["codes"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if (codes.dtype != np.float32 or codes.ndim != 2 or codes.shape[1] < 1
            or (count is not None and len(codes) != count) or not np.isfinite(codes).all()):
        return None
    return codes


def save_codes(model: str, data: str, codes: np.ndarray) -> Path | None:
    """Store ``codes`` under both keys atomically; returns the file, or None where the cache
    folder cannot be written (a cache is an optimisation: never an error for the caller)."""
    _check_key(model, "model key")
    _check_key(data, "data key")
    codes = np.ascontiguousarray(codes, dtype=np.float32)
    if codes.ndim != 2 or not np.isfinite(codes).all():
        raise ValueError(f"codes must be a finite (N, D) array (got shape {codes.shape})")
    path = _path(model, data)
    written = npz_cache.write(path, KEEP, format=np.array(FORMAT), model_key=np.array(model),
                              data_key=np.array(data), codes=codes)
    return path if written else None
