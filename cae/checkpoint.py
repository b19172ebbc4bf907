"""Model files in safetensors form: no pickle, so opening a file can never run code.

A checkpoint holds the model's tensors under ``model.*``, optional extra arrays under
``extra.*`` (e.g. latent codes), and in the header: the format tag, the model config (used to
rebuild the model) and free metadata (dataset, epochs, seed, metrics, version).  Writes go to a
temporary file that replaces the target only when complete, and every file written carries a
SHA-256 digest of its header fields and tensors.

Loading checks everything before it is used: the container, the model config against bounds
(before any model is built, so an absurd config cannot allocate), the tensors' names, dtypes
and shapes, the digest (a file without one loads with a warning in :attr:`Checkpoint.warnings`),
the weights' finiteness, and every extra array (see :func:`validate_extras`).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import tempfile
import zipfile
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
# Bounds on a file's model config, checked before the model is built: far above any model this
# tool trains (28 px, channels (32, 64), a 2-D code), far below sizes that would not fit memory.
MAX_IMAGE_SIZE = 256
MAX_CHANNELS = 1024
LATENT_DIM = 2  # what the map, its clicks and every export are made for
NO_DIGEST = "no integrity digest"
TIMELINE = "timeline."


@dataclass
class Checkpoint:
    """A loaded model file."""

    model: CAE
    metadata: dict = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    # One line each, for the user to see ("<file>: no integrity digest ..." for a file without one).
    warnings: list[str] = field(default_factory=list)


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
    extras = dict(extras or {})
    meta = dict(metadata or {})
    meta.setdefault("version", __version__)
    try:
        validate_extras(extras, model.config, meta.get("class_names") or ())
    except ValueError as exc:
        raise CheckpointError(f"could not save the model to {path}: {exc}") from None
    tensors = {f"model.{k}": v.detach().to("cpu", torch.float32).contiguous().numpy()
               for k, v in model.state_dict().items()}
    for name, arr in extras.items():
        tensors[f"extra.{name}"] = np.ascontiguousarray(arr)
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
        code = re.search(r"\(os error (\d+)\)", reason)  # the library's "I/O error: … (os error 28)"
        if code:
            reason = os.strerror(int(code.group(1)))
        raise CheckpointError(f"could not save the model to {path}: {reason}") from None
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink(missing_ok=True)
    return path


def _zip_kind(path: Path) -> str:
    """What a zip file holds, from its list of names alone (nothing in it is read or run):
    "pickle" for PyTorch's zipped checkpoints, "npz" for NumPy's arrays, else "zip"."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return "zip"
    if any(n.endswith(".pkl") for n in names):
        return "pickle"
    return "npz" if names and all(n.endswith(".npy") for n in names) else "zip"


def _read_header(path: Path) -> dict:
    """Validate the container before any tensor is read; refuse pickle-based files outright."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            # By content, not by name: random bytes called model.pt are not a pickle.
            kind = ("pickle" if head[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
                    else _zip_kind(path) if head[:4] == b"PK\x03\x04" else None)
            if kind == "npz":
                raise CheckpointError(f"{path}: a NumPy .npz archive (arrays such as exported "
                                      "codes), not a model file")
            if kind == "zip":
                raise CheckpointError(f"{path}: a zip archive, not a model file")
            if kind == "pickle":
                raise CheckpointError(
                    f"{path}: this looks like a PyTorch pickle checkpoint; pickle files can run "
                    "code when opened, so they are refused. Save the weights as .safetensors "
                    "instead.")
            if len(head) < 8:
                raise CheckpointError(f"{path}: too short to be a model file ({size} bytes)")
            (n,) = struct.unpack("<Q", head)
            if n > min(MAX_HEADER, size - 8):
                raise CheckpointError(f"{path}: not a safetensors model file (corrupt or truncated "
                                      "header)")
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
            raise CheckpointError(f"{path}: truncated: tensor {name!r} runs past the end of the "
                                  "file")
    return header


def _config(path: Path, meta: dict) -> CAEConfig:
    """The file's model config, refused unless within the bounds (before anything is built)."""
    try:
        raw = json.loads(meta["model_config"])
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        for key, value in raw.items():
            if key not in ("image_size", "channels", "latent_dim"):
                continue  # from_dict names every unknown key
            values = value if key == "channels" and isinstance(value, list) else [value]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
                raise ValueError(f"{key} must be whole numbers, got {value!r}")
        config = CAEConfig.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid model config ({exc})") from None
    limits = {"image_size": (config.image_size, MAX_IMAGE_SIZE),
              "channels": (max(config.channels), MAX_CHANNELS)}
    for key, (value, limit) in limits.items():
        if value > limit:
            raise CheckpointError(f"{path}: invalid model config ({key} {value} is over this "
                                  f"tool's limit of {limit})")
    if config.latent_dim != LATENT_DIM:
        raise CheckpointError(f"{path}: a model with a {config.latent_dim}-D code; this tool "
                              f"shows {LATENT_DIM}-D codes")
    return config


