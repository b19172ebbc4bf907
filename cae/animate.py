"""The training timeline as an animation (GIF via Pillow, MP4 via an ``ffmpeg`` program): the
latent map of every epoch, with in-between frames in which each digit's code moves in a straight
line from one epoch's position to the next and the view glides from one epoch's frame to the
next.  Optionally the decoded-image mosaic lies under the dots (each epoch's own decoder,
cross-faded between epochs) and the loss curve is drawn beside the map up to the moment shown.

Qt-free, so ``cae animate`` and the GUI (on a worker thread, with ``progress`` and ``cancel``)
share it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .checkpoint import load_checkpoint
from .errors import CAEError
from .model import CAEConfig
from .model_file import step_points
from .render import (
    FAINT,
    INK,
    PALETTE,
    STAR,
    SUPERSAMPLE,
    TEST_COLOUR,
    TRAIN_COLOUR,
    Cancel,
    MapStyle,
    Progress,
    View,
    check_cancel,
    check_hidden,
    draw_loss_curve,
    draw_map,
    fit_view,
    layout_map,
    mosaic_greys,
    mosaic_image,
    mosaic_underlay,
    rgb,
    write_atomic,
)
from .timeline import Timeline

MAP_SHARE = 0.64  # of the frame's width, when the loss curve is beside the map
MOSAIC_GROWTH = 1.25


@dataclass
class AnimationOptions:
    """What the animation shows and how it is timed."""

    size: tuple[int, int] = (800, 800)  # frame width, height in pixels
    frames_per_epoch: int = 6  # frames from one epoch to the next (1: epochs only)
    fps: float = 12.0
    mosaic: bool = False  # the decoded-image mosaic under the dots
    mosaic_tiles: int = 16  # mosaic tiles across the map
    loss: bool = False  # the loss curve beside the map
    hidden: frozenset[int] = field(default_factory=frozenset)  # classes left out
    hold_s: float = 1.5  # how long the last frame stays (GIF) before the loop restarts

    def check(self) -> None:
        """One clear error for settings that cannot make an animation."""
        w, h = self.size
        if not (64 <= w <= 4096 and 64 <= h <= 4096):
            raise CAEError(f"frame size {w}x{h} is out of range (64 to 4096 pixels a side)")
        if not 1 <= self.frames_per_epoch <= 120:
            raise CAEError(f"frames per epoch must be 1 to 120, got {self.frames_per_epoch}")
        if not 0.5 <= self.fps <= 60:
            raise CAEError(f"frames per second must be 0.5 to 60, got {self.fps}")
        if not 2 <= self.mosaic_tiles <= 64:
            raise CAEError(f"mosaic tiles must be 2 to 64, got {self.mosaic_tiles}")


def frame_count(epochs: int, frames_per_epoch: int) -> int:
    """Frames in an animation of a timeline with ``epochs`` entries: every entry, and
    ``frames_per_epoch - 1`` in-between frames from each entry to the next."""
    return (epochs - 1) * frames_per_epoch + 1 if epochs else 0


def _lerp_view(a: View, b: View, t: float) -> View:
    return tuple(float(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


def _union(views: Sequence[View]) -> View:
    return (
        min(v[0] for v in views),
        max(v[1] for v in views),
        min(v[2] for v in views),
        max(v[3] for v in views),
    )


class _Frames:
    """Renders frame (entry i, fraction t); keeps the mosaics of the two entries in use."""

    def __init__(
        self,
        timeline: Timeline,
        config: CAEConfig,
        class_names: Sequence[str],
        options: AnimationOptions,
        history: list[dict] | None,
        steps: np.ndarray | None = None,
    ) -> None:
        self.timeline, self.config, self.options = timeline, config, options
        self.class_names = list(class_names)
        check_hidden(options.hidden, len(self.class_names))
        self.ss = SUPERSAMPLE
        w, h = options.size
        # Text no smaller than 0.8 of an 800-px frame's: at 0.5 a 400-px GIF's was 6 px high.
        self.scale = max(0.8, min(w, h) / 800) * self.ss
        self.size = (w * self.ss, h * self.ss)
        map_w = round(w * MAP_SHARE) * self.ss if options.loss else self.size[0]
        self.map_size = (map_w, self.size[1])
        self.style = MapStyle(hidden=options.hidden, point_size=3.0)
        self.labels = np.asarray(timeline.labels, np.int64)
        visible = ~np.isin(self.labels, list(options.hidden))
        # Each entry's view: its codes framed as Fit view does, widened to the plot's shape.
        self.views = [
            layout_map(
                self.map_size,
                self.class_names,
                self.labels,
                fit_view(c[visible]),
                self.style,
                self.scale,
            ).view
            for c in timeline.codes
        ]
        self.history = sorted(history or [], key=lambda r: r["epoch"])
        self.steps = steps  # the training loss every few steps, where the file keeps it
        if options.loss and not self.history and (steps is None or not len(steps)):
            raise CAEError("the model has no loss history to plot: leave out the loss curve")
        self._mosaics: dict[int, tuple[Image.Image, View]] = {}

    def mosaic(self, i: int) -> tuple[Image.Image, View]:
        """Entry i's mosaic (as greys), decoded by its own decoder over every view it is seen in:
        its own and its neighbours', which the in-between frames glide through.  Decoding is
        most of an animation's cost, so the tiles grow where that region is much larger than
        the entry's own view (at most MOSAIC_GROWTH times the tiles of its own view across)."""
        if i not in self._mosaics:
            n = self.options.mosaic_tiles
            region = _union(self.views[max(0, i - 1) : i + 2])
            own = self.views[i]
            cols = min(
                round(n * (region[1] - region[0]) / (own[1] - own[0])), round(MOSAIC_GROWTH * n)
            )
            rows = max(1, round(cols * (region[3] - region[2]) / (region[1] - region[0])))
            decoder = self.timeline.model_at(i, self.config)
            grey = Image.fromarray(mosaic_greys(mosaic_image(decoder, region, cols, rows)), "L")
            self._mosaics = {k: v for k, v in self._mosaics.items() if k >= i - 1}
            self._mosaics[i] = (grey, region)
        return self._mosaics[i]

    def render(self, i: int, t: float) -> Image.Image:
        tl = self.timeline
        j = min(i + 1, len(tl) - 1)
        codes = tl.codes[i] if t == 0 else tl.codes[i] + (tl.codes[j] - tl.codes[i]) * t
        view = _lerp_view(self.views[i], self.views[j], t)
        epoch = tl.epochs[i] + (tl.epochs[j] - tl.epochs[i]) * t
        self.style.title = f"epoch {tl.epochs[i]}" if t == 0 else f"epoch {epoch:.1f}"
        lay = layout_map(self.map_size, self.class_names, self.labels, view, self.style, self.scale)
        underlay = None
        if self.options.mosaic:
            box = (lay.box[2] - lay.box[0], lay.box[3] - lay.box[1])
            underlay = mosaic_underlay(*self.mosaic(i), lay.view, box, self.ss)
            if t > 0:
                later = mosaic_underlay(*self.mosaic(j), lay.view, box, self.ss)
                underlay = Image.blend(underlay, later, t)
        image = Image.new("RGB", self.size, "white")
        draw_map(image, lay, codes, self.labels, self.style, underlay)
        if self.options.loss:
            x = self.map_size[0]
            h = self.size[1]
            box = (x + 52 * self.scale, h * 0.3, self.size[0] - 14 * self.scale, h * 0.7)
            draw_loss_curve(
                ImageDraw.Draw(image),
                box,
                self.history,
                self.scale,
                (self.timeline.epochs[0], self.timeline.epochs[-1]),
                upto=epoch,
                steps=self.steps,
            )
        return image.reduce(self.ss)


