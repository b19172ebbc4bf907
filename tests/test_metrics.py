"""Metrics on hand-made codes and a trained tiny model."""
import pytest
import numpy as np
import torch

from cae.metrics import (encode_images, error_rank, evaluate, knn_predict, per_class_mean,
                         reconstruction_errors)
from cae.model import CAE
from tests.helpers import make_dataset


def test_knn_votes_and_ties():
    train = np.array([[0, 0], [0, 1], [1, 0], [10, 10], [10, 11], [11, 10]], np.float32)
    labels = np.array([0, 0, 0, 1, 1, 1])
    query = np.array([[0.2, 0.2], [10.5, 10.5], [5, 5]], np.float32)
    assert knn_predict(train, labels, query, k=3).tolist() == [0, 1, 0]
    # k=2 with one neighbour of each class: the nearer one wins the tie.
    assert knn_predict(train, labels, np.array([[6, 6]], np.float32), k=2).tolist() == [1]
    # Batching does not change the answer.
    q = np.random.default_rng(0).normal(5, 4, (100, 2)).astype(np.float32)
    np.testing.assert_array_equal(knn_predict(train, labels, q, batch_size=7),
                                  knn_predict(train, labels, q, batch_size=1000))


def test_per_class_mean():
    assert per_class_mean(np.array([1.0, 3.0, 5.0]), np.array([0, 0, 2]), 3)[0] == 2.0
    assert per_class_mean(np.array([1.0]), np.array([0]), 2)[1] is None  # JSON null, not NaN


def test_reconstruction_error_and_codes_match_the_model(monkeypatch):
    import cae.metrics
    monkeypatch.setattr(cae.metrics, "DECODE_CHUNK", 64)  # several chunks, the last one short
    torch.manual_seed(0)
    model = CAE()
    ds = make_dataset(32, 300)
    x = torch.from_numpy(ds.test_images).float().div(255).unsqueeze(1)
    with torch.no_grad():
        expected = ((model(x).clamp(0, 1) - x) ** 2).mean(dim=(1, 2, 3)).numpy()
        codes = model.encode(x).numpy()
    np.testing.assert_allclose(reconstruction_errors(model, ds.test_images), expected,
                               rtol=1e-5, atol=1e-7)
    given = reconstruction_errors(model, ds.test_images, codes)  # the codes at hand: no encode
    np.testing.assert_allclose(given, expected, rtol=1e-5, atol=1e-7)
    moved = codes + np.float32(100)  # and they are what is decoded
    assert np.abs(reconstruction_errors(model, ds.test_images, moved) - expected).max() > 1e-4
    np.testing.assert_allclose(encode_images(model, ds.test_images, batch_size=3), codes,
                               rtol=1e-5, atol=1e-6)
    result = evaluate(model, ds)
    assert abs(result["test_mse"] - expected.mean()) < 1e-6
    assert len(result["per_class_mse"]) == 10 and 0 <= result["knn5_accuracy"] <= 1
    pct = result["test_mse_percentiles"]
    assert len(pct) == 101 and pct[0] == pytest.approx(expected.min(), rel=1e-5)
    assert pct[50] == pytest.approx(np.median(expected), rel=1e-5)
    assert pct[100] == pytest.approx(expected.max(), rel=1e-5)
    # A drawing's error among them: the share of test images reconstructed better.
    for error in (expected[7], np.percentile(expected, 30), expected.max() * 2, 0.0):
        assert error_rank(float(error), pct) == pytest.approx(
            100 * (expected < error).mean(), abs=100 / len(expected) + 0.5)


def test_progress_reports_rising_fractions_up_to_one():
    torch.manual_seed(0)
    model = CAE()
    ds = make_dataset(40, 24)
    seen: list[float] = []
    encode_images(model, ds.test_images, batch_size=5, progress=seen.append)
    assert seen == [min(5 * (i + 1), 24) / 24 for i in range(5)]
    seen.clear()
    evaluate(model, ds, progress=seen.append)
    assert seen[-1] == 1.0 and all(0 < f <= 1 for f in seen)
    assert all(a <= b for a, b in zip(seen, seen[1:])), seen
    # Each stage is reported (reconstruction, train codes, test codes): more than one call.
    assert len(seen) >= 4


def test_knn_holds_a_bounded_number_of_distances(monkeypatch):
    """512 queries against 300,000 training codes held 1.2 GB of distances at once."""
    import cae.metrics as M
    rng = np.random.default_rng(0)
    train, queries = rng.normal(size=(3000, 2)), rng.normal(size=(700, 2))
    expected = M.knn_indices(train, queries, k=5)
    shapes = []
    real = torch.cdist
    monkeypatch.setattr(M.torch, "cdist", lambda a, b: shapes.append((len(a), len(b))) or real(a, b))
    monkeypatch.setattr(M, "KNN_DISTANCES", 100_000)
    np.testing.assert_array_equal(M.knn_indices(train, queries, k=5), expected)
    assert max(q * t for q, t in shapes) <= 100_000 and sum(q for q, _ in shapes) == 700
