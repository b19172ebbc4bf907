"""The measurements behind `python -m benchmarks`.  Each returns plain numbers (medians of
several repetitions); nothing here asserts a target: targets are judged by reading the table."""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from cae.mosaic import CHUNK  # the mosaic decodes its grid this many tiles at a time
from cae.batch_decode import BatchDecoder
from cae.checkpoint import load_checkpoint
from cae.data import Dataset, load_dataset
from cae.fast_forward import fast_forward
from cae.metrics import encode_images, knn_predict
from cae.model import CAE, reconstruction_loss
from cae.train import TrainConfig, Trainer, fast_precision, resolve_device

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
BUNDLED = ROOT / "resources" / "model.safetensors"


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(),
            "device": "cpu"}
    if torch.cuda.is_available():
        info["device"] = torch.cuda.get_device_name(0)
    return info


def dataset(quick: bool) -> Dataset:
    """Real MNIST when it is beside the project, else MNIST's size made of the 200 real test
    digits shipped with the tests, each shifted by up to 2 px (random noise had codes so close
    together that the bf16 encode's error was a tenth of their spread: no map is like that)."""
    if MNIST.is_dir():
        return load_dataset("mnist", MNIST)
    from tests.helpers import mnist_sample
    digits, labels = mnist_sample()
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        pick = rng.integers(0, len(digits), n)
        shifts = rng.integers(-2, 3, (n, 2))
        images = np.stack([np.roll(digits[i], tuple(s), (0, 1)) for i, s in zip(pick, shifts)])
        return images, labels[pick].astype(np.int64)
    return Dataset("mnist sample", *split(60000), *split(10000))


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def _percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_flops(model: CAE) -> float:
    """Multiply-adds x 2 of one image's forward pass, counted from the layers' real shapes
    (a convolution: each output value needs in_channels x k x k of them; a transposed one: each
    input value scatters out_channels x k x k)."""
    total = [0.0]

    def count(layer, inputs, output) -> None:
        k = layer.kernel_size[0] * layer.kernel_size[1]
        if isinstance(layer, torch.nn.ConvTranspose2d):
            total[0] += 2.0 * inputs[0].numel() * layer.out_channels * k
        else:
            total[0] += 2.0 * output.numel() * layer.in_channels * k

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    with torch.no_grad():
        size = model.config.image_size
        model(torch.zeros(1, 1, size, size, device=next(model.parameters()).device))
    for h in hooks:
        h.remove()
    return total[0]


def matmul_peak_flops(device: torch.device, precision: str, reps: int) -> float:
    """FLOP/s of a large square matrix product in ``precision``: the machine's practical peak,
    measured in the same run as the training step it is compared with."""
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    n = 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    times = []
    for _ in range(reps):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 2.0 * n ** 3 / min(times)


