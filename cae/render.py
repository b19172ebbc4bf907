"""The latent map drawn without Qt (numpy + Pillow), so exports work from a terminal and from a
GUI worker thread alike: PNG at any resolution and SVG with one ``<g>`` per visible class.

A map is laid out once (:func:`layout_map`: plot box, view with equal axis scales, ticks,
legend) and then drawn by either writer, so the PNG and the SVG show the same picture.  PNGs are
drawn at twice their size and reduced, which smooths the dots without a vector library.
"""

from __future__ import annotations

import contextlib

import base64
import io
import itertools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .errors import CAEError
from .palette import PALETTE, POINT_ALPHA
from .model import CAE
from .mosaic import mosaic, square_rows

INK, FAINT, STAR, PATH = "#222222", "#BBBBBB", "#FF2D2D", "#222222"
CROSS, CROSS_PX = "#FF0000", 16  # the decoded point, as the window marks it: colour, width
LEGEND_ROW, LEGEND_GAP = 17, 10  # a legend row's height; the room between plot and legend
TRAIN_COLOUR, TEST_COLOUR = "#0072B2", "#D55E00"  # the app's loss-curve colours
SUPERSAMPLE = 2
# A mosaic pixel of value v (0 = background, 1 = stroke) is drawn as this grey level, so the
# digits read as soft grey strokes under the coloured dots on a white page.
MOSAIC_LIGHT, MOSAIC_DARK = 255, 120
DOT_RIM = 0.75  # the white rim round each dot over the mosaic, in pixels at scale 1

View = tuple[float, float, float, float]  # x0, x1, y0, y1 in latent units
Box = tuple[int, int, int, int]  # left, top, right, bottom in pixels
Progress = Callable[[float], None] | None
Cancel = Callable[[], bool] | None  # polled between steps; True stops the work


def rgb(colour: str) -> tuple[int, int, int]:
    """'#RRGGBB' -> (r, g, b)."""
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def class_colour(c: int) -> str:
    return PALETTE[c % len(PALETTE)]


def check_cancel(cancel: Cancel) -> None:
    """Raise the engine's one 'cancelled' error when ``cancel()`` says so."""
    if cancel is not None and cancel():
        raise CAEError("cancelled")


