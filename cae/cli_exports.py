"""`cae animate`, `cae report` and `cae map`: the show-and-share exports from a terminal.

Registered on the `cae` parser by :func:`add_export_commands`; errors surface as the CLI's one
line ``cae: error: ...`` (every failure here is a :class:`cae.errors.CAEError`).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import numpy as np

from .bundled import model_or_bundled
from .data import DATASETS, Dataset, mismatch_note
from .errors import CAEError


class _OneModel(argparse.Action):
    """``--model FILE`` or the file alone (``cae info`` took it so, and people type it so for
    the others), but not two different ones."""

    def __call__(self, parser, namespace, value, option_string=None) -> None:
        if value is None:
            return
        before = getattr(namespace, "model", None)
        if before is not None and before != value:
            parser.error(f"two model files: {before} and {value}")
        namespace.model = value


def model_args(p: argparse.ArgumentParser, help: str) -> None:
    """The model file, as ``--model FILE`` or as the command's one positional argument."""
    p.add_argument("--model", action=_OneModel, metavar="FILE", help=help)
    p.add_argument("model_file", nargs="?", action=_OneModel, metavar="MODEL",
                   default=argparse.SUPPRESS, help="the same as --model")


def _size(text: str) -> tuple[int, int]:
    """'800' or '1200x800' -> (width, height)."""
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected N or WxH in pixels, got {text!r}")
    return parts[0], parts[1]


def _point(text: str) -> tuple[float, float]:
    """'z1,z2' -> (z1, z2), finite."""
    try:
        z = tuple(float(v) for v in text.split(","))
    except ValueError:
        z = ()
    if len(z) != 2 or not all(np.isfinite(z)):
        raise argparse.ArgumentTypeError(f"expected two finite numbers z1,z2, got {text!r}")
    return z  # type: ignore[return-value]


