"""File dialogs start in the folder last used (home the first time), kept in the settings."""
from pathlib import Path

from app import file_dialogs


def test_dialogs_start_at_home_then_where_the_user_last_was(qtbot, settings, tmp_path, monkeypatch):
    file_dialogs.remember_folders_in(settings)
    asked = []
    chosen = tmp_path / "models" / "m.safetensors"
    chosen.parent.mkdir()

    def dialog(parent, title, start, filters, *selected):
        asked.append(start)
        return str(chosen), ""
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getOpenFileName", dialog)
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getSaveFileName", dialog)
    assert file_dialogs.open_file(None, "Open", "*") == str(chosen)
    assert asked[0] == str(Path.home())
    file_dialogs.save_file(None, "Save", "codes.csv", "*")
    assert asked[1] == str(chosen.parent / "codes.csv")


def test_a_dataset_folder_is_remembered_apart_from_where_files_are_saved(qtbot, settings,
                                                                          tmp_path, monkeypatch):
    """A save or export never starts among the IDX files the user last opened."""
    file_dialogs.remember_folders_in(settings)
    data, exports = tmp_path / "mnist", tmp_path / "exports"
    data.mkdir()
    exports.mkdir()
    asked = []
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getExistingDirectory",
                        lambda parent, title, start: asked.append(start) or str(data))
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getSaveFileName",
                        lambda parent, title, start, filters, *_: asked.append(start)
                        or (str(exports / "map.png"), ""))
    assert file_dialogs.data_folder(None, "Folder") == str(data)
    assert asked[0] == str(Path.home())
    file_dialogs.save_file(None, "Export", "map.png", "*")
    assert asked[1] == str(Path.home() / "map.png")  # not data / "map.png"
    file_dialogs.data_folder(None, "Folder")
    assert asked[2] == str(data)  # a folder is remembered as itself
    file_dialogs.save_file(None, "Export", "codes.csv", "*")
    assert asked[3] == str(exports / "codes.csv")


def test_a_cancelled_dialog_or_a_vanished_folder_changes_nothing(qtbot, settings, tmp_path,
                                                                 monkeypatch):
    file_dialogs.remember_folders_in(settings)
    gone = tmp_path / "gone"
    gone.mkdir()
    settings.setValue(file_dialogs.KEY, str(gone))
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getOpenFileName", lambda *a: ("", ""))
    assert file_dialogs.open_file(None, "Open", "*") == ""
    assert file_dialogs.start_folder() == str(gone)
    gone.rmdir()
    assert file_dialogs.start_folder() == str(Path.home())


def test_save_never_starts_beside_the_bundled_models(qtbot, settings, tmp_path, monkeypatch):
    """Opening a bundled model remembers its folder (package data); Save then starts at home."""
    file_dialogs.remember_folders_in(settings)
    bundled = tmp_path / "resources" / "model.safetensors"
    bundled.parent.mkdir()
    bundled.write_bytes(b"x")
    monkeypatch.setattr(file_dialogs, "bundled_model_path",
                        lambda name: bundled if name == "mnist" else None)
    asked = []

    def dialog(parent, title, start, filters, *selected):
        asked.append(start)
        return str(bundled), ""
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getOpenFileName", dialog)
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getSaveFileName", dialog)
    file_dialogs.open_file(None, "Open", "*")
    assert file_dialogs.start_folder() == str(bundled.parent)  # opening there again is fine
    file_dialogs.save_file(None, "Save", "strip.png", "*")
    assert asked[-1] == str(Path.home() / "strip.png")


def test_the_data_folder_dialog_starts_at_the_loaded_data_the_first_time(qtbot, settings, tmp_path,
                                                                        monkeypatch):
    """Started with ``--data DIR``, Choose data folder opened at the home folder."""
    file_dialogs.remember_folders_in(settings)
    loaded, chosen = tmp_path / "data" / "mnist", tmp_path / "data" / "fashion"
    loaded.mkdir(parents=True)
    chosen.mkdir()
    settings.setValue(file_dialogs.LOADED_DATA_KEY, str(loaded))  # as the session records it
    asked = []
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getExistingDirectory",
                        lambda parent, title, start: asked.append(start) or str(chosen))
    file_dialogs.data_folder(None, "Folder")
    file_dialogs.data_folder(None, "Folder")
    assert asked == [str(loaded), str(chosen)]  # then where the user chose last


def test_a_save_dialog_offers_the_file_type_chosen_last_time(qtbot, settings, tmp_path,
                                                            monkeypatch):
    """Export map offered SVG each time, to a user who exports PNGs; the choice is the
    dialog's own (another dialog keeps its default), and a single-type dialog is left alone."""
    file_dialogs.remember_folders_in(settings)
    filters = "SVG (*.svg);;PNG at any resolution (*.png)"
    asked, answer = [], [str(tmp_path / "map.png")]

    def dialog(parent, title, start, filters, selected):
        asked.append((Path(start).name, selected))
        return answer[0], ""
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getSaveFileName", dialog)
    file_dialogs.save_file(None, "Export map", "latent-map.svg", filters)
    assert asked[-1] == ("latent-map.svg", "")  # the first time: as the caller suggests
    file_dialogs.save_file(None, "Export map", "latent-map.svg", filters)
    assert asked[-1] == ("latent-map.png", "PNG at any resolution (*.png)")
    file_dialogs.save_file(None, "Export report", "report.pdf", "PDF (*.pdf);;PNG (*.png)")
    assert asked[-1] == ("report.pdf", "")  # another dialog's choice is its own
    answer[0] = str(tmp_path / "map.svg")
    file_dialogs.save_file(None, "Export map", "latent-map.svg", filters)
    file_dialogs.save_file(None, "Export map", "latent-map.svg", filters)
    assert asked[-1] == ("latent-map.svg", "SVG (*.svg)")
    answer[0] = str(tmp_path / "map.txt")  # not one of the types offered: not remembered
    file_dialogs.save_file(None, "Export map", "latent-map.svg", filters)
    file_dialogs.save_file(None, "Export map", "latent-map.svg", filters)
    assert asked[-1] == ("latent-map.svg", "SVG (*.svg)")
    settings.setValue(file_dialogs.TYPE_KEY + "Export strip", ".svg")  # one type only: its own
    file_dialogs.save_file(None, "Export strip", "strip.png", "PNG (*.png)")
    assert asked[-1] == ("strip.png", "")