def train_step_throughput(device: torch.device, batch_size: int, steps: int, reps: int) -> dict:
    """Images/s of one training step, the fast path against plain eager fp32, alternated."""
    x_all = torch.rand(steps * batch_size, 1, 28, 28, device=device)
    rates: dict[str, list[float]] = {"fast": [], "eager": []}
    precisions = {"fast": fast_precision(device), "eager": "fp32"}
    models = {k: CAE().to(device) for k in rates}
    opts = {k: torch.optim.Adam(m.parameters(), 1e-3) for k, m in models.items()}

    def run(kind: str, n: int) -> float:
        model, opt = models[kind], opts[kind]
        bf16 = precisions[kind] == "bf16"
        _sync(device)
        t0 = time.perf_counter()
        for i in range(n):
            x = x_all[i * batch_size:(i + 1) * batch_size]
            if kind == "fast":
                y = fast_forward(model, x, bf16)
            else:
                y = model(x)  # plain eager: nn.Module forward, float32
            loss = reconstruction_loss(y, x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync(device)
        return n * batch_size / (time.perf_counter() - t0)

    for kind in rates:
        run(kind, 3)  # warm-up
    for _ in range(reps):
        for kind in rates:
            rates[kind].append(run(kind, steps))
    fast, eager = _median(rates["fast"]), _median(rates["eager"])
    achieved = fast * 3.0 * forward_flops(models["fast"])  # backward ~ 2x forward
    peak = matmul_peak_flops(device, precisions["fast"], reps)
    return {"images_per_s": fast, "eager_images_per_s": eager, "speedup": fast / eager,
            "precision": precisions["fast"], "achieved_tflops": achieved / 1e12,
            "peak_matmul_tflops": peak / 1e12, "fraction_of_peak": achieved / peak}


def train_test_mse(ds: Dataset, epochs: int) -> dict:
    """Test MSE after ``epochs`` epochs through the Trainer, fast path against float32, same seed
    and batches: the speed must not cost accuracy."""
    out = {}
    for precision in (fast_precision(torch.device("cpu")), "fp32"):
        config = TrainConfig(epochs=epochs, batch_size=128, device="cpu", precision=precision)
        last = None
        for record in Trainer(ds, config).run():
            if type(record).__name__ == "EpochEnd":
                last = record
        out[precision] = float(last.test_loss)
    return out


def epoch_seconds(ds: Dataset, device: torch.device, batch_size: int,
                  quick: bool, cuda_graph: bool = True) -> tuple[float, bool]:
    """A real training epoch through the Trainer (fast path); quick mode times 1/20 of one on a
    CPU.  On a GPU the run has two whole epochs and the second is timed: the first holds the graph's
    capture and the kernels' first-call set-up, which a run pays once."""
    n = 3000 if quick and device.type != "cuda" else len(ds.train_images)
    sub = replace(ds, train_images=ds.train_images[:n], train_labels=ds.train_labels[:n])
    config = TrainConfig(epochs=2 if device.type == "cuda" else 1, batch_size=batch_size,
                         device=str(device), test_size=1000, precision=fast_precision(device),
                         cuda_graph=cuda_graph)
    trainer = Trainer(sub, config)
    seconds = None
    for record in trainer.run():
        if type(record).__name__ == "EpochEnd":
            seconds = record.seconds
    return seconds * len(ds.train_images) / n, quick


def cuda_step_variants(device: torch.device, batch_size: int, steps: int, reps: int) -> dict:
    """Images/s of the fast path's training step on a GPU four ways, alternated: eager, one
    CUDA graph per step (:class:`GraphedStep`, what the Trainer runs), ``torch.compile`` (its
    default mode: fused Triton kernels, launched from Python) and the compiled step inside a
    graph; plus the compile's own seconds.  Data resident on the GPU; one sync per timing."""
    from cae.cuda_graph import GraphedStep

    x_all = torch.rand(steps * batch_size, 1, 28, 28, device=device)
    bf16 = fast_precision(device) == "bf16"
    out: dict = {}

    def make(kind: str):
        model = CAE().to(device)
        graphed = "graph" in kind
        lr = torch.tensor(1e-3, device=device) if graphed else 1e-3
        opt = torch.optim.Adam(model.parameters(), lr=lr, capturable=graphed)

        def loss_of(x: torch.Tensor) -> torch.Tensor:
            return reconstruction_loss(fast_forward(model, x, bf16), x)

        forward = torch.compile(loss_of) if "compile" in kind else loss_of

        def step(x: torch.Tensor) -> torch.Tensor:
            opt.zero_grad(set_to_none=True)
            loss = forward(x)
            loss.backward()
            opt.step()
            return loss
        return GraphedStep(step, (batch_size, 1, 28, 28), device) if graphed else step

    kinds = ("eager", "graph", "compile", "compile+graph")
    steps_of, rates = {}, {k: [] for k in kinds}
    for kind in kinds:
        t0 = time.perf_counter()
        try:
            steps_of[kind] = make(kind)
            for i in range(5):  # warm-up: capture, compile
                steps_of[kind](x_all[i * batch_size:(i + 1) * batch_size])
            _sync(device)
        except Exception as exc:  # noqa: BLE001 - a variant that fails is reported, not fatal
            out[f"{kind}_error"] = f"{type(exc).__name__}: {exc}"[:300]
            steps_of.pop(kind, None)
            continue
        out[f"{kind}_setup_s"] = time.perf_counter() - t0
    for _ in range(reps):
        for kind, step in steps_of.items():
            _sync(device)
            t0 = time.perf_counter()
            for i in range(steps):
                step(x_all[i * batch_size:(i + 1) * batch_size])
            _sync(device)
            rates[kind].append(steps * batch_size / (time.perf_counter() - t0))
    out.update({f"{k}_images_per_s": _median(v) for k, v in rates.items() if v})
    return out


def _bundled_model() -> tuple[CAE, tuple[float, float, float, float]]:
    """The model the app starts with and the region of its test codes (what the decoded-image
    map shows after "fit view"); a fresh model over [-3, 3]^2 where the file is absent."""
    if BUNDLED.exists():
        ckpt = load_checkpoint(BUNDLED)
        codes = ckpt.extras.get("test_codes")
        if codes is not None:
            (x0, y0), (x1, y1) = codes.min(0), codes.max(0)
            return ckpt.model.eval(), (float(x0), float(x1), float(y0), float(y1))
        return ckpt.model.eval(), (-3.0, 3.0, -3.0, 3.0)
    return CAE().eval(), (-3.0, 3.0, -3.0, 3.0)


def _grid(x0: float, x1: float, y0: float, y1: float, n: int = 32) -> torch.Tensor:
    xs, ys = torch.meshgrid(torch.linspace(x0, x1, n), torch.linspace(y0, y1, n), indexing="xy")
    return torch.stack([xs, ys], -1).reshape(-1, 2)


def decode_latency(reps: int) -> dict:
    """One point through the model (a click or drag); a 32 x 32 grid through the decoded-image
    map's BatchDecoder, built anew each time as the app does per training snapshot, against the
    same grid through the eager model, both CHUNK codes at a time as the mosaic decodes them
    (eager is 7 % faster so than in one call), alternated; and the grid's largest pixel error
    over the test codes' region and over [-1000, 1000]^2."""
    model, (x0, x1, y0, y1) = _bundled_model()
    z = torch.zeros(1, 2)
    grid, far = _grid(x0, x1, y0, y1), _grid(-1000.0, 1000.0, -1000.0, 1000.0)
    times, snapshot, build, decode, eager_times = [], [], [], [], []

    def eager_decode(codes: torch.Tensor) -> torch.Tensor:
        return model.decode(codes).clamp_(0, 1)

    def in_chunks(decoder, codes: torch.Tensor) -> torch.Tensor:
        return torch.cat([decoder(codes[i:i + CHUNK]) for i in range(0, len(codes), CHUNK)])
    with torch.no_grad():
        for _ in range(10):
            model.decode(z)
        for _ in range(reps):
            t0 = time.perf_counter()
            model.decode(z).clamp_(0, 1)
            times.append(1e3 * (time.perf_counter() - t0))
        in_chunks(BatchDecoder(model), grid)  # warm-up
        in_chunks(eager_decode, grid)
        for _ in range(max(3, reps // 50)):
            t0 = time.perf_counter()
            decoder = BatchDecoder(model)
            t1 = time.perf_counter()
            fast = in_chunks(decoder, grid)
            t2 = time.perf_counter()
            eager = in_chunks(eager_decode, grid)
            t3 = time.perf_counter()
            build.append(1e3 * (t1 - t0))
            decode.append(1e3 * (t2 - t1))
            snapshot.append(1e3 * (t2 - t0))
            eager_times.append(1e3 * (t3 - t2))
        far_error = float((in_chunks(decoder, far) - in_chunks(eager_decode, far)).abs().max())
    return {"p50": _median(times), "p99": _percentile(times, 99), "grid": _median(decode),
            "grid_build": _median(build), "grid_snapshot": _median(snapshot),
            "grid_eager": _median(eager_times),
            "grid_speedup": _median(eager_times) / _median(snapshot),
            "grid_max_error": float((fast - eager).abs().max()), "grid_max_error_far": far_error,
            "grid_precision": str(getattr(decoder, "dtype", None) or "fp32 (model)").replace(
                "torch.", ""),
            "grid_region": [x0, x1, y0, y1], "bundled": BUNDLED.exists()}


def encode_all(ds: Dataset, reps: int, quick: bool) -> dict:
    """Encoding all 70,000 digits as the map does (``encode_images(precision="auto")``) against
    eager float32 in batches of 256, alternated, on the bundled model; the fast codes' error and
    their 5-NN accuracy against the float32 codes' (quick mode: 10,000 digits, scaled by 7)."""
    model, _ = _bundled_model()
    images = np.concatenate([ds.train_images, ds.test_images])
    subset = images[:10000] if quick else images

    @torch.no_grad()
    def eager() -> np.ndarray:
        out = [model.encode(torch.from_numpy(subset[i:i + 256]).unsqueeze(1).float().div_(255))
               for i in range(0, len(subset), 256)]
        return torch.cat(out).numpy()

    runs = {"fast": lambda: encode_images(model, subset, precision="auto"), "eager": eager}
    times: dict[str, list[float]] = {k: [] for k in runs}
    codes = {}
    for _ in range(reps):
        for kind, run in runs.items():
            t0 = time.perf_counter()
            codes[kind] = run()
            times[kind].append(time.perf_counter() - t0)
    err = np.abs(codes["fast"] - codes["eager"])
    out = {"seconds": _median(times["fast"]) * len(images) / len(subset),
           "eager_seconds": _median(times["eager"]) * len(images) / len(subset),
           "subset_seconds": _median(times["fast"]), "subset_eager_seconds": _median(times["eager"]),
           "max_error": float(err.max()), "mean_error": float(err.mean()),
           "spread": float(codes["eager"].std(0).min()), "digits": len(subset)}
    out["speedup"] = out["eager_seconds"] / out["seconds"]
    split = len(subset) * 5 // 6 if quick else len(ds.train_images)
    labels = np.concatenate([ds.train_labels, ds.test_labels])[:len(subset)]
    for kind in runs:  # the first codes vote for the rest (full mode: train for test)
        pred = knn_predict(codes[kind][:split], labels[:split], codes[kind][split:])
        out[f"knn5_{kind}"] = float((pred == labels[split:]).mean())
    return out


def startup(reps: int, with_data: bool) -> dict:
    """`python main.py` in a subprocess, from its launch to the first paint of a plotted map
    (the probe file's write time, just after that paint), and its peak memory.  Fails unless
    the map shows points, and with data unless all of MNIST loaded and is plotted."""
    if with_data and not MNIST.is_dir():
        raise RuntimeError(f"peak memory with MNIST needs the data in {MNIST}")
    firsts, rss = [], []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as tmp:
            probe = Path(tmp) / "probe.json"
            env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=tmp,
                       XDG_DATA_HOME=tmp, CAE_EXPLORER_STARTUP_PROBE=str(probe),
                       CAE_EXPLORER_PROBE_WAIT_DATA="1" if with_data else "0")
            args = [sys.executable, str(ROOT / "main.py")]
            if with_data:
                args += ["--data", str(MNIST)]
            else:
                env["XDG_CACHE_HOME"] = tmp  # no dataset anywhere it looks, but the system dirs
            launched = time.time()
            proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180)
            if proc.returncode != 0 or not probe.is_file():
                raise RuntimeError(f"the app did not start: {proc.stderr[-2000:]}")
            painted = probe.stat().st_mtime
            report = json.loads(probe.read_text())
            if report.get("points", 0) <= 0:
                raise RuntimeError(f"start-up probe: the first paint showed no points ({report})")
            if with_data and not (report.get("data_loaded") and report["points"] >= 10000):
                raise RuntimeError(f"start-up probe: MNIST was not loaded and plotted ({report})")
            firsts.append(painted - launched)
            rss.append(report["peak_rss_mb"])
            points = report["points"]
    return {"first_paint_s": _median(firsts), "peak_rss_mb": max(rss), "points": points}


def second_start() -> dict:
    """`python main.py --data MNIST` with all 70,000 digits on the map, started twice with the
    same settings and cache: the second start, from launch to the 70,000-point map painted with
    hover ready (its codes come from the on-disk cache), and its peak memory."""
    if not MNIST.is_dir():
        raise RuntimeError(f"the second start needs MNIST in {MNIST}")
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "cae-explorer" / "cae-explorer.conf"
        conf.parent.mkdir()
        conf.write_text("[General]\nmapAll=true\n")  # the user chose all digits last time
        probe = Path(tmp) / "probe.json"
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=tmp, XDG_DATA_HOME=tmp,
                   XDG_CACHE_HOME=tmp, CAE_EXPLORER_STARTUP_PROBE=str(probe),
                   CAE_EXPLORER_PROBE_WAIT_DATA="1")
        times = []
        for _ in range(2):
            launched = time.time()
            proc = subprocess.run([sys.executable, str(ROOT / "main.py"), "--data", str(MNIST)],
                                  env=env, capture_output=True, text=True, timeout=600)
            if proc.returncode != 0 or not probe.is_file():
                raise RuntimeError(f"the app did not start: {proc.stderr[-2000:]}")
            report = json.loads(probe.read_text())
            if report.get("points") != 70000 or not report.get("data_loaded"):
                raise RuntimeError(f"start-up probe: not the 70,000-point map ({report})")
            times.append(probe.stat().st_mtime - launched)
            probe.unlink()
    return {"first_s": times[0], "second_s": times[1], "peak_rss_mb": report["peak_rss_mb"]}


