"""Datasets: Fashion-MNIST's class names, any IDX folder, and the map following the model's data."""
from pathlib import Path

import numpy as np
import pytest

from cae import data as D
from cae.checkpoint import save_checkpoint
from cae.model import CAE, CAEConfig
from tests.helpers import spec_for, write_dataset_folder

FASHION_NAMES = D.DATASETS["fashion-mnist"].class_names


@pytest.fixture
def fake_fashion(tmp_path, monkeypatch):
    """A tiny stand-in for Fashion-MNIST, recognised by its (test) checksums in a system folder."""
    folder = write_dataset_folder(tmp_path / "system" / "fashion-mnist", seed=5)
    spec = spec_for(folder, (), "fashion-mnist")
    monkeypatch.setitem(D.DATASETS, "fashion-mnist", D.DatasetSpec(
        "fashion-mnist", spec.resources, (), FASHION_NAMES))
    monkeypatch.setattr(D, "system_data_dirs", lambda name: [tmp_path / "system" / name])
    return folder


def test_choosing_fashion_mnist_in_the_training_panel(window, fake_fashion, qtbot):
    combo = window.training_panel.dataset
    combo.setCurrentIndex(combo.findData("fashion-mnist"))
    window.training._on_dataset_chosen("fashion-mnist")
    qtbot.waitUntil(lambda: window.session.dataset.name == "fashion-mnist", timeout=10000)
    qtbot.waitUntil(lambda: window.map.class_names == FASHION_NAMES, timeout=10000)
    legend = [label.text for _, label in window.map.legend.items]
    assert legend == list(FASHION_NAMES)
    np.testing.assert_array_equal(window.map.labels, window.session.dataset.test_labels)


def test_a_model_brings_its_dataset(window, fake_fashion, tmp_path, qtbot):
    path = save_checkpoint(tmp_path / "fashion-model.safetensors", CAE(), {"dataset": "fashion-mnist"})
    assert window.files.open_model(str(path))
    qtbot.waitUntil(lambda: window.session.dataset.name == "fashion-mnist", timeout=10000)
    qtbot.waitUntil(lambda: len(window.map.codes) == len(window.session.dataset.test_images)
                    and window.map.class_names == FASHION_NAMES, timeout=10000)


def test_any_idx_folder_from_the_panel(window, tmp_path, qtbot, monkeypatch):
    other = write_dataset_folder(tmp_path / "my-digits", n_train=128, n_test=40, seed=9)
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getExistingDirectory", lambda *a, **k: str(other))
    window.training._on_dataset_chosen("folder")
    qtbot.waitUntil(lambda: window.session.dataset.name == "my-digits", timeout=10000)
    qtbot.waitUntil(lambda: len(window.map.codes) == 40, timeout=10000)


