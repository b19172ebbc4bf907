"""The print-quality map (cae/render.py) on the bundled model: PNG at any resolution, SVG."""

from __future__ import annotations

import argparse
import base64
import io
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import cae.render as render
from cae.checkpoint import load_checkpoint
from cae.cli_exports import add_export_commands
from cae.errors import CAEError
from cae.palette import POINT_ALPHA
from cae.render import (
    PALETTE,
    MapStyle,
    equal_aspect,
    fit_view,
    layout_map,
    nice_ticks,
    render_map,
    rgb,
    save_map,
)

BUNDLED = Path(__file__).resolve().parent.parent / "resources" / "model.safetensors"
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def bundled():
    ckpt = load_checkpoint(BUNDLED)
    return ckpt, ckpt.extras["test_codes"], ckpt.extras["test_labels"].astype(np.int64)


def colour_pixels(image: Image.Image, colour: str | np.ndarray, tol: int = 12) -> int:
    """How many pixels are within ``tol`` of ``colour`` on every channel."""
    a = np.asarray(image.convert("RGB"), np.int16)
    target = np.array(rgb(colour) if isinstance(colour, str) else colour)
    return int((np.abs(a - target).max(-1) <= tol).sum())


def over(colour: str, under: np.ndarray | tuple = (255, 255, 255)) -> np.ndarray:
    """A dot of ``colour`` as drawn over ``under`` (white by default): the dots are slightly
    see-through, as in the window."""
    a = POINT_ALPHA / 255
    return a * np.array(rgb(colour)) + (1 - a) * np.array(under)


def run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="cae")
    add_export_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_png_shows_every_visible_class_and_not_the_hidden_one(bundled, tmp_path):
    ckpt, codes, labels = bundled
    style = MapStyle(hidden=frozenset({1}), legend=False)
    names, view = ckpt.metadata["class_names"], fit_view(codes)
    image = render_map(codes, labels, names, size=(500, 400), style=style, view=view)
    assert image.size == (500, 400)
    assert colour_pixels(image, PALETTE[1]) == colour_pixels(image, over(PALETTE[1])) == 0
    pixels = np.asarray(image, np.int16)
    for c in set(range(10)) - {1}:  # each class shows: hiding it too changes the picture
        without = render_map(codes, labels, names, size=(500, 400), view=view,
                             style=MapStyle(hidden=frozenset({1, c}), legend=False))
        changed = int((np.abs(np.asarray(without, np.int16) - pixels).max(-1) > 12).sum())
        assert changed > 200, f"class {c} is missing from the map ({changed} pixels)"
    # The legend lists the visible classes only: with it, class 1's colour is still absent.
    with_legend = render_map(
        codes,
        labels,
        ckpt.metadata["class_names"],
        size=(500, 400),
        style=MapStyle(hidden=frozenset({1})),
    )
    assert colour_pixels(with_legend, PALETTE[1]) == colour_pixels(with_legend, over(PALETTE[1])) == 0


def test_dots_sit_where_their_codes_are(bundled):
    """A single code's dot lands at the pixel the layout maps it to."""
    _, codes, labels = bundled
    style = MapStyle(legend=False, axes=False)
    view = (-1.0, 1.0, -1.0, 1.0)
    z = np.array([[0.5, -0.25]], np.float32)
    image = render_map(
        z, np.array([2]), [str(c) for c in range(10)], size=(300, 300), view=view, style=style
    )
    left, top, right, bottom = layout_map(
        (300, 300), [str(c) for c in range(10)], np.array([2]), view, style
    ).box
    found = np.argwhere(np.abs(np.asarray(image, np.int16) - over(PALETTE[2])).max(-1) <= 12)
    assert len(found)
    cy, cx = found.mean(0)
    # The plot box shows [-1, 1] on both axes, z1 to the right and z2 upwards (image rows down).
    assert cx == pytest.approx(left + 0.75 * (right - left), abs=1.5)
    assert cy == pytest.approx(top + 0.625 * (bottom - top), abs=1.5)


