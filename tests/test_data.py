"""The IDX reader, dataset look-up and the download path against a real HTTP server on 127.0.0.1."""
import gzip
import re
import time
from pathlib import Path

import numpy as np
import pytest

from cae import data as D
from cae.errors import DataError, DownloadError, IDXFormatError
from tests.helpers import FILES, spec_for, write_dataset_folder


def idx_bytes(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes() + arr.tobytes()


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip(tmp_path, compress, dtype):
    arr = (np.arange(60).reshape(3, 4, 5) * 3).astype(dtype)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    D.write_idx(path, arr)
    out, md5 = D.read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.shape == (3, 4, 5)
    np.testing.assert_array_equal(out, arr)
    assert len(md5) == 32
    assert out.flags.writeable


@pytest.mark.parametrize("content, problem", [
    (b"", "truncated header"),
    (b"\x00\x00", "truncated header"),
    (b"\x01\x00\x08\x01" + b"\x00\x00\x00\x01x", "magic"),
    (b"\x00\x00\x07\x01" + b"\x00\x00\x00\x01x", "dtype code"),
    (b"\x00\x00\x08\x00", "zero dimensions"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x02", "truncated dimensions"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x05abc", "corrupt or truncated: its header's dimensions "
                                            "(5,) need 5 bytes of data, the file holds 3"),
    # A garbled size (bytes of text where the dimension belongs): said so, not "over the limit".
    (b"\x00\x00\x08\x01garbage", "corrupt or truncated"),
    (gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x05abc"), "truncated payload"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x02abc",  # (the header names too few values)
     "corrupt header or trailing data: its header describes 1-D uint8 data of shape (2,)"),
    (gzip.compress(b"\x00\x00\x08\x03" + b"\x80\x00\x00\x00" * 3), "limit"),
    (b"\x1f\x8b\x08\x00garbage-not-gzip", "unreadable"),
])
def test_malformed_idx_gives_one_clear_error(tmp_path, content, problem):
    path = tmp_path / "bad-file"
    path.write_bytes(content)
    with pytest.raises(IDXFormatError) as info:
        D.read_idx(path)
    assert str(path) in str(info.value) and problem in str(info.value)


def test_huge_claimed_size_does_not_allocate(tmp_path):
    """2^31 x 2^31 bytes claimed by a tiny file: refused fast, nothing huge allocated."""
    path = tmp_path / "huge.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x08\x02\x80\x00\x00\x00\x80\x00\x00\x00" + b"x" * 10))
    t = time.perf_counter()
    with pytest.raises(IDXFormatError, match="limit"):
        D.read_idx(path)
    assert time.perf_counter() - t < 1.0
    # Under the limit but more than the file holds: truncated, not a big allocation.
    path.write_bytes(b"\x00\x00\x08\x01\x10\x00\x00\x00" + b"x" * 10)
    with pytest.raises(IDXFormatError, match="corrupt or truncated"):
        D.read_idx(path, max_bytes=1 << 40)


def test_missing_file(tmp_path):
    with pytest.raises(IDXFormatError, match="not found"):
        D.read_idx(tmp_path / "nope")


def test_load_folder_verifies_checksums(tiny_folder):
    spec = spec_for(tiny_folder, ())
    ds = D.load_folder(tiny_folder, spec)
    assert ds.train_images.shape == (256, 28, 28) and ds.test_labels.dtype == np.int64
    bad = D.DatasetSpec("synthetic", {**spec.resources, "test_labels": D.Resource(
        FILES["test_labels"], "0" * 32)}, (), spec.class_names)
    with pytest.raises(DataError, match="checksum mismatch"):
        D.load_folder(tiny_folder, bad)


def test_any_idx_folder_without_checksums(tmp_path):
    folder = write_dataset_folder(tmp_path / "x")
    # Uncompressed copies with the plain names also count.
    for f in list(folder.iterdir()):
        f.with_suffix("").write_bytes(gzip.decompress(f.read_bytes()))
        f.unlink()
    ds = D.load_dataset("folder", folder)
    assert len(ds.train_images) == 256 and ds.class_names == tuple(str(i) for i in range(10))


