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

from cae.batch_decode import BatchDecoder
from cae.checkpoint import load_checkpoint
from cae.data import Dataset, load_dataset
from cae.fast_forward import fast_forward
from cae.metrics import encode_images
from cae.model import CAE, reconstruction_loss
from cae.train import TrainConfig, Trainer, fast_precision, resolve_device

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "data" / "mnist"
BUNDLED = ROOT / "resources" / "model.safetensors"
FWD_MFLOP = 57.0  # per image, forward (see the issue: ~57 MFLOP forward, ~170 forward+backward)
TRAIN_MFLOP = 170.0


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
    """Real MNIST when it is beside the project, else random digits of the same shape."""
    if MNIST.is_dir():
        ds = load_dataset("mnist", MNIST)
    else:
        rng = np.random.default_rng(0)
        ds = Dataset("random", rng.integers(0, 256, (60000, 28, 28), dtype=np.uint8),
                     rng.integers(0, 10, 60000), rng.integers(0, 256, (10000, 28, 28), dtype=np.uint8),
                     rng.integers(0, 10, 10000))
    return ds


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def _percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs), q))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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
    return {"images_per_s": fast, "eager_images_per_s": eager, "speedup": fast / eager,
            "precision": precisions["fast"], "tflops": fast * TRAIN_MFLOP * 1e6 / 1e12}


def epoch_seconds(ds: Dataset, device: torch.device, batch_size: int, quick: bool) -> tuple[float, bool]:
    """A real training epoch through the Trainer (fast path); quick mode times 1/20 of one."""
    n = 3000 if quick else len(ds.train_images)
    sub = replace(ds, train_images=ds.train_images[:n], train_labels=ds.train_labels[:n])
    config = TrainConfig(epochs=1, batch_size=batch_size, device=str(device), test_size=1000,
                         precision=fast_precision(device))
    trainer = Trainer(sub, config)
    seconds = None
    for record in trainer.run():
        if type(record).__name__ == "EpochEnd":
            seconds = record.seconds
    return seconds * len(ds.train_images) / n, quick


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


