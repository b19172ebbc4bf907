"""Model files: round trip, atomic writes, and refusal of anything unsafe or mismatched."""
import json
import os
import pickle
import struct

import numpy as np
import pytest
from safetensors import SafetensorError
import torch
from safetensors.numpy import save_file

from cae.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from cae.errors import CheckpointError
from cae.model import CAE, CAEConfig


@pytest.fixture
def model():
    torch.manual_seed(3)
    return CAE()


def test_round_trip_with_metadata_and_extras(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.safetensors", model, {"dataset": "mnist", "epochs": 3},
                           extras={"test_codes": np.ones((5, 2), np.float32),
                                   "test_labels": np.arange(5, dtype=np.uint8)})
    ckpt = load_checkpoint(path)
    for (k, a), b in zip(model.state_dict().items(), ckpt.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert ckpt.metadata["dataset"] == "mnist" and ckpt.metadata["epochs"] == 3
    assert "version" in ckpt.metadata
    np.testing.assert_array_equal(ckpt.extras["test_codes"], np.ones((5, 2)))
    np.testing.assert_array_equal(ckpt.extras["test_labels"], np.arange(5))
    assert ckpt.warnings == []  # it carries its digest
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


def test_other_zip_archives_are_named_for_what_they_are(tmp_path):
    """An .npz of exported codes renamed .safetensors was called a PyTorch pickle."""
    import zipfile
    npz = tmp_path / "codes.safetensors"
    with open(npz, "wb") as f:
        np.savez(f, codes=np.zeros((3, 2), np.float32), labels=np.zeros(3, np.int64))
    with pytest.raises(CheckpointError, match="a NumPy .npz archive") as err:
        load_checkpoint(npz)
    assert "pickle" not in str(err.value)
    other = tmp_path / "notes.safetensors"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(CheckpointError, match="notes.safetensors: a zip archive, not a model"):
        load_checkpoint(other)


@pytest.mark.parametrize("name", ["bad.pt", "text.bin", "bad.safetensors"])
def test_random_bytes_are_not_called_a_pickle_whatever_the_name(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"hello, these are not weights" + bytes(range(200)))
    with pytest.raises(CheckpointError, match="not a safetensors model file") as err:
        load_checkpoint(path)
    assert "pickle" not in str(err.value)


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


def _write_raw(path, tensors, model_config=None, fmt=FORMAT, metadata="{}"):
    """A model file as an older version or another tool would write it: no digest."""
    config = model_config if isinstance(model_config, str) else json.dumps(
        model_config or CAE().config.to_dict())
    meta = {"format": fmt, "format_version": "1", "model_config": config, "metadata": metadata}
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
        "dtype": ({**state,
                   "model.encoder.0.bias": state["model.encoder.0.bias"].astype(np.float64)},
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
    with pytest.raises(CheckpointError, match="not a CAE Latent Explorer model .its format tag "
                                              "is 'something-else'"):
        load_checkpoint(path)
    save_file(state, str(path))
    with pytest.raises(CheckpointError, match="not a CAE Latent Explorer model .it has no format "
                                              "tag: weights saved by another program"):
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

    def library_disk_full(tensors, filename, metadata=None):  # what safetensors itself raises
        raise SafetensorError("Error while serializing: I/O error: No space left on device "
                              "(os error 28)")

    monkeypatch.setattr("cae.checkpoint.save_file", library_disk_full)
    with pytest.raises(CheckpointError) as info:  # (not the library's wording)
        save_checkpoint(path, CAE(), {"tag": "new"})
    assert str(info.value) == f"could not save the model to {path}: No space left on device"
    assert path.read_bytes() == before
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


def test_a_file_without_a_digest_loads_with_a_visible_warning(tmp_path, model):
    path = tmp_path / "old.safetensors"
    state = _state(model)
    state["model.decoder.4.bias"] = state["model.decoder.4.bias"] + 0.5  # damage nobody can see
    _write_raw(path, state)
    ckpt = load_checkpoint(path)
    assert len(ckpt.warnings) == 1 and "no integrity digest" in ckpt.warnings[0]
    assert "old.safetensors" in ckpt.warnings[0] and "\n" not in ckpt.warnings[0]
    # The same weights saved by this version carry the digest, and a flipped bit is caught.
    saved = save_checkpoint(tmp_path / "new.safetensors", ckpt.model)
    assert load_checkpoint(saved).warnings == []
    data = bytearray(saved.read_bytes())
    data[-3] ^= 0x01
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(saved)


@pytest.mark.parametrize("config, message", [
    ({"image_size": 400000, "channels": [32, 64], "latent_dim": 2}, "image_size 400000 is over"),
    ({"image_size": 2048, "channels": [32, 64], "latent_dim": 2}, "image_size 2048 is over"),
    ({"image_size": 28, "channels": [32, 100000], "latent_dim": 2}, "channels 100000 is over"),
    ({"image_size": 28, "channels": [32, 64], "latent_dim": 5000}, "a 5000-D code; this tool"),
    ({"image_size": 28, "channels": [32, 64], "latent_dim": 3}, "a 3-D code; this tool shows 2-D"),
    ({"image_size": 30, "channels": [32, 64], "latent_dim": 2}, "multiple of 4"),
    ({"image_size": -28, "channels": [32, 64], "latent_dim": 2}, "multiple of 4"),
    ({"image_size": "28", "channels": [32, 64], "latent_dim": 2}, "whole numbers"),
    ({"image_size": 28.5, "channels": [32, 64], "latent_dim": 2}, "whole numbers"),
    ({"image_size": 28, "channels": [32], "latent_dim": 2}, "invalid channels"),
    ({"image_size": 28, "channels": [32, 64], "latent_dim": 0}, "invalid channels"),
    ({"image_size": 28, "colour": True}, "unknown model config keys"),
    ("[28, 32, 64]", "not a JSON object"),
    ("{not json", "invalid model config"),
])
def test_the_config_is_checked_before_any_model_is_built(tmp_path, model, monkeypatch, config,
                                                         message):
    import cae.checkpoint

    built = []
    monkeypatch.setattr(cae.checkpoint, "CAE", lambda *a, **k: built.append(a) or CAE(*a, **k))
    path = tmp_path / "bad-config.safetensors"
    _write_raw(path, _state(model), model_config=config)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and "bad-config.safetensors" in str(info.value)
    assert built == []  # refused from the header alone


def _extras_file(tmp_path, model, extras, class_names=None):
    path = tmp_path / "extras.safetensors"
    tensors = {**_state(model), **{f"extra.{k}": np.asarray(v) for k, v in extras.items()}}
    names = list(class_names) if class_names is not None else [str(i) for i in range(10)]
    _write_raw(path, tensors, metadata=json.dumps({"class_names": names}))
    return path


def _timeline(model, epochs=(1, 2, 3), k=6):
    decoder = {k_: v.numpy() for k_, v in model.decoder.state_dict().items()}
    out = {"timeline.epochs": np.asarray(epochs, np.int64),
           "timeline.codes": np.zeros((len(epochs), k, 2), np.float32),
           "timeline.labels": np.arange(k, dtype=np.int64) % 10}
    for name, value in decoder.items():
        out[f"timeline.decoder.{name}"] = np.stack([value] * len(epochs))
    return out


GOOD_CODES = {"test_codes": np.zeros((4, 2), np.float32),
              "test_labels": np.array([0, 3, 9, 1], np.uint8)}


def _bad_extras(model):
    tl = _timeline(model)
    nan_codes = np.zeros((4, 2), np.float32)
    nan_codes[2, 1] = np.nan
    nan_tl = tl["timeline.codes"].copy()
    nan_tl[1, 0, 0] = np.inf
    w = "timeline.decoder.4.weight"
    return {
        "codes of shape (5,)": ({**GOOD_CODES, "test_codes": np.zeros(5, np.float32),
                                 "test_labels": np.zeros(5, np.uint8)},
                                "test_codes' must be float32"),
        "codes of three numbers": ({**GOOD_CODES, "test_codes": np.zeros((4, 3), np.float32)},
                                   r"float32 \(N, 2\), got float32 \(4, 3\)"),
        "float64 codes": ({**GOOD_CODES, "test_codes": np.zeros((4, 2))}, "got float64"),
        "NaN codes": ({**GOOD_CODES, "test_codes": nan_codes}, "test_codes' holds non-finite"),
        "fewer labels than codes": ({**GOOD_CODES, "test_labels": np.zeros(3, np.uint8)},
                                    r"shape \(4,\), got uint8 \(3,\)"),
        "float labels": ({**GOOD_CODES, "test_labels": np.zeros(4, np.float32)},
                         "must be integers"),
        "label 10 of 10 classes": ({**GOOD_CODES, "test_labels": np.array([0, 10, 1, 2], np.uint8)},
                                   "outside 0..9"),
        "negative label": ({**GOOD_CODES, "test_labels": np.array([0, -1, 1, 2], np.int64)},
                           "outside 0..9"),
        "codes without labels": ({"test_codes": GOOD_CODES["test_codes"]}, "must come together"),
        "an unknown extra": ({**GOOD_CODES, "codes": np.zeros((4, 2), np.float32)},
                             r"unknown extra arrays \['codes'\]"),
        "timeline without labels": ({k: v for k, v in tl.items() if k != "timeline.labels"},
                                    "incomplete or unknown"),
        "timeline epochs going back": ({**tl, "timeline.epochs": np.array([1, 3, 2])},
                                       "strictly increasing"),
        "timeline with inf codes": ({**tl, "timeline.codes": nan_tl},
                                    "timeline.codes' holds non-finite"),
        "timeline codes for 2 epochs of 3": ({**tl, "timeline.codes": tl["timeline.codes"][:2]},
                                             "timeline.codes' must be float32"),
        "timeline decoder of the wrong size": ({**tl, w: tl[w][:, :, :, :-1]},
                                               "timeline.decoder.4.weight' must be float32"),
        "timeline labels out of range": ({**tl, "timeline.labels": np.full(6, 12, np.int64)},
                                         "outside 0..9"),
    }


@pytest.mark.parametrize("case", list(_bad_extras(CAE())))
def test_every_extra_is_validated_at_load(tmp_path, model, case):
    extras, message = _bad_extras(model)[case]
    path = _extras_file(tmp_path, model, extras)
    with pytest.raises(CheckpointError, match=message) as info:
        load_checkpoint(path)
    assert "\n" not in str(info.value) and "extras.safetensors" in str(info.value)
    # Nor can this version write such a file.
    with pytest.raises(CheckpointError, match="could not save"):
        save_checkpoint(tmp_path / "saved.safetensors", model, {"class_names": list("0123456789")},
                        extras=extras)
    assert not (tmp_path / "saved.safetensors").exists()


def test_well_formed_extras_and_timeline_load(tmp_path, model):
    extras = {**GOOD_CODES, **_timeline(model)}
    ckpt = load_checkpoint(_extras_file(tmp_path, model, extras))
    assert set(ckpt.extras) == set(extras)
    # Without class names in the file, labels up to 255 (a uint8 label) are accepted.
    wide = {"test_codes": np.zeros((2, 2), np.float32), "test_labels": np.array([0, 200], np.uint8)}
    ckpt = load_checkpoint(_extras_file(tmp_path, model, wide, class_names=[]))
    assert ckpt.extras.keys() == wide.keys()


def test_a_config_within_bounds_but_other_than_the_tensors_is_refused(tmp_path, model):
    path = tmp_path / "m.safetensors"
    _write_raw(path, _state(model), model_config=CAEConfig(image_size=32).to_dict())
    with pytest.raises(CheckpointError, match="does not match the architecture"):
        load_checkpoint(path)


def test_a_damaged_digest_key_is_not_mistaken_for_a_file_without_one(tmp_path, model):
    """A flipped bit in the key "sha256" must not turn the digest check into a warning."""
    data = save_checkpoint(tmp_path / "m.safetensors", model).read_bytes()
    at = data.index(b'"sha256"') + 6
    path = tmp_path / "flipped-key.safetensors"
    path.write_bytes(data[:at] + bytes([data[at] ^ 1]) + data[at + 1:])  # "sha256" -> "sha257"
    with pytest.raises(CheckpointError, match="corrupt header"):
        load_checkpoint(path)