def font(px: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's own scalable font, so output does not depend on the fonts installed."""
    return ImageFont.load_default(size=max(1, round(px)))


OUTLIER_SPANS = 0.5  # a code this far (in bulk spans) beyond the 0.1-99.9 % range is left out


def fit_view(codes: np.ndarray) -> View:
    """Frame the codes as the app's Fit view does: every code plus 5 %, except far outliers.
    On each side the frame reaches the farthest code that lies within half the 0.1-99.9 % range
    beyond it: a diverged code would shrink the clusters to a dot, and is left out alone (the
    codes between it and the bulk are still framed)."""
    codes = np.asarray(codes, np.float64)
    codes = codes[np.isfinite(codes).all(1)]
    if len(codes) == 0:
        return -1.0, 1.0, -1.0, 1.0
    lo, hi = np.percentile(codes, 0.1, axis=0), np.percentile(codes, 99.9, axis=0)
    reach = OUTLIER_SPANS * (hi - lo)
    lo = np.where(codes >= lo - reach, codes, np.inf).min(0)  # (the percentile's own code at
    hi = np.where(codes <= hi + reach, codes, -np.inf).max(0)  # least: never empty)
    pad = np.maximum((hi - lo) * 0.05, 1e-3)
    return (
        float(lo[0] - pad[0]),
        float(hi[0] + pad[0]),
        float(lo[1] - pad[1]),
        float(hi[1] + pad[1]),
    )


def equal_aspect(view: View, width: float, height: float) -> View:
    """Widen ``view`` about its centre so one latent unit is as long on both axes of a
    ``width`` x ``height`` box (distances on the map then mean the same in every direction)."""
    x0, x1, y0, y1 = view
    per_px = max((x1 - x0) / width, (y1 - y0) / height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (
        cx - per_px * width / 2,
        cx + per_px * width / 2,
        cy - per_px * height / 2,
        cy + per_px * height / 2,
    )


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) inside [lo, hi]."""
    span = hi - lo
    if not span > 0 or not math.isfinite(span):
        return [lo]
    raw = span / target
    power = 10 ** math.floor(math.log10(raw))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda s: abs(s - raw))
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]


def tick_text(value: float) -> str:
    return f"{value:g}" if value != 0 else "0"


# ----------------------------------------------------------------------------- mosaic


def mosaic_image(
    decode: Callable[[torch.Tensor], torch.Tensor] | CAE,
    view: View,
    n: int,
    rows: int | None = None,
) -> np.ndarray:
    """Decode an ``n`` x ``rows`` grid of cell centres over ``view`` into one float image
    (rows*28, n*28) in [0, 1], top row first (as an image is drawn), each tile upright: the
    window's mosaic turned for a file.  ``decode`` is a
    :class:`cae.batch_decode.BatchDecoder` or a model."""
    if isinstance(decode, CAE):
        model = decode
        decode = lambda z: model.decode(z).clamp(0, 1)  # noqa: E731
    return np.ascontiguousarray(mosaic(decode, *view, n, rows)[::-1])


def mosaic_grid(n: int, box: Box) -> tuple[int, int]:
    """Columns and rows of square tiles covering ``box`` with ``n`` columns."""
    return n, square_rows(n, box[2] - box[0], box[3] - box[1])


def mosaic_greys(image: np.ndarray) -> np.ndarray:
    """A decoded mosaic (values in [0, 1]) as the uint8 greys it is drawn with."""
    return (MOSAIC_LIGHT - (MOSAIC_LIGHT - MOSAIC_DARK) * np.clip(image, 0, 1)).astype(np.uint8)


def mosaic_underlay(
    mosaic: np.ndarray | Image.Image,
    mosaic_view: View,
    view: View,
    size: tuple[int, int],
    coarse: int = 1,
) -> Image.Image:
    """The part of a mosaic decoded over ``mosaic_view`` that a plot of ``view`` shows, as a
    greyscale picture of ``size``; what the mosaic does not cover stays white.  ``coarse`` > 1
    resamples at 1/coarse of the size and enlarges by repeating pixels: for a picture drawn
    ``coarse`` times too large and then reduced, the same result at a fraction of the cost."""
    grey = mosaic if isinstance(mosaic, Image.Image) else Image.fromarray(mosaic_greys(mosaic), "L")
    mx0, mx1, my0, my1 = mosaic_view
    w, h = grey.size
    x0, x1, y0, y1 = view
    extent = (
        (x0 - mx0) / (mx1 - mx0) * w,
        (my1 - y1) / (my1 - my0) * h,
        (x1 - mx0) / (mx1 - mx0) * w,
        (my1 - y0) / (my1 - my0) * h,
    )
    small = (max(1, size[0] // coarse), max(1, size[1] // coarse))
    out = grey.transform(
        small, Image.Transform.EXTENT, extent, Image.Resampling.BILINEAR, fillcolor=MOSAIC_LIGHT
    )
    return out if small == size else out.resize(size, Image.Resampling.NEAREST)


# ----------------------------------------------------------------------------- layout


@dataclass
class MapStyle:
    """What a map shows besides the dots; sizes are in pixels of a scale-1 picture."""

    hidden: frozenset[int] = frozenset()  # classes not drawn (and left out of the legend)
    legend: bool = True
    axes: bool = True
    point_size: float = 3.5  # dot diameter
    star: tuple[float, float] | None = None  # a drawn digit's code
    cross: tuple[float, float] | None = None  # the decoded point (under the star where both)
    path: np.ndarray | None = None  # (K, 2) interpolation path
    title: str | None = None
    # True: widen the view so a latent unit is as long on both axes (distances mean the same in
    # every direction); False: show exactly the view asked for (the window's export "as shown")
    equal_scales: bool = True


def legend_rows(class_names: Sequence[str], labels: np.ndarray,
                style: MapStyle) -> list[tuple[int, str]]:
    """(class, name) of each legend row: the classes present and not hidden."""
    if not style.legend:
        return []
    present = set(np.unique(np.asarray(labels, np.int64)).tolist())
    return [(c, str(name)) for c, name in enumerate(class_names)
            if c in present and c not in style.hidden]


def _legend_size(rows: Sequence[tuple[int, str]], s: float) -> tuple[float, float]:
    """The legend box's width and height at scale ``s``."""
    width = (30 + 8 * max((len(name) for _, name in rows), default=0)) * s
    return width, (LEGEND_ROW * len(rows) + 8) * s


def _margins(style: MapStyle, s: float,
             beside: Sequence[tuple[int, str]] = ()) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) pixels around the plot area at scale ``s``, with room on the
    right for a legend of ``beside``'s rows."""
    top = round((34 if style.title else 10) * s)
    left = round(64 * s) if style.axes else round(10 * s)
    bottom = round(40 * s) if style.axes else round(10 * s)
    right = round(12 * s) + (round(_legend_size(beside, s)[0] + LEGEND_GAP * s) if beside else 0)
    return left, top, right, bottom


def _fits_beside(rows: Sequence[tuple[int, str]], style: MapStyle, height: float,
                 s: float) -> bool:
    """Whether the legend fits beside the plot, as in the window (else it lies over the plot's
    top-right corner): in a picture at least as tall as the legend."""
    return bool(rows) and _margins(style, s)[1] + _legend_size(rows, s)[1] + 10 * s <= height