def test_classes_stack_as_on_screen_whatever_the_data_order():
    """The window draws class after class (the last on top), each slightly see-through; a PNG
    drew the codes in the data's order, opaque, so a class listed last hid the others."""
    style = MapStyle(legend=False, axes=False)
    z = np.zeros((2, 2), np.float32)  # two codes on the same spot
    names = [str(c) for c in range(10)]
    for labels in (np.array([7, 3]), np.array([3, 7])):
        image = render_map(z, labels, names, size=(200, 200), view=(-1, 1, -1, 1), style=style)
        centre = np.asarray(image, np.int16)[100, 100]
        assert np.abs(centre - over(PALETTE[7], over(PALETTE[3]))).max() <= 3, (labels, centre)


def test_scale_multiplies_pixels_and_records_dpi(bundled, tmp_path):
    ckpt, codes, labels = bundled
    names = ckpt.metadata["class_names"]
    one = save_map(tmp_path / "one.png", codes, labels, names, size=(300, 200))
    four = save_map(tmp_path / "four.png", codes, labels, names, size=(300, 200), scale=4)
    with Image.open(one) as a, Image.open(four) as b:
        assert a.size == (300, 200) and b.size == (1200, 800)
        assert round(b.info["dpi"][0]) == 384
        # The same picture, only sharper: shrunk back, the scale-4 one matches the scale-1 one.
        small = np.asarray(b.convert("RGB").resize(a.size, Image.Resampling.BOX), float)
        assert np.abs(small - np.asarray(a.convert("RGB"), float)).mean() < 12


def test_mosaic_star_and_path_are_drawn(bundled, monkeypatch):
    ckpt, codes, labels = bundled
    names = ckpt.metadata["class_names"]
    plain = render_map(codes, labels, names, size=(400, 400))
    extra = render_map(
        codes,
        labels,
        names,
        size=(400, 400),
        decoder=ckpt.model,
        mosaic_tiles=12,
        style=MapStyle(star=(0.0, 0.0), path=np.array([[-1.0, -1.0], [2.0, 2.0]])),
    )
    assert colour_pixels(plain, "#FF2D2D") == 0
    assert colour_pixels(extra, "#FF2D2D") > 30  # the star
    # The decoded point's cross, red as in the window, in an empty corner of the plot.
    crossed = render_map(codes, labels, names, size=(400, 400), style=MapStyle(cross=(-4.5, 7.5)))
    assert colour_pixels(plain, render.CROSS) == 0
    assert 40 < colour_pixels(crossed, render.CROSS) < 200  # two 16 x 3 px bars
    # The path's ends carry their names: the same path with its "A" and "B" left out has
    # fewer pixels of the path's colour (its ends in empty corners, so no dot covers a name).
    path = MapStyle(path=np.array([[-4.5, 7.5], [5.0, -1.5]]))
    named = render_map(codes, labels, names, size=(400, 400), style=path)
    real = render.ImageDraw.ImageDraw.text
    monkeypatch.setattr(render.ImageDraw.ImageDraw, "text", lambda self, xy, text, *a, **k: (
        None if text in ("A", "B") else real(self, xy, text, *a, **k)))
    bare = render_map(codes, labels, names, size=(400, 400), style=path)
    assert colour_pixels(named, render.PATH) > colour_pixels(bare, render.PATH) + 10
    # The mosaic's grey strokes fill the empty parts of the plot, white without it: find a
    # patch inside the plot with no dots (where depends on the model), then look at it.
    plain_px = np.asarray(plain.convert("L"))
    empty = [(x, y) for x in range(70, 340, 10) for y in range(15, 330, 10)
             if plain_px[y:y + 40, x:x + 40].min() > 240]
    assert empty, "no empty patch in the plot"
    x, y = empty[0]
    assert np.asarray(extra.convert("L"))[y:y + 40, x:x + 40].min() < 200


