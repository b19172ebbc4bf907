"""Turn a drawing (or a photo of a digit) into an MNIST-style 28x28 image, MNIST's own way.

MNIST's recipe: crop the ink to its bounding box, scale it so the longer side is 20 px keeping the
aspect ratio with an area (anti-aliasing) filter, paste it into a 28x28 field, then shift it so
the intensity centre of mass lands on the field's centre.  On MNIST itself that centre is pixel
(14, 14) in row/column index coordinates (mean over the training set: 14.00 +- 0.29), which a
whole-pixel shift reaches to within half a pixel.  Fashion-MNIST's own recipe frames a product
differently: its longer side fills the 28 px and the box is centred (see :data:`FRAMINGS`).  Any
other folder's framing is measured from its own images (:func:`measure_framing`), at their size.
Numpy only: no Qt, no torch.
"""
from __future__ import annotations

import functools
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .errors import CAEError

if TYPE_CHECKING:
    from .data import Dataset

FIELD = 28
BOX = 20
CENTRE = 14.0
INK_THRESHOLD = 0.05  # below this a pixel counts as background when finding the bounding box


@dataclass(frozen=True)
class Framing:
    """How a dataset's images sit in their ``field`` x ``field`` px: the longer side of the ink
    scaled to ``box`` px, then the intensity centre of mass (``centre_of_mass``) or the box
    centred."""

    box: int
    centre_of_mass: bool
    field: int = FIELD

    def scaled_to(self, field: int) -> Framing:
        """The same proportions in another field (a model of other images with nothing better
        known of them)."""
        return Framing(max(1, min(field, round(self.box * field / self.field))),
                       self.centre_of_mass, field)


MNIST_FRAMING = Framing(BOX, True)
# Fashion-MNIST's products fill the field: "resizing the longest edge of the image to 28 ...
# extending the shortest edge to 28 and put the image to the center" (its README).  Drawn with
# MNIST's 20-px box, a pair of trousers came out smaller than every training image.
FRAMINGS = {"mnist": MNIST_FRAMING, "fashion-mnist": Framing(FIELD, False)}


class EmptyDrawingError(CAEError):
    """There is no ink to preprocess."""


@dataclass(frozen=True)
class Preprocessed:
    """The steps, so a user can see what the model sees."""

    cropped: np.ndarray  # the ink's bounding box at the drawing's resolution
    scaled: np.ndarray  # longer side the framing's box (MNIST: 20 px)
    image: np.ndarray  # (field, field) float32 in [0, 1], ink = 1: the model's input
    shift: tuple[int, int]  # rows, columns moved to centre the mass


@functools.lru_cache(maxsize=64)  # (a folder of pictures asks for the same few again and again)
def _area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights: each output pixel averages the input it covers (fractional
    overlap)."""
    scale = n_in / n_out
    lo = np.arange(n_out)[:, None] * scale
    hi = lo + scale
    idx = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, idx + 1) - np.maximum(lo, idx), 0.0, None)
    weights = overlap / scale
    weights.flags.writeable = False  # (shared by every caller)
    return weights


def resize_area(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-filter resampling (like OpenCV's INTER_AREA / PIL's BOX) for any scale factor."""
    image = np.asarray(image, np.float64)
    return _area_matrix(image.shape[0], height) @ image @ _area_matrix(image.shape[1], width).T


def grey_levels(rgba: np.ndarray) -> np.ndarray:
    """An (h, w, 4) RGBA picture in [0, 1] as grey levels in [0, 1], greyed as Qt's qGray does.
    Where it is transparent it lies on white if what is drawn on it is dark, on black if light:
    a black digit on a transparent background (a drawing program's export) had read as black on
    black, blank."""
    rgba = np.asarray(rgba, np.float64)
    grey = rgba[..., :3] @ np.array([11, 16, 5]) / 32
    alpha = rgba[..., 3]
    if alpha.min() == 1.0:
        return grey
    drawn = (grey * alpha).sum() / max(alpha.sum(), 1e-9)  # the drawn pixels' mean grey
    return grey * alpha + (1.0 if drawn < 0.5 else 0.0) * (1.0 - alpha)


def normalize_ink(image: np.ndarray) -> np.ndarray:
    """Grey image in [0, 1] -> ink = 1 on background = 0; dark ink on a light page is inverted
    (decided by the border, which is background in any sensible picture of a digit)."""
    image = np.clip(np.asarray(image, np.float64), 0.0, 1.0)
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    if np.median(border) > 0.5:
        image = 1.0 - image
    return image