def _classes(text: str) -> frozenset[int]:
    """'3,5' -> {3, 5}."""
    try:
        return frozenset(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected class numbers like 3,5, got {text!r}") from None


def _path(text: str) -> list[tuple[float, float]]:
    """'z1,z2;z1,z2;...' -> points."""
    return [_point(p) for p in text.split(";") if p.strip()]


def _bar_progress(what: str) -> tuple[object, Callable[[float], None]]:
    """A progress callback drawing the CLI's bar on stderr."""
    from .cli import ProgressBar  # the CLI imports this module: import it when a command runs

    bar = ProgressBar()
    return bar, (lambda f: bar.update(f, f"{what} {100 * f:.0f} %"))


def _dataset(args: argparse.Namespace) -> Dataset | None:
    if not args.data and args.dataset in ("auto", "folder"):
        return None
    from .data import load_dataset

    dataset = load_dataset(args.dataset, args.data)
    for note in dataset.notes:
        print(f"note: {note}", file=sys.stderr)
    return dataset


def cmd_animate(args: argparse.Namespace) -> int:
    from .animate import AnimationOptions, animate_model

    if not args.model:
        raise CAEError("name the model file: cae animate MODEL --out run.gif (a model trained "
                       "in the window, or by cae train --timeline)")

    options = AnimationOptions(
        size=args.size,
        frames_per_epoch=args.frames_per_epoch,
        fps=args.fps,
        mosaic=args.mosaic,
        mosaic_tiles=args.mosaic_tiles,
        loss=args.loss,
        hidden=args.hide,
    )
    options.check()
    bar, progress = _bar_progress("rendering frames")
    t0 = time.perf_counter()
    frames = animate_model(args.model, args.out, options, progress=progress)
    bar.line(f"wrote {frames} frames to {args.out} in {time.perf_counter() - t0:.1f} s")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import report_model

    dataset = _dataset(args)
    model = model_or_bundled(args.model, dataset.name if dataset is not None else "mnist")
    bar, progress = _bar_progress("report")
    path = report_model(model, args.out, dataset=dataset, progress=progress)
    bar.line(f"wrote {path}")
    return 0


def cmd_map(args: argparse.Namespace) -> int:
    from .checkpoint import load_checkpoint
    from .metrics import encode_images
    from .render import MapStyle, check_hidden, save_map

    if not 0.1 <= args.scale <= 20:
        raise CAEError(f"--scale must be 0.1 to 20, got {args.scale}")
    if args.dpi is not None and not 10 <= args.dpi <= 4800:
        raise CAEError(f"--dpi must be 10 to 4800, got {args.dpi}")
    if not 2 <= args.mosaic_tiles <= 64:
        raise CAEError(f"--mosaic-tiles must be 2 to 64, got {args.mosaic_tiles}")
    dataset = _dataset(args)
    model = model_or_bundled(args.model, dataset.name if dataset is not None else "mnist")
    ckpt = load_checkpoint(model)
    note = None if dataset is None else mismatch_note(ckpt.metadata.get("dataset"), dataset)
    if note:
        print(f"{note}: the map shows a model on data it does not know", file=sys.stderr)
    if dataset is not None:
        codes, labels = encode_images(ckpt.model, dataset.test_images), dataset.test_labels
        names = list(dataset.class_names)
    elif "test_codes" in ckpt.extras and "test_labels" in ckpt.extras:
        codes, labels = ckpt.extras["test_codes"], ckpt.extras["test_labels"]
        names = ckpt.metadata.get("class_names") or [
            str(c) for c in range(int(labels.max(initial=0)) + 1)
        ]
    else:
        raise CAEError(f"{model} has no test codes to map: give the dataset with --data DIR")
    check_hidden(args.hide, len(names))
    path_points = np.array(args.path) if args.path else None
    if path_points is not None and len(path_points) < 2:
        raise CAEError("--path needs at least two points")
    style = MapStyle(
        hidden=args.hide,
        legend=not args.no_legend,
        axes=not args.no_axes,
        star=args.star,
        cross=args.cross,
        path=path_points,
        title=args.title,
    )
    out = save_map(
        args.out,
        np.asarray(codes),
        np.asarray(labels, np.int64),
        names,
        size=args.size,
        scale=args.scale,
        dpi=args.dpi,
        style=style,
        decoder=ckpt.model if args.mosaic else None,
        mosaic_tiles=args.mosaic_tiles,
    )
    print(f"wrote {out}", file=sys.stderr)
    return 0


def add_export_commands(sub: argparse._SubParsersAction) -> None:
    """Register `animate`, `report` and `map` on the `cae` command's subparsers."""

    def data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--data", metavar="DIR", help="a dataset's folder (its test images are used): the "
            "four IDX files, or pictures in one subfolder per class"
        )
        p.add_argument(
            "--dataset",
            default="auto",
            choices=["auto", *DATASETS, "folder"],
            help="auto (default): recognised by its checksums in --data, else any IDX or "
            "picture folder",
        )

    p = sub.add_parser("animate", help="write the training timeline as an animated GIF or MP4")
    model_args(p, "a model file with a training timeline (required)")
    p.add_argument("--out", required=True, help=".gif, or .mp4 (needs ffmpeg on PATH)")
    p.add_argument("--size", type=_size, default=(800, 800), help="frame size: N or WxH pixels (default 800)")
    p.add_argument(
        "--frames-per-epoch", type=int, default=6, help="frames from one epoch to the next (default 6)"
    )
    p.add_argument("--fps", type=float, default=12.0, help="frames per second (default 12)")
    p.add_argument("--mosaic", action="store_true", help="decoded-image mosaic under the dots")
    p.add_argument("--mosaic-tiles", type=int, default=16, help="mosaic tiles across")
    p.add_argument("--loss", action="store_true", help="the loss curve beside the map")
    p.add_argument("--hide", type=_classes, default=frozenset(), help="classes to leave out: 3,5")
    p.set_defaults(func=cmd_animate)

    p = sub.add_parser("report", help="write a one-page model report (.pdf or .png)")
    model_args(p, "a model file (default: the bundled model for --data, else MNIST's)")
    data_args(p)
    p.add_argument("--out", required=True, help=".pdf (A4, 150 dpi) or .png")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("map", help="write the latent map as .svg or .png at any resolution")
    model_args(p, "a model file (default: the bundled model for --data, else MNIST's)")
    data_args(p)
    p.add_argument("--out", required=True, help=".svg or .png")
    p.add_argument("--size", type=_size, default=(800, 800), help="N or WxH pixels at scale 1 (default 800)")
    p.add_argument(
        "--scale", type=float, default=1.0, help="PNG pixels per scale-1 pixel (e.g. 4 for print)"
    )
    p.add_argument("--dpi", type=float, help="resolution recorded in the PNG (default 96 x scale)")
    p.add_argument("--mosaic", action="store_true", help="decoded-image mosaic under the dots")
    p.add_argument("--mosaic-tiles", type=int, default=24, help="mosaic tiles across")
    p.add_argument("--hide", type=_classes, default=frozenset(), help="classes to leave out: 3,5")
    p.add_argument("--no-legend", action="store_true")
    p.add_argument("--no-axes", action="store_true")
    p.add_argument(
        "--star",
        type=_point,
        metavar="Z1,Z2",
        help="mark a drawn digit's code (--star=-1,2 for a negative z1)",
    )
    p.add_argument(
        "--cross",
        type=_point,
        metavar="Z1,Z2",
        help="mark a decoded point with a red cross, as the window does (--cross=-1,2)",
    )
    p.add_argument(
        "--path",
        type=_path,
        metavar="Z1,Z2;Z1,Z2...",
        help='an interpolation path\'s points, quoted for the shell: --path "0,0;1,1" '
             '(--path="-1,0;1,1" when the first is negative)',
    )
    p.add_argument("--title")
    p.set_defaults(func=cmd_map)


__all__ = ["add_export_commands"]
