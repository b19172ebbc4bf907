"""Model files: round trip, atomic writes, and refusal of anything unsafe or mismatched."""
import json
import os
import pickle
import struct

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from cae.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from cae.errors import CheckpointError
from cae.model import CAE


@pytest.fixture
def model():
    torch.manual_seed(3)
    return CAE()


def test_round_trip_with_metadata_and_extras(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"dataset": "mnist", "epochs": 3},
                           extras={"codes": np.ones((5, 2), np.float32)})
    ckpt = load_checkpoint(path)
    for (k, a), b in zip(model.state_dict().items(), ckpt.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert ckpt.metadata["dataset"] == "mnist" and ckpt.metadata["epochs"] == 3
    assert "version" in ckpt.metadata
    np.testing.assert_array_equal(ckpt.extras["codes"], np.ones((5, 2)))
    assert not ckpt.model.training
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp files left


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors", ""])
def test_pickle_payload_is_refused_and_never_runs(tmp_path, suffix):
    marker = tmp_path / "pwned"
    path = tmp_path / f"evil{suffix}"
    path.write_bytes(pickle.dumps({"state": Payload(str(marker))}, protocol=4))
    # The payload is real: unpickling it would create the marker file.
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(path)
    assert not marker.exists()


def test_torch_zip_checkpoint_is_refused(tmp_path, model):
    path = tmp_path / "model.bin2"
    torch.save(model.state_dict(), path)  # torch's zip+pickle format
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(path)


def test_truncated_and_corrupt_files(tmp_path, model):
    good = save_checkpoint(tmp_path / "m.safetensors", model).read_bytes()
    for cut in (0, 4, 8, 100, len(good) // 2, len(good) - 1):
        path = tmp_path / f"cut{cut}.safetensors"
        path.write_bytes(good[:cut])
        with pytest.raises(CheckpointError):
            load_checkpoint(path)
    path = tmp_path / "random.safetensors"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)
    path = tmp_path / "huge-header.safetensors"
    path.write_bytes(struct.pack("<Q", 1 << 60) + b"{}")
    with pytest.raises(CheckpointError, match="header"):
        load_checkpoint(path)


def _write_raw(path, tensors, model_config=None, fmt=FORMAT):
    meta = {"format": fmt, "format_version": "1",
            "model_config": json.dumps(model_config or CAE().config.to_dict()), "metadata": "{}"}
    save_file(tensors, str(path), metadata=meta)


def _state(model):
    return {f"model.{k}": v.numpy() for k, v in model.state_dict().items()}


def test_wrong_keys_shapes_dtypes_and_format(tmp_path, model):
    state = _state(model)
    cases = {
        "missing": ({k: v for k, v in state.items() if "decoder.4" not in k}, "missing tensors"),
        "extra": ({**state, "model.fc.weight": np.zeros((2, 2), np.float32)}, "unexpected tensors"),
        "shape": ({**state, "model.encoder.0.weight": np.zeros((16, 1, 3, 3), np.float32)},
                  r"shape \(16, 1, 3, 3\), expected \(32, 1, 3, 3\)"),
        "dtype": ({**state, "model.encoder.0.bias": state["model.encoder.0.bias"].astype(np.float64)},
                  "dtype F64, expected F32"),
        "nan": ({**state, "model.encoder.0.bias": np.full(32, np.nan, np.float32)}, "non-finite"),
    }
    for name, (tensors, message) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        _write_raw(path, tensors)
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(path)
    path = tmp_path / "other.safetensors"
    _write_raw(path, state, fmt="something-else")
    with pytest.raises(CheckpointError, match="not a CAE Latent Explorer model"):
        load_checkpoint(path)
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match="not a CAE Latent Explorer model"):
        load_checkpoint(path)


def test_config_rebuilds_a_different_model(tmp_path):
    small = CAE(CAE().config.__class__(channels=(8, 16)))
    path = save_checkpoint(tmp_path / "small.safetensors", small)
    assert load_checkpoint(path).model.config.channels == (8, 16)


def test_failed_save_keeps_the_existing_file(tmp_path, model, monkeypatch):
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"tag": "old"})
    before = path.read_bytes()

    def disk_full(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("cae.checkpoint.save_file", disk_full)
    with pytest.raises(CheckpointError, match="could not save.*No space left"):
        save_checkpoint(path, CAE(), {"tag": "new"})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="could not save"):
        save_checkpoint(tmp_path / "no" / "such" / "dir" / "m.safetensors", model)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="folder"):
        load_checkpoint(tmp_path)


def test_saved_file_permissions_follow_the_umask(tmp_path, model):
    old = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "m.safetensors", model)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644
