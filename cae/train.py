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
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .cuda_graph import GraphedStep
from .data import Dataset
from .errors import TrainingError
from .fast_forward import encode_batch, fast_forward
from .model import CAE, CAEConfig, reconstruction_loss


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; stored with the checkpoint it produces.

    The defaults are the ``"best"`` recipe (see :data:`RECIPES` and docs/training.md for the
    probes that chose it); :meth:`recipe` gives the others."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    schedule: str = "cosine"  # "cosine" (per step, to zero) or "constant"
    seed: int = 0
    device: str = "auto"
    report_every: int = 20  # steps between Progress records (and loss read-backs)
    snapshot_every_s: float = 0.0  # 0: latent snapshots at epoch ends only
    snapshot_size: int = 2000  # test digits encoded for each snapshot
    test_size: int | None = None  # test digits for the per-epoch test loss (None: all)
    # "auto": bf16 where the hardware has it natively (see fast_precision), else fp32;
    # "bf16": bfloat16 convolutions (float32 weights and loss; see cae.fast_forward for the two
    # layers a CPU computes otherwise); "fp32": float32 throughout.  All run cae.fast_forward
    # (same function, faster kernels), and the choice is fixed before the first step, so a seed
    # gives the same weights in every process.
    precision: str = "auto"
    recipe: str = "best"  # the RECIPES entry these settings came from (a label for the file)
    optimizer: str = "adam"  # "adam" or "adamw" (decoupled weight decay)
    weight_decay: float = 0.0
    warmup: float = 0.02  # fraction of all steps with a linear learning-rate warm-up
    grad_clip: float = 0.0  # largest gradient norm (0: no clipping)
    ema: float = 0.999  # decay of a moving average of the weights, kept as the result (0: off)
    augment_shift: float = 0.0  # largest random shift in pixels (training only)
    augment_rotate: float = 0.0  # largest random rotation in degrees (training only)
    # "mse": the lecture's loss; "clamped": the error of the image as shown (output clamped to
    # [0, 1], what `cae evaluate` measures) plus 0.1 x the raw MSE, so pixels on the wrong side
    # of the clamp still get a gradient.  The output keeps its meaning: a linear image.
    loss: str = "clamped"
    # "torch": PyTorch's default initialisation; "tf": the lecture's own (TensorFlow's layers:
    # Glorot-uniform kernels, zero biases).  Only where a run starts from a fresh model.
    weight_init: str = "torch"
    # On CUDA, replay each full batch's step from one captured CUDA graph (cae.cuda_graph):
    # the same updates with one launch instead of dozens.  Off, or with augmentation: eager steps.
    cuda_graph: bool = True

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
        if self.precision not in PRECISIONS:
            problems.append(f"precision must be one of {', '.join(PRECISIONS)} "
                            f"(got {self.precision!r})")
        if self.loss not in ("mse", "clamped"):
            problems.append(f"loss must be 'mse' or 'clamped' (got {self.loss!r})")
        if self.weight_init not in WEIGHT_INITS:
            problems.append(f"weight_init must be one of {', '.join(WEIGHT_INITS)} "
                            f"(got {self.weight_init!r})")
        if self.optimizer not in ("adam", "adamw"):
            problems.append(f"optimizer must be 'adam' or 'adamw' (got {self.optimizer!r})")
        if self.report_every < 1 or self.snapshot_size < 1 or self.snapshot_every_s < 0:
            problems.append("report_every and snapshot_size must be >= 1, snapshot_every_s >= 0")
        for name, low, high in (("weight_decay", 0, 1), ("warmup", 0, 0.5),
                                ("grad_clip", 0, math.inf), ("ema", 0, 0.99999),
                                ("augment_shift", 0, 8), ("augment_rotate", 0, 45)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and low <= value <= high):
                problems.append(f"{name} must be a number from {low} to {high} (got {value!r})")
        if problems:
            raise TrainingError("; ".join(problems))

    @classmethod
    def recipe_config(cls, name: str, **overrides) -> TrainConfig:
        """The settings of recipe ``name`` with ``overrides`` on top (None values are ignored)."""
        if name not in RECIPES:
            raise TrainingError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
        settings = {**RECIPES[name], "recipe": name}
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**settings)


PRECISIONS = ("auto", "fp32", "bf16")
WEIGHT_INITS = ("torch", "tf")
CLAMPED_RAW_WEIGHT = 0.1  # the raw MSE's share in the "clamped" loss