def _extent(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last index along axis 1 where each row of ``ink`` (N, n) is true."""
    n = ink.shape[1]
    return ink.argmax(1), n - 1 - ink[:, ::-1].argmax(1)


def measure_framing(images: np.ndarray, sample: int = 1000) -> Framing:
    """How a dataset's images (N, n, n), uint8 or [0, 1], are framed, read off the first
    ``sample`` with ink: the median of their ink's longer side, and whether their centres of
    mass or their boxes' centres sit closer to the field's centre (MNIST: 20 px, mass-centred,
    0.4 px off against 1.9; Fashion-MNIST: 28 px, box-centred, 0.4 against 2.0).  A drawing for
    a model of an IDX folder (letters, say) is then framed like its training images, not like
    MNIST's digits.  Ink is what stands a quarter of the way from an image's background (the
    median of its border) to its brightest pixel, so faint noise does not count as ink."""
    n = images.shape[-1]
    x = np.asarray(images[:sample], np.float32)
    if images.dtype == np.uint8:
        x /= 255.0
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
    background = np.median(border, axis=1)[:, None, None]
    x = np.clip(x - background, 0.0, None)
    top = x.max((1, 2), keepdims=True)
    ink = (x > np.maximum(INK_THRESHOLD, 0.25 * top)) & (top > INK_THRESHOLD)
    rows, cols = ink.any(2), ink.any(1)
    has = rows.any(1)
    if not has.any():
        return MNIST_FRAMING.scaled_to(n)
    x, rows, cols = x[has], rows[has], cols[has]
    (top_row, bottom), (left, right) = _extent(rows), _extent(cols)
    box = int(np.median(np.maximum(bottom - top_row, right - left) + 1))
    idx = np.arange(n)
    mass = x.sum((1, 2))
    mass_r, mass_c = x.sum(2) @ idx / mass, x.sum(1) @ idx / mass
    mass_off = np.mean((mass_r - n / 2) ** 2 + (mass_c - n / 2) ** 2)
    box_off = np.mean(((top_row + bottom - (n - 1)) / 2) ** 2
                      + ((left + right - (n - 1)) / 2) ** 2)
    return Framing(box, bool(mass_off < box_off), n)


_measured: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # dataset -> its framing


def dataset_framing(dataset: Dataset) -> Framing:
    """How a dataset's images are framed: a named dataset's recipe, else measured from its
    training images (once per dataset: a model file records it at every autosave)."""
    if dataset.name in FRAMINGS:
        return FRAMINGS[dataset.name]
    if dataset not in _measured:
        _measured[dataset] = measure_framing(dataset.train_images)
    return _measured[dataset]


def framing_from(recorded: object, field: int) -> Framing | None:
    """The framing a model file records (``metadata["framing"]``) for images of ``field`` px,
    or None where it records none or one that does not make sense (the file is the user's)."""
    if not isinstance(recorded, dict) or set(recorded) != {"box", "centre_of_mass", "field"}:
        return None
    box, mass, n = recorded["box"], recorded["centre_of_mass"], recorded["field"]
    if type(box) is not int or type(n) is not int or type(mass) is not bool or n != field \
            or not 0 < box <= n:
        return None
    return Framing(box, mass, n)


def preprocess(ink: np.ndarray, framing: Framing = MNIST_FRAMING) -> Preprocessed:
    """A drawing (H, W) in [0, 1] with ink = 1 -> the model's input (28x28, or the framing's
    field) framed as the dataset's images are (MNIST's by default), and its steps.

    Raises EmptyDrawingError when there is no ink.
    """
    ink = np.nan_to_num(np.clip(np.asarray(ink, np.float64), 0.0, 1.0))
    if ink.ndim != 2:
        raise CAEError(f"expected a grey image (H, W), got shape {ink.shape}")
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    if len(rows) == 0:
        raise EmptyDrawingError("draw a digit")
    cropped = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = cropped.shape
    box = framing.box
    if h >= w:
        sh, sw = box, max(1, int(round(w * box / h)))
    else:
        sh, sw = max(1, int(round(h * box / w))), box
    scaled = np.clip(resize_area(cropped, sh, sw), 0.0, 1.0)
    n = framing.field
    field = np.zeros((n, n))
    top, left = (n - sh) // 2, (n - sw) // 2
    field[top:top + sh, left:left + sw] = scaled
    if not framing.centre_of_mass:
        return Preprocessed(cropped.astype(np.float32), scaled.astype(np.float32),
                            field.astype(np.float32), (0, 0))
    mass = field.sum()
    idx = np.arange(n)
    com_r = (field.sum(axis=1) @ idx) / mass
    com_c = (field.sum(axis=0) @ idx) / mass
    # Whole-pixel shift towards the centre (MNIST's 14 in 28), limited so no ink leaves the field.
    centre = CENTRE * n / FIELD
    dr = int(np.clip(round(centre - com_r), -top, n - (top + sh)))
    dc = int(np.clip(round(centre - com_c), -left, n - (left + sw)))
    image = np.roll(field, (dr, dc), axis=(0, 1))
    return Preprocessed(cropped.astype(np.float32), scaled.astype(np.float32),
                        image.astype(np.float32), (dr, dc))


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, column) intensity centre of mass in index coordinates."""
    image = np.asarray(image, np.float64)
    idx_r, idx_c = np.arange(image.shape[0]), np.arange(image.shape[1])
    mass = image.sum()
    return float(image.sum(axis=1) @ idx_r / mass), float(image.sum(axis=0) @ idx_c / mass)
