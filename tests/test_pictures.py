"""Folders of pictures as datasets (cae/pictures.py): layout, conversion, split, unreadable
files, the cache, and the ways in (load_dataset, the CLI)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cae import data as D
from cae import pictures as P
from cae.errors import DataError


def scribble(seed: int, size: int = 28) -> np.ndarray:
    """A light stroke on black, (size, size) uint8."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size), np.uint8)
    r, c = rng.integers(4, size - 4, 2)
    image[r - 3:r + 3, c - 1:c + 2] = 255
    image[r - 1:r + 1, c - 4:c + 4] = rng.integers(120, 256)
    return image


def write_pictures(folder: Path, per_class: dict[str, int], dark_on_light: bool = False,
                   suffix: str = ".png") -> dict[Path, np.ndarray]:
    """Write ``per_class`` pictures into one subfolder per class; returns file -> its image as
    the model should see it (light on dark)."""
    written = {}
    for k, (name, count) in enumerate(per_class.items()):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = scribble(100 * k + i)
            path = folder / name / f"{i:03d}{suffix}"
            Image.fromarray(255 - image if dark_on_light else image).save(path)
            written[path] = image
    return written


def test_a_folder_of_class_subfolders_is_a_dataset(tmp_path):
    written = write_pictures(tmp_path / "shapes", {"b": 14, "a": 7, "c": 21})
    (tmp_path / "shapes" / "notes.txt").write_text("not a picture")
    (tmp_path / "shapes" / ".hidden").mkdir()
    Image.fromarray(scribble(9)).save(tmp_path / "shapes" / ".hidden" / "x.png")
    ds = D.load_dataset("folder", tmp_path / "shapes")
    assert ds.name == "shapes" and ds.class_names == ("a", "b", "c") and ds.notes == ()
    # A seventh of each class is kept for testing: 1 of a's 7, 2 of b's 14, 3 of c's 21.
    assert np.bincount(ds.test_labels).tolist() == [1, 2, 3]
    assert np.bincount(ds.train_labels).tolist() == [6, 12, 18]
    assert ds.train_images.dtype == np.uint8 and ds.train_images.shape[1:] == (28, 28)
    # Every image is one of the pictures, exactly, and in its own class.
    by_bytes = {img.tobytes(): path.parent.name for path, img in written.items()}
    for images, labels in ((ds.train_images, ds.train_labels), (ds.test_images, ds.test_labels)):
        for image, label in zip(images, labels):
            assert by_bytes[image.tobytes()] == ds.class_names[label]
    # Each image names its picture, relative to the folder (the map and exports say it).
    assert len(ds.files) == 42 and ds.test_files(2) == ds.files[36:38]
    for image, file in zip(ds.all_images(), ds.files):
        assert np.array_equal(written[tmp_path / "shapes" / file], image)
    again = D.load_dataset("auto", tmp_path / "shapes")  # the same split every time
    assert np.array_equal(again.test_images, ds.test_images)
    assert again.all_images() is again.train_images.base  # (one array: no second copy)


def test_dark_on_light_pictures_are_inverted_as_a_whole(tmp_path):
    """MNIST's light ink on black is what the model learns; a folder of scans (dark ink on
    white paper) is inverted, every picture alike."""
    written = write_pictures(tmp_path / "scans", {"x": 7, "y": 7}, dark_on_light=True)
    ds = D.load_dataset("folder", tmp_path / "scans")
    assert {img.tobytes() for img in written.values()} == {
        img.tobytes() for img in np.concatenate([ds.train_images, ds.test_images])}


