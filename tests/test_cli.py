"""The `cae` command: train -> evaluate -> encode -> info on a tiny IDX folder, and clear errors."""
import json
import subprocess
import sys

import numpy as np
import pytest

from cae.cli import main


def test_train_evaluate_encode_info(tmp_path, tiny_folder, capsys):
    model = tmp_path / "m.safetensors"
    assert main(["train", "--dataset", "folder", "--data", str(tiny_folder), "--epochs", "2",
                 "--batch-size", "32", "--device", "cpu", "--out", str(model)]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert {"test_mse", "knn5_accuracy", "per_class_mse"} <= set(trained)

    assert main(["evaluate", "--model", str(model), "--dataset", "folder", "--data", str(tiny_folder)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert evaluated["test_mse"] == pytest.approx(trained["test_mse"], rel=1e-5)
    assert evaluated["knn5_accuracy"] == trained["knn5_accuracy"]

    for out in ("codes.npz", "codes.csv"):
        assert main(["encode", "--model", str(model), "--dataset", "folder", "--data",
                     str(tiny_folder), "--out", str(tmp_path / out)]) == 0
    npz = np.load(tmp_path / "codes.npz")
    assert npz["codes"].shape == (64, 2) and npz["labels"].shape == (64,)
    csv = np.loadtxt(tmp_path / "codes.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(csv[:, :2], npz["codes"], atol=1e-5)
    np.testing.assert_array_equal(csv[:, 2], npz["labels"])

    capsys.readouterr()
    assert main(["info", str(model)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["metadata"]["epochs_done"] == 2 and info["metadata"]["metrics"]["test_mse"] > 0
    assert info["metadata"]["train_config"]["batch_size"] == 32
    assert info["model_config"]["latent_dim"] == 2
    assert info["extras"] == {"test_codes": [64, 2], "test_labels": [64]}
    from cae.checkpoint import load_checkpoint
    ckpt = load_checkpoint(model)
    np.testing.assert_allclose(ckpt.extras["test_codes"], npz["codes"], atol=1e-6)
    np.testing.assert_array_equal(ckpt.extras["test_labels"], npz["labels"])


@pytest.mark.parametrize("argv, message", [
    (["info", "missing.safetensors"], "not found"),
    (["evaluate", "--model", "missing.safetensors"], "not found"),
    (["train", "--dataset", "folder", "--epochs", "1"], "needs a folder"),
    (["train", "--dataset", "folder", "--data", "/nonexistent", "--epochs", "1"], "needs train-images"),
])
def test_errors_are_one_line_and_nonzero(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cae: error:") and message in err and "Traceback" not in err


def test_bad_epochs_via_subprocess(tmp_path, tiny_folder):
    proc = subprocess.run([sys.executable, "-m", "cae", "train", "--dataset", "folder", "--data",
                           str(tiny_folder), "--epochs", "0", "--out", str(tmp_path / "m.safetensors")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "epochs must be" in proc.stderr and "Traceback" not in proc.stderr