def test_svg_parses_with_one_group_per_visible_class(bundled, tmp_path):
    ckpt, codes, labels = bundled
    names = ckpt.metadata["class_names"]
    hidden = {3, 8}
    path = save_map(
        tmp_path / "map.svg",
        codes,
        labels,
        names,
        decoder=ckpt.model,
        mosaic_tiles=8,
        style=MapStyle(hidden=frozenset(hidden), star=(0.5, 0.5), cross=(1.0, 2.0),
                       path=np.array([[-1.0, -1.0], [2.0, 2.0]])),
    )
    root = ET.parse(path).getroot()
    # The interpolation's ends are named A and B, as on the map.
    ends = root.findall(f".//{SVG}text[@class='path-end']")
    assert [t.text for t in ends] == ["A", "B"]
    assert all(t.get("stroke") == "white" for t in ends)  # a halo: legible over dots and tiles
    assert float(ends[0].get("x")) < float(ends[1].get("x"))
    groups = root.findall(f".//{SVG}g[@class='points']")
    assert sorted(g.get("id") for g in groups) == sorted(
        f"class-{c}" for c in range(10) if c not in hidden
    )
    for g in groups:
        c = int(g.get("id").split("-")[1])
        assert g.get("fill") == PALETTE[c]
        assert float(g.get("fill-opacity")) == pytest.approx(POINT_ALPHA / 255, abs=1e-3)
        n = len(g.findall(f"{SVG}circle"))
        # Fit view frames the 0.1-99.9 % range plus a margin: nearly every dot is inside.
        assert 0.97 * (labels == c).sum() <= n <= (labels == c).sum()
    # The mosaic, under SVG 1.1's xlink:href (older renderers know no SVG 2 plain href).
    href = root.find(f"{SVG}image").get("{http://www.w3.org/1999/xlink}href")
    assert href.startswith("data:image/png;base64,")
    with Image.open(io.BytesIO(base64.b64decode(href.split(",", 1)[1]))) as tiles:
        assert tiles.mode == "L" and min(tiles.size) > 10
    assert root.find(f".//{SVG}polygon[@id='drawn-digit']") is not None
    cross = root.find(f".//{SVG}path[@id='decoded-point']")
    assert cross is not None and cross.get("stroke") == render.CROSS
    # drawn under the star, as the window draws them
    order = [e.get("id") for e in root.iter() if e.get("id") in ("decoded-point", "drawn-digit")]
    assert order == ["decoded-point", "drawn-digit"]
    legend = root.find(f".//{SVG}g[@id='legend']")
    assert [t.text for t in legend.findall(f"{SVG}text")] == [
        n for c, n in enumerate(names) if c not in hidden
    ]


def test_view_has_equal_scales_and_round_ticks():
    view = equal_aspect((0.0, 1.0, 0.0, 4.0), 400, 200)
    assert (view[1] - view[0]) / 400 == pytest.approx((view[3] - view[2]) / 200)
    assert view[2] == 0.0 and view[3] == 4.0  # the tall range is kept, the short one widened
    assert nice_ticks(-2.3, 4.9) == [-2, -1, 0, 1, 2, 3, 4]
    assert nice_ticks(-2.6, 5.0) == [-2, 0, 2, 4]
    assert nice_ticks(0.0, 1.0) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    lo, hi = fit_view(np.array([[0.0, 0.0], [1.0, 2.0]]))[:2]
    assert lo < 0 < 1 < hi


def test_fit_view_frames_every_code_but_far_outliers():
    """A cluster's tip just past the 99.9 % point is inside the frame, not on its edge; one code
    100 spans away (a diverged run) is left out rather than shrinking the clusters to a dot."""
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(5000, 2))
    tip = codes[:, 0].argmax()
    codes[tip, 0] += 0.5  # a tip beyond the bulk, not an outlier
    x0, x1, y0, y1 = fit_view(codes)
    assert x0 < codes[:, 0].min() and codes[:, 0].max() < x1
    assert y0 < codes[:, 1].min() and codes[:, 1].max() < y1
    assert codes[tip, 0] < x1 - 0.04 * (x1 - x0)  # a margin, not the edge
    far = np.vstack([codes, [[800.0, 0.0], [np.nan, 1.0]]])
    x0, x1 = fit_view(far)[:2]
    assert x1 < 10 and x0 == pytest.approx(fit_view(codes)[0], abs=0.1)
    # A far code leaves out only itself: the bundled model's pink tail (z2 8.2, 8.5, 8.8 past a
    # 99.9 % point of 7.7) was cut off because one code at 10.0 lay just beyond reach.
    top = codes[:, 1].max()
    tail = np.vstack([codes, [[0.0, top + 1.0], [0.0, top + 1.5], [0.0, 500.0]]])
    y1 = fit_view(tail)[3]
    assert top + 1.5 < y1 < top + 3


