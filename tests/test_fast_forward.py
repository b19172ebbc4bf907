"""The training fast path computes the model's function: the same forward and gradients.

Fixtures have real contrast: the bundled (trained) model on real MNIST digits, whose
reconstructions span about [-0.2, 1.2], so each tolerance below is a small fraction of the signal
and ``test_the_checks_reject_broken_paths`` proves that zeros, a transposed kernel or an
off-by-one padding fail them."""
import itertools
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cae.checkpoint import load_checkpoint
from cae.fast_forward import (MaxPool2x2, channels_last, encode_batch, fast_encode, fast_forward,
                              transposed_conv_gemm)
from cae.model import reconstruction_loss
from cae.train import build_model
from tests.helpers import mnist_sample

BUNDLED = Path(__file__).resolve().parent.parent / "resources" / "model.safetensors"
BF16_OUT_TOL = 0.03  # of the reference's range (measured: 0.008 to 0.015)
BF16_GRAD_TOL = 0.3  # relative L2 error of any parameter's gradient (measured: up to 0.18)


@pytest.fixture(scope="module")
def trained():
    model = load_checkpoint(BUNDLED).model.eval()
    images, _ = mnist_sample()
    x = torch.from_numpy(images[:32]).unsqueeze(1).float() / 255
    return model, x


def output_error(got: torch.Tensor, ref: torch.Tensor) -> float:
    """Largest pixel difference as a fraction of the reference's range."""
    got, ref = got.detach(), ref.detach()
    return float((got - ref).abs().max() / (ref.max() - ref.min()))


def grad_error(got: list[torch.Tensor], ref: list[torch.Tensor]) -> float:
    """Largest relative L2 error over the parameters' gradients."""
    return max(float((g - r).norm() / r.norm()) for g, r in zip(got, ref))


def grads(model, out, x):
    return list(torch.autograd.grad(reconstruction_loss(out, x), list(model.parameters())))


def test_fixture_has_contrast(trained):
    model, x = trained
    with torch.no_grad():
        ref = model(x)
    assert float(ref.max() - ref.min()) > 0.8 and float(ref.std()) > 0.2


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_pool_equals_max_pool2d_with_its_gradient_ties_included(dtype):
    torch.manual_seed(0)
    x = torch.relu(torch.randn(3, 5, 8, 6)).to(dtype)  # half zeros: ties everywhere
    x[0, 0, :2, :2] = 1.5  # a window of four equal positive values
    x[1, 1, 2:4, 2:4] = torch.tensor([[0.5, 2.0], [2.0, 2.0]], dtype=dtype)
    a = x.clone().requires_grad_()
    b = x.clone().requires_grad_()
    ref, got = F.max_pool2d(a, 2, 2), MaxPool2x2.apply(b)
    assert torch.equal(ref, got)
    grad = torch.randn_like(ref)
    ref.backward(grad)
    got.backward(grad)
    assert torch.equal(a.grad, b.grad)


def test_pool_matches_max_pool2d_with_nan_and_infinities():
    # Every pattern of NaN in a window (the gradient goes to the last NaN, as max_pool2d's),
    # plus all-infinite windows and random NaN/inf/tie mixes.
    nan, inf = float("nan"), float("inf")
    windows = []
    for pattern in itertools.product([False, True], repeat=4):
        w = torch.tensor([1.0, 2.0, 3.0, 0.5])
        w[list(pattern)] = nan
        windows.append(w)
    windows += [torch.full((4,), -inf), torch.full((4,), inf), torch.tensor([-inf, inf, inf, 0.0])]
    x = torch.stack(windows).reshape(len(windows), 1, 2, 2)
    torch.manual_seed(1)
    mixed = torch.randn(2, 3, 8, 8)
    mixed[torch.rand_like(mixed) < 0.3] = nan
    mixed[torch.rand_like(mixed) < 0.1] = inf
    mixed[torch.rand_like(mixed) < 0.1] = -inf
    mixed[torch.rand_like(mixed) < 0.2] = 0.0
    for case in (x, mixed):
        a, b = case.clone().requires_grad_(), case.clone().requires_grad_()
        ref, got = F.max_pool2d(a, 2, 2), MaxPool2x2.apply(b)
        assert torch.equal(ref.isnan(), got.isnan())
        assert torch.equal(ref.nan_to_num(), got.nan_to_num())
        grad = torch.randn_like(ref)
        ref.backward(grad)
        got.backward(grad)
        assert torch.equal(a.grad, b.grad)


