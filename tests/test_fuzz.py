"""Hostile and broken files, fuzzed (hypothesis, bounded): the IDX reader and the model loader
must end in the project's clear error, quickly, without allocating far beyond the file's size."""
import gzip
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cae.checkpoint import load_checkpoint, save_checkpoint
from cae.data import read_idx, write_idx
from cae.errors import CheckpointError, IDXFormatError
from cae.model import CAE

FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def bounded(fn, path, errors, size):
    """Run fn(path): it must raise one of ``errors`` (or succeed) within 1 s, and its peak
    allocation must stay under a small multiple of the file's (uncompressed) size."""
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        fn(path)
    except errors:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.perf_counter() - t0 < 1.0
    assert peak < 4 * size + (2 << 20), (peak, size)


@pytest.fixture(scope="module")
def good_idx(tmp_path_factory):
    path = tmp_path_factory.mktemp("idx") / "images.idx"
    write_idx(path, (np.arange(5 * 28 * 28) % 256).astype(np.uint8).reshape(5, 28, 28))
    return path.read_bytes()


@pytest.mark.parametrize("reader, error, suffix", [
    (read_idx, IDXFormatError, ".idx"), (load_checkpoint, CheckpointError, ".safetensors")])
@FUZZ
@given(data=st.binary(max_size=4096))
def test_random_bytes(tmp_path, reader, error, suffix, data):
    path = tmp_path / f"random{suffix}"
    path.write_bytes(data)
    bounded(reader, path, error, len(data))


@FUZZ
@given(cut=st.integers(0, 5 * 784 + 15), gz=st.booleans())
def test_truncation_anywhere(tmp_path, good_idx, cut, gz):
    path = tmp_path / "cut.idx"
    data = good_idx[:cut]
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(IDXFormatError):
        read_idx(path)


@FUZZ
@given(flips=st.lists(st.integers(0, 8 * 20 - 1), min_size=1, max_size=4))
def test_bit_flips_in_the_header(tmp_path, good_idx, flips):
    data = bytearray(good_idx)
    for bit in flips:
        data[bit // 8] ^= 1 << (bit % 8)
    path = tmp_path / "flipped.idx"
    path.write_bytes(bytes(data))
    bounded(read_idx, path, IDXFormatError, len(data))


@FUZZ
@given(dims=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4),
       code=st.sampled_from([8, 9, 11, 12, 13, 14]))
def test_absurd_dimensions(tmp_path, dims, code):
    path = tmp_path / "dims.idx"
    header = bytes([0, 0, code, len(dims)]) + np.asarray(dims, ">u4").tobytes()
    path.write_bytes(header + b"\x00" * 64)
    bounded(read_idx, path, IDXFormatError, 64)


def test_gzip_bomb_is_refused_before_inflating(tmp_path):
    header = bytes([0, 0, 8, 3]) + np.asarray([1000, 1000, 200], ">u4").tobytes()  # 200 MB of zeros
    path = tmp_path / "bomb.idx.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(header)
        zeros = bytes(1 << 20)
        for _ in range(200):
            f.write(zeros)
    assert path.stat().st_size < 400_000
    tracemalloc.start()
    t0 = time.perf_counter()
    with pytest.raises(IDXFormatError, match="gzip bomb"):
        read_idx(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert time.perf_counter() - t0 < 1.0 and peak < 4 << 20


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "m.safetensors"
    save_checkpoint(path, CAE(), {"dataset": "mnist"})
    return path.read_bytes()


@FUZZ
@given(cut=st.integers(0, 1_900_000))
def test_truncated_model(tmp_path, good_checkpoint, cut):
    path = tmp_path / "cut.safetensors"
    path.write_bytes(good_checkpoint[:cut % len(good_checkpoint)])
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(positions=st.lists(st.integers(0, 1_830_000), min_size=1, max_size=3, unique=True),
       bit=st.integers(0, 7))
def test_bit_flips_anywhere_in_a_model(tmp_path, good_checkpoint, positions, bit):
    """Header or weights: a flipped bit is always caught (the weights by their checksum)."""
    data = bytearray(good_checkpoint)
    for p in {p % len(data) for p in positions}:
        data[p] ^= 1 << bit
    path = tmp_path / "flipped.safetensors"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_header_length_larger_than_the_file(tmp_path, good_checkpoint):
    path = tmp_path / "long-header.safetensors"
    path.write_bytes((len(good_checkpoint) * 2).to_bytes(8, "little") + good_checkpoint[8:])
    with pytest.raises(CheckpointError, match="header"):
        load_checkpoint(path)
