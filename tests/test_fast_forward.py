"""The training fast path computes the model's function: the same forward and gradients."""
import pytest
import torch
import torch.nn.functional as F

import cae.fast_forward as ff
from cae.fast_forward import MaxPool2x2, fast_encode, fast_forward
from cae.model import reconstruction_loss
from cae.train import build_model


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


def test_fp32_fast_forward_is_the_model_forward_with_the_same_gradients():
    model = build_model(seed=0)
    x = torch.rand(16, 1, 28, 28)
    ref = model(x)
    got = fast_forward(model, x, bf16=False)
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=0)
    g_ref = torch.autograd.grad(reconstruction_loss(ref, x), list(model.parameters()))
    g_got = torch.autograd.grad(reconstruction_loss(got, x), list(model.parameters()))
    for a, b in zip(g_ref, g_got):
        torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-5)
    torch.testing.assert_close(fast_encode(model, x, bf16=False), model.encode(x), atol=1e-6, rtol=0)


@pytest.mark.parametrize("output_bf16", [False, True])
def test_bf16_fast_forward_is_close_to_fp32(monkeypatch, output_bf16):
    monkeypatch.setattr(ff, "_output_in_bf16", lambda layer, shape, device: output_bf16)
    model = build_model(seed=1)
    x = torch.rand(8, 1, 28, 28)
    out = fast_forward(model, x, bf16=True)
    assert out.dtype == torch.float32
    assert (out - model(x)).abs().max() < 0.05


def test_the_output_layer_precision_is_timed_once_per_device(monkeypatch):
    monkeypatch.setattr(ff, "_OUTPUT_IN_BF16", {})
    model = build_model(seed=2)
    calls = []
    real = ff.nn.ConvTranspose2d.forward

    def counting(self, x, *args):
        calls.append(x.shape[0])
        return real(self, x, *args)

    fast_forward(model, torch.rand(4, 1, 28, 28), bf16=True)
    assert list(ff._OUTPUT_IN_BF16) == ["cpu"]
    monkeypatch.setattr(ff.nn.ConvTranspose2d, "forward", counting)
    fast_forward(model, torch.rand(3, 1, 28, 28), bf16=True)  # another batch size too
    assert len(calls) == 3  # the three decoder layers, no timing runs the second time