def cuda_rows(ds: Dataset, device: torch.device, quick: bool, reps: int, rows: dict,
              details: dict) -> None:
    """The GPU's figures (the performance issue's targets: an epoch of 60,000 images in <= 1 s
    at batch 128 and <= 0.3 s at batch 1024 on one H100): the step against eager, epochs
    through the Trainer with and without its CUDA graph, and the step's four variants."""
    for bs in (128, 1024):
        gpu = train_step_throughput(device, bs, 20 if quick else 100, reps)
        details[f"train_cuda_b{bs}"] = gpu
        rows[f"cuda_train_images_per_s_b{bs}"] = gpu["images_per_s"]
        rows[f"cuda_train_speedup_vs_eager_b{bs}"] = gpu["speedup"]
        rows[f"cuda_epoch_seconds_b{bs}"] = epoch_seconds(ds, device, bs, quick)[0]
        rows[f"cuda_epoch_seconds_b{bs}_eager"] = epoch_seconds(ds, device, bs, quick,
                                                                cuda_graph=False)[0]
        variants = cuda_step_variants(device, bs, 20 if quick else 100, reps)
        details[f"cuda_step_variants_b{bs}"] = variants
        rows.update({f"cuda_step_b{bs}_{k.replace('+', '_')}": v
                     for k, v in variants.items() if k.endswith("images_per_s")})