def test_bad_requests_give_one_clear_error(bundled, tmp_path):
    ckpt, codes, labels = bundled
    names = ckpt.metadata["class_names"]
    with pytest.raises(CAEError, match="use .png or .svg"):
        save_map(tmp_path / "map.jpg", codes, labels, names)
    with pytest.raises(CAEError, match="does not exist"):
        save_map(tmp_path / "missing" / "map.png", codes, labels, names)
    with pytest.raises(CAEError, match="out of range"):
        render_map(codes, labels, names, size=(20000, 20000))
    with pytest.raises(CAEError, match="10000 codes but 5 labels"):
        save_map(tmp_path / "map.png", codes, labels[:5], names)
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_old_file(bundled, tmp_path, monkeypatch):
    ckpt, codes, labels = bundled
    target = tmp_path / "map.png"
    target.write_bytes(b"old")

    def fail(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"partial")  # a disk that fills up halfway through
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", fail)
    with pytest.raises(CAEError, match="No space left"):
        save_map(target, codes, labels, ckpt.metadata["class_names"])
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["map.png"]


def test_cae_map_command(tmp_path):
    out = tmp_path / "map.png"
    assert (
        run_cli(
            [
                "map",
                "--model",
                str(BUNDLED),
                "--out",
                str(out),
                "--size",
                "300x200",
                "--scale",
                "2",
                "--mosaic",
                "--mosaic-tiles",
                "6",
                "--star=-1,0.5",
                "--cross=4,7",
                "--path=-1,-1;2,2",
                "--hide",
                "0,1",
            ]
        )
        == 0
    )
    with Image.open(out) as image:
        assert image.size == (600, 400)
        # class 0's dots over white would cover thousands of pixels (a blend of two others
        # can match a few)
        assert colour_pixels(image, over(PALETTE[0])) < 20
        assert colour_pixels(image, over(PALETTE[2])) > 100
        assert colour_pixels(image, render.CROSS) > 40  # the decoded point, at scale 2
    with pytest.raises(SystemExit):
        run_cli(["map", "--model", str(BUNDLED), "--out", str(out), "--star", "1"])
    with pytest.raises(CAEError, match="--scale"):
        run_cli(["map", "--model", str(BUNDLED), "--out", str(out), "--scale", "0"])
    with pytest.raises(CAEError, match="no class 12 to leave out; the classes are 0 to 9"):
        run_cli(["map", "--model", str(BUNDLED), "--out", str(out), "--hide", "3,12"])
    # A size too small names the size asked for (it named the supersampled one, twice as large).
    with pytest.raises(CAEError, match="a map of 30x20 pixels is too small"):
        run_cli(["map", "--model", str(BUNDLED), "--out", str(out), "--size", "30x20"])


def test_cae_map_says_when_the_model_meets_another_dataset(tmp_path, tiny_folder, capsys):
    """As `cae evaluate` does: the map shows a model on data it does not know."""
    args = ["map", "--model", str(BUNDLED), "--out", str(tmp_path / "m.svg")]
    assert run_cli([*args, "--data", str(tiny_folder), "--dataset", "folder"]) == 0
    assert "note: the model was trained on mnist, these are tiny" in capsys.readouterr().err
    assert run_cli(args) == 0  # its own test codes
    assert "note:" not in capsys.readouterr().err


def test_the_loss_curves_last_epoch_tick_is_not_cut_at_the_image_edge():
    """(The animation's loss panel ends at the frame's right edge: its last tick was cut.)"""
    from PIL import ImageDraw
    history = [{"epoch": e, "train_loss": 0.05 - e * 0.001, "test_loss": 0.045} for e in (1, 2)]

    def tick_ink(width: int) -> int:
        image = Image.new("RGB", (width, 200), "white")
        render.draw_loss_curve(ImageDraw.Draw(image), (40, 20, 299, 160), history, 1.0)
        under = np.asarray(image.convert("L"))[166:185, 260:]  # the last tick's label
        return int((under < 128).sum())

    assert tick_ink(300) == tick_ink(400) > 0  # all of it drawn, as where there is room


