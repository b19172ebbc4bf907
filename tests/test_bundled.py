"""The bundled model: quality bar, provenance, and codes/metrics that match its weights."""
from pathlib import Path

import numpy as np
import pytest

from app.main_window import BUNDLED_MODEL
from cae import data as D
from cae.checkpoint import load_checkpoint
from cae.metrics import encode_images, evaluate

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
needs_mnist = pytest.mark.skipif(not MNIST.is_dir(), reason="canonical MNIST is not beside the project")


@pytest.fixture(scope="module")
def bundled():
    return load_checkpoint(BUNDLED_MODEL)


def test_quality_bar_and_provenance(bundled):
    meta = bundled.metadata
    assert meta["metrics"]["test_mse"] <= 0.041
    assert meta["metrics"]["knn5_accuracy"] >= 0.62
    assert meta["command"].startswith("cae train ") and "--epochs" in meta["command"]
    assert meta["train_config"]["seed"] == 0 and meta["epochs_done"] == meta["train_config"]["epochs"]
    assert meta["wall_time_s"] > 0 and meta["dataset"] == "mnist" and not meta["stopped_early"]
    assert bundled.extras["test_codes"].shape == (10000, 2)
    assert bundled.extras["test_labels"].shape == (10000,)
    assert BUNDLED_MODEL.stat().st_size < 2_200_000  # weights (1.8 MB) + codes (~90 KB)


@needs_mnist
def test_shipped_codes_and_metrics_agree_with_the_weights(bundled):
    ds = D.load_dataset("mnist", MNIST)
    np.testing.assert_array_equal(bundled.extras["test_labels"], ds.test_labels)
    sample = np.random.default_rng(0).choice(10000, 500, replace=False)
    codes = encode_images(bundled.model, ds.test_images[sample])
    np.testing.assert_allclose(codes, bundled.extras["test_codes"][sample], rtol=1e-4, atol=1e-4)
    metrics = evaluate(bundled.model, ds)
    assert metrics["test_mse"] == pytest.approx(bundled.metadata["metrics"]["test_mse"], rel=1e-4)
    assert abs(metrics["knn5_accuracy"] - bundled.metadata["metrics"]["knn5_accuracy"]) <= 0.002


def test_map_appears_before_any_dataset(qtbot, settings, monkeypatch, tmp_path, bundled):
    from app.main_window import MainWindow
    monkeypatch.setattr(D, "system_data_dirs", lambda name: [tmp_path / "none"])
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    w.start()
    # At once, from the codes shipped with the model, while the data search runs in the background.
    assert w.stack.currentWidget() is w.map
    np.testing.assert_array_equal(w.map.codes, bundled.extras["test_codes"])
    with qtbot.waitSignal(w.decoded, timeout=2000):
        w.request_decode(0.0, 0.0)
    qtbot.waitUntil(lambda: not w.data.busy, timeout=10000)
    assert w.dataset is None and w.stack.currentWidget() is w.map  # still usable without data
    assert "MNIST not found" in w.statusBar().currentMessage() and not w.last_error
    w.close()