def test_fp32_fast_forward_is_the_model_forward_with_the_same_gradients(trained):
    model, x = trained
    ref = model(x)
    got = fast_forward(model, x, bf16=False)
    assert output_error(got, ref) < 1e-5
    assert grad_error(grads(model, got, x), grads(model, ref, x)) < 1e-4
    torch.testing.assert_close(fast_encode(model, x, bf16=False), model.encode(x),
                               atol=1e-4, rtol=1e-5)


def test_bf16_fast_forward_and_gradients_are_close_to_fp32(trained):
    model, x = trained
    ref = model(x)
    out = fast_forward(model, x, bf16=True)
    assert out.dtype == torch.float32
    assert output_error(out, ref) < BF16_OUT_TOL
    assert grad_error(grads(model, out, x), grads(model, ref, x)) < BF16_GRAD_TOL
    codes = fast_encode(model, x, bf16=True)
    assert output_error(codes, model.encode(x)) < BF16_OUT_TOL


@pytest.mark.parametrize("channels", [1, 3])
def test_channels_last_copies_one_channel_too(channels):
    # contiguous(memory_format=torch.channels_last) keeps planar strides for one channel
    t = torch.randn(2, channels, 5, 4)
    out = channels_last(t)
    assert out.stride() == (channels * 20, 1, 4 * channels, channels)
    assert torch.equal(out, t)


def test_the_bf16_encode_runs_its_convolutions_channels_last(trained):
    model, x = trained
    seen = []
    hooks = [model.encoder[i].register_forward_hook(lambda m, i, o: seen.append(o))
             for i in (0, 3)]
    original = torch.nn.functional.conv2d
    layouts = []

    def spy(inp, weight, *args):
        out = original(inp, weight, *args)
        if weight.shape[-1] == 3:  # the two 3x3 layers (the last one is a 7x7 matrix product)
            layouts.append((out.dtype, out.stride(1) == 1))
        return out

    torch.nn.functional.conv2d = spy
    try:
        with torch.no_grad():
            codes = encode_batch(model, x, bf16=True)
            exact = encode_batch(model, x, bf16=False)
    finally:
        torch.nn.functional.conv2d = original
        for hook in hooks:
            hook.remove()
    assert layouts == [(torch.bfloat16, True)] * 2 + [(torch.float32, False)] * 2
    assert not seen  # the layers' own forward (planar fp32) never ran
    torch.testing.assert_close(exact, model.encode(x), atol=1e-5, rtol=1e-5)
    assert output_error(codes, exact) < BF16_OUT_TOL


def test_with_bf16_the_cpu_output_layer_runs_as_matrix_products(trained):
    model, x = trained
    seen = []
    hook = model.decoder[-1].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    try:
        with torch.no_grad():
            fast_forward(model, x[:2], bf16=True)
            assert seen == []  # transposed_conv_gemm, not the layer's own kernel
            fast_forward(model, x[:2], bf16=False)
    finally:
        hook.remove()
    assert seen == [torch.float32]


@pytest.mark.parametrize("ci, co, k, stride, padding, n", [
    (32, 1, 28, 2, 13, 14),  # the output layer
    (64, 32, 14, 2, 6, 7),  # the decoder's middle layer
    (3, 2, 5, 3, 1, 4),  # odd sizes, stride 3
    (2, 4, 3, 1, 0, 6),  # stride 1, no padding
])
def test_transposed_conv_gemm_is_the_layer_in_fp32(ci, co, k, stride, padding, n):
    """Output and every gradient equal the layer's own (float32 rounding apart)."""
    torch.manual_seed(0)
    layer = torch.nn.ConvTranspose2d(ci, co, k, stride, padding)
    x = torch.randn(5, ci, n, n, requires_grad=True)
    ref = layer(x)
    g = torch.randn_like(ref)
    ref_grads = torch.autograd.grad((ref * g).sum(), (x, layer.weight, layer.bias))
    got = transposed_conv_gemm(layer, x, torch.float32)
    assert got.shape == ref.shape and got.dtype == torch.float32
    torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
    got_grads = torch.autograd.grad((got * g).sum(), (x, layer.weight, layer.bias))
    for a, b in zip(got_grads, ref_grads):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_transposed_conv_gemm_in_bf16_is_close(trained):
    model, x = trained
    layer = model.decoder[-1]
    with torch.no_grad():
        h = model.decoder[:-1](model.encode(x).reshape(len(x), -1, 1, 1))
        ref = layer(h)
        got = transposed_conv_gemm(layer, h, torch.bfloat16)
    assert got.dtype == torch.float32
    assert output_error(got, ref) < BF16_OUT_TOL / 3  # measured 0.002


