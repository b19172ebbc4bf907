"""The model's forward pass as the training fast path runs it: the same function, computed faster.

Measured per layer on a 2-core Zen 5 CPU (batch 128, forward + backward; ``python -m benchmarks``
shows the whole step):

* bf16 autocast makes the convolutions 1.6-3x faster, except two transposed convolutions where
  oneDNN's bf16 kernels are slower than fp32.  The decoder's first layer (1x1 -> 7x7: 14.1
  against 5.2 ms) runs in fp32 on a CPU.  The output layer (28x28 kernel, one output channel:
  oneDNN takes 84 ms in fp32 and 134 ms in bf16 at batch 128 on one thread) runs as two matrix
  products in bf16 instead (:func:`transposed_conv_gemm`: 32 ms), the step's largest gain.
  The choice is a setting, never a timing, so a seed gives the same weights in every process;
* PyTorch's CPU 2x2 max-pool takes 8 ms forward + backward on the first pooling layer; four
  strided slices and a mask per slot (:class:`MaxPool2x2`) take 5 ms, with bit-identical output
  and gradient (ties go to the first maximum in scan order, as max_pool2d's indices do).

On CUDA the fast path is plain bf16 autocast over the whole model.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from .model import CAE


def max4(x: torch.Tensor) -> torch.Tensor:
    """max_pool2d(x, 2, 2) for even sizes as four strided maxima (NaN included: max_pool2d
    propagates it, and so does torch.maximum)."""
    top = torch.maximum(x[..., ::2, ::2], x[..., ::2, 1::2])
    return torch.maximum(top, torch.maximum(x[..., 1::2, ::2], x[..., 1::2, 1::2]))


class MaxPool2x2(torch.autograd.Function):
    """max_pool2d(x, 2, 2) for even sizes, with max_pool2d's exact output and gradient: each
    window's gradient goes to its first maximum in scan order, or, in a window holding NaN, to
    its last NaN (where max_pool2d's CPU kernel sends it)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        a, b, c, d = x[..., ::2, ::2], x[..., ::2, 1::2], x[..., 1::2, ::2], x[..., 1::2, 1::2]
        out = max4(x)
        first = a == out
        second = (b == out) & ~first
        taken = first | second
        third = (c == out) & ~taken
        fourth = ~(taken | third)
        if torch.isnan(out).any():  # rare (a diverging run): only then pay for the NaN masks
            nb, nc, nd = torch.isnan(b), torch.isnan(c), torch.isnan(d)
            has = torch.isnan(out)
            first = torch.where(has, torch.isnan(a) & ~(nb | nc | nd), first)
            second = torch.where(has, nb & ~(nc | nd), second)
            third = torch.where(has, nc & ~nd, third)
            fourth = torch.where(has, nd, fourth)
        ctx.save_for_backward(first, second, third, fourth)
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
            and layer.stride in (2, (2, 2)) and layer.padding in (0, (0, 0))
            and not layer.ceil_mode)


def _pool(x: torch.Tensor) -> torch.Tensor:
    """The 2x2 max-pool; without a graph (test loss, evaluation) the gradient's masks are not
    needed."""
    return MaxPool2x2.apply(x) if torch.is_grad_enabled() else max4(x)


def fast_encode(model: CAE, x: torch.Tensor, bf16: bool) -> torch.Tensor:
    """``model.encode(x)`` on the fast path (float32 codes).  On a CPU a ReLU followed by a 2x2
    max-pool runs after it instead, on a quarter of the values: relu(max) = max(relu), and the
    gradient is the same too (a window's maximum gets it in both orders, and none passes a
    ReLU where it is not positive).  A training step: 1,601 against 1,531 images/s (batch 128,
    two threads, alternated), outputs and gradients bit-identical."""
    layers = list(model.encoder)
    i = 0
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        while i < len(layers):
            layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
            cheap = x.device.type == "cpu" and x.shape[-1] % 2 == 0 and x.shape[-2] % 2 == 0
            if cheap and isinstance(layer, nn.ReLU) and after is not None and _is_pool_2x2(after):
                x, i = _pool(x).relu(), i + 2
            elif cheap and _is_pool_2x2(layer):
                x, i = _pool(x), i + 1
            else:
                x, i = layer(x), i + 1
    return x.flatten(1).float()


def fast_forward(model: CAE, x: torch.Tensor, bf16: bool) -> torch.Tensor:
    """``model(x)`` on the fast path (float32 output).  On a CPU the decoder's first layer
    (2 -> 7x7x64) runs in fp32, where oneDNN's bf16 kernel for it is 2.7x slower (14.1 against
    5.2 ms forward + backward at batch 128, one thread), and with ``bf16`` the output layer runs
    as :func:`transposed_conv_gemm`; elsewhere ``bf16`` is autocast over the whole model."""
    z = fast_encode(model, x, bf16)
    first, *hidden, output = model.decoder
    cpu = x.device.type == "cpu"
    h = z.reshape(z.shape[0], model.config.latent_dim, 1, 1)
    if cpu:
        h = first(h)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        if not cpu:
            h = first(h)
        for layer in hidden:
            h = layer(h)
        if not cpu:
            return output(h).float()
    if bf16 and isinstance(output, nn.ConvTranspose2d):
        return transposed_conv_gemm(output, h, torch.bfloat16)
    return output(h.float())