def decode_latency(reps: int) -> dict:
    """One point through the model (a click or drag), and a 32 x 32 grid in one batch through
    the decoded-image map's BatchDecoder, against the same grid through the model."""
    model, (x0, x1, y0, y1) = _bundled_model()
    z = torch.zeros(1, 2)
    xs, ys = torch.meshgrid(torch.linspace(x0, x1, 32), torch.linspace(y0, y1, 32), indexing="xy")
    grid = torch.stack([xs, ys], -1).reshape(-1, 2)
    times, grid_times, eager_times, build_times = [], [], [], []
    with torch.no_grad():
        for _ in range(10):
            model.decode(z)
        for _ in range(reps):
            t0 = time.perf_counter()
            model.decode(z).clamp_(0, 1)
            times.append(1e3 * (time.perf_counter() - t0))
        for _ in range(3):
            t0 = time.perf_counter()
            decoder = BatchDecoder(model)
            build_times.append(1e3 * (time.perf_counter() - t0))
        decoder(grid)
        for _ in range(max(3, reps // 50)):
            t0 = time.perf_counter()
            fast = decoder(grid)
            grid_times.append(1e3 * (time.perf_counter() - t0))
            t0 = time.perf_counter()
            eager = model.decode(grid).clamp_(0, 1)
            eager_times.append(1e3 * (time.perf_counter() - t0))
    return {"p50": _median(times), "p99": _percentile(times, 99), "grid": _median(grid_times),
            "grid_eager": _median(eager_times), "grid_build": _median(build_times),
            "grid_max_error": float((fast - eager).abs().max()),
            "grid_precision": str(decoder.dtype or "fp32 (model)").replace("torch.", ""),
            "grid_region": [x0, x1, y0, y1], "bundled": BUNDLED.exists()}


def encode_all(ds: Dataset, reps: int, quick: bool) -> float:
    """Seconds to encode all 70,000 digits (quick mode encodes 10,000 and scales by 7)."""
    model = CAE().eval()
    images = np.concatenate([ds.train_images, ds.test_images])
    subset = images[:10000] if quick else images
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        encode_images(model, subset)
        times.append(time.perf_counter() - t0)
    return _median(times) * len(images) / len(subset)


def map_times(reps: int) -> dict:
    """Build and redraw times of the latent map, offscreen, at 10,000 and 70,000 points."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from app.latent_map import LatentMap

    app = QApplication.instance() or QApplication([])
    out = {}
    rng = np.random.default_rng(0)
    for n in (10000, 70000):
        codes = rng.normal(size=(n, 2)).astype(np.float32)
        labels = rng.integers(0, 10, n)
        view = LatentMap()
        view.resize(900, 700)
        view.show()
        app.processEvents()
        t0 = time.perf_counter()
        view.set_codes(codes, labels, tuple(str(i) for i in range(10)), fit=True)
        view.viewport().repaint()
        build = time.perf_counter() - t0
        redraw = []
        for i in range(reps):
            view.view_box.translateBy(x=0.01 * (1 if i % 2 else -1))  # a pan: everything moves
            app.processEvents()
            t0 = time.perf_counter()
            view.viewport().repaint()
            redraw.append(1e3 * (time.perf_counter() - t0))
        out[n] = {"build_s": build, "redraw_ms": _median(redraw)}
        view.close()
        view.deleteLater()
        app.processEvents()
    return out


def startup(reps: int, with_data: bool) -> dict:
    """`python main.py` in a subprocess until its first interactive paint (and its memory)."""
    firsts, walls, rss = [], [], []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as tmp:
            probe = Path(tmp) / "probe.json"
            env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=tmp,
                       CAE_EXPLORER_STARTUP_PROBE=str(probe),
                       CAE_EXPLORER_PROBE_WAIT_DATA="1" if with_data else "0")
            args = [sys.executable, str(ROOT / "main.py")]
            if with_data and MNIST.is_dir():
                args += ["--data", str(MNIST)]
            elif not with_data:
                env["XDG_CACHE_HOME"] = tmp  # no dataset anywhere it looks, but the system dirs
            t0 = time.perf_counter()
            proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
            wall = time.perf_counter() - t0
            if proc.returncode != 0 or not probe.is_file():
                raise RuntimeError(f"the app did not start: {proc.stderr[-2000:]}")
            report = json.loads(probe.read_text())
            firsts.append(report["first_paint_s"])
            rss.append(report["peak_rss_mb"])
            walls.append(wall)
    return {"first_paint_s": _median(firsts), "process_s": _median(walls), "peak_rss_mb": max(rss)}


def gui_stall(ds: Dataset, seconds: float) -> float:
    """Longest lateness of a 10 ms GUI timer while the app trains on its worker thread."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as tmp:
        window = MainWindow(QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        window.show()
        window.models.new_model()
        window._on_dataset_loaded(ds)
        deadline = time.perf_counter() + 60
        while window._encode_task is not None and time.perf_counter() < deadline:
            app.processEvents()
        window.training_panel.epochs.setValue(100)
        window.start_training()
        clock = QElapsedTimer()
        lateness: list[float] = []
        last = [0.0]

        def tick() -> None:
            now = clock.nsecsElapsed() / 1e6
            lateness.append(now - last[0] - 10.0)
            last[0] = now
            if len(lateness) % 5 == 0:  # the user keeps exploring meanwhile
                window.request_decode(float(np.sin(now)), float(np.cos(now)))

        timer = QTimer()
        timer.setInterval(10)
        timer.timeout.connect(tick)
        # Measure once training is under way (the first progress record has arrived).
        while not window.training_panel.train_points and time.perf_counter() < deadline:
            app.processEvents()
        clock.start()
        timer.start()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            app.processEvents()
            time.sleep(0.001)
        timer.stop()
        window.close()
        app.processEvents()
    return max(lateness[1:]) if len(lateness) > 1 else float("nan")


def run_all(quick: bool) -> tuple[dict, dict]:
    """Every figure; returns (summary for the JSON, details for the table)."""
    device = resolve_device("auto")
    reps = 3 if quick else 7
    ds = dataset(quick)
    details: dict = {"machine": machine()}
    rows: dict = {}
    cpu = train_step_throughput(torch.device("cpu"), 128, 5 if quick else 20, reps)
    details["train_cpu"] = cpu
    rows.update(train_images_per_s=cpu["images_per_s"], train_speedup_vs_eager=cpu["speedup"],
                train_eager_images_per_s=cpu["eager_images_per_s"],
                train_fraction_of_peak_tflops=cpu["tflops"])
    if device.type == "cuda":
        for bs in (128, 1024):
            gpu = train_step_throughput(device, bs, 20 if quick else 100, reps)
            details[f"train_cuda_b{bs}"] = gpu
            rows[f"cuda_train_images_per_s_b{bs}"] = gpu["images_per_s"]
            rows[f"cuda_train_speedup_vs_eager_b{bs}"] = gpu["speedup"]
            rows[f"cuda_epoch_seconds_b{bs}"] = epoch_seconds(ds, device, bs, quick)[0]
    rows["epoch_seconds"], rows["epoch_seconds_estimated"] = epoch_seconds(
        ds, torch.device("cpu"), 128, quick)
    dec = decode_latency(200 if quick else 2000)
    details["decode"] = dec
    rows.update(decode_p50_ms=dec["p50"], decode_p99_ms=dec["p99"], grid_decode_ms=dec["grid"],
                grid_decode_eager_ms=dec["grid_eager"], grid_decoder_build_ms=dec["grid_build"],
                grid_decode_max_error=dec["grid_max_error"])
    rows["encode_70k_s"] = encode_all(ds, 1 if quick else 3, quick)
    maps = map_times(5 if quick else 30)
    rows.update(map_build_s_10k=maps[10000]["build_s"], map_redraw_ms_10k=maps[10000]["redraw_ms"],
                map_build_s_70k=maps[70000]["build_s"], map_redraw_ms_70k=maps[70000]["redraw_ms"])
    start = startup(1 if quick else 5, with_data=False)
    rows.update(startup_s=start["process_s"], startup_first_paint_in_process_s=start["first_paint_s"])
    rows["peak_rss_mb"] = startup(1, with_data=True)["peak_rss_mb"]
    rows["gui_stall_ms"] = gui_stall(ds if not quick else replace(
        ds, train_images=ds.train_images[:5000], train_labels=ds.train_labels[:5000]),
        3.0 if quick else 15.0)
    return rows, details
