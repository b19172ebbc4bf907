"""CAE Latent Explorer's benchmark suite: `python -m benchmarks [--quick] [--json FILE]`."""
