"""The model's forward pass as the training fast path runs it: the same function, computed faster.

Measured per layer on a 2-core Zen 5 CPU (batch 128, forward + backward; ``python -m benchmarks``
shows the whole step):

* bf16 autocast makes the convolutions 1.6-3x faster, except the output layer (transposed conv,
  28x28 kernel, one output channel), where oneDNN's bf16 kernel is 2x *slower* than fp32 (37 ms
  against 18 ms).  Which precision that layer runs in on a CPU is therefore timed once per
  process and device, at the first batch (a fraction of a second), not assumed;
* PyTorch's CPU 2x2 max-pool takes 8 ms forward + backward on the first pooling layer; four
  strided slices and a mask per slot (:class:`MaxPool2x2`) take 5 ms, with bit-identical output
  and gradient (ties go to the first maximum in scan order, as max_pool2d's indices do).

On CUDA the fast path is plain bf16 autocast over the whole model.
"""
from __future__ import annotations

import copy
import time

import torch
from torch import nn

from .model import CAE

_OUTPUT_IN_BF16: dict[str, bool] = {}  # device -> bf16 was the faster


def _output_in_bf16(layer: nn.Module, shape: torch.Size, device: torch.device) -> bool:
    """Whether ``layer`` trains faster under bf16 autocast than in fp32 on this CPU (timed)."""
    key = str(device)
    if key not in _OUTPUT_IN_BF16:
        probe = copy.deepcopy(layer).requires_grad_(True)
        x = torch.rand(shape, device=device, requires_grad=True)
        best = {}
        with torch.enable_grad():
            for bf16 in (False, True, False, True, False, True):
                t0 = time.perf_counter()
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    y = probe(x)
                y.float().sum().backward()
                best[bf16] = min(best.get(bf16, float("inf")), time.perf_counter() - t0)
        _OUTPUT_IN_BF16[key] = best[True] < best[False]
    return _OUTPUT_IN_BF16[key]


class MaxPool2x2(torch.autograd.Function):
    """max_pool2d(x, 2, 2) for even sizes, with max_pool2d's gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        a, b, c, d = x[..., ::2, ::2], x[..., ::2, 1::2], x[..., 1::2, ::2], x[..., 1::2, 1::2]
        out = torch.maximum(torch.maximum(a, b), torch.maximum(c, d))
        first = a == out
        second = (b == out) & ~first
        taken = first | second
        third = (c == out) & ~taken
        ctx.save_for_backward(first, second, third, ~(taken | third))
        ctx.shape = x.shape
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        first, second, third, fourth = ctx.saved_tensors
        out = grad.new_empty(ctx.shape)
        out[..., ::2, ::2] = grad * first
        out[..., ::2, 1::2] = grad * second
        out[..., 1::2, ::2] = grad * third
        out[..., 1::2, 1::2] = grad * fourth
        return out


def _is_pool_2x2(layer: nn.Module) -> bool:
    return (isinstance(layer, nn.MaxPool2d) and layer.kernel_size in (2, (2, 2))
            and layer.stride in (2, (2, 2)) and layer.padding in (0, (0, 0)) and not layer.ceil_mode)


def fast_encode(model: CAE, x: torch.Tensor, bf16: bool) -> torch.Tensor:
    """``model.encode(x)`` on the fast path (float32 codes)."""
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        for layer in model.encoder:
            even = x.shape[-1] % 2 == 0 and x.shape[-2] % 2 == 0
            x = MaxPool2x2.apply(x) if x.device.type == "cpu" and even and _is_pool_2x2(layer) else layer(x)
    return x.flatten(1).float()


def fast_forward(model: CAE, x: torch.Tensor, bf16: bool) -> torch.Tensor:
    """``model(x)`` on the fast path (float32 output)."""
    z = fast_encode(model, x, bf16)
    *hidden, output = model.decoder
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        h = z.reshape(z.shape[0], model.config.latent_dim, 1, 1)
        for layer in hidden:
            h = layer(h)
        if x.device.type != "cpu" or (bf16 and _output_in_bf16(output, h.shape, x.device)):
            return output(h).float()
    return output(h.float())