def _expected_shapes(config: CAEConfig) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape of the model a config describes (built on the meta device: no
    memory is allocated whatever the sizes)."""
    with torch.device("meta"):
        return {k: tuple(v.shape) for k, v in CAE(config).state_dict().items()}


def validate_extras(extras: dict[str, np.ndarray], config: CAEConfig,
                    class_names: tuple[str, ...] | list[str] = ()) -> None:
    """Raise ValueError (one line) unless every extra array is one the format allows, well formed.

    ``test_codes`` (N, latent_dim) float32, finite, with ``test_labels`` (N,) integers in the range
    of ``class_names`` (0..255 where the file names no classes); the training timeline
    ``timeline.epochs`` (E,) strictly increasing integers >= 0, ``timeline.codes`` (E, K,
    latent_dim) float32 finite, ``timeline.labels`` (K,) integers in range, and
    ``timeline.decoder.<name>`` (E, *shape of the decoder's tensor) float32 finite.  The GUI and
    the CLI plot these, so a malformed one would otherwise fail far from its cause."""
    n_classes = len(class_names) or 256
    unknown = sorted(k for k in extras if k not in ("test_codes", "test_labels")
                     and not k.startswith(TIMELINE))
    if unknown:
        raise ValueError(f"unknown extra arrays {unknown}")

    def floats(name: str, shape: tuple) -> np.ndarray:
        a = np.asarray(extras[name])
        if a.dtype != np.float32 or a.ndim != len(shape) or any(
                want is not None and got != want for got, want in zip(a.shape, shape)):
            want = "(" + ", ".join("N" if w is None else str(w) for w in shape) + ")"
            raise ValueError(f"extra '{name}' must be float32 {want}, got {a.dtype} {a.shape}")
        if not np.isfinite(a).all():
            raise ValueError(f"extra '{name}' holds non-finite values")
        return a

    def labels(name: str, count: int) -> None:
        a = np.asarray(extras[name])
        if a.dtype.kind not in "iu" or a.shape != (count,):
            raise ValueError(f"extra '{name}' must be integers of shape ({count},), "
                             f"got {a.dtype} {a.shape}")
        if a.size and (a.min() < 0 or a.max() >= n_classes):
            raise ValueError(f"extra '{name}' holds labels outside 0..{n_classes - 1}")

    if ("test_codes" in extras) != ("test_labels" in extras):
        raise ValueError("extras 'test_codes' and 'test_labels' must come together")
    if "test_codes" in extras:
        codes = floats("test_codes", (None, config.latent_dim))
        labels("test_labels", len(codes))
    timeline = {k[len(TIMELINE):] for k in extras if k.startswith(TIMELINE)}
    if not timeline:
        return
    decoder = {f"decoder.{k[len('decoder.'):]}": v for k, v in _expected_shapes(config).items()
               if k.startswith("decoder.")}
    required = {"epochs", "codes", "labels", *decoder}
    if timeline != required:
        raise ValueError(f"the training timeline's arrays are incomplete or unknown (missing "
                         f"{sorted(required - timeline)}, unknown {sorted(timeline - required)})")
    epochs = np.asarray(extras[TIMELINE + "epochs"])
    if epochs.dtype.kind not in "iu" or epochs.ndim != 1 or len(epochs) == 0 \
            or epochs.min() < 0 or (np.diff(epochs) <= 0).any():
        raise ValueError("extra 'timeline.epochs' must be strictly increasing whole numbers >= 0")
    codes = floats(TIMELINE + "codes", (len(epochs), None, config.latent_dim))
    labels(TIMELINE + "labels", codes.shape[1])
    for name, shape in decoder.items():
        floats(TIMELINE + name, (len(epochs), *shape))


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load, checking format, config, keys, shapes, dtypes, digest, finiteness and extras; every
    failure is a :class:`CheckpointError` with one line naming the file and the reason."""
    path = Path(path)
    header = _read_header(path)
    meta = header.get("__metadata__") or {}
    if meta.get("format") != FORMAT:
        tag = meta.get("format")
        raise CheckpointError(f"{path}: a safetensors file, but not a CAE Latent Explorer model "
                              + (f"(its format tag is {tag!r})" if tag else
                                 "(it has no format tag: weights saved by another program?)"))
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: model format version {meta.get('format_version')!r} is not "
                              f"supported (this version reads {FORMAT_VERSION})")
    unknown = sorted(set(meta) - {"format", "format_version", "model_config", "metadata", "sha256"})
    if unknown:  # e.g. a flipped bit in the digest's own key, which would otherwise hide it
        raise CheckpointError(f"{path}: corrupt header (unknown fields {unknown})")
    config = _config(path, meta)
    try:
        metadata = json.loads(meta.get("metadata", "{}"))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: invalid metadata ({exc})") from None
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{path}: invalid metadata (not a JSON object)")
    class_names = metadata.get("class_names") or []
    if not isinstance(class_names, list) or not all(isinstance(c, str) for c in class_names):
        raise CheckpointError(f"{path}: invalid metadata (class_names must be a list of names)")
    expected = {f"model.{k}": v for k, v in _expected_shapes(config).items()}
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
            shape = tuple(found[k].get("shape", ()))
            problems.append(f"{k} has shape {shape}, expected {expected[k]}")
    if problems:
        raise CheckpointError(f"{path}: does not match the architecture: " + "; ".join(problems))
    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt tensor data ({exc})") from None
    warnings = []
    if "sha256" not in meta:
        warnings.append(f"{path.name}: {NO_DIGEST} (SHA-256); damage to this file would go "
                        "unnoticed. Save it again to add one.")
    elif _digest(arrays, meta) != meta["sha256"]:
        raise CheckpointError(f"{path}: the file is corrupt (its tensors do not match the checksum "
                              "saved with them)")
    state = {k[len("model."):]: torch.from_numpy(v.copy())
             for k, v in arrays.items() if k.startswith("model.")}
    bad = [k for k, v in state.items() if not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path}: non-finite weights in {bad}")
    extras = {k[len("extra."):]: v for k, v in arrays.items() if k.startswith("extra.")}
    others = sorted(k for k in arrays if not k.startswith(("model.", "extra.")))
    if others:
        raise CheckpointError(f"{path}: unknown tensors {others}")
    try:
        validate_extras(extras, config, class_names)
    except ValueError as exc:
        raise CheckpointError(f"{path}: {exc}") from None
    model = CAE(config)
    model.load_state_dict(state)
    model.eval()
    return Checkpoint(model, metadata, extras, warnings)