def test_an_unverified_folder_never_takes_a_named_datasets_name(tmp_path):
    """A folder called "mnist" whose files fail MNIST's checksums loaded as MNIST: its class
    names, its bundled model and its remembered folder."""
    folder = write_dataset_folder(tmp_path / "mnist")
    ds = D.load_dataset("auto", folder)
    assert ds.name == "mnist (unverified)" and ds.class_names == tuple(str(i) for i in range(10))
    assert D.load_dataset("folder", write_dataset_folder(tmp_path / "digits")).name == "digits"


def test_a_folder_that_is_not_one_is_named_as_such(tmp_path):
    with pytest.raises(DataError, match="nowhere: no such folder"):
        D.load_dataset("folder", tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="file.txt: not a folder"):
        D.load_dataset("folder", tmp_path / "file.txt")
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "1.png").write_bytes(b"")
    with pytest.raises(DataError, match="its pictures are in no subfolder"):
        D.load_dataset("folder", tmp_path / "pictures")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: needs train-images.*or pictures in one subfolder "
                       "per class$"):
        D.load_dataset("folder", tmp_path / "empty")


def test_mismatched_counts_are_refused(tmp_path):
    folder = write_dataset_folder(tmp_path / "x")
    D.write_idx(folder / FILES["train_labels"], np.zeros(10, np.uint8))
    with pytest.raises(DataError, match="256 train images but 10 labels"):
        D.load_dataset("folder", folder)


def test_search_order(tmp_path, monkeypatch):
    explicit = write_dataset_folder(tmp_path / "explicit")
    env = tmp_path / "env"
    write_dataset_folder(env / "mnist")
    cache = D.user_cache_dir() / "mnist"
    write_dataset_folder(cache)
    monkeypatch.setattr(D, "system_data_dirs", lambda name: [tmp_path / "system" / name])
    assert D.find_dataset("mnist", explicit) == explicit
    monkeypatch.setenv(D.ENV_VAR, str(env))
    assert D.find_dataset("mnist") == env / "mnist"
    monkeypatch.delenv(D.ENV_VAR)
    assert D.find_dataset("mnist") == cache
    for f in cache.iterdir():
        f.unlink()
    assert D.find_dataset("mnist") is None
    write_dataset_folder(tmp_path / "system" / "mnist")
    assert D.find_dataset("mnist") == tmp_path / "system" / "mnist"


def test_not_found_says_where_and_how(monkeypatch, tmp_path):
    monkeypatch.setattr(D, "system_data_dirs", lambda name: [tmp_path / "none"])
    with pytest.raises(DataError) as info:
        D.load_dataset("mnist", tmp_path / "empty")
    msg = str(info.value)
    assert str(tmp_path / "empty") in msg and "train-images-idx3-ubyte.gz" in msg
    assert "cae download" in msg and D.ENV_VAR in msg
    with pytest.raises(DataError, match="unknown dataset"):
        D.load_dataset("cifar")


# ----------------------------------------------------------------------------- downloads


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_good(server, tiny_folder, tmp_path):
    spec = spec_for(tiny_folder, (f"{server}/good/",))
    seen = []
    dest = D.download_dataset(spec=spec, folder=tmp_path / "cache",
                              progress=lambda n, done, total: seen.append((n, done, total)))
    assert _leftovers(dest) == sorted(FILES.values())
    assert D.load_folder(dest, spec).train_images.shape == (256, 28, 28)
    assert seen and seen[-1][1] == seen[-1][2]


def test_download_falls_through_mirrors(server, tiny_folder, tmp_path):
    mirrors = (f"{server}/missing/", f"{server}/broken/", f"{server}/corrupt/",
               f"{server}/truncated/", f"{server}/good/")
    spec = spec_for(tiny_folder, mirrors)
    dest = D.download_dataset(spec=spec, folder=tmp_path / "cache")
    assert D.load_folder(dest, spec).test_images.shape == (64, 28, 28)