def test_the_cpu_decoder_first_layer_runs_in_fp32(trained):
    model, x = trained
    seen = []
    hooks = [model.decoder[i].register_forward_hook(lambda m, i, o: seen.append(o.dtype))
             for i in (0, 2)]
    try:
        with torch.no_grad():
            fast_forward(model, x[:2], bf16=True)
    finally:
        for hook in hooks:
            hook.remove()
    assert seen == [torch.float32, torch.bfloat16]  # the first in fp32, the next in bf16


def _broken_outputs(model, x):
    """What a broken fast path would return: zeros, the output layer with its kernel transposed,
    the output layer with its padding off by one (the image shifted a pixel)."""
    *hidden, output = model.decoder
    with torch.no_grad():
        h = model.encode(x).reshape(len(x), -1, 1, 1)
        for layer in hidden:
            h = layer(h)
        transposed = F.conv_transpose2d(h, output.weight.transpose(-1, -2), output.bias,
                                        stride=2, padding=output.padding)
        pad = output.padding[0]
        wrong_pad = F.conv_transpose2d(h, output.weight, output.bias, stride=2, padding=pad + 1,
                                       output_padding=0)
        wrong_pad = F.pad(wrong_pad, (0, 2, 0, 2))  # 26 x 26 back to 28 x 28
    return {"zeros": torch.zeros_like(x), "transposed kernel": transposed,
            "wrong padding": wrong_pad}


def test_the_checks_reject_broken_paths(trained):
    model, x = trained
    with torch.no_grad():
        ref = model(x)
    for name, broken in _broken_outputs(model, x).items():
        assert output_error(broken, ref) > 3 * BF16_OUT_TOL, name
    ref_grads = grads(model, model(x), x)
    assert grad_error([torch.zeros_like(g) for g in ref_grads], ref_grads) > 2 * BF16_GRAD_TOL
    square = [g.transpose(-1, -2) if g.ndim == 4 else g for g in ref_grads]
    assert grad_error(square, ref_grads) > 2 * BF16_GRAD_TOL


def test_fast_path_takes_the_pool_and_matches_a_random_model_exactly_in_fp32():
    model = build_model(seed=0)
    x = torch.rand(4, 1, 28, 28)
    assert torch.equal(fast_encode(model, x, bf16=False), model.encode(x))


def test_without_a_graph_the_pool_needs_no_masks_and_gives_the_same_codes():
    model = build_model(seed=0)
    x = torch.rand(4, 1, 28, 28)
    x[0, 0, 3, 3] = float("nan")  # max_pool2d propagates NaN; so must the maskless pool
    with torch.no_grad():
        plain = fast_encode(model, x, bf16=False)
    torch.testing.assert_close(plain, model.encode(x).detach(), rtol=0, atol=0, equal_nan=True)


def test_the_relu_before_a_pool_runs_after_it_with_the_very_same_gradient():
    """relu(max) = max(relu) on a quarter of the values; the gradient is bit for bit the same."""
    model = build_model(seed=0)
    x = torch.rand(6, 1, 28, 28)
    called = []
    relus = [m for m in model.encoder if isinstance(m, torch.nn.ReLU)]
    hooks = [m.register_forward_hook(lambda m, i, o: called.append(i[0].shape)) for m in relus]
    codes = fast_encode(model, x, bf16=False)
    assert called == []  # neither ReLU module saw the full-size maps
    ref = model.encode(x)
    assert [tuple(s) for s in called] == [(6, 32, 28, 28), (6, 64, 14, 14)]  # as the model does
    for h in hooks:
        h.remove()
    assert torch.equal(codes, ref)
    grad = torch.randn_like(ref)
    fast_grads = torch.autograd.grad(codes, list(model.encoder.parameters()), grad)
    ref_grads = torch.autograd.grad(ref, list(model.encoder.parameters()), grad)
    assert all(torch.equal(a, b) for a, b in zip(fast_grads, ref_grads))