def size_for_plot(width: float, height: float, style: MapStyle, across: int = 800,
                  legend: Sequence[tuple[int, str]] = ()) -> tuple[int, int]:
    """A picture ``across`` pixels wide whose plot area has the aspect of ``width`` x ``height``
    (an on-screen plot's), so that a view taken from the screen fills it as it did there; with
    room beside it for ``legend``'s rows (see :func:`legend_rows`) where they fit."""
    def size_with(beside: Sequence[tuple[int, str]]) -> tuple[int, int]:
        left, top, right, bottom = _margins(style, 1.0, beside)
        return across, round((across - left - right) * height / max(width, 1e-9)) + top + bottom

    size = size_with(legend)
    return size if not legend or _fits_beside(legend, style, size[1], 1.0) else size_with(())


def plot_aspect_for(aspect: float, style: MapStyle, across: int = 800,
                    legend: Sequence[tuple[int, str]] = ()) -> float:
    """The plot area's aspect (width over height) that makes the whole picture of
    :func:`size_for_plot` ``aspect`` (a slide's 16:9), axes, title and legend included."""
    def plot_aspect(beside: Sequence[tuple[int, str]]) -> float:
        left, top, right, bottom = _margins(style, 1.0, beside)
        return (across - left - right) / max(across / aspect - top - bottom, 1.0)

    if legend and _fits_beside(legend, style, round(across / aspect), 1.0):
        return plot_aspect(legend)
    return plot_aspect(())


@dataclass
class MapLayout:
    """Everything both writers need, in pixels of the final picture (scale applied)."""

    size: tuple[int, int]
    scale: float
    box: Box  # plot area
    view: View  # latent rectangle the plot area shows (equal scales unless style says not)
    xticks: list[float] = field(default_factory=list)
    yticks: list[float] = field(default_factory=list)
    legend: list[tuple[int, str]] = field(default_factory=list)  # (class, name) per legend row
    legend_beside: bool = False  # right of the plot (else over its top-right corner)

    def to_px(self, xy: np.ndarray) -> np.ndarray:
        """Latent (N, 2) -> pixel (N, 2) coordinates inside the plot box (y grows downwards)."""
        left, t, r, b = self.box
        x0, x1, y0, y1 = self.view
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        return np.column_stack(
            [
                left + (xy[:, 0] - x0) / (x1 - x0) * (r - left),
                t + (y1 - xy[:, 1]) / (y1 - y0) * (b - t),
            ]
        )


def check_hidden(hidden: frozenset[int], n_classes: int) -> None:
    """One clear error for classes to leave out that do not exist (they were ignored)."""
    unknown = sorted(c for c in hidden if not 0 <= c < n_classes)
    if unknown:
        raise CAEError(f"no class {', '.join(map(str, unknown))} to leave out; the classes "
                       f"are 0 to {n_classes - 1}")


def layout_map(
    size: tuple[int, int],
    class_names: Sequence[str],
    labels: np.ndarray,
    view: View,
    style: MapStyle,
    scale: float = 1.0,
    origin: tuple[int, int] = (0, 0),
) -> MapLayout:
    """Place the plot area in a ``size`` panel at ``origin`` and fit ``view`` to it."""
    w, h = size
    ox, oy = origin
    s = scale
    legend = legend_rows(class_names, labels, style)
    beside = _fits_beside(legend, style, h, s)
    left, top, right, bottom = _margins(style, s, legend if beside else ())
    box = (ox + left, oy + top, ox + w - right, oy + h - bottom)
    if box[2] - box[0] < 10 or box[3] - box[1] < 10:
        raise CAEError(f"a map of {round(w / s)}x{round(h / s)} pixels is too small to draw")
    if style.equal_scales:
        view = equal_aspect(view, box[2] - box[0], box[3] - box[1])
    return MapLayout(
        (w, h),
        s,
        box,
        view,
        nice_ticks(view[0], view[1]) if style.axes else [],
        nice_ticks(view[2], view[3]) if style.axes else [],
        legend,
        beside,
    )


