"""Decoding many latent points at once (the decoded-image map) as small matrix products.

The decoder's first layer maps a 2-D code to a 7x7x64 map; the two transposed convolutions
after it are linear maps whose matrices are mostly structural zeros (a tap that lands in the
cropped border, an input row that cannot reach an output row), and whose inputs are mostly zero
(ReLUs).  :class:`BatchDecoder` computes the model's decode in float32, with four changes of
*how*, none of *what*:

* the batch is cut into groups of neighbouring codes, and each group is multiplied only by the
  weight rows of the units live somewhere in it: a unit that is zero at every point of a group
  adds exactly nothing there.  Over a small patch of the code plane few units are live (bundled
  model, 32 x 32 grid over its test codes: 467 of the first layer's 3,136 units and 1,207 of
  the second's 6,272 per group of 128 codes, against 1,526 and 4,431 over the whole grid);
* those rows are copied out of the kernel itself (see :class:`_TransposedConvMatrix`), so no
  dense matrix is ever built;
* each product is cut into bands of output rows, each multiplied only by the input rows that
  can reach it;
* the scratch memory is kept from decode to decode (see :class:`_Workspace`).

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
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from .model import CAE

# Below this many points the model's own convolutions are faster (measured with the earlier bf16
# products; not re-measured for float32, the shared 2-core machine being too busy to tell).
SMALL_BATCH = 16
MIN_BAND_COLUMNS = 100  # merge output rows until a band has this many columns (GEMM efficiency)
# Points per group.  Smaller groups have fewer live units per point but copy more weight rows in
# all: 32 x 32 grids over the bundled model's test codes, each size in its own processes,
# alternated: 32, 64, 128 and 256 all took 77-110 ms, within the noise of each other.
GROUP = 128
# Scratch buffers up to this size are kept from decode to decode (see _Workspace).
KEEP_BYTES = 32 * 2**20

_Take = Callable[[str, tuple[int, ...]], torch.Tensor]  # (name, shape) -> uninitialised float32


class _Workspace:
    """Scratch memory kept from one decode to the next, across decoders too (a training run
    builds one per snapshot): fresh memory costs a page fault per 4 kB, and whether the
    allocator hands back memory it already has depends on what the process did before.  A 32 x
    32 grid took 80-89 ms with 6,000-13,000 page faults and 60-70 ms without them.

    One decode at a time uses it; a decode on another thread meanwhile gets fresh memory.  Only
    buffers up to ``KEEP_BYTES`` each are kept (weight rows beyond that are multiplied in
    chunks), so what it holds stays bounded: for the bundled model 40 MB after a grid over the
    codes' region, 41 MB after one over [-1000, 1000]^2."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffers: dict[str, torch.Tensor] = {}

    @contextmanager
    def borrow(self, device: torch.device) -> Iterator[_Take]:
        """``take(name, shape)``: the buffer called ``name``, reshaped, for this decode only."""
        if device.type != "cpu" or not self._lock.acquire(blocking=False):
            yield lambda name, shape: torch.empty(shape, device=device)
            return
        try:
            yield self._take
        finally:
            self._lock.release()

    def _take(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        size = math.prod(shape)
        buffer = self._buffers.get(name)
        if buffer is None or buffer.numel() < size:
            buffer = torch.empty(size)
            if 4 * size <= KEEP_BYTES:
                self._buffers[name] = buffer
        return buffer[:size].view(shape)


_WORKSPACE = _Workspace()


@dataclass(frozen=True)
class _Band:
    rows: tuple[int, int]  # input units [start, stop) that reach this band (channels-last order)
    cols: tuple[int, int]  # output units [start, stop) of the band


class _TransposedConvMatrix:
    """A ConvTranspose2d on an m x m map as a (in_units, out_units) matrix, channels-last (unit
    index = (row * width + column) * channels + channel) on both sides, of which a product only
    ever reads the rows of the live units.

    The matrix is never built (the second layer's is 3,136 x 6,272, 78 MB, whose page faults
    alone took 27 ms per build).  Its row for input unit (u, v, c) is the kernel's slice for
    channel c shifted to (u, v) and cropped: an out x out block of the zero-padded kernel (for
    the second layer 64 x 26 x 26 x 32 values, 5.5 MB, built in 1-3 ms).  All blocks are one
    strided view of it, so copying the live rows out is one ``index_select`` (0.2 ms for 467
    rows).  An earlier layout kept each row contiguous in a 21 MB buffer: its build took 2-10 ms,
    its copies were no faster.
    """

    def __init__(self, layer: nn.ConvTranspose2d, in_size: int, out_size: int, name: str) -> None:
        self.name = name  # of its output buffer
        ci, co, k, _ = layer.weight.shape
        s, p = layer.stride[0], layer.padding[0]
        if (in_size - 1) * s + k - 2 * p != out_size:
            raise ValueError(f"layer maps {in_size} to {(in_size - 1) * s + k - 2 * p}, "
                             f"not {out_size}")
        if p > s * (in_size - 1):
            raise ValueError(f"padding {p} is wider than the layer's reach")
        # Input (u, v) adds kernel tap y + p - s*u to output row y: in a kernel padded by
        # s*(m-1) - p before, that is tap y + s*u' with u' = m-1-u, and likewise for columns.
        # So unit (u, v, c)'s row is the out x out block of the padded kernel at (s*u', s*v'),
        # channel c: out runs of out*co values, a padded line apart.
        size, offset = out_size + s * (in_size - 1), s * (in_size - 1) - p
        padded = torch.zeros(ci, size, size, co, device=layer.weight.device)
        padded[:, offset:offset + k, offset:offset + k] = layer.weight.detach().float().permute(
            0, 2, 3, 1)  # (ci, ky, kx, co)
        line = size * co
        self._blocks = padded.reshape(-1).as_strided(  # [start] = the block from that value on
            (padded.numel() - (out_size - 1) * line - out_size * co + 1, out_size, out_size * co),
            (1, line, 1))
        self._steps = (size * line, s * line, s * co)  # per channel, per u', per v'
        self._shape = (in_size, ci)
        self.out_units = out_size * out_size * co
        self.in_units = in_size * in_size * ci
        self.bias = layer.bias.detach().float().repeat(out_size * out_size)  # channels-last
        in_row, out_row = in_size * ci, out_size * co  # units per image row
        group = s * max(1, math.ceil(MIN_BAND_COLUMNS / (s * out_row)))  # whole phases per band
        self.bands: list[_Band] = []
        for y_start in range(0, out_size, group):
            ys = range(y_start, min(out_size, y_start + group))
            reach = [u for u in range(in_size) if any(0 <= y + p - s * u < k for y in ys)]
            self.bands.append(_Band((reach[0] * in_row, (reach[-1] + 1) * in_row),
                                    (ys[0] * out_row, (ys[-1] + 1) * out_row)))
        self.band_rows = torch.tensor([b.rows for b in self.bands], device=padded.device)

    def rows(self, units: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """The matrix's rows for these input units, (len(units), out_units), into ``out`` where
        one is given."""
        m, ci = self._shape
        u, v, c = units // (m * ci), units // ci % m, units % ci
        start = c * self._steps[0] + (m - 1 - u) * self._steps[1] + (m - 1 - v) * self._steps[2]
        shape = (len(units), self.out_units)
        if out is None:
            return torch.index_select(self._blocks, 0, start).view(shape)
        torch.index_select(self._blocks, 0, start, out=out.view(len(units), *self._blocks.shape[1:]))
        return out

    def __call__(self, x: torch.Tensor, live: torch.Tensor, take: _Take) -> torch.Tensor:
        """layer(x) + bias, (out_units, N), for ``x`` (len(live), N): the input units ``live``
        (sorted indices), every other one being zero at every point.  Units by points, so that
        each band's output is one contiguous block.  The rows are copied in chunks that fit in
        ``KEEP_BYTES`` (an untrained model has half its units live everywhere)."""
        out = take(self.name, (self.out_units, x.shape[1]))
        chunk = max(1, KEEP_BYTES // (4 * self.out_units))
        for start in range(0, max(1, len(live)), chunk):
            units = live[start:start + chunk]
            matrix = self.rows(units, take("rows", (len(units), self.out_units)))
            bounds = torch.searchsorted(units, self.band_rows) + start
            for band, (lo, hi) in zip(self.bands, bounds.tolist()):
                c0, c1 = band.cols
                a, b = matrix[lo - start:hi - start, c0:c1].T, x[lo:hi]
                if start:
                    out[c0:c1].addmm_(a, b)
                else:
                    torch.mm(a, b, out=out[c0:c1])
        return out.add_(self.bias[:, None])


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
            self.second = _TransposedConvMatrix(second, q, h, "second")
            self.third = _TransposedConvMatrix(third, h, n, "third")

    @torch.no_grad()
    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        z = z.float().reshape(z.shape[0], -1)
        n = self.model.config.image_size
        if z.shape[0] < SMALL_BATCH:
            return self.model.decode(z).clamp_(0.0, 1.0)
        out = torch.empty(z.shape[0], n * n, device=z.device)
        finite = torch.isfinite(z).all(1)
        if not finite.all():  # what the model gives a NaN or infinite code (every unit live)
            out[~finite] = self.model.decode(z[~finite]).clamp_(0.0, 1.0).flatten(1)
        index = torch.nonzero(finite).flatten()
        with _WORKSPACE.borrow(z.device) as take:
            for group in _neighbourhoods(z[index], GROUP):
                if len(group):
                    out.index_copy_(0, index[group], self._decode(z[index[group]], take))
        return out.reshape(-1, 1, n, n)

    def _decode(self, z: torch.Tensor, take: _Take) -> torch.Tensor:
        """(N, pixels) clamped decodes of finite codes ``z`` that lie close together, computed in
        memory from ``take``."""
        pre = torch.addmm(self.first_bias[:, None], self.first_weight.T, z.T,
                          out=take("first", (self.second.in_units, len(z))))  # units x points
        live = torch.nonzero(~(pre.amax(1) <= 0)).flatten()  # NaN (an overflow) counts as live
        x = torch.index_select(pre, 0, live, out=take("first live", (len(live), len(z))))
        h = self.second(x.relu_(), live, take).relu_()
        live = torch.nonzero(~(h.amax(1) <= 0)).flatten()
        x = torch.index_select(h, 0, live, out=take("second live", (len(live), len(z))))
        out = self.third(x, live, take).T
        # A point with an infinite or NaN pixel has a sum that is not finite (one whose pixels
        # only add up past float32's range is decoded by the model too, to no harm).
        bad = torch.nonzero(~torch.isfinite(out.sum(1))).flatten()
        if len(bad):  # a structural zero times inf is NaN here, not what the convolution gives
            out[bad] = self.model.decode(z[bad]).flatten(1)
        return out.clamp_(0.0, 1.0)


def _neighbourhoods(z: torch.Tensor, size: int) -> list[torch.Tensor]:
    """Indices of ``z`` in groups of at most ``size`` points that lie close together: the batch
    cut in two at the median of its wider coordinate, again and again (a k-d tree's leaves)."""
    groups, todo = [], [torch.arange(z.shape[0])]
    while todo:
        index = todo.pop()
        if len(index) <= size:
            groups.append(index)
            continue
        points = z[index]
        axis = int((points.amax(0) - points.amin(0)).argmax())
        order = index[torch.argsort(points[:, axis], stable=True)]
        half = len(order) // 2
        todo += [order[half:], order[:half]]
    return groups