def test_a_folder_of_pictures_from_the_panel(window, tmp_path, qtbot, monkeypatch):
    """A folder of pictures in class subfolders loads as a dataset: the bar says how many are
    read, the map shows its test set under its class names, and a picture that could not be
    read is said."""
    from tests.test_pictures import write_pictures
    write_pictures(tmp_path / "shapes", {"disc": 210, "ring": 210})
    (tmp_path / "shapes" / "ring" / "broken.png").write_bytes(b"")
    said = []
    window.session.data.progress.connect(lambda text, done: said.append((text, done)))
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getExistingDirectory",
                        lambda *a, **k: str(tmp_path / "shapes"))
    window.training._on_dataset_chosen("folder")
    qtbot.waitUntil(lambda: window.session.dataset.name == "shapes", timeout=20000)
    qtbot.waitUntil(lambda: len(window.map.codes) == 60, timeout=10000)  # a seventh of 420
    assert window.map.class_names == ("disc", "ring")
    combo = window.training_panel.dataset  # ("Folder…" had not said which)
    assert combo.currentText() == "Folder: shapes…" and combo.currentData() == "folder"
    assert said and said[-1] == ("reading pictures: 421 of 421", 1.0)
    mark = window.marks.data_notes  # (a passing message was replaced at once)
    assert mark.isVisibleTo(window) and mark.text() == "⚠ 1 of 421 pictures could not be read: left out"
    assert "1 of 421 pictures could not be read: left out (the first: " in mark.toolTip()
    assert "broken.png" in mark.toolTip()
    # The point under the pointer names its picture; exported codes name theirs.
    window.explore._on_hover(3)
    file = window.session.dataset.test_files(4)[3]
    assert window.explore.hover_label.text() == f"label {Path(file).parts[0]} · test image 3 · {file}"
    assert window.files.export_codes(str(tmp_path / "codes.csv"))
    lines = (tmp_path / "codes.csv").read_text().splitlines()
    assert lines[0] == "z1,z2,label,file" and lines[4].endswith(f",{file}")
    # The Draw tab's nearest training images name theirs in their tooltips.
    from tests.test_app_draw import SEVEN, draw
    window.draw_dock.raise_()
    draw(qtbot, window.draw_panel.pad, SEVEN)
    qtbot.waitUntil(lambda: window.draw.neighbours is not None, timeout=20000)
    ds = window.session.dataset
    assert [v.toolTip() for v in window.draw_panel.neighbour_views] == [
        ds.files[i] for i in window.draw.neighbours]
    write_pictures(tmp_path / "split" / "train", {"disc": 70, "ring": 70})  # three notes
    write_pictures(tmp_path / "split" / "test", {"disc": 10, "star": 10})
    (tmp_path / "split" / "test" / "disc" / "broken.png").write_bytes(b"")
    window.session.load_data("folder", str(tmp_path / "split"))
    qtbot.waitUntil(lambda: window.session.dataset.name == "split", timeout=20000)
    assert mark.text() == "⚠ 3 notes on this data"
    assert mark.toolTip().splitlines()[1:] == [
        "1 of 161 pictures could not be read: left out (the first: "
        f"{Path('test', 'disc', 'broken.png')}: not a picture this app can read)",
        "no training pictures of star (their test pictures cannot be voted right)",
        "no test pictures of ring"]
    window.session.load_data("folder", str(tmp_path / "tiny"))  # other data: the mark goes
    qtbot.waitUntil(lambda: window.session.dataset.name == "tiny", timeout=10000)
    assert not mark.isVisibleTo(window)


def test_switching_back_finds_mnist_in_the_users_folder(window, fake_fashion, tmp_path, qtbot,
                                                        monkeypatch):
    """MNIST loaded from a folder of the user's (not a searched one) is found again after a
    switch to Fashion-MNIST and back; the choice always shows the data in use."""
    mnist = write_dataset_folder(tmp_path / "elsewhere" / "digits", seed=6)
    spec = spec_for(mnist, (), "mnist")
    monkeypatch.setitem(D.DATASETS, "mnist", D.DatasetSpec(
        "mnist", spec.resources, (), D.DATASETS["mnist"].class_names))
    combo = window.training_panel.dataset
    assert combo.currentData() == "folder"  # the tiny IDX folder the window started with
    window.session.load_data("auto", str(mnist))
    qtbot.waitUntil(lambda: window.session.dataset.name == "mnist", timeout=10000)
    assert combo.currentData() == "mnist"
    for name in ("fashion-mnist", "mnist"):
        combo.setCurrentIndex(combo.findData(name))
        window.training._on_dataset_chosen(name)
        qtbot.waitUntil(lambda n=name: window.session.dataset.name == n, timeout=10000)
        assert combo.currentData() == name
    assert window.session.dataset.source == str(mnist) and not window.last_error


