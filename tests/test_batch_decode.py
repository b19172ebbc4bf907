"""BatchDecoder computes the model's decode (float32 products, within rounding) for every code
the map can show, near or far, and gives non-finite codes exactly what the model gives."""
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import cae.batch_decode as batch_decode
from cae.batch_decode import SMALL_BATCH, BatchDecoder
from cae.checkpoint import load_checkpoint
from cae.model import CAE, CAEConfig, decode_images
from cae.train import build_model
from tests.helpers import mnist_sample

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "model.safetensors"


def grid(x0, x1, y0, y1, n):
    xs, ys = torch.meshgrid(torch.linspace(x0, x1, n), torch.linspace(y0, y1, n), indexing="xy")
    return torch.stack([xs, ys], -1).reshape(-1, 2)


def contrasty(model: CAE) -> CAE:
    """Scale the output layer so a freshly initialised model draws pixels all over [0, 1]."""
    with torch.no_grad():
        model.decoder[4].weight.mul_(300.0)
    return model


def half_dead(model: CAE) -> CAE:
    """Kill half of the first layer's channels and a third of the second's, everywhere near 0."""
    with torch.no_grad():
        model.decoder[0].bias[::2] = -100.0
        model.decoder[2].bias[::3] = -100.0
    return model


@pytest.mark.parametrize("config", [CAEConfig(), CAEConfig(image_size=16, channels=(8, 12))])
@pytest.mark.parametrize("dead", [False, True])
def test_fp32_matrices_equal_the_model(config, dead):
    model = build_model(config, seed=3)
    if dead:
        model = half_dead(model)
    z = grid(-4, 3, -2, 5, 9)  # 81 points: the matrix path
    assert len(z) >= SMALL_BATCH
    decoder = BatchDecoder(model)
    expected = decode_images(model, z)
    got = decoder(z)
    assert got.shape == expected.shape == (81, 1, config.image_size, config.image_size)
    torch.testing.assert_close(got, expected, atol=2e-6, rtol=0)
    assert expected.std() > 0  # a model that draws something, so equality means something


def test_dead_units_are_left_out_of_the_products(monkeypatch):
    """With most units dead the products see only the live ones (and the result is unchanged)."""
    model = half_dead(build_model(seed=1))
    seen = []
    original = batch_decode._TransposedConvMatrix.__call__

    def spy(self, x, live, take):
        seen.append((x.shape[0], len(live), self.in_units))
        return original(self, x, live, take)

    monkeypatch.setattr(batch_decode._TransposedConvMatrix, "__call__", spy)
    z = grid(-1, 1, -1, 1, 6)
    out = BatchDecoder(model)(z)
    torch.testing.assert_close(out, decode_images(model, z), atol=2e-6, rtol=0)
    width, live, units = seen[0]
    assert width == live <= units // 2


def test_each_group_of_neighbouring_codes_multiplies_only_its_own_live_units(monkeypatch):
    """Over a wide region every patch of codes has fewer live units than the whole batch, and
    each product sees only its patch's."""
    model = contrasty(build_model(seed=5))
    z = grid(-6, 6, -6, 6, 24)  # 576 codes: several groups
    decoder = BatchDecoder(model)
    with torch.no_grad():
        pre = z @ decoder.first_weight + decoder.first_bias
    whole = int((pre > 0).any(0).sum())
    seen = []
    original = batch_decode._TransposedConvMatrix.__call__

    def spy(self, x, live, take):
        if self is decoder.second:
            seen.append(len(live))
        return original(self, x, live, take)

    monkeypatch.setattr(batch_decode._TransposedConvMatrix, "__call__", spy)
    out = decoder(z)
    torch.testing.assert_close(out, decode_images(model, z), atol=2e-5, rtol=0)
    assert len(seen) == len(batch_decode._neighbourhoods(z, batch_decode.GROUP)) > 1
    assert max(seen) < 0.85 * whole, (seen, whole)


