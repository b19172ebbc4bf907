"""The decoded-image map: a grid of what the decoder draws over a region of the code plane, as
one image (the window's mosaic over the visible region, the exports' over theirs)."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def grid_centres(x0: float, x1: float, y0: float, y1: float, cols: int,
                 rows: int | None = None) -> np.ndarray:
    """(rows*cols, 2) centres of a cols x rows grid over the rectangle (rows defaults to cols),
    row by row from the bottom (y0)."""
    rows = cols if rows is None else rows
    xs = x0 + (np.arange(cols) + 0.5) * (x1 - x0) / cols
    ys = y0 + (np.arange(rows) + 0.5) * (y1 - y0) / rows
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()]).astype(np.float32)


def square_rows(cols: int, width_px: float, height_px: float) -> int:
    """Rows that make ``cols`` columns of tiles square on a screen area of this size: a digit
    stretched to the plot's shape reads as another digit."""
    if width_px <= 0 or height_px <= 0:
        return cols
    return max(1, round(cols * height_px / width_px))


CHUNK = 256  # tiles decoded at a time: a cancel takes effect within one chunk


def mosaic(decoder: Callable[[torch.Tensor], torch.Tensor], x0: float, x1: float, y0: float,
           y1: float, cols: int, rows: int | None = None,
           cancelled: Callable[[], bool] = lambda: False) -> np.ndarray | None:
    """(rows*28, cols*28) float image, row-major with row 0 at y0 (a plot's y axis points up),
    so each tile is the decode of its cell's centre, drawn the right way up; ``decoder`` gives
    clamped images (N, 1, 28, 28) for codes (a :class:`cae.batch_decode.BatchDecoder`).  None
    if cancelled."""
    rows = cols if rows is None else rows
    centres = torch.from_numpy(grid_centres(x0, x1, y0, y1, cols, rows))
    parts = []
    for start in range(0, len(centres), CHUNK):
        if cancelled():
            return None
        with torch.no_grad():
            parts.append(decoder(centres[start:start + CHUNK])[:, 0].float().numpy())
    tiles = np.concatenate(parts)  # (rows*cols, 28, 28)
    size = tiles.shape[-1]
    tiles = tiles[:, ::-1, :].reshape(rows, cols, size, size)  # flip each tile: image rows go down
    return tiles.transpose(0, 2, 1, 3).reshape(rows * size, cols * size).copy()
