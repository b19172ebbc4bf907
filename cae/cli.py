"""`cae`: download data, train, evaluate, encode and inspect models from a terminal.

Errors are one clear line on stderr and exit status 2; results go to stdout (JSON where a script
would read them), progress to stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import numpy as np

from . import __version__
from .cli_exports import add_export_commands, model_args
from .bundled import bundled_model_path, model_or_bundled
from .checkpoint import SUFFIX, Checkpoint, load_checkpoint, save_checkpoint
from .codes import CODE_FORMATS, split_rows, write_codes
from .data import (DATASETS, CancelToken, Dataset, download_dataset, load_dataset, mismatch_note,
                   named_dataset_in, progress_text)
from .errors import CAEError
from .metrics import encode_images, evaluate
from .model_file import StepLosses, model_file_contents
from .preprocess import dataset_framing
from .timeline import Timeline
from .train import (PRECISIONS, RECIPES, WEIGHT_INITS, EpochEnd, Finished, Progress, Snapshot,
                    TrainConfig, Trainer)


LOG_EVERY_S = 30.0  # off a terminal (a log file), a progress line this often


class ProgressBar:
    """A one-line text progress bar on a terminal; off one (a log file), a whole line every
    ``LOG_EVERY_S`` (a run's log had said nothing for a whole epoch)."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream or sys.stderr  # looked up now: tests and callers may replace it
        self.width = width
        self.tty = self.stream.isatty()
        self._last = 0.0

    def update(self, fraction: float, text: str) -> None:
        now = time.monotonic()
        if not self.tty:
            if now - self._last >= LOG_EVERY_S:
                self._last = now
                self.stream.write(f"{100 * max(0.0, min(1.0, fraction)):.0f}% {text}\n")
                self.stream.flush()
            return
        if now - self._last < 0.1 and fraction < 1:
            return
        self._last = now
        filled = int(self.width * max(0.0, min(1.0, fraction)))
        self.stream.write(f"\r[{'#' * filled}{'.' * (self.width - filled)}] {text}\033[K")
        self.stream.flush()

    def line(self, text: str) -> None:
        self.stream.write(("\r\033[K" if self.tty else "") + text + "\n")
        self.stream.flush()


def _fmt_time(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _load_data(args: argparse.Namespace, bar: ProgressBar, trained_on: str | None = None) -> Dataset:
    """The dataset the arguments name; "auto" recognises MNIST or Fashion-MNIST in ``--data`` by
    their checksums (the window's detection), and without ``--data`` looks for the dataset the
    model was trained on (``trained_on``; MNIST when none is named).  Data other than the
    model's own is said on stderr: the figures then describe a mismatch."""
    def progress(name: str, done: int, total: int | None) -> None:
        bar.update(done / total if total else 0.0, progress_text(name, done, total))

    own = trained_on if trained_on in DATASETS else None
    if trained_on and own is None and not args.data and args.dataset == "auto":
        raise CAEError(f"this model was trained on an image folder ({trained_on!r}): give that "
                       "folder with --data DIR (or --dataset mnist to see it on MNIST)")
    name = args.dataset if args.dataset != "auto" or args.data else own or "mnist"
    dataset = load_dataset(name, args.data, download=getattr(args, "download", False),
                           progress=progress)
    for note in dataset.notes:
        bar.line(f"note: {note}")
    note = mismatch_note(own, dataset)
    if note:
        bar.line(f"{note}: the figures describe a model on data it does not know")
    return dataset


def cmd_download(args: argparse.Namespace) -> int:
    bar = ProgressBar()

    def progress(name: str, done: int, total: int | None) -> None:
        bar.update(done / total if total else 0.0, f"{name} {done / 1e6:.1f} MB")

    folder = download_dataset(args.dataset, args.dest, progress=progress, cancel=CancelToken(),
                              timeout=args.timeout)
    bar.line(f"{args.dataset} is ready in {folder}")
    print(folder)
    return 0


def _check_writable(out: str) -> Path:
    """Fail before training when the model could not be saved where asked (minutes not lost)."""
    path = Path(out).expanduser()
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise CAEError(f"cannot save to {path}: it is a folder; give a file name such as "
                       f"{path / 'model.safetensors'}")
    if not folder.is_dir():
        raise CAEError(f"cannot save to {path}: the folder {folder} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".cae-write-test-"):
            pass
    except OSError as exc:
        raise CAEError(f"cannot save to {path}: {folder} is not writable "
                       f"({exc.strerror or exc})") from None
    return path


DEFAULT_MODEL_NAME = "model.safetensors"


def free_model_path(folder: Path = Path(".")) -> Path:
    """``model.safetensors`` in ``folder``, or the first of ``model-2``, ``model-3``, ... that
    does not exist: a run saved without ``--out`` never replaces an earlier one."""
    path = folder / DEFAULT_MODEL_NAME
    n = 2
    while path.exists():
        path = folder / f"{Path(DEFAULT_MODEL_NAME).stem}-{n}.safetensors"
        n += 1
    return path


def _train_destination(args: argparse.Namespace) -> Path:
    """Where ``cae train`` saves, checked before the first step: ``--out`` (an existing file only
    with ``--overwrite``) or a free default name."""
    if args.out is None:
        return _check_writable(str(free_model_path()))
    if Path(args.out).suffix.lower() != SUFFIX:  # (it had trained 40 epochs to write x.txt)
        raise CAEError(f"cannot save a model as {args.out}: models are {SUFFIX} files, such as "
                       f"{Path(args.out).with_suffix(SUFFIX)}")
    path = _check_writable(args.out)
    if path.exists() and not args.overwrite:
        raise CAEError(f"{path} exists; pass --overwrite to replace it, or another --out "
                       "(without --out the model gets a free name)")
    return path


def fallback_path(out: Path) -> Path:
    """Where a model goes when its destination fails at the end of a run: the user's data
    folder (``$XDG_DATA_HOME/cae-explorer``), or the temporary folder."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in (base / "cae-explorer", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder / f"{out.stem}-{stamp}{out.suffix or '.safetensors'}"
        except OSError:
            continue
    return Path(tempfile.gettempdir()) / f"{out.stem}-{stamp}.safetensors"


def cmd_train(args: argparse.Namespace) -> int:
    out = _train_destination(args)
    start = load_checkpoint(args.init) if args.init else None  # (checked before the data loads)
    config = TrainConfig.recipe_config(
        args.recipe, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        schedule=args.schedule, warmup=args.warmup, optimizer=args.optimizer,
        weight_decay=args.weight_decay, grad_clip=args.grad_clip, ema=args.ema,
        augment_shift=args.augment_shift, augment_rotate=args.augment_rotate, loss=args.loss,
        weight_init=args.weight_init, seed=args.seed, device=args.device, precision=args.precision,
        cuda_graph=False if args.no_cuda_graph else None)
    bar = ProgressBar()
    dataset = _load_data(args, bar, start.metadata.get("dataset") if start else None)
    trainer = Trainer(dataset, config, model=start.model if start else None)
    bar.line(f"training on {trainer.device} ({trainer.precision}) with "
             f"{len(dataset.train_images)} {dataset.name} images, recipe {config.recipe}")
    with _terminate_interrupts():
        return _train_and_save(args, out, start, config, bar, dataset, trainer)


def _train_and_save(args: argparse.Namespace, out: Path, start: Checkpoint | None,
                    config: TrainConfig, bar: ProgressBar, dataset: Dataset,
                    trainer: Trainer) -> int:
    """Run ``trainer``, evaluate, save to ``out``: an interrupted run (Ctrl+C, SIGTERM) is saved
    too, without the evaluation."""
    t0 = time.perf_counter()
    finished = None
    history = []
    steps = StepLosses()
    timeline = Timeline() if args.timeline else None
    run = trainer.run()
    try:
        for record in run:
            if isinstance(record, Progress):
                steps.add(record.global_step, record.steps_per_epoch, record.loss)
                bar.update(record.global_step / record.total_steps,
                           f"epoch {record.epoch}/{config.epochs} step {record.step}/"
                           f"{record.steps_per_epoch} loss {record.loss:.4f} "
                           f"{record.images_per_s:.0f} img/s ETA {_fmt_time(record.eta_s)}")
            elif isinstance(record, EpochEnd):
                history.append({"epoch": record.epoch, "train_loss": record.train_loss,
                                "test_loss": record.test_loss, "seconds": record.seconds})
                bar.line(f"epoch {record.epoch}/{config.epochs}: train loss "
                         f"{record.train_loss:.5f}, test loss {record.test_loss:.5f}, "
                         f"{record.seconds:.1f} s, "
                         f"{len(dataset.train_images) / record.seconds:.0f} img/s")
            elif isinstance(record, Snapshot) and timeline is not None:
                timeline.add(record.epoch, record.codes, record.labels, record.model_state)
            elif isinstance(record, Finished):
                finished = record
    except KeyboardInterrupt:
        trainer.stop()
        run.close()  # the run's result (the weights' average, with EMA) goes into the model
        bar.line("interrupted: saving the weights trained so far (not evaluated: "
                 "`cae evaluate FILE` does it)")
    wall = time.perf_counter() - t0
    steps.steps_done = trainer.global_step  # (the last report may be a few steps before)
    model = trainer.model.to("cpu")
    metrics = None
    if not args.no_eval and finished is not None:
        bar.line("evaluating on the test set (Ctrl+C skips it)...")
        try:
            metrics = evaluate(model, dataset,
                               progress=lambda f: bar.update(f, f"evaluating {100 * f:.0f}%"))
        except KeyboardInterrupt:
            bar.line("evaluation skipped: saving the model")
    with _interrupts_wait():
        metadata, extras = model_file_contents(
            model, dataset, config, history=history, epochs_done=trainer.epochs_done,
            stopped_early=finished is None or finished.stopped, wall_time_s=wall,
            device=str(trainer.device), precision=trainer.precision, threads=trainer.threads,
            steps=steps, command="cae " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
            metrics=metrics)
        if start is not None:
            metadata["init"] = {k: v for k, v in start.metadata.items() if k != "history"}
        if timeline is not None:
            extras.update(timeline.to_extras())
        if args.out is None and out.exists():  # the free name was taken while this run trained
            out = free_model_path(out.parent)
        try:
            path = save_checkpoint(out, model, metadata, extras)
        except (OSError, CAEError) as exc:
            path = save_checkpoint(fallback_path(out), model, metadata, extras)
            bar.line(f"cae: could not save {out} ({exc}); saved the model to {path} instead")
        else:
            bar.line(f"saved {path}")
    if metrics is not None:
        print(compact_json(metrics_summary(metrics)))
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


@contextmanager
def _terminate_interrupts() -> Iterator[None]:
    """SIGTERM (a kill, a logout) ends a training run as Ctrl+C does, the weights saved: it had
    ended the process with nothing saved."""
    try:
        before = signal.signal(signal.SIGTERM, _interrupt)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


@contextmanager
def _interrupts_wait() -> Iterator[None]:
    """Ctrl+C (or SIGTERM) while the trained model is being written waits for the file: a second
    Ctrl+C after the first (or during the last evaluation) had ended the process with nothing
    saved."""
    def wait(signum, frame) -> None:
        print("\ncae: saving the model first", file=sys.stderr)
    try:
        before = {sig: signal.signal(sig, wait) for sig in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: nothing to defer
        yield
        return
    try:
        yield
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)


def metrics_summary(metrics: dict) -> dict:
    """The metrics a terminal shows by default: all but the 101 test-error percentiles (kept in
    the model file, where the window ranks a drawing's error among them; ``evaluate --full``
    prints them)."""
    return {k: v for k, v in metrics.items() if k != "test_mse_percentiles"}


def compact_json(doc: dict) -> str:
    """A JSON object with one key per line and each list on one line, except lists of lists
    (the confusion matrix), which get one row per line: short, and still easy to read."""
    lines = []
    for i, (key, value) in enumerate(doc.items()):
        comma = "," if i < len(doc) - 1 else ""
        if isinstance(value, list) and value and all(isinstance(r, list) for r in value):
            rows = ",\n".join("    " + json.dumps(r) for r in value)
            lines.append(f"  {json.dumps(key)}: [\n{rows}\n  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    return "{\n" + "\n".join(lines) + "\n}"


def _model_and_data(args: argparse.Namespace, bar: ProgressBar) -> tuple[str, Checkpoint, Dataset]:
    """``--model`` (its own dataset looked up when no data is named), or, without one, the
    bundled model for the data loaded."""
    if args.model:
        ckpt = load_checkpoint(args.model)
        return args.model, ckpt, _load_data(args, bar, ckpt.metadata.get("dataset"))
    if args.data and not (args.dataset in DATASETS or args.dataset == "auto"
                          and named_dataset_in(args.data)):
        # Said before the data is read (700 pictures were, first), as it will be after.
        model_or_bundled(None, Path(args.data).name)
    dataset = _load_data(args, bar)
    path = model_or_bundled(None, dataset.name)
    return path, load_checkpoint(path), dataset


def cmd_evaluate(args: argparse.Namespace) -> int:
    bar = ProgressBar()
    model, ckpt, dataset = _model_and_data(args, bar)
    bar.line(f"evaluating {model} on {len(dataset.test_images)} {dataset.name} test images "
             f"({len(dataset.train_images)} training images vote)")
    metrics = evaluate(ckpt.model, dataset,
                       progress=lambda f: bar.update(f, f"evaluating {100 * f:.0f}%"))
    bar.line("done")
    # The classes by name, in the order of per_class_mse and the confusion matrix's rows.
    doc = {"dataset": metrics["dataset"], "class_names": list(dataset.class_names),
           **(metrics if args.full else metrics_summary(metrics))}
    print(json.dumps(doc, indent=2) if args.full else compact_json(doc))
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    if Path(args.out).suffix.lower() not in CODE_FORMATS:  # before the data and the encoding
        raise CAEError(f"{args.out}: unknown format; use one of {', '.join(CODE_FORMATS)}")
    _, ckpt, dataset = _model_and_data(args, ProgressBar())
    parts = {"train": [(dataset.train_images, dataset.train_labels)],
             "test": [(dataset.test_images, dataset.test_labels)]}
    parts["all"] = parts["train"] + parts["test"]
    images = np.concatenate([p[0] for p in parts[args.split]])
    labels = np.concatenate([p[1] for p in parts[args.split]])
    split = split_rows(len(dataset.train_images), len(dataset.test_images)) \
        if args.split == "all" else np.full(len(images), args.split)
    n_train = len(dataset.train_images)
    files = {"train": dataset.files[:n_train], "test": dataset.files[n_train:],
             "all": dataset.files}[args.split]
    codes = encode_images(ckpt.model, images)
    write_codes(args.out, codes, labels, split, files)
    print(f"wrote {len(codes)} codes to {args.out}", file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    path = args.model or bundled_model_path(args.dataset)
    if path is None:
        raise CAEError(f"this install has no bundled {args.dataset} model; name a model file")
    ckpt = load_checkpoint(path)
    metadata = ckpt.metadata if args.full else _brief(ckpt.metadata)
    info = {"file": str(path), "model_config": ckpt.model.config.to_dict(),
            "parameters": sum(p.numel() for p in ckpt.model.parameters()),
            "extras": {k: list(v.shape) for k, v in ckpt.extras.items()},
            "metadata": metadata}
    print(readable_json(info))
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    """What a dataset holds, before a run on it: its classes with their counts in each split,
    the framing measured from its images (the one Draw uses), and what its reading found amiss
    (a folder of pictures: unreadable ones, a class one split lacks)."""
    dataset = _load_data(args, ProgressBar())
    train = np.bincount(dataset.train_labels, minlength=len(dataset.class_names))
    test = np.bincount(dataset.test_labels, minlength=len(dataset.class_names))
    framing = dataset_framing(dataset)
    print(readable_json({
        "dataset": dataset.name, "source": dataset.source,
        "image_size": dataset.image_size, "train": int(train.sum()), "test": int(test.sum()),
        "classes": [{"name": name, "train": int(a), "test": int(b)}
                    for name, a, b in zip(dataset.class_names, train, test)],
        "framing": {"box": framing.box, "centre_of_mass": framing.centre_of_mass},
        "notes": list(dataset.notes)}))
    return 0


def readable_json(value, indent: str = "") -> str:
    """JSON indented as ``indent=2`` writes it, except that a list or object that fits on a
    line of 120 characters stays on one (an epoch's history row, a confusion-matrix row)."""
    flat = json.dumps(value)
    if not isinstance(value, (dict, list)) or len(indent) + len(flat) <= 120 or not value:
        return flat
    inner = indent + "  "
    if isinstance(value, dict):
        rows = [f"{inner}{json.dumps(k)}: {readable_json(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(rows) + f"\n{indent}}}"
    rows = [inner + readable_json(v, inner) for v in value]
    return "[\n" + ",\n".join(rows) + f"\n{indent}]"


def _brief(metadata: dict) -> dict:
    """The metadata with its long lists of numbers (the training loss every few steps, the 101
    test-error percentiles) counted instead of printed one number per line."""
    brief = dict(metadata)
    steps = brief.get("step_losses")
    if isinstance(steps, list) and steps:
        brief["step_losses"] = f"{len(steps):,} points of the training loss (--full prints them)"
    metrics = brief.get("metrics")
    percentiles = metrics.get("test_mse_percentiles") if isinstance(metrics, dict) else None
    if isinstance(percentiles, list):
        brief["metrics"] = {**metrics, "test_mse_percentiles":
                            f"{len(percentiles)} values (--full prints them)"}
    return brief


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cae", description="CAE Latent Explorer command line")
    parser.add_argument("--version", action="version", version=f"cae-explorer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_args(p: argparse.ArgumentParser, download: bool = True) -> None:
        p.add_argument("--dataset", default="auto", choices=["auto", *DATASETS, "folder"],
                       help="auto (default): MNIST or Fashion-MNIST recognised in --data by "
                            "checksum (any other folder, of IDX files or pictures, is loaded "
                            "as it is; MNIST is looked up without --data); a named dataset "
                            "(checksums verified); or 'folder' for any IDX or picture folder")
        p.add_argument("--data", metavar="DIR", help="a dataset's folder: the four IDX files, or "
                       "pictures in one subfolder per class")
        if download:
            p.add_argument("--download", action="store_true",
                           help="download the dataset if missing")

    p = sub.add_parser("download", help="download a dataset into the user cache")
    p.add_argument("--dataset", default="mnist", choices=list(DATASETS),
                   help="which one (default: mnist)")
    p.add_argument("--dest", metavar="DIR", help="target folder (default: the user cache)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per connection attempt")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("train", help="train a model and save it")
    data_args(p)
    p.add_argument("--recipe", choices=list(RECIPES), default="best",
                   help="best (default): the recipe that won the probes in docs/training.md "
                        "(in the project's source); "
                        "quick: a short run; lecture: plain Adam at a constant learning rate. "
                        "The options below override single settings")
    p.add_argument("--epochs", type=int, help="passes over the training images (default: the "
                                              "recipe's: best 40, quick 5, lecture 10)")
    p.add_argument("--batch-size", type=int, help="images per step (default: the recipe's)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    p.add_argument("--schedule", choices=["cosine", "constant"])
    p.add_argument("--warmup", type=float, help="fraction of the steps spent warming up")
    p.add_argument("--optimizer", choices=["adam", "adamw"])
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--grad-clip", type=float, help="largest gradient norm (0: off)")
    p.add_argument("--ema", type=float, help="decay of the weights' moving average (0: off)")
    p.add_argument("--augment-shift", type=float, help="largest random shift in pixels (0: off)")
    p.add_argument("--augment-rotate", type=float, help="largest random rotation in degrees")
    p.add_argument("--loss", choices=["mse", "clamped"],
                   help="mse: the lecture's; clamped: the error of the image as shown, "
                        "plus 0.1 x mse")
    p.add_argument("--weight-init", choices=list(WEIGHT_INITS),
                   help="torch (default): PyTorch's initialisation; tf: the lecture's "
                        "(TensorFlow's Glorot-uniform kernels, zero biases)")
    p.add_argument("--seed", type=int, default=0,
                   help="initial weights and batch order (default 0): the same seed and flags "
                        "give the same weights on the same kind of machine")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", choices=list(PRECISIONS), default="auto",
                   help="auto (default): bf16 where the CPU (AVX512-BF16/AMX) or GPU computes it "
                        "natively, else fp32")
    p.add_argument("--no-cuda-graph", action="store_true",
                   help="on a GPU, launch each step's kernels one by one instead of replaying "
                        "one captured CUDA graph (slower; for comparison)")
    p.add_argument("--init", metavar="MODEL",
                   help="continue from this model file's weights instead of a fresh model "
                        "(its command and metadata are kept under 'init' in the new file)")
    p.add_argument("--out", help=f"where to save the model (default: {DEFAULT_MODEL_NAME} in "
                                 "this folder, or model-2.safetensors, ... where that exists)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the --out file if it exists (else the run refuses to start)")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    p.add_argument("--timeline", action="store_true",
                   help="keep each epoch's codes of 2,000 test digits and decoder weights in the "
                        "file (about 1.7 MB an epoch), for `cae animate` and the window's "
                        "Timeline")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="print test MSE, per-class MSE and 5-NN accuracy as JSON "
                                        "(--full: the test errors' percentiles too)")
    model_args(p, "a model file (default: the bundled model for the data)")
    p.add_argument("--full", action="store_true",
                   help="every value, indented (default: compact, one matrix row per line, "
                        "without the 101 test-error percentiles)")
    data_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("encode", help="write latent codes and labels to .npz/.csv/.npy")
    model_args(p, "a model file (default: the bundled model for the data)")
    data_args(p)
    p.add_argument("--split", choices=["test", "train", "all"], default="test")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("info", help="show a model file's config and metadata (without one: the "
                       "bundled model's)")
    model_args(p, "a model file (default: the bundled model of --dataset)")
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist",
                   help="whose bundled model to show when no file is named")
    p.add_argument("--full", action="store_true",
                   help="every value (default: the long lists of numbers counted, not printed)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("data", help="show what a dataset holds: classes and their counts per "
                       "split, its framing, and what its reading found amiss (as JSON)")
    data_args(p)
    p.set_defaults(func=cmd_data)
    add_export_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cae` command."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CAEError as exc:
        print(f"cae: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cae: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`cae info | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second one at exit
        return 0
