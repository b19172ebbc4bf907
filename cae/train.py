"""A trainer a GUI worker thread or a script can drive: a generator of small immutable records.

``Trainer.run()`` yields :class:`Progress`, :class:`Snapshot`, :class:`EpochEnd` and finally
:class:`Finished`.  Every record holds plain numbers and numpy arrays, never live tensors, so a
consumer on another thread can keep them.  ``stop()``, ``pause()`` and ``resume()`` are thread-safe
and take effect within one batch.  The dataset lives on the device as uint8 tensors (no
DataLoader processes); the loss is read back only every ``report_every`` steps, so a GPU is never
made to wait on the host between those points.
"""
from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .data import Dataset
from .errors import TrainingError
from .fast_forward import fast_encode, fast_forward
from .model import CAE, CAEConfig, reconstruction_loss


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; stored with the checkpoint it produces."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    schedule: str = "cosine"  # "cosine" (per step, to zero) or "constant"
    seed: int = 0
    device: str = "auto"
    report_every: int = 20  # steps between Progress records (and loss read-backs)
    snapshot_every_s: float = 0.0  # 0: latent snapshots at epoch ends only
    snapshot_size: int = 2000  # test digits encoded for each snapshot
    test_size: int | None = None  # test digits for the per-epoch test loss (None: all)
    # "auto": the fast path, bf16 where the hardware has it (see fast_precision), else fp32;
    # "bf16" = bfloat16 convolutions (float32 weights, loss and, on CPU, output layer);
    # "fp32" = float32 throughout.  Both run cae.fast_forward (same function, faster kernels).
    precision: str = "auto"

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.epochs, int) or self.epochs < 1:
            problems.append(f"epochs must be a whole number >= 1 (got {self.epochs!r})")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            problems.append(f"batch size must be a whole number >= 1 (got {self.batch_size!r})")
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            problems.append(f"learning rate must be a positive number (got {self.lr!r})")
        if self.schedule not in ("cosine", "constant"):
            problems.append(f"schedule must be 'cosine' or 'constant' (got {self.schedule!r})")
        if self.precision not in ("auto", "fp32", "bf16"):
            problems.append(f"precision must be 'auto', 'fp32' or 'bf16' (got {self.precision!r})")
        if self.report_every < 1 or self.snapshot_size < 1 or self.snapshot_every_s < 0:
            problems.append("report_every and snapshot_size must be >= 1, snapshot_every_s >= 0")
        if problems:
            raise TrainingError("; ".join(problems))


@dataclass(frozen=True)
class Progress:
    epoch: int  # 1-based
    step: int  # steps done in this epoch
    steps_per_epoch: int
    global_step: int
    total_steps: int
    loss: float  # mean training loss since the previous Progress
    images_per_s: float
    eta_s: float
    lr: float


@dataclass(frozen=True)
class Snapshot:
    """Latent codes of a fixed set of test digits and the model's weights at that moment (the
    whole model is small, 1.8 MB, and a GUI needs its encoder too, e.g. for drawn digits)."""

    epoch: int
    global_step: int
    codes: np.ndarray  # (K, latent_dim) float32
    labels: np.ndarray  # (K,) int64
    model_state: dict[str, np.ndarray]


@dataclass(frozen=True)
class EpochEnd:
    epoch: int
    train_loss: float
    test_loss: float
    seconds: float


@dataclass(frozen=True)
class Finished:
    stopped: bool  # True when stop() ended the run early
    epochs_done: int
    seconds: float


Record = Progress | Snapshot | EpochEnd | Finished


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple MPS, then the CPU; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise TrainingError(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainingError("CUDA was requested but no CUDA device is available")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise TrainingError(f"{name} does not exist ({torch.cuda.device_count()} CUDA devices)")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None)
                                     and torch.backends.mps.is_available()):
        raise TrainingError("MPS was requested but is not available")
    return device


