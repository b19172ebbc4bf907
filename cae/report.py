"""A one-page model report (PNG, or a one-page PDF of A4 at 150 dpi): the latent map, the
decoded-image mosaic, the metrics (test MSE, per-class error, 5-NN accuracy and its confusion
matrix), the training recipe and loss curve, and the model file's name and SHA-256 digest, so a
printed page can be traced back to the exact file.

Qt-free (Pillow draws and writes the PDF), for ``cae report`` and the GUI's worker thread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shlex
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .checkpoint import load_checkpoint
from .data import Dataset
from .errors import CAEError
from .metrics import encode_images, evaluate
from .model import CAE
from .model_file import step_points
from .render import (
    FAINT,
    INK,
    SUPERSAMPLE,
    Cancel,
    MapStyle,
    Progress,
    check_cancel,
    class_colour,
    draw_loss_curve,
    draw_map,
    fit_view,
    font,
    layout_map,
    mosaic_grid,
    mosaic_image,
    mosaic_underlay,
    rgb,
    write_atomic,
)
from .train import RECIPES

DPI = 150
PAGE = (1240, 1754)  # A4 (210 x 297 mm) at 150 dpi
MARGIN = 70
K = 5  # the k of the k-NN accuracy
# Settings that change how training is watched, not the model it makes.
_NOT_RECIPE = {"device", "report_every", "snapshot_every_s", "snapshot_size", "test_size"}


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except OSError as exc:
        raise CAEError(f"cannot read {path}: {exc.strerror or exc}") from None
    return h.hexdigest()


def _text(
    d: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, px: float, bold: bool = False, **kw
) -> None:
    d.text(
        xy,
        text,
        fill=rgb(INK),
        font=font(px),
        stroke_width=1 if bold else 0,
        stroke_fill=rgb(INK),
        **kw,
    )


def _bars(
    d: ImageDraw.ImageDraw,
    box: tuple[float, float, float, float],
    values: Sequence[float | None],
    names: Sequence[str],
    s: float,
) -> None:
    """Per-class reconstruction error as bars in the class colours, with the values on top (no
    bar for a class without test images)."""
    left, t, r, b = box
    values = [np.nan if v is None else v for v in values]
    finite = [v for v in values if np.isfinite(v)]
    top = max(finite) * 1.15 if finite else 1.0
    d.line((left, b, r, b), fill=rgb(INK), width=max(1, round(s)))
    slot = (r - left) / max(1, len(values))
    _column_labels(d, [left + slot * (c + 0.5) for c in range(len(values))], b + 4 * s,
                   names[:len(values)], slot, s)
    for c, v in enumerate(values):
        x0 = left + slot * (c + 0.15)
        x1 = left + slot * (c + 0.85)
        if np.isfinite(v):
            y = b - v / top * (b - t)
            d.rectangle((x0, y, x1, b), fill=rgb(class_colour(c)))
            d.text(
                ((x0 + x1) / 2, y - 3 * s), f"{v:.3f}", fill=rgb(INK), font=font(9 * s), anchor="mb"
            )


def _column_labels(
    d: ImageDraw.ImageDraw, centres: Sequence[float], y: float, names: Sequence[str],
    slot: float, s: float,
) -> float:
    """Names under columns ``slot`` wide, from ``y`` down: as large as fits (11 down to 8
    points), on two staggered lines where one would run them together (Fashion-MNIST's
    "T-shirt/top", "Trouser", ...); returns the height used."""
    size = 11 * s
    widest = max((d.textlength(n, font=font(size)) for n in names), default=0.0)
    if widest > 0.92 * slot:
        size = max(8 * s, size * 0.92 * slot / widest)
        widest = max(d.textlength(n, font=font(size)) for n in names)
    line = 1.3 * size
    stagger = widest > 0.92 * slot
    for i, (x, name) in enumerate(zip(centres, names)):
        d.text((x, y + (line if stagger and i % 2 else 0)), name, fill=rgb(INK),
               font=font(size), anchor="mt")
    return 2 * line if stagger else line


def _confusion(
    d: ImageDraw.ImageDraw,
    box: tuple[float, float, float, float],
    matrix: np.ndarray,
    names: Sequence[str],
    s: float,
) -> None:
    """Counts with cells shaded by the share of each true class (row) they hold."""
    left, t, r, b = box
    n = len(matrix)
    cell = min(r - left, b - t) / n
    shares = matrix / np.maximum(matrix.sum(1, keepdims=True), 1)
    base = np.array(rgb("#0072B2"), float)
    f = font(min(10 * s, cell * 0.38))
    for i in range(n):
        for j in range(n):
            colour = tuple(int(v) for v in 255 - (255 - base) * shares[i, j])
            x, y = left + j * cell, t + i * cell
            d.rectangle((x, y, x + cell, y + cell), fill=colour, outline=rgb(FAINT))
            if matrix[i, j]:
                d.text(
                    (x + cell / 2, y + cell / 2),
                    str(int(matrix[i, j])),
                    font=f,
                    anchor="mm",
                    fill=(255, 255, 255) if shares[i, j] > 0.5 else rgb(INK),
                )
        d.text(
            (left - 5 * s, t + (i + 0.5) * cell),
            names[i],
            fill=rgb(INK),
            font=font(11 * s),
            anchor="rm",
        )
    used = _column_labels(d, [left + (i + 0.5) * cell for i in range(n)], t + n * cell + 4 * s,
                          names[:n], cell, s)
    d.text(
        (left + n * cell / 2, t + n * cell + 6 * s + used),
        "predicted by the 5 nearest training codes",
        fill=rgb(INK),
        font=font(11 * s),
        anchor="mt",
    )


def _without_folders(command: str) -> str:
    """The command with each absolute path cut to its last part: a report goes on slides, and
    the folders of whoever trained the model (/tmp/probes/..., /home/name/...) say nothing."""
    try:
        words = shlex.split(command)
    except ValueError:  # (unbalanced quotes: the file is the user's)
        return command
    return shlex.join(Path(w).name if os.path.isabs(w) and Path(w).name else w for w in words)


def _recipe_lines(metadata: dict) -> list[str]:
    """The training recipe in plain words, from the metadata saved with the model."""
    cfg = metadata.get("train_config") or {}
    lines = []
    if metadata.get("dataset"):
        lines.append(f"dataset: {metadata['dataset']}")
    on_cuda = "cuda" in str(metadata.get("device", ""))
    own = RECIPES.get(cfg.get("recipe"), {})  # what the named recipe would have used
    edited = [k.replace("_", " ") for k, v in own.items() if k in cfg and cfg[k] != v]
    parts = [
        f"recipe {v} (edited: {', '.join(edited)})" if k == "recipe" and edited
        else f"{k.replace('_', ' ')} {v}"
        for k, v in cfg.items()
        if k not in _NOT_RECIPE and v is not None and (on_cuda or k != "cuda_graph")
    ]
    lines.extend(textwrap.wrap(", ".join(parts), 64))
    run = []
    if "epochs_done" in metadata:
        run.append(
            f"{metadata['epochs_done']} epoch{'' if metadata['epochs_done'] == 1 else 's'} done"
            + (f", {metadata['under_way']} under way (a snapshot during training)"
               if metadata.get("under_way") else
               " (stopped early)" if metadata.get("stopped_early") else "")
        )
    if metadata.get("device"):
        run.append(f"on {metadata['device']}")
    if metadata.get("precision"):
        run.append(f"precision {metadata['precision']}")
    if metadata.get("wall_time_s") is not None:
        run.append(f"{metadata['wall_time_s']} s")
    if run:
        lines.extend(textwrap.wrap(", ".join(run), 64))
    if metadata.get("command"):
        lines.extend(textwrap.wrap(f"command: {_without_folders(metadata['command'])}", 64))
    if metadata.get("version"):
        lines.append(f"cae-explorer version {metadata['version']}")
    return lines or ["(no training recipe was saved with this model)"]


def report_metrics(
    model: CAE, metadata: dict, dataset: Dataset | None = None, cancel: Cancel = None
) -> tuple[dict | None, str]:
    """The metrics to show and where they come from: computed now on ``dataset``'s test set, or
    those saved with the model at training time, or none."""
    if dataset is not None:
        return evaluate(
            model, dataset, k=K, cancel=cancel
        ), f"computed now on the {dataset.name} test set"
    if metadata.get("metrics"):
        return metadata["metrics"], "saved with the model at training time"
    return None, "none: give the dataset to compute them"


def render_report(
    model: CAE,
    metadata: dict,
    extras: dict[str, np.ndarray],
    *,
    model_name: str,
    digest: str | None,
    dataset: Dataset | None = None,
    metrics: dict | None = None,
    progress: Progress = None,
    cancel: Cancel = None,
    made: dt.datetime | None = None,
) -> Image.Image:
    """The report page as an RGB image of :data:`PAGE` pixels, stamped ``made`` (now unless
    given, so two pages of one file can be compared).  ``metrics`` (as
    :func:`cae.metrics.evaluate` returns them on ``dataset``) skips the evaluation when already
    computed.  Given a dataset, the map shows its test set (the codes saved with the model only
    where they are that set's)."""

    def step(f: float) -> None:
        check_cancel(cancel)
        if progress is not None:
            progress(f)

    step(0.0)
    codes, labels = extras.get("test_codes"), extras.get("test_labels")
    if dataset is not None and not (
        codes is not None
        and labels is not None
        and np.array_equal(np.asarray(labels), dataset.test_labels)
    ):  # the codes saved with the model are of another test set (a subset, another dataset)
        codes, labels = None, None
    if codes is None or labels is None:
        if dataset is None:
            raise CAEError(
                "the model file has no test codes to map: give the dataset to encode them"
            )
        codes, labels = (
            encode_images(model, dataset.test_images, cancel=cancel),
            dataset.test_labels,
        )
    labels = np.asarray(labels, np.int64)
    n_classes = max(int(labels.max(initial=0)) + 1, len(metadata.get("class_names") or []))
    names = list((dataset.class_names if dataset is not None else None)  # what the map shows
                 or metadata.get("class_names") or [str(c) for c in range(n_classes)])
    source = "computed in the app" + (f" on the {dataset.title} test set" if dataset else "")
    noun = dataset.noun if dataset else "digits" if metadata.get("dataset") == "mnist" else "images"
    if metrics is None:
        metrics, source = report_metrics(model, metadata, dataset, cancel)
    step(0.6)

    ss = SUPERSAMPLE
    s = ss * 1.5
    page = Image.new("RGB", (PAGE[0] * ss, PAGE[1] * ss), "white")
    d = ImageDraw.Draw(page)
    m = MARGIN * ss
    width = page.width - 2 * m

    # Header: what this is, and exactly which file.
    y = m
    _text(d, (m, y), "CAE Latent Explorer: model report", 22 * s, bold=True)
    y += 40 * s
    _text(d, (m, y), f"model file: {model_name}", 11 * s)
    y += 17 * s
    _text(d, (m, y), f"SHA-256: {digest or '(not saved to a file)'}", 11 * s)
    y += 17 * s
    stamp = (made or dt.datetime.now(dt.timezone.utc)).strftime("%Y-%m-%d %H:%M UTC")
    _text(d, (m, y), f"{len(codes)} test codes, {len(names)} classes; page made {stamp}", 11 * s)
    y += 28 * s

    # Map and mosaic side by side, over the same view.
    half = (width - 20 * ss) // 2
    style = MapStyle(point_size=2.5, title=f"latent map (test {noun})")
    lay = layout_map(
        (half, half), names, labels, fit_view(codes), style, s * 0.8, origin=(m, round(y))
    )
    draw_map(page, lay, codes, labels, style)
    step(0.7)
    mstyle = MapStyle(legend=False, title="decoded-image mosaic")
    mlay = layout_map(
        (half, half),
        names,
        labels,
        lay.view,
        mstyle,
        s * 0.8,
        origin=(m + half + 20 * ss, round(y)),
    )
    box = (mlay.box[2] - mlay.box[0], mlay.box[3] - mlay.box[1])
    mosaic = mosaic_image(model, mlay.view, *mosaic_grid(20, mlay.box))
    draw_map(
        page,
        mlay,
        np.zeros((0, 2)),
        np.zeros(0, np.int64),
        mstyle,
        mosaic_underlay(mosaic, mlay.view, mlay.view, box),
    )
    step(0.85)
    y += half + 24 * s

    # Metrics.
    _text(d, (m, y), "Metrics", 16 * s, bold=True)
    _text(d, (m + 90 * s, y + 4 * s), f"({source})", 11 * s)
    y += 28 * s
    col = m + width * 0.52
    if metrics is None:
        _text(
            d,
            (m, y),
            "No metrics: none were saved with this model and no dataset was given.",
            12 * s,
        )
        y += 30 * s
    else:
        acc = metrics.get(f"knn{K}_accuracy")
        lines = [
            f"test MSE per pixel: {metrics['test_mse']:.5f} (output clamped to [0, 1])",
            f"{K}-NN accuracy of the codes: "
            + (f"{100 * acc:.2f} %" if acc is not None else "n/a"),
            ", ".join(
                f"{what}: {metrics[key]}"
                for key, what in (("n_test", f"test {noun}"), ("n_train", f"training {noun} voting"))
                if key in metrics
            ),
        ]
        for line in lines:
            _text(d, (m, y), line, 12 * s)
            y += 20 * s
        _text(d, (m, y + 10 * s), "reconstruction error (MSE) per class", 12 * s)
        _bars(
            d,
            (m + 4 * s, y + 50 * s, col - 30 * s, y + 230 * s),
            metrics.get("per_class_mse", []),
            names,
            s,
        )
        confusion = metrics.get(f"knn{K}_confusion")
        if confusion is not None:
            _text(d, (col, y - 60 * s), f"{K}-NN confusion matrix (rows: true class)", 12 * s)
            _confusion(
                d,
                (col + 30 * s, y - 36 * s, m + width, y + 234 * s),
                np.asarray(confusion),
                names,
                s,
            )
        else:
            _text(d, (col, y), "confusion matrix: needs the dataset", 12 * s)
        y += 290 * s

    # Training recipe and loss curve.
    _text(d, (m, y), "Training", 16 * s, bold=True)
    y += 30 * s
    ty = y
    for line in _recipe_lines(metadata):
        _text(d, (m, ty), line, 11 * s)
        ty += 17 * s
    history = metadata.get("history") or []
    steps = step_points(metadata)
    if history or len(steps):
        draw_loss_curve(
            d,
            (col + 40 * s, y + 20 * s, m + width, min(page.height - m - 40 * s, y + 200 * s)),
            history,
            s * 0.9,
            steps=steps,
        )
    else:  # (a run's first epoch has no per-epoch losses yet: not "none saved")
        _text(d, (col, y), "(no epoch has finished yet)" if metadata.get("under_way")
              else "(no loss history saved)", 11 * s)
    step(1.0)
    return page.reduce(ss)


def save_report(image: Image.Image, path: str | os.PathLike) -> Path:
    """Write the page as .pdf (one page, A4 at 150 dpi) or .png (chosen by the suffix)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".pdf":
        return write_atomic(
            path,
            lambda p: image.save(
                p,
                "PDF",
                resolution=DPI,
                quality=95,
                subsampling=0,
                title="CAE Latent Explorer model report",
            ),
        )
    if suffix == ".png":
        return write_atomic(path, lambda p: image.save(p, "PNG", dpi=(DPI, DPI)))
    raise CAEError(
        f"cannot write a report as {suffix or 'a file without a suffix'}: use .pdf or .png"
    )


def report_model(
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    dataset: Dataset | None = None,
    progress: Progress = None,
    cancel: Cancel = None,
) -> Path:
    """``cae report``: the report of a model file, written to ``out``."""
    suffix = Path(out).suffix.lower()
    if suffix not in (".pdf", ".png"):
        raise CAEError(
            f"cannot write a report as {suffix or 'a file without a suffix'}: use .pdf or .png"
        )
    ckpt = load_checkpoint(model_path)
    image = render_report(
        ckpt.model,
        ckpt.metadata,
        ckpt.extras,
        model_name=Path(model_path).name,
        digest=file_digest(model_path),
        dataset=dataset,
        progress=progress,
        cancel=cancel,
    )
    return save_report(image, out)