def test_a_dataset_that_is_not_found_leaves_the_choice_on_the_data_in_use(window, qtbot, tmp_path,
                                                                         monkeypatch):
    monkeypatch.setattr(D, "system_data_dirs", lambda name: [tmp_path / "nothing" / name])
    combo = window.training_panel.dataset
    combo.setCurrentIndex(combo.findData("fashion-mnist"))
    window.training._on_dataset_chosen("fashion-mnist")  # nowhere on this computer
    qtbot.waitUntil(lambda: bool(window.last_error), timeout=10000)
    assert "fashion-mnist was not found" in window.last_error
    # The window's way to it, not only the terminal's.
    assert window.last_error.endswith("\n\nIn this window: Data ▸ Download Fashion-MNIST. "
                                      "tiny stays loaded.")
    assert combo.currentData() == "folder" and window.session.dataset.name == "tiny"


def test_a_models_dataset_not_found_is_named_in_the_hint(window, qtbot, tmp_path, monkeypatch):
    """Opening a Fashion-MNIST model with MNIST loaded and no Fashion-MNIST anywhere said
    "MNIST not found on this computer: hover thumbnails ... need it" while MNIST worked."""
    monkeypatch.setattr(D, "system_data_dirs", lambda name: [tmp_path / "nothing" / name])
    hints = []
    window.session.status.connect(lambda text, _timeout: hints.append(text))
    path = save_checkpoint(tmp_path / "fashion-model.safetensors", CAE(), {"dataset": "fashion-mnist"})
    assert window.files.open_model(str(path))
    qtbot.waitUntil(lambda: any("not found" in h for h in hints), timeout=10000)
    hint = next(h for h in hints if "not found" in h)
    assert hint.startswith("Fashion-MNIST (the data this model was trained on) not found")
    assert "tiny stays loaded" in hint and window.session.dataset.name == "tiny"
    assert window.last_error == ""  # a quiet search: a hint, not an error box


def test_a_model_of_other_data_is_flagged_as_long_as_it_is_shown(window, fake_fashion, tmp_path,
                                                                  qtbot, monkeypatch):
    path = save_checkpoint(tmp_path / "fashion-model.safetensors", CAE(), {"dataset": "fashion-mnist"})
    assert window.files.open_model(str(path))
    qtbot.waitUntil(lambda: window.session.dataset.name == "fashion-mnist", timeout=10000)
    label = window.marks.mismatch
    assert not label.isVisibleTo(window)
    other = write_dataset_folder(tmp_path / "my-digits", n_train=128, n_test=40, seed=9)
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getExistingDirectory", lambda *a, **k: str(other))
    window.training._on_dataset_chosen("folder")
    qtbot.waitUntil(lambda: len(window.map.codes) == 40, timeout=10000)
    assert label.isVisibleTo(window) and label.text() == "⚠ a model of Fashion-MNIST on my-digits"
    assert "my-digits images through a model trained on Fashion-MNIST" in label.toolTip()
    window.session.status.emit("decode 1.8 ms", 5000)  # messages come and go; the flag stays
    assert label.isVisibleTo(window)
    window.session.models.new_model()  # a model of no dataset: nothing to flag
    assert not label.isVisibleTo(window)


def test_downloading_the_dataset_already_loaded_says_so(window, qtbot):
    """Data > Download MNIST with MNIST loaded went to the network (and failed offline)."""
    ds = window.session.dataset
    mnist = D.Dataset("mnist", ds.train_images, ds.train_labels, ds.test_images, ds.test_labels,
                      D.DATASETS["mnist"].class_names, source="/somewhere/mnist")
    window.session._on_dataset_loaded(mnist)
    said = []
    window.session.status.connect(lambda text, _timeout: said.append(text))
    window.data_actions[0].trigger()  # Download MNIST
    assert said == ["MNIST is already loaded, from /somewhere/mnist: nothing to download"]
    assert not window.session.data.busy and window.session.dataset is mnist


