"""How far the encoder's codes are from the best codes its decoder could be given.

The test MSE of an autoencoder mixes two limits: how well the decoder can draw a digit from
*some* 2-D code, and how well the encoder finds that code.  This script separates them.  For a
sample of digits it reports the clamped MSE of

* ``encoder``: the model's own reconstruction (what ``cae evaluate`` measures);
* ``best code``: the decoder at the best code found for each digit by a search of the plane
  (a grid over the codes' region, every digit taking its nearest decoded image, or its own
  code where that is nearer) followed by gradient steps on the code itself, the decoder fixed.

The second figure is what no encoder can beat with this decoder (up to the search's
thoroughness); the difference is the encoder's share of the error (docs/training.md, round 7).
Usage: ``python scripts/encoder_gap.py --data ../shared/data/mnist [--model FILE] [--split
test|train] [--count 2000]``.
"""
from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass

import numpy as np
import torch

from cae.batch_decode import BatchDecoder
from cae.bundled import bundled_model_path
from cae.checkpoint import load_checkpoint
from cae.data import load_folder
from cae.metrics import encode_images
from cae.model import CAE


@dataclass(frozen=True)
class Gap:
    """Mean clamped MSE per digit with the encoder's codes, the grid's and the refined best."""

    encoder: float
    grid: float
    best: float


def _clamped_mse(model: CAE, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-digit MSE of the clamped decode of ``z`` against ``x`` (N, pixels)."""
    return ((model.decode(z).clamp(0, 1).flatten(1) - x) ** 2).mean(1)


def best_codes(model: CAE, images: np.ndarray, grid: int = 160, steps: int = 150,
               lr: float = 0.02) -> tuple[np.ndarray, Gap]:
    """The best code found for each uint8 image (N, H, W), and the three MSEs (:class:`Gap`).

    The grid spans the encoder's codes for these images plus half a unit; the refinement is
    Adam on the codes alone, on the clamped MSE (the decoder's weights never change)."""
    model = copy.deepcopy(model).eval().requires_grad_(False)  # gradients for the codes only
    x = torch.from_numpy(images).float().div(255).flatten(1)
    z_enc = torch.from_numpy(encode_images(model, images))
    lo, hi = z_enc.min(0).values - 0.5, z_enc.max(0).values + 0.5
    axes = [torch.linspace(float(a), float(b), grid) for a, b in zip(lo, hi)]
    plane = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))
    decoder = BatchDecoder(model)
    nearest = torch.empty(len(x), dtype=torch.long)
    best_d = torch.full((len(x),), float("inf"))
    for start in range(0, len(plane), 2048):  # |x - d|^2 up to |x|^2, chunked to bound memory
        decoded = decoder(plane[start:start + 2048]).flatten(1)
        d = (decoded ** 2).sum(1)[None] - 2 * x @ decoded.T
        value, index = d.min(1)
        better = value < best_d
        best_d[better], nearest[better] = value[better], index[better] + start
    with torch.no_grad():
        encoder_mse = _clamped_mse(model, z_enc, x)
        grid_mse = _clamped_mse(model, plane[nearest], x)
    # Start from the better of the grid's point and the encoder's own code, so that the result
    # is never worse than either for any digit.
    start = torch.where((grid_mse < encoder_mse)[:, None], plane[nearest], z_enc)
    start_mse = torch.minimum(grid_mse, encoder_mse)
    z = start.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        _clamped_mse(model, z, x).sum().backward()
        opt.step()
    with torch.no_grad():
        refined = _clamped_mse(model, z, x)
        worse = refined >= start_mse
        z[worse] = start[worse]
        best = torch.where(worse, start_mse, refined)
    gap = Gap(float(encoder_mse.mean()), float(grid_mse.mean()), float(best.mean()))
    return z.detach().numpy(), gap


def main(argv: list[str] | None = None) -> int:
    """Print the encoder's and the best codes' MSE on a random sample of one split."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="an MNIST-format folder")
    parser.add_argument("--model", help="a model file (default: the bundled MNIST model)")
    parser.add_argument("--split", choices=("test", "train"), default="test")
    parser.add_argument("--count", type=int, default=2000, help="digits sampled (seed 0)")
    parser.add_argument("--grid", type=int, default=160, help="grid points per axis")
    parser.add_argument("--steps", type=int, default=150, help="gradient steps on the codes")
    args = parser.parse_args(argv)
    path = args.model or bundled_model_path("mnist")
    if path is None:
        parser.error("no bundled MNIST model is installed; pass --model FILE")
    model = load_checkpoint(path).model
    data = load_folder(args.data)
    images = data.test_images if args.split == "test" else data.train_images
    pick = np.random.default_rng(0).choice(len(images), min(args.count, len(images)),
                                           replace=False)
    _, gap = best_codes(model, images[pick], args.grid, args.steps)
    print(f"{len(pick)} {args.split} digits, clamped MSE: encoder {gap.encoder:.5f}, "
          f"best code on the grid {gap.grid:.5f}, refined {gap.best:.5f} "
          f"(the encoder's share: {gap.encoder - gap.best:.5f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
