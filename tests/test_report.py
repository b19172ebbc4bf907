"""The one-page model report (cae/report.py): PDF and PNG of the bundled model."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, PdfParser

from cae.checkpoint import load_checkpoint, save_checkpoint
from cae.cli_exports import add_export_commands
from cae.errors import CAEError
from cae.report import DPI, PAGE, file_digest, render_report, report_model, save_report
from cae.render import PALETTE, rgb
from tests.helpers import make_dataset, write_dataset_folder

BUNDLED = Path(__file__).resolve().parent.parent / "resources" / "model.safetensors"
# Where the page puts the latent map and the confusion matrix (fractions of the page).
MAP_AREA = (0.05, 0.09, 0.5, 0.42)
CONFUSION_AREA = (0.52, 0.44, 0.95, 0.68)


def crop(image: Image.Image, area: tuple[float, float, float, float]) -> np.ndarray:
    w, h = image.size
    box = (round(area[0] * w), round(area[1] * h), round(area[2] * w), round(area[3] * h))
    return np.asarray(image.convert("RGB").crop(box), np.int16)


def near(pixels: np.ndarray, colour: str, tol: int = 16) -> int:
    return int((np.abs(pixels - np.array(rgb(colour))).max(-1) <= tol).sum())


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cae")
    add_export_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.fixture(scope="module")
def pdf(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / "report.pdf"
    report_model(BUNDLED, out)
    return out


def test_pdf_is_one_a4_page(pdf):
    parser = PdfParser.PdfParser(str(pdf))
    try:
        assert len(parser.pages) == 1
        page = parser.read_indirect(parser.pages[0])
        box = [float(v) for v in page[b"MediaBox"]]
    finally:
        parser.close()
    assert box[:2] == [0, 0]
    # A4 is 595.28 x 841.89 points; 1240 x 1754 pixels at 150 dpi is within half a point of it.
    assert box[2] == pytest.approx(595.28, abs=0.5) and box[3] == pytest.approx(841.89, abs=0.5)
    assert box[2] == pytest.approx(PAGE[0] / DPI * 72) and box[3] == pytest.approx(
        PAGE[1] / DPI * 72
    )


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="needs pdftoppm (poppler-utils)")
def test_pdf_rendering_shows_the_map(pdf, tmp_path):
    """Rendered by poppler (not by the code that wrote it), the page shows the class colours in
    the map's area and the mosaic's grey digits beside it."""
    subprocess.run(
        ["pdftoppm", "-png", "-r", "75", "-singlefile", str(pdf), str(tmp_path / "page")],
        check=True,
        timeout=60,
    )
    with Image.open(tmp_path / "page.png") as page:
        assert page.size == (620, 877)  # 75 dpi of A4
        area = crop(page, MAP_AREA)
        for c in (0, 1, 2, 3, 4, 5, 6, 9):  # black (7) and grey (8) are also ink
            assert near(area, PALETTE[c]) > 20, f"class {c}'s colour is not in the map"
        mosaic = crop(page, (0.55, 0.12, 0.93, 0.42))
        greys = (np.ptp(mosaic, axis=-1) < 8) & (mosaic[..., 0] > 100) & (mosaic[..., 0] < 200)
        assert greys.sum() > 2000


def test_png_report_and_what_it_shows(tmp_path):
    out = report_model(BUNDLED, tmp_path / "report.png")
    with Image.open(out) as page:
        assert page.size == PAGE
        assert round(page.info["dpi"][0]) == DPI
        area = crop(page, MAP_AREA)
        assert all(near(area, PALETTE[c], 8) > 50 for c in (0, 1, 2, 3, 4, 5, 6, 9))


def test_with_data_the_metrics_are_computed_and_the_confusion_matrix_drawn(tmp_path):
    """Given a dataset, the report evaluates the model on it: the confusion matrix appears even
    where the metrics saved with the model have none."""
    ckpt = load_checkpoint(BUNDLED)
    metrics = {k: v for k, v in ckpt.metadata.get("metrics", {}).items() if "confusion" not in k}
    metrics.setdefault("test_mse", 0.04)
    ckpt.metadata["metrics"] = metrics
    without = render_report(ckpt.model, ckpt.metadata, ckpt.extras, model_name="m", digest=None)
    assert near(crop(without, CONFUSION_AREA), "#0072B2", 60) < 50  # "needs the dataset"
    data = make_dataset(256, 64)
    image = render_report(
        ckpt.model, ckpt.metadata, ckpt.extras, model_name="m", digest="0" * 64, dataset=data
    )
    shaded = crop(image, CONFUSION_AREA)
    # Cells shaded towards blue by their share of the row: dark blue cells exist.
    assert near(shaded, "#0072B2", 60) > 500


def test_the_digest_is_the_files_sha256_and_is_on_the_page(tmp_path):
    assert file_digest(BUNDLED) == hashlib.sha256(BUNDLED.read_bytes()).hexdigest()
    ckpt = load_checkpoint(BUNDLED)

    made = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.timezone.utc)  # a minute may pass between

    def page(digest: str) -> np.ndarray:
        return np.asarray(
            render_report(ckpt.model, ckpt.metadata, ckpt.extras, model_name="m", digest=digest,
                          made=made),
            np.int16,
        )

    a, b = page("a" * 64), page("b" * 64)
    rows = np.nonzero(np.abs(a - b).sum((1, 2)))[0]
    assert len(rows) and rows.max() < PAGE[1] * 0.1  # only the header line differs


def test_a_model_without_codes_needs_data(tmp_path):
    ckpt = load_checkpoint(BUNDLED)
    bare = save_checkpoint(
        tmp_path / "bare.safetensors", ckpt.model, {"class_names": list("0123456789")}
    )
    with pytest.raises(CAEError, match="no test codes"):
        report_model(bare, tmp_path / "r.pdf")
    assert not (tmp_path / "r.pdf").exists()
    folder = write_dataset_folder(tmp_path / "data", 128, 40)
    assert (
        run_cli(
            [
                "report",
                "--model",
                str(bare),
                "--data",
                str(folder),
                "--out",
                str(tmp_path / "r.pdf"),
            ]
        )
        == 0
    )
    assert (tmp_path / "r.pdf").stat().st_size > 10_000


def test_bad_requests_and_cancel(tmp_path):
    with pytest.raises(CAEError, match="use .pdf or .png"):
        report_model(BUNDLED, tmp_path / "report.docx")
    with pytest.raises(CAEError, match="file not found"):
        report_model(tmp_path / "nothing.safetensors", tmp_path / "report.pdf")
    target = tmp_path / "report.pdf"
    target.write_bytes(b"old")
    with pytest.raises(CAEError, match="cancelled"):
        report_model(BUNDLED, target, cancel=lambda: True)
    assert target.read_bytes() == b"old"
    image = Image.new("RGB", (10, 10))
    with pytest.raises(CAEError, match="does not exist"):
        save_report(image, tmp_path / "no" / "report.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.pdf"]


def test_progress_reaches_the_end(tmp_path):
    seen = []
    report_model(BUNDLED, tmp_path / "r.png", progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)


def test_the_recipe_speaks_of_one_epoch_and_of_cuda_graphs_only_on_cuda():
    from cae.report import _recipe_lines
    meta = {"train_config": {"epochs": 1, "cuda_graph": True}, "epochs_done": 1,
            "device": "cpu", "stopped_early": True}
    text = "\n".join(_recipe_lines(meta))
    assert "1 epoch done (stopped early)" in text and "cuda graph" not in text
    text = "\n".join(_recipe_lines({**meta, "device": "cuda:0", "epochs_done": 3}))
    assert "3 epochs done" in text and "cuda graph True" in text


def test_the_recipe_says_which_of_its_settings_were_edited():
    from cae.report import _recipe_lines
    from cae.train import RECIPES
    cfg = {"recipe": "best", **RECIPES["best"]}
    text = "\n".join(_recipe_lines({"train_config": cfg}))
    assert "recipe best," in text and "edited" not in text
    text = " ".join(_recipe_lines({"train_config": {**cfg, "epochs": 2, "batch_size": 256}}))
    assert "recipe best (edited: epochs, batch size)" in text and "epochs 2" in text


def test_a_snapshot_during_a_runs_first_epoch_says_no_epoch_has_finished(monkeypatch):
    """(It said "no loss history saved" of a run whose dock showed its first epoch's curve.)"""
    import cae.report as report
    said = []
    real = report._text
    monkeypatch.setattr(report, "_text", lambda d, xy, text, *a, **k: said.append(text) or
                        real(d, xy, text, *a, **k))
    ckpt = load_checkpoint(BUNDLED)
    meta = {k: v for k, v in ckpt.metadata.items() if k != "history"}
    render_report(ckpt.model, {**meta, "under_way": "epoch 1 of 40", "epochs_done": 0},
                  ckpt.extras, model_name="the model in training (unsaved)", digest=None)
    assert "(no epoch has finished yet)" in said and "(no loss history saved)" not in said
    said.clear()
    render_report(ckpt.model, meta, ckpt.extras, model_name="m", digest=None)
    assert "(no loss history saved)" in said


def test_given_a_dataset_the_map_is_of_its_test_set(monkeypatch):
    """The codes saved with the model are used only where they are the dataset's test set's (a
    model trained on a subset carried 1,000 codes into a report of the full set)."""
    import cae.report
    ckpt = load_checkpoint(BUNDLED)
    data = make_dataset(64, 48)
    encoded = []
    real = cae.report.encode_images
    monkeypatch.setattr(cae.report, "encode_images",
                        lambda model, images, **k: encoded.append(len(images)) or real(model, images, **k))
    metrics = {"test_mse": 0.04}
    render_report(ckpt.model, ckpt.metadata, ckpt.extras, model_name="m", digest=None,
                  dataset=data, metrics=metrics)
    assert encoded == [48]  # the bundled file's 10,000 test codes are MNIST's, not these
    extras = {"test_codes": np.zeros((48, 2), np.float32), "test_labels": data.test_labels}
    render_report(ckpt.model, ckpt.metadata, extras, model_name="m", digest=None,
                  dataset=data, metrics=metrics)
    assert encoded == [48]  # this set's own codes: used as saved
    render_report(ckpt.model, ckpt.metadata, ckpt.extras, model_name="m", digest=None)
    assert encoded == [48]  # no dataset: the saved codes


def test_class_names_under_columns_never_run_together():
    """Fashion-MNIST's names under the bars and the confusion matrix read
    "T-shirt/topTrouserPullover..." on one line."""
    from PIL import Image, ImageDraw

    from cae.report import _column_labels
    from cae.render import font
    d = ImageDraw.Draw(Image.new("RGB", (900, 200), "white"))
    fashion = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    slot, s = 50.0, 1.5
    assert _column_labels(d, [slot * (i + 0.5) for i in range(10)], 0, list("0123456789"),
                          slot, s) == pytest.approx(1.3 * 11 * s)  # digits: one line, full size
    used = _column_labels(d, [slot * (i + 0.5) for i in range(10)], 0, fashion, slot, s)
    assert used == pytest.approx(2 * 1.3 * 8 * s)  # two staggered lines, 8 points
    # Neighbours on the same line never touch: each has two slots.
    assert max(d.textlength(n, font=font(8 * s)) for n in fashion) < 2 * slot


def test_the_command_in_a_report_names_no_folders():
    from cae.report import _without_folders
    assert _without_folders("cae train --data /work/shared/data/mnist --out "
                            "'/home/ana/my models/m.safetensors' --epochs 3") == \
        "cae train --data mnist --out m.safetensors --epochs 3"
    assert _without_folders("cae train --data 'unbalanced") == "cae train --data 'unbalanced"


def test_the_report_names_the_classes_of_the_data_it_shows(monkeypatch):
    """An MNIST model's report over Fashion-MNIST named the classes 0-9 (its file's names)
    under the bars, on the matrix and in the legend, while the map showed clothes."""
    import cae.report as report
    from cae.model import CAE
    from tests.helpers import make_dataset
    ds = make_dataset(64, 32)
    clothes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot")
    ds = type(ds)("clothes", ds.train_images, ds.train_labels, ds.test_images, ds.test_labels,
                  clothes)
    drawn = []
    monkeypatch.setattr(report, "_bars", lambda d, box, values, names, s: drawn.append(names))
    report.render_report(CAE(), {"class_names": list("0123456789")}, {}, model_name="m",
                         digest=None, dataset=ds)
    assert drawn == [list(clothes)]
