"""Print one table of the suite's figures (medians); optionally save them as JSON."""
from __future__ import annotations

import argparse
import json
import sys

from .suite import run_all

UNITS = {
    "train_images_per_s": "img/s", "train_eager_images_per_s": "img/s",
    "train_speedup_vs_eager": "x", "train_fraction_of_peak_tflops": "TFLOP/s",
    "epoch_seconds": "s", "decode_p50_ms": "ms", "decode_p99_ms": "ms", "grid_decode_ms": "ms",
    "grid_decode_eager_ms": "ms", "grid_decoder_build_ms": "ms", "grid_decode_max_error": "of 1",
    "encode_70k_s": "s", "map_build_s_10k": "s", "map_redraw_ms_10k": "ms",
    "map_build_s_70k": "s", "map_redraw_ms_70k": "ms", "startup_s": "s",
    "startup_first_paint_in_process_s": "s", "peak_rss_mb": "MB", "gui_stall_ms": "ms",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="few repetitions (for CI)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    rows, details = run_all(args.quick)
    m = details["machine"]
    print(f"machine: {m['cpu']} | {m['cores']} cores | torch {m['torch']} ({m['threads']} threads)"
          f" | device {m['device']} | {'quick' if args.quick else 'full'} run")
    print(f"fast path precision on CPU: {details['train_cpu']['precision']}; 32x32 grid decode: "
          f"{details['decode']['grid_precision']}, "
          f"{'bundled model' if details['decode']['bundled'] else 'untrained model'} over "
          + " x ".join(f"[{a:.2f}, {b:.2f}]" for a, b in zip(details['decode']['grid_region'][::2],
                                                             details['decode']['grid_region'][1::2])))
    width = max(len(k) for k in rows)
    for key, value in rows.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"  {key:<{width}}  {text:>10} {UNITS.get(key, '')}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": m, "quick": args.quick, **rows, "details": details}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