def animation_frames(
    timeline: Timeline,
    config: CAEConfig,
    class_names: Sequence[str],
    options: AnimationOptions | None = None,
    history: list[dict] | None = None,
    cancel: Cancel = None,
    steps: np.ndarray | None = None,
) -> Iterator[Image.Image]:
    """Yield the RGB frames, :func:`frame_count` of them, first epoch to last."""
    options = options or AnimationOptions()
    options.check()
    if len(timeline) == 0:
        raise CAEError(
            "there is no training timeline to animate (models trained in the app keep one)"
        )
    frames = _Frames(timeline, config, class_names, options, history, steps)
    n = options.frames_per_epoch
    for i in range(len(timeline)):
        for k in range(n if i < len(timeline) - 1 else 1):
            check_cancel(cancel)
            yield frames.render(i, k / n)


def _gif_palette() -> Image.Image:
    """One palette for every frame (no flicker, small files): the class and ink colours, their
    blends with white and grey (the dots' smoothed edges), and a ramp of greys (the mosaic)."""
    colours = {rgb(c) for c in (*PALETTE, INK, FAINT, STAR, TRAIN_COLOUR, TEST_COLOUR)}
    for c in PALETTE + (STAR,):
        r, g, b = rgb(c)
        for base in (255, 200, 150):
            for f in (0.33, 0.66):
                colours.add(tuple(round(v + (base - v) * f) for v in (r, g, b)))
    # Pillow matches a colour by the corner of its 4-level box (255 as 252): greys on those
    # corners, and white instead of 252, so the background stays pure white.
    colours.update((v, v, v) for v in (*range(0, 252, 4), 255))
    flat = [v for c in sorted(colours)[:256] for v in c]
    palette = Image.new("P", (1, 1))
    palette.putpalette(flat + [255] * (768 - len(flat)))
    return palette


