"""The `cae` command: train -> evaluate -> encode -> info on a tiny IDX folder, and clear errors."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cae.checkpoint import load_checkpoint, save_checkpoint
from cae.cli import main
from cae.model import CAE


def test_train_evaluate_encode_info(tmp_path, tiny_folder, capsys):
    model = tmp_path / "m.safetensors"
    assert main(["train", "--dataset", "folder", "--data", str(tiny_folder), "--epochs", "2",
                 "--batch-size", "32", "--device", "cpu", "--out", str(model)]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert {"test_mse", "knn5_accuracy", "per_class_mse"} <= set(trained)

    assert main(["evaluate", "--model", str(model), "--dataset", "folder",
                 "--data", str(tiny_folder)]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    # Without --data, a model of an image folder is not evaluated on MNIST by default: the
    # error names the folder to give (it said "mnist was not found").
    assert main(["evaluate", str(model)]) == 2
    assert f"trained on an image folder ({tiny_folder.name!r}): give that folder with --data" \
        in capsys.readouterr().err
    assert evaluated["test_mse"] == pytest.approx(trained["test_mse"], rel=1e-5)
    assert evaluated["knn5_accuracy"] == trained["knn5_accuracy"]

    for out in ("codes.npz", "codes.csv"):
        assert main(["encode", "--model", str(model), "--dataset", "folder", "--data",
                     str(tiny_folder), "--out", str(tmp_path / out)]) == 0
    npz = np.load(tmp_path / "codes.npz")
    assert npz["codes"].shape == (64, 2) and npz["labels"].shape == (64,)
    csv = np.loadtxt(tmp_path / "codes.csv", delimiter=",", skiprows=1, usecols=(0, 1, 2))
    np.testing.assert_array_equal(csv[:, :2].astype(np.float32), npz["codes"])  # exact
    np.testing.assert_array_equal(csv[:, 2], npz["labels"])
    assert (tmp_path / "codes.csv").read_text().splitlines()[:2][0] == "z1,z2,label,split"
    assert set(npz["split"]) == {"test"}
    # Both sets in one file: each row says which set its image is from, training rows first.
    for out in ("all.csv", "all.npz", "all.npy"):
        assert main(["encode", "--model", str(model), "--dataset", "folder", "--data",
                     str(tiny_folder), "--split", "all", "--out", str(tmp_path / out)]) == 0
    n_train = 256  # the tiny folder: 256 training and 64 test images
    everything = np.load(tmp_path / "all.npz")  # strings, no pickle needed
    assert list(everything["split"]) == ["train"] * n_train + ["test"] * 64
    np.testing.assert_array_equal(everything["codes"][n_train:], npz["codes"])
    rows = (tmp_path / "all.csv").read_text().splitlines()
    assert rows[1].endswith(",train") and rows[-1].endswith(",test") and len(rows) == n_train + 65
    table = np.load(tmp_path / "all.npy")
    assert table.shape == (n_train + 64, 4) and table[:, 3].sum() == 64 and table[-1, 3] == 1

    capsys.readouterr()
    assert main(["info", str(model)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["metadata"]["epochs_done"] == 2 and info["metadata"]["metrics"]["test_mse"] > 0
    assert info["metadata"]["train_config"]["batch_size"] == 32
    assert info["model_config"]["latent_dim"] == 2
    assert info["extras"] == {"test_codes": [64, 2], "test_labels": [64]}
    assert info["file"] == str(model)
    # The long lists are counted (a 1-epoch model's info was 558 lines, one number a line).
    assert info["metadata"]["step_losses"].endswith("points of the training loss (--full "
                                                    "prints them)")
    assert info["metadata"]["metrics"]["test_mse_percentiles"].startswith("101 values")
    assert main(["info", str(model), "--full"]) == 0
    full = json.loads(capsys.readouterr().out)["metadata"]
    assert len(full["metrics"]["test_mse_percentiles"]) == 101 and len(full["step_losses"]) > 1
    from cae.checkpoint import load_checkpoint
    ckpt = load_checkpoint(model)
    np.testing.assert_allclose(ckpt.extras["test_codes"], npz["codes"], atol=1e-6)
    np.testing.assert_array_equal(ckpt.extras["test_labels"], npz["labels"])


def test_info_without_a_file_shows_the_bundled_model(capsys):
    from cae.bundled import bundled_model_path
    for dataset, args in (("mnist", []), ("fashion-mnist", ["--dataset", "fashion-mnist"])):
        assert main(["info", *args]) == 0
        info = json.loads(capsys.readouterr().out)
        assert info["file"] == str(bundled_model_path(dataset))
        assert info["metadata"]["dataset"] == dataset


@pytest.mark.parametrize("argv, message", [
    (["info", "missing.safetensors"], "not found"),
    (["evaluate", "--model", "missing.safetensors"], "not found"),
    (["evaluate", "missing.safetensors"], "missing.safetensors: file not found"),  # as info
    (["map", "missing.safetensors", "--out", "m.svg"], "missing.safetensors: file not found"),
    (["animate", "--out", "run.gif"], "name the model file"),
    (["train", "--dataset", "folder", "--epochs", "1"], "needs a folder"),
    (["train", "--dataset", "folder", "--data", "/nonexistent", "--epochs", "1"],
     "/nonexistent: no such folder"),
])
def test_errors_are_one_line_and_nonzero(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cae: error:") and message in err and "Traceback" not in err


def test_bad_epochs_via_subprocess(tmp_path, tiny_folder):
    proc = subprocess.run([sys.executable, "-m", "cae", "train", "--dataset", "folder", "--data",
                           str(tiny_folder), "--epochs", "0",
                           "--out", str(tmp_path / "m.safetensors")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "epochs must be" in proc.stderr and "Traceback" not in proc.stderr


TRAIN = ["train", "--dataset", "folder", "--epochs", "1", "--batch-size", "64", "--device", "cpu",
         "--no-eval"]


def test_fashion_mnist_is_recognised_by_its_checksums(tmp_path, monkeypatch, capsys):
    import cae.data as D
    from tests.helpers import spec_for, write_dataset_folder
    folder = write_dataset_folder(tmp_path / "fm", seed=5)
    names = D.DATASETS["fashion-mnist"].class_names
    monkeypatch.setitem(D.DATASETS, "fashion-mnist",
                        D.DatasetSpec("fashion-mnist", spec_for(folder, ()).resources, (), names))
    model = tmp_path / "m.safetensors"
    assert main(["train", "--data", str(folder), "--epochs", "1", "--batch-size", "64",
                 "--device", "cpu", "--no-eval", "--out", str(model)]) == 0
    from cae.checkpoint import load_checkpoint
    meta = load_checkpoint(model).metadata
    assert meta["dataset"] == "fashion-mnist" and meta["class_names"] == list(names)
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model), "--data", str(folder)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["dataset"] == "fashion-mnist" and "note:" not in err
    # A damaged file is not that dataset: a folder of plain IDX data, named by its folder; the
    # figures are then of a model on data it does not know, and the command says so.
    other = write_dataset_folder(tmp_path / "other", seed=6)
    assert main(["evaluate", "--model", str(model), "--data", str(other)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["dataset"] == "other"
    assert "note: the model was trained on fashion-mnist, these are other images" in err


def test_evaluate_prints_compact_json_with_one_matrix_row_per_line(tmp_path, tiny_folder, capsys):
    model = tmp_path / "m.safetensors"
    assert main([*TRAIN, "--data", str(tiny_folder), "--out", str(model)]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--model", str(model), "--dataset", "folder",
                 "--data", str(tiny_folder)]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert list(doc)[:2] == ["dataset", "class_names"]  # (the rows were bare numbers)
    assert doc["class_names"] == [str(c) for c in range(len(doc["per_class_mse"]))]
    lines = out.splitlines()
    assert len(lines) == len(doc) + 2 + 1 + len(doc["knn5_confusion"])  # braces, matrix bracket
    rows = [json.loads(line.strip().rstrip(",")) for line in lines if line.startswith("    [")]
    assert rows == doc["knn5_confusion"]
    # The 101 test-error percentiles (for the window) only with --full: a line of 101 numbers.
    assert "test_mse_percentiles" not in doc and max(len(line) for line in lines) < 600
    assert main(["evaluate", "--model", str(model), "--dataset", "folder",
                 "--data", str(tiny_folder), "--full"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert len(full["test_mse_percentiles"]) == 101 and full["test_mse"] == doc["test_mse"]


def _can_write(folder) -> bool:
    try:
        (folder / "probe").touch()
    except OSError:
        return False
    (folder / "probe").unlink()
    return True


@pytest.mark.parametrize("where", ["missing", "read-only"])
def test_train_refuses_an_unwritable_destination_before_the_first_step(
        where, tmp_path, tiny_folder, capsys, monkeypatch):
    import cae.cli as cli
    started = []
    monkeypatch.setattr(cli.Trainer, "run", lambda self: started.append(1) or iter(()))
    folder = tmp_path / where
    immutable = False
    if where == "read-only":
        folder.mkdir()
        folder.chmod(0o500)
        if _can_write(folder):  # root ignores permissions: make the folder immutable instead
            immutable = shutil.which("chattr") is not None and subprocess.run(
                ["chattr", "+i", str(folder)], capture_output=True).returncode == 0
            if not immutable or _can_write(folder):
                if immutable:
                    subprocess.run(["chattr", "-i", str(folder)], check=True)
                pytest.skip("this system cannot make a folder read-only for this user")
    try:
        assert main([*TRAIN, "--data", str(tiny_folder), "--out",
                     str(folder / "m.safetensors")]) == 2
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        if folder.exists():
            folder.chmod(0o700)
    err = capsys.readouterr().err
    assert err.startswith("cae: error: cannot save to") and str(folder) in err
    assert err.count("\n") == 1 and not started


def test_train_and_encode_refuse_a_wrong_file_type_before_any_work(tmp_path, tiny_folder,
                                                                    capsys, monkeypatch):
    """`cae train --out x.txt` trained a full run first; `cae encode --out codes.txt` encoded
    every digit before saying the format was unknown."""
    import cae.cli as cli
    started = []
    monkeypatch.setattr(cli.Trainer, "run", lambda self: started.append(1) or iter(()))
    monkeypatch.setattr(cli, "load_dataset", lambda *a, **k: started.append(2))
    assert main([*TRAIN, "--data", str(tiny_folder), "--out", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err
    assert "models are .safetensors files, such as" in err and "x.safetensors" in err
    assert main(["encode", "--data", str(tiny_folder), "--out", str(tmp_path / "c.txt")]) == 2
    assert "unknown format; use one of .csv, .npz, .npy" in capsys.readouterr().err
    assert not started and not list(tmp_path.glob("*.txt"))


@pytest.mark.parametrize("command", [["encode", "--out", "c.csv"], ["evaluate"],
                                     ["map", "--out", "m.png"], ["report", "--out", "r.png"]])
def test_images_of_another_size_are_refused_with_a_message(tmp_path, capsys, command):
    """A 32 px folder through a 28 px model: `encode` wrote 8-column codes (the 2 x 2 output
    flattened), the others ended in a traceback."""
    from tests.helpers import write_dataset_folder
    folder = write_dataset_folder(tmp_path / "big", pad=2)
    model = save_checkpoint(tmp_path / "m.safetensors", CAE(), {})
    out = [str(tmp_path / a) if a.endswith(("csv", "png")) else a for a in command]
    assert main([*out, "--model", str(model), "--data", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "the images are 32 x 32 px; this model reads 28 x 28 px images" in err
    assert "Traceback" not in err and not any((tmp_path / n).exists() for n in ("c.csv", "m.png", "r.png"))


def test_train_init_says_when_it_continues_on_another_dataset(tmp_path, tiny_folder, capsys):
    model = tmp_path / "fm.safetensors"
    save_checkpoint(model, CAE(), {"dataset": "fashion-mnist"})
    assert main([*TRAIN, "--data", str(tiny_folder), "--init", str(model),
                 "--out", str(tmp_path / "m.safetensors")]) == 0
    assert "note: the model was trained on fashion-mnist, these are tiny" in \
        capsys.readouterr().err


def test_a_late_write_failure_saves_to_a_fallback_and_says_where(tmp_path, tiny_folder, capsys,
                                                                  monkeypatch):
    import cae.cli as cli
    from cae.checkpoint import load_checkpoint, save_checkpoint
    from cae.errors import CheckpointError
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))
    target = tmp_path / "out" / "m.safetensors"
    target.parent.mkdir()

    def failing_save(path, *args, **kwargs):  # the destination breaks after training
        if str(path) == str(target):
            raise CheckpointError(f"could not save the model to {path}: disk full")
        return save_checkpoint(path, *args, **kwargs)

    monkeypatch.setattr(cli, "save_checkpoint", failing_save)
    assert main([*TRAIN, "--data", str(tiny_folder), "--out", str(target)]) == 0
    err = capsys.readouterr().err
    saved = list((tmp_path / "data-home" / "cae-explorer").glob("m-*.safetensors"))
    assert len(saved) == 1 and f"saved the model to {saved[0]} instead" in err
    assert "disk full" in err and load_checkpoint(saved[0]).metadata["epochs_done"] == 1


def test_train_metadata_records_recipe_precision_and_init(tmp_path, tiny_folder):
    from cae.checkpoint import load_checkpoint
    first = tmp_path / "a.safetensors"
    assert main([*TRAIN, "--data", str(tiny_folder), "--recipe", "lecture", "--precision", "fp32",
                 "--weight-init", "tf", "--out", str(first)]) == 0
    meta = load_checkpoint(first).metadata
    assert meta["recipe"] == "lecture" and meta["precision"] == "fp32"
    assert meta["train_config"]["weight_init"] == "tf"
    assert meta["train_config"]["schedule"] == "constant" and meta["train_config"]["epochs"] == 1
    assert meta["train_config"]["cuda_graph"] is True
    second = tmp_path / "b.safetensors"
    assert main([*TRAIN, "--data", str(tiny_folder), "--init", str(first), "--no-cuda-graph",
                 "--out", str(second)]) == 0
    meta2 = load_checkpoint(second).metadata
    assert meta2["init"]["recipe"] == "lecture" and meta2["recipe"] == "best"
    assert meta2["train_config"]["cuda_graph"] is False
    assert meta2["precision"] in ("bf16", "fp32")  # "auto" is resolved before it is recorded


def test_model_file_contents_is_what_train_and_the_window_save():
    from cae.metrics import encode_images
    from cae.model_file import model_file_contents
    from cae.train import TrainConfig, build_model
    from tests.helpers import make_dataset
    ds, model = make_dataset(64, 48), build_model(seed=4)
    config = TrainConfig.recipe_config("quick", epochs=2)
    seen = []
    meta, extras = model_file_contents(
        model, ds, config, history=[{"epoch": 1}], epochs_done=1, stopped_early=True,
        wall_time_s=12.345, device="cpu", precision="bf16", threads=3, command="cae train x",
        metrics={"test_mse": 0.5}, progress=seen.append)
    assert meta["dataset"] == "synthetic" and meta["class_names"] == list(ds.class_names)
    assert meta["train_config"]["epochs"] == 2 and meta["recipe"] == "quick"
    assert (meta["epochs_done"], meta["stopped_early"], meta["wall_time_s"]) == (1, True, 12.3)
    assert (meta["device"], meta["precision"], meta["command"]) == ("cpu", "bf16", "cae train x")
    assert meta["threads"] == 3
    assert meta["metrics"] == {"test_mse": 0.5} and meta["history"] == [{"epoch": 1}]
    json.dumps(meta)  # the header is JSON
    np.testing.assert_array_equal(extras["test_codes"], encode_images(model, ds.test_images))
    np.testing.assert_array_equal(extras["test_labels"], ds.test_labels)
    assert extras["test_labels"].dtype == np.uint8 and seen and seen[-1] == 1.0
    meta2, extras2 = model_file_contents(
        model, None, None, history=[], epochs_done=0, stopped_early=True, wall_time_s=0,
        device="cpu", precision="fp32", threads=1, encode=False)
    assert extras2 == {} and "command" not in meta2 and "metrics" not in meta2


def test_train_never_replaces_a_model_unless_told(tmp_path, tiny_folder, capsys, monkeypatch):
    """Without --out each run gets a free name; an existing --out needs --overwrite, refused
    before the first step (a quick test must not cost the model of a long run)."""
    from cae.checkpoint import load_checkpoint
    monkeypatch.chdir(tmp_path)
    assert main([*TRAIN, "--data", str(tiny_folder), "--no-eval"]) == 0
    first = (tmp_path / "model.safetensors").read_bytes()
    assert main([*TRAIN, "--data", str(tiny_folder), "--no-eval", "--seed", "5"]) == 0
    assert (tmp_path / "model.safetensors").read_bytes() == first
    assert load_checkpoint(tmp_path / "model-2.safetensors").metadata["train_config"]["seed"] == 5
    assert "saved model-2.safetensors" in capsys.readouterr().err

    import cae.cli as cli
    started = []
    real_run = cli.Trainer.run
    monkeypatch.setattr(cli.Trainer, "run", lambda self: started.append(1) or real_run(self))
    assert main([*TRAIN, "--data", str(tiny_folder), "--out", "model.safetensors"]) == 2
    err = capsys.readouterr().err
    assert "model.safetensors exists; pass --overwrite" in err and not started
    assert (tmp_path / "model.safetensors").read_bytes() == first
    assert main([*TRAIN, "--data", str(tiny_folder), "--no-eval", "--seed", "7", "--out",
                 "model.safetensors", "--overwrite"]) == 0
    assert load_checkpoint(tmp_path / "model.safetensors").metadata["train_config"]["seed"] == 7


def test_train_keeps_a_timeline_on_request_and_animate_plays_it(tmp_path, tiny_folder, capsys):
    from cae.checkpoint import load_checkpoint
    from cae.timeline import Timeline
    plain, kept = tmp_path / "plain.safetensors", tmp_path / "kept.safetensors"
    assert main([*TRAIN, "--data", str(tiny_folder), "--no-eval", "--out", str(plain)]) == 0
    assert main([*TRAIN, "--data", str(tiny_folder), "--no-eval", "--epochs", "2", "--timeline",
                 "--out", str(kept)]) == 0
    ckpt = load_checkpoint(kept)
    timeline = Timeline.from_extras(ckpt.extras, ckpt.model.config)
    assert timeline.epochs == [0, 1, 2] and timeline.codes[0].shape[1] == 2
    # The last epoch's decoder is the file's own.
    last = timeline.model_at(2, ckpt.model.config).decoder.state_dict()
    for name, value in ckpt.model.decoder.state_dict().items():
        np.testing.assert_array_equal(last[name].numpy(), value.numpy())
    assert not any(k.startswith("timeline.") for k in load_checkpoint(plain).extras)
    capsys.readouterr()
    assert main(["animate", "--model", str(plain), "--out", str(tmp_path / "a.gif")]) == 2
    assert "cae train --timeline" in capsys.readouterr().err
    assert main(["animate", "--model", str(kept), "--out", str(tmp_path / "b.gif")]) == 0
    assert (tmp_path / "b.gif").read_bytes()[:6] == b"GIF89a"


def test_commands_default_to_the_bundled_model_for_their_data(tmp_path, tiny_folder, capsys):
    """As `cae info` and the window: no --model means the bundled model of the data given, and
    data with no bundled model is told to name one."""
    from pathlib import Path

    from cae.bundled import bundled_model_path
    from cae.checkpoint import load_checkpoint
    assert main(["evaluate", "--dataset", "folder", "--data", str(tiny_folder)]) == 2
    assert "no bundled model for" in capsys.readouterr().err
    assert main(["map", "--out", str(tmp_path / "map.svg")]) == 0  # MNIST's, from its codes
    assert (tmp_path / "map.svg").read_text().count("<circle") >= 9000
    mnist = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    if not mnist.is_dir():
        pytest.skip("the encode half needs MNIST beside the project (../shared/data/mnist)")
    assert main(["encode", "--data", str(mnist), "--out", str(tmp_path / "c.npz")]) == 0
    bundled = load_checkpoint(bundled_model_path("mnist")).extras["test_codes"]
    np.testing.assert_allclose(np.load(tmp_path / "c.npz")["codes"], bundled, atol=1e-5)


def test_two_different_model_files_are_refused(capsys):
    """(`cae evaluate m.safetensors` was "unrecognized arguments"; with --model as well, which
    one was meant is not for the command to guess.)"""
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "a.safetensors", "--model", "b.safetensors"])
    assert exit_.value.code == 2
    assert "two model files: a.safetensors and b.safetensors" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the usage names the positional form
        main(["evaluate", "--help"])
    assert "MODEL" in capsys.readouterr().out


def test_info_is_readable_json(capsys):
    """(The bundled model's info was 451 lines, a number or a key a line.)"""
    from cae.cli import readable_json
    value = {"a": [[1, 2], [3, 4]], "history": [{"epoch": e, "loss": 0.25} for e in range(3)],
             "long": list(range(60)), "empty": [], "nested": {"x": {"y": "z" * 130}}}
    text = readable_json(value)
    assert json.loads(text) == value
    lines = text.splitlines()
    assert '  "history": [{"epoch": 0, "loss": 0.25}, {"epoch": 1, "loss": 0.25}, ' in text
    assert "    0," in lines  # a list too long for a line: a value a line
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out)["metadata"]["dataset"] == "mnist" and len(out.splitlines()) < 200