@lru_cache(maxsize=8)
def _gemm_plan(ci: int, co: int, k: int, s: int, p: int, n: int,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each entry of :func:`transposed_conv_gemm`'s two matrices comes from.

    ``index`` (ci*n, k*m*co): entry [(c, v), (ky, x, o)] is the flat position of the kernel tap
    weight[c, o, ky, x - s*v + p], or one past the end (a zero) where x - s*v + p is outside the
    kernel.  ``rows`` (m, n*k): 1 where output row y = s*u + ky - p, else 0.
    """
    m = (n - 1) * s + k - 2 * p
    c = torch.arange(ci, device=device).view(ci, 1, 1, 1, 1)
    v = torch.arange(n, device=device).view(1, n, 1, 1, 1)
    ky = torch.arange(k, device=device).view(1, 1, k, 1, 1)
    x = torch.arange(m, device=device).view(1, 1, 1, m, 1)
    o = torch.arange(co, device=device).view(1, 1, 1, 1, co)
    kx = x - s * v + p
    tap = ((c * co + o) * k + ky) * k + kx.clamp(0, k - 1)
    index = torch.where((kx >= 0) & (kx < k), tap, ci * co * k * k).reshape(ci * n, k * m * co)
    y = torch.arange(m, device=device).view(m, 1, 1)
    u = torch.arange(n, device=device).view(1, n, 1)
    rows = (y == s * u + torch.arange(k, device=device).view(1, 1, k) - p)
    return index, rows.reshape(m, n * k).float()


def transposed_conv_gemm(layer: nn.ConvTranspose2d, x: torch.Tensor,
                         dtype: torch.dtype) -> torch.Tensor:
    """``layer(x)`` (float32) for a square input as two matrix products, the first in ``dtype``.

    out[b, o, y, x] = sum over c, u, v of x[b, c, u, v] * weight[c, o, y - s*u + p, x - s*v + p].
    The sum over (c, v) for every (u, ky, x, o) is one large product whose matrix is gathered
    from the kernel (14*32 by 28*28 for the output layer: 0.35 M entries, nothing to build
    beforehand, and autograd folds its gradient back into the kernel); the sum over u, which
    puts row ky of input row u on output row s*u + ky - p, is a small float32 product with a 0/1
    matrix.  oneDNN's kernels for this shape (a 28x28 kernel, one output channel) run at a
    fraction of the matrix unit's speed, in bf16 slower still.
    """
    ci, co, k, _ = layer.weight.shape
    s, p, n = layer.stride[0], layer.padding[0], x.shape[-1]
    index, rows = _gemm_plan(ci, co, k, s, p, n, x.device)
    m = rows.shape[0]
    weight = layer.weight.to(dtype)
    taps = torch.cat([weight.flatten(), weight.new_zeros(1)])[index]
    a = x.to(dtype).permute(0, 2, 1, 3).reshape(-1, ci * n)  # rows (b, u), columns (c, v)
    partial = (a @ taps).float().reshape(x.shape[0], n * k, m * co)
    out = (rows @ partial).reshape(x.shape[0], m, m, co).permute(0, 3, 1, 2)
    return out + layer.bias.view(1, co, 1, 1) if layer.bias is not None else out


# The inference fast path (the map's codes, kNN, training snapshots): no graph, so no masks.

def pool_relu(x: torch.Tensor) -> torch.Tensor:
    """relu(max_pool2d(x, 2, 2)) for even sizes, as max(relu) = relu(max): the ReLU runs on a
    quarter of the values, and four strided maxima beat max_pool2d's CPU kernel (same values,
    NaN included)."""
    return max4(x).relu_()


def channels_last(t: torch.Tensor) -> torch.Tensor:
    """A copy of the 4-D ``t`` with channels-last strides, one channel included.  With one
    channel, ``contiguous(memory_format=torch.channels_last)`` keeps the planar strides (both
    layouts are "contiguous"), so oneDNN would run the first convolution, and through its output
    every layer after it, with its planar kernels."""
    n, c, h, w = t.shape
    out = torch.empty_strided(t.shape, (c * h * w, 1, w * c, c), dtype=t.dtype, device=t.device)
    return out.copy_(t)


def encode_batch(model: CAE, x: torch.Tensor, bf16: bool) -> torch.Tensor:
    """``model.encode(x)`` with ReLU after pooling; with ``bf16`` the two 3x3 convolutions run
    in bfloat16 and channels-last and the last one (a 2-unit matrix product, nearly free) in
    float32 again, which halves the code error of an all-bf16 pass.  fp32 gives model.encode's
    exact codes.

    Channels-last made the bf16 pass 1.5x faster (10,000 MNIST digits in batches of 256, two
    threads, alternated: 432 against 653 ms): oneDNN's blocked 3x3 kernel for the second
    convolution takes 4.1 against 6.4 ms per batch, and pooling reads whole pixels."""
    conv1, _, _, conv2, _, _, last = model.encoder
    dtype = torch.bfloat16 if bf16 else x.dtype
    layout = channels_last if bf16 else torch.Tensor.contiguous
    h = layout(x.to(dtype))
    for conv in (conv1, conv2):
        h = pool_relu(torch.nn.functional.conv2d(
            h, layout(conv.weight.to(dtype)), conv.bias.to(dtype), conv.stride, conv.padding))
    return last(h.float()).flatten(1)
