"""The lecture's convolutional autoencoder with a 2-D latent code, padded exactly as TensorFlow pads.

Encoder: conv 3x3x32 SAME ReLU -> max-pool 2/2 -> conv 3x3x64 SAME ReLU -> max-pool 2/2 ->
conv 7x7x2 VALID (no bias).  Decoder: transposed conv 7x7x64 VALID ReLU -> transposed conv
14x14x32 stride 2 SAME ReLU -> transposed conv 28x28x1 stride 2 SAME (linear output).

TensorFlow's SAME pads a total of ``max((ceil(n/s) - 1) * s + k - n, 0)`` pixels, the smaller half
before.  For every layer of this model that total is even, so a symmetric PyTorch padding
reproduces it exactly; :func:`tf_same_padding` computes it and the constructor refuses a
configuration where it would not be symmetric rather than silently differ from TensorFlow.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .errors import DataError


@dataclass(frozen=True)
class CAEConfig:
    """Describes the model; stored in every checkpoint and used to rebuild it."""

    image_size: int = 28
    channels: tuple[int, int] = (32, 64)
    latent_dim: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if self.image_size <= 0 or self.image_size % 4:
            raise ValueError(f"image_size must be a positive multiple of 4, got {self.image_size}")
        if len(self.channels) != 2 or min(self.channels) <= 0 or self.latent_dim <= 0:
            raise ValueError(f"invalid channels {self.channels} or latent_dim {self.latent_dim}")

    def to_dict(self) -> dict:
        """A JSON-ready dict (tuples become lists)."""
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    def check_images(self, shape: tuple[int, ...]) -> None:
        """Refuse images of another size, with a message that says so (where they would
        otherwise fail deep inside a convolution, or give codes of the wrong dimension)."""
        n = self.image_size
        if tuple(shape[-2:]) != (n, n):
            h, w = shape[-2:]
            raise DataError(f"the images are {w} x {h} px; this model reads {n} x {n} px images")

    @classmethod
    def from_dict(cls, d: dict) -> CAEConfig:
        """Rebuild from :meth:`to_dict`; unknown keys are an error, not silently dropped."""
        unknown = set(d) - {"image_size", "channels", "latent_dim"}
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**d)


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding TensorFlow's SAME uses for a forward conv on ``size`` pixels."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def _symmetric(pad: tuple[int, int], what: str) -> int:
    if pad[0] != pad[1]:
        raise ValueError(f"{what}: TensorFlow SAME padding {pad} is asymmetric; not supported")
    return pad[0]


class CAE(nn.Module):
    """Fully convolutional autoencoder: ``encode`` maps (N,1,28,28) to (N,2), ``decode`` back."""

    def __init__(self, config: CAEConfig | None = None) -> None:
        super().__init__()
        self.config = config or CAEConfig()
        n = self.config.image_size
        c1, c2 = self.config.channels
        q, h = n // 4, n // 2  # 7 and 14 for MNIST
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=_symmetric(tf_same_padding(n, 3, 1), "conv1")),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c1, c2, 3, padding=_symmetric(tf_same_padding(h, 3, 1), "conv2")),
            nn.ReLU(),
            nn.MaxPool2d(2, 2),
            nn.Conv2d(c2, self.config.latent_dim, q, bias=False),  # VALID: q x q -> 1 x 1
        )
        # A transposed conv with TF SAME is the adjoint of the forward SAME conv that maps the
        # larger size onto the smaller one, so its padding is that conv's padding.
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(self.config.latent_dim, c2, q),  # VALID: 1 x 1 -> q x q
            nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, h, stride=2,
                               padding=_symmetric(tf_same_padding(h, h, 2), "deconv2")),
            nn.ReLU(),
            nn.ConvTranspose2d(c1, 1, n, stride=2,
                               padding=_symmetric(tf_same_padding(n, n, 2), "deconv1")),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 1, H, W) in [0, 1] -> latent codes (N, latent_dim)."""
        return self.encoder(x).flatten(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latent codes (N, latent_dim) -> images (N, 1, H, W), unclamped (the loss sees raw values)."""
        return self.decoder(z.reshape(z.shape[0], self.config.latent_dim, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The lecture's loss: mean squared error per pixel on [0, 1] images."""
    return torch.mean((x_hat - x) ** 2)


@torch.no_grad()
def decode_images(model: CAE, z: torch.Tensor) -> torch.Tensor:
    """Decode for display: eval mode, no graph, clamped to [0, 1]."""
    model.eval()
    return model.decode(z).clamp_(0.0, 1.0)