@pytest.mark.parametrize("mode, reason", [("missing", "404"), ("broken", "500"),
                                          ("corrupt", "checksum"),
                                          ("truncated", r"truncated/\S+: connection closed after "
                                                        r"\d+ of \d+ bytes")])
def test_failed_download_leaves_nothing(server, tiny_folder, tmp_path, mode, reason):
    spec = spec_for(tiny_folder, (f"{server}/{mode}/",))
    with pytest.raises(DownloadError) as info:
        D.download_dataset(spec=spec, folder=tmp_path / "cache", timeout=5)
    assert re.search(reason, str(info.value)) and "could not download" in str(info.value)
    assert f"into {tmp_path / 'cache'}" in str(info.value)  # where to put the files by hand
    assert "cae download" not in str(info.value)  # not the step that just failed
    assert _leftovers(tmp_path / "cache") == []
    # A later good download still succeeds into the same folder.
    good = spec_for(tiny_folder, (f"{server}/good/",))
    D.download_dataset(spec=good, folder=tmp_path / "cache")
    assert _leftovers(tmp_path / "cache") == sorted(FILES.values())


def test_stalled_server_times_out(server, tiny_folder, tmp_path):
    spec = spec_for(tiny_folder, (f"{server}/stall/",))
    t = time.perf_counter()
    with pytest.raises(DownloadError, match="timed out"):
        D.download_dataset(spec=spec, folder=tmp_path / "cache", timeout=0.5)
    assert time.perf_counter() - t < 5
    assert _leftovers(tmp_path / "cache") == []


def test_cancel_stops_the_download(server, tiny_folder, tmp_path):
    spec = spec_for(tiny_folder, (f"{server}/good/", f"{server}/good/"))
    token = D.CancelToken()

    def progress(name, done, total):
        token.cancel()

    with pytest.raises(DownloadError, match="cancelled"):
        D.download_dataset(spec=spec, folder=tmp_path / "cache", progress=progress, cancel=token)
    assert _leftovers(tmp_path / "cache") == []


def test_existing_verified_files_are_not_downloaded_again(server, tiny_folder, tmp_path):
    spec = spec_for(tiny_folder, (f"{server}/good/",))
    dest = D.download_dataset(spec=spec, folder=tmp_path / "cache")
    offline = spec_for(tiny_folder, (f"{server}/missing/",))
    assert D.download_dataset(spec=offline, folder=dest) == dest


@pytest.mark.skipif(not (Path(__file__).resolve().parents[2] / "shared/data/mnist").is_dir(),
                    reason="canonical MNIST is not beside the project")
def test_real_mnist_checksums():
    folder = Path(__file__).resolve().parents[2] / "shared/data/mnist"
    ds = D.load_dataset("mnist", folder)
    assert ds.train_images.shape == (60000, 28, 28) and ds.test_images.shape == (10000, 28, 28)
    assert np.bincount(ds.test_labels).tolist()[:3] == [980, 1135, 1032]


def test_all_images_of_a_loaded_folder_is_no_copy(tiny_folder):
    """The map's view of every image concatenated the training and test images: a second copy
    of them all (243 MB for a 310,000-image folder)."""
    ds = D.load_folder(tiny_folder)
    both = ds.all_images()
    assert np.shares_memory(both, ds.train_images) and np.shares_memory(both, ds.test_images)
    np.testing.assert_array_equal(both, np.concatenate([ds.train_images, ds.test_images]))
    from dataclasses import replace
    fewer = replace(ds, train_images=ds.train_images[:10])  # no longer the two halves of one
    other = fewer.all_images()
    assert not np.shares_memory(other, ds.train_images) and len(other) == 10 + len(ds.test_images)
    np.testing.assert_array_equal(other[10:], ds.test_images)
    swapped = replace(ds, train_images=ds.test_images, test_images=ds.train_images)
    np.testing.assert_array_equal(swapped.all_images()[:len(ds.test_images)], ds.test_images)