def test_pictures_of_any_size_and_kind_are_squared_and_scaled(tmp_path):
    """A wide RGB photo keeps its proportions (padded with its own background), a JPEG and a
    transparent PNG are read, and the result is 28 x 28."""
    folder = tmp_path / "mixed" / "one"
    folder.mkdir(parents=True)
    wide = np.zeros((60, 120, 3), np.uint8)
    wide[20:40, :] = (255, 255, 255)  # a white bar across the whole width
    Image.fromarray(wide).save(folder / "wide.png")
    Image.fromarray(wide).save(folder / "wide.jpg", quality=95)
    rgba = np.zeros((28, 28, 4), np.uint8)
    rgba[10:18, 10:18] = (0, 0, 0, 255)  # a black square on a transparent ground
    Image.fromarray(rgba).save(folder / "clear.png")
    image, background = P.read_picture(folder / "wide.png")
    assert image.shape == (28, 28) and background == 0.0
    rows = image.mean(1)
    assert rows[:10].max() < 0.01 and rows[18:].max() < 0.01  # padded above and below
    assert rows[12:16].min() > 0.99  # the bar, across (rows 50-70 of the 120-px square)
    jpeg, _ = P.read_picture(folder / "wide.jpg")
    assert np.abs(jpeg - image).max() < 0.1
    clear, background = P.read_picture(folder / "clear.png")
    assert background == 1.0 and clear[12, 12] < 0.01 and clear[0, 0] > 0.99  # on white
    # More than 8 bits (a 16-bit scan, floats): scaled, not clipped to 255 (a grey of 200/255
    # had read as white).
    grey = scribble(3)
    Image.fromarray(grey.astype(np.uint16) * 257).save(folder / "deep.png")
    Image.fromarray(grey.astype(np.float32) / 255).save(folder / "float.tiff")
    for name in ("deep.png", "float.tiff"):
        image, _ = P.read_picture(folder / name)
        assert np.abs(image * 255 - grey).max() < 0.5, name


def test_train_and_test_subfolders_are_the_split(tmp_path):
    write_pictures(tmp_path / "set" / "train", {"cat": 5, "dog": 4})
    write_pictures(tmp_path / "set" / "Test", {"dog": 2, "cat": 1})
    ds = D.load_dataset("folder", tmp_path / "set")
    assert ds.class_names == ("cat", "dog") and ds.notes == ()
    assert np.bincount(ds.train_labels).tolist() == [5, 4]
    assert np.bincount(ds.test_labels).tolist() == [1, 2]
    # A class one split lacks is said: never trained on, its test pictures are all voted wrong
    # (the 5-NN accuracy fell with nothing saying why).
    write_pictures(tmp_path / "set" / "Test", {"hen": 2})
    write_pictures(tmp_path / "set" / "train", {"owl": 3})
    ds = D.load_dataset("folder", tmp_path / "set")
    assert ds.class_names == ("cat", "dog", "hen", "owl")
    assert ds.notes == ("no training pictures of hen (their test pictures cannot be voted right)",
                        "no test pictures of owl")


