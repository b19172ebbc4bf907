"""Model files in safetensors form: no pickle, so opening a file can never run code.

A checkpoint holds the model's tensors under ``model.*``, optional extra arrays under
``extra.*`` (e.g. latent codes), and in the header: the format tag, the model config (used to
rebuild the model) and free metadata (dataset, epochs, seed, metrics, version).  Writes go to a
temporary file that replaces the target only when complete.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from . import __version__
from .errors import CheckpointError
from .model import CAE, CAEConfig

FORMAT = "cae-explorer-checkpoint"
FORMAT_VERSION = "1"
SUFFIX = ".safetensors"
MAX_HEADER = 16 << 20
_PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin"}


@dataclass
class Checkpoint:
    """A loaded model file."""

    model: CAE
    metadata: dict = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)


def _digest(arrays: dict[str, np.ndarray], header: dict[str, str]) -> str:
    """SHA-256 over the header fields and every tensor (name, dtype, shape, bytes): detects a
    corrupted file whose container still parses (a flipped bit in the weights or metadata)."""
    h = hashlib.sha256()
    for key in ("format", "format_version", "model_config", "metadata"):
        h.update(f"{key}={header.get(key, '')}|".encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def save_checkpoint(path: str | os.PathLike, model: CAE, metadata: dict | None = None,
                    extras: dict[str, np.ndarray] | None = None) -> Path:
    """Write atomically; on failure the previous file at ``path`` (if any) is left intact."""
    path = Path(path)
    tensors = {f"model.{k}": v.detach().to("cpu", torch.float32).contiguous().numpy()
               for k, v in model.state_dict().items()}
    for name, arr in (extras or {}).items():
        tensors[f"extra.{name}"] = np.ascontiguousarray(arr)
    meta = dict(metadata or {})
    meta.setdefault("version", __version__)
    header = {"format": FORMAT, "format_version": FORMAT_VERSION,
              "model_config": json.dumps(model.config.to_dict()), "metadata": json.dumps(meta)}
    header["sha256"] = _digest(tensors, header)
    tmp = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        save_file(tensors, str(tmp), metadata=header)
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o666 & ~umask)  # mkstemp's 0600 would make a shared model unreadable to others
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, SafetensorError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CheckpointError(f"could not save the model to {path}: {reason}") from None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink(missing_ok=True)
    return path


def _read_header(path: Path) -> dict:
    """Validate the container before any tensor is read; refuse pickle-based files outright."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05") or head[:4] == b"PK\x03\x04" \
                    or path.suffix.lower() in _PICKLE_SUFFIXES:
                raise CheckpointError(
                    f"{path}: this looks like a PyTorch pickle checkpoint; pickle files can run code "
                    "when opened, so they are refused. Save the weights as .safetensors instead.")
            if len(head) < 8:
                raise CheckpointError(f"{path}: too short to be a model file ({size} bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > min(MAX_HEADER, size - 8):
                raise CheckpointError(f"{path}: not a safetensors model file (corrupt or truncated header)")
            header = json.loads(f.read(n))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: is a folder, not a model file") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: not a safetensors model file (unreadable header)") from None
    except OSError as exc:
        raise CheckpointError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors model file")
    end = 8 + n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            lo, hi = info["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise CheckpointError(f"{path}: tensor {name!r} has no valid data offsets") from None
        if not (0 <= lo <= hi) or end + hi > size:
            raise CheckpointError(f"{path}: truncated: tensor {name!r} runs past the end of the file")
    return header


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load, checking format, keys, shapes, dtypes and finiteness against the architecture."""
    path = Path(path)
    header = _read_header(path)
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: a safetensors file, but not a CAE Latent Explorer model "
                              f"(format tag {meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: model format version {meta.get('format_version')!r} is not "
                              f"supported (this version reads {FORMAT_VERSION})")
    try:
        config = CAEConfig.from_dict(json.loads(meta["model_config"]))
        metadata = json.loads(meta.get("metadata", "{}"))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid model config ({exc})") from None
    model = CAE(config)
    expected = {f"model.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: v for k, v in header.items() if k.startswith("model.")}
    problems = []
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    for k in sorted(set(expected) & set(found)):
        if found[k].get("dtype") != "F32":
            problems.append(f"{k} has dtype {found[k].get('dtype')}, expected F32")
        if tuple(found[k].get("shape", ())) != expected[k]:
            problems.append(f"{k} has shape {tuple(found[k].get('shape', ()))}, expected {expected[k]}")
    if problems:
        raise CheckpointError(f"{path}: does not match the architecture: " + "; ".join(problems))
    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt tensor data ({exc})") from None
    if "sha256" in meta and _digest(arrays, meta) != meta["sha256"]:
        raise CheckpointError(f"{path}: the file is corrupt (its tensors do not match the checksum "
                              "saved with them)")
    state = {k[len("model."):]: torch.from_numpy(v.copy()) for k, v in arrays.items() if k.startswith("model.")}
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path}: non-finite weights in {bad}")
    model.load_state_dict(state)
    model.eval()
    extras = {k[len("extra."):]: v for k, v in arrays.items() if k.startswith("extra.")}
    return Checkpoint(model, metadata, extras)
