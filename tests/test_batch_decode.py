"""BatchDecoder computes the model's decode: exactly in fp32, within bf16 rounding in bf16."""
from pathlib import Path

import numpy as np
import pytest
import torch

import cae.batch_decode as batch_decode
from cae.batch_decode import SMALL_BATCH, BatchDecoder
from cae.checkpoint import load_checkpoint
from cae.model import CAE, CAEConfig, decode_images
from cae.train import build_model

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "model.safetensors"


def grid(x0, x1, y0, y1, n):
    xs, ys = torch.meshgrid(torch.linspace(x0, x1, n), torch.linspace(y0, y1, n), indexing="xy")
    return torch.stack([xs, ys], -1).reshape(-1, 2)


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
    decoder = BatchDecoder(model, torch.float32)
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

    def spy(self, x, live=None):
        seen.append((x.shape[1], None if live is None else len(live), self.matrix.shape[0]))
        return original(self, x, live)

    monkeypatch.setattr(batch_decode._TransposedConvMatrix, "__call__", spy)
    z = grid(-1, 1, -1, 1, 6)
    out = BatchDecoder(model, torch.float32)(z)
    torch.testing.assert_close(out, decode_images(model, z), atol=2e-6, rtol=0)
    width, live, units = seen[0]
    assert live is not None and width == live <= units // 2


def test_a_region_where_everything_is_dead_decodes_to_the_output_bias():
    model = build_model(seed=2)
    with torch.no_grad():
        model.decoder[0].bias.fill_(-1e4)
        model.decoder[2].bias.fill_(-1.0)
        model.decoder[4].bias.fill_(0.25)
    out = BatchDecoder(model, torch.float32)(grid(-1, 1, -1, 1, 5))
    torch.testing.assert_close(out, torch.full_like(out, 0.25))


def test_small_batches_go_through_the_model_exactly():
    model = build_model(seed=4)
    z = torch.randn(SMALL_BATCH - 1, 2)
    assert torch.equal(BatchDecoder(model, torch.bfloat16)(z), decode_images(model, z))


@pytest.mark.skipif(not BUNDLED.exists(), reason="bundled model absent")
def test_bf16_on_the_bundled_model_is_within_display_precision():
    model = load_checkpoint(BUNDLED).model
    z = grid(-2.2, 5.0, -2.8, 5.2, 24)  # the region of the test digits' codes
    err = (BatchDecoder(model, torch.bfloat16)(z) - decode_images(model, z)).abs()
    assert err.max() < 0.03 and err.mean() < 2e-3, (err.max(), err.mean())


def test_without_native_bf16_it_decodes_with_the_model(monkeypatch):
    monkeypatch.setattr(batch_decode, "fast_precision", lambda device: "fp32")
    model = build_model(seed=5)
    decoder = BatchDecoder(model)
    assert decoder.dtype is None
    z = grid(-1, 1, -1, 1, 8)
    assert torch.equal(decoder(z), decode_images(model, z))


def test_auto_picks_bf16_where_native(monkeypatch):
    monkeypatch.setattr(batch_decode, "fast_precision", lambda device: "bf16")
    assert BatchDecoder(build_model(seed=5)).dtype == torch.bfloat16


def test_the_decoder_keeps_the_weights_it_was_built_with():
    model = build_model(seed=6)
    z = grid(-1, 1, -1, 1, 5)
    decoder = BatchDecoder(model, torch.float32)
    before = decoder(z).clone()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-1.0)
    torch.testing.assert_close(decoder(z), before)
    assert not np.allclose(decode_images(model, z).numpy(), before.numpy())