def test_unreadable_pictures_are_left_out_and_said(tmp_path):
    write_pictures(tmp_path / "some", {"a": 7, "b": 7})
    (tmp_path / "some" / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    # A dangling link stopped the whole folder (its stat for the cache's key raised), and a
    # named pipe hung it, waiting for a writer.
    (tmp_path / "some" / "b" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    os.mkfifo(tmp_path / "some" / "b" / "pipe.png")
    ds = D.load_dataset("folder", tmp_path / "some")
    assert len(ds.train_images) + len(ds.test_images) == 14
    assert len(ds.notes) == 1 and ds.notes[0].startswith(
        f"3 of 17 pictures could not be read: left out (the first: {Path('a', 'broken.png')}: ")
    with pytest.raises(FileNotFoundError):
        P.read_picture(tmp_path / "some" / "b" / "gone.png")
    with pytest.raises(ValueError, match="not a regular file"):
        P.read_picture(tmp_path / "some" / "b" / "pipe.png")
    for odd in ("gone.png", "pipe.png"):
        (tmp_path / "some" / "b" / odd).unlink()
    for name in ("a", "b"):
        for p in (tmp_path / "some" / name).iterdir():
            p.write_bytes(b"")
    with pytest.raises(DataError, match="no train pictures \\(none could be read; the first: "):
        D.load_dataset("folder", tmp_path / "some")


def test_too_few_pictures_or_none_in_subfolders_say_what_is_needed(tmp_path):
    write_pictures(tmp_path / "few", {"a": 3, "b": 2})
    with pytest.raises(DataError, match="no test pictures \\(each class needs at least 4"):
        D.load_dataset("folder", tmp_path / "few")
    # One class's folder chosen for the dataset's: its parent is named.
    with pytest.raises(DataError, match=f"it looks like one class of the dataset in "
                       f"{tmp_path / 'few'}: choose that folder$"):
        D.load_dataset("folder", tmp_path / "few" / "a")


def test_a_huge_picture_is_refused_unread(tmp_path, monkeypatch):
    write_pictures(tmp_path / "big", {"a": 7})
    monkeypatch.setattr(P, "MAX_PIXELS", 28 * 28 - 1)
    with pytest.raises(DataError, match="28 x 28 pixels is too large"):
        D.load_dataset("folder", tmp_path / "big")
    # One over PIL's own bomb limit is said in the same words, not as "could be decompression
    # bomb DOS attack".
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ValueError, match="^too large \\(over 783 pixels\\)$"):
        P.read_picture(next((tmp_path / "big" / "a").iterdir()))


def test_the_reading_reports_progress_and_can_be_cancelled(tmp_path):
    write_pictures(tmp_path / "p", {"a": 300, "b": 100})
    token = D.CancelToken()

    def cancel_halfway(name: str, done: int, total: int | None) -> None:
        if done > 200:
            token.cancel()
    with pytest.raises(DataError, match="reading the pictures was cancelled"):
        D.load_dataset("folder", tmp_path / "p", progress=cancel_halfway, cancel=token)
    seen = []
    D.load_dataset("folder", tmp_path / "p", progress=lambda *r: seen.append(r))
    assert seen[-1] == (P.PICTURES, 400, 400) and len(seen) > 100
    assert D.progress_text(*seen[-1]) == "reading pictures: 400 of 400"


def test_a_second_load_reads_the_cache_until_the_folder_changes(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setattr(D, "user_cache_dir", lambda: cache)
    written = write_pictures(tmp_path / "c", {"a": 7, "b": 7})
    (tmp_path / "c" / "b" / "broken.png").write_bytes(b"")
    first = D.load_dataset("folder", tmp_path / "c")
    assert len(list((cache / "pictures").iterdir())) == 1
    real, reads = P.read_picture, []
    monkeypatch.setattr(P, "read_picture", lambda *a: reads.append(a) or real(*a))
    second = D.load_dataset("folder", tmp_path / "c")
    assert reads == [] and second.notes == first.notes  # nothing read: all from the cache
    for attr in ("train_images", "train_labels", "test_images", "test_labels", "class_names"):
        assert np.array_equal(getattr(first, attr), getattr(second, attr))
    path = next(iter(written))
    Image.fromarray(255 - scribble(77)).save(path)  # one picture changed
    os.utime(path, ns=(1, 1))
    third = D.load_dataset("folder", tmp_path / "c")
    assert len(reads) == 15 and len(list((cache / "pictures").iterdir())) == 1  # replaced
    assert not np.array_equal(third.train_images, first.train_images)
    entry = next((cache / "pictures").iterdir())
    entry.write_bytes(entry.read_bytes()[:100])  # a damaged cache is read past
    assert np.array_equal(D.load_dataset("folder", tmp_path / "c").train_images,
                          third.train_images)
    assert len(reads) == 30


def test_the_cli_says_a_folder_has_no_bundled_model_before_reading_it(tmp_path, capsys,
                                                                     monkeypatch):
    """`cae evaluate --data DIR` without --model read all 700 pictures, then said there is no
    bundled model for them."""
    from cae.cli import main
    write_pictures(tmp_path / "mine", {"a": 7, "b": 7})
    monkeypatch.setattr(P, "read_picture", lambda *a: pytest.fail("read before the refusal"))
    for dataset in ("auto", "folder"):
        assert main(["evaluate", "--data", str(tmp_path / "mine"), "--dataset", dataset]) == 2
        assert "no bundled model for mine data; name a model file with --model" in \
            capsys.readouterr().err


def test_the_cli_trains_on_a_picture_folder_and_says_what_was_left_out(tmp_path, capsys):
    from cae.cli import main
    write_pictures(tmp_path / "cli", {"a": 14, "b": 14})
    (tmp_path / "cli" / "a" / "bad.gif").write_bytes(b"GIF89a")
    out = tmp_path / "m.safetensors"
    assert main(["train", "--dataset", "folder", "--data", str(tmp_path / "cli"), "--epochs",
                 "1", "--batch-size", "8", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert ("note: 1 of 29 pictures could not be read: left out (the first: "
            f"{Path('a', 'bad.gif')}: not a picture this app can read)") in err
    assert main(["evaluate", "--model", str(out), "--data", str(tmp_path / "cli")]) == 0
    assert "knn5_accuracy" in capsys.readouterr().out
    # The codes name their pictures: a file column, a files array.
    import csv
    for split, count in (("all", 28), ("test", 4)):
        assert main(["encode", "--model", str(out), "--data", str(tmp_path / "cli"), "--split",
                     split, "--out", str(tmp_path / f"{split}.csv")]) == 0
        with open(tmp_path / f"{split}.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == count and all(
            (tmp_path / "cli" / row["file"]).is_file() and row["file"].startswith(
                ("a/", "b/")[int(row["label"])]) for row in rows)
    assert main(["encode", "--model", str(out), "--data", str(tmp_path / "cli"), "--out",
                 str(tmp_path / "codes.npz")]) == 0
    with np.load(tmp_path / "codes.npz", allow_pickle=False) as npz:
        assert npz["files"].tolist() == list(
            D.load_dataset("folder", tmp_path / "cli").test_files(4))  # (--split test)


def test_the_cache_keeps_the_folders_opened_last(tmp_path, monkeypatch):
    """One file per folder, never pruned, would grow by 55 MB for each 70,000-picture folder
    ever opened: the folders opened least lately go first."""
    cache = tmp_path / "cache"
    monkeypatch.setattr(D, "user_cache_dir", lambda: cache)
    monkeypatch.setattr(P, "KEEP", 2)
    folders = [tmp_path / name for name in ("one", "two", "three")]
    for folder in folders:
        write_pictures(folder, {"a": 7, "b": 7})
    entries = {}
    for when, folder in enumerate(folders[:2]):
        D.load_dataset("folder", folder)
        entries[folder.name] = P._cache_file(cache / "pictures", folder)
        os.utime(entries[folder.name], ns=(when * 10**9, when * 10**9))  # written in turn
    D.load_dataset("folder", folders[0])  # opened again: "one" is now the latest used
    D.load_dataset("folder", folders[2])
    assert sorted(p.name for p in (cache / "pictures").iterdir()) == sorted(
        P._cache_file(cache / "pictures", f).name for f in (folders[0], folders[2]))


def test_cae_data_says_what_a_folder_holds(tmp_path, capsys):
    """Before a run: the classes with their counts per split, the framing Draw will use, and
    what the reading found amiss."""
    import json

    from cae.cli import main
    write_pictures(tmp_path / "set" / "train", {"cat": 5, "dog": 4})
    write_pictures(tmp_path / "set" / "test", {"cat": 2, "hen": 1})
    (tmp_path / "set" / "test" / "cat" / "broken.png").write_bytes(b"")
    assert main(["data", "--data", str(tmp_path / "set")]) == 0
    out, err = capsys.readouterr()
    info = json.loads(out)
    assert info["dataset"] == "set" and info["image_size"] == 28
    assert (info["train"], info["test"]) == (9, 3)
    assert info["classes"] == [{"name": "cat", "train": 5, "test": 2},
                               {"name": "dog", "train": 4, "test": 0},
                               {"name": "hen", "train": 0, "test": 1}]
    assert set(info["framing"]) == {"box", "centre_of_mass"} and 0 < info["framing"]["box"] <= 28
    assert info["notes"] == [
        f"1 of 13 pictures could not be read: left out (the first: {Path('test', 'cat', 'broken.png')}: "
        "not a picture this app can read)",
        "no training pictures of hen (their test pictures cannot be voted right)",
        "no test pictures of dog"]
    assert "note: no test pictures of dog" in err
