"""The map's fast encode (bf16 where the hardware has it) against float32: close enough for the map
and its kNN on real digits through the shipped model, and the exact path is exact."""
from pathlib import Path

import numpy as np
import pytest
import torch

import cae.metrics as metrics
from cae.checkpoint import load_checkpoint
from cae.metrics import encode_images, knn_predict_excluding_self
from cae.model import CAE, CAEConfig
from tests.helpers import mnist_sample

BUNDLED = Path(__file__).resolve().parents[1] / "resources" / "model.safetensors"
# Largest and mean code error allowed, as fractions of the codes' spread (std per dimension).
# Measured on the 200-digit sample: 0.011 and 0.0011 (bf16 on AVX512-BF16).
MAX_REL, MEAN_REL = 0.03, 0.004


def disagreement(fast: np.ndarray, exact: np.ndarray) -> str | None:
    """Why ``fast`` is not a faithful copy of ``exact`` codes, or None when it is."""
    if fast.shape != exact.shape or fast.dtype != np.float32:
        return f"shape/dtype {fast.shape} {fast.dtype}"
    if not np.isfinite(fast).all():
        return "non-finite codes"
    err = np.abs(fast - exact) / exact.std(0)
    if err.max() > MAX_REL or err.mean() > MEAN_REL:
        return f"error {err.max():.4f} (mean {err.mean():.5f}) of the spread"
    return None


@pytest.fixture(scope="module")
def model() -> CAE:
    return load_checkpoint(BUNDLED).model


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    return mnist_sample()[0]


def _reference(model: CAE, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.encode(torch.from_numpy(images).unsqueeze(1).float() / 255).numpy()


def test_fp32_path_gives_the_models_exact_codes(model, digits):
    exact = _reference(model, digits)
    assert exact.std(0).min() > 0.3  # real contrast: a wrong code cannot hide in the tolerance
    np.testing.assert_array_equal(encode_images(model, digits), exact)
    np.testing.assert_array_equal(encode_images(model, digits[:30], batch_size=7), exact[:30])
    # Another shape of the same architecture, freshly initialised, and NaN pixels' propagation.
    torch.manual_seed(0)
    other = CAE(CAEConfig(image_size=32, channels=(8, 16), latent_dim=3))
    images = np.random.default_rng(0).integers(0, 256, (9, 32, 32), dtype=np.uint8)
    np.testing.assert_array_equal(encode_images(other, images), _reference(other, images))


def test_bf16_codes_are_within_a_fraction_of_the_spread(model, digits):
    exact = _reference(model, digits)
    fast = encode_images(model, digits, precision="bf16")
    assert not np.array_equal(fast, exact)  # the bf16 path really ran
    assert disagreement(fast, exact) is None, disagreement(fast, exact)


def test_the_tolerance_rejects_broken_encoders(model, digits):
    exact = _reference(model, digits)
    assert disagreement(np.zeros_like(exact), exact)
    assert disagreement(exact[:, ::-1].copy(), exact)  # code axes swapped
    assert disagreement(exact * 1.05, exact)  # 5% scale error
    broken = CAE(model.config)
    broken.load_state_dict(model.state_dict())
    with torch.no_grad():  # a transposed 3x3 kernel in the second convolution
        broken.encoder[3].weight.copy_(broken.encoder[3].weight.transpose(2, 3).clone())
    assert disagreement(encode_images(broken, digits, precision="bf16"), exact)


def test_bf16_codes_give_the_same_knn_votes(model, digits):
    labels = mnist_sample()[1].astype(np.int64)
    exact = _reference(model, digits)
    fast = encode_images(model, digits, precision="bf16")
    idx = np.arange(len(digits))
    exact_pred = knn_predict_excluding_self(exact, labels, exact, idx)
    fast_pred = knn_predict_excluding_self(fast, labels, fast, idx)
    assert (exact_pred == labels).mean() > 0.5  # the votes mean something (chance: 0.1)
    assert (fast_pred != exact_pred).sum() <= 2  # of 200 votes (1 moves on AVX512-BF16)


def test_auto_follows_the_hardwares_precision(model, digits, monkeypatch):
    bf16 = encode_images(model, digits[:20], precision="bf16")
    monkeypatch.setattr(metrics, "fast_precision", lambda device: "bf16")
    np.testing.assert_array_equal(encode_images(model, digits[:20], precision="auto"), bf16)
    monkeypatch.setattr(metrics, "fast_precision", lambda device: "fp32")
    np.testing.assert_array_equal(encode_images(model, digits[:20], precision="auto"),
                                  _reference(model, digits[:20]))


def test_unknown_precision_is_one_clear_error(model, digits):
    with pytest.raises(ValueError, match="precision must be one of auto, bf16, fp32"):
        encode_images(model, digits[:2], precision="fp16")