def run_cuda_only(quick: bool, rows: dict, details: dict) -> None:
    """Only the GPU's figures: for a lent GPU machine, which has no Qt for the window's."""
    device = resolve_device("cuda")
    details["machine"] = machine()
    cuda_rows(dataset(quick), device, quick, 3 if quick else 7, rows, details)


def run_all(quick: bool, rows: dict, details: dict) -> None:
    """Every figure, filled into ``rows`` (the JSON's keys) and ``details`` as measured, so a
    failure late in the run still leaves the figures before it to print."""
    device = resolve_device("auto")
    reps = 3 if quick else 7
    ds = dataset(quick)
    details["machine"] = machine()
    cpu = train_step_throughput(torch.device("cpu"), 128, 5 if quick else 20, reps)
    details["train_cpu"] = cpu
    rows.update(train_images_per_s=cpu["images_per_s"], train_speedup_vs_eager=cpu["speedup"],
                train_eager_images_per_s=cpu["eager_images_per_s"],
                train_achieved_tflops=cpu["achieved_tflops"],
                peak_matmul_tflops=cpu["peak_matmul_tflops"],
                train_fraction_of_peak=cpu["fraction_of_peak"])
    if not quick:
        mse = train_test_mse(ds, 3)
        details["train_test_mse_3_epochs"] = mse
        rows.update({f"train_test_mse_3ep_{k}": v for k, v in mse.items()})
    if device.type == "cuda":
        cuda_rows(ds, device, quick, reps, rows, details)
    rows["epoch_seconds"], rows["epoch_seconds_estimated"] = epoch_seconds(
        ds, torch.device("cpu"), 128, quick)
    dec = decode_latency(200 if quick else 2000)
    details["decode"] = dec
    rows.update(decode_p50_ms=dec["p50"], decode_p99_ms=dec["p99"],
                grid_snapshot_ms=dec["grid_snapshot"], grid_decoder_build_ms=dec["grid_build"],
                grid_decode_ms=dec["grid"], grid_decode_eager_ms=dec["grid_eager"],
                grid_speedup_vs_eager=dec["grid_speedup"], grid_max_error=dec["grid_max_error"],
                grid_max_error_far=dec["grid_max_error_far"])
    enc = encode_all(ds, 1 if quick else 3, quick)
    details["encode"] = enc
    rows.update(encode_70k_s=enc["seconds"], encode_70k_eager_s=enc["eager_seconds"],
                encode_speedup_vs_eager=enc["speedup"], encode_max_error=enc["max_error"],
                encode_mean_error=enc["mean_error"], encode_knn5_fast=enc["knn5_fast"],
                encode_knn5_eager=enc["knn5_eager"])
    start = startup(1 if quick else 5, with_data=False)
    details["startup"] = start
    rows["startup_s"] = start["first_paint_s"]
    if MNIST.is_dir():  # peak memory "with MNIST loaded" means nothing without MNIST
        loaded = startup(1, with_data=True)
        details["startup_mnist"] = loaded
        rows.update(startup_mnist_s=loaded["first_paint_s"], peak_rss_mb=loaded["peak_rss_mb"])
        if not quick:
            again = second_start()
            details["second_start"] = again
            rows.update(second_start_s=again["second_s"], peak_rss_mb_70k=again["peak_rss_mb"])
    from . import gui  # the window's own figures (Qt); imported last, once the rest is done

    pans = gui.map_pan_paint((10000, 70000) if quick else (10000, 70000, 1_000_000),
                             5 if quick else 30)
    rows.update({f"map_pan_paint_ms_{n // 1000}k" if n < 1_000_000 else "map_pan_paint_ms_1m": t
                 for n, t in pans.items()})
    if BUNDLED.exists():
        rows["click_to_paint_ms_p50"] = gui.click_to_paint(str(BUNDLED), 10 if quick else 50)
    window = gui.training_in_the_window(quick, 3.0 if quick else 15.0, 2.0 if quick else 5.0,
                                        1 if quick else 2)
    details["training_in_the_window"] = window
    rows.update(gui_train_fraction_of_cli=window["gui_train_fraction_of_cli"],
                gui_stall_ms=window["gui_stall_ms"])