# Named recipes; "best" is also TrainConfig's defaults.  The figures behind them: docs/training.md.
RECIPES: dict[str, dict] = {
    # The lecture's plain recipe: Adam at a constant learning rate, the plain MSE, nothing else,
    # from the lecture's own (TensorFlow's) initialisation.
    "lecture": {"epochs": 10, "batch_size": 50, "lr": 1e-3, "schedule": "constant", "warmup": 0.0,
                "ema": 0.0, "loss": "mse", "weight_init": "tf"},
    # The probes' winner: warm-up + cosine, an average of the weights, the error as shown.
    "best": {"epochs": 40, "batch_size": 64, "lr": 2e-3, "schedule": "cosine", "warmup": 0.02,
             "ema": 0.999, "loss": "clamped"},
    "quick": {"epochs": 5, "batch_size": 64, "lr": 2e-3, "schedule": "cosine", "warmup": 0.02,
              "ema": 0.999, "loss": "clamped"},
}


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
    steps: int  # optimiser steps taken (0: stopped before the first, nothing was learnt)


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
        raise TrainingError(
            f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps") from None
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
    if device.type == "cuda":  # the device asked about, not the current one; no emulation
        index = device.index if device.index is not None else torch.cuda.current_device()
        with torch.cuda.device(index):
            native = torch.cuda.is_bf16_supported(including_emulation=False)
        return "bf16" if native else "fp32"
    if device.type == "cpu":
        try:  # oneDNN also emulates bf16 on plain AVX512, slower than fp32: ask for the real thing
            with open("/proc/cpuinfo") as info:
                flags = next((line for line in info if line.startswith("flags")), "")
            return "bf16" if {"avx512_bf16", "amx_bf16"} & set(flags.split()) else "fp32"
        except OSError:  # not Linux: trust oneDNN's own check
            try:
                return "bf16" if torch.ops.mkldnn._is_mkldnn_bf16_supported() else "fp32"
            except (AttributeError, RuntimeError):
                return "fp32"
    return "fp32"


def build_model(config: CAEConfig | None = None, seed: int = 0, weight_init: str = "torch") -> CAE:
    """A freshly initialised model; the seed makes the initial weights reproducible.

    ``weight_init="tf"`` starts where the lecture's TensorFlow layers start: Glorot-uniform
    kernels over each kernel's fan-in plus fan-out, zero biases."""
    if weight_init not in WEIGHT_INITS:
        raise TrainingError(f"unknown weight_init {weight_init!r}; known: {', '.join(WEIGHT_INITS)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CAE(config)
        if weight_init == "tf":
            for layer in model.modules():
                if isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                    torch.nn.init.xavier_uniform_(layer.weight)
                    if layer.bias is not None:
                        torch.nn.init.zeros_(layer.bias)
        return model


def _lr_factor(cfg: TrainConfig, total_steps: int):
    """The learning-rate multiplier at each step: a linear warm-up, then cosine to zero (or
    constant)."""
    warm = int(cfg.warmup * total_steps)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        if cfg.schedule == "constant":
            return 1.0
        t = min(step - warm, total_steps - warm) / max(total_steps - warm, 1)
        return 0.5 * (1 + math.cos(math.pi * t))
    return factor


def uses_cuda_graph(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether a run replays its steps from a CUDA graph: on CUDA, unless turned off, and not
    with augmentation (its random numbers come from a CPU generator each step)."""
    return (device.type == "cuda" and cfg.cuda_graph
            and not (cfg.augment_shift or cfg.augment_rotate))


def make_optimizer(cfg: TrainConfig, params: list[torch.Tensor], total_steps: int,
                   device: torch.device, graphed: bool
                   ) -> tuple[torch.optim.Optimizer, Callable[[int], float]]:
    """The run's Adam (or AdamW) at the schedule's first rate, and ``set_lr(step)``, which sets
    the rate for optimiser step ``step`` (0-based) and returns it.  For a captured step the
    optimiser is ``capturable`` and its rate a GPU tensor, updated in place: the graph reads
    that tensor at each replay, so replacing it (as a float) would freeze the captured rate."""
    lr_at = _lr_factor(cfg, total_steps)
    first = cfg.lr * lr_at(0)
    lr = torch.tensor(first, device=device) if graphed else first
    optimizer = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    opt = optimizer(params, lr=lr, weight_decay=cfg.weight_decay, capturable=graphed)

    def set_lr(step: int) -> float:
        value = cfg.lr * lr_at(step)
        for group in opt.param_groups:
            if graphed:
                group["lr"].fill_(value)
            else:
                group["lr"] = value
        return value
    return opt, set_lr


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


class Trainer:
    """Trains a CAE on a Dataset; see the module docstring for the protocol."""

    def __init__(self, dataset: Dataset, config: TrainConfig | None = None,
                 model: CAE | None = None) -> None:
        self.config = config or TrainConfig()
        self.dataset = dataset
        self.device = resolve_device(self.config.device)
        (model.config if model else CAEConfig()).check_images(dataset.train_images.shape)
        self.model = model if model is not None else build_model(seed=self.config.seed,
                                                                weight_init=self.config.weight_init)
        self.precision = (fast_precision(self.device) if self.config.precision == "auto"
                          else self.config.precision)  # fixed here: never timed, never changed
        self._ema: list[torch.Tensor] | None = None
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self.epochs_done = 0
        self.global_step = 0  # optimiser steps taken so far (read by tests and monitors)
        # The CPU threads the run computes with, read on the thread that runs it (the window's
        # GUI thread keeps one; the training thread has its own): the file records it, since
        # CPU results are bit-exact for one thread count.
        self.threads = torch.get_num_threads()
        self.graphed_step: GraphedStep | None = None  # the run's CUDA graph, when it has one

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

    def _batch(self, images_u8: torch.Tensor, idx: torch.Tensor,
               gen: torch.Generator | None = None) -> torch.Tensor:
        x = images_u8[idx].unsqueeze(1).float().div_(255.0)
        cfg = self.config
        if gen is None or not (cfg.augment_shift or cfg.augment_rotate):
            return x
        # Light augmentation: a random small rotation and shift of each image (bilinear).
        n, size = len(x), x.shape[-1]
        u = torch.rand(n, 3, generator=gen).mul_(2).sub_(1).to(x.device)
        angle = u[:, 0] * math.radians(cfg.augment_rotate)
        shift = u[:, 1:] * (2 * cfg.augment_shift / size)  # pixels -> [-1, 1] grid units
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1),
                             torch.stack([sin, cos, shift[:, 1]], 1)], 1)
        grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        return torch.nn.functional.grid_sample(x, grid, align_corners=False)

    @torch.no_grad()
    def _test_loss(self, test_u8: torch.Tensor) -> float:
        """Mean test loss of the weights the run would return (the average, with EMA); NaN when
        stop() interrupts it (the run then ends at once)."""
        self.model.eval()
        self._swap_ema()
        try:
            total = torch.zeros((), device=self.device)
            for start in range(0, len(test_u8), 1000):
                if self._stop.is_set():
                    return float("nan")
                x = test_u8[start:start + 1000].unsqueeze(1).float().div_(255.0)
                total += reconstruction_loss(self._forward(x), x) * len(x)
            return float(total) / len(test_u8)
        finally:
            self._swap_ema()
            self.model.train()

    @torch.no_grad()
    def _snapshot(self, snap_u8: torch.Tensor, labels: np.ndarray, epoch: int,
                  step: int) -> Snapshot:
        self.model.eval()
        self._swap_ema()  # snapshots show the weights the run would return
        # A live preview: the fast path's precision is plenty, and its inference form (no pool
        # masks, batches of 256) takes 77 ms for 1,500 digits where the training form in
        # batches of 1,000 took 202 ms, 10 % of the run at a snapshot every 2 s.
        codes = torch.cat([
            encode_batch(self.model, snap_u8[i:i + 256].unsqueeze(1).float().div_(255.0),
                         self._bf16)
            for i in range(0, len(snap_u8), 256)])
        state = {k: v.detach().to("cpu", torch.float32).numpy().copy()
                 for k, v in self.model.state_dict().items()}
        self._swap_ema()
        self.model.train()
        return Snapshot(epoch, step, codes.float().cpu().numpy(), labels.copy(), state)

    @property
    def _bf16(self) -> bool:
        return self.precision == "bf16"

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_forward(self.model, x, self._bf16)

    def _train_loss(self, x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if self.config.loss == "clamped":
            return (torch.mean((x_hat.clamp(0.0, 1.0) - x) ** 2)
                    + CLAMPED_RAW_WEIGHT * reconstruction_loss(x_hat, x))
        return reconstruction_loss(x_hat, x)

    def _swap_ema(self) -> None:
        """Exchange the live weights with their moving average (no-op without EMA)."""
        if self._ema is not None:
            with torch.no_grad():
                for p, e in zip(self.model.parameters(), self._ema):
                    tmp = p.detach().clone()
                    p.copy_(e)
                    e.copy_(tmp)

    def _restore(self, state: dict[str, torch.Tensor]) -> None:
        """After a fault: the last good weights are the result (not the average)."""
        self.model.load_state_dict(state)
        self._ema = None

    def _finish(self) -> None:
        """End of a run: the moving average (with EMA) becomes the model's weights."""
        self._swap_ema()
        self._ema = None
        self.model.eval()

    def run(self) -> Iterator[Record]:
        """Train; yields records.  Raises TrainingError on a non-finite loss or out of memory,
        after putting the last good weights back into the model.  Closing the generator (or an
        interrupt inside it) still leaves the weights the run would return in the model."""
        try:
            yield from self._run()
        finally:
            if self._ema is not None:
                self._finish()

    def _run(self) -> Iterator[Record]:
        cfg = self.config
        ds = self.dataset
        torch.manual_seed(cfg.seed)
        self.threads = torch.get_num_threads()
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
        params = list(self.model.parameters())
        graphed = uses_cuda_graph(cfg, self.device)
        opt, set_lr = make_optimizer(cfg, params, total_steps, self.device, graphed)

        def train_step(x: torch.Tensor) -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            loss = self._train_loss(self._forward(x), x)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            return loss.detach()  # holding the graph alive would tie its nodes to this stream

        shape = (cfg.batch_size, 1, ds.image_size, ds.image_size)
        self.graphed_step = GraphedStep(train_step, shape, self.device) if graphed else None
        step_fn = self.graphed_step or train_step
        aug_gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
        self._ema = [p.detach().clone() for p in params] if cfg.ema else None
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
                    self._finish()
                    yield Finished(True, self.epochs_done, time.perf_counter() - t_start, global_step)
                    return
                idx = perm[step * cfg.batch_size:(step + 1) * cfg.batch_size]
                try:
                    loss = step_fn(self._batch(train_u8, idx, aug_gen))
                    if self._ema is not None:  # the average's decay ramps up over the first steps
                        decay = min(cfg.ema, (1 + global_step) / (10 + global_step))
                        torch._foreach_lerp_(self._ema, [p.detach() for p in params], 1 - decay)
                except RuntimeError as exc:
                    if _is_oom(exc):
                        self._restore(last_good)
                        raise TrainingError(
                            f"out of memory on {self.device} at batch size {cfg.batch_size}; "
                            "lower the batch size (the last good weights were kept)") from None
                    raise
                global_step += 1
                next_lr = set_lr(global_step)
                self.global_step = global_step
                run_loss += loss.detach() * len(idx)
                epoch_loss += loss.detach() * len(idx)
                run_count += len(idx)
                # Every report_every steps, and at the epoch's end; a report that would leave
                # under half of report_every to the end waits for it (one step of a partial
                # batch, reported alone, had stood out of the curve as a spike).
                left = steps_per_epoch - (step + 1)
                if left == 0 or ((step + 1) % cfg.report_every == 0
                                 and left >= cfg.report_every / 2):
                    mean = float(run_loss) / run_count  # the one host sync per report
                    if not math.isfinite(mean):
                        self._restore(last_good)
                        raise TrainingError(
                            f"the loss became {mean} at epoch {epoch}, step {step + 1}; try a "
                            "lower learning rate (the last good weights were kept)")
                    last_good = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
                    now = time.perf_counter()
                    active += now - window_t0
                    window_t0 = now
                    rate = global_step * cfg.batch_size / max(active, 1e-9)
                    remaining = (total_steps - global_step) * cfg.batch_size / max(rate, 1e-9)
                    yield Progress(epoch, step + 1, steps_per_epoch, global_step, total_steps,
                                   mean, rate, remaining, next_lr)
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
                self._finish()
                yield Finished(True, self.epochs_done, time.perf_counter() - t_start, global_step)
                return
            yield EpochEnd(epoch, train_loss, test_loss, time.perf_counter() - epoch_t0)
            yield self._snapshot(snap_u8, snap_labels, epoch, global_step)
            last_snapshot_t = time.perf_counter()
            window_t0 = last_snapshot_t
        self._finish()
        yield Finished(False, self.epochs_done, time.perf_counter() - t_start, global_step)
