"""Decoding many latent points at once (the decoded-image map) as a few large matrix products.

The decoder's first layer maps a 2-D code to a 7x7x64 map; the two transposed convolutions
after it are linear maps whose matrices are mostly structural zeros (a tap that lands in the
cropped border, an input row that cannot reach an output row).  :class:`BatchDecoder` computes
the model's decode in float32, with two changes of *how*, none of *what*:

* each transposed convolution is a product with its dense matrix, cut into bands of output
  rows, each multiplied only by the input rows that can reach it;
* units that are zero at every point of the batch (ReLUs dead over the whole region asked for;
  on the bundled model about two thirds of the first layer over the region of the codes) are
  left out of the product, since they add exactly nothing.

The products stay in float32 on purpose.  bf16 operands (8-bit mantissa) put an error of about
0.4 % of the *terms* into every sum, and the decoder's sums cancel: on the bundled model the
clamped pixels were off by up to 0.01 over the codes' region, 0.04 over [-20, 20]^2 and 0.95
(wholly wrong) over [-1000, 1000]^2, the error growing with the distance from the origin.
Every region the map can show must be drawn within 0.01, so no region may use them.

Small batches go through the model itself, and so does every point whose decode is not finite
(a NaN or infinite code, or one so large that the activations overflow): such a point gets
exactly what the model gives, and never changes what the other points of the batch get.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from .model import CAE

# Below this many points the model's own convolutions are faster (measured with the earlier bf16
# products; not re-measured for float32, the shared 2-core machine being too busy to tell).
SMALL_BATCH = 16
MIN_BAND_COLUMNS = 100  # merge output rows until a band has this many columns (GEMM efficiency)
# Leaving dead units out costs a gather of their weight rows and activation columns; it pays
# while at most these fractions of the units are live.  Measured with the float32 products, one
# thread, 32 x 32 grids on the bundled model: the second layer's threshold 0.5 -> 0.9 took the
# test codes' region from 214 to 185 ms and a unit square from 142 to 118 ms (there 67 % of its
# units are live); [-1000, 1000]^2 and 16 x 16 grids were unchanged (335 and 51 ms).
SKIP_FIRST, SKIP_SECOND = 0.9, 0.9


@dataclass(frozen=True)
class _Band:
    rows: tuple[int, int]  # input units [start, stop) that reach this band (channels-last order)
    cols: tuple[int, int]  # output units [start, stop) of the band


class _TransposedConvMatrix:
    """A ConvTranspose2d on an m x m map as a dense (in_units, out_units) matrix, channels-last
    (unit index = (row * width + column) * channels + channel) on both sides."""

    def __init__(self, layer: nn.ConvTranspose2d, in_size: int, out_size: int) -> None:
        ci, co, k, _ = layer.weight.shape
        s, p = layer.stride[0], layer.padding[0]
        if (in_size - 1) * s + k - 2 * p != out_size:
            raise ValueError(f"layer maps {in_size} to {(in_size - 1) * s + k - 2 * p}, "
                             f"not {out_size}")
        taps = layer.weight.detach().float().permute(0, 2, 3, 1)  # (ci, ky, kx, co)
        dense = torch.zeros(in_size, in_size, ci, out_size, out_size, co, device=taps.device)
        # One slice per input position: 134 ms for both layers single-threaded, against 291 ms
        # for one big gather (which only wins on a machine too busy for many small parallel ops).
        for u in range(in_size):
            y0, y1 = max(0, s * u - p), min(out_size, s * u - p + k)
            for v in range(in_size):
                x0, x1 = max(0, s * v - p), min(out_size, s * v - p + k)
                dense[u, v, :, y0:y1, x0:x1, :] = taps[:, y0 + p - s * u:y1 + p - s * u,
                                                       x0 + p - s * v:x1 + p - s * v, :]
        self.matrix = dense.reshape(in_size * in_size * ci, out_size * out_size * co)
        self.bias = layer.bias.detach().float().repeat(out_size * out_size)  # channels-last
        in_row, out_row = in_size * ci, out_size * co  # units per image row
        group = s * max(1, math.ceil(MIN_BAND_COLUMNS / (s * out_row)))  # whole phases per band
        self.bands: list[_Band] = []
        for y_start in range(0, out_size, group):
            ys = range(y_start, min(out_size, y_start + group))
            reach = [u for u in range(in_size) if any(0 <= y + p - s * u < k for y in ys)]
            self.bands.append(_Band((reach[0] * in_row, (reach[-1] + 1) * in_row),
                                    (ys[0] * out_row, (ys[-1] + 1) * out_row)))
        self.band_rows = torch.tensor([b.rows for b in self.bands], device=self.matrix.device)

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
    :func:`cae.model.decode_images` up to float32 rounding.  Built once per set of weights (it
    holds its own copy)."""

    dtype = torch.float32  # the precision of the products (see the module docstring)

    def __init__(self, model: CAE) -> None:
        self.model = copy.deepcopy(model).eval()
        cfg = self.model.config
        q, h, n = cfg.image_size // 4, cfg.image_size // 2, cfg.image_size
        first, second, third = self.model.decoder[0], self.model.decoder[2], self.model.decoder[4]
        with torch.no_grad():
            self.first_weight = first.weight.permute(0, 2, 3, 1).reshape(cfg.latent_dim, -1).float()
            self.first_bias = first.bias.float().repeat(q * q)
            self.second = _TransposedConvMatrix(second, q, h)
            self.third = _TransposedConvMatrix(third, h, n)

    @torch.no_grad()
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        z = z.float().reshape(z.shape[0], -1)
        if z.shape[0] < SMALL_BATCH:
            return self.model.decode(z).clamp_(0.0, 1.0)
        pre = torch.addmm(self.first_bias, z, self.first_weight)
        live = _live_units(pre, SKIP_FIRST)
        h = pre if live is None else pre.index_select(1, live)
        h = self.second(h.relu_(), live).relu_()
        live = _live_units(h, SKIP_SECOND)
        out = self.third(h if live is None else h[:, live], live)
        bad = torch.nonzero(~torch.isfinite(out).all(1)).flatten()
        if len(bad):  # a structural zero times inf is NaN here, not what the convolution gives
            out[bad] = self.model.decode(z[bad]).flatten(1)
        n = self.model.config.image_size
        return out.clamp_(0.0, 1.0).reshape(-1, 1, n, n)


def _live_units(h: torch.Tensor, below: float) -> torch.Tensor | None:
    """Sorted indices of the columns of ``h`` positive somewhere (the rest are zero everywhere
    after a ReLU), or None where more than the fraction ``below`` of them are.  A column that is
    NaN somewhere counts as live, so a NaN point never removes a unit the others need."""
    live = torch.nonzero(~(h.amax(0) <= 0)).flatten()
    return live if len(live) <= below * h.shape[1] else None