def test_a_one_epoch_loss_curve_keeps_its_dots_inside_the_frame():
    """(A one-epoch report drew its dots half over the frame's right edge.)"""
    from PIL import ImageDraw
    history = [{"epoch": 1, "train_loss": 0.06, "test_loss": 0.047}]
    image = Image.new("RGB", (400, 200), "white")
    render.draw_loss_curve(ImageDraw.Draw(image), (40, 20, 299, 160), history, 1.0)
    pixels = np.asarray(image).astype(int)
    for colour in (render.TRAIN_COLOUR, render.TEST_COLOUR):
        ink = (np.abs(pixels - np.array(render.rgb(colour))).sum(-1) < 60)
        assert ink[:, :299].any() and not ink[:, 300:].any()  # drawn, none beyond the frame


def test_the_legend_sits_beside_the_plot_as_in_the_window(bundled, tmp_path):
    """It lay over the plot's top-right corner, over points and mosaic tiles."""
    ckpt, codes, labels = bundled
    names = ckpt.metadata["class_names"]

    def boxes(size):
        root = ET.parse(save_map(tmp_path / "m.svg", codes, labels, names, size=size)).getroot()
        plot = [r for r in root.iter(f"{SVG}rect") if r.get("fill") == "none"][-1]
        key = root.find(f".//{SVG}g[@id='legend']/{SVG}rect")
        return [[float(r.get(k)) for k in ("x", "y", "width", "height")] for r in (plot, key)]

    (px, py, pw, ph), (lx, ly, lw, lh) = boxes((800, 600))
    assert lx >= px + pw + 5 and lx + lw <= 800  # right of the plot, inside the picture
    assert ly == py and ly + lh <= 600
    # Too short a picture for ten rows beside the plot: over its corner, as before.
    (px, py, pw, ph), (lx, ly, lw, lh) = boxes((800, 150))
    assert px < lx and lx + lw <= px + pw
    # The plot keeps the aspect a window's plot had, with the legend's room taken from its width.
    style = MapStyle(equal_scales=False)
    rows = render.legend_rows(names, labels, style)
    size = render.size_for_plot(400, 300, style, 800, rows)
    left, top, right, bottom = layout_map(size, names, labels, (0, 1, 0, 1), style).box
    assert (bottom - top) / (right - left) == pytest.approx(0.75, abs=0.01)


def test_dots_over_the_mosaic_have_a_white_rim(monkeypatch):
    """Class 9's grey dots were lost in the mosaic's grey strokes: over a mosaic each dot has a
    white rim (in the PNG and the SVG), as the window outlines them; over white, none."""
    codes = np.array([[0.0, 0.0], [0.5, 0.5]], np.float32)
    labels = np.array([9, 9])
    names = [str(c) for c in range(10)]
    style = MapStyle(legend=False, axes=False, point_size=12)

    def dark(z):  # a decoder whose every tile is all stroke: the mosaic's darkest grey
        return torch.ones(len(z), 1, 28, 28)

    def light_pixels() -> int:  # lighter than both the grey dots and the strokes under them
        image = render_map(codes, labels, names, size=(100, 100), view=(-1.0, 1.0, -1.0, 1.0),
                           style=style, decoder=dark, mosaic_tiles=2)
        return int((np.asarray(image, int)[10:90, 10:90].min(2) > 190).sum())

    rimmed = light_pixels()
    monkeypatch.setattr(render, "DOT_RIM", 0.0)
    assert rimmed > light_pixels() + 2 * 25  # two rings of about 2 pi 6.4 pixels
    monkeypatch.undo()
    view = (-1.0, 1.0, -1.0, 1.0)
    svg = render.map_svg(codes, labels, names, size=(100, 100), view=view, style=style,
                         decoder=dark, mosaic_tiles=2)
    assert 'class="points" id="class-9"' in svg and 'stroke="white"' in svg
    assert 'stroke="white"' not in render.map_svg(codes, labels, names, size=(100, 100),
                                                  view=view, style=style)


