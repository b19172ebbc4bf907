"""Decoding many latent points at once (the decoded-image map) as a few large matrix products.

The decoder's first layer maps a 2-D code to a 7x7x64 map; the two transposed convolutions
after it are linear maps whose matrices are mostly structural zeros (a tap that lands in the
cropped border, an input row that cannot reach an output row).  :class:`BatchDecoder` computes
exactly the model's decode, with three changes of *how*, none of *what*:

* each transposed convolution is a product with its dense matrix, cut into bands of output
  rows, each multiplied only by the input rows that can reach it;
* units that are zero at every point of the batch (ReLUs dead over the whole region asked for;
  on the bundled model about two thirds of the first layer over the region of the codes) are
  left out of the product, since they add exactly nothing;
* on hardware that computes bf16 natively the products take bf16 operands with fp32
  accumulation, as the training fast path does (pixels within about 0.01 of the fp32 decode on
  the bundled model; ``python -m benchmarks`` prints the figure).

Small batches, and hardware without native bf16, go through the model itself.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from .model import CAE
from .train import fast_precision

SMALL_BATCH = 16  # below this many points the model's own convolutions are faster (measured)
MIN_BAND_COLUMNS = 100  # merge output rows until a band has this many columns (GEMM efficiency)
# Leaving dead units out costs a gather of their weight rows (and, after the second layer, of
# bf16 activation columns, which is slow); measured on a 2-core AVX512-BF16 CPU it pays while
# at most these fractions of the units are live.
SKIP_FIRST, SKIP_SECOND = 0.9, 0.5


@dataclass(frozen=True)
class _Band:
    rows: tuple[int, int]  # input units [start, stop) that reach this band (channels-last order)
    cols: tuple[int, int]  # output units [start, stop) of the band


class _TransposedConvMatrix:
    """A ConvTranspose2d on an m x m map as a dense (in_units, out_units) matrix, channels-last
    (unit index = (row * width + column) * channels + channel) on both sides."""

    def __init__(self, layer: nn.ConvTranspose2d, in_size: int, out_size: int,
                 dtype: torch.dtype) -> None:
        weight = layer.weight.detach()
        ci, co, k, _ = weight.shape
        s, p = layer.stride[0], layer.padding[0]
        if (in_size - 1) * s + k - 2 * p != out_size:
            raise ValueError(f"layer maps {in_size} to {(in_size - 1) * s + k - 2 * p}, not {out_size}")
        taps = weight.permute(0, 2, 3, 1).to(dtype)  # (ci, ky, kx, co)
        dense = torch.zeros(in_size, in_size, ci, out_size, out_size, co, dtype=dtype,
                            device=weight.device)
        for u in range(in_size):
            y0, y1 = max(0, s * u - p), min(out_size, s * u - p + k)
            for v in range(in_size):
                x0, x1 = max(0, s * v - p), min(out_size, s * v - p + k)
                dense[u, v, :, y0:y1, x0:x1, :] = taps[:, y0 + p - s * u:y1 + p - s * u,
                                                       x0 + p - s * v:x1 + p - s * v, :]
        self.matrix = dense.reshape(in_size * in_size * ci, out_size * out_size * co)
        self.bias = layer.bias.detach().to(dtype).repeat(out_size * out_size)  # channels-last
        in_row, out_row = in_size * ci, out_size * co  # units per image row
        group = s * max(1, math.ceil(MIN_BAND_COLUMNS / (s * out_row)))  # whole phases per band
        self.bands: list[_Band] = []
        for y_start in range(0, out_size, group):
            ys = range(y_start, min(out_size, y_start + group))
            reach = [u for u in range(in_size) if any(0 <= y + p - s * u < k for y in ys)]
            self.bands.append(_Band((reach[0] * in_row, (reach[-1] + 1) * in_row),
                                    (ys[0] * out_row, (ys[-1] + 1) * out_row)))
        self.band_rows = torch.tensor([b.rows for b in self.bands], device=weight.device)

    def __call__(self, x: torch.Tensor, live: torch.Tensor | None = None) -> torch.Tensor:
        """layer(x) + bias, (N, out_units).  With ``live`` (sorted indices), ``x`` holds only
        those input units, every other one being zero at every point."""
        matrix = self.matrix if live is None else self.matrix[live]
        bounds = self.band_rows if live is None else torch.searchsorted(live, self.band_rows)
        out = torch.empty(x.shape[0], self.matrix.shape[1], dtype=x.dtype, device=x.device)
        for band, (lo, hi) in zip(self.bands, bounds.tolist()):
            c0, c1 = band.cols
            torch.addmm(self.bias[c0:c1], x[:, lo:hi], matrix[lo:hi, c0:c1], out=out[:, c0:c1])
        return out


class BatchDecoder:
    """``decoder(z)``: images (N, 1, H, W) in [0, 1] for codes (N, latent_dim), the same as
    :func:`cae.model.decode_images`.  Built once per set of weights (it holds its own copy).

    ``dtype`` None picks bf16 where the model's device computes it natively and otherwise
    decodes with the model itself: in fp32 the matrices only win where most units are dead."""

    def __init__(self, model: CAE, dtype: torch.dtype | None = None) -> None:
        self.model = copy.deepcopy(model).eval()
        if dtype is None:
            device = next(self.model.parameters()).device
            dtype = torch.bfloat16 if fast_precision(device) == "bf16" else None
        self.dtype = dtype
        if dtype is None:
            return
        cfg = self.model.config
        q, h, n = cfg.image_size // 4, cfg.image_size // 2, cfg.image_size
        first, second, third = self.model.decoder[0], self.model.decoder[2], self.model.decoder[4]
        with torch.no_grad():
            self.first_weight = first.weight.permute(0, 2, 3, 1).reshape(cfg.latent_dim, -1).float()
            self.first_bias = first.bias.float().repeat(q * q)
            self.second = _TransposedConvMatrix(second, q, h, dtype)
            self.third = _TransposedConvMatrix(third, h, n, dtype)

    @torch.no_grad()
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        z = z.float().reshape(z.shape[0], -1)
        if self.dtype is None or z.shape[0] < SMALL_BATCH:
            return self.model.decode(z).clamp_(0.0, 1.0)
        pre = torch.addmm(self.first_bias, z, self.first_weight)  # fp32: codes keep full precision
        live = _live_units(pre, SKIP_FIRST)
        h = pre if live is None else pre.index_select(1, live)
        h = self.second(h.relu_().to(self.dtype), live).relu_()
        live = _live_units(h, SKIP_SECOND)
        out = self.third(h if live is None else h[:, live], live)
        n = self.model.config.image_size
        return out.float().clamp_(0.0, 1.0).reshape(-1, 1, n, n)


def _live_units(h: torch.Tensor, below: float) -> torch.Tensor | None:
    """Sorted indices of the columns of ``h`` positive somewhere (the rest are zero everywhere
    after a ReLU), or None where more than the fraction ``below`` of them are."""
    live = torch.nonzero(h.amax(0) > 0).flatten()
    return live if len(live) <= below * h.shape[1] else None