def test_download_finds_a_dataset_already_on_this_computer(window, fake_fashion, tiny_folder,
                                                           qtbot, monkeypatch):
    """Data > Download Fashion-MNIST with the dataset in a system folder went to the network
    (and offline told the user to copy the files); a damaged copy still gets downloaded."""
    from tests.helpers import FILES
    from tests.http_server import serve
    fetched = []
    real_download = D.download_dataset
    monkeypatch.setattr("app.data_service.download_dataset",
                        lambda *a, **k: fetched.append(a) or real_download(*a, **k))
    said = []
    window.session.status.connect(lambda text, _timeout: said.append(text))
    window.data_actions[1].trigger()  # Download Fashion-MNIST
    qtbot.waitUntil(lambda: window.session.dataset.name == "fashion-mnist", timeout=10000)
    assert not fetched and window.session.dataset.source == str(fake_fashion)
    found = f"from {fake_fashion} (already on this computer: nothing downloaded)"
    # The map's encoding messages replace the dataset's own: the last of them says it again.
    qtbot.waitUntil(lambda: any(m.endswith("on the map, " + found) for m in said), timeout=20000)
    assert [m for m in said if m.startswith("Fashion-MNIST: ")][-1].endswith(found)
    # A damaged copy: downloaded into the cache and loaded from there.
    files = {f: (fake_fashion / f).read_bytes() for f in FILES.values()}
    labels = fake_fashion / FILES["test_labels"]
    labels.write_bytes(labels.read_bytes()[:-9])
    window.session.load_data("folder", str(tiny_folder))  # (another dataset first)
    qtbot.waitUntil(lambda: window.session.dataset.name != "fashion-mnist", timeout=10000)
    said.clear()
    with serve(files) as url:
        spec = D.DATASETS["fashion-mnist"]
        monkeypatch.setitem(D.DATASETS, "fashion-mnist", D.DatasetSpec(
            "fashion-mnist", spec.resources, (f"{url}/good/",), FASHION_NAMES))
        window.data_actions[1].trigger()
        qtbot.waitUntil(lambda: window.session.dataset.name == "fashion-mnist", timeout=20000)
    assert fetched and window.session.dataset.source == str(D.user_cache_dir() / "fashion-mnist")
    qtbot.waitUntil(lambda: any("on the map" in m for m in said), timeout=20000)
    arrival = [m for m in said if m.startswith("Fashion-MNIST: ")]
    assert arrival and arrival[-1].endswith(f"from {D.user_cache_dir() / 'fashion-mnist'}")
    assert not any("nothing downloaded" in m for m in said)


def test_data_or_a_model_of_another_image_size_is_refused_and_changes_nothing(window, tmp_path,
                                                                             qtbot, monkeypatch):
    """A 32 px folder under a 28 px model raised in the map's slot and left the window half
    switched (the new data's name on the toolbar, the old points on the map)."""
    s = window.session
    before, model = s.dataset, s.models.model
    big = write_dataset_folder(tmp_path / "big", pad=2)
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getExistingDirectory", lambda *a, **k: str(big))
    errors = []
    s.error.connect(lambda title, message: errors.append((title, message)))
    window.training._on_dataset_chosen("folder")
    qtbot.waitUntil(lambda: len(errors) > 0, timeout=10000)
    assert errors[-1][0] == "Cannot use this data"
    assert "the images are 32 x 32 px; this model reads 28 x 28 px images" in errors[-1][1]
    assert s.dataset is before and len(window.map.codes) == len(before.test_images)
    assert window.training_panel.dataset.currentData() == "folder"
    small = save_checkpoint(tmp_path / "small.safetensors",
                            CAE(CAEConfig(image_size=16, channels=(8, 12))), {})
    assert not window.files.open_model(str(small))
    assert errors[-1][0] == "Could not open the model"
    assert errors[-1][1] == ("small.safetensors reads 16 x 16 px images; tiny's are 28 x 28 px "
                             "(the model loaded before stays)")
    assert s.models.model is model
