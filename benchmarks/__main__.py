"""Print one table of the suite's figures (medians); optionally save them as JSON.  A run that
fails part-way prints (and saves) the figures measured so far, then fails."""
from __future__ import annotations

import argparse
import json
import sys

from .suite import run_all

UNITS = {
    "train_images_per_s": "img/s", "train_eager_images_per_s": "img/s",
    "train_speedup_vs_eager": "x", "train_achieved_tflops": "TFLOP/s",
    "peak_matmul_tflops": "TFLOP/s", "train_fraction_of_peak": "of peak",
    "train_test_mse_3ep_bf16": "MSE", "train_test_mse_3ep_fp32": "MSE",
    "epoch_seconds": "s", "decode_p50_ms": "ms", "decode_p99_ms": "ms",
    "grid_snapshot_ms": "ms", "grid_decoder_build_ms": "ms", "grid_decode_ms": "ms",
    "grid_decode_eager_ms": "ms", "grid_speedup_vs_eager": "x", "grid_max_error": "of 1",
    "grid_max_error_far": "of 1", "encode_70k_s": "s", "encode_70k_eager_s": "s",
    "encode_speedup_vs_eager": "x", "encode_max_error": "", "encode_mean_error": "",
    "encode_knn5_fast": "acc", "encode_knn5_eager": "acc", "map_pan_paint_ms_10k": "ms",
    "map_pan_paint_ms_70k": "ms", "map_pan_paint_ms_1m": "ms", "click_to_paint_ms_p50": "ms",
    "startup_s": "s", "startup_mnist_s": "s", "peak_rss_mb": "MB",
    "gui_train_fraction_of_cli": "x", "gui_stall_ms": "ms",
}


def _report(rows: dict, details: dict, quick: bool, path: str | None) -> None:
    m = details.get("machine", {})
    print(f"machine: {m.get('cpu')} | {m.get('cores')} cores | torch {m.get('torch')} "
          f"({m.get('threads')} threads) | device {m.get('device')} | "
          f"{'quick' if quick else 'full'} run")
    if "train_cpu" in details and "decode" in details:
        region = details["decode"]["grid_region"]
        print(f"fast path precision on CPU: {details['train_cpu']['precision']}; 32x32 grid "
              f"decode: {details['decode']['grid_precision']}, "
              f"{'bundled model' if details['decode']['bundled'] else 'untrained model'} over "
              + " x ".join(f"[{a:.2f}, {b:.2f}]" for a, b in zip(region[::2], region[1::2])))
    width = max((len(k) for k in rows), default=0)
    for key, value in rows.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"  {key:<{width}}  {text:>10} {UNITS.get(key, '')}")
    if path:
        with open(path, "w") as f:
            json.dump({"machine": m, "quick": quick, **rows, "details": details}, f, indent=2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="few repetitions (for CI)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    rows: dict = {}
    details: dict = {}
    try:
        run_all(args.quick, rows, details)
    finally:
        _report(rows, details, args.quick, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
