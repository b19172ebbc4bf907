"""The on-disk code cache: trusted only under its exact keys, never through pickle, atomic."""
import os

import numpy as np
import pytest
import torch

from cae import code_cache as cc
from cae.model import CAE

CODES = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)


def test_round_trip_under_the_user_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = cc.save_codes("m" * 64, "d" * 64, CODES)
    assert path.parent == tmp_path / "cae-explorer" / "codes"
    np.testing.assert_array_equal(cc.load_codes("m" * 64, "d" * 64, count=50), CODES)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left


def test_another_model_or_data_key_misses():
    cc.save_codes("model-a", "data-a", CODES)
    assert cc.load_codes("model-a", "data-a") is not None
    assert cc.load_codes("model-b", "data-a") is None
    assert cc.load_codes("model-a", "data-b") is None


@pytest.mark.parametrize("stored", [("model-b", "data-a"), ("model-a", "data-b")])
def test_a_file_whose_stored_key_differs_is_not_trusted(stored):
    other = cc.save_codes(*stored, CODES)
    other.replace(cc._path("model-a", "data-a"))  # right name, another key inside
    assert cc.load_codes("model-a", "data-a") is None


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "pickle", "nan", "3d"])
def test_corrupt_files_are_ignored(damage):
    path = cc.save_codes("model-a", "data-a", CODES)
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(bytes(len(data)))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        codes = {"pickle": np.array([{"x": 1}], dtype=object),
                 "nan": np.full((50, 2), np.nan, np.float32),
                 "3d": np.zeros((50, 2, 1), np.float32)}[damage]
        with open(path, "wb") as f:
            np.savez(f, format=np.array(cc.FORMAT), model_key=np.array("model-a"),
                     data_key=np.array("data-a"), codes=codes)
    assert cc.load_codes("model-a", "data-a") is None
    # Rebuilt: saving again under the key makes it loadable.
    cc.save_codes("model-a", "data-a", CODES)
    np.testing.assert_array_equal(cc.load_codes("model-a", "data-a"), CODES)


def test_a_count_that_does_not_match_the_data_misses():
    cc.save_codes("model-a", "data-a", CODES)
    assert cc.load_codes("model-a", "data-a", count=51) is None


def test_model_key_follows_every_weight_and_the_precision(monkeypatch):
    torch.manual_seed(0)
    model = CAE()
    key = cc.model_key(model, "fp32")
    same = CAE()
    same.load_state_dict(model.state_dict())
    assert cc.model_key(same, "fp32") == key
    assert cc.model_key(model, "bf16") != key
    monkeypatch.setattr(cc, "fast_precision", lambda device: "bf16")
    assert cc.model_key(model, "auto") == cc.model_key(model, "bf16")
    with torch.no_grad():
        same.decoder[-1].bias.add_(1e-7)
    assert cc.model_key(same, "fp32") != key


def test_data_key_follows_every_pixel():
    images = np.zeros((10, 28, 28), np.uint8)
    key = cc.data_key(images)
    assert cc.data_key(images.copy()) == key
    images[9, 27, 27] = 1
    assert cc.data_key(images) != key
    wide, tall = np.zeros((10, 28, 27), np.uint8), np.zeros((10, 27, 28), np.uint8)
    assert cc.data_key(wide) != cc.data_key(tall)  # same bytes, another shape


def test_an_unwritable_cache_is_not_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # the cache folder cannot be created
    assert cc.save_codes("model-a", "data-a", CODES) is None
    assert cc.load_codes("model-a", "data-a") is None


def test_old_entries_are_pruned(monkeypatch):
    monkeypatch.setattr(cc, "KEEP", 3)
    paths = []
    for i in range(5):
        paths.append(cc.save_codes(f"model-{i}", "data", CODES))
        os.utime(paths[-1], (1000 + i, 1000 + i))  # distinct times, whatever the clock's grain
    assert sorted(p.name for p in cc.cache_dir().iterdir()) == sorted(p.name for p in paths[2:])


def test_bad_keys_and_codes_are_one_clear_error():
    with pytest.raises(ValueError, match="model key must be"):
        cc.load_codes("", "data")
    with pytest.raises(ValueError, match="data key must be"):
        cc.save_codes("model", "../x", CODES)
    with pytest.raises(ValueError, match="finite"):
        cc.save_codes("model", "data", np.zeros(3))