@pytest.mark.parametrize("config", [CAEConfig(), CAEConfig(image_size=16, channels=(8, 12))])
def test_the_weight_rows_are_the_layer_applied_to_one_unit(config):
    """Row j of a transposed convolution's matrix is what the layer makes of unit j alone."""
    model = build_model(config, seed=9)
    decoder = BatchDecoder(model)
    q, h = config.image_size // 4, config.image_size // 2
    for matrix, layer, size in [(decoder.second, model.decoder[2], q),
                                (decoder.third, model.decoder[4], h)]:
        channels = layer.weight.shape[0]
        units = torch.tensor([0, 1, channels + 3, matrix.in_units // 2, matrix.in_units - 1])
        impulses = torch.zeros(len(units), size * size * channels)
        impulses[torch.arange(len(units)), units] = 1.0
        with torch.no_grad():
            images = layer(impulses.reshape(-1, size, size, channels).permute(0, 3, 1, 2))
            images -= layer.bias[:, None, None]
        expected = images.permute(0, 2, 3, 1).reshape(len(units), -1)  # channels-last
        torch.testing.assert_close(matrix.rows(units), expected, atol=1e-6, rtol=0)
        assert expected.abs().amax(1).min() > 0


def test_groups_are_a_partition_into_small_patches_of_the_plane():
    z = grid(0, 1, 0, 1, 32)[torch.randperm(1024, generator=torch.Generator().manual_seed(0))]
    groups = batch_decode._neighbourhoods(z, 128)
    assert sorted(torch.cat(groups).tolist()) == list(range(len(z)))
    assert all(len(index) <= 128 for index in groups)
    for index in groups:  # each about an eighth of the square
        extent = z[index].amax(0) - z[index].amin(0)
        assert float(extent.prod()) <= 0.2, extent


def kept_buffers() -> dict[str, tuple[int, int]]:
    return {name: (b.data_ptr(), b.numel()) for name, b in batch_decode._WORKSPACE._buffers.items()}


def test_scratch_memory_is_kept_from_one_decoder_to_the_next():
    """A training run builds a decoder per snapshot; the second one works in the first one's
    memory (fresh memory costs a page fault per 4 kB), and what it left there does not leak in."""
    z = grid(-3, 3, -3, 3, 20)
    BatchDecoder(contrasty(build_model(seed=11)))(z)
    before = kept_buffers()
    assert {"first", "rows", "second", "third"} <= set(before)
    model = contrasty(build_model(seed=12))
    got = BatchDecoder(model)(z)
    assert kept_buffers() == before
    torch.testing.assert_close(got, decode_images(model, z), atol=2e-5, rtol=0)


def test_a_decode_while_the_memory_is_in_use_gets_its_own():
    """Another thread decoding meanwhile (here: this one, holding it) neither waits nor writes
    into the kept buffers."""
    model = contrasty(build_model(seed=13))
    z = grid(-3, 3, -3, 3, 20)
    BatchDecoder(model)(z)
    buffers = batch_decode._WORKSPACE._buffers
    with batch_decode._WORKSPACE.borrow(torch.device("cpu")):
        for b in buffers.values():
            b.fill_(7.0)
        got = BatchDecoder(model)(z)
    torch.testing.assert_close(got, decode_images(model, z), atol=2e-5, rtol=0)
    assert all(bool((b == 7.0).all()) for b in buffers.values())


def test_two_threads_decoding_at_once_both_get_the_models_images():
    models = [contrasty(build_model(seed=s)) for s in (14, 15)]
    z = grid(-3, 3, -3, 3, 24)
    expected = [decode_images(m, z) for m in models]
    decoders = [BatchDecoder(m) for m in models]
    errors = [0.0, 0.0]

    def run(k: int) -> None:
        for _ in range(15):
            errors[k] = max(errors[k], float((decoders[k](z) - expected[k]).abs().max()))

    threads = [threading.Thread(target=run, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(errors) <= 2e-5, errors


def test_more_live_units_than_the_kept_memory_holds_are_multiplied_in_chunks(monkeypatch):
    """An untrained model has half its units live everywhere: their weight rows are copied and
    multiplied a chunk at a time, so the kept memory stays bounded and the sum is the same."""
    model = contrasty(build_model(seed=16))
    monkeypatch.setattr(batch_decode, "_WORKSPACE", batch_decode._Workspace())
    monkeypatch.setattr(batch_decode, "KEEP_BYTES", 4 * 6272 * 200)  # 200 second-layer rows
    copied = []
    original = batch_decode._TransposedConvMatrix.rows

    def spy(self, units, out=None):
        copied.append((self.out_units, len(units)))
        return original(self, units, out)

    monkeypatch.setattr(batch_decode._TransposedConvMatrix, "rows", spy)
    z = grid(-6, 6, -6, 6, 24)
    got = BatchDecoder(model)(z)
    torch.testing.assert_close(got, decode_images(model, z), atol=2e-5, rtol=0)
    second = [n for width, n in copied if width == 6272]
    assert max(second) == 200 and len(second) > len(batch_decode._neighbourhoods(z, 128))
    assert max(b.numel() for b in batch_decode._WORKSPACE._buffers.values()) <= 6272 * 200


def test_a_large_scattered_batch_with_bad_codes_decodes_as_the_model_does():
    model = contrasty(build_model(seed=10))
    z = torch.randn(700, 2, generator=torch.Generator().manual_seed(1)) * 3
    z[17] = float("nan")
    z[300, 0] = float("inf")
    z[301] = 1e30
    got, expected = BatchDecoder(model)(z), decode_images(model, z)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0, equal_nan=True)
    assert expected[:16].std() > 0.1


def test_a_region_where_everything_is_dead_decodes_to_the_output_bias():
    model = build_model(seed=2)
    with torch.no_grad():
        model.decoder[0].bias.fill_(-1e4)
        model.decoder[2].bias.fill_(-1.0)
        model.decoder[4].bias.fill_(0.25)
    out = BatchDecoder(model)(grid(-1, 1, -1, 1, 5))
    torch.testing.assert_close(out, torch.full_like(out, 0.25))


def test_small_batches_go_through_the_model_exactly():
    model = build_model(seed=4)
    z = torch.randn(SMALL_BATCH - 1, 2)
    assert torch.equal(BatchDecoder(model)(z), decode_images(model, z))


# Regions the map can show: the test codes' region, zoomed out to +-1e4, and extreme aspect
# ratios (a sliver 1e-3 high and 2e4 wide, one far from the origin).
REGIONS = [(-2.2, 5.0, -2.8, 5.2), (-20, 20, -20, 20), (-1e3, 1e3, -1e3, 1e3),
           (-1e4, 1e4, -1e4, 1e4), (-1e4, 1e4, 3.0, 3.001), (9990, 1e4, -1e4, 1e4),
           (-5e-4, 5e-4, -2e3, 2e3)]
TOLERANCE = 0.01  # the README's promise for the mosaic, largest pixel error


@pytest.fixture(scope="module")
def bundled():
    if not BUNDLED.exists():
        pytest.skip("bundled model absent")
    return load_checkpoint(BUNDLED).model


@pytest.mark.parametrize("region", REGIONS, ids=[str(r) for r in REGIONS])
def test_every_region_the_map_can_show_is_within_display_precision(bundled, region):
    z = grid(*region, 16)
    expected = decode_images(bundled, z)
    err = (BatchDecoder(bundled)(z) - expected).abs()
    assert err.max() <= TOLERANCE, f"largest pixel error {float(err.max()):.4f} over {region}"
    # Pixels that are neither 0 nor 1 (where an error shows), so the bound means something.
    assert ((expected > 0.05) & (expected < 0.95)).sum() > 10


def test_a_32x32_grid_over_1000_squared_is_within_display_precision(bundled):
    z = grid(-1e3, 1e3, -1e3, 1e3, 32)
    err = (BatchDecoder(bundled)(z) - decode_images(bundled, z)).abs()
    assert err.max() <= TOLERANCE, float(err.max())


def test_real_digits_codes_decode_as_the_model_does(bundled):
    """The codes of real digits (the shipped MNIST sample), where the map's dots are."""
    images, _ = mnist_sample()
    with torch.no_grad():
        z = bundled.encode(torch.from_numpy(images[:64]).float().div(255).unsqueeze(1))
    expected = decode_images(bundled, z)
    assert expected.amax() > 0.9  # real strokes
    err = (BatchDecoder(bundled)(z) - expected).abs()
    assert err.max() <= 1e-4, float(err.max())


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf"), 1e30])
def test_non_finite_codes_get_what_the_model_gives(bad):
    model = contrasty(build_model(seed=7))
    z = grid(-1, 1, -1, 1, 6)
    z[3, 0] = bad
    z[10] = bad
    got, expected = BatchDecoder(model)(z), decode_images(model, z)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0, equal_nan=True)


def test_a_nan_code_leaves_the_other_points_alone():
    """A NaN point must not mark every unit dead for the whole batch."""
    model = contrasty(build_model(seed=8))
    z = grid(-2, 2, -2, 2, 6)
    clean = BatchDecoder(model)(z)
    z[0] = float("nan")
    got = BatchDecoder(model)(z)
    assert torch.isnan(got[0]).all()  # what the model gives a NaN code
    torch.testing.assert_close(got[1:], clean[1:], atol=1e-5, rtol=0)
    assert clean[1:].std() > 0.1


def test_the_decoder_keeps_the_weights_it_was_built_with():
    model = build_model(seed=6)
    z = grid(-1, 1, -1, 1, 5)
    decoder = BatchDecoder(model)
    before = decoder(z).clone()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-1.0)
    torch.testing.assert_close(decoder(z), before)
    assert not np.allclose(decode_images(model, z).numpy(), before.numpy())


def test_a_decoder_holds_its_padded_kernels_not_a_matrix():
    """One decoder per training snapshot: each holds the second layer's padded kernel (5.5 MB),
    not its 78 MB matrix nor the 21 MB of shifted copies an earlier layout built."""
    decoder = BatchDecoder(build_model(seed=1))
    held = {id(t.untyped_storage()): t.untyped_storage().nbytes()
            for t in vars(decoder.second).values() if isinstance(t, torch.Tensor)}
    assert sum(held.values()) < 8 * 2**20
    z = grid(-2, 2, -2, 2, 8)
    torch.testing.assert_close(decoder(z), decode_images(decoder.model, z), atol=2e-5, rtol=0)
