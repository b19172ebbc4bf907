"""The bundled models (MNIST and Fashion-MNIST): quality bar, provenance, and shipped codes and
metrics that match their weights.

The codes are re-encoded from the weights everywhere: for MNIST on the 200 real test digits
shipped in tests/data (their codes are the first 200 the file ships), and on the whole test set
with its full evaluation where the canonical data is beside the project
(``../shared/data/mnist``, ``/usr/share/datasets/fashion-mnist``)."""
from pathlib import Path

import numpy as np
import pytest

from cae import data as D
from cae.bundled import bundled_model_path
from cae.checkpoint import load_checkpoint
from cae.metrics import encode_images, evaluate
from tests.helpers import mnist_sample

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
FASHION = Path("/usr/share/datasets/fashion-mnist")
DATA = {"mnist": MNIST, "fashion-mnist": FASHION}
# The bar each model must keep: what `cae evaluate` measured on it (docs/training.md), rounded
# against it, so a worse model (or a mix-up of files) fails.
BAR = {"mnist": {"test_mse": 0.0394, "knn5_accuracy": 0.701},
       "fashion-mnist": {"test_mse": 0.0279, "knn5_accuracy": 0.666}}


@pytest.fixture(scope="module", params=["mnist", "fashion-mnist"])
def bundled(request):
    path = bundled_model_path(request.param)
    assert path is not None, f"no bundled model for {request.param}"
    return request.param, load_checkpoint(path)


def test_quality_bar_and_provenance(bundled):
    name, ckpt = bundled
    meta = ckpt.metadata
    assert meta["dataset"] == name and meta["class_names"] == list(D.DATASETS[name].class_names)
    assert meta["metrics"]["dataset"] == name and meta["metrics"]["n_test"] == 10000
    assert meta["metrics"]["test_mse"] <= BAR[name]["test_mse"]
    assert meta["metrics"]["knn5_accuracy"] >= BAR[name]["knn5_accuracy"]
    command = meta["command"]
    assert command.startswith("cae train ") and ("--epochs" in command or "--recipe" in command)
    seed = meta["train_config"]["seed"]
    assert isinstance(seed, int) and f"--seed {seed}" in meta["command"]  # reproducible
    assert meta["epochs_done"] == meta["train_config"]["epochs"] and not meta["stopped_early"]
    assert meta["wall_time_s"] > 0 and meta["precision"] in ("bf16", "fp32")
    codes = ckpt.extras["test_codes"]
    assert codes.shape == (10000, 2) and codes.dtype == np.float32
    assert ckpt.extras["test_labels"].shape == (10000,)
    assert np.isfinite(ckpt.extras["test_codes"]).all()


def test_shipped_mnist_codes_match_the_weights_on_real_digits():
    ckpt = load_checkpoint(bundled_model_path("mnist"))
    images, labels = mnist_sample()  # the first 200 MNIST test digits
    np.testing.assert_array_equal(ckpt.extras["test_labels"][:200], labels)
    codes = encode_images(ckpt.model, images)
    spread = np.ptp(ckpt.extras["test_codes"], axis=0)
    np.testing.assert_allclose(codes, ckpt.extras["test_codes"][:200], rtol=0,
                               atol=1e-5 * spread.max())


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_shipped_codes_and_metrics_agree_with_the_weights_on_the_whole_test_set(name):
    if not DATA[name].is_dir():
        pytest.skip(f"{name} is not at {DATA[name]}")
    ckpt = load_checkpoint(bundled_model_path(name))
    ds = D.load_dataset(name, DATA[name])
    np.testing.assert_array_equal(ckpt.extras["test_labels"], ds.test_labels)
    sample = np.random.default_rng(0).choice(10000, 500, replace=False)
    codes = encode_images(ckpt.model, ds.test_images[sample])
    spread = np.ptp(ckpt.extras["test_codes"], axis=0).max()
    np.testing.assert_allclose(codes, ckpt.extras["test_codes"][sample], rtol=0, atol=1e-5 * spread)
    metrics = evaluate(ckpt.model, ds)
    stored = ckpt.metadata["metrics"]
    assert metrics["test_mse"] == pytest.approx(stored["test_mse"], rel=1e-4)
    assert abs(metrics["knn5_accuracy"] - stored["knn5_accuracy"]) <= 0.002
    assert metrics["knn5_confusion"] == stored["knn5_confusion"] or \
        np.abs(np.subtract(metrics["knn5_confusion"], stored["knn5_confusion"])).sum() <= 40


def test_map_appears_before_any_dataset(qtbot, settings, monkeypatch, tmp_path):
    from app.main_window import MainWindow
    ckpt = load_checkpoint(bundled_model_path("mnist"))
    monkeypatch.setattr(D, "system_data_dirs", lambda name: [tmp_path / "none"])
    monkeypatch.setattr(D, "user_cache_dir", lambda: tmp_path / "cache")
    monkeypatch.delenv(D.ENV_VAR, raising=False)
    w = MainWindow(settings)
    qtbot.addWidget(w)
    w.show()
    w.start()
    # At once, from the codes shipped with the model, while the data search runs in the background.
    assert w.stack.currentWidget() is w.map
    np.testing.assert_array_equal(w.map.codes, ckpt.extras["test_codes"])
    w.close()
