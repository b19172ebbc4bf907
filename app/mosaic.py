"""The decoded-image map: an N x N mosaic of what the decoder draws over the visible region."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from cae.batch_decode import BatchDecoder


def grid_centres(x0: float, x1: float, y0: float, y1: float, n: int) -> np.ndarray:
    """(n*n, 2) centres of an n x n grid over the rectangle, row by row from the bottom (y0)."""
    xs = x0 + (np.arange(n) + 0.5) * (x1 - x0) / n
    ys = y0 + (np.arange(n) + 0.5) * (y1 - y0) / n
    gx, gy = np.meshgrid(xs, ys)
    return np.column_stack([gx.ravel(), gy.ravel()]).astype(np.float32)


CHUNK = 256  # tiles decoded at a time: a cancel takes effect within one chunk


def mosaic(decoder: BatchDecoder, x0: float, x1: float, y0: float, y1: float, n: int,
           cancelled: Callable[[], bool] = lambda: False) -> np.ndarray | None:
    """(n*28, n*28) float image, row-major with row 0 at y0 (pyqtgraph's y axis points up), so
    each tile is the decode of its cell's centre, drawn the right way up.  None if cancelled."""
    centres = torch.from_numpy(grid_centres(x0, x1, y0, y1, n))
    parts = []
    for start in range(0, len(centres), CHUNK):
        if cancelled():
            return None
        parts.append(decoder(centres[start:start + CHUNK])[:, 0].numpy())
    tiles = np.concatenate(parts)  # (n*n, 28, 28)
    size = tiles.shape[-1]
    tiles = tiles[:, ::-1, :].reshape(n, n, size, size)  # flip each tile: image rows go down
    return tiles.transpose(0, 2, 1, 3).reshape(n * size, n * size).copy()


def tile_at(image: np.ndarray, n: int, row: int, col: int) -> np.ndarray:
    """The decoded tile at grid cell (row from the bottom, column), the right way up."""
    size = image.shape[0] // n
    return image[row * size:(row + 1) * size, col * size:(col + 1) * size][::-1]
