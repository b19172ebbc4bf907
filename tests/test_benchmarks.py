"""The benchmark suite runs (quick mode) and produces every figure; no targets are asserted."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIRED = ["train_images_per_s", "train_speedup_vs_eager", "epoch_seconds", "decode_p50_ms",
            "decode_p99_ms", "grid_decode_ms", "grid_decode_eager_ms", "grid_decoder_build_ms",
            "grid_decode_max_error", "encode_70k_s", "map_build_s_10k", "map_redraw_ms_10k",
            "map_build_s_70k", "map_redraw_ms_70k", "startup_s", "peak_rss_mb", "gui_stall_ms"]


def test_quick_suite_produces_every_figure(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path),
               XDG_CACHE_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(out.read_text())
    for key in REQUIRED:
        assert isinstance(figures[key], (int, float)) and math.isfinite(figures[key]), key
        assert figures[key] >= 0, key
        assert key in proc.stdout
    assert figures["train_images_per_s"] > 0 and figures["startup_s"] > 0
    assert figures["grid_decode_max_error"] < 0.05  # the fast grid decode draws the same digits