def test_the_loss_legend_keeps_clear_of_the_curve():
    """(It always sat in the top-right corner, where a rising test loss ends.)"""
    from PIL import ImageDraw
    box = (40, 20, 299, 160)
    falling = [{"epoch": e, "train_loss": 0.06 - 0.002 * e, "test_loss": 0.05 - 0.001 * e}
               for e in range(1, 11)]
    rising = [{"epoch": e, "train_loss": 0.06 - 0.002 * e, "test_loss": 0.04 + 0.003 * e}
              for e in range(1, 11)]

    def text_ink(history, corner) -> int:
        image = Image.new("RGB", (320, 200), "white")
        render.draw_loss_curve(ImageDraw.Draw(image), box, history, 1.0)
        x, y = corner
        inside = np.asarray(image).astype(int)[y + 2:y + 34, x + 28:x + 66]
        return int((np.abs(inside - np.array(render.rgb(render.INK))).sum(-1) < 60).sum())

    top_right, top_left = (225, 24), (44, 24)
    assert text_ink(falling, top_right) > 20 and text_ink(falling, top_left) == 0  # as it was
    assert text_ink(rising, top_right) == 0  # the test curve ends there: not under the legend
    assert text_ink(rising, top_left) > 20  # the corner both curves keep clear of


def test_a_narrow_loss_panel_keeps_its_labels_apart_and_inside():
    """(A 400-px animation's panel crowded "0 10 20 30 40" and ran its title off the edge.)"""
    from PIL import ImageDraw
    history = [{"epoch": e, "train_loss": 0.06 - 0.0005 * e, "test_loss": 0.05 - 0.0003 * e}
               for e in range(1, 41)]
    image = Image.new("RGB", (400, 300), "white")
    draw = ImageDraw.Draw(image)
    texts = []
    real_text = draw.text
    draw.text = lambda xy, text, **k: texts.append((xy, text, k)) or real_text(xy, text, **k)
    box = (330, 60, 390, 220)  # 60 px wide, at the image's right edge
    render.draw_loss_curve(draw, box, history, 1.0, (0, 40))
    ticks = [(xy[0], text, k["font"]) for xy, text, k in texts
             if k.get("anchor") == "mt" and xy[1] > box[3] and text != "epoch"]
    spans = sorted((x - draw.textlength(t, font=f) / 2, x + draw.textlength(t, font=f) / 2)
                   for x, t, f in ticks)
    assert len(spans) >= 2 and all(a[1] + 4 < b[0] for a, b in zip(spans, spans[1:]))
    assert all(0 <= lo and hi <= 400 for lo, hi in spans)
    (xy, title, k), = [t for t in texts if t[2].get("anchor") == "mb"]
    half = draw.textlength(title, font=k["font"]) / 2
    assert xy[0] - half >= 0 and xy[0] + half <= 400  # the title whole


def test_the_loss_curve_draws_the_training_loss_every_few_steps():
    """(A one-epoch run's report showed its training loss as one dot, where the window draws
    the loss the run reported every few steps.)"""
    from PIL import ImageDraw
    history = [{"epoch": 1, "train_loss": 0.05, "test_loss": 0.045}]
    steps = np.array([[e, 0.08 - 0.03 * e] for e in np.linspace(0.05, 1.0, 40)])

    def train_ink_columns(**kwargs) -> int:
        image = Image.new("RGB", (400, 200), "white")
        render.draw_loss_curve(ImageDraw.Draw(image), (40, 20, 299, 160), history, 1.0, **kwargs)
        pixels = np.asarray(image).astype(int)
        ink = np.abs(pixels - np.array(render.rgb(render.TRAIN_COLOUR))).sum(-1) < 60
        return int(ink.any(0).sum())

    assert train_ink_columns() < 40  # a dot (and the legend's 20-px sample)
    assert train_ink_columns(steps=steps) > 150  # the run's curve across the epoch
    assert train_ink_columns(steps=steps, upto=0.5) < train_ink_columns(steps=steps) * 0.7