def _star_points(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    pts = []
    for i in range(10):
        a = -math.pi / 2 + i * math.pi / 5
        rr = r if i % 2 == 0 else r * 0.45
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return pts


# ----------------------------------------------------------------------------- PNG


def draw_map(
    image: Image.Image,
    lay: MapLayout,
    codes: np.ndarray,
    labels: np.ndarray,
    style: MapStyle,
    underlay: Image.Image | None = None,
) -> None:
    """Draw a laid-out map onto ``image`` (RGB, already at the layout's pixel size), over
    ``underlay`` (a greyscale picture of the plot box's size, see :func:`mosaic_underlay`)."""
    d = ImageDraw.Draw(image)
    s = lay.scale
    left, t, r, b = lay.box
    if underlay is not None:
        image.paste(underlay.convert("RGB"), (left, t))
    codes = np.asarray(codes, np.float64).reshape(-1, 2)
    labels = np.asarray(labels, np.int64)
    keep = ~np.isin(labels, list(style.hidden)) & np.isfinite(codes).all(1)
    px = lay.to_px(codes[keep])
    rad = style.point_size * s / 2
    inside = (
        (px[:, 0] > left - rad) & (px[:, 0] < r + rad) & (px[:, 1] > t - rad) & (px[:, 1] < b + rad)
    )
    # Clip dots to the plot box by drawing them on a layer pasted through a box-sized mask.
    layer = image.crop((left, t, r, b))
    ld = ImageDraw.Draw(layer)
    # Class after class, the last on top, each slightly see-through, as the window draws them;
    # over the mosaic each dot has a white rim, as in the window (class 9's grey dots were lost
    # in the strokes' greys).
    shown, at = labels[keep][inside], px[inside] - (left, t)
    rim = DOT_RIM * s if underlay is not None else 0.0
    for c in np.unique(shown):
        dots = Image.new("L", layer.size, 0)
        dd = ImageDraw.Draw(dots)
        halo = Image.new("L", layer.size, 0) if rim else None
        hd = ImageDraw.Draw(halo) if halo is not None else None
        for x, y in at[shown == c]:
            dd.ellipse((x - rad, y - rad, x + rad, y + rad), fill=POINT_ALPHA)
            if hd is not None:
                hd.ellipse((x - rad - rim, y - rad - rim, x + rad + rim, y + rad + rim), fill=255)
        if halo is not None:
            layer.paste((255, 255, 255), mask=halo)
        layer.paste(rgb(class_colour(int(c))), mask=dots)
    if style.path is not None and len(style.path) >= 2:
        pts = [tuple(p - (left, t)) for p in lay.to_px(style.path)]
        _dashed(ld, pts, rgb(PATH), max(1, round(2 * s)), 8 * s, 5 * s)
        for x, y in pts:
            rr = 3.5 * s
            ld.ellipse(
                (x - rr, y - rr, x + rr, y + rr),
                fill="white",
                outline=rgb(PATH),
                width=max(1, round(s)),
            )
        for name, (x, y) in zip("AB", (pts[0], pts[-1])):  # the ends, named as on the map,
            ld.text((x + 6 * s, y - 6 * s), name, fill=rgb(PATH), font=font(13 * s), anchor="lb",
                    stroke_width=max(1, round(2 * s)), stroke_fill="white")  # legible on dots
    if style.cross is not None:
        ((x, y),) = lay.to_px(np.array([style.cross])) - (left, t)
        arm, width = CROSS_PX / 2 * s, max(1, round(3 * s))
        ld.line((x - arm, y, x + arm, y), fill=rgb(CROSS), width=width)
        ld.line((x, y - arm, x, y + arm), fill=rgb(CROSS), width=width)
    if style.star is not None:
        ((x, y),) = lay.to_px(np.array([style.star])) - (left, t)
        ld.polygon(
            _star_points(x, y, 11 * s),
            fill=rgb(STAR),
            outline=rgb(INK),
            width=max(1, round(1.5 * s)),
        )
    image.paste(layer, (left, t))
    d.rectangle((left, t, r, b), outline=rgb(INK), width=max(1, round(s)))
    if style.axes:
        f = font(12 * s)
        widest = max((d.textlength(tick_text(v), font=f) for v in lay.yticks), default=0)
        for v in lay.xticks:
            x = lay.to_px(np.array([[v, lay.view[2]]]))[0, 0]
            d.line((x, b, x, b + 5 * s), fill=rgb(INK), width=max(1, round(s)))
            d.text((x, b + 7 * s), tick_text(v), fill=rgb(INK), font=f, anchor="mt")
        for v in lay.yticks:
            y = lay.to_px(np.array([[lay.view[0], v]]))[0, 1]
            d.line((left - 5 * s, y, left, y), fill=rgb(INK), width=max(1, round(s)))
            d.text((left - 7 * s, y), tick_text(v), fill=rgb(INK), font=f, anchor="rm")
        d.text(((left + r) / 2, b + 24 * s), "z1", fill=rgb(INK), font=font(13 * s), anchor="mt")
        d.text(
            (left - 11 * s - widest, (t + b) / 2),
            "z2",
            fill=rgb(INK),
            font=font(13 * s),
            anchor="rm",
        )
    if style.title:
        d.text(
            ((left + r) / 2, t - 8 * s), style.title, fill=rgb(INK), font=font(17 * s), anchor="mb"
        )
    if lay.legend:
        _draw_legend(d, lay)


def _dashed(
    d: ImageDraw.ImageDraw, pts: list, fill: tuple, width: int, dash: float, gap: float
) -> None:
    for (x0, y0), (x1, y1) in itertools.pairwise(pts):
        length = math.hypot(x1 - x0, y1 - y0)
        pos = 0.0
        while pos < length:
            end = min(pos + dash, length)
            d.line(
                (
                    x0 + (x1 - x0) * pos / length,
                    y0 + (y1 - y0) * pos / length,
                    x0 + (x1 - x0) * end / length,
                    y0 + (y1 - y0) * end / length,
                ),
                fill=fill,
                width=width,
            )
            pos = end + gap


def _legend_geometry(lay: MapLayout) -> tuple[float, float, float, float, float]:
    """Legend box (left, top, right, bottom) beside the plot's top-right corner (or in it), and
    its row height."""
    s = lay.scale
    width, height = _legend_size(lay.legend, s)
    if lay.legend_beside:
        left, t = lay.box[2] + LEGEND_GAP * s, lay.box[1]
    else:
        left, t = lay.box[2] - 6 * s - width, lay.box[1] + 6 * s
    return left, t, left + width, t + height, LEGEND_ROW * s


def _draw_legend(d: ImageDraw.ImageDraw, lay: MapLayout) -> None:
    s = lay.scale
    x0, y0, x1, y1, row = _legend_geometry(lay)
    d.rectangle((x0, y0, x1, y1), fill=(255, 255, 255), outline=rgb(FAINT), width=max(1, round(s)))
    f = font(12 * s)
    for i, (c, name) in enumerate(lay.legend):
        cy = y0 + 4 * s + row * (i + 0.5)
        d.ellipse((x0 + 8 * s, cy - 4.5 * s, x0 + 17 * s, cy + 4.5 * s), fill=rgb(class_colour(c)))
        d.text((x0 + 24 * s, cy), name, fill=rgb(INK), font=f, anchor="lm")


def render_map(
    codes: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    size: tuple[int, int] = (800, 800),
    scale: float = 1.0,
    view: View | None = None,
    style: MapStyle | None = None,
    decoder: Callable | CAE | None = None,
    mosaic_tiles: int = 24,
) -> Image.Image:
    """The map as an RGB image of ``size`` times ``scale`` pixels (strokes and text grow with
    ``scale``, so a scale-4 picture looks like the scale-1 one, only sharper).  With a
    ``decoder`` the decoded-image mosaic (``mosaic_tiles`` across) lies under the dots."""
    style = style or MapStyle()
    w, h = round(size[0] * scale), round(size[1] * scale)
    if w < 1 or h < 1 or w * h > 100_000_000:
        raise CAEError(f"picture size {w}x{h} is out of range (1 to 100 million pixels)")
    view = view or fit_view(np.asarray(codes)[~np.isin(labels, list(style.hidden))])
    ss = SUPERSAMPLE if w * h <= 25_000_000 else 1
    lay = layout_map((w * ss, h * ss), class_names, labels, view, style, scale * ss)
    underlay = None
    if decoder is not None:
        mosaic = mosaic_image(decoder, lay.view, *mosaic_grid(mosaic_tiles, lay.box))
        underlay = mosaic_underlay(
            mosaic, lay.view, lay.view, (lay.box[2] - lay.box[0], lay.box[3] - lay.box[1])
        )
    image = Image.new("RGB", (w * ss, h * ss), "white")
    draw_map(image, lay, codes, labels, style, underlay)
    return image.reduce(ss) if ss > 1 else image


# ----------------------------------------------------------------------------- loss curve


def draw_loss_curve(
    d: ImageDraw.ImageDraw,
    box: tuple[float, float, float, float],
    history: list[dict],
    scale: float,
    epochs: tuple[float, float] | None = None,
    upto: float | None = None,
    steps: np.ndarray | None = None,
) -> None:
    """Train and test loss per epoch (``history`` rows: epoch, train_loss, test_loss) in
    ``box``; with ``upto`` only as far as that (fractional) epoch, on axes fixed for the whole
    run, with a marker line there.  ``steps`` ((N, 2): epochs, loss), the training loss every
    few steps, draws the training curve as the window drew it (a one-epoch run's was one dot)."""
    s = scale
    left, t, r, b = box
    rows = sorted(history, key=lambda row: row["epoch"])
    steps = np.zeros((0, 2)) if steps is None else np.asarray(steps, float).reshape(-1, 2)
    last = max([row["epoch"] for row in rows] + [float(e) for e in steps[:, 0]], default=1)
    e0, e1 = epochs or (0, last)
    e1 = max(e1, e0 + 1)
    values = [row[k] for row in rows for k in ("train_loss", "test_loss") if math.isfinite(row[k])]
    values += [float(v) for v in steps[:, 1]]
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = max((hi - lo) * 0.08, 1e-6)
    lo, hi = lo - pad, hi + pad

    margin = 0.04 * (e1 - e0)  # the first and last epochs' dots inside the frame, not on it

    def px(e: float, v: float) -> tuple[float, float]:
        x = left + (e - e0 + margin) / (e1 - e0 + 2 * margin) * (r - left)
        return x, b - (v - lo) / (hi - lo) * (b - t)

    thin = max(1, round(s / 2))
    f = font(11 * s)
    d.rectangle(box, outline=rgb(INK), width=thin)
    for v in nice_ticks(lo, hi, 4):
        y = px(e0, v)[1]
        d.line((left - 4 * s, y, left, y), fill=rgb(INK), width=thin)
        d.text((left - 6 * s, y), f"{v:.3g}", fill=rgb(INK), font=f, anchor="rm")
    width = d.im.size[0]
    # As many epoch ticks as fit ("0 10 20 30 40" crowded a 400-px animation's narrow panel).
    fit = int((r - left) / (d.textlength(tick_text(e1), font=f) + 12 * s))
    options = [t for t in (nice_ticks(e0, e1, n) for n in (5, 4, 3, 2, 1)) if len(t) >= 2]
    for v in next((t for t in options if len(t) <= fit), options[-1] if options else [e0]):
        x = px(v, lo)[0]
        d.line((x, b, x, b + 4 * s), fill=rgb(INK), width=thin)
        half = d.textlength(tick_text(v), font=f) / 2  # kept inside the image at its right edge
        d.text((min(x, width - 1 - half), b + 6 * s), tick_text(v), fill=rgb(INK), font=f,
               anchor="mt")
    d.text(((left + r) / 2, b + 22 * s), "epoch", fill=rgb(INK), font=f, anchor="mt")
    title, title_font = "loss (MSE per pixel)", font(13 * s)
    if d.textlength(title, font=title_font) > r - left + 40 * s:  # a narrow panel: the short one
        title = "loss (MSE)"
    half = d.textlength(title, font=title_font) / 2  # kept inside the image, as the ticks
    d.text((min((left + r) / 2, width - 1 - half), t - 10 * s), title, fill=rgb(INK),
           font=title_font, anchor="mb")
    if upto is not None:
        d.line((px(upto, lo)[0], t, px(upto, lo)[0], b), fill=rgb(FAINT), width=max(1, round(s)))
    upto = e1 if upto is None else upto
    es = np.array([row["epoch"] for row in rows], float)
    # The legend goes in the corner the whole curve keeps clear of (fixed for an animation).
    curves = [np.array([px(e, v) for e, v in zip(es, [row[k] for row in rows])
                        if math.isfinite(v)]).reshape(-1, 2) for k in ("train_loss", "test_loss")]
    if len(steps):
        curves[0] = np.array([px(e, v) for e, v in steps]).reshape(-1, 2)
    lx, ly = legend_corner(box, curves, (70 * s, 36 * s), 4 * s)
    if len(steps):  # the training loss as the run reported it: a line, no dots
        pts = [px(e, v) for e, v in steps if e <= upto]
        if len(pts) > 1:
            d.line(pts, fill=rgb(TRAIN_COLOUR), width=max(1, round(1.5 * s)), joint="curve")
    for key, colour in (("train_loss", TRAIN_COLOUR), ("test_loss", TEST_COLOUR)):
        if key == "train_loss" and len(steps):
            continue
        vs = np.array([row[key] for row in rows], float)
        shown = es <= upto
        pts = [px(e, v) for e, v in zip(es[shown], vs[shown])]
        later = np.nonzero(~shown)[0]
        if pts and len(later):  # the segment towards the next epoch, as far as ``upto``
            k = later[0]
            frac = (upto - es[k - 1]) / (es[k] - es[k - 1])
            pts.append(px(upto, vs[k - 1] + (vs[k] - vs[k - 1]) * frac))
        if len(pts) > 1:
            d.line(pts, fill=rgb(colour), width=max(1, round(2 * s)), joint="curve")
        for e, v in zip(es[shown], vs[shown]):
            x, y = px(e, v)
            d.ellipse((x - 3 * s, y - 3 * s, x + 3 * s, y + 3 * s), fill=rgb(colour))
    for k, (name, colour) in enumerate((("train", TRAIN_COLOUR), ("test", TEST_COLOUR))):
        y = ly + (10 + 16 * k) * s
        d.line((lx + 4 * s, y, lx + 24 * s, y), fill=rgb(colour), width=max(1, round(2 * s)))
        d.text((lx + 29 * s, y), name, fill=rgb(INK), font=f, anchor="lm")


def legend_corner(box: tuple[float, float, float, float], curves: Sequence[np.ndarray],
                  size: tuple[float, float], inset: float) -> tuple[float, float]:
    """The top-left of a ``size`` legend in the corner of ``box`` that the ``curves`` (polylines
    of (x, y) points) cross least, top right first: a rising test loss ran under the legend
    that always sat there."""
    left, t, r, b = box
    w, h = size
    corners = [(r - inset - w, t + inset), (left + inset, t + inset),
               (r - inset - w, b - inset - h), (left + inset, b - inset - h)]
    samples = [line[i] + (line[i + 1] - line[i]) * f
               for line in curves for i in range(len(line) - 1) for f in np.linspace(0, 1, 16)]
    samples += [p for line in curves for p in line]
    points = np.array(samples).reshape(-1, 2)

    def crossed(corner: tuple[float, float]) -> int:
        x, y = corner
        return int(((points[:, 0] >= x - inset) & (points[:, 0] <= x + w + inset)
                    & (points[:, 1] >= y - inset) & (points[:, 1] <= y + h + inset)).sum())
    return min(corners, key=crossed)  # (the first of equals: top right)


# ----------------------------------------------------------------------------- SVG


def map_svg(
    codes: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    size: tuple[int, int] = (800, 800),
    view: View | None = None,
    style: MapStyle | None = None,
    decoder: Callable | CAE | None = None,
    mosaic_tiles: int = 24,
) -> str:
    """The same map as SVG text: each visible class is one ``<g class="points">`` of circles
    (so it can be restyled or removed in an editor); the mosaic is an embedded PNG."""
    style = style or MapStyle()
    labels = np.asarray(labels, np.int64)
    codes = np.asarray(codes, np.float64).reshape(-1, 2)
    view = view or fit_view(codes[~np.isin(labels, list(style.hidden))])
    lay = layout_map(size, class_names, labels, view, style)
    left, t, r, b = lay.box
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{size[0]}" height="{size[1]}" '
            f'viewBox="0 0 {size[0]} {size[1]}" font-family="DejaVu Sans, Arial, sans-serif">'
        ),
        f'<rect width="{size[0]}" height="{size[1]}" fill="white"/>',
    ]
    if decoder is not None:
        grid = mosaic_grid(mosaic_tiles, lay.box)
        buf = io.BytesIO()
        Image.fromarray(mosaic_greys(mosaic_image(decoder, lay.view, *grid)), "L").save(buf, "PNG")
        data = base64.b64encode(buf.getvalue()).decode()
        out.append(
            f'<image id="mosaic" x="{left}" y="{t}" width="{r - left}" height="{b - t}" '
            # xlink:href, SVG 1.1's, which older renderers need besides browsers' SVG 2 href.
            # (ImageMagick's built-in renderer draws no embedded image either way.)
            f'preserveAspectRatio="none" xlink:href="data:image/png;base64,{data}"/>'
        )
    rad = style.point_size / 2
    # Only what lies inside the plot is written (no clip paths: simple viewers ignore them).
    for c, name in enumerate(class_names):
        sel = labels == c
        if c in style.hidden or not sel.any():
            continue
        px = lay.to_px(codes[sel])
        px = px[
            np.isfinite(px).all(1)
            & (px[:, 0] >= left + rad)
            & (px[:, 0] <= r - rad)
            & (px[:, 1] >= t + rad)
            & (px[:, 1] <= b - rad)
        ]
        circles = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{rad:g}"/>' for x, y in px)
        out.append(
            f'<g class="points" id="class-{c}" data-class="{escape(str(name))}" '
            f'fill="{class_colour(c)}" fill-opacity="{POINT_ALPHA / 255:.3f}" '
            + (f'stroke="white" stroke-width="{2 * DOT_RIM:g}" paint-order="stroke">'
               if decoder is not None
               else 'stroke="none">') + f"{circles}</g>"
        )
    if style.path is not None and len(style.path) >= 2:
        pts = lay.to_px(style.path)
        out.append(
            f'<polyline id="path" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in pts)}" '
            f'fill="none" stroke="{PATH}" stroke-width="2" stroke-dasharray="8 5"/>'
        )
        out.extend(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="white" stroke="{PATH}"/>'
            for x, y in pts
        )
        out.extend(  # the ends, named as on the map
            f'<text class="path-end" x="{x + 6:.1f}" y="{y - 6:.1f}" fill="{PATH}" '
            f'stroke="white" stroke-width="4" paint-order="stroke" font-size="13">{name}</text>'
            for name, (x, y) in zip("AB", (pts[0], pts[-1]))
        )
    cross = None if style.cross is None else lay.to_px(np.array([style.cross]))[0]
    if cross is not None and left <= cross[0] <= r and t <= cross[1] <= b:
        x, y, arm = *cross, CROSS_PX / 2
        out.append(
            f'<path id="decoded-point" d="M{x - arm:.1f} {y:.1f}H{x + arm:.1f}'
            f'M{x:.1f} {y - arm:.1f}V{y + arm:.1f}" stroke="{CROSS}" stroke-width="3"/>'
        )
    star = None if style.star is None else lay.to_px(np.array([style.star]))[0]
    if star is not None and left <= star[0] <= r and t <= star[1] <= b:
        x, y = star
        pts = " ".join(f"{px_:.1f},{py_:.1f}" for px_, py_ in _star_points(x, y, 11))
        out.append(
            f'<polygon id="drawn-digit" points="{pts}" fill="{STAR}" stroke="{INK}" '
            'stroke-width="1.5"/>'
        )
    out.append(
        f'<rect x="{left}" y="{t}" width="{r - left}" height="{b - t}" fill="none" stroke="{INK}"/>'
    )
    if style.axes:
        out.append(f'<g id="axes" fill="{INK}" font-size="12">')
        widest = max((len(tick_text(v)) for v in lay.yticks), default=0)  # about 7 px a character
        for v in lay.xticks:
            x = lay.to_px(np.array([[v, lay.view[2]]]))[0, 0]
            out.append(
                f'<line x1="{x:.1f}" y1="{b}" x2="{x:.1f}" y2="{b + 5}" stroke="{INK}"/>'
                f'<text x="{x:.1f}" y="{b + 19}" text-anchor="middle">{tick_text(v)}</text>'
            )
        for v in lay.yticks:
            y = lay.to_px(np.array([[lay.view[0], v]]))[0, 1]
            out.append(
                f'<line x1="{left - 5}" y1="{y:.1f}" x2="{left}" y2="{y:.1f}" stroke="{INK}"/>'
                f'<text x="{left - 7}" y="{y + 4:.1f}" text-anchor="end">{tick_text(v)}</text>'
            )
        out.append(
            f'<text x="{(left + r) / 2}" y="{b + 36}" text-anchor="middle" font-size="13">z1</text>'
            f'<text x="{left - 11 - 7 * widest}" y="{(t + b) / 2 + 4}" text-anchor="end" '
            'font-size="13">z2</text></g>'
        )
    if style.title:
        out.append(
            f'<text x="{(left + r) / 2}" y="{t - 8}" text-anchor="middle" font-size="17" '
            f'fill="{INK}">{escape(style.title)}</text>'
        )
    if lay.legend:
        x0, y0, x1, y1, row = _legend_geometry(lay)
        out.append(
            f'<g id="legend" font-size="12"><rect x="{x0}" y="{y0}" width="{x1 - x0}" '
            f'height="{y1 - y0}" fill="white" stroke="{FAINT}"/>'
        )
        for i, (c, name) in enumerate(lay.legend):
            cy = y0 + 4 + row * (i + 0.5)
            out.append(
                f'<circle cx="{x0 + 12.5}" cy="{cy}" r="4.5" fill="{class_colour(c)}"/>'
                f'<text x="{x0 + 24}" y="{cy + 4}" fill="{INK}">{escape(name)}</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


# ----------------------------------------------------------------------------- files


def write_atomic(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Run ``write(tmp)`` and move the result onto ``path`` only when it succeeded, so a failed or
    cancelled export never leaves half a file (or destroys an older one)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise CAEError(f"cannot write {path}: the folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.part{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise CAEError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):  # (a read-only folder refuses even this: EROFS)
            tmp.unlink(missing_ok=True)
    return path


def save_map(
    path: str | os.PathLike,
    codes: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    size: tuple[int, int] = (800, 800),
    scale: float = 1.0,
    dpi: float | None = None,
    view: View | None = None,
    style: MapStyle | None = None,
    decoder: Callable | CAE | None = None,
    mosaic_tiles: int = 24,
) -> Path:
    """Write the map as .svg or .png (chosen by the suffix); a PNG records ``dpi`` (default
    96 x ``scale``, so its printed size stays that of the scale-1 picture)."""
    suffix = Path(path).suffix.lower()
    if suffix not in (".png", ".svg"):
        raise CAEError(
            f"cannot write a map as {suffix or 'a file without a suffix'}: use .png or .svg"
        )
    if len(codes) != len(labels):
        raise CAEError(f"{len(codes)} codes but {len(labels)} labels")
    if suffix == ".svg":
        text = map_svg(
            codes,
            labels,
            class_names,
            size=size,
            view=view,
            style=style,
            decoder=decoder,
            mosaic_tiles=mosaic_tiles,
        )
        return write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))
    image = render_map(
        codes,
        labels,
        class_names,
        size=size,
        scale=scale,
        view=view,
        style=style,
        decoder=decoder,
        mosaic_tiles=mosaic_tiles,
    )
    dpi = dpi or 96 * scale
    return write_atomic(path, lambda p: image.save(p, "PNG", dpi=(dpi, dpi)))