def test_a_name_typed_without_a_suffix_gets_the_chosen_types(qtbot, settings, tmp_path,
                                                             monkeypatch):
    """(Export map with PNG chosen wrote a PNG called "map"; Export z a CSV called "z".)"""
    file_dialogs.remember_folders_in(settings)
    filters = "SVG (*.svg);;PNG at any resolution (*.png)"
    answer = []
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getSaveFileName",
                        lambda parent, title, start, filters, selected: answer[-1])
    answer.append((str(tmp_path / "map"), "PNG at any resolution (*.png)"))
    assert file_dialogs.save_file(None, "Export map", "latent-map.svg", filters) == str(
        tmp_path / "map.png")
    answer.append((str(tmp_path / "z"), ""))  # no type reported: the first one offered
    assert file_dialogs.save_file(None, "Export z", "z.csv", "CSV (*.csv)") == str(tmp_path / "z.csv")
    answer.append((str(tmp_path / "map.svg"), "PNG at any resolution (*.png)"))  # typed: kept
    assert file_dialogs.save_file(None, "Export map", "m.svg", filters) == str(tmp_path / "map.svg")
    answer.append((str(tmp_path / "notes"), "All files (*)"))
    assert file_dialogs.save_file(None, "Save", "n", "All files (*)") == str(tmp_path / "notes")
    answer.append(("", ""))  # cancelled
    assert file_dialogs.save_file(None, "Export map", "m.svg", filters) == ""


def test_a_suffix_added_to_an_existing_file_asks_before_replacing_it(qtbot, settings, tmp_path,
                                                                     monkeypatch):
    """The dialog asked about replacing "my-model" (which did not exist), then the suffix made
    it my-model.safetensors, which did, and that was replaced without a word."""
    file_dialogs.remember_folders_in(settings)
    (tmp_path / "my-model.safetensors").write_text("the user's model")
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getSaveFileName",
                        lambda *a: (str(tmp_path / "my-model"), "Models (*.safetensors)"))
    asked = []
    for answer, expected in ((False, ""), (True, str(tmp_path / "my-model.safetensors"))):
        monkeypatch.setattr(file_dialogs, "confirm_replace",
                            lambda parent, path, a=answer: asked.append(path) or a)
        assert file_dialogs.save_file(None, "Save model", "m.safetensors",
                                      "Models (*.safetensors)") == expected
    assert asked == [str(tmp_path / "my-model.safetensors")] * 2
    # A name whose file does not exist yet is not asked about.
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getSaveFileName",
                        lambda *a: (str(tmp_path / "new"), "Models (*.safetensors)"))
    assert file_dialogs.save_file(None, "Save model", "m.safetensors",
                                  "Models (*.safetensors)") == str(tmp_path / "new.safetensors")
    assert len(asked) == 2


def test_a_folder_that_cannot_be_written_is_said_at_once_and_the_dialog_opens_elsewhere(
        qtbot, settings, tmp_path, monkeypatch):
    """A folder nothing can be written in is refused as it is chosen, in the OS's words, and the
    dialog opens again outside it.  An export had gone on to ask its options and do its work,
    then failed; and the next dialog had opened in that folder again."""
    file_dialogs.remember_folders_in(settings)
    good, locked = tmp_path / "good", tmp_path / "locked"
    good.mkdir()
    locked.mkdir()
    answers = iter([(str(good / "a.png"), "PNG (*.png)"), (str(locked / "b.png"), "PNG (*.png)"),
                    (str(good / "b.png"), "PNG (*.png)"), (str(locked / "c.png"), "PNG (*.png)"),
                    ("", "")])
    starts, warnings = [], []
    monkeypatch.setattr("app.file_dialogs.QFileDialog.getSaveFileName",
                        lambda parent, title, start, *a: starts.append(start) or next(answers))
    monkeypatch.setattr("app.file_dialogs.QMessageBox.warning",
                        lambda parent, title, text: warnings.append(text))
    real = file_dialogs.cannot_write_in
    monkeypatch.setattr(file_dialogs, "cannot_write_in",  # (root writes anywhere: as a user would)
                        lambda folder: "Read-only file system" if folder == locked else real(folder))
    assert file_dialogs.save_file(None, "Export", "a.png", "PNG (*.png)") == str(good / "a.png")
    assert file_dialogs.save_file(None, "Export", "b.png", "PNG (*.png)") == str(good / "b.png")
    assert warnings == [f"Nothing can be written in {locked}: Read-only file system.\n\n"
                        "Choose another folder."]
    assert starts[2] == str(good / "b.png")  # asked again, where the last file was written
    assert file_dialogs.save_file(None, "Export", "c.png", "PNG (*.png)") == ""  # then Cancel
    assert len(warnings) == 2 and file_dialogs.save_folder() == str(good)


def test_cannot_write_in_gives_the_os_reason(tmp_path):
    assert file_dialogs.cannot_write_in(tmp_path) is None
    assert list(tmp_path.iterdir()) == []  # the probe leaves nothing behind
    assert "No such file" in file_dialogs.cannot_write_in(tmp_path / "gone")