def test_ctrl_c_never_loses_the_trained_model(tmp_path, tiny_folder, capsys, monkeypatch):
    """A Ctrl+C during the final evaluation (tens of seconds on 2 cores), or a second one after
    the first, ended the process before the model was written."""
    import os
    import signal

    import cae.cli as cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(cli, "evaluate", interrupted)
    out, evaluating = tmp_path / "m.safetensors", [a for a in TRAIN if a != "--no-eval"]
    assert main([*evaluating, "--data", str(tiny_folder), "--out", str(out)]) == 0
    assert out.is_file() and "evaluation skipped: saving the model" in capsys.readouterr().err
    # Interrupted while training: saved at once, without the evaluation.
    evaluated = []
    monkeypatch.setattr(cli, "evaluate", lambda *a, **k: evaluated.append(1))
    real_run = cli.Trainer.run

    def run_then_interrupt(self):
        for record in real_run(self):
            yield record
            if isinstance(record, cli.Progress):
                raise KeyboardInterrupt
    monkeypatch.setattr(cli.Trainer, "run", run_then_interrupt)
    second = tmp_path / "m2.safetensors"
    assert main([*evaluating, "--data", str(tiny_folder), "--out", str(second)]) == 0
    assert second.is_file() and not evaluated
    assert "interrupted: saving the weights trained so far" in capsys.readouterr().err
    # A Ctrl+C while the file is written waits for it.
    with cli._interrupts_wait():
        os.kill(os.getpid(), signal.SIGINT)
    assert "saving the model first" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_terminated_train_saves_and_a_log_hears_from_it_within_the_epoch(tmp_path, tiny_folder,
                                                                          capsys, monkeypatch):
    """SIGTERM (a kill, a logout) ended `cae train` with nothing saved; and off a terminal (a log
    file) it said nothing between epoch ends, minutes apart on a busy machine."""
    import os
    import signal

    import cae.cli as cli
    monkeypatch.setattr(cli, "LOG_EVERY_S", 0.0)  # a line for every report
    real_run = cli.Trainer.run

    def run_then_terminate(self):
        for record in real_run(self):
            yield record
            if isinstance(record, cli.Progress) and record.global_step >= 20:
                os.kill(os.getpid(), signal.SIGTERM)
    monkeypatch.setattr(cli.Trainer, "run", run_then_terminate)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "m.safetensors"
    args = ["train", "--dataset", "folder", "--epochs", "3", "--batch-size", "8", "--device",
            "cpu", "--no-eval"]  # 32 steps an epoch, a report every 20
    assert main([*args, "--data", str(tiny_folder), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert out.is_file() and "interrupted: saving the weights trained so far" in err
    assert load_checkpoint(out).metadata["stopped_early"]
    assert "% epoch 1/" in err and " step 20/" in err  # within the first epoch
    assert signal.getsignal(signal.SIGTERM) is before


def test_evaluate_prints_strict_json_for_classes_without_test_images(tmp_path, capsys):
    """A class with no test image printed NaN, which strict JSON parsers refuse."""
    from cae.data import write_idx
    from tests.helpers import FILES, write_dataset_folder
    folder = write_dataset_folder(tmp_path / "gaps")
    write_idx(folder / FILES["test_labels"], np.zeros(64, np.uint8))  # class 0 only
    model = save_checkpoint(tmp_path / "m.safetensors", CAE(), {})
    assert main(["evaluate", str(model), "--dataset", "folder", "--data", str(folder)]) == 0

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")
    printed = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert printed["per_class_mse"][0] > 0 and printed["per_class_mse"][1:] == [None] * 9


def test_data_counts_an_idx_folders_classes(tiny_folder, capsys):
    assert main(["data", "--dataset", "folder", "--data", str(tiny_folder)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["train"], info["test"]) == (256, 64) and info["notes"] == []
    assert sum(c["train"] for c in info["classes"]) == 256
    assert [c["name"] for c in info["classes"]] == [str(i) for i in range(10)]