def fast_precision(device: torch.device) -> str:
    """The precision of the fast path on ``device``: bf16 where the hardware computes it
    natively (CUDA GPUs from Ampere on, CPUs with AVX512-BF16 or AMX), else fp32."""
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        try:  # oneDNN also emulates bf16 on plain AVX512, slower than fp32: ask for the real thing
            flags = next((line for line in open("/proc/cpuinfo") if line.startswith("flags")), "")
            return "bf16" if {"avx512_bf16", "amx_bf16"} & set(flags.split()) else "fp32"
        except OSError:  # not Linux: trust oneDNN's own check
            try:
                return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
            except (AttributeError, RuntimeError):
                return "fp32"
    return "fp32"


def build_model(config: CAEConfig | None = None, seed: int = 0) -> CAE:
    """A freshly initialised model; the seed makes the initial weights reproducible."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return CAE(config)


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


class Trainer:
    """Trains a CAE on a Dataset; see the module docstring for the protocol."""

    def __init__(self, dataset: Dataset, config: TrainConfig | None = None,
                 model: CAE | None = None) -> None:
        self.config = config or TrainConfig()
        self.dataset = dataset
        self.device = resolve_device(self.config.device)
        if dataset.image_size != (model.config.image_size if model else CAEConfig().image_size):
            raise TrainingError(f"dataset images are {dataset.image_size} px; the model expects "
                                f"{model.config.image_size if model else CAEConfig().image_size}")
        self.model = model if model is not None else build_model(seed=self.config.seed)
        self.precision = (fast_precision(self.device) if self.config.precision == "auto"
                          else self.config.precision)
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.epochs_done = 0
        self.global_step = 0  # optimiser steps taken so far (read by tests and monitors)

    # thread-safe controls -------------------------------------------------------------
    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    # -----------------------------------------------------------------------------------
    def _to_device(self, images: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(images)).to(self.device)

    def _batch(self, images_u8: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return images_u8[idx].unsqueeze(1).float().div_(255.0)

    @torch.no_grad()
    def _test_loss(self, test_u8: torch.Tensor) -> float:
        """Mean test loss; NaN when stop() interrupts it (the run then ends at once)."""
        self.model.eval()
        total = torch.zeros((), device=self.device)
        for start in range(0, len(test_u8), 1000):
            if self._stop.is_set():
                self.model.train()
                return float("nan")
            x = test_u8[start:start + 1000].unsqueeze(1).float().div_(255.0)
            total += reconstruction_loss(fast_forward(self.model, x, self._bf16), x) * len(x)
        self.model.train()
        return float(total) / len(test_u8)

    @torch.no_grad()
    def _snapshot(self, snap_u8: torch.Tensor, labels: np.ndarray, epoch: int, step: int) -> Snapshot:
        self.model.eval()
        codes = torch.cat([  # a live preview: the fast path's precision is plenty
            fast_encode(self.model, snap_u8[i:i + 1000].unsqueeze(1).float().div_(255.0), self._bf16)
            for i in range(0, len(snap_u8), 1000)])
        self.model.train()
        state = {k: v.detach().to("cpu", torch.float32).numpy().copy()
                 for k, v in self.model.state_dict().items()}
        return Snapshot(epoch, step, codes.float().cpu().numpy(), labels.copy(), state)

    @property
    def _bf16(self) -> bool:
        return self.precision == "bf16"

    def _restore(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)

    def run(self) -> Iterator[Record]:
        """Train; yields records.  Raises TrainingError on a non-finite loss or out of memory,
        after putting the last good weights back into the model."""
        cfg = self.config
        ds = self.dataset
        torch.manual_seed(cfg.seed)
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        self.model.to(self.device).train()
        try:
            train_u8 = self._to_device(ds.train_images)
            test_u8 = self._to_device(ds.test_images[:cfg.test_size])
            snap_n = min(cfg.snapshot_size, len(ds.test_images))
            snap_u8, snap_labels = test_u8[:snap_n], ds.test_labels[:snap_n]
            if snap_n > len(test_u8):
                snap_u8 = self._to_device(ds.test_images[:snap_n])
        except RuntimeError as exc:
            if _is_oom(exc):
                raise TrainingError(f"the dataset does not fit in {self.device} memory") from None
            raise
        n = len(train_u8)
        steps_per_epoch = math.ceil(n / cfg.batch_size)
        total_steps = steps_per_epoch * cfg.epochs
        opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr)
        if cfg.schedule == "cosine":
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps)))
        else:
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        last_good = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        t_start = time.perf_counter()
        active = 0.0  # seconds spent training, pauses excluded
        global_step = 0
        last_snapshot_t = time.perf_counter()

        yield self._snapshot(snap_u8, snap_labels, 0, 0)
        for epoch in range(1, cfg.epochs + 1):
            perm = torch.randperm(n, generator=gen).to(self.device)
            epoch_t0 = time.perf_counter()
            run_loss = torch.zeros((), device=self.device)
            run_count = 0
            epoch_loss = torch.zeros((), device=self.device)
            window_t0 = time.perf_counter()
            for step in range(steps_per_epoch):
                if self.paused:
                    active += time.perf_counter() - window_t0
                    self._running.wait()
                    window_t0 = time.perf_counter()
                if self._stop.is_set():
                    self.model.eval()
                    yield Finished(True, self.epochs_done, time.perf_counter() - t_start)
                    return
                idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
                try:
                    x = self._batch(train_u8, idx)
                    loss = reconstruction_loss(fast_forward(self.model, x, self._bf16), x)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                except RuntimeError as exc:
                    if _is_oom(exc):
                        self._restore(last_good)
                        raise TrainingError(
                            f"out of memory on {self.device} at batch size {cfg.batch_size}; "
                            "lower the batch size (the last good weights were kept)") from None
                    raise
                sched.step()
                global_step += 1
                self.global_step = global_step
                run_loss += loss.detach() * len(idx)
                epoch_loss += loss.detach() * len(idx)
                run_count += len(idx)
                if (step + 1) % cfg.report_every == 0 or step + 1 == steps_per_epoch:
                    mean = float(run_loss) / run_count  # the one host sync per report
                    if not math.isfinite(mean):
                        self._restore(last_good)
                        raise TrainingError(
                            f"the loss became {mean} at epoch {epoch}, step {step + 1}; try a lower "
                            "learning rate (the last good weights were kept)")
                    last_good = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                    now = time.perf_counter()
                    active += now - window_t0
                    window_t0 = now
                    rate = global_step * cfg.batch_size / max(active, 1e-9)
                    remaining = (total_steps - global_step) * cfg.batch_size / max(rate, 1e-9)
                    yield Progress(epoch, step + 1, steps_per_epoch, global_step, total_steps,
                                   mean, rate, remaining, sched.get_last_lr()[0])
                    run_loss.zero_()
                    run_count = 0
                    if cfg.snapshot_every_s and now - last_snapshot_t >= cfg.snapshot_every_s:
                        yield self._snapshot(snap_u8, snap_labels, epoch, global_step)
                        last_snapshot_t = time.perf_counter()
                        window_t0 += last_snapshot_t - now  # snapshots do not count as training
            self.epochs_done = epoch
            train_loss = float(epoch_loss) / n
            test_loss = self._test_loss(test_u8)
            if self._stop.is_set():
                self.model.eval()
                yield Finished(True, self.epochs_done, time.perf_counter() - t_start)
                return
            yield EpochEnd(epoch, train_loss, test_loss, time.perf_counter() - epoch_t0)
            yield self._snapshot(snap_u8, snap_labels, epoch, global_step)
            last_snapshot_t = time.perf_counter()
            window_t0 = last_snapshot_t
        self.model.eval()
        yield Finished(False, self.epochs_done, time.perf_counter() - t_start)
