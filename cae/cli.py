"""`cae`: download data, train, evaluate, encode and inspect models from a terminal.

Errors are one clear line on stderr and exit status 2; results go to stdout (JSON where a script
would read them), progress to stderr.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from typing import TextIO

import numpy as np

from . import __version__
from .checkpoint import load_checkpoint, save_checkpoint
from .codes import write_codes
from .data import DATASETS, CancelToken, Dataset, download_dataset, load_dataset
from .errors import CAEError
from .metrics import encode_images, evaluate
from .train import EpochEnd, Finished, Progress, TrainConfig, Trainer


class ProgressBar:
    """A one-line text progress bar on a terminal; whole lines when not on one."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self._last = 0.0

    def update(self, fraction: float, text: str) -> None:
        if not self.tty:
            return
        now = time.monotonic()
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


def _load_data(args: argparse.Namespace, bar: ProgressBar) -> Dataset:
    def progress(name: str, done: int, total: int | None) -> None:
        bar.update(done / total if total else 0.0, f"downloading {name} {done / 1e6:.1f} MB")

    return load_dataset(args.dataset, args.data, download=getattr(args, "download", False),
                        progress=progress)


def cmd_download(args: argparse.Namespace) -> int:
    bar = ProgressBar()

    def progress(name: str, done: int, total: int | None) -> None:
        bar.update(done / total if total else 0.0, f"{name} {done / 1e6:.1f} MB")

    folder = download_dataset(args.dataset, args.dest, progress=progress, cancel=CancelToken(),
                              timeout=args.timeout)
    bar.line(f"{args.dataset} is ready in {folder}")
    print(folder)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    bar = ProgressBar()
    dataset = _load_data(args, bar)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         schedule=args.schedule, seed=args.seed, device=args.device,
                         precision=args.precision)
    trainer = Trainer(dataset, config)
    bar.line(f"training on {trainer.device} ({trainer.precision}) with {len(dataset.train_images)} "
             f"{dataset.name} images")
    t0 = time.perf_counter()
    finished = None
    history = []
    try:
        for record in trainer.run():
            if isinstance(record, Progress):
                bar.update(record.global_step / record.total_steps,
                           f"epoch {record.epoch}/{config.epochs} step {record.step}/"
                           f"{record.steps_per_epoch} loss {record.loss:.4f} "
                           f"{record.images_per_s:.0f} img/s ETA {_fmt_time(record.eta_s)}")
            elif isinstance(record, EpochEnd):
                history.append({"epoch": record.epoch, "train_loss": record.train_loss,
                                "test_loss": record.test_loss, "seconds": record.seconds})
                bar.line(f"epoch {record.epoch}/{config.epochs}: train loss {record.train_loss:.5f}, "
                         f"test loss {record.test_loss:.5f}, {record.seconds:.1f} s, "
                         f"{len(dataset.train_images) / record.seconds:.0f} img/s")
            elif isinstance(record, Finished):
                finished = record
    except KeyboardInterrupt:
        trainer.stop()
        bar.line("interrupted: saving the weights trained so far")
    wall = time.perf_counter() - t0
    metadata = {
        "command": "cae " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "dataset": dataset.name, "class_names": list(dataset.class_names),
        "train_config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "epochs_done": trainer.epochs_done, "stopped_early": bool(finished is None or finished.stopped),
        "wall_time_s": round(wall, 1), "device": str(trainer.device),
        "precision": trainer.precision, "history": history,
    }
    model = trainer.model.to("cpu")
    if not args.no_eval:
        bar.line("evaluating on the test set...")
        metadata["metrics"] = evaluate(model, dataset)
    # The test digits' codes travel with the model, so a map can be shown before any data is found.
    extras = {"test_codes": encode_images(model, dataset.test_images),
              "test_labels": dataset.test_labels.astype(np.uint8)}
    path = save_checkpoint(args.out, model, metadata, extras)
    bar.line(f"saved {path}")
    if "metrics" in metadata:
        print(json.dumps(metadata["metrics"], indent=2))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.model)
    dataset = _load_data(args, ProgressBar())
    print(json.dumps(evaluate(ckpt.model, dataset), indent=2))
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.model)
    dataset = _load_data(args, ProgressBar())
    parts = {"train": [(dataset.train_images, dataset.train_labels)],
             "test": [(dataset.test_images, dataset.test_labels)]}
    parts["all"] = parts["train"] + parts["test"]
    images = np.concatenate([p[0] for p in parts[args.split]])
    labels = np.concatenate([p[1] for p in parts[args.split]])
    codes = encode_images(ckpt.model, images)
    write_codes(args.out, codes, labels)
    print(f"wrote {len(codes)} codes to {args.out}", file=sys.stderr)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.model)
    info = {"model_config": ckpt.model.config.to_dict(),
            "parameters": sum(p.numel() for p in ckpt.model.parameters()),
            "extras": {k: list(v.shape) for k, v in ckpt.extras.items()},
            "metadata": ckpt.metadata}
    print(json.dumps(info, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cae", description="CAE Latent Explorer command line")
    parser.add_argument("--version", action="version", version=f"cae-explorer {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def data_args(p: argparse.ArgumentParser, download: bool = True) -> None:
        p.add_argument("--dataset", default="mnist", choices=[*DATASETS, "folder"],
                       help="named dataset (checksums verified) or 'folder' for any IDX folder")
        p.add_argument("--data", metavar="DIR", help="folder with the four IDX files")
        if download:
            p.add_argument("--download", action="store_true", help="download the dataset if missing")

    p = sub.add_parser("download", help="download a dataset into the user cache")
    p.add_argument("--dataset", default="mnist", choices=list(DATASETS))
    p.add_argument("--dest", metavar="DIR", help="target folder (default: the user cache)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per connection attempt")
    p.set_defaults(func=cmd_download)

    p = sub.add_parser("train", help="train a model and save it")
    data_args(p)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--schedule", choices=["cosine", "constant"], default="cosine")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto (default): bf16 autocast where the CPU (AVX512-BF16/AMX) or GPU "
                        "computes it natively, else fp32")
    p.add_argument("--out", default="model.safetensors", help="where to save the model")
    p.add_argument("--no-eval", action="store_true", help="skip the final evaluation")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="print test MSE, per-class MSE and 5-NN accuracy as JSON")
    p.add_argument("--model", required=True)
    data_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("encode", help="write latent codes and labels to .npz/.csv/.npy")
    p.add_argument("--model", required=True)
    data_args(p)
    p.add_argument("--split", choices=["test", "train", "all"], default="test")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_encode)

    p = sub.add_parser("info", help="show a model file's config and metadata")
    p.add_argument("model")
    p.set_defaults(func=cmd_info)
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