MP4_NEEDS_FFMPEG = ("writing MP4 needs the ffmpeg program, which is not on PATH: install it or "
                    "write a .gif")


def find_ffmpeg() -> str | None:
    """The ``ffmpeg`` program on PATH, or None."""
    return shutil.which("ffmpeg")


def export_animation(
    path: str | os.PathLike,
    timeline: Timeline,
    config: CAEConfig,
    class_names: Sequence[str],
    options: AnimationOptions | None = None,
    history: list[dict] | None = None,
    progress: Progress = None,
    cancel: Cancel = None,
    steps: np.ndarray | None = None,
) -> int:
    """Write the animation as .gif or .mp4 (by the suffix) and return its frame count.  The file
    appears only when complete: a failure or ``cancel`` leaves no partial file behind."""
    options = options or AnimationOptions()
    suffix = Path(path).suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise CAEError(
            f"cannot write an animation as {suffix or 'a file without a suffix'}: use .gif or .mp4"
        )
    ffmpeg = find_ffmpeg() if suffix == ".mp4" else None
    if suffix == ".mp4" and ffmpeg is None:
        raise CAEError(MP4_NEEDS_FFMPEG)
    total = frame_count(len(timeline), options.frames_per_epoch)
    frames = animation_frames(timeline, config, class_names, options, history, cancel, steps)

    def step(done: int) -> None:  # writing the file is the last 5 %
        if progress is not None:
            progress(0.95 * done / total if done < total else 0.95)

    if suffix == ".gif":
        palette = _gif_palette()
        images = []
        for image in frames:
            images.append(image.quantize(palette=palette, dither=Image.Dither.NONE))
            step(len(images))
        durations = [round(1000 / options.fps)] * len(images)
        durations[-1] = max(durations[-1], round(1000 * options.hold_s))
        write_atomic(
            path,
            lambda p: images[0].save(
                p, "GIF", save_all=True, append_images=images[1:], duration=durations, loop=0
            ),
        )
        count = len(images)
    else:
        count = _write_mp4(Path(path), ffmpeg, frames, options, step)
    if progress is not None:
        progress(1.0)
    return count


def _write_mp4(
    path: Path, ffmpeg: str, frames: Iterator[Image.Image], options: AnimationOptions, step
) -> int:
    """Pipe raw RGB frames into ffmpeg (the last one repeated for ``hold_s``)."""
    w, h = options.size
    count = 0

    def write(tmp: Path) -> None:
        nonlocal count
        cmd = [
            ffmpeg,
            "-y",
            "-loglevel",
            "error",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-s",
            f"{w}x{h}",
            "-r",
            f"{options.fps:g}",
            "-i",
            "-",
            "-vf",
            "pad=ceil(iw/2)*2:ceil(ih/2)*2",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "mp4",
            str(tmp),
        ]
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            last = None
            for image in frames:
                last = image.tobytes()
                proc.stdin.write(last)
                count += 1
                step(count)
            for _ in range(max(0, round(options.hold_s * options.fps) - 1)):
                proc.stdin.write(last)
            proc.stdin.close()
            err = proc.stderr.read().decode(errors="replace").strip()
            if proc.wait() != 0:
                raise CAEError(
                    f"ffmpeg could not write {path}: {err.splitlines()[-1] if err else 'failed'}"
                )
        except BrokenPipeError:
            proc.wait()
            err = proc.stderr.read().decode(errors="replace").strip()
            raise CAEError(
                f"ffmpeg stopped early: {err.splitlines()[-1] if err else 'no message'}"
            ) from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    write_atomic(path, write)
    return count


def animate_model(
    model_path: str | os.PathLike,
    out: str | os.PathLike,
    options: AnimationOptions | None = None,
    progress: Progress = None,
    cancel: Cancel = None,
) -> int:
    """``cae animate``: the timeline saved in a model file, written to ``out``."""
    ckpt = load_checkpoint(model_path)
    timeline = Timeline.from_extras(ckpt.extras, ckpt.model.config)
    if len(timeline) == 0:
        raise CAEError(
            f"{model_path} has no training timeline to animate (models trained in the "
            "app keep one, and so do those of `cae train --timeline`)"
        )
    names = ckpt.metadata.get("class_names") or [
        str(c) for c in range(int(timeline.labels.max()) + 1)
    ]
    return export_animation(
        out,
        timeline,
        ckpt.model.config,
        names,
        options,
        ckpt.metadata.get("history"),
        progress,
        cancel,
        step_points(ckpt.metadata),
    )
